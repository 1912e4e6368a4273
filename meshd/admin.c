/*
 * meshd/admin.c — the admin socket server; the protocol and its bounds
 * are in admin.h.
 */
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "meshd/admin.h"

struct admin {
	uv_pipe_t pipe;
	struct mstate *st;
	struct admin_hooks hooks;
	char *path;
	int clients;
	struct admin_client *head;
};

struct admin_client {
	uv_pipe_t pipe;
	uv_timer_t deadline;
	struct admin *srv;          /* NULL once the server is closing */
	char buf[ADMIN_LINE_MAX];
	size_t len;
	long uid, pid;              /* the peer's, from SO_PEERCRED; -1 = not known */
	char source[64];            /* "admin uid 0 pid 123", for the audit */
	bool answered;
	int handles;                /* open of pipe and deadline */
	uv_write_t w;
	char *out;                  /* the reply, cleared when written */
	size_t outlen;
	uint64_t accepted;          /* uv_now at accept */
	int64_t token_id;           /* a token the reply carries; 0: none */
	char token_node[MSTATE_NAME_MAX];
	bool delivered;             /* the reply was written */
	char why[128];              /* why it was not, when it was not */
	struct admin_client *next, *prev;
};

static void say(struct admin *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void say(struct admin *a, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	if (!a || !a->hooks.log)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	a->hooks.log(a->hooks.ctx, line);
}

static int64_t now_s(struct admin *a)
{
	return a->hooks.now ? a->hooks.now(a->hooks.ctx) : (int64_t)time(NULL);
}

/* ---- connections ---- */

static void client_handle_closed(uv_handle_t *h)
{
	struct admin_client *c = h->data;

	if (--c->handles > 0)
		return;
	if (c->out) {
		explicit_bzero(c->out, c->outlen);
		free(c->out);
	}
	free(c);
}

static void client_close(struct admin_client *c)
{
	struct admin *a = c->srv;

	if (uv_is_closing((uv_handle_t *)&c->pipe))
		return;
	/* a token nobody received is still open: the operator must hear of it */
	if (a && c->token_id && !c->delivered)
		say(a, "admin socket: token %lld for %s created but the reply could not be written: %s;"
		    " revoke it with meshctl token revoke %lld", (long long)c->token_id, c->token_node,
		    c->why[0] ? c->why : "the connection closed first", (long long)c->token_id);
	if (a) {
		a->clients--;
		if (c->prev)
			c->prev->next = c->next;
		else
			a->head = c->next;
		if (c->next)
			c->next->prev = c->prev;
		c->srv = NULL;
	}
	uv_close((uv_handle_t *)&c->pipe, client_handle_closed);
	uv_close((uv_handle_t *)&c->deadline, client_handle_closed);
}

static void on_written(uv_write_t *w, int status)
{
	struct admin_client *c = w->data;

	if (status < 0)
		snprintf(c->why, sizeof(c->why), "%s", uv_strerror(status));
	else
		c->delivered = true;
	client_close(c);
}

/* Send line (malloc'd, its newline included; owned from here on) and
 * close once it is written. */
static void send_line(struct admin_client *c, char *line, size_t len)
{
	uv_buf_t b = uv_buf_init(line, (unsigned)len);
	struct admin *a = c->srv;
	int rc;

	c->answered = true;
	c->out = line;
	c->outlen = len;
	c->w.data = c;
	uv_read_stop((uv_stream_t *)&c->pipe);
	/* a second deadline for taking the reply */
	if (a)
		uv_timer_again(&c->deadline);
	if ((rc = uv_write(&c->w, (uv_stream_t *)&c->pipe, &b, 1, on_written)) < 0) {
		snprintf(c->why, sizeof(c->why), "%s", uv_strerror(rc));
		client_close(c);
	}
}

/* The reply object as one line; secret_key/secret (when not NULL) are
 * added to the text only, so no JSON value ever holds the secret and the
 * one copy is cleared when it has been written. */
static void reply(struct admin_client *c, json_t *o, const char *secret_key, const char *secret)
{
	char *js = o ? json_dumps(o, JSON_COMPACT) : NULL, *line;
	size_t n, len;

	json_decref(o);
	if (!js) {
		line = strdup("{\"ok\":false,\"error\":\"out of memory\"}\n");
		if (line)
			send_line(c, line, strlen(line));
		else
			client_close(c);
		return;
	}
	n = strlen(js);
	len = n + 1 + (secret ? strlen(secret_key) + strlen(secret) + 6 : 0);
	if (!(line = malloc(len + 1))) {
		free(js);
		client_close(c);
		return;
	}
	if (secret && n >= 2 && js[n - 1] == '}')
		snprintf(line, len + 1, "%.*s,\"%s\":\"%s\"}\n", (int)(n - 1), js, secret_key, secret);
	else
		snprintf(line, len + 1, "%s\n", js);
	free(js);
	send_line(c, line, strlen(line));
}

static void reply_error(struct admin_client *c, const char *msg)
{
	reply(c, json_pack("{s:b,s:s}", "ok", 0, "error", msg), NULL, NULL);
}

/* ---- the ops ---- */

/* Keys of the request other than "op" must be among keys (NULL-ended). */
static bool keys_known(json_t *req, const char *op, const char *const *keys, char *err,
		       size_t errlen)
{
	const char *k;
	json_t *v;

	json_object_foreach(req, k, v) {
		bool ok = !strcmp(k, "op");

		for (size_t i = 0; !ok && keys[i]; i++)
			ok = !strcmp(k, keys[i]);
		if (!ok) {
			snprintf(err, errlen, "%s: unknown key '%.64s'", op, k);
			return false;
		}
	}
	return true;
}

static const char *node_arg(json_t *req, const char *op, char *err, size_t errlen)
{
	const char *node = json_string_value(json_object_get(req, "node"));

	if (!node)
		snprintf(err, errlen, "%s needs \"node\", a node name", op);
	return node;
}

static json_t *op_token_create(struct admin_client *c, json_t *req, char *err, size_t errlen)
{
	static const char *const keys[] = { "node", "ttl", "replace", NULL };
	struct admin *a = c->srv;
	const char *node;
	json_t *ttl = json_object_get(req, "ttl"), *replace = json_object_get(req, "replace"), *o;
	char tok[MSTATE_SECRET_HEX + 1], when[32];
	int64_t id, expires;

	if (!keys_known(req, "token_create", keys, err, errlen) ||
	    !(node = node_arg(req, "token_create", err, errlen)))
		return NULL;
	if (ttl && !json_is_integer(ttl)) {
		snprintf(err, errlen, "token_create: \"ttl\" is a number of seconds");
		return NULL;
	}
	if (replace && !json_is_boolean(replace)) {
		snprintf(err, errlen, "token_create: \"replace\" is true or false");
		return NULL;
	}
	if (a->hooks.node_known) {
		err[0] = '\0';
		if (!a->hooks.node_known(a->hooks.ctx, node, err, errlen)) {
			if (!err[0])
				snprintf(err, errlen, "%.64s: no such node in the inventory", node);
			return NULL;
		}
	}
	if (mstate_token_create(a->st, node, ttl ? json_integer_value(ttl) : ADMIN_TTL_DEFAULT,
				now_s(a), c->source, json_is_true(replace), tok, &id, &expires,
				err, errlen))
		return NULL;
	mstate_time_str(expires, when, sizeof(when));
	o = json_pack("{s:b,s:I,s:s,s:s}", "ok", 1, "id", (json_int_t)id, "node", node,
		      "expires", when);
	say(a, "admin socket: token %lld for %s, expires %s (uid %ld)", (long long)id, node,
	    when, c->uid);
	c->token_id = id;       /* before the write, which may fail at once */
	snprintf(c->token_node, sizeof(c->token_node), "%s", node);
	reply(c, o, "token", tok);
	explicit_bzero(tok, sizeof(tok));
	return json_null();     /* replied */
}

static json_t *op_token_revoke(struct admin_client *c, json_t *req, char *err, size_t errlen)
{
	static const char *const keys[] = { "id", NULL };
	struct admin *a = c->srv;
	json_t *id = json_object_get(req, "id");
	char node[MSTATE_NAME_MAX];

	if (!keys_known(req, "token_revoke", keys, err, errlen))
		return NULL;
	if (!json_is_integer(id)) {
		snprintf(err, errlen, "token_revoke needs \"id\", a token's number");
		return NULL;
	}
	if (mstate_token_revoke(a->st, json_integer_value(id), now_s(a), c->source, node,
				sizeof(node), err, errlen))
		return NULL;
	say(a, "admin socket: token %lld for %s revoked (uid %ld)", (long long)json_integer_value(id),
	    node, c->uid);
	return json_pack("{s:b,s:I,s:s}", "ok", 1, "id", json_integer_value(id), "node", node);
}

static json_t *op_token_list(struct admin_client *c, json_t *req, char *err, size_t errlen)
{
	static const char *const keys[] = { NULL };
	json_t *l;

	if (!keys_known(req, "token_list", keys, err, errlen) ||
	    !(l = mstate_token_list(c->srv->st, now_s(c->srv), err, errlen)))
		return NULL;
	return json_pack("{s:b,s:o}", "ok", 1, "tokens", l);
}

static json_t *op_node_list(struct admin_client *c, json_t *req, char *err, size_t errlen)
{
	static const char *const keys[] = { NULL };
	json_t *l;

	if (!keys_known(req, "node_list", keys, err, errlen) ||
	    !(l = mstate_node_list(c->srv->st, err, errlen)))
		return NULL;
	return json_pack("{s:b,s:o}", "ok", 1, "nodes", l);
}

static json_t *op_node_disable(struct admin_client *c, json_t *req, char *err, size_t errlen)
{
	static const char *const keys[] = { "node", NULL };
	struct admin *a = c->srv;
	const char *node;

	if (!keys_known(req, "node_disable", keys, err, errlen) ||
	    !(node = node_arg(req, "node_disable", err, errlen)) ||
	    mstate_node_disable(a->st, node, now_s(a), c->source, err, errlen))
		return NULL;
	say(a, "admin socket: node %s disabled (uid %ld)", node, c->uid);
	if (a->hooks.changed)
		a->hooks.changed(a->hooks.ctx);
	return json_pack("{s:b}", "ok", 1);
}

static const struct {
	const char *name;
	json_t *(*fn)(struct admin_client *c, json_t *req, char *err, size_t errlen);
} ops[] = {
	{ "token_create", op_token_create },
	{ "token_revoke", op_token_revoke },
	{ "token_list", op_token_list },
	{ "node_list", op_node_list },
	{ "node_disable", op_node_disable },
};

static void handle(struct admin_client *c, const char *line, size_t len)
{
	json_error_t je;
	json_t *req = json_loadb(line, len, 0, &je), *res = NULL;
	const char *op;
	char err[1024] = "";

	if (!req) {
		reply_error(c, je.text);
		return;
	}
	if (!json_is_object(req))
		snprintf(err, sizeof(err), "a request is a JSON object");
	else if (!(op = json_string_value(json_object_get(req, "op"))))
		snprintf(err, sizeof(err), "a request needs \"op\", one of token_create, token_revoke,"
			 " token_list, node_list, node_disable");
	else {
		size_t i;

		for (i = 0; i < sizeof(ops) / sizeof(ops[0]) && strcmp(op, ops[i].name); i++)
			;
		if (i == sizeof(ops) / sizeof(ops[0]))
			snprintf(err, sizeof(err), "unknown op '%.64s'", op);
		else if (!(res = ops[i].fn(c, req, err, sizeof(err))) && !err[0])
			snprintf(err, sizeof(err), "%s: out of memory", op);
	}
	json_decref(req);
	if (!res)
		reply_error(c, err);
	else if (json_is_null(res))
		json_decref(res);       /* the op replied itself */
	else
		reply(c, res, NULL, NULL);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct admin_client *c = h->data;

	(void)suggested;
	*buf = uv_buf_init(c->buf + c->len, (unsigned)(sizeof(c->buf) - c->len));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct admin_client *c = s->data;
	char *nl;

	(void)buf;
	if (c->answered || n == 0)
		return;
	if (n < 0) {
		/* a request that ends at EOF without its newline is still one */
		if (n == UV_EOF && c->len > 0)
			handle(c, c->buf, c->len);
		else
			client_close(c);
		return;
	}
	c->len += (size_t)n;
	if ((nl = memchr(c->buf, '\n', c->len)))
		handle(c, c->buf, (size_t)(nl - c->buf));
	else if (c->len == sizeof(c->buf))
		reply_error(c, "request longer than 4096 bytes");
}

static void on_deadline(uv_timer_t *t)
{
	struct admin_client *c = t->data;

	if (c->answered)
		snprintf(c->why, sizeof(c->why), "the client did not take it within %u ms",
			 (unsigned)uv_timer_get_repeat(t));
	say(c->srv, "admin socket %s: dropped client (uid %ld, pid %ld): %s within %u ms",
	    c->srv ? c->srv->path : "", c->uid, c->pid,
	    c->answered ? "did not take its reply" : "no whole request", (unsigned)uv_timer_get_repeat(t));
	client_close(c);
}

static void peer_cred(struct admin_client *c)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	uv_os_fd_t fd;

	if (uv_fileno((uv_handle_t *)&c->pipe, &fd) == 0 &&
	    getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 && len == sizeof(cred)) {
		c->uid = (long)cred.uid;
		c->pid = (long)cred.pid;
	}
	snprintf(c->source, sizeof(c->source), "admin uid %ld pid %ld", c->uid, c->pid);
}

