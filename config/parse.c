/*
 * config/parse.c — value parsers: durations, prefixes, communities, names
 * and "host:port". Pure functions, shared by the loader and healthctl.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "config/config.h"

/* Strict unsigned decimal: digits only, no sign, no blanks. Stops at the
 * first non-digit and returns where; NULL on no digits or overflow of max. */
static const char *parse_uint(const char *s, uint64_t max, uint64_t *out,
			      int *rc)
{
	uint64_t v = 0;
	const char *p = s;

	*rc = 0;
	if (*p < '0' || *p > '9') {
		*rc = -EINVAL;
		return NULL;
	}
	for (; *p >= '0' && *p <= '9'; p++) {
		unsigned d = (unsigned)(*p - '0');

		if (v > (max - d) / 10) {
			*rc = -ERANGE;
			return NULL;
		}
		v = v * 10 + d;
	}
	*out = v;
	return p;
}

int cfg_parse_duration(const char *s, uint64_t *ms)
{
	static const struct { const char *unit; uint64_t ms; } units[] = {
		{ "ms", 1 }, { "s", 1000 }, { "m", 60000 }, { "h", 3600000 },
	};
	uint64_t v;
	int rc;
	/* Digits beyond the maximum are refused before the unit is read, so
	 * neither the number nor its product with the unit can overflow. */
	const char *p = parse_uint(s, CFG_DURATION_MAX_MS, &v, &rc);

	if (!p) {
		/* still "not a duration" when what follows the digits is junk */
		if (rc == -ERANGE) {
			p = s + strspn(s, "0123456789");
			for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
				if (strcmp(p, units[i].unit) == 0)
					return -ERANGE;
			return -EINVAL;
		}
		return rc;
	}
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(p, units[i].unit) != 0)
			continue;
		if (v > CFG_DURATION_MAX_MS / units[i].ms)
			return -ERANGE;
		*ms = v * units[i].ms;
		return 0;
	}
	return -EINVAL;
}

int cfg_parse_duration_max(const char *s, uint64_t max, uint64_t *ms)
{
	uint64_t v;
	int rc = cfg_parse_duration(s, &v);

	if (rc)
		return rc;
	if (v > max)
		return -ERANGE;
	*ms = v;
	return 0;
}

static void prefix_text(struct cfg_prefix *p)
{
	char a[INET6_ADDRSTRLEN];

	inet_ntop(p->family, p->addr, a, sizeof(a));
	snprintf(p->text, sizeof(p->text), "%s/%u", a, p->len);
}

/* Host bits set: returns -EDOM with p filled in, normalised (bits cleared),
 * so the caller can name the prefix that was probably meant. */
int cfg_parse_prefix(const char *s, struct cfg_prefix *p)
{
	char a[INET6_ADDRSTRLEN];
	const char *slash = strchr(s, '/');
	uint64_t len;
	int rc, bits;
	bool host_bits = false;

	memset(p, 0, sizeof(*p));
	if (!slash || (size_t)(slash - s) >= sizeof(a))
		return -EINVAL;
	memcpy(a, s, (size_t)(slash - s));
	a[slash - s] = '\0';
	p->family = strchr(a, ':') ? AF_INET6 : AF_INET;
	bits = p->family == AF_INET ? 32 : 128;
	if (inet_pton(p->family, a, p->addr) != 1)
		return -EINVAL;
	const char *end = parse_uint(slash + 1, 255, &len, &rc);
	if (!end || *end || len > (uint64_t)bits)
		return -EINVAL;
	p->len = (uint8_t)len;
	for (int i = p->len; i < bits; i++) {
		uint8_t m = (uint8_t)(0x80 >> (i % 8));

		if (p->addr[i / 8] & m) {
			host_bits = true;
			p->addr[i / 8] &= (uint8_t)~m;
		}
	}
	prefix_text(p);
	return host_bits ? -EDOM : 0;
}

int cfg_parse_community(const char *s, struct cfg_community *c)
{
	uint64_t v[3];
	int n = 0, rc;
	const char *p = s;

	memset(c, 0, sizeof(*c));
	for (;;) {
		p = parse_uint(p, UINT32_MAX, &v[n], &rc);
		if (!p)
			return rc;
		n++;
		if (*p == '\0')
			break;
		if (*p != ':' || n == 3)
			return -EINVAL;
		p++;
	}
	if (n == 1)
		return -EINVAL;
	c->large = n == 3;
	for (int i = 0; i < n; i++) {
		if (!c->large && v[i] > 65535)
			return -ERANGE;
		c->v[i] = (uint32_t)v[i];
	}
	return 0;
}

bool cfg_name_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n >= CFG_NAME_MAX)
		return false;
	return strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_") == n;
}

static bool hostname_valid(const char *h)
{
	size_t n = strlen(h);

	return n > 0 && n < 254 && h[0] != '-' && h[0] != '.' &&
	       strspn(h, "abcdefghijklmnopqrstuvwxyz"
			 "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") == n;
}

int cfg_parse_hostport(const char *s, bool ip_only, char *host, size_t hostlen,
		       uint16_t *port)
{
	char h[256];
	uint8_t buf[16];
	const char *colon;
	uint64_t v;
	int rc;
	bool v6 = s[0] == '[';

	if (v6) {
		const char *close = strchr(s, ']');

		if (!close || close[1] != ':')
			return -EINVAL;
		colon = close + 1;
		s++;
	} else {
		colon = strrchr(s, ':');
		if (!colon || memchr(s, ':', (size_t)(colon - s)))
			return -EINVAL; /* a bare IPv6 address needs brackets */
	}
	size_t n = (size_t)(colon - s) - (v6 ? 1 : 0);
	if (n == 0 || n >= sizeof(h) || n >= hostlen)
		return -EINVAL;
	memcpy(h, s, n);
	h[n] = '\0';
	if (v6 ? inet_pton(AF_INET6, h, buf) != 1
	       : !(inet_pton(AF_INET, h, buf) == 1 ||
		   (!ip_only && hostname_valid(h))))
		return -EINVAL;
	const char *end = parse_uint(colon + 1, 65535, &v, &rc);
	if (!end || *end || v == 0)
		return -EINVAL;
	memcpy(host, h, n + 1);
	*port = (uint16_t)v;
	return 0;
}
