/*
 * The userspace WireGuard backend: wireguard-go's UAPI socket. A read
 * connects to DIR/IFACE.sock, sends "get=1\n\n" and reads key=value lines
 * up to the blank line; the server keeps the connection open, so the
 * blank line, not EOF, ends the reply. Keys are lowercase hex there.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checks/checks.h"

#define UAPI_MAX_REPLY (1u << 20)  /* 4096 peers need about 1.6 MB; far more than a mesh has */
#define UAPI_MAX_LINE 512

/* ---- the parser (pure) ---- */

struct uapi_parse {
	struct check_wg_device *dev;
	struct check_wg_peer *peer;   /* the peer the lines now describe */
	unsigned line;
	bool have_errno;
	long remote_errno;
	char *err;
	size_t errlen;
};

static int parse_fail(struct uapi_parse *p, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int parse_fail(struct uapi_parse *p, const char *fmt, ...)
{
	va_list ap;
	int n;

	n = snprintf(p->err, p->errlen, "UAPI reply line %u: ", p->line);
	va_start(ap, fmt);
	if (n >= 0 && (size_t)n < p->errlen)
		vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return -EPROTO;
}

/* The value shown in an error: printable, and short. */
static const char *shown(const char *v, char *buf, size_t len)
{
	size_t i;

	for (i = 0; v[i] && i + 1 < len && i < 40; i++)
		buf[i] = (v[i] >= 0x20 && v[i] < 0x7f) ? v[i] : '?';
	buf[i] = 0;
	return buf;
}

static int hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	return -1;
}

static bool parse_key(const char *v, uint8_t key[CHECK_WG_KEY_LEN])
{
	if (strlen(v) != 2 * CHECK_WG_KEY_LEN)
		return false;
	for (int i = 0; i < CHECK_WG_KEY_LEN; i++) {
		int hi = hexval(v[2 * i]), lo = hexval(v[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return false;
		key[i] = (uint8_t)(hi << 4 | lo);
	}
	return true;
}

static bool parse_u64(const char *v, uint64_t max, uint64_t *out)
{
	char *end;

	if (*v < '0' || *v > '9' || strlen(v) > 20)
		return false;
	errno = 0;
	*out = strtoull(v, &end, 10);
	return !errno && !*end && *out <= max;
}

/* "198.51.100.2:51820" or "[2001:db8::1]:51820". */
static bool parse_endpoint(const char *v, struct sockaddr_storage *ss)
{
	struct sockaddr_in *in = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
	char host[64];
	const char *colon;
	uint64_t port;
	size_t hl;

	if (*v == '[') {
		colon = strstr(v, "]:");
		if (!colon)
			return false;
		hl = (size_t)(colon - v - 1);
		v++;
		colon++;
	} else {
		colon = strrchr(v, ':');
		hl = colon ? (size_t)(colon - v) : 0;
	}
	if (!colon || hl == 0 || hl >= sizeof(host) || !parse_u64(colon + 1, 65535, &port))
		return false;
	memcpy(host, v, hl);
	host[hl] = 0;
	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, host, &in->sin_addr) == 1) {
		in->sin_family = AF_INET;
		in->sin_port = htons((uint16_t)port);
		return true;
	}
	if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)port);
		return true;
	}
	return false;
}

/* One peer line; the peer's own keys only. 1 when the key is not one. */
static int peer_line(struct uapi_parse *p, const char *k, const char *v)
{
	struct check_wg_peer *pe = p->peer;
	uint64_t n;
	char buf[48];

	if (strcmp(k, "endpoint") == 0) {
		if (!parse_endpoint(v, &pe->endpoint))
			return parse_fail(p, "endpoint '%s' is not ADDR:PORT", shown(v, buf, sizeof(buf)));
		return 0;
	}
	if (strcmp(k, "last_handshake_time_sec") && strcmp(k, "last_handshake_time_nsec") &&
	    strcmp(k, "rx_bytes") && strcmp(k, "tx_bytes") &&
	    strcmp(k, "persistent_keepalive_interval"))
		return 1;
	if (!parse_u64(v, UINT64_MAX, &n))
		return parse_fail(p, "%s '%s' is not a number", k, shown(v, buf, sizeof(buf)));
	if (strcmp(k, "last_handshake_time_sec") == 0 && n <= INT64_MAX)
		pe->handshake_sec = (int64_t)n;
	else if (strcmp(k, "last_handshake_time_nsec") == 0 && n < 1000000000)
		pe->handshake_nsec = (uint32_t)n;
	else if (strcmp(k, "rx_bytes") == 0)
		pe->rx_bytes = n;
	else if (strcmp(k, "tx_bytes") == 0)
		pe->tx_bytes = n;
	else if (strcmp(k, "persistent_keepalive_interval") == 0 && n <= 65535)
		pe->keepalive_s = (uint16_t)n;
	else
		return parse_fail(p, "%s %" PRIu64 " is out of range", k, n);
	return 0;
}

