/*
 * Make BIRD announce what healthd wants, and keep it so.
 *
 * The include file always states the desired state (BIRD reverts CLI
 * `disable` on every configure and restart, so the file is what makes a
 * withdrawal stick); `disable`/`enable` make it take effect at once; a
 * reconcile pass repairs whatever drifted. Commands go out one at a time
 * so every reply is matched to what we believe BIRD has.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bird-glue/bird.h"

#define SYNC_BATCH_MS 20   /* community changes this close go out as one configure */
#define SYNC_MAX_COMMS 64

enum bstate { B_UNKNOWN = -1, B_MISSING = 0, B_DOWN = 1, B_UP = 2 };

struct sync_static {
	char name[96];
	int family;
	bool used;                 /* the service has prefixes of this family */
	enum bstate bird;          /* what we believe BIRD has */
};

struct sync_svc {
	char name[CFG_NAME_MAX];
	const struct cfg_service *cfg;
	bool announce;
	char state[16];
	struct cfg_community comms[SYNC_MAX_COMMS];
	size_t n_comms;
	uint64_t gen;              /* desired generation */
	uint64_t file_gen;         /* generation the file holds (or failed to) */
	struct sync_static st[2];
};

struct render_job {
	uv_work_t req;
	struct bird_sync *sync;
	char *path;
	char *text;
	uint64_t gen;
	int rc;
	char err[256];
};

struct bird_sync {
	uv_loop_t *loop;
	char *socket;
	char *include;
	char *node;
	uint64_t timeout_ms;
	uint64_t reconcile_ms;
	struct bird_client *client;
	struct sync_svc *svcs;
	size_t n_svcs;
	struct bird_sync_cbs cbs;
	void *arg;
	uv_timer_t reconcile_timer;
	uv_timer_t batch_timer;
	uint64_t gen;
	bool render_busy;
	bool render_dirty;
	bool render_failing;       /* the last write failed: retried each reconcile */
	bool cmd_busy;
	bool need_configure;
	bool configure_held;       /* BIRD refused: wait for the next reconcile */
	bool batch_armed;
	bool reconcile_due;
	bool closing;
	int open_handles;
	char *file_text;           /* what the include file holds */
	char *refused_text;        /* what BIRD refused to load, if anything */
	char *bird_text;           /* what BIRD last loaded from it */
	struct bird_sync_stats stats;
};

static void kick(struct bird_sync *s);

