/*
 * The HTTP server: libmicrohttpd in its epoll mode with no thread of its
 * own. Each http.listen address is one MHD daemon on a socket bound here
 * (so a bind error names the address and errno); the loop polls MHD's epoll
 * fd and runs MHD when it is readable or when MHD's timeout comes.
 *
 *   GET /health          200 + node state word, 503 when a service is withdrawn
 *   GET /health/SERVICE  200 + state word when announced, 503 when withdrawn
 *   GET /status          the status snapshot (JSON)
 *   GET /metrics         Prometheus text exposition
 *
 * Only GET and HEAD (405 otherwise); anything else is 404. Connections,
 * their idle time and their memory are bounded, so a hostile client costs
 * little and cannot hold the loop.
 *
 * Fairness against slow and half-open clients, as HAProxy (`timeout
 * http-request`) and nginx (reusable connections) do it: a request must
 * arrive whole and its reply be taken within HTTPD_REQUEST_DEADLINE_MS of
 * its connection's start (or of the previous response, on keep-alive),
 * however slowly it trickles, a body or a slow reader of the reply
 * included; at HTTPD_CONN_LIMIT a new connection is taken by dropping the
 * oldest exchange; one address holds at most
 * http.per_source_limit connections (libmicrohttpd closes the others at
 * accept). Dropping is shutdown(2) on the connection's socket, so MHD sees
 * the close on its next run and frees it itself.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config/config.h"

#include "healthd/internal.h"

#define HTTPD_CONN_LIMIT CFG_HTTP_PER_SOURCE_MAX   /* all sources together */
#define HTTPD_CONN_TIMEOUT_S 5u                    /* inactivity */
#define HTTPD_REQUEST_DEADLINE_MS 5000u            /* a whole request */
#define HTTPD_CONN_MEMORY (16 * 1024)   /* request line + headers must fit */
#define HTTPD_BACKLOG 1024

/* One TCP connection, on its listener's list (oldest exchange first) from
 * its start, and again from each keep-alive response. */
struct httpd_conn {
	struct httpd_conn *prev, *next;
	struct MHD_Connection *conn;
	int fd;
	uint64_t since_ms;           /* its current exchange started */
	bool waiting;
	bool dropped;                /* shut down by us; MHD has yet to close it */
};

struct httpd_listener {
	uv_poll_t poll;              /* MHD's epoll fd */
	uv_timer_t timer;            /* MHD_get_timeout(), request deadlines */
	uv_loop_t *loop;             /* NULL for the unbound test daemon */
	struct httpd *h;
	struct MHD_Daemon *mhd;
	char *addr;
	int handles;                 /* open uv handles; freed at 0 */
	struct httpd_conn *oldest, *newest;   /* the waiting list */
	size_t n_conns, n_dropped;   /* open; shut down but not yet closed */
	bool closed;                 /* a connection closed in this MHD_run */
};

struct httpd {
	struct hd *hd;
	struct httpd_listener **ls;
	size_t n_ls;
	size_t live;                 /* listeners not yet freed */
	/* Shared, refcounted by MHD: /health answers without allocating. */
	struct MHD_Response *word[SVC_STATES];
	struct MHD_Response *not_found, *not_allowed;
};

/* Worse states rank higher: the node's word is its worst service's. */
static const int state_rank[SVC_STATES] = {
	[SVC_UP] = 0, [SVC_DEGRADED] = 1, [SVC_DRAINING] = 2, [SVC_WITHDRAWN] = 3,
};

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	struct httpd_listener *l = cls;
	char msg[256];
	size_t n;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n && msg[n - 1] == '\n')
		msg[--n] = '\0';
	/* Debug only: a hostile client must not be able to flood the log. */
	log_debug("http %s: %s", l->addr, msg);
}

static struct MHD_Response *text_response(const char *text)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(
		strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);

	if (r) {
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
		MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	}
	return r;
}

