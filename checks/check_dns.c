/*
 * DNS probes: one query (qname, qtype) to one server, over UDP and again
 * over TCP when the UDP answer comes back truncated (c-ares does that by
 * itself). A probe passes when the rcode is expect_rcode and, with
 * expect_answer, some answer record's text contains it.
 *
 * Each check owns a c-ares channel: the check's own timeout and server are
 * the channel's options, ares_cancel() aborts exactly this probe, and a TCP
 * socket seen on it is this probe's. c-ares tells us its sockets through
 * ARES_OPT_SOCK_STATE_CB (a uv_poll_t each) and its timeouts through
 * ares_timeout() (one uv_timer_t, which also holds the check's deadline).
 * The channel closes its sockets once no query is pending, so each probe
 * sends from a fresh UDP port.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ares.h>

#include "checks/checks.h"

static const char *const rcode_names[16] = {
	"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED",
	"YXDOMAIN", "YXRRSET", "NXRRSET", "NOTAUTH", "NOTZONE",
};

struct dns_check;

struct dns_sock {
	uv_poll_t poll;
	ares_socket_t fd;
	bool stream;                /* a TCP socket */
	struct dns_check *d;
	struct dns_sock *next;
};

/* The outcome of the probe, kept until c-ares has returned (a done
 * callback may destroy the check, and with it the channel). */
struct dns_outcome {
	bool ready;
	enum check_reason reason;
	char detail[160];
};

struct dns_check {
	struct check *c;
	ares_channel ch;
	uv_timer_t timer;
	struct dns_sock *socks;
	unsigned char *qbuf;
	int qlen;
	int refs;                   /* the timer and each poll handle */
	bool in_flight;
	bool used_tcp;              /* this probe touched a TCP socket */
	uint64_t deadline_us;
	struct dns_outcome out;
};

static void dns_unref(struct dns_check *d)
{
	if (--d->refs == 0) {
		struct check *c = d->c;

		free(d);
		check_freed(c);
	}
}

static void on_sock_closed(uv_handle_t *h)
{
	struct dns_sock *s = h->data;
	struct dns_check *d = s->d;

	free(s);
	dns_unref(d);
}

static void on_timer_closed(uv_handle_t *h)
{
	dns_unref(h->data);
}

static uint64_t timeout_ms(const struct check *c)
{
	return c->cfg->timeout_ms ? c->cfg->timeout_ms : 1000;
}

static const char *rcode_str(unsigned rcode, char *buf, size_t len)
{
	if (rcode < 16 && rcode_names[rcode])
		return rcode_names[rcode];
	snprintf(buf, len, "RCODE%u", rcode);
	return buf;
}

