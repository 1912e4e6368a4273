/*
 * lg/serve.c — the looking glass's HTTP side and its BIRD connection.
 *
 *   GET /                      HTML: BIRD's status, the protocols, a lookup form
 *   GET /route?net=NET         HTML: routes for an address or a prefix
 *   GET /fleet.html            HTML: who announces each service
 *   GET /fleet                 JSON: the same
 *   GET /status                birdwatcher JSON (show status)
 *   GET /protocols             birdwatcher JSON (show protocols all)
 *   GET /protocols/bgp         the BGP ones
 *   GET /protocols/short       show protocols (?uncached=true is accepted)
 *   GET /protocol/NAME         one protocol
 *   GET /routes/protocol/NAME  show route protocol NAME all
 *   GET /routes/filtered/NAME  show route filtered protocol NAME all
 *   GET /routes/noexport/NAME  show route noexport NAME all
 *   GET /route/net/NET         show route for ADDRESS all | show route PREFIX all
 *   GET /routes/count          show route count
 *
 * A request passes, in order: the listener's accept hook (a source
 * outside `allow` is refused before a byte is read), its source's token
 * bucket (429), the parse of its path and arguments (400 with the
 * reason: unknown argument, bad name, bad address), the global cap on
 * requests waiting for BIRD (503). Then each BIRD command it needs is an
 * entry of the cache: a fresh one answers at once, a pending one is
 * joined (identical queries coalesce), a missing one is sent. The request
 * is suspended until its entries are done or the query timeout ends
 * (504). A name must be one `show protocols` listed (404 otherwise).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "healthd/healthd.h"
#include "http/limit.h"
#include "http/server.h"
#include "lg/lg.h"

#define LIMITER_SLOTS 4096
#define CACHE_MAX 1024           /* entries, pending and done */
#define NEED_MAX 16              /* BIRD commands one request may need */
#define NAMES_FRESH_MS 1000      /* how old BIRD's protocol list may be */

enum view {
	V_JSON_STATUS, V_JSON_PROTOCOLS, V_JSON_BGP, V_JSON_SHORT, V_JSON_PROTOCOL,
	V_JSON_ROUTES, V_JSON_COUNT, V_JSON_FLEET,
	V_HTML_INDEX, V_HTML_ROUTE, V_HTML_FLEET,
};

struct waiter;

struct entry {
	struct entry *next;
	struct lg *lg;
	char cmd[160];
	bool done, dead, in_bird;
	int err;                     /* 0, or -errno (with why) */
	char why[200];
	struct bird_reply reply;     /* a deep copy */
	uint64_t done_ms;
	int64_t done_wall;
	uv_timer_t timer;            /* the query timeout */
	bool timer_open;
	struct waiter **waiters;
	size_t n_waiters, cap_waiters;
	unsigned refs;               /* waiters that hold it */
};

struct waiter {
	struct lg *lg;
	struct MHD_Connection *conn;
	enum view view;
	struct lg_query q;
	unsigned fail_code;          /* answered with this and fail_msg, if not 0 */
	char fail_msg[256];
	bool names_phase;            /* waiting for `show protocols` first */
	bool suspended, ready, from_cache;
	struct entry *need[NEED_MAX];
	size_t n_need, pending;
	struct waiter *next_all;     /* lg->all, for lg_stop */
	struct waiter **prev_all;
};

struct lg {
	uv_loop_t *loop;
	const struct lg_conf *conf;
	struct http_server *http;
	struct limiter *lim;
	struct bird_client *bird;
	bool restricted;
	char bird_why[256];
	struct entry *entries;
	size_t n_entries;
	struct waiter *all;
	size_t waiting;
	struct lg_protocols names;   /* from the last `show protocols` */
	uint64_t names_ms;
	bool have_names;
	bool stopping;
	struct {
		uint64_t requests, refused, limited, bad, busy, bird_queries, cache_hits, coalesced;
	} n;
};

/* ---- the cache ---- */

static void reply_free(struct bird_reply *r)
{
	for (size_t i = 0; i < r->n_lines; i++)
		free(r->lines[i].text);
	free(r->lines);
	memset(r, 0, sizeof(*r));
}