static enum MHD_Result queue_owned(struct MHD_Connection *conn, unsigned code,
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

/* A service healthd calls announced whose protocol BIRD does not run is
 * not announced: 503, with what is missing. */
static bool not_running(const struct hd *hd, const struct svc *s, char *why, size_t len)
{
	char what[160];

	if (!svc_state_announced(s->state) || !hd->sync ||
	    bird_sync_announcing(hd->sync, s->cfg->name, what, sizeof(what)))
		return false;
	snprintf(why, len, "%s: %s: %s\n", svc_state_str(s->state), s->cfg->name, what);
	return true;
}

static enum MHD_Result serve_health(struct httpd *h, struct MHD_Connection *conn,
				    const char *service)
{
	struct hd *hd = h->hd;
	enum svc_state worst = SVC_WITHDRAWN;   /* no services: nothing announced */
	char why[256];

	if (service) {
		for (size_t i = 0; i < hd->n_svcs; i++)
			if (!strcmp(hd->svcs[i]->svc.cfg->name, service)) {
				enum svc_state st = hd->svcs[i]->svc.state;

				if (not_running(hd, &hd->svcs[i]->svc, why, sizeof(why)))
					return queue_owned(conn, MHD_HTTP_SERVICE_UNAVAILABLE,
							   strdup(why), strlen(why), "text/plain");
				return MHD_queue_response(conn, svc_state_announced(st) ?
							  MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE,
							  h->word[st]);
			}
		return MHD_queue_response(conn, MHD_HTTP_NOT_FOUND, h->not_found);
	}
	for (size_t i = 0; i < hd->n_svcs; i++) {
		enum svc_state st = hd->svcs[i]->svc.state;

		if (not_running(hd, &hd->svcs[i]->svc, why, sizeof(why)))
			return queue_owned(conn, MHD_HTTP_SERVICE_UNAVAILABLE, strdup(why),
					   strlen(why), "text/plain");
		if (i == 0 || state_rank[st] > state_rank[worst])
			worst = st;
	}
	return MHD_queue_response(conn, svc_state_announced(worst) ? MHD_HTTP_OK :
				  MHD_HTTP_SERVICE_UNAVAILABLE, h->word[worst]);
}

static enum MHD_Result serve_status(struct httpd *h, struct MHD_Connection *conn)
{
	json_t *snap = hd_status(h->hd);
	char *js = snap ? json_dumps(snap, JSON_INDENT(2)) : NULL;
	char *body = NULL;
	int n = -1;

	json_decref(snap);
	if (js)
		n = asprintf(&body, "%s\n", js);
	free(js);
	if (n < 0)
		return MHD_NO;
	return queue_owned(conn, MHD_HTTP_OK, body, (size_t)n, "application/json");
}

static enum MHD_Result serve_metrics(struct httpd *h, struct MHD_Connection *conn)
{
	size_t len = 0;
	char *body = hd_metrics(h->hd, &len);

	return queue_owned(conn, MHD_HTTP_OK, body, len,
			   "text/plain; version=0.0.4; charset=utf-8");
}

/* ---- connections: the waiting list, deadlines, dropping ---- */

static uint64_t now_ms(const struct httpd_listener *l)
{
	return l->loop ? uv_now(l->loop) : 0;
}

static void wait_link(struct httpd_listener *l, struct httpd_conn *c)
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

static void wait_unlink(struct httpd_listener *l, struct httpd_conn *c)
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
static void drop(struct httpd_listener *l, struct httpd_conn *c, const char *why)
{
	wait_unlink(l, c);
	c->dropped = true;
	l->n_dropped++;
	if (shutdown(c->fd, SHUT_RDWR) < 0)
		log_debug("http %s: shutdown fd %d (%s): %s", l->addr, c->fd, why, strerror(errno));
}

/* Drops what has waited past the deadline; returns ms until the next one
 * is due, or UINT64_MAX when nothing waits. */
static uint64_t expire(struct httpd_listener *l)
{
	uint64_t now = now_ms(l);

	while (l->oldest && now - l->oldest->since_ms >= HTTPD_REQUEST_DEADLINE_MS)
		drop(l, l->oldest, "request deadline");
	if (!l->oldest)
		return UINT64_MAX;
	return l->oldest->since_ms + HTTPD_REQUEST_DEADLINE_MS - now;
}

/* Called by MHD before it takes a connection (after its per-address cap). */
static enum MHD_Result on_accept(void *cls, const struct sockaddr *addr, socklen_t len)
{
	struct httpd_listener *l = cls;

	(void)addr, (void)len;
	if (l->n_conns - l->n_dropped < HTTPD_CONN_LIMIT)
		return MHD_YES;
	if (!l->oldest)
		return MHD_NO;   /* every slot is being dropped already */
	drop(l, l->oldest, "connection limit");
	return MHD_YES;
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_ctx,
			  enum MHD_ConnectionNotificationCode what)
{
	struct httpd_listener *l = cls;
	struct httpd_conn *c = *socket_ctx;
	const union MHD_ConnectionInfo *info;

	if (what == MHD_CONNECTION_NOTIFY_STARTED) {
		info = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
		if (!info || !(c = calloc(1, sizeof(*c)))) {
			/* untracked: only MHD's own timeout bounds it */
			log_debug("http %s: cannot track a connection", l->addr);
			return;
		}
		c->conn = conn;
		c->fd = info->connect_fd;
		wait_link(l, c);
		l->n_conns++;
		*socket_ctx = c;
		return;
	}
	l->closed = true;   /* MHD may put its listening socket back: run again */
	if (!c)
		return;
	wait_unlink(l, c);
	if (c->dropped)
		l->n_dropped--;
	l->n_conns--;
	free(c);
	*socket_ctx = NULL;
}

static struct httpd_conn *conn_of(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *info =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

	return info ? info->socket_context : NULL;
}

/* A response went out: a keep-alive connection waits for its next request. */
static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct httpd_listener *l = cls;
	struct httpd_conn *c = conn_of(conn);

	(void)req_cls;
	if (c && !c->dropped && toe == MHD_REQUEST_TERMINATED_COMPLETED_OK) {
		wait_unlink(l, c);   /* its next request gets a deadline of its own */
		wait_link(l, c);
	}
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn,
				  const char *url, const char *method,
				  const char *version, const char *upload_data,
				  size_t *upload_data_size, void **req_cls)
{
	struct httpd_listener *l = cls;
	struct httpd *h = l->h;

	static int seen;

	(void)version;
	(void)upload_data;
	/* Refused at once, so MHD closes rather than reading a body. */
	if (strcmp(method, MHD_HTTP_METHOD_GET) && strcmp(method, MHD_HTTP_METHOD_HEAD))
		return MHD_queue_response(conn, MHD_HTTP_METHOD_NOT_ALLOWED, h->not_allowed);
	/* Answer once the request is read in full: a response queued on the
	 * first call (headers only) makes MHD close the connection. */
	/* The deadline covers the whole exchange, a slow body or a slow
	 * reader of the reply included: the connection stays on the list. */
	if (!*req_cls) {
		*req_cls = &seen;
		return MHD_YES;
	}
	if (*upload_data_size) {
		*upload_data_size = 0;   /* a GET body means nothing here */
		return MHD_YES;
	}
	if (!strcmp(url, "/health"))
		return serve_health(h, conn, NULL);
	if (!strncmp(url, "/health/", 8))
		return serve_health(h, conn, url + 8);
	if (!strcmp(url, "/status"))
		return serve_status(h, conn);
	if (!strcmp(url, "/metrics"))
		return serve_metrics(h, conn);
	return MHD_queue_response(conn, MHD_HTTP_NOT_FOUND, h->not_found);
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
static void run(struct httpd_listener *l)
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

/* A listening socket for "ip:port" or "[ip6]:port"; fd or -errno. */
static int bind_addr(const char *addr, bool *v6, char *err, size_t errlen)
{
	char host[64];
	uint16_t port;
	struct sockaddr_in sin = { .sin_family = AF_INET };
	struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6 };
	struct sockaddr *sa = (struct sockaddr *)&sin;
	socklen_t salen = sizeof(sin);
	int fd, one = 1;

	if (cfg_parse_hostport(addr, true, host, sizeof(host), &port) < 0)
		goto bad;
	*v6 = strchr(host, ':') != NULL;
	if (*v6) {
		if (inet_pton(AF_INET6, host, &sin6.sin6_addr) != 1)
			goto bad;
		sin6.sin6_port = htons(port);
		sa = (struct sockaddr *)&sin6;
		salen = sizeof(sin6);
	} else {
		if (inet_pton(AF_INET, host, &sin.sin_addr) != 1)
			goto bad;
		sin.sin_port = htons(port);
	}
	fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto sys_fail;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (*v6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, sa, salen) < 0 || listen(fd, HTTPD_BACKLOG) < 0) {
		int e = errno;

		close(fd);
		errno = e;
		goto sys_fail;
	}
	return fd;
