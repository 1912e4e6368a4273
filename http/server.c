/*
 * The HTTP server under healthd and meshd (see server.h): listeners,
 * connection accounting and deadlines, body collection with a cap, TLS,
 * and the reply helpers.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config/config.h"
#include "healthd/healthd.h"
#include "http/server.h"

#define HTTP_BACKLOG 1024
/* TLS 1.3 and 1.2, AEAD ciphers only (no CBC, no SHA-1 MACs), forward
 * secret key exchange only. */
#define HTTP_TLS_PRIORITIES "SECURE256:+SECURE128:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:" \
	"-CIPHER-ALL:+AES-256-GCM:+AES-128-GCM:+CHACHA20-POLY1305:-MAC-ALL:+AEAD:" \
	"-KX-ALL:+ECDHE-ECDSA:+ECDHE-RSA:+DHE-RSA"

/* One TCP connection, on its listener's list (oldest exchange first) from
 * its start, and again from each keep-alive response. */
struct http_conn {
	struct http_conn *prev, *next;
	struct MHD_Connection *conn;
	int fd;
	uint64_t since_ms;           /* its current exchange started */
	bool waiting;
	bool dropped;                /* shut down by us; MHD has yet to close it */
	struct http_listener *l;
	uint8_t src[HTTP_SOURCE_KEY]; /* its source: family, then the address (IPv6: its /64) */
};

struct http_listener {
	uv_poll_t poll;              /* MHD's epoll fd */
	uv_timer_t timer;            /* MHD_get_timeout(), request deadlines */
	uv_loop_t *loop;             /* NULL for the unbound test daemon */
	struct http_server *s;
	struct MHD_Daemon *mhd;
	char *addr;
	char *cert, *key;            /* PEM, for MHD's lifetime */
	bool tls;
	void *tag;
	int handles;                 /* open uv handles; freed at 0 */
	struct http_conn *oldest, *newest;   /* the waiting list */
	size_t n_conns, n_dropped;   /* open; shut down but not yet closed */
	bool closed;                 /* a connection closed in this MHD_run */
	unsigned per_source;         /* connections from one address (IPv6: one /64) */
};

/* One request between MHD's calls of the handler. */
struct http_exchange {
	char *body;
	size_t len;
	bool too_large;
	void *slot;                  /* the handler's, across a suspend */
};

struct http_server {
	struct http_server_opts o;
	char *methods;
	struct http_listener **ls;
	size_t n_ls, cap_ls;
	size_t live;                 /* listeners not yet freed */
	bool closing;
	struct MHD_Response *not_allowed, *too_large;
	size_t total, total_dropped; /* connections of every listener */
	size_t fd_cap;               /* RLIMIT_NOFILE less a reserve */
};

/* The process's descriptors left for connections: its soft limit less a
 * reserve for BIRD, the state, logs, the admin socket. */
#define HTTP_FD_RESERVE 64u

void http_source_key(const struct sockaddr *sa, uint8_t key[HTTP_SOURCE_KEY])
{
	memset(key, 0, HTTP_SOURCE_KEY);
	if (!sa)
		return;
	key[0] = (uint8_t)sa->sa_family;
	if (sa->sa_family == AF_INET) {
		memcpy(key + 1, &((const struct sockaddr_in *)sa)->sin_addr, 4);
	} else if (sa->sa_family == AF_INET6) {
		const uint8_t *a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
		static const uint8_t mapped[12] = { [10] = 0xff, [11] = 0xff };

		if (!memcmp(a, mapped, 12)) {   /* ::ffff:a.b.c.d is a.b.c.d */
			key[0] = AF_INET;
			memcpy(key + 1, a + 12, 4);
		} else {
			memcpy(key + 1, a, 8);      /* the /64 */
		}
	}
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	struct http_listener *l = cls;
	char msg[256];
	size_t n;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n && msg[n - 1] == '\n')
		msg[--n] = '\0';
	/* Debug only: a hostile client must not be able to flood the log. */
	log_debug("http %s: %s", l->addr, msg);
}

/* ---- replies ---- */

struct MHD_Response *http_text_response(const char *text)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(
		strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);

	if (r) {
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
		MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	}
	return r;
}

enum MHD_Result http_reply_owned(struct MHD_Connection *conn, unsigned code,
				 char *body, size_t len, const char *type)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	if (!body)
		return MHD_NO;   /* out of memory: MHD closes the connection */
	r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	if (!r) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	ret = MHD_queue_response(conn, code, r);
	MHD_destroy_response(r);
	return ret;
}

