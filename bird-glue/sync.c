/*
 * Make BIRD announce what healthd wants, and keep it so.
 *
 * The include file always states the desired state (BIRD reverts CLI
 * `disable` on every configure and restart, so the file is what makes a
 * withdrawal stick); `disable`/`enable` make it take effect at once,
 * without waiting for the file; a reconcile pass repairs whatever drifted.
 * Commands go out one at a time and name their protocol, so every reply is
 * matched to the table as it is when the reply comes, reloads included.
 *
 * Order of work in kick(): withdrawals first (the fastest path), then
 * enables, then the disables that finish a change of state (only once the
 * new protocol is up, so the prefix never leaves), then `configure` when
 * the set of protocols changed, then the reconcile pass.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "bird-glue/table.h"

#define SYNC_SHOW "show protocols \"healthd_*\""
#define BACKOFF_MIN_MS 1000
#define BACKOFF_MAX_MS 30000

struct unknown_proto {
	char name[sizeof(((struct bird_proto *)0)->name)];
	bool up;
	struct backoff bo;
};

struct bird_sync {
	uv_loop_t *loop;
	char *socket;
	char *include;
	char *node;
	uint64_t timeout_ms;
	uint64_t reconcile_ms;
	bool purge;
	struct bird_client *client;
	struct bird_writer *writer;
	struct sync_table t;
	struct bird_sync_cbs cbs;
	void *arg;
	uv_timer_t reconcile_timer;
	uv_timer_t retry_timer;    /* the end of the earliest back-off */
	bool render_dirty;
	bool render_failing;       /* the last write failed: retried each reconcile */
	bool cmd_busy;
	bool need_configure;
	bool verify_configure;     /* the next pass tells if BIRD loaded our file */
	bool reconcile_due;
	bool adopting;             /* inside the adopt callbacks: send nothing */
	bool unverified;           /* BIRD may have changed (configure, reconnect):
				      nothing is toggled before a pass tells */
	uint64_t down_since_ms;    /* the connection is lost since; 0 while up */
	bool settling;             /* a reload: the daemon states every service
				      before anything goes out (next loop turn) */
	uv_timer_t settle_timer;
	bool closing;
	int open_handles;
	struct backoff bo_configure, bo_show;
	char *file_text;           /* what the include file holds */
	char *refused_text;        /* what BIRD refused to load, if anything */
	char *bird_text;           /* what BIRD last loaded from it */
	struct unknown_proto *unknown;
	size_t n_unknown;
	char last_refusal[256];    /* a refusal is logged once, not per retry */
	struct bird_sync_stats stats;
};

static void kick(struct bird_sync *s);
static void on_retry(uv_timer_t *t);

static void vslog(struct bird_sync *s, int level, const char *svc, bool problem,
		  const char *fmt, va_list ap)
{
	char msg[512];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (level <= 4)
		snprintf(s->stats.last_error, sizeof(s->stats.last_error), "%.255s", msg);
	if (problem)
		snprintf(s->stats.problem, sizeof(s->stats.problem), "%.255s", msg);
	if (s->cbs.log)
		s->cbs.log(s->arg, level, svc, msg);
}

__attribute__((format(printf, 4, 5)))
static void slog(struct bird_sync *s, int level, const char *svc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vslog(s, level, svc, false, fmt, ap);
	va_end(ap);
}

/* A failure that keeps BIRD from matching: shown in status until it is
 * over; logged at `level` the first time, quietly on every retry. */
__attribute__((format(printf, 5, 6)))
static void problem(struct bird_sync *s, bool first, int level, const char *svc,
		    const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vslog(s, first ? level : 7, svc, true, fmt, ap);
	va_end(ap);
}

/* ---- back-off ---- */

static bool bo_ready(const struct bird_sync *s, const struct backoff *b)
{
	return uv_now(s->loop) >= b->until_ms;
}