static int reply_copy(struct bird_reply *dst, const struct bird_reply *src)
{
	memset(dst, 0, sizeof(*dst));
	if (!(dst->lines = calloc(src->n_lines + 1, sizeof(*dst->lines))))
		return -ENOMEM;
	for (size_t i = 0; i < src->n_lines; i++) {
		dst->lines[i].code = src->lines[i].code;
		if (!(dst->lines[i].text = strdup(src->lines[i].text))) {
			dst->n_lines = i;
			reply_free(dst);
			return -ENOMEM;
		}
		dst->n_lines = i + 1;
	}
	dst->code = src->code;
	dst->text = dst->n_lines ? dst->lines[dst->n_lines - 1].text : "";
	return 0;
}

static void entry_timer_closed(uv_handle_t *h)
{
	struct entry *e = h->data;

	reply_free(&e->reply);
	free(e->waiters);
	free(e);
}

/* Unlinks and frees e once nothing holds it: no waiter, no BIRD callback. */
static void entry_release(struct entry *e)
{
	struct lg *lg = e->lg;

	if (e->refs || e->in_bird)
		return;
	if (!e->dead && e->done && lg->conf->cache_ms && !lg->stopping &&
	    uv_now(lg->loop) - e->done_ms < lg->conf->cache_ms)
		return;     /* still fresh: kept for the next asker */
	for (struct entry **p = &lg->entries; *p; p = &(*p)->next)
		if (*p == e) {
			*p = e->next;
			lg->n_entries--;
			break;
		}
	if (e->timer_open) {
		e->timer_open = false;
		uv_close((uv_handle_t *)&e->timer, entry_timer_closed);
	} else {
		entry_timer_closed((uv_handle_t *)&e->timer);
	}
}

/* Drops every entry that is no longer fresh and that nobody holds. */
static void sweep(struct lg *lg)
{
	struct entry *e = lg->entries, *next;

	for (; e; e = next) {
		next = e->next;
		entry_release(e);
	}
}

static void waiter_step(struct waiter *w);

/* e is done (reply, error or timeout): every waiter on it moves on. */
static void entry_finish(struct entry *e)
{
	struct waiter **ws = e->waiters;
	size_t n = e->n_waiters;

	e->done = true;
	e->done_ms = uv_now(e->lg->loop);
	e->done_wall = (int64_t)time(NULL);
	if (e->err)
		e->dead = true;     /* errors are not cached */
	if (e->timer_open)
		uv_timer_stop(&e->timer);
	e->waiters = NULL;
	e->n_waiters = e->cap_waiters = 0;
	for (size_t i = 0; i < n; i++) {
		ws[i]->pending--;
		if (!ws[i]->pending)
			waiter_step(ws[i]);
	}
	free(ws);
}

static void on_bird_reply(void *arg, int err, const struct bird_reply *r)
{
	struct entry *e = arg;
	struct lg *lg = e->lg;

	e->in_bird = false;
	if (e->done) {                      /* timed out already */
		entry_release(e);
		return;
	}
	if (err) {
		e->err = err;
		snprintf(e->why, sizeof(e->why), "BIRD: %s", err == -ETIMEDOUT ? "no reply in time" :
			 err == -EMSGSIZE ? "the reply is over the byte cap (limits.reply_max)" :
			 err == -ENOTCONN ? "not connected" : strerror(-err));
	} else if (reply_copy(&e->reply, r) < 0) {
		e->err = -ENOMEM;
		snprintf(e->why, sizeof(e->why), "out of memory");
	} else if (!strcmp(e->cmd, "show protocols")) {
		struct lg_protocols ps;

		if (lg_parse_protocols(&e->reply, &ps) == 0) {
			lg_protocols_free(&lg->names);
			lg->names = ps;
			lg->names_ms = uv_now(lg->loop);
			lg->have_names = true;
		}
	}
	entry_finish(e);
	entry_release(e);
}

static void on_entry_timeout(uv_timer_t *t)
{
	struct entry *e = t->data;

	if (e->done)
		return;
	e->err = -ETIMEDOUT;
	snprintf(e->why, sizeof(e->why), "BIRD did not answer \"%s\" within %llu ms", e->cmd,
		 (unsigned long long)e->lg->conf->timeout_ms);
	entry_finish(e);
	entry_release(e);
}

static struct entry *entry_find(struct lg *lg, const char *cmd)
{
	uint64_t now = uv_now(lg->loop);

	for (struct entry *e = lg->entries; e; e = e->next) {
		if (e->dead || strcmp(e->cmd, cmd))
			continue;
		if (e->done && now - e->done_ms >= lg->conf->cache_ms)
			continue;
		return e;
	}
	return NULL;
}