enum MHD_Result http_reply_static(struct MHD_Connection *conn, unsigned code,
				  const char *text, const char *type)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(
		strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
	enum MHD_Result ret;

	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	ret = MHD_queue_response(conn, code, r);
	MHD_destroy_response(r);
	return ret;
}

enum MHD_Result http_reply_json(struct MHD_Connection *conn, unsigned code, json_t *j)
{
	char *text = j ? json_dumps(j, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
	size_t len;
	char *body;

	json_decref(j);
	if (!text)
		return MHD_NO;
	len = strlen(text);
	/* json_dumps's buffer and a newline, in memory MHD may free() */
	body = realloc(text, len + 2);
	if (!body) {
		free(text);
		return MHD_NO;
	}
	body[len++] = '\n';
	body[len] = '\0';
	return http_reply_owned(conn, code, body, len, "application/json");
}

enum MHD_Result http_reply_error(struct MHD_Connection *conn, unsigned code,
				 const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return http_reply_json(conn, code, json_pack("{ss}", "error", msg));
}

/* ---- connections: the waiting list, deadlines, dropping ---- */

static uint64_t now_ms(const struct http_listener *l)
{
	return l->loop ? uv_now(l->loop) : 0;
}

static void wait_link(struct http_listener *l, struct http_conn *c)
{
	c->since_ms = now_ms(l);
	c->waiting = true;
	c->next = NULL;
	c->prev = l->newest;
	if (l->newest)
		l->newest->next = c;
	else
		l->oldest = c;
	l->newest = c;
}

static void wait_unlink(struct http_listener *l, struct http_conn *c)
{
	if (!c->waiting)
		return;
	if (c->prev)
		c->prev->next = c->next;
	else
		l->oldest = c->next;
	if (c->next)
		c->next->prev = c->prev;
	else
		l->newest = c->prev;
	c->prev = c->next = NULL;
	c->waiting = false;
}

/* MHD notices the shutdown on its next run (EOF, then EPOLLHUP) and
 * closes the connection itself; the fd stays MHD's until then. */
static void drop(struct http_listener *l, struct http_conn *c, const char *why)
{
	wait_unlink(l, c);
	c->dropped = true;
	l->n_dropped++;
	l->s->total_dropped++;
	if (shutdown(c->fd, SHUT_RDWR) < 0)
		log_debug("http %s: shutdown fd %d (%s): %s", l->addr, c->fd, why, strerror(errno));
}

/* Drops what has waited past the deadline; returns ms until the next one
 * is due, or UINT64_MAX when nothing waits. */
static uint64_t expire(struct http_listener *l)
{
	uint64_t now = now_ms(l);

	while (l->oldest && now - l->oldest->since_ms >= HTTP_REQUEST_DEADLINE_MS)
		drop(l, l->oldest, "request deadline");
	if (!l->oldest)
		return UINT64_MAX;
	return l->oldest->since_ms + HTTP_REQUEST_DEADLINE_MS - now;
}

/* Called by MHD before it takes a connection (after its per-address cap). */
static enum MHD_Result on_accept(void *cls, const struct sockaddr *addr, socklen_t len)
{
	struct http_listener *l = cls;

	struct http_server *s = l->s;
	uint8_t key[HTTP_SOURCE_KEY];
	unsigned same = 0;

	if (s->o.accept && !s->o.accept(s->o.ctx, addr, len))
		return MHD_NO;
	/* MHD's own cap counts exact addresses; an IPv6 host has a /64 */
	http_source_key(addr, key);
	for (const struct http_conn *c = l->oldest; c; c = c->next)
		if (l->per_source && !memcmp(c->src, key, sizeof(key)) && ++same >= l->per_source) {
			log_debug("http %s: a source over its %u connections refused", l->addr, l->per_source);
			return MHD_NO;
		}
	/* every listener's connections together stay below the descriptors
	 * the process has: at EMFILE, MHD would spin on its listening socket */
	if (s->fd_cap && s->total - s->total_dropped >= s->fd_cap) {
		if (!l->oldest)
			return MHD_NO;
		drop(l, l->oldest, "descriptor limit");
		return MHD_YES;
	}
	if (l->n_conns - l->n_dropped < HTTP_CONN_LIMIT)
		return MHD_YES;
	if (!l->oldest)
		return MHD_NO;   /* every slot is being dropped already */
	drop(l, l->oldest, "connection limit");
	return MHD_YES;
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_ctx,
			  enum MHD_ConnectionNotificationCode what)
{
	struct http_listener *l = cls;
	struct http_conn *c = *socket_ctx;
	const union MHD_ConnectionInfo *info;

