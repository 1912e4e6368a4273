/*
 * TCP connect probes: a probe passes when the three-way handshake does.
 * A host name is resolved per probe and every address it has is tried in
 * order until one connects, all within the check's timeout; the detail
 * names the address that answered and those that failed before it. Each
 * probe owns a uv_timer_t, a getaddrinfo request for a name, and one
 * connect attempt at a time (its own uv_tcp_t); it is freed once all of
 * them have finished.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checks/checks.h"

/* The most addresses of one name tried per probe. */
#define TCP_MAX_ADDRS 8

struct tcp_check;
struct tcp_probe;

/* One connect attempt: its own handle, as a closed handle cannot be reused
 * before its close callback. */
struct tcp_conn {
	struct tcp_probe *p;
	uv_tcp_t tcp;
	uv_connect_t req;
	int refs;                   /* the handle and the connect request */
};

struct tcp_probe {
	struct tcp_check *t;        /* NULL once the probe is over or cancelled */
	uv_timer_t timer;
	uv_getaddrinfo_t gai;
	struct tcp_conn *conn;      /* the attempt in flight */
	struct sockaddr_storage addrs[TCP_MAX_ADDRS];
	size_t n_addrs, next;
	char tried[96];             /* "[::1]:80 refused" for the addresses that failed */
	int refs;                   /* open handles, pending requests, attempts */
	int err;                    /* the last connect error, reported from the loop */
};

struct tcp_check {
	struct check *c;
	struct sockaddr_storage addr;
	bool numeric;
	char where[80];             /* "127.0.0.1:80", "[::1]:80", "localhost:80" */
	struct tcp_probe *probe;    /* in flight */
};

static void probe_unref(struct tcp_probe *p)
{
	if (--p->refs == 0)
		free(p);
}

static void on_timer_closed(uv_handle_t *h)
{
	probe_unref(h->data);
}

static void conn_unref(struct tcp_conn *k)
{
	if (--k->refs == 0) {
		probe_unref(k->p);
		free(k);
	}
}

static void on_conn_closed(uv_handle_t *h)
{
	conn_unref(h->data);
}

static void conn_close(struct tcp_probe *p)
{
	if (p->conn && !uv_is_closing((uv_handle_t *)&p->conn->tcp))
		uv_close((uv_handle_t *)&p->conn->tcp, on_conn_closed);
	p->conn = NULL;
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
		uv_close((uv_handle_t *)&p->timer, on_timer_closed);
	conn_close(p);
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

static void format_addr(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN] = "?";

	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)ss;

		uv_ip6_name(in6, a, sizeof(a));
		snprintf(buf, len, "[%s]:%u", a, ntohs(in6->sin6_port));
	} else {
		const struct sockaddr_in *in = (const void *)ss;

		uv_ip4_name(in, a, sizeof(a));
		snprintf(buf, len, "%s:%u", a, ntohs(in->sin_port));
	}
}

/* Note an address that failed, for the detail of the result. */
static void note_failure(struct tcp_probe *p, const struct sockaddr_storage *ss, int err)
{
	size_t len = strlen(p->tried);
	char a[64];

	format_addr(ss, a, sizeof(a));
	if (len + 1 < sizeof(p->tried))
		snprintf(p->tried + len, sizeof(p->tried) - len, "%s%s %s", len ? ", " : "",
			 a, err == UV_ECONNREFUSED ? "refused" : uv_strerror(err));
}

static void report_connected(struct tcp_probe *p, const struct sockaddr_storage *ss)
{
	struct check *c = p->t->c;
	char a[64];

	format_addr(ss, a, sizeof(a));
	probe_end(p);
	if (*p->tried)
		check_report(c, CHECK_OK, 0, "connected to %s (after %s)", a, p->tried);
	else
		check_report(c, CHECK_OK, 0, "connected to %s", a);
}

/* Every address failed: the last error decides the reason. */
static void report_failed(struct tcp_probe *p)
{
	struct tcp_check *t = p->t;
	int err = p->err;

	probe_end(p);
	if (p->n_addrs > 1)
		check_report(t->c, reason_of(err), 0, "connect to %s failed: %s", t->where,
			     p->tried);
	else if (err == UV_ECONNREFUSED)
		check_report(t->c, CHECK_REFUSED, 0, "connect to %s refused", t->where);
	else
		check_report(t->c, reason_of(err), 0, "connect to %s: %s", t->where,
			     uv_strerror(err));
}

static void connect_next(struct tcp_probe *p);