static void slog(struct bird_sync *s, int level, const char *svc, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void slog(struct bird_sync *s, int level, const char *svc, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (level <= 4)
		snprintf(s->stats.last_error, sizeof(s->stats.last_error), "%.255s", msg);
	if (s->cbs.log)
		s->cbs.log(s->arg, level, svc, msg);
}

/* ---- the include file, written on the thread pool ---- */

/* Lines that `disable`/`enable` already took care of. */
static bool runtime_only(const char *line, size_t len)
{
	return memmem(line, len, "disabled yes;", 13) || memmem(line, len, "# healthd-state:", 16) ||
	       (len && line[0] == '#');
}

static const char *next_line(const char *p, size_t *len)
{
	while (*p) {
		const char *nl = strchr(p, '\n');
		size_t l = nl ? (size_t)(nl - p) : strlen(p);

		if (!runtime_only(p, l)) {
			*len = l;
			return p;
		}
		p += l + (nl ? 1 : 0);
	}
	*len = 0;
	return p;
}

/* Equal but for what is runtime state: then no `configure` is needed. */
static bool same_config(const char *a, const char *b)
{
	if (!a || !b)
		return false;
	for (;;) {
		size_t la, lb;

		a = next_line(a, &la);
		b = next_line(b, &lb);
		if (!*a || !*b)
			return !*a && !*b;
		if (la != lb || memcmp(a, b, la))
			return false;
		a += la + (a[la] ? 1 : 0);
		b += lb + (b[lb] ? 1 : 0);
	}
}

/* The whole file; "" when it does not exist. 0 or -errno. */
static int read_file(const char *path, char **out)
{
	FILE *f = fopen(path, "re"), *m;
	char chunk[4096];
	size_t n, len = 0;

	*out = NULL;
	if (!f) {
		if (errno != ENOENT)
			return -errno;
		*out = strdup("");
		return *out ? 0 : -ENOMEM;
	}
	m = open_memstream(out, &len);
	while (m && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		fwrite(chunk, 1, n, m);
	if (m)
		fclose(m);
	fclose(f);
	return *out ? 0 : -ENOMEM;
}

/* The state word healthd wrote for SERVICE into TEXT: 1 when found. */
static int state_in(const char *text, const char *service, char *state, size_t len)
{
	char head[160];

	for (int fam = 4; fam <= 6; fam += 2) {
		snprintf(head, sizeof(head), "protocol static healthd_%s_v%d ", service, fam);
		const char *p = strstr(text, head);
		if (!p)
			continue;
		const char *end = strstr(p + 1, "\nprotocol ");
		const char *st = strstr(p, "# healthd-state: ");
		if (!st || (end && st > end))
			continue;
		st += strlen("# healthd-state: ");
		snprintf(state, len, "%.*s", (int)strcspn(st, " \t\r\n"), st);
		return 1;
	}
	return 0;
}

static void render_work(uv_work_t *req)
{
	struct render_job *j = req->data;

	j->rc = bird_write_atomic(j->path, j->text, j->err, sizeof(j->err));
}

static void maybe_free(struct bird_sync *s);

static void render_done(uv_work_t *req, int status)
{
	struct render_job *j = req->data;
	struct bird_sync *s = j->sync;

	s->render_busy = false;
	if (!s->closing) {
		if (status < 0)
			slog(s, 3, NULL, "writing %s: %s", j->path, uv_strerror(status));
		else if (j->rc < 0) {
			s->stats.render_errors++;
			/* logged once; the retries stay quiet until one succeeds */
			slog(s, s->render_failing ? 7 : 3, NULL,
			     "include file not written, BIRD will still be told: %s", j->err);
		} else if (s->render_failing) {
			slog(s, 5, NULL, "include file %s written again", j->path);
		}
		s->render_failing = status < 0 || j->rc < 0;
		/* Even a failed write releases the commands: the withdrawal must
		 * still reach BIRD over the socket. */
		for (size_t i = 0; i < s->n_svcs; i++)
			if (s->svcs[i].gen <= j->gen)
				s->svcs[i].file_gen = s->svcs[i].gen;
		if (status == 0 && j->rc == 0) {
			free(s->file_text);
			s->file_text = j->text;
			j->text = NULL;
			if (!same_config(s->file_text, s->bird_text))
				s->need_configure = true;
		}
	}
	free(j->path);
	free(j->text);
	free(j);
	if (s->closing)
		maybe_free(s);
	else
		kick(s);
}

static struct sync_svc *find_static(struct bird_sync *s, const char *name, size_t len)
{
	for (size_t i = 0; i < s->n_svcs; i++)
		for (int f = 0; f < 2; f++)
			if (strlen(s->svcs[i].st[f].name) == len &&
			    !strncmp(s->svcs[i].st[f].name, name, len))
				return &s->svcs[i];
	return NULL;
}

/* TEXT (what BIRD last accepted) with today's `disabled` and state lines:
 * the file to keep while BIRD refuses what we would write. */
static char *restate(struct bird_sync *s, const char *text)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	const char *p = text;

	if (!f)
		return NULL;
	while (*p) {
		const char *nl = strchr(p, '\n');
		size_t l = nl ? (size_t)(nl - p) + 1 : strlen(p);

		if (!memmem(p, l, "disabled yes;", 13) && !memmem(p, l, "# healthd-state:", 16))
			fwrite(p, 1, l, f);
		if (l > 16 && !strncmp(p, "protocol static ", 16)) {
			const char *name = p + 16;
			struct sync_svc *v = find_static(s, name, strcspn(name, " {\n"));

			if (v)
				fprintf(f, "\t# healthd-state: %s\n%s", v->state,
					v->announce ? "" : "\tdisabled yes;\n");
		}
		p += l;
	}
	fclose(f);
	return out;
}

static void start_render(struct bird_sync *s)
{
	struct bird_static st[2 * (s->n_svcs ? s->n_svcs : 1)];
	struct cfg_communities comms[s->n_svcs ? s->n_svcs : 1];
	size_t n = 0;

	for (size_t i = 0; i < s->n_svcs; i++) {
		struct sync_svc *v = &s->svcs[i];

		comms[i].items = v->comms;
		comms[i].n = v->n_comms;
		for (int f = 0; f < 2; f++) {
			if (!v->st[f].used)
				continue;
			memset(&st[n], 0, sizeof(st[n]));
			snprintf(st[n].name, sizeof(st[n].name), "%s", v->st[f].name);
			st[n].family = v->st[f].family;
			st[n].prefixes = v->cfg->prefixes;
			st[n].n_prefixes = v->cfg->n_prefixes;
			st[n].communities = &comms[i];
			st[n].disabled = !v->announce;
			st[n].state = v->state;
			n++;
		}
	}
	struct render_job *j = calloc(1, sizeof(*j));
	if (!j)
		return;
	j->sync = s;
	j->gen = s->gen;
	j->path = strdup(s->include);
	j->text = bird_render_text(st, n, s->node);
	/* Never write back what BIRD refused: keep what it runs, restated. */
	if (j->text && s->refused_text && s->bird_text &&
	    same_config(j->text, s->refused_text)) {
		free(j->text);
		j->text = restate(s, s->bird_text);
	}
	j->req.data = j;
	if (!j->path || !j->text ||
	    uv_queue_work(s->loop, &j->req, render_work, render_done) < 0) {
		slog(s, 3, NULL, "cannot render %s: %s", s->include,
		     errno == EINVAL ? "a name or community BIRD would reject" : strerror(errno));
		free(j->path);
		free(j->text);
		free(j);
		return;
	}
	s->render_dirty = false;
	s->render_busy = true;
}

/* ---- commands ---- */

struct cmd {
	struct bird_sync *sync;
	enum { CMD_SHOW, CMD_CONFIGURE, CMD_TOGGLE } kind;
	struct sync_svc *svc;
	int fam;
	bool enable;
	char *text;             /* configure: the file BIRD is asked to load */
};

static void send_cmd(struct bird_sync *s, struct cmd *c, const char *text);

static void free_cmd(struct cmd *c)
{
	free(c->text);
	free(c);
}

static bool svc_written(const struct sync_svc *v)
{
	return v->file_gen >= v->gen;
}

static void on_show(struct bird_sync *s, const struct bird_reply *r)
{
	struct bird_proto rows[256];
	size_t total = 0;
	int n = bird_parse_protocols(r, rows, 256, &total);

	if (n < 0) {
		slog(s, 4, NULL, "BIRD's reply to show protocols not understood (code %d: %s)",
		     r->code, r->text);
		return;
	}
	for (size_t i = 0; i < s->n_svcs; i++) {
		struct sync_svc *v = &s->svcs[i];
		bool exists = true, up = true;

		for (int f = 0; f < 2; f++) {
			struct sync_static *t = &v->st[f];
			enum bstate now = B_MISSING;

			if (!t->used)
				continue;
			for (int k = 0; k < n; k++)
				if (!strcmp(rows[k].name, t->name))
					now = rows[k].state == BIRD_PROTO_UP ? B_UP : B_DOWN;
			exists &= now != B_MISSING;
			up &= now == B_UP;
			if (s->stats.adopted && now != B_MISSING && t->bird != B_UNKNOWN &&
			    now != t->bird && (now == B_UP) != v->announce) {
				s->stats.repairs++;
				slog(s, 4, v->name, "%s is %s in BIRD but should be %s: repairing",
				     t->name, now == B_UP ? "up" : "down",
				     v->announce ? "up" : "disabled");
			}
			if (now == B_MISSING && s->stats.adopted)
				s->need_configure = true;
			t->bird = now;
		}
		if (!s->stats.adopted && s->cbs.adopt)
			s->cbs.adopt(s->arg, v->name, exists, exists && up);
	}
	if (!s->stats.adopted) {
		s->stats.adopted = true;
		s->render_dirty = true;   /* the file in this version's words */
		for (size_t i = 0; i < s->n_svcs; i++)
			for (int f = 0; f < 2; f++)
				if (s->svcs[i].st[f].used && s->svcs[i].st[f].bird == B_MISSING)
					s->need_configure = true;
	}
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
			slog(s, 4, c->svc ? c->svc->name : NULL, "BIRD command failed: %s",
			     strerror(-err));
		if (c->kind == CMD_TOGGLE)
			c->svc->st[c->fam].bird = B_UNKNOWN;
		if (c->kind == CMD_SHOW)
			s->reconcile_due = true;
		free_cmd(c);
		return;   /* the state callback or the reconcile timer kicks again */
	}
	switch (c->kind) {
	case CMD_SHOW:
		on_show(s, r);
		break;
	case CMD_CONFIGURE:
		if (bird_code_ok(r->code)) {
			s->need_configure = false;
			free(s->bird_text);
			s->bird_text = c->text;
			c->text = NULL;
			/* BIRD now runs the file, whose `disabled` lines match the
			 * desired states; the reconcile below checks it. */
			for (size_t i = 0; i < s->n_svcs; i++)
				for (int f = 0; f < 2; f++)
					if (s->svcs[i].st[f].used)
						s->svcs[i].st[f].bird = s->svcs[i].announce ? B_UP : B_DOWN;
			s->reconcile_due = true;    /* learn what the new config made */
			slog(s, 6, NULL, "BIRD reconfigured (%04d %s)", r->code, r->text);
		} else {
			s->stats.command_errors++;
			s->configure_held = true;
			slog(s, 3, NULL, "BIRD refused configure, retrying at the next reconcile: %04d %s",
			     r->code, r->text);
			/* The refusal names our file: put back what BIRD runs. */
			if (strstr(r->text, s->include) && c->text && s->bird_text) {
				free(s->refused_text);
				s->refused_text = c->text;
				c->text = NULL;
				s->render_dirty = true;
				slog(s, 3, NULL, "%s restored to the last version BIRD accepted",
				     s->include);
			}
		}
		break;
	case CMD_TOGGLE: {
		struct sync_static *t = &c->svc->st[c->fam];
		/* "0009-NAME: disabled" then "0000": the first block tells. */
		int code = r->n_lines ? r->lines[0].code : r->code;

		if (code >= 8 && code <= 11) {
			t->bird = (code == 10 || code == 11) ? B_UP : B_DOWN;
			slog(s, 6, c->svc->name, "BIRD: %s", r->lines[0].text);
		} else if (code == 8003) {
			t->bird = B_MISSING;
			s->need_configure = true;
		} else {
			s->stats.command_errors++;
			t->bird = B_UNKNOWN;
			slog(s, 3, c->svc->name, "BIRD refused %s %s: %04d %s",
			     c->enable ? "enable" : "disable", t->name, r->code, r->text);
		}
		break;
	}
	}
	free_cmd(c);
	kick(s);
}