static void on_connection(uv_stream_t *server, int status)
{
	struct admin *a = server->data;
	struct admin_client *c;
	unsigned ms = a->hooks.deadline_ms ? a->hooks.deadline_ms : ADMIN_DEADLINE_MS;
	char msg[160];

	if (status < 0 || !(c = calloc(1, sizeof(*c))))
		return;
	uv_pipe_init(server->loop, &c->pipe, 0);
	uv_timer_init(server->loop, &c->deadline);
	c->pipe.data = c->deadline.data = c;
	c->handles = 2;
	c->srv = a;
	c->uid = c->pid = -1;
	a->clients++;
	c->next = a->head;
	if (a->head)
		a->head->prev = c;
	a->head = c;
	if (uv_accept(server, (uv_stream_t *)&c->pipe) < 0) {
		client_close(c);
		return;
	}
	c->accepted = uv_now(server->loop);
	if (a->clients > ADMIN_CLIENTS_MAX) {
		struct admin_client *old = NULL;

		/* the oldest that has not sent its request: idle local clients
		 * must not lock meshctl out */
		for (struct admin_client *o = c->next; o; o = o->next)
			if (!o->answered)
				old = o;
		if (!old) {
			say(a, "admin socket %s: more than %d clients, all busy: the new one dropped",
			    a->path, ADMIN_CLIENTS_MAX);
			client_close(c);
			return;
		}
		say(a, "admin socket %s: more than %d clients: dropped the oldest idle one (uid %ld,"
		    " pid %ld, no whole request in %llu ms)", a->path, ADMIN_CLIENTS_MAX, old->uid,
		    old->pid, (unsigned long long)(c->accepted - old->accepted));
		client_close(old);
	}
	peer_cred(c);
	uv_timer_start(&c->deadline, on_deadline, ms, ms);
	if (c->uid != 0 && c->uid != (long)geteuid()) {
		if (geteuid() == 0)
			snprintf(msg, sizeof(msg), "uid %ld may not use the admin socket (root only)",
				 c->uid);
		else
			snprintf(msg, sizeof(msg), "uid %ld may not use the admin socket"
				 " (root and uid %ld only)", c->uid, (long)geteuid());
		say(a, "admin socket %s: refused pid %ld: %s", a->path, c->pid, msg);
		reply_error(c, msg);
		return;
	}
	if (uv_read_start((uv_stream_t *)&c->pipe, on_alloc, on_read) < 0)
		client_close(c);
}

