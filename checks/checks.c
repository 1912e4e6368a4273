/*
 * The check registry, the reason table, the engine and the life of one
 * check: new, start, report, cancel, destroy.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <curl/curl.h>

#include "checks/checks.h"

/* Several multi handles on the one loop: libcurl looks for a reusable
 * connection by walking every cached connection to the same host, so one
 * multi holding thousands of keep-alive connections to one server costs
 * O(checks) per probe. A check always lands in the same shard (by its easy
 * handle), so it keeps reusing its connection. */
#define CHECK_CURL_SHARDS 32

struct check_engine {
	uv_loop_t *loop;
	struct check_curl *curl[CHECK_CURL_SHARDS];
};

/* The only registry: adding a type adds a line here. */
static const struct check_ops *const registry[] = {
	&check_dns_ops,
	&check_http_ops,
	&check_tcp_ops,
	&check_wireguard_ops,
	&check_exec_ops,
};

#define N_TYPES (sizeof(registry) / sizeof(registry[0]))

static const char *const reason_names[CHECK_REASONS] = {
	[CHECK_OK] = "ok",
	[CHECK_TIMEOUT] = "timeout",
	[CHECK_REFUSED] = "refused",
	[CHECK_UNREACHABLE] = "unreachable",
	[CHECK_DNS] = "dns",
	[CHECK_TLS] = "tls",
	[CHECK_STATUS] = "status",
	[CHECK_BODY] = "body",
	[CHECK_PROTOCOL] = "protocol",
	[CHECK_IO] = "io",
	[CHECK_INTERNAL] = "internal",
	[CHECK_EXIT] = "exit",
};

const char *check_reason_str(enum check_reason r)
{
	if ((unsigned)r >= CHECK_REASONS || !reason_names[r])
		return "unknown";
	return reason_names[r];
}

const struct check_ops *check_ops_find(const char *type)
{
	if (!type)
		return NULL;
	for (size_t i = 0; i < N_TYPES; i++)
		if (strcmp(registry[i]->type, type) == 0)
			return registry[i];
	return NULL;
}

const char *const *check_types(void)
{
	static const char *names[N_TYPES + 1];

	for (size_t i = 0; i < N_TYPES; i++)
		names[i] = registry[i]->type;
	names[N_TYPES] = NULL;
	return names;
}

static uint64_t real_now_us(void)
{
	return uv_hrtime() / 1000;
}

static void real_wall(struct timespec *ts)
{
	clock_gettime(CLOCK_REALTIME, ts);
}

static struct check_clock clock_now = { real_now_us, real_wall };

void check_set_clock(const struct check_clock *clk)
{
	clock_now.now_us = clk && clk->now_us ? clk->now_us : real_now_us;
	clock_now.wall = clk && clk->wall ? clk->wall : real_wall;
}

uint64_t check_now_us(void)
{
	return clock_now.now_us();
}

void check_wall_now(struct timespec *ts)
{
	clock_now.wall(ts);
}

/* ---- engine ---- */

int check_engine_new(uv_loop_t *loop, struct check_engine **out)
{
	struct check_engine *e;
	int rc;

	*out = NULL;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return -ENOMEM;
	e = calloc(1, sizeof(*e));
	if (!e) {
		rc = -ENOMEM;
		goto fail;
	}
	e->loop = loop;
	for (int i = 0; i < CHECK_CURL_SHARDS; i++) {
		rc = check_curl_new(loop, &e->curl[i]);
		if (rc < 0)
			goto fail;
	}
	*out = e;
	return 0;
fail:
	if (e)
		for (int i = 0; i < CHECK_CURL_SHARDS; i++)
			check_curl_close(e->curl[i]);
	free(e);
	curl_global_cleanup();
	return rc;
}

void check_engine_close(struct check_engine *e)
{
	if (!e)
		return;
	for (int i = 0; i < CHECK_CURL_SHARDS; i++)
		check_curl_close(e->curl[i]);
	free(e);
	/* Balances check_engine_new; curl's globals go with the last engine. */
	curl_global_cleanup();
}

uv_loop_t *check_engine_loop(struct check_engine *e)
{
	return e->loop;
}

struct check_curl *check_engine_curl(struct check_engine *e, const void *easy)
{
	uintptr_t h = (uintptr_t)easy;

