/*
 * fakebird.c — a control-socket server for what a real BIRD will not do:
 * send garbage, fall silent, close mid-reply, trickle bytes one by one.
 * It runs on the loop of the test, next to the client under test.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/lib/testlib.h"

struct fb_conn {
	uv_pipe_t pipe;
	struct fakebird *f;
	struct fb_conn *next;
	size_t line_len;        /* bytes of the command being received */
	char *out;              /* FAKEBIRD_SLOW: bytes still to send */
	size_t out_len, out_pos;
	bool closing;
};

struct fakebird {
	uv_pipe_t server;
	uv_timer_t tick;        /* FAKEBIRD_SLOW: one byte per loop turn */
	uv_loop_t *loop;
	enum fakebird_mode mode;
	unsigned conns, cmds;
	struct fb_conn *list;
	int handles;
	bool closed;
	char rbuf[4096];
};

static void fb_maybe_free(struct fakebird *f)
{
	if (f->closed && f->handles == 0)
		free(f);
}

static void on_fb_handle_closed(uv_handle_t *h)
{
	struct fakebird *f = h->data;

	f->handles--;
	fb_maybe_free(f);
}

static void on_conn_closed(uv_handle_t *h)
{
	struct fb_conn *k = h->data;
	struct fakebird *f = k->f;

	free(k->out);
	free(k);
	f->handles--;
	fb_maybe_free(f);
}

static void conn_close(struct fb_conn *k)
{
	struct fb_conn **pp;

	if (k->closing)
		return;
	k->closing = true;
	for (pp = &k->f->list; *pp; pp = &(*pp)->next)
		if (*pp == k) {
			*pp = k->next;
			break;
		}
	uv_close((uv_handle_t *)&k->pipe, on_conn_closed);
}

static void on_tick(uv_timer_t *t)
{
	struct fakebird *f = t->data;
	bool more = false;

	for (struct fb_conn *k = f->list, *next; k; k = next) {
		next = k->next;
		if (k->out_pos >= k->out_len)
			continue;
		uv_buf_t b = uv_buf_init(k->out + k->out_pos, 1);

		if (uv_try_write((uv_stream_t *)&k->pipe, &b, 1) != 1) {
			conn_close(k);
			continue;
		}
		k->out_pos++;
		more |= k->out_pos < k->out_len;
	}
	if (more)
		uv_timer_start(&f->tick, on_tick, 0, 0);
}

static void conn_send(struct fb_conn *k, const char *text)
{
	size_t n = strlen(text);

	if (k->f->mode == FAKEBIRD_SLOW) {
		char *o = realloc(k->out, k->out_len + n);

		if (!o) {
			conn_close(k);
			return;
		}
		memcpy(o + k->out_len, text, n);
		k->out = o;
		k->out_len += n;
		uv_timer_start(&k->f->tick, on_tick, 0, 0);
		return;
	}
	uv_buf_t b = uv_buf_init((char *)text, (unsigned)n);

	if (uv_try_write((uv_stream_t *)&k->pipe, &b, 1) != (int)n)
		conn_close(k);
}

static void on_command(struct fb_conn *k)
{
	k->f->cmds++;
	switch (k->f->mode) {
	case FAKEBIRD_GARBAGE:
		conn_send(k, "hello, world\n");
		break;
	case FAKEBIRD_SILENT:
	case FAKEBIRD_BAD_WELCOME:
		break;
	case FAKEBIRD_CLOSE_MID:
		conn_send(k, "2002-Name       Proto      Table      State  Since         Info\n"
			  "1002-healthd_web_v4 Sta");
		conn_close(k);
		break;
	case FAKEBIRD_SLOW:
		conn_send(k, FAKEBIRD_SLOW_REPLY);
		break;
	case FAKEBIRD_DENY:
		conn_send(k, "8007 Access denied\n");
		break;
	case FAKEBIRD_ANSWER_CLOSE:
		conn_send(k, "2002-Name       Proto      Table      State  Since         Info\n"
			  "0000 \n");
		conn_close(k);
		break;
	}
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	struct fb_conn *k = h->data;

	(void)hint;
	*buf = uv_buf_init(k->f->rbuf, sizeof(k->f->rbuf));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct fb_conn *k = s->data;

	if (nread < 0) {
		conn_close(k);
		return;
	}
	for (ssize_t i = 0; i < nread && !k->closing; i++) {
		if (buf->base[i] != '\n') {
			k->line_len++;
			continue;
		}
		k->line_len = 0;
		on_command(k);
	}
}

static void on_connection(uv_stream_t *server, int status)
{
	struct fakebird *f = server->data;
	struct fb_conn *k;

	if (status < 0 || f->closed || !(k = calloc(1, sizeof(*k))))
		return;
	k->f = f;
	uv_pipe_init(f->loop, &k->pipe, 0);
	k->pipe.data = k;
	f->handles++;
	k->next = f->list;
	f->list = k;
	if (uv_accept(server, (uv_stream_t *)&k->pipe) < 0 ||
	    uv_read_start((uv_stream_t *)&k->pipe, on_alloc, on_read) < 0) {
		conn_close(k);
		return;
	}
	f->conns++;
	conn_send(k, f->mode == FAKEBIRD_BAD_WELCOME ? "9001 go away\n"
						    : "0001 BIRD fake ready.\n");
}

int fakebird_start(uv_loop_t *loop, const char *path, enum fakebird_mode mode,
		   struct fakebird **out)
{
	struct fakebird *f = calloc(1, sizeof(*f));
	int rc;

	if (!f)
		return UV_ENOMEM;
	signal(SIGPIPE, SIG_IGN);       /* a peer gone mid-write is a test case */
	f->loop = loop;
	f->mode = mode;
	uv_pipe_init(loop, &f->server, 0);
	uv_timer_init(loop, &f->tick);
	f->server.data = f->tick.data = f;
	f->handles = 2;
	unlink(path);
	rc = uv_pipe_bind(&f->server, path);
	if (rc == 0)
		rc = uv_listen((uv_stream_t *)&f->server, 8, on_connection);
	if (rc < 0) {
		fakebird_close(f);
		return rc;
	}
	*out = f;
	return 0;
}

unsigned fakebird_connections(const struct fakebird *f)
{
	return f->conns;
}

unsigned fakebird_commands(const struct fakebird *f)
{
	return f->cmds;
}

void fakebird_close(struct fakebird *f)
{
	f->closed = true;
	while (f->list)
		conn_close(f->list);
	uv_close((uv_handle_t *)&f->server, on_fb_handle_closed);
	uv_close((uv_handle_t *)&f->tick, on_fb_handle_closed);
}