static void send_cmd(struct bird_sync *s, struct cmd *c, const char *text)
{
	c->sync = s;
	s->cmd_busy = true;
	s->stats.commands++;
	if (bird_client_send(s->client, text, on_reply, c) < 0) {
		s->cmd_busy = false;
		free_cmd(c);
	}
}

static bool all_written(const struct bird_sync *s)
{
	if (s->render_busy || s->render_dirty)
		return false;
	for (size_t i = 0; i < s->n_svcs; i++)
		if (!svc_written(&s->svcs[i]))
			return false;
	return true;
}

/* Withdrawals first (fastest path), then configure, then enables: an
 * announce whose communities changed goes out with them, in one update. */
static bool next_toggle(struct bird_sync *s, bool enables)
{
	for (size_t i = 0; i < s->n_svcs; i++) {
		struct sync_svc *v = &s->svcs[i];

		if (!svc_written(v))
			continue;
		for (int f = 0; f < 2; f++) {
			struct sync_static *t = &v->st[f];
			char text[160];

			if (!t->used || t->bird == B_UNKNOWN || t->bird == B_MISSING)
				continue;
			if ((t->bird == B_UP) == v->announce || v->announce != enables)
				continue;
			struct cmd *c = calloc(1, sizeof(*c));
			if (!c)
				return false;
			c->kind = CMD_TOGGLE;
			c->svc = v;
			c->fam = f;
			c->enable = v->announce;
			snprintf(text, sizeof(text), "%s \"%s\"",
				 v->announce ? "enable" : "disable", t->name);
			send_cmd(s, c, text);
			return true;
		}
	}
	return false;
}

