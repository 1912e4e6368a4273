/*
 * The control socket: one request per line, one reply per request,
 * "CODE JSON\n" (200 ok, 400 bad request, 403 not on this socket, 404 no
 * such thing, 409 refused by the fleet guard, 500 failed). How hostile clients are bounded is in healthd.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "healthd/internal.h"

#define CTL_LINE_MAX 4096
#define CTL_CLIENTS_MAX 64
#define CTL_RESERVE 16         /* of CTL_CLIENTS_MAX, for operators only */
#define CTL_IDLE_MS 1000       /* at the limit, a client silent this long makes room */
#define CTL_REQUEST_MS 2000    /* a request line arrives whole within this */
#define CTL_WRITE_MS 10000     /* a client takes its reply within this */
#define CTL_OUT_MAX (64u << 20) /* bytes queued for one client: healthctl's reply cap */
#define CTL_SWEEP_MS 250

struct ctl_server {
	uv_pipe_t pipe;
	uv_timer_t sweep;
	struct hd *hd;
	char *path;
	bool readonly;
	int handles;        /* open of pipe and sweep: freed when 0 */
	long gid;           /* the socket's group: its members are operators */
	int clients;
	struct ctl_client *head;
	uint64_t drop_log_ms;   /* drops are logged at most once a second */
	unsigned drops_unlogged;
};

struct ctl_client {
	uv_pipe_t pipe;
	struct ctl_server *srv;
	char buf[CTL_LINE_MAX];
	size_t len;
	int pending;        /* async replies still owed */
	int writes;         /* replies handed to uv_write, not yet done */
	uint64_t last_ms;   /* last connect or read, loop time */
	uint64_t req_ms;    /* connect, or the end of the last request */
	uint64_t write_ms;  /* when the reply in flight was queued */
	long uid, pid;      /* the peer's, from SO_PEERCRED; -1 = not known */
	bool operator;
	bool reading;
	bool closed;
	struct ctl_client *next, *prev;
};

static void client_drive(struct ctl_client *c);

static void client_maybe_free(struct ctl_client *c)
{
	if (c->closed && c->pending == 0)
		free(c);
}

static void client_closed(uv_handle_t *h)
{
	struct ctl_client *c = h->data;

	if (c->srv) {
		c->srv->clients--;
		if (c->prev)
			c->prev->next = c->next;
		else
			c->srv->head = c->next;
		if (c->next)
			c->next->prev = c->prev;
	}
	c->closed = true;
	client_maybe_free(c);
}

static bool client_gone(const struct ctl_client *c)
{
	return c->closed || uv_is_closing((const uv_handle_t *)&c->pipe);
}

static void client_close(struct ctl_client *c)
{
	if (!uv_is_closing((uv_handle_t *)&c->pipe))
		uv_close((uv_handle_t *)&c->pipe, client_closed);
}

/* Closes a client that broke a bound; logged, but at most once a second
 * so that a crowd of them cannot flood the log. */
static void client_drop(struct ctl_client *c, const char *why)
{
	struct ctl_server *srv = c->srv;
	uint64_t now = uv_now(c->pipe.loop);

	if (client_gone(c))
		return;
	if (srv && now - srv->drop_log_ms < 1000 && srv->drop_log_ms) {
		srv->drops_unlogged++;
	} else if (srv) {
		log_warn("control socket %s: dropped client (pid %ld, uid %ld): %s%s", srv->path,
			 c->pid, c->uid, why, srv->drops_unlogged ? " (and others, not logged)" : "");
		srv->drop_log_ms = now;
		srv->drops_unlogged = 0;
	}
	client_close(c);
}

static void write_done(uv_write_t *w, int status)
{
	struct ctl_client *c = w->handle->data;

	(void)status;
	free(w->data);
	free(w);
	c->writes--;
	if (!client_gone(c))
		client_drive(c);
}

static void reply(struct ctl_client *c, int code, json_t *body)
{
	char *js = json_dumps(body, JSON_COMPACT);
	char *line = NULL;
	uv_write_t *w;
	int n;

	json_decref(body);
	if (client_gone(c) || !js) {
		free(js);
		return;
	}
	n = asprintf(&line, "%d %s\n", code, js);
	free(js);
	if (n < 0)
		return;
	if (uv_stream_get_write_queue_size((uv_stream_t *)&c->pipe) + (size_t)n > CTL_OUT_MAX) {
		free(line);
		client_drop(c, "more than 16 MB of replies queued");
		return;
	}
	w = malloc(sizeof(*w));
	if (!w) {
		free(line);
		return;
	}
	w->data = line;
	uv_buf_t b = uv_buf_init(line, (unsigned)n);
	if (uv_write(w, (uv_stream_t *)&c->pipe, &b, 1, write_done) < 0) {
		free(line);
		free(w);
		client_close(c);
		return;
	}
	if (c->writes++ == 0)
		c->write_ms = uv_now(c->pipe.loop);
}