/* ---- the listener ---- */

/* Somebody accepts connections on the socket file at path. */
static bool socket_in_use(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, rc;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return false;
	rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	close(fd);
	return rc == 0 || errno == EAGAIN;
}

/* A stale socket file is removed; anything else at path refuses the start. */
static int clear_path(const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sa;
	struct stat sb;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "admin socket %s: path too long (at most %zu bytes)", path,
			 sizeof(sa.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	if (lstat(path, &sb) < 0)
		return 0;
	if (!S_ISSOCK(sb.st_mode)) {
		snprintf(err, errlen, "admin socket %s: exists and is not a socket", path);
		return -EEXIST;
	}
	if (socket_in_use(path)) {
		snprintf(err, errlen, "admin socket %s: a running process listens on it", path);
		return -EADDRINUSE;
	}
	if (unlink(path) < 0 && errno != ENOENT) {
		int rc = -errno;

		snprintf(err, errlen, "admin socket %s: remove the stale socket: %s", path,
			 strerror(errno));
		return rc;
	}
	return 0;
}

/* libuv reports a missing directory as EACCES (as Windows would): say
 * which it is, /run/meshd not made being the likely mistake. */
static void bind_error(const char *path, int *rc, char *err, size_t errlen)
{
	const char *slash = strrchr(path, '/');
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
	struct stat sb;

	if (*rc == UV_EACCES && slash && slash > path) {
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
		if (stat(dir, &sb) < 0 && errno == ENOENT) {
			snprintf(err, errlen, "admin socket %s: directory %s does not exist", path, dir);
			*rc = -ENOENT;
			return;
		}
	}
	snprintf(err, errlen, "admin socket %s: %s", path, uv_strerror(*rc));
}

static void server_closed(uv_handle_t *h)
{
	struct admin *a = h->data;

	free(a->path);
	free(a);
}

static void server_closed_unlink(uv_handle_t *h)
{
	struct admin *a = h->data;

	unlink(a->path);
	server_closed(h);
}

int admin_start(uv_loop_t *loop, const char *path, struct mstate *st,
		const struct admin_hooks *hooks, struct admin **out, char *err, size_t errlen)
{
	struct admin *a = calloc(1, sizeof(*a));
	mode_t old;
	int rc;

	*out = NULL;
	if (!a || !(a->path = strdup(path))) {
		free(a);
		snprintf(err, errlen, "admin socket %s: out of memory", path);
		return -ENOMEM;
	}
	a->st = st;
	if (hooks)
		a->hooks = *hooks;
	if ((rc = clear_path(path, err, errlen))) {
		free(a->path);
		free(a);
		return rc;
	}
	uv_pipe_init(loop, &a->pipe, 0);
	a->pipe.data = a;
	old = umask(0177);      /* the socket is born 0600 */
	rc = uv_pipe_bind(&a->pipe, path);
	umask(old);
	if (rc == 0 && (rc = uv_listen((uv_stream_t *)&a->pipe, 16, on_connection)) < 0) {
		snprintf(err, errlen, "admin socket %s: %s", path, uv_strerror(rc));
		uv_close((uv_handle_t *)&a->pipe, server_closed_unlink);
		return rc;
	}
	if (rc < 0) {
		bind_error(path, &rc, err, errlen);
		uv_close((uv_handle_t *)&a->pipe, server_closed);
		return rc;
	}
	*out = a;
	return 0;
}

void admin_close(struct admin *a)
{
	if (!a)
		return;
	while (a->head) {
		snprintf(a->head->why, sizeof(a->head->why), "meshd stopped first");
		client_close(a->head);
	}
	uv_close((uv_handle_t *)&a->pipe, server_closed_unlink);
}