sys_fail:
	snprintf(err, errlen, "http.listen %s: %s", addr, strerror(errno));
	return -errno;
bad:
	snprintf(err, errlen, "http.listen %s: not an IP address and port", addr);
	return -EINVAL;
}

static void httpd_free(struct httpd *h)
{
	for (int i = 0; i < SVC_STATES; i++)
		if (h->word[i])
			MHD_destroy_response(h->word[i]);
	if (h->not_found)
		MHD_destroy_response(h->not_found);
	if (h->not_allowed)
		MHD_destroy_response(h->not_allowed);
	free(h->ls);
	free(h);
}

static void listener_closed(uv_handle_t *handle)
{
	struct httpd_listener *l = handle->data;
	struct httpd *h = l->h;

	if (--l->handles > 0)
		return;
	MHD_stop_daemon(l->mhd);   /* closes the listening socket and connections */
	free(l->addr);
	free(l);
	if (--h->live == 0)
		httpd_free(h);
}

static void listener_close(struct httpd_listener *l)
{
	uv_close((uv_handle_t *)&l->poll, listener_closed);
	uv_close((uv_handle_t *)&l->timer, listener_closed);
}

/* The same options for every daemon; fd < 0: connections come only from
 * MHD_add_connection. MHD's own limit leaves room for connections that
 * on_accept dropped and MHD has not yet closed. */