static void send_new(struct bird_sync *s, int kind, const char *text)
{
	struct cmd *c = calloc(1, sizeof(*c));

	if (!c)
		return;
	c->kind = kind;
	if (kind == CMD_SHOW) {
		s->reconcile_due = false;
	} else if (kind == CMD_CONFIGURE) {
		c->text = s->file_text ? strdup(s->file_text) : NULL;
		s->stats.configures++;
	}
	send_cmd(s, c, text);
}

static void kick(struct bird_sync *s)
{
	if (s->closing)
		return;
	if (s->render_dirty && !s->render_busy)
		start_render(s);
	if (!bird_client_connected(s->client) || s->cmd_busy)
		return;
	if (!s->stats.adopted) {
		send_new(s, CMD_SHOW, "show protocols \"healthd_*\"");
		return;
	}
	if (next_toggle(s, false))
		return;
	if (s->need_configure && !s->configure_held && !s->batch_armed && all_written(s)) {
		send_new(s, CMD_CONFIGURE, "configure");
		return;
	}
	if ((!s->need_configure || s->configure_held) && next_toggle(s, true))
		return;
	if (s->reconcile_due)
		send_new(s, CMD_SHOW, "show protocols \"healthd_*\"");
}

static void on_batch(uv_timer_t *t)
{
	struct bird_sync *s = t->data;

	s->batch_armed = false;
	kick(s);
}