/* A new entry for cmd, sent to BIRD at once; NULL with why. */
static struct entry *entry_new(struct lg *lg, const char *cmd, char *why, size_t whylen)
{
	struct entry *e;
	int rc;

	if (!lg_command_allowed(cmd)) {
		/* every command is built from parsed values: a broken invariant */
		log_err("refusing to send \"%s\": not a command of the allowlist", cmd);
		snprintf(why, whylen, "internal error: query not in the allowlist");
		return NULL;
	}
	if (!lg->restricted) {
		snprintf(why, whylen, "BIRD is not available read-only (%.160s)", lg->bird_why);
		return NULL;
	}
	sweep(lg);
	if (lg->n_entries >= CACHE_MAX) {
		snprintf(why, whylen, "too many queries at once");
		return NULL;
	}
	if (!(e = calloc(1, sizeof(*e)))) {
		snprintf(why, whylen, "out of memory");
		return NULL;
	}
	e->lg = lg;
	snprintf(e->cmd, sizeof(e->cmd), "%s", cmd);
	uv_timer_init(lg->loop, &e->timer);
	e->timer.data = e;
	e->timer_open = true;
	if ((rc = bird_client_send(lg->bird, cmd, on_bird_reply, e)) < 0) {
		snprintf(why, whylen, "BIRD: %s", strerror(-rc));
		uv_close((uv_handle_t *)&e->timer, entry_timer_closed);
		return NULL;
	}
	e->in_bird = true;
	lg->n.bird_queries++;
	uv_timer_start(&e->timer, on_entry_timeout, lg->conf->timeout_ms, 0);
	e->next = lg->entries;
	lg->entries = e;
	lg->n_entries++;
	return e;
}

/* w needs the reply to cmd; false with why when it cannot be asked. */
static bool need(struct waiter *w, const char *cmd, char *why, size_t whylen)
{
	struct lg *lg = w->lg;
	struct entry *e = entry_find(lg, cmd);

	if (w->n_need >= NEED_MAX) {
		snprintf(why, whylen, "internal error: too many queries for one request");
		return false;
	}
	if (e) {
		if (e->done)
			lg->n.cache_hits++, w->from_cache = true;
		else
			lg->n.coalesced++;
	} else if (!(e = entry_new(lg, cmd, why, whylen))) {
		return false;
	}
	if (!e->done) {
		if (e->n_waiters == e->cap_waiters) {
			size_t cap = e->cap_waiters ? 2 * e->cap_waiters : 4;
			struct waiter **ws = realloc(e->waiters, cap * sizeof(*ws));

			if (!ws) {
				snprintf(why, whylen, "out of memory");
				entry_release(e);
				return false;
			}
			e->waiters = ws;
			e->cap_waiters = cap;
		}
		e->waiters[e->n_waiters++] = w;
		w->pending++;
	}
	e->refs++;
	w->need[w->n_need++] = e;
	return true;
}

static void waiter_drop_needs(struct waiter *w)
{
	for (size_t i = 0; i < w->n_need; i++) {
		struct entry *e = w->need[i];

		/* a waiter that leaves before its entry is done: off its list */
		for (size_t j = 0; j < e->n_waiters; j++)
			if (e->waiters[j] == w) {
				e->waiters[j] = e->waiters[--e->n_waiters];
				break;
			}
		e->refs--;
		entry_release(e);
	}
	w->n_need = w->pending = 0;
}

static void waiter_free(struct waiter *w)
{
	if (!w)
		return;
	waiter_drop_needs(w);
	if (w->prev_all) {
		*w->prev_all = w->next_all;
		if (w->next_all)
			w->next_all->prev_all = w->prev_all;
	}
	if (w->suspended)
		w->lg->waiting--;
	free(w);
}

/* ---- what each view needs ---- */

static bool needs_of(struct waiter *w, char *why, size_t whylen)
{
	const struct lg_conf *c = w->lg->conf;
	char cmd[160];

	switch (w->view) {
	case V_HTML_INDEX:
		return need(w, "show status", why, whylen) && need(w, "show protocols", why, whylen);
	case V_JSON_FLEET:
	case V_HTML_FLEET:
		for (size_t i = 0; i < c->n_services; i++)
			for (size_t j = 0; j < c->services[i].prefixes.n; j++) {
				struct lg_query q = { .kind = LG_Q_ROUTE_NET,
						      .net = c->services[i].prefixes.items[j].p };

				lg_query_command(&q, cmd, sizeof(cmd));
				if (!need(w, cmd, why, whylen))
					return false;
			}
		return true;
	default:
		lg_query_command(&w->q, cmd, sizeof(cmd));
		return need(w, cmd, why, whylen);
	}
}