/* Returns true for the first failure since the last success. */
static bool bo_fail(struct bird_sync *s, struct backoff *b)
{
	bool first = b->delay_ms == 0;
	uint64_t now = uv_now(s->loop);

	b->delay_ms = first ? BACKOFF_MIN_MS : b->delay_ms * 2;
	if (b->delay_ms > BACKOFF_MAX_MS)
		b->delay_ms = BACKOFF_MAX_MS;
	b->until_ms = now + b->delay_ms;
	if (b->delay_ms > s->stats.backoff_ms)
		s->stats.backoff_ms = b->delay_ms;
	if (!uv_is_active((uv_handle_t *)&s->retry_timer) ||
	    uv_timer_get_due_in(&s->retry_timer) > b->delay_ms)
		uv_timer_start(&s->retry_timer, on_retry, b->delay_ms, 0);
	return first;
}

static void bo_ok(struct backoff *b)
{
	b->delay_ms = b->until_ms = 0;
}

/* ---- the include file ---- */

static void start_render(struct bird_sync *s)
{
	char *text = table_render(&s->t, s->node);

	if (!text) {
		if (!s->render_failing)
			slog(s, 3, NULL, "cannot render %s: %s", s->include,
			     errno == EINVAL ? "a name or community BIRD would reject"
					     : strerror(errno));
		s->render_failing = true;
		s->render_dirty = false;
		return;
	}
	/* Never write back what BIRD refused: keep what it runs, restated. */
	if (s->refused_text && s->bird_text && table_same_config(text, s->refused_text)) {
		free(text);
		if (!(text = table_restate(&s->t, s->bird_text)))
			return;
	}
	s->render_dirty = false;
	if (s->file_text && !s->render_failing && !strcmp(text, s->file_text)) {
		free(text);
		return;
	}
	if (writer_submit(s->writer, s->include, text) < 0)
		s->render_dirty = true;
}

static void on_written(void *arg, char *text, int rc, const char *err)
{
	struct bird_sync *s = arg;

	if (rc < 0) {
		s->stats.render_errors++;
		/* logged once; the retries stay quiet until one succeeds */
		slog(s, s->render_failing ? 7 : 3, NULL,
		     "include file not written, BIRD will still be told: %s", err);
		free(text);
	} else {
		if (s->render_failing)
			slog(s, 5, NULL, "include file %s written again", s->include);
		free(s->file_text);
		s->file_text = text;
		if (!table_same_config(s->file_text, s->bird_text))
			s->need_configure = true;
	}
	s->render_failing = rc < 0;
	kick(s);
}

/* ---- commands ---- */

struct cmd {
	struct bird_sync *sync;
	enum { CMD_SHOW, CMD_CONFIGURE, CMD_TOGGLE } kind;
	bool enable;
	char name[sizeof(((struct bird_proto *)0)->name)];
	char *text;             /* configure: the file BIRD is asked to load */
};

static void free_cmd(struct cmd *c)
{
	free(c->text);
	free(c);
}

static struct unknown_proto *find_unknown(struct bird_sync *s, const char *name)
{
	for (size_t i = 0; i < s->n_unknown; i++)
		if (!strcmp(s->unknown[i].name, name))
			return &s->unknown[i];
	return NULL;
}

static size_t count_missing(const struct bird_sync *s, const char **example)
{
	size_t n = 0;

	for (size_t i = 0; i < s->t.n_protos; i++)
		if (!s->t.protos[i].leaving && s->t.protos[i].bird == B_MISSING) {
			if (!n)
				*example = s->t.protos[i].name;
			n++;
		}
	return n;
}

/* Up, or on its way up: enabled, as far as enable/disable go. */
static bool proto_enabled(const struct bird_proto *row)
{
	return row->state == BIRD_PROTO_UP || row->state == BIRD_PROTO_START;
}

/* Rows BIRD listed that no service owns: kept for status and purge. */
static void note_unknown(struct bird_sync *s, const struct bird_proto *rows, size_t n)
{
	struct unknown_proto *u = NULL;
	size_t k = 0;

	for (size_t i = 0; i < n; i++)
		k += !table_proto(&s->t, rows[i].name);
	if (k && !(u = calloc(k, sizeof(*u))))
		return;
	k = 0;
	for (size_t i = 0; i < n; i++) {
		const struct unknown_proto *was;

		if (table_proto(&s->t, rows[i].name))
			continue;
		snprintf(u[k].name, sizeof(u[k].name), "%s", rows[i].name);
		u[k].up = proto_enabled(&rows[i]);
		if ((was = find_unknown(s, rows[i].name)))
			u[k].bo = was->bo;
		else
			slog(s, 4, NULL, "BIRD runs %s, which no configured service owns (%s)%s",
			     u[k].name, u[k].up ? "up" : "down",
			     s->purge && u[k].up ? ": disabling it (bird.purge)" : "");
		k++;
	}
	free(s->unknown);
	s->unknown = u;
	s->n_unknown = k;
	s->stats.unknown = k;
}