static struct MHD_Daemon *start_mhd(struct httpd_listener *l, unsigned flags, int fd,
				    unsigned per_source)
{
	struct MHD_OptionItem ops[] = {
		{ MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)mhd_log, l },   /* first: MHD wants it so */
		{ MHD_OPTION_CONNECTION_LIMIT, 2 * HTTPD_CONN_LIMIT, NULL },
		{ MHD_OPTION_PER_IP_CONNECTION_LIMIT, per_source, NULL },
		{ MHD_OPTION_CONNECTION_TIMEOUT, HTTPD_CONN_TIMEOUT_S, NULL },
		{ MHD_OPTION_CONNECTION_MEMORY_LIMIT, HTTPD_CONN_MEMORY, NULL },
		{ MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)on_connection, l },
		{ MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, l },
		{ fd >= 0 ? MHD_OPTION_LISTEN_SOCKET : MHD_OPTION_END, fd, NULL },
		{ MHD_OPTION_END, 0, NULL },
	};

	if (fd < 0)
		flags |= MHD_USE_NO_LISTEN_SOCKET;
	return MHD_start_daemon(flags | MHD_USE_ERROR_LOG, 0, on_accept, l, on_request, l,
				MHD_OPTION_ARRAY, ops, MHD_OPTION_END);
}

static int listener_start(struct httpd *h, uv_loop_t *loop, const char *addr,
			  unsigned per_source, struct httpd_listener **out, char *err,
			  size_t errlen)
{
	struct httpd_listener *l = calloc(1, sizeof(*l));
	const union MHD_DaemonInfo *info;
	bool v6 = false;
	int fd = -1, rc = -ENOMEM;

	if (!l || !(l->addr = strdup(addr)))
		goto fail;
	l->h = h;
	fd = rc = bind_addr(addr, &v6, err, errlen);
	if (rc < 0)
		goto fail;
	l->loop = loop;
	l->mhd = start_mhd(l, MHD_USE_EPOLL | (v6 ? MHD_USE_IPv6 : 0), fd, per_source);
	if (!l->mhd) {
		snprintf(err, errlen, "http.listen %s: cannot start the HTTP server", addr);
		rc = -EIO;
		goto fail;
	}
	fd = -1;   /* MHD owns it now */
	info = MHD_get_daemon_info(l->mhd, MHD_DAEMON_INFO_EPOLL_FD);
	if (!info || info->epoll_fd < 0) {
		snprintf(err, errlen, "http.listen %s: no epoll fd from libmicrohttpd", addr);
		MHD_stop_daemon(l->mhd);
		rc = -EIO;
		goto fail;
	}
	uv_poll_init(loop, &l->poll, info->epoll_fd);
	uv_timer_init(loop, &l->timer);
	l->poll.data = l->timer.data = l;
	l->handles = 2;
	uv_poll_start(&l->poll, UV_READABLE, on_poll);
	run(l);
	*out = l;
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	if (l)
		free(l->addr);
	free(l);
	return rc;
}