static void reply_error(struct ctl_client *c, int code, const char *msg)
{
	reply(c, code, json_pack("{s:s}", "error", msg));
}

static void check_result_cb(void *arg, const char *service, const char *check,
			    const struct check_result *r)
{
	struct ctl_client *c = arg;

	c->pending--;
	if (!r)
		reply_error(c, 500, "the check was removed (reload or stop) before it ended");
	else
		reply(c, 200, json_pack("{s:s,s:s,s:s,s:b,s:s,s:f}", "service", service,
					"check", check, "result", check_reason_str(r->reason),
					"ok", r->reason == CHECK_OK, "detail", r->detail,
					"latency_ms", r->latency_us / 1000.0));
	if (c->closed)
		client_maybe_free(c);
	else if (!client_gone(c) && c->writes == 0)
		client_drive(c);
}

/* The peer's user name, "" when there is none. getpwuid_r may ask NSS,
 * which can block; it runs once per drain request, which an operator
 * types, so the loop can afford it. */
static void user_name(long uid, char *out, size_t len)
{
	struct passwd pw, *res = NULL;
	char buf[1024];

	out[0] = '\0';
	if (uid >= 0 && getpwuid_r((uid_t)uid, &pw, buf, sizeof(buf), &res) == 0 && res &&
	    ctl_text_check("user", res->pw_name, len - 1, buf, sizeof(buf)) == 0)
		snprintf(out, len, "%s", res->pw_name);
}

static void handle_drain(struct ctl_client *c, const struct ctl_request *req)
{
	char user[64], err[256];
	struct hd_who who = { .uid = c->uid, .user = user, .reason = req->reason,
			      .force = req->force };
	bool on = req->cmd == CTL_DRAIN;
	json_t *body;
	int rc;

	user_name(c->uid, user, sizeof(user));
	rc = hd_drain(c->srv->hd, req->all ? NULL : req->arg, on, req->for_ms, &who, err,
		      sizeof(err));
	if (rc == -EBUSY) {
		reply_error(c, 409, err);
		return;
	}
	if (rc < 0) {
		snprintf(err, sizeof(err), "no service '%.64s'", req->arg);
		reply_error(c, 404, err);
		return;
	}
	body = json_pack("{s:s,s:b}", "service", req->arg, "drain", on);
	if (req->reason)
		json_object_set_new(body, "reason", json_string(req->reason));
	if (req->force)
		json_object_set_new(body, "force", json_true());
	reply(c, 200, body);
}

static void handle(struct ctl_client *c, char *line)
{
	struct hd *hd = c->srv->hd;
	struct ctl_request req;
	char err[512];

	if (ctl_request_parse(line, &req, err, sizeof(err)) < 0) {
		reply_error(c, 400, err);
		return;
	}
	if (c->srv->readonly && req.cmd != CTL_STATUS && req.cmd != CTL_VERSION) {
		reply_error(c, 403, "this is the read-only socket: it serves status and version;"
			    " drain, undrain, check and reload need control.socket");
		return;
	}
	switch (req.cmd) {
	case CTL_STATUS:
		reply(c, 200, hd_status(hd));
		break;
	case CTL_VERSION:
		reply(c, 200, json_pack("{s:s}", "version", HEALTHD_VERSION));
		break;
	case CTL_RELOAD:
		if (hd_reload(hd, err, sizeof(err)) < 0) {
			log_err("reload failed, the running config stays: %s", err);
			reply_error(c, 400, err);
		} else {
			reply(c, 200, json_pack("{s:b}", "reloaded", 1));
		}
		break;
	case CTL_DRAIN:
	case CTL_UNDRAIN:
		handle_drain(c, &req);
		break;
	case CTL_CHECK:
		c->pending++;
		if (hd_check_now(hd, req.arg, check_result_cb, c) < 0) {
			c->pending--;
			snprintf(err, sizeof(err), "no check '%.64s'", req.arg);
			reply_error(c, 404, err);
		}
		break;
	}
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct ctl_client *c = h->data;

	(void)suggested;
	*buf = uv_buf_init(c->buf + c->len, (unsigned)(sizeof(c->buf) - c->len));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);

/* Backpressure: the next request line is taken only when the last reply
 * has gone out and no probe is owed; until then the client is not read,
 * so a client that pipelines and never reads costs one reply. */