/* ---- replies ---- */

static enum MHD_Result reply_error(struct waiter *w, struct MHD_Connection *conn, unsigned code,
				   const char *msg)
{
	bool html = w && (w->view == V_HTML_INDEX || w->view == V_HTML_ROUTE || w->view == V_HTML_FLEET);
	const char *node = w ? w->lg->conf->node : "";

	if (html) {
		char *buf = NULL;
		size_t len = 0;
		FILE *f = open_memstream(&buf, &len);

		if (!f)
			return MHD_NO;
		lg_html_head(f, node, "error");
		lg_html_error(f, msg);
		lg_html_foot(f);
		if (fclose(f))
			return MHD_NO;
		return http_reply_owned(conn, code, buf, len, "text/html; charset=utf-8");
	}
	return http_reply_json(conn, code, json_pack("{s:s}", "error", msg));
}

static const struct bird_reply *reply_of(struct waiter *w, size_t i)
{
	return &w->need[i]->reply;
}

/* An answer of BIRD's that is an error (8xxx/9xxx, not "not found"). */
static bool bird_failed(struct waiter *w, char *why, size_t len)
{
	for (size_t i = 0; i < w->n_need; i++) {
		const struct bird_reply *r = reply_of(w, i);

		if (w->need[i]->err) {
			snprintf(why, len, "%s", w->need[i]->why);
			return true;
		}
		if (!bird_code_ok(r->code) && r->code != 8001 && r->code != 8003) {
			snprintf(why, len, "BIRD answered %04d %.120s", r->code, r->text);
			return true;
		}
	}
	return false;
}

static int fleet_build(struct waiter *w, struct lg_fleet *f)
{
	const struct lg_conf *c = w->lg->conf;
	size_t k = 0;

	memset(f, 0, sizeof(*f));
	for (size_t i = 0; i < c->n_services; i++)
		for (size_t j = 0; j < c->services[i].prefixes.n; j++, k++) {
			struct lg_routes rs;
			int rc;

			if (lg_parse_routes(reply_of(w, k), &rs) < 0)
				continue;
			rc = lg_fleet_add(f, c, &c->services[i], &rs);
			lg_routes_free(&rs);
			if (rc < 0)
				return rc;
		}
	lg_fleet_finish(f);
	return 0;
}

static json_t *json_body(struct waiter *w)
{
	const struct bird_reply *r = reply_of(w, 0);
	json_t *j = NULL;

	switch (w->view) {
	case V_JSON_STATUS: {
		struct lg_status st;

		if (lg_parse_status(r, &st) == 0)
			j = lg_json_status(&st);
		break;
	}
	case V_JSON_PROTOCOLS: case V_JSON_BGP: case V_JSON_SHORT: case V_JSON_PROTOCOL: {
		struct lg_protocols ps;

		if (lg_parse_protocols(r, &ps) == 0) {
			j = w->view == V_JSON_SHORT ? lg_json_protocols_short(&ps) :
			    lg_json_protocols(&ps, w->view == V_JSON_BGP);
			lg_protocols_free(&ps);
		}
		break;
	}
	case V_JSON_ROUTES: {
		struct lg_routes rs;

		if (lg_parse_routes(r, &rs) == 0) {
			j = lg_json_routes(&rs);
			lg_routes_free(&rs);
		}
		break;
	}
	case V_JSON_COUNT: {
		struct lg_count cn;

		if (lg_parse_count(r, &cn) == 0)
			j = lg_json_count(&cn);
		break;
	}
	case V_JSON_FLEET: {
		struct lg_fleet f;

		if (fleet_build(w, &f) == 0)
			j = lg_json_fleet(&f, w->lg->conf);
		lg_fleet_free(&f);
		break;
	}
	default:
		break;
	}
	return j;
}

