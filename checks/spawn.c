/*
 * Child processes, for exec checks and service hooks: one place that
 * spawns, reads, bounds in time and reaps.
 *
 * The child runs in a session (and process group) of its own, with a
 * minimal environment, stdin on /dev/null, and stdout and stderr on one
 * socket that the loop reads: the first line is kept (capped), the rest
 * read and dropped, so the child never blocks on a full pipe. At the
 * timeout the whole group gets SIGTERM, and SIGKILL one grace later. The
 * result is reported once the child has exited and the output reached
 * EOF; libuv reaps the child (the process handle stays open until its
 * exit callback, so there is never a zombie), and a grandchild that
 * escaped the group with the socket open is given up on one grace after
 * the SIGKILL.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "checks/checks.h"

#define SPAWN_GRACE_MS 1000
#define SPAWN_ENV_MAX 64

enum spawn_phase { PH_RUN, PH_TERM, PH_KILL, PH_GIVEUP };

struct check_spawn {
	uv_process_t proc;
	uv_pipe_t out;
	uv_timer_t timer;
	check_spawn_cb cb;         /* NULL once reported or cancelled */
	void *arg;
	int refs;                  /* open handles */
	bool exited, eof, line_done;
	enum spawn_phase phase;
	struct check_spawn_result r;
	size_t line_len;
	char buf[16384];
};

static void spawn_unref(uv_handle_t *h)
{
	struct check_spawn *s = h->data;

	if (--s->refs == 0)
		free(s);
}

static void close_one(uv_handle_t *h)
{
	if (!uv_is_closing(h))
		uv_close(h, spawn_unref);
}

/* Both ends seen (or given up on): report, then close everything. */
static void maybe_finish(struct check_spawn *s)
{
	check_spawn_cb cb = s->cb;

	if (!s->exited || !s->eof)
		return;
	s->cb = NULL;
	s->r.line[s->line_len] = '\0';
	if (s->line_len && s->r.line[s->line_len - 1] == '\r')
		s->r.line[--s->line_len] = '\0';
	close_one((uv_handle_t *)&s->timer);
	close_one((uv_handle_t *)&s->out);
	close_one((uv_handle_t *)&s->proc);
	if (cb)
		cb(&s->r, s->arg);
}

static void on_exit_cb(uv_process_t *p, int64_t status, int sig)
{
	struct check_spawn *s = p->data;

	s->exited = true;
	s->r.exit_status = sig ? -1 : (int)status;
	s->r.term_signal = sig;
	maybe_finish(s);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	struct check_spawn *s = h->data;

	(void)hint;
	*buf = uv_buf_init(s->buf, sizeof(s->buf));
}

static void keep_line(struct check_spawn *s, const char *p, size_t n)
{
	for (size_t i = 0; i < n && !s->line_done; i++) {
		if (p[i] == '\n')
			s->line_done = true;
		else if (s->line_len < CHECK_SPAWN_LINE_MAX)
			s->r.line[s->line_len++] = p[i];
	}
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
	struct check_spawn *s = st->data;

	if (n > 0) {
		s->r.output_bytes += (uint64_t)n;
		keep_line(s, buf->base, (size_t)n);
		return;
	}
	if (n == 0)
		return;
	uv_read_stop(st);   /* UV_EOF, or a read error: either way the end */
	s->eof = true;
	maybe_finish(s);
}

static void on_timer(uv_timer_t *t)
{
	struct check_spawn *s = t->data;
	int pid = s->proc.pid;

	switch (s->phase) {
	case PH_RUN:
		s->r.timed_out = true;
		s->phase = PH_TERM;
		if (pid > 0)
			kill(-pid, SIGTERM);
		uv_timer_start(t, on_timer, SPAWN_GRACE_MS, 0);
		break;
	case PH_TERM:
		s->phase = PH_KILL;
		if (pid > 0)
			kill(-pid, SIGKILL);
		uv_timer_start(t, on_timer, SPAWN_GRACE_MS, 0);
		break;
	case PH_KILL:
		/* Only a process outside the group still holds the output. */
		s->phase = PH_GIVEUP;
		if (!s->eof) {
			uv_read_stop((uv_stream_t *)&s->out);
			s->eof = true;
			maybe_finish(s);
		}
		break;
	case PH_GIVEUP:
		break;
	}
}