static void on_connect(uv_connect_t *req, int status)
{
	struct tcp_conn *k = req->data;
	struct tcp_probe *p = k->p;
	const struct sockaddr_storage *ss = &p->addrs[p->next - 1];

	if (p->t && p->conn == k && status != UV_ECANCELED) {
		if (status == 0) {
			report_connected(p, ss);
		} else {
			conn_close(p);
			p->err = status;
			note_failure(p, ss, status);
			connect_next(p);
		}
	}
	conn_unref(k);
}

static void on_timer(uv_timer_t *timer)
{
	struct tcp_probe *p = timer->data;
	struct tcp_check *t = p->t;
	struct check *c;
	uint64_t want, took;

	if (!t)
		return;
	if (p->err && !p->conn) {
		report_failed(p);
		return;
	}
	c = t->c;
	want = timeout_ms(c) * 1000;
	took = check_now_us() - c->started_us;
	/* This address had its share of the time: on to the next one (a
	 * blackholed AAAA must not cost the A record its chance). */
	if (took < want && p->conn && p->next < p->n_addrs) {
		const struct sockaddr_storage *ss = &p->addrs[p->next - 1];

		conn_close(p);
		p->err = UV_ETIMEDOUT;
		note_failure(p, ss, UV_ETIMEDOUT);
		connect_next(p);
		return;
	}
	/* The loop's clock may lag the probe's start: never end early. */
	if (took < want) {
		uv_timer_start(timer, on_timer, (want - took + 999) / 1000, 0);
		return;
	}
	/* Detach first: the callback may start the next probe. */
	probe_end(p);
	if (*p->tried)
		check_report(c, CHECK_TIMEOUT, 0, "no connection to %s within %llums (after %s)",
			     t->where, (unsigned long long)timeout_ms(c), p->tried);
	else
		check_report(c, CHECK_TIMEOUT, 0, "no connection to %s within %llums",
			     t->where, (unsigned long long)timeout_ms(c));
}

/* Begin a connect to one address; 0 or a synchronous UV error. */
static int conn_start(struct tcp_probe *p, const struct sockaddr *sa)
{
	uv_loop_t *loop = check_engine_loop(p->t->c->engine);
	struct tcp_conn *k = calloc(1, sizeof(*k));
	int rc;

	if (!k)
		return UV_ENOMEM;
	rc = uv_tcp_init(loop, &k->tcp);
	if (rc < 0) {
		free(k);
		return rc;
	}
	k->p = p;
	k->refs = 1;
	k->tcp.data = k;
	k->req.data = k;
	p->refs++;
	p->conn = k;
	rc = uv_tcp_connect(&k->req, &k->tcp, sa, on_connect);
	if (rc == 0)
		k->refs++;
	else
		conn_close(p);
	return rc;
}

/* Try the addresses in order until one connect is under way; when none is
 * left, the last error is reported from the loop (never from inside
 * check_start()). The probe's timer bounds the whole attempt; each address
 * gets an equal share of what is left of it. */
static void connect_next(struct tcp_probe *p)
{
	while (p->next < p->n_addrs) {
		const struct sockaddr_storage *ss = &p->addrs[p->next++];
		int rc = conn_start(p, (const struct sockaddr *)ss);

		if (rc == 0) {
			uint64_t want = timeout_ms(p->t->c) * 1000;
			uint64_t took = check_now_us() - p->t->c->started_us;
			uint64_t left = took < want ? want - took : 0;

			uv_timer_start(&p->timer, on_timer,
				       (left / (p->n_addrs - p->next + 1) + 999) / 1000, 0);
			return;
		}
		p->err = rc;
		note_failure(p, ss, rc);
	}
	uv_timer_start(&p->timer, on_timer, 0, 0);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
	struct tcp_probe *p = req->data;
	struct tcp_check *t = p->t;

	p->gai.loop = NULL;
	if (t && status == 0 && res) {
		for (struct addrinfo *ai = res; ai && p->n_addrs < TCP_MAX_ADDRS; ai = ai->ai_next)
			if ((ai->ai_family == AF_INET || ai->ai_family == AF_INET6) &&
			    ai->ai_addrlen <= sizeof(p->addrs[0]))
				memcpy(&p->addrs[p->n_addrs++], ai->ai_addr, ai->ai_addrlen);
		if (p->n_addrs) {
			connect_next(p);
		} else {
			probe_end(p);
			check_report(t->c, CHECK_DNS, 0, "%s has no IPv4 or IPv6 address",
				     t->c->cfg->host);
		}
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
		p->addrs[0] = t->addr;
		p->n_addrs = 1;
		connect_next(p);
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