static void on_reconcile(uv_timer_t *t)
{
	struct bird_sync *s = t->data;

	s->reconcile_due = true;
	s->configure_held = false;
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
		s->configure_held = false;
	} else {
		slog(s, 4, NULL, "BIRD unreachable: %s", why ? why : "connection lost");
		for (size_t i = 0; i < s->n_svcs; i++)
			for (int f = 0; f < 2; f++)
				s->svcs[i].st[f].bird = B_UNKNOWN;
	}
	kick(s);
}

/* ---- the table of services ---- */

static void svc_setup(struct sync_svc *v, const struct cfg_service *cfg)
{
	v->cfg = cfg;
	snprintf(v->name, sizeof(v->name), "%s", cfg->name);
	for (int f = 0; f < 2; f++) {
		struct sync_static *t = &v->st[f];

		t->family = f == 0 ? AF_INET : AF_INET6;
		snprintf(t->name, sizeof(t->name), "healthd_%s_v%c", cfg->name,
			 f == 0 ? '4' : '6');
		t->used = false;
		for (size_t i = 0; i < cfg->n_prefixes; i++)
			t->used |= cfg->prefixes[i].family == t->family;
	}
}

static struct sync_svc *find_svc(struct bird_sync *s, const char *name)
{
	for (size_t i = 0; i < s->n_svcs; i++)
		if (!strcmp(s->svcs[i].name, name))
			return &s->svcs[i];
	return NULL;
}

/* text: the include file as it is now, read once by the caller. */
static int build_table(struct bird_sync *s, const struct config *cfg, const char *text)
{
	struct sync_svc *n = calloc(cfg->n_services ? cfg->n_services : 1, sizeof(*n));

	if (!n)
		return -ENOMEM;
	for (size_t i = 0; i < cfg->n_services; i++) {
		struct sync_svc *old = find_svc(s, cfg->services[i].name);

		if (old) {
			n[i] = *old;
			svc_setup(&n[i], &cfg->services[i]);
		} else {
			svc_setup(&n[i], &cfg->services[i]);
			/* Until told otherwise, want what the file says. */
			if (!state_in(text, n[i].name, n[i].state, sizeof(n[i].state))) {
				snprintf(n[i].state, sizeof(n[i].state), "withdrawn");
				/* The file must say so even while BIRD is unreachable. */
				s->render_dirty = true;
			}
			n[i].announce = strcmp(n[i].state, "withdrawn") != 0;
			for (int f = 0; f < 2; f++)
				n[i].st[f].bird = B_UNKNOWN;
		}
		n[i].gen = n[i].file_gen = ++s->gen;
	}
	free(s->svcs);
	s->svcs = n;
	s->n_svcs = cfg->n_services;
	return 0;
}

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
	if (read_file(s->include, &s->file_text) < 0 && !(s->file_text = strdup("")))
		goto fail;
	if (build_table(s, cfg, s->file_text) < 0)
		goto fail;
	s->bird_text = strdup(s->file_text);
	uv_timer_init(loop, &s->reconcile_timer);
	uv_timer_init(loop, &s->batch_timer);
	s->reconcile_timer.data = s->batch_timer.data = s;
	s->open_handles = 2;
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
	free(s->file_text);
	free(s->svcs);
	free(s->socket);
	free(s->include);
	free(s->node);
	free(s);
	return rc;
}

