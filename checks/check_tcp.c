/*
 * TCP connect probes: a probe passes when the three-way handshake does.
 * Each probe owns a uv_tcp_t and a uv_timer_t (and, for a host name, a
 * getaddrinfo request); it is freed once all of them have finished.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checks/checks.h"

struct tcp_check;

struct tcp_probe {
	struct tcp_check *t;        /* NULL once the probe is over or cancelled */
	uv_tcp_t tcp;
	uv_timer_t timer;
	uv_connect_t connect;
	uv_getaddrinfo_t gai;
	int refs;                   /* open handles and pending requests */
	int err;                    /* a connect error to report from the loop */
	bool tcp_open;
};

struct tcp_check {
	struct check *c;
	struct sockaddr_storage addr;
	bool numeric;
	char where[80];             /* "127.0.0.1:80", "[::1]:80" */
	struct tcp_probe *probe;    /* in flight */
};

static void probe_unref(struct tcp_probe *p)
{
	if (--p->refs == 0)
		free(p);
}

static void on_handle_closed(uv_handle_t *h)
{
	probe_unref(h->data);
}

/* End the probe: detach it from its check and close what it holds. */
static void probe_end(struct tcp_probe *p)
{
	if (p->t) {
		p->t->probe = NULL;
		p->t = NULL;
	}
	if (p->gai.loop)
		uv_cancel((uv_req_t *)&p->gai);
	if (!uv_is_closing((uv_handle_t *)&p->timer))
		uv_close((uv_handle_t *)&p->timer, on_handle_closed);
	if (p->tcp_open && !uv_is_closing((uv_handle_t *)&p->tcp))
		uv_close((uv_handle_t *)&p->tcp, on_handle_closed);
}

static uint64_t timeout_ms(const struct check *c)
{
	return c->cfg->timeout_ms ? c->cfg->timeout_ms : 1000;
}

static enum check_reason reason_of(int err)
{
	switch (err) {
	case UV_ECONNREFUSED:
		return CHECK_REFUSED;
	case UV_ENETUNREACH:
	case UV_EHOSTUNREACH:
	case UV_EADDRNOTAVAIL:
		return CHECK_UNREACHABLE;
	case UV_ETIMEDOUT:
		return CHECK_TIMEOUT;
	default:
		return CHECK_IO;
	}
}

static void finish(struct tcp_probe *p, int err)
{
	struct tcp_check *t = p->t;
	struct check *c = t->c;

	probe_end(p);
	if (err == 0)
		check_report(c, CHECK_OK, 0, "connected to %s", t->where);
	else if (err == UV_ECONNREFUSED)
		check_report(c, CHECK_REFUSED, 0, "connect to %s refused", t->where);
	else
		check_report(c, reason_of(err), 0, "connect to %s: %s", t->where,
			     uv_strerror(err));
}

static void on_connect(uv_connect_t *req, int status)
{
	struct tcp_probe *p = req->data;

	if (p->t && status != UV_ECANCELED)
		finish(p, status);
	probe_unref(p);
}

static void on_timer(uv_timer_t *timer)
{
	struct tcp_probe *p = timer->data;
	struct tcp_check *t = p->t;
	struct check *c;
	uint64_t want, took;

	if (!t)
		return;
	if (p->err) {
		finish(p, p->err);
		return;
	}
	c = t->c;
	want = timeout_ms(c) * 1000;
	took = check_now_us() - c->started_us;
	/* The loop's clock may lag the probe's start: never end early. */
	if (took < want) {
		uv_timer_start(timer, on_timer, (want - took + 999) / 1000, 0);
		return;
	}
	/* Detach first: the callback may start the next probe. */
	probe_end(p);
	check_report(c, CHECK_TIMEOUT, 0, "no connection to %s within %llums",
		     t->where, (unsigned long long)timeout_ms(c));
}