static void client_drive(struct ctl_client *c)
{
	char *nl;

	if (c->writes == 0 && c->pending == 0 && (nl = memchr(c->buf, '\n', c->len))) {
		size_t used = (size_t)(nl - c->buf) + 1;
		char line[sizeof(c->buf)];

		/* Out of the buffer before it is handled: a reply may come back
		 * at once (a probe that cannot start) and drive this client
		 * again from inside handle(). */
		memcpy(line, c->buf, used - 1);
		line[used - 1] = '\0';
		if (used > 1 && line[used - 2] == '\r')
			line[used - 2] = '\0';
		memmove(c->buf, c->buf + used, c->len - used);
		c->len -= used;
		c->req_ms = uv_now(c->pipe.loop);
		handle(c, line);
		if (client_gone(c))
			return;
	}
	if (c->len == sizeof(c->buf) && !memchr(c->buf, '\n', c->len)) {
		reply_error(c, 400, "request line too long");
		client_close(c);
		return;
	}
	bool want = c->writes == 0 && c->pending == 0 && c->len < sizeof(c->buf);

	if (want && !c->reading)
		c->reading = uv_read_start((uv_stream_t *)&c->pipe, on_alloc, on_read) == 0;
	else if (!want && c->reading)
		c->reading = uv_read_stop((uv_stream_t *)&c->pipe) != 0;
	/* a whole line already buffered and the client idle: take it now */
	if (want && memchr(c->buf, '\n', c->len))
		client_drive(c);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct ctl_client *c = s->data;

	(void)buf;
	if (n < 0) {
		client_close(c);
		return;
	}
	if (n == 0)
		return;
	if (c->len == 0 && !memchr(c->buf, '\n', (size_t)n))
		c->req_ms = uv_now(s->loop); /* a request starts with its first byte */
	c->last_ms = uv_now(s->loop);
	c->len += (size_t)n;
	client_drive(c);
}

/* Drops clients that hold a slot without finishing: half a request past
 * CTL_REQUEST_MS, a reply not taken within CTL_WRITE_MS. */
static void on_sweep(uv_timer_t *t)
{
	struct ctl_server *srv = t->data;
	uint64_t now = uv_now(t->loop);

	for (struct ctl_client *c = srv->head, *next; c; c = next) {
		next = c->next;
		if (client_gone(c))
			continue;
		if (c->len > 0 && c->writes == 0 && c->pending == 0 &&
		    now - c->req_ms >= CTL_REQUEST_MS)
			client_drop(c, "no whole request line within 2s");
		else if (c->writes > 0 && now - c->write_ms >= CTL_WRITE_MS)
			client_drop(c, "did not read its reply within 10s");
	}
}

/* Closes the client idle longest (at least CTL_IDLE_MS), so that clients
 * holding connections open cannot lock operators out; for an operator,
 * when none is idle, the oldest client that is not one. A non-operator
 * never evicts an operator. */
static bool evict(struct ctl_server *srv, uint64_t now, bool for_operator)
{
	struct ctl_client *old = NULL, *busy = NULL;

	for (struct ctl_client *c = srv->head; c; c = c->next) {
		if (client_gone(c))
			continue;
		/* a non-operator makes room only among non-operators */
		if (c->pending == 0 && c->writes == 0 && now - c->last_ms >= CTL_IDLE_MS &&
		    (for_operator || !c->operator) && (!old || c->last_ms < old->last_ms))
			old = c;
		if (!c->operator && c->pending == 0 && (!busy || c->req_ms < busy->req_ms))
			busy = c;
	}
	if (!old && for_operator)
		old = busy;
	if (old)
		client_close(old);
	return old != NULL;
}

/* The peer's supplementary groups hold gid, from /proc (no NSS, so it
 * cannot block the loop). */
static bool proc_in_group(long pid, long gid)
{
	char path[64], line[1024];
	bool in = false;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%ld/status", pid);
	if (pid <= 0 || !(f = fopen(path, "re")))
		return false;
	while (!in && fgets(line, sizeof(line), f)) {
		if (strncmp(line, "Groups:", 7))
			continue;
		for (char *p = line + 7, *end; *p && !in; p = end) {
			long g = strtol(p, &end, 10);

			if (end == p)
				break;
			in = g == gid;
		}
		break;
	}
	fclose(f);
	return in;
}

/* Who is on the other end: recorded with the drains it asks for, and
 * whether it may use the operators' reserve. */