static void outcome(struct dns_check *d, enum check_reason reason, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void outcome(struct dns_check *d, enum check_reason reason, const char *fmt, ...)
{
	va_list ap;

	d->in_flight = false;
	d->out.ready = true;
	d->out.reason = reason;
	va_start(ap, fmt);
	vsnprintf(d->out.detail, sizeof(d->out.detail), fmt, ap);
	va_end(ap);
}

/* Report the outcome, if there is one: the last act of every loop
 * callback, after c-ares has returned. */
static void deliver(struct dns_check *d)
{
	struct dns_outcome o = d->out;

	if (!o.ready)
		return;
	d->out.ready = false;
	uv_timer_stop(&d->timer);
	check_report(d->c, o.reason, 0, "%s", o.detail);
}

/* ---- the reply: each answer record in presentation text ---- */

static int rr_name(const unsigned char *abuf, int alen, const unsigned char *p,
		   char *buf, size_t len, long *used)
{
	char *name;

	if (ares_expand_name(p, abuf, alen, &name, used) != ARES_SUCCESS)
		return -1;
	snprintf(buf, len, "%s", *name ? name : ".");
	ares_free_string(name);
	return 0;
}

/* The text of one record's data ("192.0.2.1", "10 mx.example.net", a
 * TXT record's strings joined); 0, or -1 when it does not parse. */
static int rr_text(const unsigned char *abuf, int alen, unsigned type,
		   const unsigned char *rd, unsigned rdlen, char *buf, size_t len)
{
	const unsigned char *end = rd + rdlen;
	char n[256];
	long used;

	buf[0] = '\0';
	switch (type) {
	case 1:   /* A */
		return rdlen == 4 && inet_ntop(AF_INET, rd, buf, (socklen_t)len) ? 0 : -1;
	case 28:  /* AAAA */
		return rdlen == 16 && inet_ntop(AF_INET6, rd, buf, (socklen_t)len) ? 0 : -1;
	case 2: case 5: case 12:   /* NS, CNAME, PTR */
		return rr_name(abuf, alen, rd, buf, len, &used);
	case 15:  /* MX */
		if (rdlen < 3 || rr_name(abuf, alen, rd + 2, n, sizeof(n), &used))
			return -1;
		snprintf(buf, len, "%u %s", (unsigned)(rd[0] << 8 | rd[1]), n);
		return 0;
	case 33:  /* SRV */
		if (rdlen < 7 || rr_name(abuf, alen, rd + 6, n, sizeof(n), &used))
			return -1;
		snprintf(buf, len, "%u %u %u %s", (unsigned)(rd[0] << 8 | rd[1]),
			 (unsigned)(rd[2] << 8 | rd[3]), (unsigned)(rd[4] << 8 | rd[5]), n);
		return 0;
	case 6: { /* SOA */
		char r[256];
		long used2;
		const unsigned char *q;

		if (rr_name(abuf, alen, rd, n, sizeof(n), &used) ||
		    rr_name(abuf, alen, rd + used, r, sizeof(r), &used2))
			return -1;
		q = rd + used + used2;
		if (q + 20 > end)
			return -1;
		snprintf(buf, len, "%.200s %.200s %u %u %u %u %u", n, r,
			 (unsigned)(q[0] << 24 | q[1] << 16 | q[2] << 8 | q[3]),
			 (unsigned)(q[4] << 24 | q[5] << 16 | q[6] << 8 | q[7]),
			 (unsigned)(q[8] << 24 | q[9] << 16 | q[10] << 8 | q[11]),
			 (unsigned)(q[12] << 24 | q[13] << 16 | q[14] << 8 | q[15]),
			 (unsigned)(q[16] << 24 | q[17] << 16 | q[18] << 8 | q[19]));
		return 0;
	}
	case 16: { /* TXT: the character-strings joined, as SPF reads them */
		size_t o = 0;

		for (const unsigned char *q = rd; q < end; q += 1 + *q) {
			if (q + 1 + *q > end)
				return -1;
			for (unsigned i = 0; i < *q && o + 1 < len; i++)
				buf[o++] = (char)q[1 + i];
		}
		buf[o] = '\0';
		return 0;
	}
	case 257: /* CAA: flags tag "value" */
		if (rdlen < 2 || 2u + rd[1] > rdlen)
			return -1;
		snprintf(buf, len, "%u %.*s \"%.*s\"", rd[0], rd[1], (const char *)rd + 2,
			 (int)(rdlen - 2 - rd[1]), (const char *)rd + 2 + rd[1]);
		return 0;
	default:
		return -1;
	}
}

/* Append s to the "(got ...)" list while it fits. */
static void got_add(char *got, size_t len, const char *s)
{
	size_t used = strlen(got);

	if (used + 4 >= len)
		return;
	if (used + strlen(s) + 2 >= len - 4) {
		if (!strstr(got, "..."))
			snprintf(got + used, len - used, "%s...", used ? ", " : "");
		return;
	}
	snprintf(got + used, len - used, "%s%s", used ? ", " : "", s);
}

static void judge(struct dns_check *d, const unsigned char *abuf, int alen)
{
	const struct cfg_check *k = d->c->cfg;
	const unsigned char *p = abuf + 12, *end = abuf + alen;
	char rc[16], want[16], got[96] = "", text[512], name[256];
	unsigned rcode, qd, an;
	bool found = false;
	long used;

	if (alen < 12)
		goto malformed;
	rcode = abuf[3] & 0xf;
	qd = (unsigned)(abuf[4] << 8 | abuf[5]);
	an = (unsigned)(abuf[6] << 8 | abuf[7]);
	if (rcode != k->expect_rcode) {
		outcome(d, CHECK_STATUS, "%s from %s (want %s)", rcode_str(rcode, rc, sizeof(rc)),
			k->server, rcode_str(k->expect_rcode, want, sizeof(want)));
		return;
	}
	for (unsigned i = 0; i < qd; i++) {
		if (rr_name(abuf, alen, p, name, sizeof(name), &used) || p + used + 4 > end)
			goto malformed;
		p += used + 4;
	}
	for (unsigned i = 0; i < an; i++) {
		unsigned type, rdlen;

		if (rr_name(abuf, alen, p, name, sizeof(name), &used) || p + used + 10 > end)
			goto malformed;
		p += used;
		type = (unsigned)(p[0] << 8 | p[1]);
		rdlen = (unsigned)(p[8] << 8 | p[9]);
		p += 10;
		if (p + rdlen > end)
			goto malformed;
		if (rr_text(abuf, alen, type, p, rdlen, text, sizeof(text)) == 0) {
			got_add(got, sizeof(got), text);
			if (k->expect_answer && strstr(text, k->expect_answer))
				found = true;
		}
		p += rdlen;
	}
	if (k->expect_answer && !found) {
		outcome(d, CHECK_BODY, "no answer contains \"%s\" (got %s)", k->expect_answer,
			*got ? got : "no answer records");
		return;
	}
	outcome(d, CHECK_OK, "%s from %s%s%s%s", rcode_str(rcode, rc, sizeof(rc)), k->server,
		d->used_tcp ? " over tcp" : "", *got ? ": " : "", got);
	return;
malformed:
	outcome(d, CHECK_PROTOCOL, "malformed answer from %s", k->server);
}

static void on_answer(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct dns_check *d = arg;
	const struct cfg_check *k = d->c->cfg;

	(void)timeouts;
	if (!d->in_flight || status == ARES_ECANCELLED || status == ARES_EDESTRUCTION)
		return;
	switch (status) {
	case ARES_SUCCESS:
		judge(d, abuf, alen);
		break;
	case ARES_ETIMEOUT:
		outcome(d, CHECK_TIMEOUT, "timeout after %llu ms (%s)",
			(unsigned long long)timeout_ms(d->c), d->used_tcp ? "udp, then tcp" : "udp");
		break;
	case ARES_ECONNREFUSED:
		outcome(d, CHECK_REFUSED, "%s refused the query%s", k->server,
			d->used_tcp ? " over tcp" : "");
		break;
	case ARES_EBADRESP:
		outcome(d, CHECK_PROTOCOL, "malformed answer from %s", k->server);
		break;
	default:
		outcome(d, CHECK_IO, "query to %s: %s", k->server, ares_strerror(status));
		break;
	}
}

/* ---- c-ares on the loop ---- */

static void on_timer(uv_timer_t *t);

/* Wake for whichever comes first: c-ares's next timeout or the deadline. */
static void rearm(struct dns_check *d)
{
	struct timeval max, tv, *next;
	uint64_t now = check_now_us(), left, ms;

	if (!d->in_flight)
		return;
	left = d->deadline_us > now ? d->deadline_us - now : 0;
	max.tv_sec = (time_t)(left / 1000000);
	max.tv_usec = (suseconds_t)(left % 1000000);
	next = ares_timeout(d->ch, &max, &tv);
	ms = ((uint64_t)next->tv_sec * 1000000 + (uint64_t)next->tv_usec + 999) / 1000;
	uv_timer_start(&d->timer, on_timer, ms ? ms : 1, 0);
}

static void on_timer(uv_timer_t *t)
{
	struct dns_check *d = t->data;

	if (!d->in_flight) {
		deliver(d);
		return;
	}
	if (check_now_us() >= d->deadline_us) {
		outcome(d, CHECK_TIMEOUT, "timeout after %llu ms (%s)",
			(unsigned long long)timeout_ms(d->c), d->used_tcp ? "udp, then tcp" : "udp");
		ares_cancel(d->ch);   /* in_flight is false: the callback ignores it */
		deliver(d);
		return;
	}
	ares_process_fd(d->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	rearm(d);
	deliver(d);
}

static void on_poll(uv_poll_t *h, int status, int events)
{
	struct dns_sock *s = h->data;
	struct dns_check *d = s->d;
	ares_socket_t fd = s->fd;   /* s may go during ares_process_fd */

	if (s->stream && d->in_flight)
		d->used_tcp = true;
	/* An error: let c-ares read it and fail the socket. */
	if (status < 0)
		events = UV_READABLE | UV_WRITABLE;
	ares_process_fd(d->ch, events & UV_READABLE ? fd : ARES_SOCKET_BAD,
			events & UV_WRITABLE ? fd : ARES_SOCKET_BAD);
	rearm(d);
	deliver(d);
}

static void sock_close(struct dns_check *d, struct dns_sock *s)
{
	for (struct dns_sock **pp = &d->socks; *pp; pp = &(*pp)->next)
		if (*pp == s) {
			*pp = s->next;
			break;
		}
	uv_close((uv_handle_t *)&s->poll, on_sock_closed);
}

/* ARES_OPT_SOCK_STATE_CB: which events c-ares wants on a socket; none
 * means it is about to close it. */
static void on_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
	struct dns_check *d = data;
	struct dns_sock *s;
	int type = 0;
	socklen_t tlen = sizeof(type);

	for (s = d->socks; s && s->fd != fd; s = s->next)
		;
	if (!readable && !writable) {
		if (s)
			sock_close(d, s);
		return;
	}
	if (!s) {
		if (!(s = calloc(1, sizeof(*s))))
			return;
		if (uv_poll_init_socket(check_engine_loop(d->c->engine), &s->poll, fd) < 0) {
			free(s);
			return;
		}
		s->poll.data = s;
		s->fd = fd;
		s->d = d;
		s->stream = getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tlen) == 0 &&
			    type == SOCK_STREAM;
		s->next = d->socks;
		d->socks = s;
		d->refs++;
	}
	if (s->stream && d->in_flight)
		d->used_tcp = true;
	uv_poll_start(&s->poll, (readable ? UV_READABLE : 0) | (writable ? UV_WRITABLE : 0),
		      on_poll);
}