static int html_body(struct waiter *w, FILE *f)
{
	const char *node = w->lg->conf->node;

	switch (w->view) {
	case V_HTML_INDEX: {
		struct lg_status st;
		struct lg_protocols ps;

		lg_html_head(f, node, "looking glass");
		if (lg_parse_status(reply_of(w, 0), &st) == 0)
			lg_html_status(f, &st);
		lg_html_form(f, NULL);
		if (lg_parse_protocols(reply_of(w, 1), &ps) == 0) {
			lg_html_protocols(f, &ps);
			lg_protocols_free(&ps);
		}
		break;
	}
	case V_HTML_ROUTE: {
		struct lg_routes rs;

		lg_html_head(f, node, w->q.net.text);
		lg_html_form(f, w->q.net.text);
		if (lg_parse_routes(reply_of(w, 0), &rs) < 0)
			return -EPROTO;
		lg_html_routes(f, w->q.net.text, &rs);
		lg_routes_free(&rs);
		break;
	}
	case V_HTML_FLEET: {
		struct lg_fleet fl;
		int rc;

		lg_html_head(f, node, "fleet");
		rc = fleet_build(w, &fl);
		if (rc == 0)
			lg_html_fleet(f, &fl);
		lg_fleet_free(&fl);
		if (rc < 0)
			return rc;
		break;
	}
	default:
		return -EINVAL;
	}
	lg_html_foot(f);
	return 0;
}

static enum MHD_Result answer(struct waiter *w, struct MHD_Connection *conn)
{
	struct lg *lg = w->lg;
	char why[256];

	if (bird_failed(w, why, sizeof(why)))
		return reply_error(w, conn, strstr(why, "in time") || strstr(why, "within") ?
				   MHD_HTTP_GATEWAY_TIMEOUT : MHD_HTTP_BAD_GATEWAY, why);
	if (w->view >= V_HTML_INDEX) {
		char *buf = NULL;
		size_t len = 0;
		FILE *f = open_memstream(&buf, &len);
		int rc;

		if (!f)
			return MHD_NO;
		rc = html_body(w, f);
		if (fclose(f) || rc < 0) {
			free(buf);
			return reply_error(w, conn, MHD_HTTP_BAD_GATEWAY, "cannot read BIRD's reply");
		}
		return http_reply_owned(conn, MHD_HTTP_OK, buf, len, "text/html; charset=utf-8");
	}
	{
		json_t *body = json_body(w), *env;
		int64_t at = (int64_t)time(NULL);

		if (!body)
			return reply_error(w, conn, MHD_HTTP_BAD_GATEWAY, "cannot read BIRD's reply");
		for (size_t i = 0; i < w->n_need; i++)
			if (w->need[i]->done_wall && w->need[i]->done_wall < at)
				at = w->need[i]->done_wall;
		env = lg_json_envelope(w->from_cache, at,
				       at + (int64_t)((lg->conf->cache_ms + 999) / 1000));
		if (!env || json_object_update(body, env) < 0) {
			json_decref(env);
			json_decref(body);
			return MHD_NO;
		}
		json_decref(env);
		return http_reply_json(conn, MHD_HTTP_OK, body);
	}
}

/* The waiter's entries are all done: the names check, or the answer. */
static void waiter_step(struct waiter *w)
{
	struct lg *lg = w->lg;
	char why[256];

	if (w->names_phase) {
		w->names_phase = false;
		if (bird_failed(w, why, sizeof(why))) {
			w->fail_code = MHD_HTTP_BAD_GATEWAY;
			snprintf(w->fail_msg, sizeof(w->fail_msg), "%s", why);
		} else if (waiter_drop_needs(w), !lg_protocols_find(&lg->names, w->q.name)) {
			w->fail_code = MHD_HTTP_NOT_FOUND;
			snprintf(w->fail_msg, sizeof(w->fail_msg),
				 "\"%s\": BIRD runs no protocol of that name", w->q.name);
		} else if (!needs_of(w, why, sizeof(why))) {
			w->fail_code = MHD_HTTP_SERVICE_UNAVAILABLE;
			snprintf(w->fail_msg, sizeof(w->fail_msg), "%s", why);
		} else if (w->pending) {
			return;
		}
	}
	w->ready = true;
	if (w->suspended)
		http_resume(w->conn);
}

/* ---- requests ---- */

struct args_check {
	const char *const *allowed;
	const char *bad;
	char bad_buf[80];
	unsigned n;
};