static void adopt_all(struct bird_sync *s)
{
	s->adopting = true;
	for (size_t i = 0; i < s->t.n_svcs; i++) {
		const struct sync_svc *v = &s->t.svcs[i];
		bool exists = true, announced = true, any = false;
		int variant = CFG_COMM_UP;

		for (int f = 0; f < 2; f++) {
			bool up = false, used = false;

			for (int k = 0; k < CFG_COMM_SETS; k++) {
				int idx = v->proto[f][k];

				if (idx < 0)
					continue;
				used = true;
				exists &= s->t.protos[idx].bird != B_MISSING;
				if (s->t.protos[idx].bird == B_UP && !up) {
					up = true;
					if (k != CFG_COMM_UP)
						variant = k;
				}
			}
			if (used) {
				announced &= up;
				any = true;
			}
		}
		if (s->cbs.adopt)
			s->cbs.adopt(s->arg, v->name, exists && any, announced && any, variant);
	}
	s->adopting = false;
	s->render_dirty = true;   /* the file in this version's words */
}

static void on_show(struct bird_sync *s, const struct bird_reply *r)
{
	struct bird_proto *rows = calloc(r->n_lines + 1, sizeof(*rows));
	int n = rows ? bird_parse_protocols(r, rows, r->n_lines, NULL) : -ENOMEM;
	const char *example = NULL;

	if (n < 0) {
		bool first = bo_fail(s, &s->bo_show);

		s->stats.command_errors++;
		problem(s, first, 4, NULL, "BIRD's reply to %s not usable (%04d %s): retrying in %llu s",
			SYNC_SHOW, r->code, r->text, (unsigned long long)s->bo_show.delay_ms / 1000);
		s->reconcile_due = true;
		free(rows);
		return;
	}
	bo_ok(&s->bo_show);
	enum bstate *now = malloc((s->t.n_protos + 1) * sizeof(*now));
	if (!now) {
		free(rows);
		return;
	}
	for (size_t i = 0; i < s->t.n_protos; i++)
		now[i] = B_MISSING;
	for (int k = 0; k < n; k++) {
		struct sync_proto *p = table_proto(&s->t, rows[k].name);

		if (p)
			now[p - s->t.protos] = proto_enabled(&rows[k]) ? B_UP : B_DOWN;
	}
	note_unknown(s, rows, (size_t)n);
	free(rows);
	for (size_t i = 0; i < s->t.n_protos; i++) {
		struct sync_proto *p = &s->t.protos[i];

		if (s->stats.adopted && !s->unverified && now[i] != B_MISSING && p->bird != B_UNKNOWN &&
		    now[i] != p->bird && (now[i] == B_UP) != p->want) {
			s->stats.repairs++;
			slog(s, 4, p->svc, "%s is %s in BIRD but should be %s: repairing", p->name,
			     now[i] == B_UP ? "up" : "down", p->want ? "up" : "disabled");
		}
		if (p->leaving && now[i] != B_UP && p->bird != now[i])
			s->render_dirty = true;    /* it may leave the file now */
		p->bird = now[i];
	}
	free(now);
	s->unverified = false;
	table_drop_gone(&s->t);
	s->stats.protocols = s->t.n_protos;
	if (!s->stats.adopted) {
		s->stats.adopted = true;
		adopt_all(s);
	}
	size_t missing = count_missing(s, &example);
	if (!missing) {
		if (s->bo_configure.delay_ms && !s->last_refusal[0])
			slog(s, 5, NULL, "BIRD runs every protocol of %s again", s->include);
		if (!s->last_refusal[0])
			bo_ok(&s->bo_configure);
	} else if (s->verify_configure) {
		/* BIRD took the configure, yet lacks what the file defines. */
		bool first = bo_fail(s, &s->bo_configure);

		problem(s, first, 3, NULL,
			"BIRD does not run %zu of healthd's protocols (%s) after configure: "
			"does bird.conf include %s, and is that the file healthd writes? "
			"retrying in %llu s", missing, example, s->include,
			(unsigned long long)s->bo_configure.delay_ms / 1000);
	}
	if (missing)
		s->need_configure = true;
	s->verify_configure = false;
}