static int one_line(struct uapi_parse *p, char *line)
{
	char *eq = strchr(line, '='), buf[48];
	uint8_t key[CHECK_WG_KEY_LEN];
	const char *v;
	int rc;

	if (!eq || eq == line)
		return parse_fail(p, "'%s' is not KEY=VALUE", shown(line, buf, sizeof(buf)));
	if (p->have_errno)
		return parse_fail(p, "'%s' after errno=", shown(line, buf, sizeof(buf)));
	*eq = 0;
	v = eq + 1;
	if (strcmp(line, "errno") == 0) {
		char *end;

		errno = 0;
		p->remote_errno = strtol(v, &end, 10);
		if (!*v || *end || errno)
			return parse_fail(p, "errno '%s' is not a number", shown(v, buf, sizeof(buf)));
		p->have_errno = true;
		return 0;
	}
	if (strcmp(line, "public_key") == 0) {
		size_t before = p->dev->n_peers;

		if (!parse_key(v, key))
			return parse_fail(p, "public_key '%s' is not 64 hex digits", shown(v, buf, sizeof(buf)));
		if (!(p->peer = check_wg_device_peer(p->dev, key)))
			return parse_fail(p, "more than %d peers, or out of memory", CHECK_WG_MAX_PEERS);
		if (p->dev->n_peers == before)
			return parse_fail(p, "peer %.16s... is listed twice", v);
		return 0;
	}
	if (!p->peer)
		return 0;     /* a device key: private_key, listen_port, fwmark */
	rc = peer_line(p, line, v);
	return rc > 0 ? 0 : rc;  /* other peer keys (allowed_ip, ...) are not needed */
}

int check_wg_uapi_parse(const char *buf, size_t len, struct check_wg_device *dev,
			char *err, size_t errlen)
{
	struct uapi_parse p = { .dev = dev, .err = err, .errlen = errlen };
	char line[UAPI_MAX_LINE];
	size_t pos = 0;
	int rc;

	if (errlen)
		err[0] = 0;
	while (pos < len) {
		const char *nl = memchr(buf + pos, '\n', len - pos);
		size_t n;

		p.line++;
		if (!nl)
			return parse_fail(&p, "the reply ends without a blank line");
		n = (size_t)(nl - (buf + pos));
		if (n == 0)
			break;
		if (n >= sizeof(line))
			return parse_fail(&p, "longer than %d bytes", UAPI_MAX_LINE - 1);
		if (memchr(buf + pos, 0, n))
			return parse_fail(&p, "a NUL byte");
		memcpy(line, buf + pos, n);
		line[n] = 0;
		if ((rc = one_line(&p, line)))
			return rc;
		pos += n + 1;
	}
	if (pos >= len) {
		p.line++;
		return parse_fail(&p, "the reply ends without a blank line");
	}
	if (!p.have_errno)
		return parse_fail(&p, "the reply ends without errno=");
	if (p.remote_errno) {
		snprintf(err, errlen, "UAPI get failed: errno=%ld", p.remote_errno);
		return -EREMOTEIO;
	}
	return 0;
}

/* ---- the client ---- */

struct check_wg_uapi {
	uv_pipe_t pipe;
	uv_connect_t connect;
	uv_write_t write;
	check_wg_cb cb;
	void *arg;
	char path[128];
	char *buf;
	size_t len, cap;
	bool over;                  /* reported or cancelled: no more callbacks */
};

static void on_closed(uv_handle_t *h)
{
	struct check_wg_uapi *u = h->data;

	free(u->buf);
	free(u);
}

static void end(struct check_wg_uapi *u)
{
	u->over = true;
	if (!uv_is_closing((uv_handle_t *)&u->pipe))
		uv_close((uv_handle_t *)&u->pipe, on_closed);
}