static enum MHD_Result check_arg(void *cls, enum MHD_ValueKind kind, const char *key,
				 const char *value)
{
	struct args_check *a = cls;

	(void)kind, (void)value;
	a->n++;
	for (size_t i = 0; a->allowed && a->allowed[i]; i++)
		if (!strcmp(key, a->allowed[i]))
			return MHD_YES;
	snprintf(a->bad_buf, sizeof(a->bad_buf), "%.60s", key);
	for (char *p = a->bad_buf; *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
			*p = '?';
	a->bad = a->bad_buf;
	return MHD_NO;
}

/* Only the arguments the route takes; false with why. */
static bool args_ok(struct MHD_Connection *conn, const char *const *allowed, char *why, size_t len)
{
	struct args_check a = { .allowed = allowed };

	MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, check_arg, &a);
	if (a.bad) {
		snprintf(why, len, "unknown query argument \"%s\"", a.bad);
		return false;
	}
	return true;
}

/* The path into w's view and query; false with the status and reason. */
static bool route(struct waiter *w, struct http_request *r, unsigned *code, char *why, size_t len)
{
	static const char *const none[] = { NULL };
	static const char *const net_only[] = { "net", NULL };
	static const char *const uncached[] = { "uncached", NULL };
	static const struct { const char *prefix; enum view view; enum lg_kind kind; } named[] = {
		{ "/protocol/", V_JSON_PROTOCOL, LG_Q_PROTOCOL },
		{ "/routes/protocol/", V_JSON_ROUTES, LG_Q_ROUTES_PROTOCOL },
		{ "/routes/filtered/", V_JSON_ROUTES, LG_Q_ROUTES_FILTERED },
		{ "/routes/noexport/", V_JSON_ROUTES, LG_Q_ROUTES_NOEXPORT },
	};
	static const struct { const char *path; enum view view; enum lg_kind kind; } fixed[] = {
		{ "/", V_HTML_INDEX, LG_Q_STATUS },
		{ "/fleet", V_JSON_FLEET, LG_Q_STATUS },
		{ "/fleet.html", V_HTML_FLEET, LG_Q_STATUS },
		{ "/status", V_JSON_STATUS, LG_Q_STATUS },
		{ "/protocols", V_JSON_PROTOCOLS, LG_Q_PROTOCOLS_ALL },
		{ "/protocols/bgp", V_JSON_BGP, LG_Q_PROTOCOLS_ALL },
		{ "/routes/count", V_JSON_COUNT, LG_Q_COUNT },
	};
	const char *url = r->url;

	*code = MHD_HTTP_BAD_REQUEST;
	if (!strcmp(url, "/protocols/short")) {
		const char *u = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "uncached");

		w->view = V_JSON_SHORT;
		w->q.kind = LG_Q_PROTOCOLS;
		if (!args_ok(r->conn, uncached, why, len))
			return false;
		/* alice-lg sends it; the cache is short, so it changes nothing */
		if (u && strcmp(u, "true") && strcmp(u, "false")) {
			snprintf(why, len, "uncached is true or false");
			return false;
		}
		return true;
	}
	if (!strcmp(url, "/route")) {
		const char *net = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "net");

		w->view = V_HTML_ROUTE;
		if (!args_ok(r->conn, net_only, why, len))
			return false;
		if (!net) {
			snprintf(why, len, "the argument net (an address or a prefix) is missing");
			return false;
		}
		return lg_query_net(&w->q, net, why, len);
	}
	if (!strncmp(url, "/route/net/", 11)) {
		w->view = V_JSON_ROUTES;
		return args_ok(r->conn, none, why, len) && lg_query_net(&w->q, url + 11, why, len);
	}
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		if (!strcmp(url, fixed[i].path)) {
			w->view = fixed[i].view;
			w->q.kind = fixed[i].kind;
			return args_ok(r->conn, none, why, len);
		}
	for (size_t i = 0; i < sizeof(named) / sizeof(named[0]); i++) {
		size_t n = strlen(named[i].prefix);

		if (!strncmp(url, named[i].prefix, n)) {
			w->view = named[i].view;
			return args_ok(r->conn, none, why, len) &&
			       lg_query_name(&w->q, named[i].kind, url + n, why, len);
		}
	}
	*code = MHD_HTTP_NOT_FOUND;
	snprintf(why, len, "no such page; see meshlg(8) for the endpoints");
	return false;
}

static enum MHD_Result first_call(struct lg *lg, struct http_request *r, bool *answer_now)
{
	struct waiter *w;
	unsigned code, retry;
	char why[256];