	if (what == MHD_CONNECTION_NOTIFY_STARTED) {
		info = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
		if (!info || !(c = calloc(1, sizeof(*c)))) {
			/* untracked: only MHD's own timeout bounds it */
			log_debug("http %s: cannot track a connection", l->addr);
			return;
		}
		c->conn = conn;
		c->l = l;
		c->fd = info->connect_fd;
		info = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
		http_source_key(info ? info->client_addr : NULL, c->src);
		wait_link(l, c);
		l->n_conns++;
		l->s->total++;
		*socket_ctx = c;
		return;
	}
	l->closed = true;   /* MHD may put its listening socket back: run again */
	if (!c)
		return;
	wait_unlink(l, c);
	if (c->dropped) {
		l->n_dropped--;
		l->s->total_dropped--;
	}
	l->n_conns--;
	l->s->total--;
	free(c);
	*socket_ctx = NULL;
}

static struct http_conn *conn_of(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *info =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

	return info ? info->socket_context : NULL;
}

static void exchange_free(struct http_exchange *x)
{
	if (!x)
		return;
	free(x->body);
	free(x);
}

/* A request ended: a kept-alive connection waits for its next request. */
static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct http_listener *l = cls;
	struct http_conn *c = conn_of(conn);

	struct http_exchange *x = *req_cls;

	if (x && x->slot && l->s->o.slot_free)
		l->s->o.slot_free(l->s->o.ctx, x->slot);
	exchange_free(x);
	*req_cls = NULL;
	if (c && !c->dropped && toe == MHD_REQUEST_TERMINATED_COMPLETED_OK) {
		wait_unlink(l, c);   /* its next request gets a deadline of its own */
		wait_link(l, c);
	}
}

/* method is one of the comma-separated words of list */
static bool method_allowed(const char *list, const char *method)
{
	size_t n = strlen(method);

	for (const char *p = list; *p;) {
		while (*p == ' ' || *p == ',')
			p++;
		if (!strncmp(p, method, n) && (p[n] == ',' || p[n] == '\0'))
			return true;
		while (*p && *p != ',')
			p++;
	}
	return false;
}

static void peer_of(struct MHD_Connection *conn, struct http_request *r)
{
	const union MHD_ConnectionInfo *info =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	const struct sockaddr *sa = info ? info->client_addr : NULL;

	strcpy(r->peer_text, "?");
	if (!sa)
		return;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)sa;

		memcpy(&r->peer, sa, sizeof(*in));
		inet_ntop(AF_INET, &in->sin_addr, r->peer_text, sizeof(r->peer_text));
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)sa;

		memcpy(&r->peer, sa, sizeof(*in6));
		inet_ntop(AF_INET6, &in6->sin6_addr, r->peer_text, sizeof(r->peer_text));
	}
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn,
				  const char *url, const char *method,
				  const char *version, const char *upload_data,
				  size_t *upload_data_size, void **req_cls)
{
	struct http_listener *l = cls;
	struct http_server *s = l->s;
	struct http_exchange *x = *req_cls;
	struct http_request r;

	(void)version;
	if (!x) {
		const char *cl;

		/* Refused at once, so MHD closes rather than reading a body. */
		if (!method_allowed(s->methods, method))
			return MHD_queue_response(conn, MHD_HTTP_METHOD_NOT_ALLOWED, s->not_allowed);
		cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (cl && s->o.max_body && strtoull(cl, NULL, 10) > s->o.max_body)
			return MHD_queue_response(conn, MHD_HTTP_CONTENT_TOO_LARGE, s->too_large);
		/* Answer once the request is read in full: a response queued
		 * on the first call (headers only) makes MHD close. */
		if (!(x = calloc(1, sizeof(*x))))
			return MHD_NO;
		*req_cls = x;
		return MHD_YES;
	}
	if (*upload_data_size) {
		size_t n = *upload_data_size;

		*upload_data_size = 0;
		if (x->too_large || !s->o.max_body)
			return MHD_YES;   /* read and dropped */
		if (x->len + n > s->o.max_body) {
			x->too_large = true;
			free(x->body);
			x->body = NULL;
			x->len = 0;
			return MHD_YES;
		}
		char *b = realloc(x->body, x->len + n + 1);

		if (!b)
			return MHD_NO;
		memcpy(b + x->len, upload_data, n);
		x->body = b;
		x->len += n;
		x->body[x->len] = '\0';
		return MHD_YES;
	}
	if (x->too_large)
		return MHD_queue_response(conn, MHD_HTTP_CONTENT_TOO_LARGE, s->too_large);
	memset(&r, 0, sizeof(r));
	r.conn = conn;
	r.method = method;
	r.url = url;
	r.body = x->body ? x->body : "";
	r.body_len = x->len;
	r.tls = l->tls;
	r.tag = l->tag;
	r.slot = &x->slot;
	peer_of(conn, &r);
	return s->o.handler(s->o.ctx, &r);
}