/* Begin the connect; a synchronous error is reported from the loop. */
static void probe_connect(struct tcp_probe *p, const struct sockaddr *sa)
{
	uv_loop_t *loop = check_engine_loop(p->t->c->engine);
	int rc;

	rc = uv_tcp_init(loop, &p->tcp);
	if (rc == 0) {
		p->tcp_open = true;
		p->refs++;
		p->tcp.data = p;
		p->connect.data = p;
		rc = uv_tcp_connect(&p->connect, &p->tcp, sa, on_connect);
		if (rc == 0)
			p->refs++;
	}
	if (rc < 0) {
		p->err = rc;
		uv_timer_start(&p->timer, on_timer, 0, 0);
	}
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
	struct tcp_probe *p = req->data;
	struct tcp_check *t = p->t;

	p->gai.loop = NULL;
	if (t && status == 0 && res) {
		probe_connect(p, res->ai_addr);
	} else if (t) {
		probe_end(p);
		check_report(t->c, CHECK_DNS, 0, "cannot resolve %s: %s",
			     t->c->cfg->host, uv_strerror(status));
	}
	uv_freeaddrinfo(res);
	probe_unref(p);
}

static int tcp_start(struct check *c)
{
	struct tcp_check *t = c->priv;
	uv_loop_t *loop = check_engine_loop(c->engine);
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM };
	struct tcp_probe *p;
	char port[8];
	int rc;

	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->t = t;
	uv_timer_init(loop, &p->timer);
	p->timer.data = p;
	p->refs = 1;
	t->probe = p;
	rc = uv_timer_start(&p->timer, on_timer, timeout_ms(c), 0);
	if (rc < 0)
		goto fail;
	if (t->numeric) {
		probe_connect(p, (const struct sockaddr *)&t->addr);
		return 0;
	}
	snprintf(port, sizeof(port), "%u", c->cfg->port);
	p->gai.data = p;
	rc = uv_getaddrinfo(loop, &p->gai, on_resolved, c->cfg->host, port, &hints);
	if (rc < 0) {
		p->gai.loop = NULL;
		goto fail;
	}
	p->refs++;
	return 0;
fail:
	probe_end(p);
	return rc;
}

static void tcp_cancel(struct check *c)
{
	struct tcp_check *t = c->priv;

	if (t && t->probe)
		probe_end(t->probe);
}

static void tcp_destroy(struct check *c)
{
	tcp_cancel(c);
	free(c->priv);
	c->priv = NULL;
	check_freed(c);
}

static int tcp_init(struct check *c)
{
	const struct cfg_check *cfg = c->cfg;
	struct tcp_check *t;
	char host[64];
	size_t len;

	if (!cfg->host || !*cfg->host || cfg->port == 0)
		return -EINVAL;
	len = strlen(cfg->host);
	if (cfg->host[0] == '[' && len > 2 && cfg->host[len - 1] == ']')
		snprintf(host, sizeof(host), "%.*s", (int)(len - 2), cfg->host + 1);
	else if (len < sizeof(host))
		memcpy(host, cfg->host, len + 1);
	else
		return -EINVAL;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->c = c;
	if (uv_ip4_addr(host, cfg->port, (struct sockaddr_in *)&t->addr) == 0) {
		t->numeric = true;
		snprintf(t->where, sizeof(t->where), "%s:%u", host, cfg->port);
	} else if (uv_ip6_addr(host, cfg->port,
			       (struct sockaddr_in6 *)&t->addr) == 0) {
		t->numeric = true;
		snprintf(t->where, sizeof(t->where), "[%s]:%u", host, cfg->port);
	} else {
		/* A name: resolved per probe by uv_getaddrinfo, off the loop. */
		snprintf(t->where, sizeof(t->where), "%s:%u", host, cfg->port);
	}
	c->priv = t;
	return 0;
}

const struct check_ops check_tcp_ops = {
	.type = "tcp",
	.init = tcp_init,
	.start = tcp_start,
	.cancel = tcp_cancel,
	.destroy = tcp_destroy,
};