	lg->n.requests++;
	if (!limiter_take(lg->lim, &r->peer, uv_now(lg->loop), &retry)) {
		char *body = NULL;
		int n;
		struct MHD_Response *resp;
		enum MHD_Result ret;

		lg->n.limited++;
		n = asprintf(&body, "{\"error\":\"rate limit: %llu requests a second per source\"}\n",
			     (unsigned long long)lg->conf->rate);
		if (n < 0)
			return MHD_NO;
		resp = MHD_create_response_from_buffer((size_t)n, body, MHD_RESPMEM_MUST_FREE);
		if (!resp) {
			free(body);
			return MHD_NO;
		}
		snprintf(why, sizeof(why), "%u", retry);
		MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, why);
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
		ret = MHD_queue_response(r->conn, MHD_HTTP_TOO_MANY_REQUESTS, resp);
		MHD_destroy_response(resp);
		return ret;
	}
	if (!(w = calloc(1, sizeof(*w))))
		return MHD_NO;
	w->lg = lg;
	w->conn = r->conn;
	if (!route(w, r, &code, why, sizeof(why))) {
		enum MHD_Result ret;

		lg->n.bad++;
		log_debug("%s %s: %u %s", r->peer_text, r->method, code, why);
		ret = reply_error(w, r->conn, code, why);
		free(w);
		return ret;
	}
	if (lg->waiting >= lg->conf->concurrency) {
		lg->n.busy++;
		free(w);
		return reply_error(NULL, r->conn, MHD_HTTP_SERVICE_UNAVAILABLE,
				   "busy: too many queries waiting for BIRD; try again");
	}
	w->next_all = lg->all;
	if (lg->all)
		lg->all->prev_all = &w->next_all;
	w->prev_all = &lg->all;
	lg->all = w;
	*r->slot = w;
	if (lg_query_has_name(&w->q) && (!lg->have_names ||
	    uv_now(lg->loop) - lg->names_ms >= NAMES_FRESH_MS ||
	    !lg_protocols_find(&lg->names, w->q.name))) {
		/* the name is checked against a fresh list: ask for one first */
		w->names_phase = true;
		if (!need(w, "show protocols", why, sizeof(why)))
			goto cannot;
	} else if (!needs_of(w, why, sizeof(why))) {
		goto cannot;
	}
	if (w->names_phase && !w->pending)
		waiter_step(w);     /* every entry was fresh: on to the query */
	if (w->pending) {
		w->suspended = true;
		lg->waiting++;
		http_suspend(r);
		return MHD_YES;
	}
	*answer_now = true;
	return MHD_YES;
cannot:
	*r->slot = NULL;
	waiter_free(w);
	return reply_error(NULL, r->conn, MHD_HTTP_SERVICE_UNAVAILABLE, why);
}

static enum MHD_Result finish_request(struct lg *lg, struct http_request *r, struct waiter *w)
{
	enum MHD_Result ret;

	(void)lg;
	*r->slot = NULL;
	if (w->fail_code) {
		ret = reply_error(w, r->conn, w->fail_code, w->fail_msg);
	} else {
		ret = answer(w, r->conn);
	}
	waiter_free(w);
	return ret;
}

static enum MHD_Result on_request(void *ctx, struct http_request *r)
{
	struct lg *lg = ctx;
	struct waiter *w = *r->slot;
	enum MHD_Result ret;
	bool now = false;

	if (w) {                    /* resumed: its entries are done */
		if (!w->ready) {    /* woken before its entries are done: wait on */
			http_suspend(r);
			return MHD_YES;
		}
		return finish_request(lg, r, w);
	}
	if (lg->stopping)
		return reply_error(NULL, r->conn, MHD_HTTP_SERVICE_UNAVAILABLE, "stopping");
	ret = first_call(lg, r, &now);
	if (now)
		return finish_request(lg, r, *r->slot);
	return ret;
}

static void slot_free(void *ctx, void *slot)
{
	(void)ctx;
	waiter_free(slot);
}

static bool on_accept(void *ctx, const struct sockaddr *sa, socklen_t len)
{
	struct lg *lg = ctx;
	struct sockaddr_storage ss = { 0 };

	if (len > sizeof(ss))
		return false;
	memcpy(&ss, sa, len);
	if (lg_conf_allowed(lg->conf, &ss))
		return true;
	lg->n.refused++;
	return false;
}

/* ---- the BIRD connection: `restrict` before anything else ---- */