static int make_responses(struct httpd *h)
{
	static const char *const words[SVC_STATES] = {
		[SVC_WITHDRAWN] = "withdrawn\n", [SVC_UP] = "up\n",
		[SVC_DEGRADED] = "degraded\n", [SVC_DRAINING] = "draining\n",
	};

	for (int i = 0; i < SVC_STATES; i++)
		if (!(h->word[i] = text_response(words[i])))
			return -ENOMEM;
	h->not_found = text_response("not found\n");
	h->not_allowed = text_response("method not allowed\n");
	if (!h->not_found || !h->not_allowed)
		return -ENOMEM;
	MHD_add_response_header(h->not_allowed, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	return 0;
}

int httpd_new(struct hd *hd, uv_loop_t *loop, const struct config *cfg,
	      struct httpd **out, char *err, size_t errlen)
{
	struct httpd *h = calloc(1, sizeof(*h));
	int rc = -ENOMEM;

	snprintf(err, errlen, "http: out of memory");
	if (!h || !(h->ls = calloc(cfg->http.n_listen + 1, sizeof(*h->ls))))
		goto fail;
	h->hd = hd;
	if ((rc = make_responses(h)) < 0)
		goto fail;
	for (size_t i = 0; i < cfg->http.n_listen; i++) {
		rc = listener_start(h, loop, cfg->http.listen[i], cfg->http.per_source_limit,
				    &h->ls[i], err, errlen);
		if (rc < 0)
			goto fail;
		h->n_ls++;
		h->live++;
		log_info("http: listening on %s", cfg->http.listen[i]);
	}
	if (h->n_ls == 0) {
		httpd_free(h);
		h = NULL;
	}
	*out = h;
	return 0;
fail:
	if (h && h->n_ls) {
		httpd_close(h);   /* the last listener's close frees h */
		return rc;
	}
	if (h)
		httpd_free(h);
	return rc;
}

void httpd_close(struct httpd *h)
{
	if (!h)
		return;
	for (size_t i = 0; i < h->n_ls; i++)
		listener_close(h->ls[i]);
}

int httpd_new_unbound(struct hd *hd, struct httpd **out, struct MHD_Daemon **mhd)
{
	struct httpd *h = calloc(1, sizeof(*h));
	struct httpd_listener *l = NULL;

	*out = NULL;
	if (!h || !(h->ls = calloc(2, sizeof(*h->ls))) || make_responses(h) < 0 ||
	    !(l = calloc(1, sizeof(*l))) || !(l->addr = strdup("unbound")))
		goto fail;
	h->hd = hd;
	l->h = h;
	if (!(l->mhd = start_mhd(l, 0, -1, CFG_HTTP_PER_SOURCE_DEFAULT)))
		goto fail;
	h->ls[0] = l;
	h->n_ls = h->live = 1;
	*mhd = l->mhd;
	*out = h;
	return 0;
fail:
	if (l)
		free(l->addr);
	free(l);
	if (h)
		httpd_free(h);
	return -ENOMEM;
}

void httpd_free_unbound(struct httpd *h)
{
	struct httpd_listener *l;

	if (!h)
		return;
	l = h->ls[0];
	MHD_stop_daemon(l->mhd);
	free(l->addr);
	free(l);
	httpd_free(h);
}