/* Close, then report once; dev may be NULL on error. */
static void finish(struct check_wg_uapi *u, int err, const struct check_wg_device *dev,
		   const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void finish(struct check_wg_uapi *u, int err, const struct check_wg_device *dev,
		   const char *fmt, ...)
{
	char detail[160];
	va_list ap;

	if (u->over)
		return;
	end(u);
	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	u->cb(u->arg, err, detail, dev);
}

static bool reply_complete(const struct check_wg_uapi *u)
{
	return (u->len >= 1 && u->buf[0] == '\n') ||
	       (u->len >= 2 && memmem(u->buf, u->len, "\n\n", 2));
}

static void on_alloc(uv_handle_t *h, size_t want, uv_buf_t *b)
{
	struct check_wg_uapi *u = h->data;

	(void)want;
	if (u->cap - u->len < 4096 && u->cap < UAPI_MAX_REPLY + 4096) {
		size_t cap = u->cap ? u->cap * 2 : 8192;
		char *nb = realloc(u->buf, cap);

		if (nb) {
			u->buf = nb;
			u->cap = cap;
		}
	}
	b->base = u->buf ? u->buf + u->len : NULL;
	b->len = u->buf ? u->cap - u->len : 0;
}

static void got_reply(struct check_wg_uapi *u)
{
	struct check_wg_device dev = { 0 };
	char err[160];
	int rc = check_wg_uapi_parse(u->buf, u->len, &dev, err, sizeof(err));

	if (rc)
		finish(u, rc == -EREMOTEIO ? -EPROTO : rc, NULL, "%s: %s", u->path, err);
	else
		finish(u, 0, &dev, "%s", u->path);
	check_wg_device_clear(&dev);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
	struct check_wg_uapi *u = s->data;

	(void)b;
	if (u->over)
		return;
	if (nread == UV_ENOBUFS || (nread >= 0 && u->len + (size_t)nread > UAPI_MAX_REPLY)) {
		finish(u, -EPROTO, NULL, "%s: reply larger than %u bytes", u->path, UAPI_MAX_REPLY);
		return;
	}
	if (nread < 0) {
		finish(u, -EPROTO, NULL, "%s: connection closed after %zu bytes, before the blank line (%s)",
		       u->path, u->len, uv_strerror((int)nread));
		return;
	}
	u->len += (size_t)nread;
	if (reply_complete(u))
		got_reply(u);
}

static void on_write(uv_write_t *req, int status)
{
	struct check_wg_uapi *u = req->data;

	if (status < 0 && status != UV_ECANCELED)
		finish(u, -EIO, NULL, "%s: sending get=1: %s", u->path, uv_strerror(status));
}

static void on_connect(uv_connect_t *req, int status)
{
	static char get[] = "get=1\n\n";
	struct check_wg_uapi *u = req->data;
	uv_buf_t b = uv_buf_init(get, sizeof(get) - 1);
	int rc;

	if (u->over)
		return;
	if (status == UV_ENOENT) {
		finish(u, -ENOENT, NULL, "no UAPI socket %s", u->path);
		return;
	}
	if (status == UV_ECONNREFUSED) {
		finish(u, -ECONNREFUSED, NULL, "%s refused the connection (stale socket: its wireguard-go is gone)",
		       u->path);
		return;
	}
	if (status < 0) {
		finish(u, status, NULL, "connect to %s: %s", u->path, uv_strerror(status));
		return;
	}
	u->write.data = u;
	rc = uv_write(&u->write, (uv_stream_t *)&u->pipe, &b, 1, on_write);
	if (rc == 0)
		rc = uv_read_start((uv_stream_t *)&u->pipe, on_alloc, on_read);
	if (rc < 0)
		finish(u, rc, NULL, "%s: %s", u->path, uv_strerror(rc));
}

int check_wg_uapi_get(uv_loop_t *loop, const char *path, check_wg_cb cb,
		      void *arg, struct check_wg_uapi **out)
{
	struct check_wg_uapi *u;
	int rc;

	*out = NULL;
	if (strlen(path) >= sizeof(u->path))
		return -ENAMETOOLONG;
	if (!(u = calloc(1, sizeof(*u))))
		return -ENOMEM;
	rc = uv_pipe_init(loop, &u->pipe, 0);
	if (rc < 0) {
		free(u);
		return rc;
	}
	u->pipe.data = u;
	u->connect.data = u;
	u->cb = cb;
	u->arg = arg;
	snprintf(u->path, sizeof(u->path), "%s", path);
	/* Errors, ENOENT included, arrive in on_connect from the loop. */
	uv_pipe_connect(&u->connect, &u->pipe, u->path, on_connect);
	*out = u;
	return 0;
}

void check_wg_uapi_cancel(struct check_wg_uapi *u)
{
	if (u)
		end(u);
}