static void on_configure(struct bird_sync *s, struct cmd *c, const struct bird_reply *r)
{
	if (bird_code_ok(r->code)) {
		free(s->bird_text);
		s->bird_text = c->text;
		c->text = NULL;
		s->need_configure = !table_same_config(s->file_text, s->bird_text);
		s->last_refusal[0] = '\0';
		/* What the new config made is learnt from the pass below; till
		 * then status keeps what BIRD last told. */
		s->unverified = true;
		s->verify_configure = true;
		s->reconcile_due = true;
		slog(s, 6, NULL, "BIRD reconfigured (%04d %s)", r->code, r->text);
		return;
	}
	s->stats.command_errors++;
	bool first = bo_fail(s, &s->bo_configure) || strncmp(s->last_refusal, r->text,
							       sizeof(s->last_refusal) - 1);
	snprintf(s->last_refusal, sizeof(s->last_refusal), "%s", r->text);
	problem(s, first, 3, NULL, "BIRD refused configure, retrying in %llu s: %04d %s",
		(unsigned long long)s->bo_configure.delay_ms / 1000, r->code, r->text);
	/* The refusal names our file: put back what BIRD runs. */
	if (strstr(r->text, s->include) && c->text && s->bird_text) {
		free(s->refused_text);
		s->refused_text = c->text;
		c->text = NULL;
		s->render_dirty = true;
		if (first)
			slog(s, 3, NULL, "%s restored to the last version BIRD accepted",
			     s->include);
	}
}

static void on_toggle(struct bird_sync *s, struct cmd *c, const struct bird_reply *r)
{
	struct sync_proto *p = table_proto(&s->t, c->name);
	struct unknown_proto *u = p ? NULL : find_unknown(s, c->name);
	struct backoff *bo = p ? &p->bo : u ? &u->bo : NULL;
	/* "0009-NAME: disabled" then "0000": the first block tells. */
	int code = r->n_lines ? r->lines[0].code : r->code;

	if (!bo)
		return;         /* left the table meanwhile */
	if (code >= 8 && code <= 11) {
		bool up = code == 10 || code == 11;

		bo_ok(bo);
		if (u) {
			u->up = up;
			s->stats.purged += code == 9;   /* not "0008 already disabled" */
		} else {
			if (p->leaving && !up)
				s->render_dirty = true;
			p->bird = up ? B_UP : B_DOWN;
		}
		slog(s, 6, p ? p->svc : NULL, "BIRD: %s", r->lines[0].text);
		return;
	}
	if (code == 8003) {
		if (p) {
			p->bird = B_MISSING;
			s->need_configure |= !p->leaving;
		} else {
			u->up = false;
		}
		return;
	}
	s->stats.command_errors++;
	bool first = bo_fail(s, bo);
	problem(s, first, 3, p ? p->svc : NULL, "BIRD refused %s %s, retrying in %llu s: %04d %s",
		c->enable ? "enable" : "disable", c->name,
		(unsigned long long)bo->delay_ms / 1000, r->code, r->text);
}