static int dns_start(struct check *c)
{
	struct dns_check *d = c->priv;

	d->in_flight = true;
	d->used_tcp = false;
	d->out.ready = false;
	d->deadline_us = c->started_us + timeout_ms(c) * 1000;
	ares_send(d->ch, d->qbuf, d->qlen, on_answer, d);
	/* A failure inside ares_send has called back already: report it from
	 * the loop, never from inside check_start(). */
	if (d->out.ready)
		uv_timer_start(&d->timer, on_timer, 0, 0);
	else
		rearm(d);
	return 0;
}

static void dns_cancel(struct check *c)
{
	struct dns_check *d = c->priv;

	if (!d)
		return;
	d->in_flight = false;
	d->out.ready = false;
	ares_cancel(d->ch);
	uv_timer_stop(&d->timer);
}

static void dns_destroy(struct check *c)
{
	struct dns_check *d = c->priv;

	c->priv = NULL;
	d->in_flight = false;
	/* Closes every socket through on_sock_state. */
	ares_destroy(d->ch);
	while (d->socks)
		sock_close(d, d->socks);
	ares_free_string(d->qbuf);
	ares_library_cleanup();
	uv_close((uv_handle_t *)&d->timer, on_timer_closed);
}

static int dns_init(struct check *c)
{
	const struct cfg_check *k = c->cfg;
	struct ares_options o = {
		/* No search list, no HOSTALIASES; SERVFAIL and REFUSED come back
		 * as answers, not as "try the next server". */
		.flags = ARES_FLAG_NOSEARCH | ARES_FLAG_NOALIASES | ARES_FLAG_NOCHECKRESP,
		.timeout = (int)timeout_ms(c),
		.tries = 1,             /* healthd's timeout governs, not retries */
		.nservers = 0,          /* set below; never /etc/resolv.conf's */
		.ndomains = 0,
		.lookups = (char *)"b",
	};
	struct dns_check *d;
	int rc;

	if (!k->qname || !k->server || !k->qtype)
		return -EINVAL;
	if (ares_library_init(ARES_LIB_INIT_ALL) != ARES_SUCCESS)
		return -ENOMEM;
	d = calloc(1, sizeof(*d));
	if (!d) {
		ares_library_cleanup();
		return -ENOMEM;
	}
	d->c = c;
	o.sock_state_cb = on_sock_state;
	o.sock_state_cb_data = d;
	rc = ares_init_options(&d->ch, &o, ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES |
			       ARES_OPT_SERVERS | ARES_OPT_DOMAINS | ARES_OPT_LOOKUPS |
			       ARES_OPT_SOCK_STATE_CB);
	if (rc != ARES_SUCCESS) {
		free(d);
		ares_library_cleanup();
		return rc == ARES_ENOMEM ? -ENOMEM : -EINVAL;
	}
	/* No EDNS: a UDP answer over 512 bytes comes back truncated and c-ares
	 * asks again over TCP. */
	if (ares_set_servers_ports_csv(d->ch, k->server) != ARES_SUCCESS ||
	    ares_create_query(k->qname, 1, k->qtype, 0, 1, &d->qbuf, &d->qlen, 0) !=
		    ARES_SUCCESS) {
		ares_destroy(d->ch);
		free(d);
		ares_library_cleanup();
		return -EINVAL;
	}
	uv_timer_init(check_engine_loop(c->engine), &d->timer);
	d->timer.data = d;
	d->refs = 1;
	c->priv = d;
	return 0;
}

const struct check_ops check_dns_ops = {
	.type = "dns",
	.init = dns_init,
	.start = dns_start,
	.cancel = dns_cancel,
	.destroy = dns_destroy,
};
