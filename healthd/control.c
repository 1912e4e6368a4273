/*
 * The control socket: one request per line, one reply per request,
 * "CODE JSON\n" (200 ok, 400 bad request, 404 no such thing, 500 failed).
 */
#include <errno.h>
#include <jansson.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "healthd/internal.h"

#define CTL_LINE_MAX 4096
#define CTL_CLIENTS_MAX 64
#define CTL_IDLE_MS 1000   /* at the limit, a client silent this long makes room */

struct ctl_server {
	uv_pipe_t pipe;
	struct hd *hd;
	char *path;
	int clients;
	struct ctl_client *head;
};

struct ctl_client {
	uv_pipe_t pipe;
	struct ctl_server *srv;
	char buf[CTL_LINE_MAX];
	size_t len;
	int pending;        /* async replies still owed */
	uint64_t last_ms;   /* last connect or read, loop time */
	long uid;           /* the peer's, from SO_PEERCRED; -1 = not known */
	bool closed;
	struct ctl_client *next, *prev;
};

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

static void client_close(struct ctl_client *c)
{
	if (!uv_is_closing((uv_handle_t *)&c->pipe))
		uv_close((uv_handle_t *)&c->pipe, client_closed);
}

static void write_done(uv_write_t *w, int status)
{
	(void)status;
	free(w->data);
	free(w);
}

static void reply(struct ctl_client *c, int code, json_t *body)
{
	char *js = json_dumps(body, JSON_COMPACT);
	char *line = NULL;
	uv_write_t *w;
	int n;

	json_decref(body);
	if (c->closed || uv_is_closing((uv_handle_t *)&c->pipe) || !js) {
		free(js);
		return;
	}
	n = asprintf(&line, "%d %s\n", code, js);
	free(js);
	if (n < 0)
		return;
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
	}
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
	client_maybe_free(c);
}

static const struct {
	const char *word;
	enum ctl_cmd cmd;
} ctl_words[] = {
	{ "status", CTL_STATUS }, { "version", CTL_VERSION }, { "reload", CTL_RELOAD },
	{ "drain", CTL_DRAIN }, { "undrain", CTL_UNDRAIN }, { "check", CTL_CHECK },
};

/* Length of the UTF-8 sequence at p (at most n bytes), 0 when invalid:
 * no overlong forms, no surrogates, nothing above U+10FFFF. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
	size_t len = p[0] < 0x80 ? 1 : p[0] >= 0xc2 && p[0] <= 0xdf ? 2 :
		     p[0] >= 0xe0 && p[0] <= 0xef ? 3 : p[0] >= 0xf0 && p[0] <= 0xf4 ? 4 : 0;

	if (!len || len > n)
		return 0;
	for (size_t i = 1; i < len; i++)
		if ((p[i] & 0xc0) != 0x80)
			return 0;
	if ((p[0] == 0xe0 && p[1] < 0xa0) || (p[0] == 0xed && p[1] > 0x9f) ||
	    (p[0] == 0xf0 && p[1] < 0x90) || (p[0] == 0xf4 && p[1] > 0x8f))
		return 0;
	return len;
}

int ctl_text_check(const char *what, const char *s, size_t max, char *err, size_t errlen)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = strlen(s);

	if (!n) {
		snprintf(err, errlen, "%s is empty", what);
		return -EINVAL;
	}
	if (n > max) {
		snprintf(err, errlen, "%s too long (%zu bytes, at most %zu)", what, n, max);
		return -EINVAL;
	}
	for (size_t i = 0, len; i < n; i += len) {
		len = utf8_len(p + i, n - i);
		if (!len) {
			snprintf(err, errlen, "%s is not valid UTF-8 (byte %zu)", what, i + 1);
			return -EINVAL;
		}
		/* C0, DEL and C1 (U+0080..U+009F is 0xc2 0x80..0x9f) */
		if ((len == 1 && (p[i] < 0x20 || p[i] == 0x7f)) ||
		    (len == 2 && p[i] == 0xc2 && p[i + 1] < 0xa0)) {
			snprintf(err, errlen, "%s contains a control character (byte %zu)", what, i + 1);
			return -EINVAL;
		}
	}
	return 0;
}