static void on_reply(void *arg, int err, const struct bird_reply *r)
{
	struct cmd *c = arg;
	struct bird_sync *s = c->sync;

	if (err == -ECANCELED) {
		free_cmd(c);
		return;
	}
	s->cmd_busy = false;
	if (err < 0) {
		s->stats.command_errors++;
		if (err != -ENOTCONN)
			slog(s, 4, NULL, "BIRD command failed: %s", strerror(-err));
		if (c->kind == CMD_TOGGLE) {
			struct sync_proto *p = table_proto(&s->t, c->name);

			if (p)
				p->bird = B_UNKNOWN;
		}
		if (c->kind == CMD_SHOW)
			s->reconcile_due = true;
		/* a configure that makes BIRD time out or drop us is not the
		 * first thing sent after every reconnect */
		if (c->kind == CMD_CONFIGURE)
			bo_fail(s, &s->bo_configure);
		free_cmd(c);
		return;   /* the state callback or the reconcile timer kicks again */
	}
	switch (c->kind) {
	case CMD_SHOW:
		on_show(s, r);
		break;
	case CMD_CONFIGURE:
		on_configure(s, c, r);
		break;
	case CMD_TOGGLE:
		on_toggle(s, c, r);
		break;
	}
	free_cmd(c);
	kick(s);
}

static bool send_cmd(struct bird_sync *s, int kind, const char *name, bool enable)
{
	struct cmd *c = calloc(1, sizeof(*c));
	char line[sizeof(((struct bird_proto *)0)->name) + 16];

	if (!c)
		return false;
	c->sync = s;
	c->kind = kind;
	c->enable = enable;
	if (kind == CMD_TOGGLE) {
		snprintf(c->name, sizeof(c->name), "%s", name);
		snprintf(line, sizeof(line), "%s \"%s\"", enable ? "enable" : "disable", name);
	} else if (kind == CMD_CONFIGURE) {
		c->text = s->file_text ? strdup(s->file_text) : NULL;
		s->stats.configures++;
		snprintf(line, sizeof(line), "configure");
	} else {
		s->reconcile_due = false;
		snprintf(line, sizeof(line), "%s", SYNC_SHOW);
	}
	s->cmd_busy = true;
	s->stats.commands++;
	if (bird_client_send(s->client, line, on_reply, c) < 0) {
		s->cmd_busy = false;
		free_cmd(c);
		return false;
	}
	return true;
}

/* urgent: withdrawals (the service is not announced, or the protocol is
 * not ours any more); else the disables that end a change of state, once
 * the protocol that replaces it is up. */
static bool next_disable(struct bird_sync *s, bool urgent)
{
	for (size_t i = 0; i < s->t.n_protos; i++) {
		struct sync_proto *p = &s->t.protos[i];
		const struct sync_svc *v;

		if (p->bird != B_UP || p->want || !bo_ready(s, &p->bo) || table_holding(&s->t, p))
			continue;
		v = p->leaving ? NULL : table_svc(&s->t, p->svc);
		if (urgent != (!v || !v->announce)) {
			const struct sync_proto *w = v ? table_wanted(&s->t, v, p->family == AF_INET6) : NULL;

			if (urgent || !w || w->bird != B_UP)
				continue;
		}
		return send_cmd(s, CMD_TOGGLE, p->name, false);
	}
	for (size_t i = 0; urgent && s->purge && i < s->n_unknown; i++)
		if (s->unknown[i].up && bo_ready(s, &s->unknown[i].bo))
			return send_cmd(s, CMD_TOGGLE, s->unknown[i].name, false);
	return false;
}

static bool next_enable(struct bird_sync *s)
{
	for (size_t i = 0; i < s->t.n_protos; i++) {
		struct sync_proto *p = &s->t.protos[i];

		if (p->want && p->bird == B_DOWN && bo_ready(s, &p->bo))
			return send_cmd(s, CMD_TOGGLE, p->name, true);
	}
	return false;
}

static void check_settled(struct bird_sync *s)
{
	if (s->stats.problem[0] && bird_sync_idle(s)) {
		slog(s, 5, NULL, "BIRD matches the desired state again (was: %.200s)",
		     s->stats.problem);
		s->stats.problem[0] = '\0';
		s->stats.backoff_ms = 0;
	}
}

