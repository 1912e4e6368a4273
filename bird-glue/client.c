/*
 * client.c — asynchronous client of BIRD's control socket on libuv.
 *
 * One connection at a time, one command in flight. Anything that puts the
 * byte stream out of step with the queue (timeout, garbage, a reply nobody
 * asked for) drops the connection: a fresh one is the only way back in
 * sync. Reconnects back off from 100 ms, doubling to 5 s.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "bird-glue/bird.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define STABLE_MS 5000          /* answering this long makes a connection good */

struct cmd {
	struct cmd *next;
	bird_cmd_cb cb;
	void *arg;
	size_t len;             /* of line, '\n' included */
	char line[];
};

/* One connection attempt; freed in its pipe's close callback. */
struct conn {
	uv_pipe_t pipe;
	uv_connect_t req;
	struct bird_client *c;
};

struct write_req {
	uv_write_t req;
	char buf[];
};

struct bird_client {
	uv_loop_t *loop;
	char *path;
	uint64_t timeout_ms;
	bird_state_cb state_cb;
	void *state_arg;
	struct bird_parser *parser;

	uv_timer_t cmd_timer;   /* the command in flight, or the welcome */
	uv_timer_t retry_timer; /* reconnect backoff */
	uv_timer_t fail_timer;  /* fails commands queued while down, from the loop */

	struct conn *conn;      /* NULL while waiting to reconnect */
	bool connected;         /* the welcome was received on conn */
	uint64_t backoff_ms;
	uint64_t answered_ms;   /* when conn first answered a command, 0 if not yet */

	struct cmd *head, **tail;
	struct cmd *in_flight;

	size_t reply_max;       /* bytes of one reply; 0 = no cap */
	size_t reply_bytes;     /* received for the command in flight */

	bool reported, reported_up;
	char why[320];          /* last reason given to state_cb */

	bool closed;
	int handles;            /* open handles; memory goes when 0 after close */
	char rbuf[16384];
};

static void start_connect(struct bird_client *c);
static void on_cmd_timeout(uv_timer_t *t);

static void maybe_free(struct bird_client *c)
{
	if (!c->closed || c->handles > 0)
		return;
	bird_parser_free(c->parser);
	free(c->path);
	free(c);
}

static void on_timer_closed(uv_handle_t *h)
{
	struct bird_client *c = h->data;

	c->handles--;
	maybe_free(c);
}

static void on_conn_closed(uv_handle_t *h)
{
	struct conn *conn = h->data;
	struct bird_client *c = conn->c;

	free(conn);
	c->handles--;
	maybe_free(c);
}

static struct cmd *pop(struct bird_client *c)
{
	struct cmd *cmd = c->head;

	if (cmd) {
		c->head = cmd->next;
		if (!c->head)
			c->tail = &c->head;
	}
	return cmd;
}

/* Runs cb after freeing cmd, so cb may send or even close the client. */
static void finish(struct cmd *cmd, int err, const struct bird_reply *r)
{
	bird_cmd_cb cb = cmd->cb;
	void *arg = cmd->arg;

	free(cmd);
	cb(arg, err, r);
}

static void fail_queue(struct bird_client *c, int err)
{
	struct cmd *cmd;

	while (!c->closed && (cmd = pop(c)))
		finish(cmd, err, NULL);
}

static void report(struct bird_client *c, bool up, const char *why)
{
	/* a reconnect loop failing for the same reason is logged once */
	if (c->reported && c->reported_up == up && !strcmp(c->why, why))
		return;
	c->reported = true;
	c->reported_up = up;
	snprintf(c->why, sizeof(c->why), "%s", why);
	if (c->state_cb)
		c->state_cb(c->state_arg, up, c->why);
}

static void close_conn(struct bird_client *c)
{
	struct conn *conn = c->conn;

	c->conn = NULL;
	c->connected = false;
	uv_timer_stop(&c->cmd_timer);
	if (conn)
		uv_close((uv_handle_t *)&conn->pipe, on_conn_closed);
}

static void on_retry(uv_timer_t *t)
{
	struct bird_client *c = t->data;

	if (!c->closed && !c->conn)
		start_connect(c);
}

static void schedule_retry(struct bird_client *c)
{
	uv_timer_start(&c->retry_timer, on_retry, c->backoff_ms, 0);
	c->backoff_ms *= 2;
	if (c->backoff_ms > BACKOFF_MAX_MS)
		c->backoff_ms = BACKOFF_MAX_MS;
}

/* Lose the connection: the command in flight gets err, the queue
 * -ENOTCONN, state_cb the reason; a reconnect is scheduled. */