	h ^= h >> 17;
	h *= 0x9E3779B97F4A7C15ull;
	return e->curl[(h >> 32) % CHECK_CURL_SHARDS];
}

/* ---- one check ---- */

int check_new(struct check_engine *e, const struct cfg_check *cfg,
	      check_done_cb done, void *arg, struct check **out)
{
	const struct check_ops *ops;
	struct check *c;
	int rc;

	*out = NULL;
	if (!e || !cfg || !done)
		return -EINVAL;
	ops = check_ops_find(cfg->type);
	if (!ops)
		return -ENOENT;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->ops = ops;
	c->cfg = cfg;
	c->engine = e;
	c->done = done;
	c->arg = arg;
	if (ops->init) {
		rc = ops->init(c);
		if (rc < 0)
			goto fail;
	}
	*out = c;
	return 0;
fail:
	free(c->priv);
	free(c);
	return rc;
}

int check_start(struct check *c)
{
	int rc;

	if (c->closing)
		return -ESHUTDOWN;
	if (c->running) {
		c->skipped++;
		return -EBUSY;
	}
	c->running = true;
	c->started_us = check_now_us();
	rc = c->ops->start(c);
	if (rc < 0)
		c->running = false;
	return rc;
}

void check_cancel(struct check *c)
{
	if (!c || !c->running)
		return;
	if (c->ops->cancel)
		c->ops->cancel(c);
	c->running = false;
}

void check_destroy(struct check *c)
{
	if (!c || c->closing)
		return;
	check_cancel(c);
	c->closing = true;
	if (c->ops->destroy) {
		c->ops->destroy(c);
		return;
	}
	free(c->priv);
	c->priv = NULL;
	check_freed(c);
}

void check_freed(struct check *c)
{
	free(c);
}

/* The length of the valid UTF-8 sequence at s, 0 if there is none. */
static size_t utf8_len(const unsigned char *s)
{
	size_t n = s[0] < 0x80 ? 1 : (s[0] & 0xe0) == 0xc0 ? 2 : (s[0] & 0xf0) == 0xe0 ? 3 :
		   (s[0] & 0xf8) == 0xf0 ? 4 : 0;

	if (n == 0 || (n == 2 && s[0] < 0xc2) || (n == 4 && s[0] > 0xf4))
		return 0;
	for (size_t i = 1; i < n; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	if ((n == 3 && s[0] == 0xe0 && s[1] < 0xa0) || (n == 3 && s[0] == 0xed && s[1] >= 0xa0) ||
	    (n == 4 && s[0] == 0xf0 && s[1] < 0x90) || (n == 4 && s[0] == 0xf4 && s[1] >= 0x90))
		return 0;   /* overlong, surrogate, past U+10FFFF */
	return n;
}

/* A detail is JSON text in status and replies: a byte that is not UTF-8
 * (a server's text, or a character cut by the length limit) becomes '?',
 * so that no reply is lost to it. */
void check_detail_clean(char *s)
{
	for (unsigned char *p = (unsigned char *)s; *p;) {
		size_t n = utf8_len(p);

		if (n == 0)
			*p++ = '?';
		else
			p += n;
	}
}

void check_report(struct check *c, enum check_reason reason, int http_status,
		  const char *fmt, ...)
{
	struct check_result r;
	uint64_t now = check_now_us();
	va_list ap;

	/* A late report after cancel or destroy is dropped: no callback then. */
	if (!c->running || c->closing)
		return;
	memset(&r, 0, sizeof(r));
	r.reason = reason;
	r.http_status = http_status;
	r.latency_us = now > c->started_us ? now - c->started_us : 1;
	va_start(ap, fmt);
	vsnprintf(r.detail, sizeof(r.detail), fmt, ap);
	va_end(ap);
	if (c->skipped) {
		size_t n = strlen(r.detail);

		snprintf(r.detail + n, sizeof(r.detail) - n, " (overran: %u probe%s skipped)",
			 c->skipped, c->skipped == 1 ? "" : "s");
		c->skipped = 0;
	}
	check_detail_clean(r.detail);
	c->running = false;
	c->done(c, &r, c->arg);
}

void check_status(const struct check *c, struct json_t *obj)
{
	if (c && c->ops->status)
		c->ops->status(c, obj);
}