static void kick(struct bird_sync *s)
{
	if (s->closing || s->adopting || s->settling)
		return;
	if (s->render_dirty && !writer_busy(s->writer))
		start_render(s);
	if (!bird_client_connected(s->client) || s->cmd_busy)
		return;
	if (!s->stats.adopted || s->unverified) {
		if (bo_ready(s, &s->bo_show))
			send_cmd(s, CMD_SHOW, NULL, false);
		return;
	}
	if (next_disable(s, true) || next_enable(s) || next_disable(s, false))
		return;
	/* configure loads the file: only once it states what we want */
	if (s->need_configure && bo_ready(s, &s->bo_configure) && !s->render_dirty &&
	    !s->render_failing && !writer_busy(s->writer)) {
		send_cmd(s, CMD_CONFIGURE, NULL, false);
		return;
	}
	if (s->reconcile_due && bo_ready(s, &s->bo_show)) {
		send_cmd(s, CMD_SHOW, NULL, false);
		return;
	}
	check_settled(s);
}

static void earlier(uint64_t *due, const struct backoff *b, uint64_t now)
{
	if (b->until_ms > now && (!*due || b->until_ms < *due))
		*due = b->until_ms;
}

/* The earliest back-off still in force, so that none waits for a
 * reconcile pass to be retried. */
static void rearm_retry(struct bird_sync *s)
{
	uint64_t now = uv_now(s->loop), due = 0;

	earlier(&due, &s->bo_configure, now);
	earlier(&due, &s->bo_show, now);
	for (size_t i = 0; i < s->t.n_protos; i++)
		earlier(&due, &s->t.protos[i].bo, now);
	for (size_t i = 0; i < s->n_unknown; i++)
		earlier(&due, &s->unknown[i].bo, now);
	if (due)
		uv_timer_start(&s->retry_timer, on_retry, due - now, 0);
}

static void on_retry(uv_timer_t *t)
{
	struct bird_sync *s = t->data;

	kick(s);
	if (!s->closing)
		rearm_retry(s);
}

static void on_settled(uv_timer_t *t)
{
	struct bird_sync *s = t->data;

	s->settling = false;
	kick(s);
}

static void on_reconcile(uv_timer_t *t)
{
	struct bird_sync *s = t->data;

	s->reconcile_due = true;
	/* a stale file would undo the state at BIRD's next configure or restart */
	if (s->render_failing)
		s->render_dirty = true;
	kick(s);
}

static void on_state(void *arg, bool connected, const char *why)
{
	struct bird_sync *s = arg;

	s->stats.connected = connected;
	if (connected) {
		slog(s, 5, NULL, "connected to BIRD at %s", s->socket);
		s->reconcile_due = true;
		s->down_since_ms = 0;
	} else {
		slog(s, 4, NULL, "BIRD unreachable: %s", why ? why : "connection lost");
		s->unverified = true;
		if (!s->down_since_ms)
			s->down_since_ms = uv_now(s->loop);
	}
	kick(s);
}

/* ---- life cycle ---- */

static int copy_settings(struct bird_sync *s, const struct config *cfg)
{
	char *sock = strdup(cfg->bird.socket), *inc = strdup(cfg->bird.include);
	char *node = strdup(cfg->node ? cfg->node : "");

	if (!sock || !inc || !node) {
		free(sock);
		free(inc);
		free(node);
		return -ENOMEM;
	}
	free(s->socket);
	free(s->include);
	free(s->node);
	s->socket = sock;
	s->include = inc;
	s->node = node;
	s->timeout_ms = cfg->bird.timeout_ms;
	s->reconcile_ms = cfg->bird.reconcile_ms;
	s->purge = cfg->bird.purge;
	return 0;
}

/* text: the include file as it is now, read once by the caller. */
static int swap_table(struct bird_sync *s, const struct config *cfg, const char *text)
{
	struct sync_table t;
	bool lacks;

	if (table_build(&t, &s->t, cfg, text, &lacks) < 0)
		return -ENOMEM;
	table_free(&s->t);
	s->t = t;
	s->stats.protocols = t.n_protos;
	s->render_dirty = true;
	/* a protocol the new config owns is no longer unknown */
	size_t k = 0;
	for (size_t i = 0; i < s->n_unknown; i++)
		if (!table_proto(&s->t, s->unknown[i].name))
			s->unknown[k++] = s->unknown[i];
	s->n_unknown = s->stats.unknown = k;
	return 0;
}

