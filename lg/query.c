/*
 * lg/query.c — the typed queries. A request gives values (a protocol's
 * name, an address, a prefix); each is parsed into a struct lg_query,
 * and the BIRD command is printed from that struct alone. Nothing of the
 * request's own bytes reaches BIRD: a name is copied only after every one
 * of its characters was checked, an address is what inet_ntop prints.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lg/lg.h"

static const char *const kind_names[LG_Q_KINDS] = {
	[LG_Q_STATUS] = "status",
	[LG_Q_PROTOCOLS] = "protocols",
	[LG_Q_PROTOCOLS_ALL] = "protocols_all",
	[LG_Q_PROTOCOL] = "protocol",
	[LG_Q_ROUTE_FOR] = "route_for",
	[LG_Q_ROUTE_NET] = "route_net",
	[LG_Q_ROUTES_PROTOCOL] = "routes_protocol",
	[LG_Q_ROUTES_FILTERED] = "routes_filtered",
	[LG_Q_ROUTES_NOEXPORT] = "routes_noexport",
	[LG_Q_COUNT] = "count",
};

const char *lg_kind_str(enum lg_kind k)
{
	return k < LG_Q_KINDS ? kind_names[k] : "?";
}

/* What a bad value looked like, printable: at most 40 bytes, the rest
 * as \xNN, so that a reason never carries a control byte back. */
static void shown(char *dst, size_t cap, const char *s)
{
	size_t o = 0, i;

	for (i = 0; s[i] && i < 40 && o + 5 < cap; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch >= 0x20 && ch < 0x7f && ch != '"' && ch != '\\')
			dst[o++] = (char)ch;
		else
			o += (size_t)snprintf(dst + o, cap - o, "\\x%02x", ch);
	}
	if (s[i] && o + 4 < cap)
		o += (size_t)snprintf(dst + o, cap - o, "...");
	dst[o] = '\0';
}

bool lg_query_name(struct lg_query *q, enum lg_kind kind, const char *text,
		   char *why, size_t whylen)
{
	char s[200];
	size_t n = strlen(text);

	memset(q, 0, sizeof(*q));
	q->kind = kind;
	if (n == 0 || n > LG_NAME_MAX) {
		snprintf(why, whylen, "a protocol name has 1 to %d characters, not %zu", LG_NAME_MAX, n);
		return false;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)text[i];

		if (!(isascii(ch) && (isalnum(ch) || ch == '_')) || (i == 0 && isdigit(ch))) {
			shown(s, sizeof(s), text);
			snprintf(why, whylen, "\"%s\": a protocol name is a letter or '_', then "
				 "letters, digits and '_' (byte %zu is not)", s, i + 1);
			return false;
		}
	}
	memcpy(q->name, text, n + 1);
	return true;
}

bool lg_query_net(struct lg_query *q, const char *text, char *why, size_t whylen)
{
	char s[200], addr[INET6_ADDRSTRLEN + 8], *slash;
	size_t n = strlen(text);
	int family;
	unsigned long len;

	memset(q, 0, sizeof(*q));
	shown(s, sizeof(s), text);
	if (n == 0 || n >= sizeof(addr)) {
		snprintf(why, whylen, "\"%s\": not an address or a prefix", s);
		return false;
	}
	memcpy(addr, text, n + 1);
	slash = strchr(addr, '/');
	if (slash)
		*slash = '\0';
	family = strchr(addr, ':') ? AF_INET6 : AF_INET;
	if (inet_pton(family, addr, q->net.addr) != 1) {
		snprintf(why, whylen, "\"%s\": not an IPv4 or IPv6 address", s);
		return false;
	}
	q->net.family = family;
	q->net.len = family == AF_INET ? 32 : 128;
	q->kind = LG_Q_ROUTE_FOR;
	if (slash) {
		char *end;

		if (!isdigit((unsigned char)slash[1]) || strlen(slash + 1) > 3 ||
		    (len = strtoul(slash + 1, &end, 10), *end) || len > q->net.len) {
			snprintf(why, whylen, "\"%s\": the prefix length is 0 to %u", s, q->net.len);
			return false;
		}
		q->net.len = (uint8_t)len;
		q->kind = LG_Q_ROUTE_NET;
		for (unsigned bit = q->net.len; bit < (family == AF_INET ? 32u : 128u); bit++)
			if (q->net.addr[bit / 8] & (0x80 >> (bit % 8))) {
				snprintf(why, whylen, "\"%s\": host bits set beyond /%u", s, q->net.len);
				return false;
			}
	}
	inet_ntop(family, q->net.addr, addr, sizeof(addr));
	if (slash)
		snprintf(q->net.text, sizeof(q->net.text), "%.50s/%u", addr, q->net.len);
	else
		snprintf(q->net.text, sizeof(q->net.text), "%s", addr);
	return true;
}

void lg_query_command(const struct lg_query *q, char *out, size_t len)
{
	switch (q->kind) {
	case LG_Q_STATUS: snprintf(out, len, "show status"); break;
	case LG_Q_PROTOCOLS: snprintf(out, len, "show protocols"); break;
	case LG_Q_PROTOCOLS_ALL: snprintf(out, len, "show protocols all"); break;
	case LG_Q_PROTOCOL: snprintf(out, len, "show protocols all \"%s\"", q->name); break;
	case LG_Q_ROUTE_FOR: snprintf(out, len, "show route for %s all", q->net.text); break;
	case LG_Q_ROUTE_NET: snprintf(out, len, "show route %s all", q->net.text); break;
	case LG_Q_ROUTES_PROTOCOL: snprintf(out, len, "show route protocol %s all", q->name); break;
	case LG_Q_ROUTES_FILTERED:
		snprintf(out, len, "show route filtered protocol %s all", q->name);
		break;
	case LG_Q_ROUTES_NOEXPORT: snprintf(out, len, "show route noexport %s all", q->name); break;
	case LG_Q_COUNT: snprintf(out, len, "show route count"); break;
	default: snprintf(out, len, "show status"); break;   /* unreachable */
	}
}

#define NAME_RE "[A-Za-z_][A-Za-z0-9_]{0,63}"
#define V4_RE "[0-9]{1,3}(\\.[0-9]{1,3}){3}"
#define V6_RE "[0-9a-f:.]*:[0-9a-f:.]*"

static const char *const allowed[] = {
	"^restrict$",
	"^show status$",
	"^show protocols$",
	"^show protocols all$",
	"^show protocols all \"" NAME_RE "\"$",
	"^show route for (" V4_RE "|" V6_RE ") all$",
	"^show route (" V4_RE "/[0-9]{1,2}|" V6_RE "/[0-9]{1,3}) all$",
	"^show route protocol " NAME_RE " all$",
	"^show route filtered protocol " NAME_RE " all$",
	"^show route noexport " NAME_RE " all$",
	"^show route count$",
};

#define N_ALLOWED (sizeof(allowed) / sizeof(allowed[0]))

bool lg_command_allowed(const char *cmd)
{
	static regex_t re[N_ALLOWED];
	static bool compiled;

	if (!compiled) {
		for (size_t i = 0; i < N_ALLOWED; i++)
			if (regcomp(&re[i], allowed[i], REG_EXTENDED | REG_NOSUB))
				abort();   /* a constant: broken only by an edit here */
		compiled = true;
	}
	if (strpbrk(cmd, "\r\n"))
		return false;
	for (size_t i = 0; i < N_ALLOWED; i++)
		if (!regexec(&re[i], cmd, 0, NULL, 0))
			return true;
	return false;
}