/* The next blank-separated word, NUL-terminated in place; NULL at the end. */
static char *next_word(char **p)
{
	char *s = *p, *w;

	s += strspn(s, " \t");
	if (!*s) {
		*p = s;
		return NULL;
	}
	w = s;
	s += strcspn(s, " \t");
	if (*s)
		*s++ = '\0';
	*p = s;
	return w;
}

/* [DURATION] [reason TEXT] after drain/undrain TARGET. */
static int drain_options(char *rest, struct ctl_request *req, char *err, size_t errlen)
{
	bool have_for = false;
	char *w;

	while ((w = next_word(&rest))) {
		if (!strcmp(w, "reason")) {
			char *end;

			rest += strspn(rest, " \t");
			end = rest + strlen(rest);
			while (end > rest && (end[-1] == ' ' || end[-1] == '\t'))
				*--end = '\0';
			if (!*rest) {
				snprintf(err, errlen, "reason needs a text");
				return -EINVAL;
			}
			if (ctl_text_check("reason", rest, SVC_REASON_MAX, err, errlen) < 0)
				return -EINVAL;
			req->reason = rest;
			return 0;
		}
		int rc = have_for || req->cmd == CTL_UNDRAIN ? -EINVAL
			 : cfg_parse_duration_max(w, CFG_DRAIN_MAX_MS, &req->for_ms);

		if (rc == -ERANGE) {
			char max[32];

			req->for_ms = 0;
			cfg_format_duration(max, sizeof(max), CFG_DRAIN_MAX_MS);
			snprintf(err, errlen, "drain duration '%.64s' is too long (at most %s)", w, max);
			return -EINVAL;
		}
		if (rc < 0) {
			req->for_ms = 0;
			snprintf(err, errlen, "bad duration '%.64s' (e.g. 30s, 5m; undrain takes none)", w);
			return -EINVAL;
		}
		have_for = true;
	}
	return 0;
}

int ctl_request_parse(char *line, struct ctl_request *req, char *err, size_t errlen)
{
	char *rest = line, *cmd = next_word(&rest), *arg = next_word(&rest);
	size_t i, n = sizeof(ctl_words) / sizeof(ctl_words[0]);

	memset(req, 0, sizeof(*req));
	if (!cmd) {
		snprintf(err, errlen, "empty request");
		return -EINVAL;
	}
	for (i = 0; i < n && strcmp(cmd, ctl_words[i].word); i++)
		;
	if (i == n) {
		snprintf(err, errlen, "unknown command '%.64s' (status, drain, undrain, check, reload, version)", cmd);
		return -EINVAL;
	}
	req->cmd = ctl_words[i].cmd;
	req->arg = arg;
	if (req->cmd == CTL_DRAIN || req->cmd == CTL_UNDRAIN) {
		if (!arg) {
			snprintf(err, errlen, "usage: drain SERVICE|--all [DURATION] [reason TEXT]"
				 " | undrain SERVICE|--all [reason TEXT]");
			return -EINVAL;
		}
		req->all = !strcmp(arg, "--all");
		return drain_options(rest, req, err, errlen);
	} else if (req->cmd == CTL_CHECK && !arg) {
		snprintf(err, errlen, "usage: check [SERVICE/]CHECK");
		return -EINVAL;
	}
	return 0;
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
	char user[64], err[128];
	struct hd_who who = { .uid = c->uid, .user = user, .reason = req->reason };
	bool on = req->cmd == CTL_DRAIN;
	json_t *body;

	user_name(c->uid, user, sizeof(user));
	if (hd_drain(c->srv->hd, req->all ? NULL : req->arg, on, req->for_ms, &who) < 0) {
		snprintf(err, sizeof(err), "no service '%.64s'", req->arg);
		reply_error(c, 404, err);
		return;
	}
	body = json_pack("{s:s,s:b}", "service", req->arg, "drain", on);
	if (req->reason)
		json_object_set_new(body, "reason", json_string(req->reason));
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

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct ctl_client *c = s->data;
	char *nl;

	(void)buf;
	if (n < 0) {
		client_close(c);
		return;
	}
	c->last_ms = uv_now(s->loop);
	c->len += (size_t)n;
	while ((nl = memchr(c->buf, '\n', c->len))) {
		size_t used = (size_t)(nl - c->buf) + 1;

		*nl = '\0';
		if (nl > c->buf && nl[-1] == '\r')
			nl[-1] = '\0';
		handle(c, c->buf);
		memmove(c->buf, c->buf + used, c->len - used);
		c->len -= used;
	}
	if (c->len == sizeof(c->buf)) {
		reply_error(c, 400, "request line too long");
		client_close(c);
	}
}