void bird_sync_reconfig(struct bird_sync *s, const struct config *cfg)
{
	bool new_socket = strcmp(s->socket, cfg->bird.socket) != 0;
	char *text = NULL;
	int rc = copy_settings(s, cfg);

	if (rc == 0 && read_file(s->include, &text) < 0)
		text = strdup("");      /* unreadable: new services start withdrawn */
	if (rc < 0 || !text || build_table(s, cfg, text) < 0) {
		free(text);
		slog(s, 3, NULL, "reload: out of memory, BIRD settings unchanged");
		return;
	}
	free(text);
	if (new_socket) {
		bird_client_close(s->client);
		s->client = NULL;
		s->cmd_busy = false;
		s->stats.connected = false;
		if (bird_client_new(s->loop, s->socket, s->timeout_ms, on_state, s,
				    &s->client) < 0) {
			slog(s, 3, NULL, "cannot create a BIRD client for %s", s->socket);
			return;
		}
	}
	uv_timer_start(&s->reconcile_timer, on_reconcile, s->reconcile_ms, s->reconcile_ms);
	free(s->refused_text);      /* a new config deserves a new try */
	s->refused_text = NULL;
	s->render_dirty = true;
	kick(s);
}

void bird_sync_set(struct bird_sync *s, const char *service, bool announce,
		   const char *state, const struct cfg_community *comms, size_t n)
{
	struct sync_svc *v = find_svc(s, service);
	bool comms_changed;

	if (!v)
		return;
	if (n > SYNC_MAX_COMMS)
		n = SYNC_MAX_COMMS;
	comms_changed = n != v->n_comms ||
			(n && memcmp(v->comms, comms, n * sizeof(*comms)) != 0);
	if (!comms_changed && announce == v->announce && !strcmp(state, v->state))
		return;
	bool was_announced = v->announce;

	v->announce = announce;
	snprintf(v->state, sizeof(v->state), "%s", state);
	if (n)
		memcpy(v->comms, comms, n * sizeof(*comms));
	v->n_comms = n;
	v->gen = ++s->gen;
	s->render_dirty = true;
	/* Community changes close together go out in one configure. */
	if (comms_changed && announce && was_announced) {
		if (!s->batch_armed) {
			s->batch_armed = true;
			uv_timer_start(&s->batch_timer, on_batch, SYNC_BATCH_MS, 0);
		}
	}
	kick(s);
}

void bird_sync_stats(const struct bird_sync *s, struct bird_sync_stats *out)
{
	*out = s->stats;
	out->connected = s->client && bird_client_connected(s->client);
}

bool bird_sync_idle(const struct bird_sync *s)
{
	if (!s->stats.adopted || s->cmd_busy || s->need_configure || !all_written(s))
		return false;
	for (size_t i = 0; i < s->n_svcs; i++)
		for (int f = 0; f < 2; f++) {
			const struct sync_static *t = &s->svcs[i].st[f];

			if (t->used && (t->bird == B_UNKNOWN || t->bird == B_MISSING ||
					(t->bird == B_UP) != s->svcs[i].announce))
				return false;
		}
	return true;
}

static void maybe_free(struct bird_sync *s)
{
	if (s->open_handles > 0 || s->render_busy)
		return;
	free(s->svcs);
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
	uv_close((uv_handle_t *)&s->reconcile_timer, on_timer_closed);
	uv_close((uv_handle_t *)&s->batch_timer, on_timer_closed);
}

/* ---- reading back what we wrote ---- */

int bird_sync_file_state(const char *include_path, const char *service,
			 char *state, size_t len)
{
	char *text;
	int rc = read_file(include_path, &text);

	if (rc < 0)
		return rc;
	rc = state_in(text, service, state, len);
	free(text);
	return rc;
}
