/*
 * withdraw.c — `healthd --withdraw-all`: every protocol healthd owns
 * disabled, in the include file and in BIRD, then exit. Run by systemd when
 * it gives up restarting healthd, so a dead healthd does not leave routes
 * announced with no checks behind them.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bird-glue/table.h"

struct wd {
	uv_loop_t loop;
	struct bird_client *client;
	uv_timer_t deadline;
	struct bird_proto *rows;
	int n_rows, next;
	int disabled, failed;
	bool done, timed_out, listed;
	void (*log)(int level, const char *msg);
	char err[256];
};

__attribute__((format(printf, 3, 4)))
static void wlog(struct wd *w, int level, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (w->log)
		w->log(level, msg);
}

static void finish(struct wd *w)
{
	w->done = true;
	bird_client_close(w->client);
	w->client = NULL;
	uv_close((uv_handle_t *)&w->deadline, NULL);
}

static void send_next(struct wd *w);

static void on_disabled(void *arg, int err, const struct bird_reply *r)
{
	struct wd *w = arg;
	const char *name = w->rows[w->next - 1].name;

	if (err == -ECANCELED)
		return;
	if (err < 0 || (r->code != 0 && !bird_code_ok(r->code))) {
		w->failed++;
		wlog(w, 3, "disable \"%s\": %s", name, err < 0 ? strerror(-err) : r->text);
	} else {
		w->disabled++;
		wlog(w, 5, "BIRD: disabled %s", name);
	}
	send_next(w);
}

static void send_next(struct wd *w)
{
	char cmd[sizeof(w->rows[0].name) + 16];

	while (w->next < w->n_rows && w->rows[w->next].state != BIRD_PROTO_UP &&
	       w->rows[w->next].state != BIRD_PROTO_START)
		w->next++;
	if (w->next >= w->n_rows) {
		finish(w);
		return;
	}
	snprintf(cmd, sizeof(cmd), "disable \"%s\"", w->rows[w->next++].name);
	if (bird_client_send(w->client, cmd, on_disabled, w) < 0) {
		w->failed++;
		finish(w);
	}
}

static void on_list(void *arg, int err, const struct bird_reply *r)
{
	struct wd *w = arg;

	if (err == -ECANCELED)
		return;
	if (err < 0) {
		snprintf(w->err, sizeof(w->err), "show protocols: %s", strerror(-err));
		finish(w);
		return;
	}
	w->rows = calloc(r->n_lines + 1, sizeof(*w->rows));
	w->n_rows = w->rows ? bird_parse_protocols(r, w->rows, r->n_lines, NULL) : -ENOMEM;
	if (w->n_rows < 0) {
		snprintf(w->err, sizeof(w->err), "BIRD's reply to show protocols not usable: %04d %s",
			 r->code, r->text);
		finish(w);
		return;
	}
	w->listed = true;
	send_next(w);
}

static void on_state(void *arg, bool connected, const char *why)
{
	struct wd *w = arg;

	if (w->done)
		return;
	if (connected) {
		if (bird_client_send(w->client, "show protocols \"healthd_*\"", on_list, w) < 0)
			finish(w);
	} else {
		snprintf(w->err, sizeof(w->err), "BIRD unreachable: %s", why ? why : "?");
	}
}

static void on_deadline(uv_timer_t *t)
{
	struct wd *w = t->data;

	w->timed_out = true;
	finish(w);
}

int bird_withdraw_all(const struct config *cfg, uint64_t timeout_ms,
		      void (*log)(int level, const char *msg), char *err, size_t errlen)
{
	struct sync_table empty = { 0 }, t;
	struct wd w = { .log = log };
	char *text, werr[256];
	bool lacks;
	int rc;

	/* The file first: whatever happens to BIRD, its next start or
	 * configure announces nothing of ours. */
	if (table_build(&t, &empty, cfg, "", &lacks) < 0) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	text = table_render(&t, cfg->node);
	table_free(&t);
	if (!text) {
		snprintf(err, errlen, "cannot render %s", cfg->bird.include);
		return -EINVAL;
	}
	rc = bird_write_atomic(cfg->bird.include, text, werr, sizeof(werr));
	free(text);
	if (rc < 0)
		wlog(&w, 3, "include file not written: %s", werr);
	else
		wlog(&w, 5, "%s: every protocol disabled", cfg->bird.include);

	uv_loop_init(&w.loop);
	uv_timer_init(&w.loop, &w.deadline);
	w.deadline.data = &w;
	uv_timer_start(&w.deadline, on_deadline, timeout_ms, 0);
	if (bird_client_new(&w.loop, cfg->bird.socket, cfg->bird.timeout_ms, on_state, &w,
			    &w.client) < 0) {
		snprintf(w.err, sizeof(w.err), "cannot connect to %s", cfg->bird.socket);
		finish(&w);
	}
	uv_run(&w.loop, UV_RUN_DEFAULT);
	uv_loop_close(&w.loop);
	free(w.rows);
	if (!w.listed || w.failed || w.timed_out || rc < 0) {
		snprintf(err, errlen, "%s%s%s", !w.listed ? (w.err[0] ? w.err : "BIRD did not answer")
							: w.failed ? "some protocols could not be disabled"
							: w.timed_out ? "timed out" : "",
			 rc < 0 ? "; include file: " : "", rc < 0 ? werr : "");
		return -EIO;
	}
	snprintf(err, errlen, "%d protocols disabled in BIRD", w.disabled);
	return 0;
}