static void on_restrict(void *arg, int err, const struct bird_reply *r)
{
	struct lg *lg = arg;

	if (err) {
		snprintf(lg->bird_why, sizeof(lg->bird_why), "restrict: %s", strerror(-err));
		return;
	}
	if (r->code != 16) {
		snprintf(lg->bird_why, sizeof(lg->bird_why),
			 "BIRD answered \"%04d %.80s\" to restrict, not 0016: not serving", r->code, r->text);
		log_err("%s", lg->bird_why);
		return;
	}
	lg->restricted = true;
	snprintf(lg->bird_why, sizeof(lg->bird_why), "restricted");
	log_info("BIRD %s: access restricted (0016), serving", lg->conf->bird_socket);
}

static void on_bird_state(void *arg, bool connected, const char *why)
{
	struct lg *lg = arg;

	lg->restricted = false;
	snprintf(lg->bird_why, sizeof(lg->bird_why), "%s", why);
	if (!connected) {
		log_warn("BIRD: %s", why);
		return;
	}
	if (bird_client_send(lg->bird, "restrict", on_restrict, lg) < 0)
		snprintf(lg->bird_why, sizeof(lg->bird_why), "cannot send restrict");
}

/* ---- start, stop ---- */

int lg_start(uv_loop_t *loop, const struct lg_conf *conf, struct lg **out,
	     char *err, size_t errlen)
{
	struct http_server_opts o = {
		.handler = on_request, .methods = "GET, HEAD", .max_body = 0,
		.accept = on_accept, .suspend = true, .slot_free = slot_free,
		.keep_nul_escape = true,
	};
	struct lg *lg = calloc(1, sizeof(*lg));
	int rc;

	if (!lg) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	lg->loop = loop;
	lg->conf = conf;
	o.ctx = lg;
	snprintf(lg->bird_why, sizeof(lg->bird_why), "not connected yet");
	if (!(lg->lim = limiter_new((double)conf->rate, (double)conf->burst, LIMITER_SLOTS)) ||
	    !(lg->http = http_server_new(&o))) {
		snprintf(err, errlen, "out of memory");
		rc = -ENOMEM;
		goto fail;
	}
	for (size_t i = 0; i < conf->n_listen; i++) {
		struct http_listen hl = { .addr = conf->listen[i], .what = "listen",
					  .per_source = (unsigned)conf->per_source };

		if ((rc = http_server_listen(lg->http, loop, &hl, err, errlen)) < 0)
			goto fail;
		log_info("listening on %s", conf->listen[i]);
	}
	if ((rc = bird_client_new(loop, conf->bird_socket, conf->timeout_ms, on_bird_state, lg,
				  &lg->bird)) < 0) {
		snprintf(err, errlen, "bird.socket %s: %s", conf->bird_socket, strerror(-rc));
		goto fail;
	}
	bird_client_set_reply_max(lg->bird, conf->reply_max);
	*out = lg;
	return 0;
fail:
	if (lg->http)
		http_server_close(lg->http);
	limiter_free(lg->lim);
	free(lg);
	return rc;
}

void lg_stop(struct lg *lg)
{
	if (!lg || lg->stopping)
		return;
	lg->stopping = true;
	/* every pending entry fails; its waiters are resumed and answered */
	bird_client_close(lg->bird);
	lg->bird = NULL;
	for (struct entry *e = lg->entries; e; e = e->next)
		if (!e->done) {
			e->err = -ECANCELED;
			snprintf(e->why, sizeof(e->why), "stopping");
			entry_finish(e);
		}
	http_server_close(lg->http);
	lg->http = NULL;
	sweep(lg);
	log_info("%llu requests: %llu refused by source, %llu rate-limited, %llu bad, %llu busy; "
		 "%llu BIRD queries, %llu cache hits, %llu coalesced",
		 (unsigned long long)lg->n.requests, (unsigned long long)lg->n.refused,
		 (unsigned long long)lg->n.limited, (unsigned long long)lg->n.bad,
		 (unsigned long long)lg->n.busy, (unsigned long long)lg->n.bird_queries,
		 (unsigned long long)lg->n.cache_hits, (unsigned long long)lg->n.coalesced);
}

void lg_free(struct lg *lg)
{
	if (!lg)
		return;
	lg_stop(lg);
	limiter_free(lg->lim);
	lg_protocols_free(&lg->names);
	free(lg);
}