/* Closes the client idle longest (at least CTL_IDLE_MS), so that clients
 * holding connections open cannot lock operators out. */
static bool evict_idle(struct ctl_server *srv, uint64_t now)
{
	struct ctl_client *old = NULL;

	for (struct ctl_client *c = srv->head; c; c = c->next)
		if (c->pending == 0 && !uv_is_closing((uv_handle_t *)&c->pipe) &&
		    now - c->last_ms >= CTL_IDLE_MS && (!old || c->last_ms < old->last_ms))
			old = c;
	if (old)
		client_close(old);
	return old != NULL;
}

/* Who is on the other end: recorded with the drains it asks for. */
static void peer_uid(struct ctl_client *c)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	uv_os_fd_t fd;

	if (uv_fileno((uv_handle_t *)&c->pipe, &fd) == 0 &&
	    getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 && len == sizeof(cred))
		c->uid = (long)cred.uid;
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
	c->last_ms = uv_now(server->loop);
	srv->clients++;
	c->next = srv->head;
	if (srv->head)
		srv->head->prev = c;
	srv->head = c;
	c->uid = -1;
	if (uv_accept(server, (uv_stream_t *)&c->pipe) < 0) {
		client_close(c);
		return;
	}
	peer_uid(c);
	if (srv->clients > CTL_CLIENTS_MAX && !evict_idle(srv, c->last_ms)) {
		reply_error(c, 500, "too many control clients");
		client_close(c);
		return;
	}
	uv_read_start((uv_stream_t *)&c->pipe, on_alloc, on_read);
}

static void server_failed(uv_handle_t *h)
{
	struct ctl_server *srv = h->data;

	free(srv->path);
	free(srv);
}

int ctl_server_new(struct hd *hd, uv_loop_t *loop, const char *path,
		   struct ctl_server **out, char *err, size_t errlen)
{
	struct ctl_server *srv = calloc(1, sizeof(*srv));
	int rc;

	if (!srv)
		return -ENOMEM;
	srv->hd = hd;
	srv->path = strdup(path);
	uv_pipe_init(loop, &srv->pipe, 0);
	srv->pipe.data = srv;
	/* A socket file left by a crashed healthd would make bind fail. */
	unlink(path);
	rc = uv_pipe_bind(&srv->pipe, path);
	if (rc == 0)
		rc = uv_listen((uv_stream_t *)&srv->pipe, 16, on_connection);
	if (rc < 0) {
		snprintf(err, errlen, "control socket %s: %s", path, uv_strerror(rc));
		uv_close((uv_handle_t *)&srv->pipe, server_failed);
		return rc;
	}
	chmod(path, 0660);
	*out = srv;
	return 0;
}

static void server_closed(uv_handle_t *h)
{
	struct ctl_server *srv = h->data;

	unlink(srv->path);
	free(srv->path);
	free(srv);
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
	uv_close((uv_handle_t *)&srv->pipe, server_closed);
}