/* PATH, then the caller's NAME=value strings (a PATH among them wins). */
static int build_env(const struct check_spawn_opts *o, char **env)
{
	size_t n = 0;
	bool path = false;

	for (char *const *e = o->env; e && *e; e++)
		path |= strncmp(*e, "PATH=", 5) == 0;
	if (!path)
		env[n++] = (char *)CHECK_SPAWN_PATH;
	for (char *const *e = o->env; e && *e; e++) {
		if (n + 1 >= SPAWN_ENV_MAX)
			return UV_E2BIG;
		env[n++] = *e;
	}
	env[n] = NULL;
	return 0;
}

int check_spawn(uv_loop_t *loop, const struct check_spawn_opts *o, check_spawn_cb cb,
		void *arg, struct check_spawn **out)
{
	char *env[SPAWN_ENV_MAX];
	uv_stdio_container_t stdio[3];
	uv_process_options_t po = { 0 };
	struct check_spawn *s;
	int sv[2] = { -1, -1 }, rc;

	*out = NULL;
	if (!o->argv || !o->argv[0] || !cb)
		return UV_EINVAL;
	if ((rc = build_env(o, env)) < 0)
		return rc;
	if (!(s = calloc(1, sizeof(*s))))
		return UV_ENOMEM;
	s->cb = cb;
	s->arg = arg;
	/* One socket for stdout and stderr: the child's end blocking, ours not. */
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		rc = -errno;
		free(s);
		return rc;
	}
	uv_pipe_init(loop, &s->out, 0);
	uv_timer_init(loop, &s->timer);
	s->out.data = s->timer.data = s->proc.data = s;
	s->refs = 2;
	if ((rc = uv_pipe_open(&s->out, sv[0])) < 0) {
		close(sv[0]);
		sv[0] = -1;
		goto fail;
	}
	sv[0] = -1;
	stdio[0].flags = UV_IGNORE;   /* /dev/null */
	stdio[1].flags = UV_INHERIT_FD;
	stdio[1].data.fd = sv[1];
	stdio[2] = stdio[1];
	po.exit_cb = on_exit_cb;
	po.file = o->argv[0];
	po.args = (char **)o->argv;
	po.env = env;
	po.cwd = o->cwd ? o->cwd : "/";
	po.stdio = stdio;
	po.stdio_count = 3;
	po.flags = UV_PROCESS_DETACHED;   /* setsid(): a group of its own to kill */
	if (o->set_user) {
		po.flags |= UV_PROCESS_SETUID | UV_PROCESS_SETGID;
		po.uid = o->uid;
		po.gid = o->gid;
	}
	rc = uv_spawn(loop, &s->proc, &po);
	close(sv[1]);
	sv[1] = -1;
	s->refs++;   /* the process handle needs closing even when uv_spawn failed */
	if (rc < 0) {
		uv_close((uv_handle_t *)&s->proc, spawn_unref);
		goto fail;
	}
	s->r.pid = s->proc.pid;
	if ((rc = uv_read_start((uv_stream_t *)&s->out, on_alloc, on_read)) < 0) {
		s->eof = true;   /* nothing to read: the exit alone ends it */
		rc = 0;
	}
	uv_timer_start(&s->timer, on_timer, o->timeout_ms ? o->timeout_ms : 1, 0);
	*out = s;
	return 0;
fail:
	if (sv[1] >= 0)
		close(sv[1]);
	s->cb = NULL;
	close_one((uv_handle_t *)&s->out);
	close_one((uv_handle_t *)&s->timer);
	return rc;
}

void check_spawn_cancel(struct check_spawn *s)
{
	if (!s || !s->cb)
		return;
	s->cb = NULL;
	/* The group goes at once; the handles stay until the exit is reaped. */
	if (!s->exited && s->proc.pid > 0)
		kill(-s->proc.pid, SIGKILL);
	if (s->phase < PH_KILL) {
		s->phase = PH_KILL;
		uv_timer_start(&s->timer, on_timer, SPAWN_GRACE_MS, 0);
	}
}

const char *check_spawn_describe(const struct check_spawn_result *r, char *buf, size_t len)
{
	if (r->timed_out)
		snprintf(buf, len, "timed out, process group killed");
	else if (r->term_signal)
		snprintf(buf, len, "killed by signal %d", r->term_signal);
	else
		snprintf(buf, len, "exit %d", r->exit_status);
	return buf;
}