/* ---- driving MHD from the loop ---- */

static void on_timer(uv_timer_t *t);

/*
 * MHD takes its listening socket out of its epoll set at its connection
 * limit (or on EMFILE) and puts it back only at the start of a later run,
 * once a connection has closed. Nothing on the epoll fd would wake us for
 * that run, so whenever a connection closed, run again on the next turn
 * of the loop.
 */
static void run(struct http_listener *l)
{
	MHD_UNSIGNED_LONG_LONG mhd_ms;
	uint64_t ms;

	expire(l);
	l->closed = false;
	MHD_run(l->mhd);
	ms = expire(l);
	uv_timer_stop(&l->timer);
	if (l->closed)
		ms = 0;
	else if (MHD_get_timeout(l->mhd, &mhd_ms) == MHD_YES && mhd_ms < ms)
		ms = mhd_ms;
	if (ms != UINT64_MAX)
		uv_timer_start(&l->timer, on_timer, ms, 0);
}

static void on_timer(uv_timer_t *t)
{
	run(t->data);
}

static void on_poll(uv_poll_t *p, int status, int events)
{
	(void)events;
	if (status < 0)
		log_debug("http: poll: %s", uv_strerror(status));
	run(p->data);
}

/* ---- start and stop ---- */

int http_parse_listen(const char *addr, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[64];
	uint16_t port;
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (cfg_parse_hostport(addr, true, host, sizeof(host), &port) < 0)
		return -EINVAL;
	if (strchr(host, ':')) {
		if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1)
			return -EINVAL;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		*len = sizeof(*sin6);
	} else {
		if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
			return -EINVAL;
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		*len = sizeof(*sin);
	}
	return 0;
}

/* A listening socket for "ip:port" or "[ip6]:port"; fd or -errno. */
static int bind_addr(const struct http_listen *o, bool *v6, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t salen;
	int fd, one = 1;

	if (http_parse_listen(o->addr, &ss, &salen) < 0) {
		snprintf(err, errlen, "%s %s: not an IP address and port", o->what, o->addr);
		return -EINVAL;
	}
	*v6 = ss.ss_family == AF_INET6;
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto sys_fail;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (*v6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, salen) < 0 || listen(fd, HTTP_BACKLOG) < 0) {
		int e = errno;

		close(fd);
		errno = e;
		goto sys_fail;
	}
	return fd;
sys_fail:
	snprintf(err, errlen, "%s %s: %s", o->what, o->addr, strerror(errno));
	return -errno;
}

static void listener_free(struct http_listener *l)
{
	if (l->key) {
		explicit_bzero(l->key, strlen(l->key));
		free(l->key);
	}
	free(l->cert);
	free(l->addr);
	free(l);
}

static void server_free(struct http_server *s)
{
	if (s->not_allowed)
		MHD_destroy_response(s->not_allowed);
	if (s->too_large)
		MHD_destroy_response(s->too_large);
	free(s->methods);
	free(s->ls);
	free(s);
}

static void listener_closed(uv_handle_t *handle)
{
	struct http_listener *l = handle->data;
	struct http_server *s = l->s;

	if (--l->handles > 0)
		return;
	MHD_stop_daemon(l->mhd);   /* closes the listening socket and connections */
	listener_free(l);
	if (--s->live == 0 && s->closing)
		server_free(s);
}

static void listener_close(struct http_listener *l)
{
	uv_close((uv_handle_t *)&l->poll, listener_closed);
	uv_close((uv_handle_t *)&l->timer, listener_closed);
}