int bird_sync_new(uv_loop_t *loop, const struct config *cfg,
		  const struct bird_sync_cbs *cbs, void *arg,
		  struct bird_sync **out)
{
	struct bird_sync *s = calloc(1, sizeof(*s));
	int rc = -ENOMEM;

	if (!s)
		return -ENOMEM;
	s->loop = loop;
	s->cbs = *cbs;
	s->arg = arg;
	if (copy_settings(s, cfg) < 0)
		goto fail;
	/* BIRD is taken to have loaded the file as it is now. */
	if (table_read_file(s->include, &s->file_text) < 0 && !(s->file_text = strdup("")))
		goto fail;
	if (!(s->bird_text = strdup(s->file_text)) || swap_table(s, cfg, s->file_text) < 0 ||
	    table_seed_leaving(&s->t, s->file_text) < 0)
		goto fail;
	if ((rc = writer_new(loop, on_written, s, &s->writer)) < 0)
		goto fail;
	uv_timer_init(loop, &s->reconcile_timer);
	uv_timer_init(loop, &s->retry_timer);
	uv_timer_init(loop, &s->settle_timer);
	s->reconcile_timer.data = s->retry_timer.data = s->settle_timer.data = s;
	s->open_handles = 3;
	rc = bird_client_new(loop, s->socket, s->timeout_ms, on_state, s, &s->client);
	if (rc < 0) {
		bird_sync_close(s);
		return rc;
	}
	uv_timer_start(&s->reconcile_timer, on_reconcile, s->reconcile_ms, s->reconcile_ms);
	kick(s);
	*out = s;
	return 0;
fail:
	table_free(&s->t);
	free(s->file_text);
	free(s->bird_text);
	free(s->socket);
	free(s->include);
	free(s->node);
	free(s);
	return rc;
}

void bird_sync_reconfig(struct bird_sync *s, const struct config *cfg)
{
	bool new_socket = strcmp(s->socket, cfg->bird.socket) != 0;
	bool new_include = strcmp(s->include, cfg->bird.include) != 0;
	char *text = NULL;
	int rc = copy_settings(s, cfg);

	if (rc == 0 && table_read_file(s->include, &text) < 0)
		text = strdup("");      /* unreadable: new services start withdrawn */
	if (rc < 0 || !text || swap_table(s, cfg, text) < 0) {
		free(text);
		slog(s, 3, NULL, "reload: out of memory, BIRD settings unchanged");
		return;
	}
	if (new_include) {
		/* the new file holds what it holds, not what the old one did */
		free(s->file_text);
		s->file_text = text;
	} else {
		free(text);
	}
	if (new_socket) {
		bird_client_close(s->client);
		s->client = NULL;
		s->cmd_busy = false;
		s->stats.connected = false;
		s->unverified = true;
		if (bird_client_new(s->loop, s->socket, s->timeout_ms, on_state, s,
				    &s->client) < 0) {
			slog(s, 3, NULL, "cannot create a BIRD client for %s", s->socket);
			return;
		}
	}
	uv_timer_start(&s->reconcile_timer, on_reconcile, s->reconcile_ms, s->reconcile_ms);
	free(s->refused_text);      /* a new config deserves a new try */
	s->refused_text = NULL;
	s->last_refusal[0] = '\0';
	bo_ok(&s->bo_configure);
	s->reconcile_due = true;
	/* A renamed service's new protocols must be wanted before the old
	 * ones are disabled: the daemon sets every service right after this. */
	s->settling = true;
	uv_timer_start(&s->settle_timer, on_settled, 0, 0);
}

void bird_sync_set(struct bird_sync *s, const char *service, bool announce,
		   int variant, const char *state)
{
	struct sync_svc *v = table_svc(&s->t, service);

	if (!v || variant < 0 || variant >= CFG_COMM_SETS)
		return;
	if (announce == v->announce && variant == v->variant && !strcmp(state, v->state))
		return;
	v->announce = announce;
	v->variant = variant;
	snprintf(v->state, sizeof(v->state), "%s", state);
	for (int f = 0; f < 2; f++) {
		const struct sync_proto *w = table_wanted(&s->t, v, f);

		for (int k = 0; k < CFG_COMM_SETS; k++)
			if (v->proto[f][k] >= 0)
				s->t.protos[v->proto[f][k]].want =
					announce && &s->t.protos[v->proto[f][k]] == w;
	}
	s->render_dirty = true;
	kick(s);
}

