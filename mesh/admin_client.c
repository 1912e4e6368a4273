/*
 * mesh/admin_client.c — one request to meshd's admin socket, blocking
 * with a deadline, and the tables meshctl prints from the replies.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "mesh/admin_client.h"
#include "meshd/state.h"

const char *mesh_admin_socket(const char *opt)
{
	const char *env = getenv(MESH_ADMIN_SOCKET_ENV);

	if (opt)
		return opt;
	return env && *env ? env : MESH_ADMIN_SOCKET;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* What to try when the socket cannot be reached. */
static const char *connect_hint(int e)
{
	switch (e) {
	case ENOENT:
	case ECONNREFUSED:
		return " (is meshd running?)";
	case EACCES:
	case EPERM:
		return " (the socket is root's and meshd's user's only)";
	case EAGAIN:
		return " (meshd is not accepting connections)";
	default:
		return "";
	}
}

static int connect_to(const char *path, unsigned timeout_ms, char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = timeout_ms / 1000, .tv_usec = timeout_ms % 1000 * 1000 };
	int fd, e;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "%s: path too long for a unix socket", path);
		return -1;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0) {
		snprintf(err, errlen, "%s: socket: %s", path, strerror(errno));
		return -1;
	}
	/* a full backlog makes connect wait: at most this long */
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		e = errno;
		close(fd);
		snprintf(err, errlen, "%s: cannot connect: %s%s", path, strerror(e), connect_hint(e));
		return -1;
	}
	return fd;
}

/* Wait for fd to be ready for events until the deadline. */
static int wait_fd(int fd, short events, int64_t deadline)
{
	struct pollfd p = { .fd = fd, .events = events };
	int64_t left;
	int rc;

	do {
		left = deadline - now_ms();
		if (left <= 0)
			return -ETIMEDOUT;
		rc = poll(&p, 1, (int)left);
	} while (rc < 0 && errno == EINTR);
	return rc < 0 ? -errno : rc == 0 ? -ETIMEDOUT : 0;
}

static int send_all(int fd, const char *buf, size_t len, int64_t deadline)
{
	while (len > 0) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		int rc;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			if ((rc = wait_fd(fd, POLLOUT, deadline)))
				return rc;
			continue;
		}
		if (n < 0)
			return -errno;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* The reply line, NUL-terminated, without its newline (EOF ends it too). */
static char *read_line(int fd, int64_t deadline, size_t *len, int *rc)
{
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap), *nl = NULL;

	*rc = buf ? 0 : -ENOMEM;
	while (buf && !nl) {
		ssize_t r;

		if (n + 1 == cap) {
			char *b = cap >= MESH_ADMIN_REPLY_MAX ? NULL : realloc(buf, cap * 2);

			if (!b) {
				*rc = cap >= MESH_ADMIN_REPLY_MAX ? -EFBIG : -ENOMEM;
				break;
			}
			buf = b;
			cap *= 2;
		}
		if ((*rc = wait_fd(fd, POLLIN, deadline)))
			break;
		r = recv(fd, buf + n, cap - 1 - n, MSG_DONTWAIT);
		if (r < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (r < 0) {
			*rc = -errno;
			break;
		}
		if (r == 0) {
			if (n == 0)
				*rc = -EPIPE;
			break;
		}
		nl = memchr(buf + n, '\n', (size_t)r);
		n += (size_t)r;
	}
	if (*rc) {
		if (buf)
			explicit_bzero(buf, cap);
		free(buf);
		return NULL;
	}
	*len = nl ? (size_t)(nl - buf) : n;
	buf[*len] = '\0';
	return buf;
}

json_t *mesh_admin_call(const char *path, json_t *req, unsigned timeout_ms, char *err,
			size_t errlen)
{
	int64_t deadline = now_ms() + timeout_ms;
	char *line = json_dumps(req, JSON_COMPACT), *buf = NULL;
	json_t *reply = NULL;
	json_error_t je;
	size_t len = 0;
	int fd, rc;

	if (!line) {
		snprintf(err, errlen, "%s: out of memory", path);
		return NULL;
	}
	if ((fd = connect_to(path, timeout_ms, err, errlen)) < 0) {
		free(line);
		return NULL;
	}
	len = strlen(line);
	line[len] = '\n';       /* json_dumps's NUL, replaced: the line is sent whole */
	rc = send_all(fd, line, len + 1, deadline);
	free(line);
	if (!rc)
		buf = read_line(fd, deadline, &len, &rc);
	close(fd);
	if (rc == -ETIMEDOUT)
		snprintf(err, errlen, "%s: no reply within %u s", path, (timeout_ms + 999) / 1000);
	else if (rc == -EPIPE)
		snprintf(err, errlen, "%s: meshd closed the connection without a reply", path);
	else if (rc == -EFBIG)
		snprintf(err, errlen, "%s: reply longer than %u MB", path, MESH_ADMIN_REPLY_MAX >> 20);
	else if (rc)
		snprintf(err, errlen, "%s: %s", path, strerror(-rc));
	if (rc)
		return NULL;
	reply = json_loadb(buf, len, 0, &je);
	explicit_bzero(buf, len);
	free(buf);
	if (!reply)
		snprintf(err, errlen, "%s: bad reply: %s", path, je.text);
	else if (!json_is_object(reply) || !json_is_boolean(json_object_get(reply, "ok"))) {
		snprintf(err, errlen, "%s: bad reply: not an object with \"ok\"", path);
		json_decref(reply);
		reply = NULL;
	}
	return reply;
}