static int hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* MHD's unescaping but for "%00", which is left as it is. */
static size_t unescape_keep_nul(void *cls, struct MHD_Connection *conn, char *s)
{
	char *w = s;

	(void)cls, (void)conn;
	for (char *r = s; *r; r++) {
		int hi, lo;

		if (*r == '%' && (hi = hexval(r[1])) >= 0 && (lo = hexval(r[2])) >= 0 && (hi || lo)) {
			*w++ = (char)(hi * 16 + lo);
			r += 2;
		} else {
			*w++ = *r;
		}
	}
	*w = '\0';
	return (size_t)(w - s);
}

void http_suspend(struct http_request *r)
{
	MHD_suspend_connection(r->conn);
}

/* MHD takes a resumed connection back on its next run: one on the next
 * turn of the loop. */
void http_resume(struct MHD_Connection *conn)
{
	struct http_conn *c = conn_of(conn);

	MHD_resume_connection(conn);
	if (c && c->l->loop)
		uv_timer_start(&c->l->timer, on_timer, 0, 0);
}

/* The same options for every daemon; fd < 0: connections come only from
 * MHD_add_connection. MHD's own limit leaves room for connections that
 * on_accept dropped and MHD has not yet closed. */
static struct MHD_Daemon *start_mhd(struct http_listener *l, unsigned flags, int fd,
				    unsigned per_source)
{
	struct MHD_OptionItem ops[14] = {
		{ MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)mhd_log, l },   /* first: MHD wants it so */
		{ MHD_OPTION_CONNECTION_LIMIT, 2 * HTTP_CONN_LIMIT, NULL },
		{ MHD_OPTION_PER_IP_CONNECTION_LIMIT, per_source, NULL },
		{ MHD_OPTION_CONNECTION_TIMEOUT, HTTP_CONN_TIMEOUT_S, NULL },
		{ MHD_OPTION_CONNECTION_MEMORY_LIMIT, HTTP_CONN_MEMORY, NULL },
		{ MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)on_connection, l },
		{ MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, l },
	};
	size_t n = 7;

	if (l->s->o.keep_nul_escape)
		ops[n++] = (struct MHD_OptionItem){ MHD_OPTION_UNESCAPE_CALLBACK,
						    (intptr_t)unescape_keep_nul, NULL };
	if (l->s->o.suspend)
		flags |= MHD_ALLOW_SUSPEND_RESUME;
	if (fd >= 0)
		ops[n++] = (struct MHD_OptionItem){ MHD_OPTION_LISTEN_SOCKET, fd, NULL };
	else
		flags |= MHD_USE_NO_LISTEN_SOCKET;
	if (l->tls) {
		flags |= MHD_USE_TLS;
		ops[n++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_CERT, 0, l->cert };
		ops[n++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_KEY, 0, l->key };
		ops[n++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_PRIORITIES, 0,
			(void *)HTTP_TLS_PRIORITIES };
	}
	ops[n] = (struct MHD_OptionItem){ MHD_OPTION_END, 0, NULL };
	return MHD_start_daemon(flags | MHD_USE_ERROR_LOG, 0, on_accept, l, on_request, l,
				MHD_OPTION_ARRAY, ops, MHD_OPTION_END);
}