__attribute__((format(printf, 3, 4)))
static void drop(struct bird_client *c, int err, const char *fmt, ...)
{
	char why[320];
	struct cmd *cmd = c->in_flight;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	/* Only a connection that kept answering proves BIRD good: one that
	 * welcomes, answers and then drops is retried ever more slowly. */
	if (c->answered_ms && uv_now(c->loop) - c->answered_ms >= STABLE_MS)
		c->backoff_ms = BACKOFF_MIN_MS;
	c->answered_ms = 0;
	close_conn(c);
	schedule_retry(c);
	c->in_flight = NULL;
	if (cmd)
		finish(cmd, err, NULL);
	fail_queue(c, -ENOTCONN);
	if (c->closed)
		return;
	report(c, false, why);
}

static void on_write(uv_write_t *req, int status)
{
	struct write_req *w = (struct write_req *)req;
	struct conn *conn = req->handle->data;
	struct bird_client *c = conn->c;

	free(w);
	if (status < 0 && status != UV_ECANCELED && c->conn == conn)
		drop(c, -ECONNRESET, "%s: write: %s", c->path, uv_strerror(status));
}

static void pump(struct bird_client *c)
{
	struct write_req *w;
	struct cmd *cmd;
	uv_buf_t buf;
	int rc;

	if (!c->connected || c->in_flight || !c->head)
		return;
	cmd = pop(c);
	c->in_flight = cmd;
	w = malloc(sizeof(*w) + cmd->len);
	if (!w) {
		drop(c, -ENOMEM, "%s: out of memory", c->path);
		return;
	}
	memcpy(w->buf, cmd->line, cmd->len);
	buf = uv_buf_init(w->buf, (unsigned)cmd->len);
	rc = uv_write(&w->req, (uv_stream_t *)&c->conn->pipe, &buf, 1, on_write);
	if (rc < 0) {
		free(w);
		drop(c, -ECONNRESET, "%s: write: %s", c->path, uv_strerror(rc));
		return;
	}
	c->reply_bytes = 0;
	uv_timer_start(&c->cmd_timer, on_cmd_timeout, c->timeout_ms, 0);
}

static void on_welcome(struct bird_client *c, const struct bird_reply *r)
{
	char why[320];

	if (r->code != 1) {
		drop(c, -EPROTO, "%s: expected the welcome 0001, BIRD sent \"%04d %.80s\"",
		     c->path, r->code, r->text);
		return;
	}
	uv_timer_stop(&c->cmd_timer);
	c->connected = true;
	snprintf(why, sizeof(why), "%s: %.80s", c->path, r->text);
	report(c, true, why);
	if (!c->closed)
		pump(c);
}

static void on_reply(void *arg, const struct bird_reply *r)
{
	struct bird_client *c = arg;
	struct cmd *cmd = c->in_flight;

	if (c->closed || !c->conn)
		return;         /* the rest of a buffer of a dropped connection */
	if (!c->connected) {
		on_welcome(c, r);
		return;
	}
	if (!cmd) {
		drop(c, -EPROTO, "%s: BIRD sent a reply nobody asked for: \"%04d %.80s\"",
		     c->path, r->code, r->text);
		return;
	}
	c->in_flight = NULL;
	uv_timer_stop(&c->cmd_timer);
	if (!c->answered_ms)
		c->answered_ms = uv_now(c->loop);
	finish(cmd, 0, r);
	if (!c->closed)
		pump(c);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	struct conn *conn = h->data;

	(void)hint;
	*buf = uv_buf_init(conn->c->rbuf, sizeof(conn->c->rbuf));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct conn *conn = s->data;
	struct bird_client *c = conn->c;
	int rc;

	if (c->conn != conn || nread == 0)
		return;
	if (nread < 0) {
		if (nread == UV_EOF)
			drop(c, -ECONNRESET, "%s: BIRD closed the connection", c->path);
		else
			drop(c, -ECONNRESET, "%s: read: %s", c->path, uv_strerror((int)nread));
		return;
	}
	/* The bytes of a reply that is over the cap are never parsed: the
	 * connection goes, and the command fails with -EMSGSIZE. */
	if (c->reply_max && c->in_flight && (c->reply_bytes += (size_t)nread) > c->reply_max) {
		drop(c, -EMSGSIZE, "%s: the reply to \"%.*s\" is over %zu bytes", c->path,
		     (int)c->in_flight->len - 1, c->in_flight->line, c->reply_max);
		return;
	}
	rc = bird_parser_feed(c->parser, buf->base, (size_t)nread, on_reply, c);
	if (rc < 0 && !c->closed && c->conn == conn) {
		if (rc == -EPROTO)
			drop(c, -EPROTO, "%s: BIRD sent garbage: %s", c->path,
			     bird_parser_error(c->parser));
		else
			drop(c, rc, "%s: reading replies: %s", c->path, strerror(-rc));
	}
}

