/*
 * The control socket: one request per line, one reply per request,
 * "CODE JSON\n" (200 ok, 400 bad request, 404 no such thing, 500 failed).
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "healthd/internal.h"

#define CTL_LINE_MAX 4096
#define CTL_CLIENTS_MAX 64

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

static void handle(struct ctl_client *c, char *line)
{
	struct hd *hd = c->srv->hd;
	char *save = NULL, *cmd = strtok_r(line, " \t", &save);
	char *arg = strtok_r(NULL, " \t", &save);
	char *arg2 = strtok_r(NULL, " \t", &save);
	char err[512];

	if (!cmd) {
		reply_error(c, 400, "empty request");
	} else if (!strcmp(cmd, "status")) {
		reply(c, 200, hd_status(hd));
	} else if (!strcmp(cmd, "version")) {
		reply(c, 200, json_pack("{s:s}", "version", HEALTHD_VERSION));
	} else if (!strcmp(cmd, "reload")) {
		if (hd_reload(hd, err, sizeof(err)) < 0) {
			log_err("reload failed, the running config stays: %s", err);
			reply_error(c, 400, err);
		} else {
			reply(c, 200, json_pack("{s:b}", "reloaded", 1));
		}
	} else if (!strcmp(cmd, "drain") || !strcmp(cmd, "undrain")) {
		uint64_t for_ms = 0;
		bool on = !strcmp(cmd, "drain");

		if (!arg) {
			reply_error(c, 400, "usage: drain SERVICE [DURATION] | undrain SERVICE");
		} else if (arg2 && (!on || cfg_parse_duration(arg2, &for_ms) < 0)) {
			snprintf(err, sizeof(err), "bad duration '%s' (e.g. 30s, 5m)", arg2);
			reply_error(c, 400, err);
		} else if (hd_drain(hd, arg, on, for_ms) < 0) {
			snprintf(err, sizeof(err), "no service '%s'", arg);
			reply_error(c, 404, err);
		} else {
			reply(c, 200, json_pack("{s:s,s:b}", "service", arg, "drain", on));
		}
	} else if (!strcmp(cmd, "check")) {
		if (!arg) {
			reply_error(c, 400, "usage: check [SERVICE/]CHECK");
			return;
		}
		c->pending++;
		if (hd_check_now(hd, arg, check_result_cb, c) < 0) {
			c->pending--;
			snprintf(err, sizeof(err), "no check '%s'", arg);
			reply_error(c, 404, err);
		}
	} else {
		snprintf(err, sizeof(err), "unknown command '%.64s' (status, drain, undrain, check, reload, version)", cmd);
		reply_error(c, 400, err);
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
	srv->clients++;
	c->next = srv->head;
	if (srv->head)
		srv->head->prev = c;
	srv->head = c;
	if (uv_accept(server, (uv_stream_t *)&c->pipe) < 0) {
		client_close(c);
		return;
	}
	if (srv->clients > CTL_CLIENTS_MAX) {
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