static int make_responses(struct http_server *s)
{
	s->not_allowed = http_text_response("method not allowed\n");
	s->too_large = MHD_create_response_from_buffer(
		strlen("{\"error\":\"request body too large\"}\n"),
		(void *)"{\"error\":\"request body too large\"}\n", MHD_RESPMEM_PERSISTENT);
	if (!s->not_allowed || !s->too_large)
		return -ENOMEM;
	MHD_add_response_header(s->not_allowed, MHD_HTTP_HEADER_ALLOW, s->methods);
	MHD_add_response_header(s->too_large, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	MHD_add_response_header(s->too_large, MHD_HTTP_HEADER_CONNECTION, "close");
	return 0;
}

struct http_server *http_server_new(const struct http_server_opts *o)
{
	struct http_server *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->o = *o;
	if (!(s->methods = strdup(o->methods ? o->methods : "GET, HEAD")) || make_responses(s)) {
		server_free(s);
		return NULL;
	}
	{
		struct rlimit rl;

		if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
			s->fd_cap = rl.rlim_cur > 2 * HTTP_FD_RESERVE ? rl.rlim_cur - HTTP_FD_RESERVE
								     : rl.rlim_cur / 2;
	}
	return s;
}

int http_server_listen(struct http_server *s, uv_loop_t *loop, const struct http_listen *o,
		       char *err, size_t errlen)
{
	struct http_listener *l = calloc(1, sizeof(*l));
	const union MHD_DaemonInfo *info;
	bool v6 = false;
	int fd = -1, rc = -ENOMEM;

	snprintf(err, errlen, "%s %s: out of memory", o->what, o->addr);
	if (s->n_ls == s->cap_ls) {
		size_t cap = s->cap_ls ? 2 * s->cap_ls : 4;
		struct http_listener **ls = realloc(s->ls, cap * sizeof(*ls));

		if (!ls)
			goto fail;
		s->ls = ls;
		s->cap_ls = cap;
	}
	if (!l || !(l->addr = strdup(o->addr)))
		goto fail;
	l->s = s;
	l->tag = o->tag;
	l->per_source = o->per_source;
	if (o->tls_cert_pem || o->tls_key_pem) {
		if (!o->tls_cert_pem || !o->tls_key_pem) {
			snprintf(err, errlen, "%s %s: TLS needs both a certificate and a key",
				 o->what, o->addr);
			rc = -EINVAL;
			goto fail;
		}
		if (!MHD_is_feature_supported(MHD_FEATURE_TLS)) {
			snprintf(err, errlen, "%s %s: this libmicrohttpd has no TLS", o->what, o->addr);
			rc = -ENOTSUP;
			goto fail;
		}
		if (!(l->cert = strdup(o->tls_cert_pem)) || !(l->key = strdup(o->tls_key_pem)))
			goto fail;
		l->tls = true;
	}
	fd = rc = bind_addr(o, &v6, err, errlen);
	if (rc < 0)
		goto fail;
	l->loop = loop;
	l->mhd = start_mhd(l, MHD_USE_EPOLL | (v6 ? MHD_USE_IPv6 : 0), fd, o->per_source);
	if (!l->mhd) {
		snprintf(err, errlen, "%s %s: cannot start the HTTP server%s", o->what, o->addr,
			 l->tls ? " (is the certificate or the key unreadable PEM, or do they not match?)" : "");
		rc = -EIO;
		goto fail;
	}
	fd = -1;   /* MHD owns it now */
	info = MHD_get_daemon_info(l->mhd, MHD_DAEMON_INFO_EPOLL_FD);
	if (!info || info->epoll_fd < 0) {
		snprintf(err, errlen, "%s %s: no epoll fd from libmicrohttpd", o->what, o->addr);
		MHD_stop_daemon(l->mhd);
		rc = -EIO;
		goto fail;
	}
	uv_poll_init(loop, &l->poll, info->epoll_fd);
	uv_timer_init(loop, &l->timer);
	l->poll.data = l->timer.data = l;
	l->handles = 2;
	uv_poll_start(&l->poll, UV_READABLE, on_poll);
	s->ls[s->n_ls++] = l;
	s->live++;
	run(l);
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	if (l)
		listener_free(l);
	return rc;
}

size_t http_server_listeners(const struct http_server *s)
{
	return s ? s->n_ls : 0;
}

void http_server_close(struct http_server *s)
{
	if (!s)
		return;
	s->closing = true;
	if (s->live == 0) {
		server_free(s);
		return;
	}
	for (size_t i = 0; i < s->n_ls; i++)
		listener_close(s->ls[i]);
}

struct http_server *http_server_new_unbound(const struct http_server_opts *o,
					    struct MHD_Daemon **mhd)
{
	struct http_server *s = http_server_new(o);
	struct http_listener *l = NULL;

	if (!s || !(s->ls = calloc(1, sizeof(*s->ls))) || !(l = calloc(1, sizeof(*l))) ||
	    !(l->addr = strdup("unbound")))
		goto fail;
	l->s = s;
	if (!(l->mhd = start_mhd(l, 0, -1, CFG_HTTP_PER_SOURCE_DEFAULT)))
		goto fail;
	s->ls[0] = l;
	s->n_ls = s->cap_ls = s->live = 1;
	*mhd = l->mhd;
	return s;
fail:
	if (l)
		listener_free(l);
	if (s)
		server_free(s);
	return NULL;
}

void http_server_free_unbound(struct http_server *s)
{
	if (!s)
		return;
	MHD_stop_daemon(s->ls[0]->mhd);
	listener_free(s->ls[0]);
	server_free(s);
}