static void on_connect(uv_connect_t *req, int status)
{
	struct conn *conn = req->data;
	struct bird_client *c = conn->c;
	int rc;

	if (c->conn != conn)
		return;         /* cancelled by a drop or close */
	if (status < 0) {
		drop(c, -ENOTCONN, "%s: connect: %s", c->path, uv_strerror(status));
		return;
	}
	rc = uv_read_start((uv_stream_t *)&conn->pipe, on_alloc, on_read);
	if (rc < 0) {
		drop(c, -ENOTCONN, "%s: read: %s", c->path, uv_strerror(rc));
	}
}

static void on_cmd_timeout(uv_timer_t *t)
{
	struct bird_client *c = t->data;

	if (c->connected && c->in_flight)
		drop(c, -ETIMEDOUT, "%s: no reply to \"%.*s\" within %llu ms", c->path,
		     (int)c->in_flight->len - 1, c->in_flight->line,
		     (unsigned long long)c->timeout_ms);
	else
		drop(c, -ENOTCONN, "%s: no welcome within %llu ms", c->path,
		     (unsigned long long)c->timeout_ms);
}

static void start_connect(struct bird_client *c)
{
	struct conn *conn = calloc(1, sizeof(*conn));

	if (!conn) {
		schedule_retry(c);
		return;
	}
	conn->c = c;
	uv_pipe_init(c->loop, &conn->pipe, 0);
	conn->pipe.data = conn;
	conn->req.data = conn;
	c->handles++;
	c->conn = conn;
	c->connected = false;
	bird_parser_reset(c->parser);
	uv_pipe_connect(&conn->req, &conn->pipe, c->path, on_connect);
	uv_timer_start(&c->cmd_timer, on_cmd_timeout, c->timeout_ms, 0);
}

/* Commands sent while down fail from the loop, never inside send. */
static void on_fail_timer(uv_timer_t *t)
{
	struct bird_client *c = t->data;

	if (!c->conn)
		fail_queue(c, -ENOTCONN);
}

int bird_client_new(uv_loop_t *loop, const char *socket_path,
		    uint64_t timeout_ms, bird_state_cb state_cb, void *state_arg,
		    struct bird_client **out)
{
	struct bird_client *c;

	if (!loop || !socket_path || !socket_path[0] || timeout_ms == 0 || !out)
		return -EINVAL;
	if (strlen(socket_path) >= sizeof(((struct sockaddr_un *)0)->sun_path))
		return -ENAMETOOLONG;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->path = strdup(socket_path);
	c->parser = bird_parser_new();
	if (!c->path || !c->parser) {
		bird_parser_free(c->parser);
		free(c->path);
		free(c);
		return -ENOMEM;
	}
	c->loop = loop;
	c->timeout_ms = timeout_ms;
	c->state_cb = state_cb;
	c->state_arg = state_arg;
	c->backoff_ms = BACKOFF_MIN_MS;
	c->tail = &c->head;
	uv_timer_init(loop, &c->cmd_timer);
	uv_timer_init(loop, &c->retry_timer);
	uv_timer_init(loop, &c->fail_timer);
	c->cmd_timer.data = c->retry_timer.data = c->fail_timer.data = c;
	c->handles = 3;
	start_connect(c);
	*out = c;
	return 0;
}

int bird_client_send(struct bird_client *c, const char *cmd, bird_cmd_cb cb,
		     void *arg)
{
	struct cmd *q;
	size_t len;

	if (!c || !cmd || !cb)
		return -EINVAL;
	if (c->closed)
		return -ECANCELED;
	len = strlen(cmd);
	if (len == 0 || len >= BIRD_LINE_MAX || strpbrk(cmd, "\r\n"))
		return -EINVAL;
	q = malloc(sizeof(*q) + len + 1);
	if (!q)
		return -ENOMEM;
	q->next = NULL;
	q->cb = cb;
	q->arg = arg;
	q->len = len + 1;
	memcpy(q->line, cmd, len);
	q->line[len] = '\n';
	*c->tail = q;
	c->tail = &q->next;
	if (c->connected)
		pump(c);
	else if (!c->conn)
		uv_timer_start(&c->fail_timer, on_fail_timer, 0, 0);
	return 0;
}

void bird_client_set_reply_max(struct bird_client *c, size_t bytes)
{
	if (c)
		c->reply_max = bytes;
}

bool bird_client_connected(const struct bird_client *c)
{
	return c && c->connected;
}

void bird_client_close(struct bird_client *c)
{
	struct cmd *cmd;

	if (!c || c->closed)
		return;
	c->closed = true;
	if ((cmd = c->in_flight)) {
		c->in_flight = NULL;
		finish(cmd, -ECANCELED, NULL);
	}
	while ((cmd = pop(c)))
		finish(cmd, -ECANCELED, NULL);
	close_conn(c);
	uv_close((uv_handle_t *)&c->cmd_timer, on_timer_closed);
	uv_close((uv_handle_t *)&c->retry_timer, on_timer_closed);
	uv_close((uv_handle_t *)&c->fail_timer, on_timer_closed);
}