int mesh_admin_parse_ttl(const char *s, int64_t *secs, char *err, size_t errlen)
{
	static const struct { char unit; int64_t s; } units[] = {
		{ 's', 1 }, { 'm', 60 }, { 'h', 3600 }, { 'd', 86400 },
	};
	size_t digits = strspn(s, "0123456789");
	int64_t v = 0, mul = 1;

	if (digits == 0 || digits > 9)
		goto bad;
	for (size_t i = 0; i < digits; i++)
		v = v * 10 + (s[i] - '0');
	if (s[digits]) {
		mul = 0;
		for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
			if (s[digits] == units[i].unit && !s[digits + 1])
				mul = units[i].s;
		if (!mul)
			goto bad;
	}
	if (v * mul < MSTATE_TTL_MIN || v * mul > MSTATE_TTL_MAX) {
		/* meshd's own words (mstate_token_create) */
		snprintf(err, errlen, "ttl %lld s is outside %d s .. %d days", (long long)(v * mul),
			 MSTATE_TTL_MIN, MSTATE_TTL_MAX / 86400);
		return -ERANGE;
	}
	*secs = v * mul;
	return 0;
bad:
	snprintf(err, errlen, "--ttl: '%s' is not a duration (90s, 15m, 1h, 7d)", s);
	return -EINVAL;
}

/* ---- tables ---- */

#define MAX_COLS 8

struct column {
	const char *head, *key;
};

static void cell(json_t *row, const char *key, char *buf, size_t len)
{
	json_t *v = json_object_get(row, key);

	if (json_is_string(v))
		snprintf(buf, len, "%s", json_string_value(v));
	else if (json_is_integer(v))
		snprintf(buf, len, "%lld", (long long)json_integer_value(v));
	else
		snprintf(buf, len, "-");
}

static void print_row(FILE *out, const char *const *cells, const int *w, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (i + 1 < n)
			fprintf(out, "%-*s  ", w[i], cells[i]);
		else
			fprintf(out, "%s\n", cells[i]);
}

/* Columns as wide as their widest value, two blanks apart. */
static void table(FILE *out, const struct column *cols, size_t n, json_t *rows)
{
	int w[MAX_COLS];
	const char *cells[MAX_COLS];
	char buf[MAX_COLS][128];
	size_t r;
	json_t *row;

	for (size_t i = 0; i < n; i++)
		w[i] = (int)strlen(cols[i].head);
	json_array_foreach(rows, r, row)
		for (size_t i = 0; i < n; i++) {
			cell(row, cols[i].key, buf[i], sizeof(buf[i]));
			if ((int)strlen(buf[i]) > w[i])
				w[i] = (int)strlen(buf[i]);
		}
	for (size_t i = 0; i < n; i++)
		cells[i] = cols[i].head;
	print_row(out, cells, w, n);
	json_array_foreach(rows, r, row) {
		for (size_t i = 0; i < n; i++) {
			cell(row, cols[i].key, buf[i], sizeof(buf[i]));
			cells[i] = buf[i];
		}
		print_row(out, cells, w, n);
	}
}

void mesh_admin_tokens_text(FILE *out, json_t *tokens)
{
	static const struct column cols[] = {
		{ "ID", "id" }, { "NODE", "node" }, { "STATE", "state" },
		{ "CREATED", "created" }, { "EXPIRES", "expires" },
		{ "REDEEMED", "redeemed" }, { "BY", "redeemed_by" },
	};

	table(out, cols, sizeof(cols) / sizeof(cols[0]), tokens);
}

void mesh_admin_nodes_text(FILE *out, json_t *nodes)
{
	static const struct column cols[] = {
		{ "NAME", "name" }, { "PUBLIC KEY", "public_key" },
		{ "EXTERNAL IP", "external_ip" }, { "TUNNEL IPV4", "tunnel_ipv4" },
		{ "TUNNEL IPV6", "tunnel_ipv6" }, { "ENROLLED", "enrolled" },
		{ "DISABLED", "disabled" },
	};

	table(out, cols, sizeof(cols) / sizeof(cols[0]), nodes);
}
