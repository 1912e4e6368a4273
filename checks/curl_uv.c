/*
 * libcurl's multi_socket API driven by the libuv loop: one CURLM per
 * engine shard, a uv_poll_t per socket curl asks about, one uv_timer_t for the
 * timeout curl asks for. Memory tied to a handle goes in its close callback.
 */
#include <errno.h>
#include <stdlib.h>
#include <curl/curl.h>

#include "checks/checks.h"

struct curl_sock {
	uv_poll_t poll;
	curl_socket_t fd;
	struct check_curl *cc;
	struct curl_sock *prev, *next;
};

/* One easy handle in the multi, with whom to tell when it is done. */
struct curl_xfer {
	CURL *easy;
	check_curl_done_cb cb;
	void *arg;
	struct curl_xfer *prev, *next;
};

struct check_curl {
	uv_loop_t *loop;
	CURLM *multi;
	uv_timer_t timer;
	struct curl_sock *socks;
	struct curl_xfer *xfers;
	bool closing;
};

static void sock_unlink(struct curl_sock *s)
{
	if (s->prev)
		s->prev->next = s->next;
	else
		s->cc->socks = s->next;
	if (s->next)
		s->next->prev = s->prev;
	s->prev = s->next = NULL;
}

static void xfer_unlink(struct check_curl *cc, struct curl_xfer *x)
{
	if (x->prev)
		x->prev->next = x->next;
	else
		cc->xfers = x->next;
	if (x->next)
		x->next->prev = x->prev;
}

/* The transfer rides in the easy handle's CURLOPT_PRIVATE: O(1) with
 * thousands of transfers in flight. NULL when the handle is not ours now. */
static struct curl_xfer *xfer_find(struct check_curl *cc, CURL *easy)
{
	struct curl_xfer *x = NULL;

	(void)cc;
	if (curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&x) != CURLE_OK)
		return NULL;
	return x;
}

/* Hand every finished transfer to its owner. An owner may add, remove or
 * even close the engine from its callback, so re-check before each read. */
static void check_multi_info(struct check_curl *cc)
{
	CURLMsg *msg;
	int pending;

	while (!cc->closing && (msg = curl_multi_info_read(cc->multi, &pending))) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		CURL *easy = msg->easy_handle;
		CURLcode code = msg->data.result;
		struct curl_xfer *x = xfer_find(cc, easy);

		curl_multi_remove_handle(cc->multi, easy);
		if (!x)
			continue;
		check_curl_done_cb cb = x->cb;
		void *arg = x->arg;

		xfer_unlink(cc, x);
		curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
		free(x);
		cb(easy, (int)code, arg);
	}
}

static void on_poll(uv_poll_t *h, int status, int events)
{
	struct curl_sock *s = h->data;
	struct check_curl *cc = s->cc;
	int flags = 0, running;

	if (cc->closing)
		return;
	if (status < 0)
		flags = CURL_CSELECT_ERR;
	if (events & UV_READABLE)
		flags |= CURL_CSELECT_IN;
	if (events & UV_WRITABLE)
		flags |= CURL_CSELECT_OUT;
	curl_multi_socket_action(cc->multi, s->fd, flags, &running);
	check_multi_info(cc);
}