static void peer_cred(struct ctl_client *c)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	uv_os_fd_t fd;

	if (uv_fileno((uv_handle_t *)&c->pipe, &fd) == 0 &&
	    getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 && len == sizeof(cred)) {
		c->uid = (long)cred.uid;
		c->pid = (long)cred.pid;
		c->operator = cred.uid == 0 || cred.uid == geteuid() ||
			      (long)cred.gid == c->srv->gid;
	}
}

static void on_connection(uv_stream_t *server, int status)
{
	struct ctl_server *srv = server->data;
	struct ctl_client *c;

	if (status < 0)
		return;
	c = calloc(1, sizeof(*c));
	if (!c)
		return;
	uv_pipe_init(server->loop, &c->pipe, 0);
	c->pipe.data = c;
	c->srv = srv;
	c->last_ms = c->req_ms = uv_now(server->loop);
	srv->clients++;
	c->next = srv->head;
	if (srv->head)
		srv->head->prev = c;
	srv->head = c;
	c->uid = c->pid = -1;
	if (uv_accept(server, (uv_stream_t *)&c->pipe) < 0) {
		client_close(c);
		return;
	}
	peer_cred(c);
	if (srv->clients > CTL_CLIENTS_MAX - CTL_RESERVE) {
		if (!c->operator && c->uid >= 0 && srv->gid >= 0)
			c->operator = proc_in_group(c->pid, srv->gid);
		if ((c->operator ? srv->clients > CTL_CLIENTS_MAX : true) &&
		    !evict(srv, c->last_ms, c->operator)) {
			reply_error(c, 500, "too many control clients");
			client_drop(c, "too many control clients");
			return;
		}
	}
	client_drive(c);
}

static void server_handle_closed(uv_handle_t *h)
{
	struct ctl_server *srv = h->data;

	if (--srv->handles > 0)
		return;
	free(srv->path);
	free(srv);
}

/* A socket file at path that a live process listens on is not ours to
 * take: connect says so. (control.socket has its lock file as well.) */
static bool socket_in_use(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, rc;

	if (strlen(path) >= sizeof(sa.sun_path))
		return false;
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return false;
	rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	close(fd);
	return rc == 0 || errno == EAGAIN;
}

int ctl_server_new(struct hd *hd, uv_loop_t *loop, const char *path, bool readonly,
		   struct ctl_server **out, char *err, size_t errlen)
{
	struct ctl_server *srv = calloc(1, sizeof(*srv));
	struct stat st;
	int rc;

	if (!srv)
		return -ENOMEM;
	srv->hd = hd;
	srv->path = strdup(path);
	srv->readonly = readonly;
	srv->gid = -1;
	uv_pipe_init(loop, &srv->pipe, 0);
	uv_timer_init(loop, &srv->sweep);
	srv->pipe.data = srv->sweep.data = srv;
	srv->handles = 2;
	if (readonly && socket_in_use(path)) {
		snprintf(err, errlen, "read-only control socket %s: a running process listens on it",
			 path);
		rc = -EADDRINUSE;
		goto fail;
	}
	/* A socket file left by a crashed healthd would make bind fail. */
	unlink(path);
	rc = uv_pipe_bind(&srv->pipe, path);
	if (rc == 0)
		rc = uv_listen((uv_stream_t *)&srv->pipe, 16, on_connection);
	if (rc < 0) {
		snprintf(err, errlen, "%scontrol socket %s: %s", readonly ? "read-only " : "", path,
			 uv_strerror(rc));
		goto fail;
	}
	chmod(path, readonly ? 0666 : 0660);
	if (stat(path, &st) == 0)
		srv->gid = (long)st.st_gid;
	uv_timer_start(&srv->sweep, on_sweep, CTL_SWEEP_MS, CTL_SWEEP_MS);
	uv_unref((uv_handle_t *)&srv->sweep);
	*out = srv;
	return 0;
fail:
	uv_close((uv_handle_t *)&srv->pipe, server_handle_closed);
	uv_close((uv_handle_t *)&srv->sweep, server_handle_closed);
	return rc;
}

static void server_pipe_closed(uv_handle_t *h)
{
	struct ctl_server *srv = h->data;

	unlink(srv->path);
	server_handle_closed(h);
}

void ctl_server_close(struct ctl_server *srv)
{
	for (struct ctl_client *c = srv->head, *next; c; c = next) {
		next = c->next;
		c->srv = NULL;
		if (!uv_is_closing((uv_handle_t *)&c->pipe))
			uv_close((uv_handle_t *)&c->pipe, client_closed);
	}
	srv->head = NULL;
	uv_close((uv_handle_t *)&srv->sweep, server_handle_closed);
	uv_close((uv_handle_t *)&srv->pipe, server_pipe_closed);
}