void bird_sync_stats(const struct bird_sync *s, struct bird_sync_stats *out)
{
	*out = s->stats;
	out->connected = s->client && bird_client_connected(s->client);
}

bool bird_sync_idle(const struct bird_sync *s)
{
	if (!s->stats.adopted || s->unverified || s->cmd_busy || s->need_configure ||
	    s->render_dirty || writer_busy(s->writer))
		return false;
	for (size_t i = 0; i < s->t.n_protos; i++) {
		const struct sync_proto *p = &s->t.protos[i];

		if (p->leaving || p->bird == B_UNKNOWN || p->bird == B_MISSING ||
		    (p->bird == B_UP) != p->want)
			return false;
	}
	for (size_t i = 0; s->purge && i < s->n_unknown; i++)
		if (s->unknown[i].up)
			return false;
	return true;
}

size_t bird_sync_protocols(const struct bird_sync *s, const char *service,
			   struct bird_proto_view *out, size_t max)
{
	static const char *const words[] = { "up", "degraded", "draining" };
	size_t n = 0;

	for (size_t i = 0; i < s->t.n_protos; i++) {
		const struct sync_proto *p = &s->t.protos[i];

		if (strcmp(p->svc, service))
			continue;
		if (n < max) {
			snprintf(out[n].name, sizeof(out[n].name), "%s", p->name);
			out[n].variant = words[p->variant];
			out[n].want = p->want;
			out[n].leaving = p->leaving;
			out[n].bird = bstate_str(p->bird);
		}
		n++;
	}
	return n;
}

bool bird_sync_announcing(const struct bird_sync *s, const char *service,
			  char *why, size_t len)
{
	const struct sync_svc *v = table_svc(&s->t, service);

	if (!v) {
		snprintf(why, len, "not configured");
		return false;
	}
	/* A connection dropped for a moment (a timed-out command) says
	 * nothing of what BIRD announces; one lost for longer does. */
	if (s->down_since_ms && uv_now(s->loop) - s->down_since_ms >= s->timeout_ms) {
		snprintf(why, len, "BIRD unreachable");
		return false;
	}
	for (int f = 0; f < 2; f++) {
		const struct sync_proto *w = table_wanted(&s->t, v, f);

		if (w && !table_family_up(&s->t, v, f)) {
			snprintf(why, len, "BIRD does not run %s (%s)", w->name, bstate_str(w->bird));
			return false;
		}
	}
	return true;
}

const char *bird_sync_unknown(const struct bird_sync *s, size_t i, bool *up)
{
	if (i >= s->n_unknown)
		return NULL;
	if (up)
		*up = s->unknown[i].up;
	return s->unknown[i].name;
}

static void maybe_free(struct bird_sync *s)
{
	if (s->open_handles > 0)
		return;
	table_free(&s->t);
	free(s->unknown);
	free(s->socket);
	free(s->include);
	free(s->node);
	free(s->file_text);
	free(s->bird_text);
	free(s->refused_text);
	free(s);
}

static void on_timer_closed(uv_handle_t *h)
{
	struct bird_sync *s = h->data;

	s->open_handles--;
	maybe_free(s);
}

void bird_sync_close(struct bird_sync *s)
{
	s->closing = true;
	if (s->client)
		bird_client_close(s->client);
	s->client = NULL;
	writer_close(s->writer);
	s->writer = NULL;
	uv_close((uv_handle_t *)&s->reconcile_timer, on_timer_closed);
	uv_close((uv_handle_t *)&s->retry_timer, on_timer_closed);
	uv_close((uv_handle_t *)&s->settle_timer, on_timer_closed);
}

/* ---- reading back what we wrote ---- */

int bird_sync_file_state(const char *include_path, const char *service,
			 char *state, size_t len)
{
	char *text;
	int rc = table_read_file(include_path, &text);

	if (rc < 0)
		return rc;
	rc = table_state_in(text, service, state, len);
	free(text);
	return rc;
}