static void on_timeout(uv_timer_t *t)
{
	struct check_curl *cc = t->data;
	int running;

	if (cc->closing)
		return;
	curl_multi_socket_action(cc->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	check_multi_info(cc);
}

static void sock_closed(uv_handle_t *h)
{
	free(h->data);
}

static void sock_close(struct curl_sock *s)
{
	sock_unlink(s);
	uv_close((uv_handle_t *)&s->poll, sock_closed);
}

static struct curl_sock *sock_new(struct check_curl *cc, curl_socket_t fd)
{
	struct curl_sock *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	if (uv_poll_init_socket(cc->loop, &s->poll, fd) < 0) {
		free(s);
		return NULL;
	}
	s->poll.data = s;
	s->fd = fd;
	s->cc = cc;
	s->next = cc->socks;
	if (s->next)
		s->next->prev = s;
	cc->socks = s;
	curl_multi_assign(cc->multi, fd, s);
	return s;
}

/* CURLMOPT_SOCKETFUNCTION: what curl wants to hear about a socket. */
static int on_socket(CURL *easy, curl_socket_t fd, int action, void *userp,
		     void *socketp)
{
	struct check_curl *cc = userp;
	struct curl_sock *s = socketp;
	int events = 0;

	(void)easy;
	if (action == CURL_POLL_REMOVE) {
		if (s) {
			/* During curl_multi_cleanup the socket hash is going away. */
			if (!cc->closing)
				curl_multi_assign(cc->multi, fd, NULL);
			sock_close(s);
		}
		return 0;
	}
	if (cc->closing)
		return 0;
	if (!s && !(s = sock_new(cc, fd)))
		return -1;
	if (action == CURL_POLL_IN || action == CURL_POLL_INOUT)
		events |= UV_READABLE;
	if (action == CURL_POLL_OUT || action == CURL_POLL_INOUT)
		events |= UV_WRITABLE;
	return uv_poll_start(&s->poll, events, on_poll) < 0 ? -1 : 0;
}

/* CURLMOPT_TIMERFUNCTION: -1 stops the timer; 0 means "soon", not "now",
 * so the action never runs inside the curl call that asked for it. */
static int on_timer(CURLM *multi, long timeout_ms, void *userp)
{
	struct check_curl *cc = userp;

	(void)multi;
	if (cc->closing)
		return 0;
	if (timeout_ms < 0)
		return uv_timer_stop(&cc->timer) < 0 ? -1 : 0;
	if (timeout_ms == 0)
		timeout_ms = 1;
	return uv_timer_start(&cc->timer, on_timeout, (uint64_t)timeout_ms, 0) < 0 ?
		-1 : 0;
}

int check_curl_new(uv_loop_t *loop, struct check_curl **out)
{
	struct check_curl *cc = calloc(1, sizeof(*cc));

	*out = NULL;
	if (!cc)
		return -ENOMEM;
	cc->loop = loop;
	cc->multi = curl_multi_init();
	if (!cc->multi) {
		free(cc);
		return -ENOMEM;
	}
	uv_timer_init(loop, &cc->timer);
	cc->timer.data = cc;
	curl_multi_setopt(cc->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
	curl_multi_setopt(cc->multi, CURLMOPT_SOCKETDATA, cc);
	curl_multi_setopt(cc->multi, CURLMOPT_TIMERFUNCTION, on_timer);
	curl_multi_setopt(cc->multi, CURLMOPT_TIMERDATA, cc);
	/* Handles leave the multi between probes, so curl's default cache size
	 * (4 x handles added) would close the idle keep-alive connections of
	 * every check not in flight: keep one per check. */
	curl_multi_setopt(cc->multi, CURLMOPT_MAXCONNECTS, 100000L);
	*out = cc;
	return 0;
}

static void curl_closed(uv_handle_t *h)
{
	free(h->data);
}

void check_curl_close(struct check_curl *cc)
{
	if (!cc || cc->closing)
		return;
	/* Transfers still in flight are dropped without a callback. */
	while (cc->xfers) {
		struct curl_xfer *x = cc->xfers;

		curl_multi_remove_handle(cc->multi, x->easy);
		curl_easy_setopt(x->easy, CURLOPT_PRIVATE, NULL);
		xfer_unlink(cc, x);
		free(x);
	}
	cc->closing = true;
	curl_multi_cleanup(cc->multi);
	cc->multi = NULL;
	while (cc->socks)
		sock_close(cc->socks);
	uv_close((uv_handle_t *)&cc->timer, curl_closed);
}

int check_curl_add(struct check_engine *e, void *easy, check_curl_done_cb cb,
		   void *arg)
{
	struct check_curl *cc = check_engine_curl(e, easy);
	struct curl_xfer *x;

	if (cc->closing)
		return -ESHUTDOWN;
	if (xfer_find(cc, easy))
		return -EBUSY;
	x = calloc(1, sizeof(*x));
	if (!x)
		return -ENOMEM;
	x->easy = easy;
	x->cb = cb;
	x->arg = arg;
	curl_easy_setopt(easy, CURLOPT_PRIVATE, x);
	if (curl_multi_add_handle(cc->multi, easy) != CURLM_OK) {
		curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
		free(x);
		return -EINVAL;
	}
	x->next = cc->xfers;
	if (x->next)
		x->next->prev = x;
	cc->xfers = x;
	return 0;
}

void check_curl_remove(struct check_engine *e, void *easy)
{
	struct check_curl *cc = check_engine_curl(e, easy);
	struct curl_xfer *x = xfer_find(cc, easy);

	if (!x)
		return;
	xfer_unlink(cc, x);
	curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
	free(x);
	curl_multi_remove_handle(cc->multi, easy);
}
