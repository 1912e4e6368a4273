/*
 * config/check_keys.c — what a check accepts: the table of check types
 * with the keys each takes beyond the common ones, and the handlers that
 * read and validate those keys.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/load.h"

static int http_defaults(struct cfg_check *k);
static int wg_defaults(struct cfg_check *k);
static int dns_defaults(struct cfg_check *k);
static int exec_defaults(struct cfg_check *k);

/* Check types and the keys each accepts beyond the common ones (in
 * printing order). A new type is one row here plus its fields. */
static const struct check_type {
	const char *type;
	const char *const *keys;
	const char *const *required;
	int (*defaults)(struct cfg_check *k);
} check_types[] = {
	{ "http", (const char *const[]){ "url", "expect_status", "expect_body",
		"connect_to", "tls_verify", "headers", "redact_headers", NULL },
	  (const char *const[]){ "url", NULL }, http_defaults },
	{ "tcp", (const char *const[]){ "host", "port", NULL },
	  (const char *const[]){ "host", "port", NULL }, NULL },
	{ "dns", (const char *const[]){ "qname", "qtype", "server", "expect_rcode",
		"expect_answer", NULL },
	  (const char *const[]){ "qname", NULL }, dns_defaults },
	{ "wireguard", (const char *const[]){ "interface", "peers", "min_peers",
		"max_handshake_age", "max_rx_idle", "uapi_dir", NULL },
	  (const char *const[]){ "interface", NULL }, wg_defaults },
	{ "exec", (const char *const[]){ "command", "env", "working_directory", "user",
		NULL },
	  (const char *const[]){ "command", NULL }, exec_defaults },
};
#define N_TYPES (sizeof(check_types) / sizeof(check_types[0]))

static const char *const on_fail_names[] = { "withdraw", "degrade", "ignore", NULL };

/* ---- the keys every check takes, and the type-specific ones ---- */

static const struct check_type *type_find(const char *type)
{
	for (size_t i = 0; i < N_TYPES; i++)
		if (strcmp(check_types[i].type, type) == 0)
			return &check_types[i];
	return NULL;
}

static bool in_list(const char *const *l, const char *s)
{
	for (; l && *l; l++)
		if (strcmp(*l, s) == 0)
			return true;
	return false;
}

const char *const *cfg_check_keys(const char *type)
{
	const struct check_type *t = type_find(type);

	return t ? t->keys : NULL;
}

/* Headers that carry credentials: never shown unless the check says so. */
static const char *const redact_default[] = { "Authorization", "Cookie",
	"Proxy-Authorization" };
#define N_REDACT_DEFAULT (sizeof(redact_default) / sizeof(redact_default[0]))

static int http_defaults(struct cfg_check *k)
{
	k->tls_verify = true;
	if (!(k->expect_status = malloc(sizeof(int))))
		return -ENOMEM;
	k->expect_status[0] = 200;
	k->n_expect_status = 1;
	if (!(k->redact_headers = calloc(N_REDACT_DEFAULT, sizeof(char *))))
		return -ENOMEM;
	for (; k->n_redact_headers < N_REDACT_DEFAULT; k->n_redact_headers++)
		if (!(k->redact_headers[k->n_redact_headers] =
			      strdup(redact_default[k->n_redact_headers])))
			return -ENOMEM;
	return 0;
}

/* A key of another check type is named as such, not as unknown. */
static int accept_check_key(struct cfg_ctx *c, yaml_node_t *key, void *obj)
{
	const struct cfg_check *k = obj;
	static const char *const common[] = { "name", "type", "interval",
		"timeout", "rise", "fall", "on_fail", NULL };

	if (in_list(common, cfg_sval(key)) ||
	    in_list(type_find(k->type)->keys, cfg_sval(key)))
		return 0;
	return cfg_fail(c, key, "key '%s' is not valid for type %s", cfg_sval(key),
			k->type);
}

static int check_name(struct cfg_ctx *c, yaml_node_t *v, void *obj,
		      const struct cfg_key *kk)
{
	struct cfg_check *k = obj;
	int rc = cfg_get_str(c, v, &k->name);

	(void)kk;
	if (rc)
		return rc;
	if (!cfg_name_valid(k->name))
		return cfg_fail(c, v, "'%s' is not a valid name ([a-z0-9_], 1 to %d characters)",
				k->name, CFG_NAME_MAX - 1);
	for (size_t i = 0; i < c->chk_idx; i++)
		if (strcmp(c->svc->checks[i].name, k->name) == 0)
			return cfg_fail(c, v, "duplicate check name '%s' (first at line %u)",
					k->name, c->svc->checks[i].line);
	return 0;
}

static int check_on_fail(struct cfg_ctx *c, yaml_node_t *v, void *obj,
			 const struct cfg_key *kk)
{
	int i, rc = cfg_get_enum(c, v, on_fail_names, &i);

	(void)kk;
	if (!rc)
		((struct cfg_check *)obj)->on_fail = (enum cfg_on_fail)i;
	return rc;
}

/* A URL that did not parse, for its error (which reaches -t, the log and
 * healthctl): whatever stands before an '@' may be a secret. */
static const char *url_shown(const char *url, char *buf, size_t len)
{
	const char *at = strrchr(url, '@');

	cfg_redact_url(url, buf, len);
	if (at && !strstr(buf, CFG_REDACTED))
		snprintf(buf, len, CFG_REDACTED "%s", at);
	return buf;
}

static int check_url(struct cfg_ctx *c, yaml_node_t *v, void *obj,
		     const struct cfg_key *kk)
{
	char **url = (char **)((char *)obj + kk->off);
	int rc = cfg_get_str(c, v, url);

	if (rc)
		return rc;
	if ((strncmp(*url, "http://", 7) && strncmp(*url, "https://", 8)) ||
	    strpbrk(*url, " \t\r\n") || !strchr(*url, '/')[2]) {
		char shown[512];

		return cfg_fail(c, v, "'%s' is not an http:// or https:// URL",
				url_shown(*url, shown, sizeof(shown)));
	}
	return 0;
}

static int check_connect_to(struct cfg_ctx *c, yaml_node_t *v, void *obj,
			    const struct cfg_key *kk)
{
	struct cfg_check *k = obj;
	char host[256];
	uint16_t port;
	int rc = cfg_get_str(c, v, &k->connect_to);

	(void)kk;
	if (rc)
		return rc;
	if (cfg_parse_hostport(k->connect_to, false, host, sizeof(host), &port))
		return cfg_fail(c, v, "'%s' is not HOST:PORT (IPv6 as [ADDR]:PORT, port 1 to 65535)",
				k->connect_to);
	return 0;
}

static int check_expect_status(struct cfg_ctx *c, yaml_node_t *v, void *obj,
			       const struct cfg_key *kk)
{
	struct cfg_check *k = obj;
	size_t n = CFG_SEQ_LEN(v);
	int rc = cfg_want_seq(c, v, true);

	(void)kk;
	if (rc)
		return rc;
	free(k->expect_status);
	k->n_expect_status = 0;
	if (!(k->expect_status = calloc(n, sizeof(int))))
		return cfg_fail(c, v, "out of memory");
	for (size_t i = 0; !rc && i < n; i++) {
		size_t old = cfg_push_idx(c, i);
		uint64_t st;

		if (!(rc = cfg_get_uint(c, CFG_SEQ_AT(c, v, i), 100, 599, &st)))
			k->expect_status[k->n_expect_status++] = (int)st;
		cfg_pop(c, old);
	}
	return rc;
}

static bool header_name_valid(const char *s)
{
	return *s && strspn(s, "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz"
			    "ABCDEFGHIJKLMNOPQRSTUVWXYZ") == strlen(s);
}

/* A list of header names, replacing the default; [] shows every value. */
static int check_redact_headers(struct cfg_ctx *c, yaml_node_t *v, void *obj,
				const struct cfg_key *kk)
{
	struct cfg_check *k = obj;
	size_t n = CFG_SEQ_LEN(v);
	int rc = cfg_want_seq(c, v, false);

	(void)kk;
	if (rc)
		return rc;
	for (size_t i = 0; i < k->n_redact_headers; i++)
		free(k->redact_headers[i]);
	free(k->redact_headers);
	k->redact_headers = NULL;
	k->n_redact_headers = 0;
	if (n && !(k->redact_headers = calloc(n, sizeof(char *))))
		return cfg_fail(c, v, "out of memory");
	for (size_t i = 0; !rc && i < n; i++) {
		size_t old = cfg_push_idx(c, i);
		char *name = NULL;

		rc = cfg_get_str(c, CFG_SEQ_AT(c, v, i), &name);
		if (!rc && !header_name_valid(name))
			rc = cfg_fail(c, CFG_SEQ_AT(c, v, i), "'%s' is not a valid header name",
				      name);
		for (size_t j = 0; !rc && j < k->n_redact_headers; j++)
			if (strcasecmp(k->redact_headers[j], name) == 0)
				rc = cfg_fail(c, CFG_SEQ_AT(c, v, i),
					      "header '%s' is listed twice", name);
		if (rc)
			free(name);
		else
			k->redact_headers[k->n_redact_headers++] = name;
		cfg_pop(c, old);
	}
	return rc;
}

static int check_headers(struct cfg_ctx *c, yaml_node_t *v, void *obj,
			 const struct cfg_key *kk)
{
	struct cfg_check *k = obj;
	int rc = cfg_want_map(c, v);
	size_t n = (size_t)(v->data.mapping.pairs.top - v->data.mapping.pairs.start);

	(void)kk;
	if (rc)
		return rc;
	if (n && !(k->headers = calloc(n, sizeof(*k->headers))))
		return cfg_fail(c, v, "out of memory");
	for (size_t i = 0; !rc && i < n; i++) {
		yaml_node_pair_t *p = &v->data.mapping.pairs.start[i];
		yaml_node_t *kn = cfg_node(c, p->key), *vn = cfg_node(c, p->value);
		struct cfg_header *h = &k->headers[k->n_headers++];
		char shown[CFG_NAME_MAX + 16];

		/* "Authorization:Bearer x" as a key: never print past the ':' */
		snprintf(shown, sizeof(shown), "%.*s", (int)strcspn(cfg_sval(kn), ":"),
			 cfg_sval(kn));
		size_t old = cfg_push_key(c, shown);

		if (!header_name_valid(cfg_sval(kn)))
			rc = cfg_fail(c, kn, "'%.*s' is not a valid header name",
				      (int)strcspn(cfg_sval(kn), ":"), cfg_sval(kn));
		for (size_t j = 0; !rc && j + 1 < k->n_headers; j++)
			if (strcasecmp(k->headers[j].name, cfg_sval(kn)) == 0)
				rc = cfg_fail(c, kn, "duplicate header '%s'", cfg_sval(kn));
		if (!rc && !(h->name = strdup(cfg_sval(kn))))
			rc = cfg_fail(c, kn, "out of memory");
		if (!rc && !(rc = cfg_get_str(c, vn, &h->value)) &&
		    strpbrk(h->value, "\r\n"))
			rc = cfg_fail(c, vn, "a header value must be one line");
		cfg_pop(c, old);
	}
	return rc;
}

static int check_host(struct cfg_ctx *c, yaml_node_t *v, void *obj,
		      const struct cfg_key *kk)
{
	struct cfg_check *k = obj;
	uint8_t a[16];
	int rc = cfg_get_str(c, v, &k->host);

	(void)kk;
	if (rc)
		return rc;
	if (strspn(k->host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
		   "0123456789.-:") != strlen(k->host) ||
	    (strchr(k->host, ':') && inet_pton(AF_INET6, k->host, a) != 1))
		return cfg_fail(c, v, "'%s' is not a host name or address", k->host);
	return 0;
}

static int check_port(struct cfg_ctx *c, yaml_node_t *v, void *obj,
		      const struct cfg_key *kk)
{
	uint64_t port;
	int rc = cfg_get_uint(c, v, 1, 65535, &port);

	(void)kk;
	if (!rc)
		((struct cfg_check *)obj)->port = (uint16_t)port;
	return rc;
}

/* ---- dns ---- */

static const struct { const char *name; uint16_t v; } qtypes[] = {
	{ "A", 1 }, { "AAAA", 28 }, { "NS", 2 }, { "CNAME", 5 }, { "SOA", 6 },
	{ "PTR", 12 }, { "MX", 15 }, { "TXT", 16 }, { "SRV", 33 }, { "CAA", 257 },
};
#define N_QTYPES (sizeof(qtypes) / sizeof(qtypes[0]))

/* RFC 1035 and RFC 2136 rcodes: the ones a four-bit header field holds. */
static const char *const rcodes[] = { "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN",
	"NOTIMP", "REFUSED", "YXDOMAIN", "YXRRSET", "NXRRSET", "NOTAUTH", "NOTZONE" };
#define N_RCODES (sizeof(rcodes) / sizeof(rcodes[0]))

const char *cfg_dns_qtype_str(uint16_t qtype)
{
	for (size_t i = 0; i < N_QTYPES; i++)
		if (qtypes[i].v == qtype)
			return qtypes[i].name;
	return NULL;
}

const char *cfg_dns_rcode_str(unsigned rcode)
{
	return rcode < N_RCODES ? rcodes[rcode] : NULL;
}

static int dns_defaults(struct cfg_check *k)
{
	k->qtype = 1;
	return (k->server = strdup("127.0.0.1:53")) ? 0 : -ENOMEM;
}

/* A host name as DNS carries it: labels of 1 to 63 letters, digits, '-'
 * or '_' (SRV's _sip._tcp), at most 253 characters; one trailing dot is
 * dropped; "." alone is the root. */
static bool dns_name_valid(const char *s)
{
	size_t len = strlen(s), label = 0;

	if (strcmp(s, ".") == 0)
		return true;
	if (len && s[len - 1] == '.')
		len--;
	if (len == 0 || len > 253)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '.') {
			if (label == 0)
				return false;
			label = 0;
		} else if ((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
			   (s[i] >= '0' && s[i] <= '9') || s[i] == '-' || s[i] == '_') {
			if (++label > 63)
				return false;
		} else {
			return false;
		}
	}
	return label > 0;
}

static int check_qname(struct cfg_ctx *c, yaml_node_t *v, void *obj,
		       const struct cfg_key *kk)
{
	struct cfg_check *k = obj;
	size_t len;
	int rc = cfg_get_str(c, v, &k->qname);

	(void)kk;
	if (rc)
		return rc;
	if (!dns_name_valid(k->qname))
		return cfg_fail(c, v, "'%s' is not a DNS name (labels of 1 to 63 letters, digits, '-' or '_', at most 253 characters)",
				k->qname);
	len = strlen(k->qname);
	if (len > 1 && k->qname[len - 1] == '.')
		k->qname[len - 1] = '\0';
	return 0;
}

static int check_qtype(struct cfg_ctx *c, yaml_node_t *v, void *obj,
		       const struct cfg_key *kk)
{
	struct cfg_check *k = obj;
	char list[96] = "";
	int rc = cfg_want_scalar(c, v, "a DNS type");

	(void)kk;
	if (rc)
		return rc;
	for (size_t i = 0; i < N_QTYPES; i++) {
		if (strcasecmp(cfg_sval(v), qtypes[i].name) == 0) {
			k->qtype = qtypes[i].v;
			return 0;
		}
		snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s",
			 i ? ", " : "", qtypes[i].name);
	}
	return cfg_fail(c, v, "'%s' is not a DNS type this check asks for (%s)", cfg_sval(v),
			list);
}

static int check_expect_rcode(struct cfg_ctx *c, yaml_node_t *v, void *obj,
			      const struct cfg_key *kk)
{
	struct cfg_check *k = obj;
	char list[128] = "";
	int rc = cfg_want_scalar(c, v, "a DNS rcode");

	(void)kk;
	if (rc)
		return rc;
	for (size_t i = 0; i < N_RCODES; i++) {
		if (strcasecmp(cfg_sval(v), rcodes[i]) == 0) {
			k->expect_rcode = (unsigned)i;
			return 0;
		}
		snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s",
			 i ? ", " : "", rcodes[i]);
	}
	return cfg_fail(c, v, "'%s' is not a DNS rcode (%s)", cfg_sval(v), list);
}

/* "IP:PORT", "[IPv6]:PORT", or an address alone for port 53; kept as
 * "IP:PORT" / "[IPv6]:PORT", the form c-ares takes. */
static int check_server(struct cfg_ctx *c, yaml_node_t *v, void *obj,
			const struct cfg_key *kk)
{
	struct cfg_check *k = obj;
	char host[INET6_ADDRSTRLEN + 2], norm[INET6_ADDRSTRLEN + 10], *s;
	uint8_t a[16];
	uint16_t port = 53;
	int rc = cfg_want_scalar(c, v, "IP:PORT");

	(void)kk;
	if (rc)
		return rc;
	s = (char *)cfg_sval(v);
	if (inet_pton(AF_INET, s, a) == 1) {
		snprintf(norm, sizeof(norm), "%s:53", s);
	} else if (inet_pton(AF_INET6, s, a) == 1) {
		inet_ntop(AF_INET6, a, host, sizeof(host));
		snprintf(norm, sizeof(norm), "[%s]:53", host);
	} else if (cfg_parse_hostport(s, true, host, sizeof(host), &port) == 0 &&
		   inet_pton(AF_INET6, host, a) == 1) {
		inet_ntop(AF_INET6, a, host, sizeof(host));
		snprintf(norm, sizeof(norm), "[%s]:%u", host, port);
	} else if (cfg_parse_hostport(s, true, host, sizeof(host), &port) == 0 &&
		   inet_pton(AF_INET, host, a) == 1) {
		snprintf(norm, sizeof(norm), "%s:%u", host, port);
	} else {
		return cfg_fail(c, v, "'%s' is not an IP address, IP:PORT or [IPv6]:PORT (port 1 to 65535)",
				s);
	}
	free(k->server);
	return (k->server = strdup(norm)) ? 0 : cfg_fail(c, v, "out of memory");
}

static int check_expect_answer(struct cfg_ctx *c, yaml_node_t *v, void *obj,
			       const struct cfg_key *kk)
{
	struct cfg_check *k = obj;
	int rc = cfg_get_str(c, v, &k->expect_answer);

	(void)kk;
	if (rc)
		return rc;
	if (!*k->expect_answer)
		return cfg_fail(c, v, "must not be empty (leave the key out to accept any answer)");
	return 0;
}

/* ---- wireguard ---- */

static int wg_defaults(struct cfg_check *k)
{
	k->max_handshake_age_ms = 180000;
	return (k->uapi_dir = strdup("/var/run/wireguard")) ? 0 : -ENOMEM;
}

/* Whichever of peers and min_peers comes second is checked against the
 * first. */
static int check_min_peers(struct cfg_ctx *c, yaml_node_t *v, void *obj,
			   const struct cfg_key *kk)
{
	struct cfg_check *k = obj;
	uint64_t n;
	int rc = cfg_get_uint(c, v, 1, 10000, &n);

	(void)kk;
	if (rc)
		return rc;
	k->min_peers = (unsigned)n;
	if (k->n_peers && n > k->n_peers)
		return cfg_fail(c, v, "%u is more than the %zu peers listed", k->min_peers,
				k->n_peers);
	return 0;
}

/* Linux's rule for interface names (dev_valid_name). */
static int check_interface(struct cfg_ctx *c, yaml_node_t *v, void *obj,
			   const struct cfg_key *kk)
{
	struct cfg_check *k = obj;
	int rc = cfg_get_str(c, v, &k->interface);

	(void)kk;
	if (rc)
		return rc;
	if (strlen(k->interface) > 15 || strpbrk(k->interface, "/: \t\r\n") ||
	    !strcmp(k->interface, ".") || !strcmp(k->interface, ".."))
		return cfg_fail(c, v, "'%s' is not an interface name (1 to 15 characters, no '/', ':' or spaces)",
				k->interface);
	return 0;
}

static int check_uapi_dir(struct cfg_ctx *c, yaml_node_t *v, void *obj,
			  const struct cfg_key *kk)
{
	struct cfg_check *k = obj;
	int rc = cfg_get_str(c, v, &k->uapi_dir);

	(void)kk;
	if (rc)
		return rc;
	/* DIR/IFACE.sock must fit a unix socket address. */
	if (k->uapi_dir[0] != '/' || strlen(k->uapi_dir) > 80)
		return cfg_fail(c, v, "'%s' is not an absolute path of at most 80 characters",
				k->uapi_dir);
	return 0;
}

static int b64_value(char ch)
{
	static const char tab[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const char *p = ch ? strchr(tab, ch) : NULL;

	return p ? (int)(p - tab) : -1;
}

/* A key as `wg` prints it: 43 base64 characters and '=', 32 bytes. */
static bool wg_key_decode(const char *s, uint8_t raw[32])
{
	uint32_t acc = 0;
	int bits = 0;
	size_t n = 0;

	if (strlen(s) != 44 || s[43] != '=')
		return false;
	for (int i = 0; i < 43; i++) {
		int d = b64_value(s[i]);

		if (d < 0)
			return false;
		acc = (acc << 6) | (uint32_t)d;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			raw[n++] = (uint8_t)(acc >> bits);
		}
	}
	/* The 2 bits left over must be zero, or the text is not canonical. */
	return n == 32 && (acc & ((1u << bits) - 1)) == 0;
}

/* One peer: a key node and, for the {name: KEY} form, a name node. */
static int wg_peer(struct cfg_ctx *c, struct cfg_check *k, yaml_node_t *name,
		   yaml_node_t *key)
{
	struct cfg_wg_peer *p = &k->peers[k->n_peers];
	int rc;

	if (name && !cfg_name_valid(cfg_sval(name)))
		return cfg_fail(c, name, "'%s' is not a valid peer name ([a-z0-9_], 1 to %d characters)",
				cfg_sval(name), CFG_NAME_MAX - 1);
	if ((rc = cfg_want_scalar(c, key, "a base64 public key")))
		return rc;
	if (!wg_key_decode(cfg_sval(key), p->raw))
		return cfg_fail(c, key, "'%s' is not a WireGuard public key (44 characters of base64, 32 bytes)",
				cfg_sval(key));
	for (size_t i = 0; i < k->n_peers; i++) {
		if (memcmp(k->peers[i].raw, p->raw, 32) == 0)
			return cfg_fail(c, key, "peer key %s is listed twice", cfg_sval(key));
		if (name && k->peers[i].name && !strcmp(k->peers[i].name, cfg_sval(name)))
			return cfg_fail(c, name, "duplicate peer name '%s'", cfg_sval(name));
	}
	memcpy(p->key, cfg_sval(key), 45);
	if (name && !(p->name = strdup(cfg_sval(name))))
		return cfg_fail(c, name, "out of memory");
	k->n_peers++;
	return 0;
}

/* A list of KEY or {name: KEY} items, or a mapping of name: KEY. */
static int check_peers(struct cfg_ctx *c, yaml_node_t *v, void *obj,
		       const struct cfg_key *kk)
{
	struct cfg_check *k = obj;
	bool is_map = v->type == YAML_MAPPING_NODE;
	size_t n;
	int rc;

	(void)kk;
	if (!is_map && (rc = cfg_want_seq(c, v, true)))
		return rc;
	if (is_map && (rc = cfg_want_map(c, v)))
		return rc;
	n = is_map ? (size_t)(v->data.mapping.pairs.top - v->data.mapping.pairs.start)
		   : CFG_SEQ_LEN(v);
	if (n == 0)
		return cfg_fail(c, v, "must not be empty");
	if (!(k->peers = calloc(n, sizeof(*k->peers))))
		return cfg_fail(c, v, "out of memory");
	for (size_t i = 0; !rc && i < n; i++) {
		yaml_node_t *it, *name = NULL;
		size_t old;

		if (is_map) {
			yaml_node_pair_t *p = &v->data.mapping.pairs.start[i];

			name = cfg_node(c, p->key);
			it = cfg_node(c, p->value);
			old = cfg_push_key(c, cfg_sval(name));
		} else {
			it = CFG_SEQ_AT(c, v, i);
			old = cfg_push_idx(c, i);
			if (it->type == YAML_MAPPING_NODE) {
				yaml_node_pair_t *p = it->data.mapping.pairs.start;

				if (!(rc = cfg_want_map(c, it)) &&
				    it->data.mapping.pairs.top - p != 1)
					rc = cfg_fail(c, it, "a named peer is one pair, NAME: KEY");
				if (!rc) {
					name = cfg_node(c, p->key);
					it = cfg_node(c, p->value);
					cfg_push_key(c, cfg_sval(name));
				}
			}
		}
		if (!rc)
			rc = wg_peer(c, k, name, it);
		cfg_pop(c, old);
	}
	if (!rc && k->min_peers > k->n_peers)
		rc = cfg_fail(c, v, "lists %zu peers, fewer than min_peers %u", k->n_peers,
			      k->min_peers);
	return rc;
}

/* ---- exec ---- */

static int exec_defaults(struct cfg_check *k)
{
	return (k->working_directory = strdup("/")) ? 0 : -ENOMEM;
}

void cfg_argv_free(char **argv, size_t n)
{
	for (size_t i = 0; argv && i < n; i++)
		free(argv[i]);
	free(argv);
}

int cfg_get_argv(struct cfg_ctx *c, yaml_node_t *v, char ***argv, size_t *n)
{
	size_t len = CFG_SEQ_LEN(v);
	struct stat st;
	const char *file;
	int rc = cfg_want_seq(c, v, true);

	if (rc)
		return rc;
	cfg_argv_free(*argv, *n);
	*n = 0;
	if (!(*argv = calloc(len + 1, sizeof(char *))))
		return cfg_fail(c, v, "out of memory");
	for (size_t i = 0; !rc && i < len; i++) {
		size_t old = cfg_push_idx(c, i);

		if (!(rc = cfg_get_str(c, CFG_SEQ_AT(c, v, i), &(*argv)[i])))
			(*n)++;
		cfg_pop(c, old);
	}
	if (rc)
		return rc;
	file = (*argv)[0];
	size_t old = cfg_push_idx(c, 0);

	if (file[0] != '/')
		rc = cfg_fail(c, CFG_SEQ_AT(c, v, 0), "'%s' is not an absolute path (no shell runs "
			      "it: write [\"/bin/sh\", \"-c\", \"...\"] for one)", file);
	else if (stat(file, &st) < 0)
		rc = cfg_fail(c, CFG_SEQ_AT(c, v, 0), "%s: %s", file, strerror(errno));
	else if (!S_ISREG(st.st_mode) || access(file, X_OK) < 0)
		rc = cfg_fail(c, CFG_SEQ_AT(c, v, 0), "%s is not an executable file", file);
	cfg_pop(c, old);
	return rc;
}

static int check_command(struct cfg_ctx *c, yaml_node_t *v, void *obj,
			 const struct cfg_key *kk)
{
	struct cfg_check *k = obj;

	(void)kk;
	return cfg_get_argv(c, v, &k->command, &k->n_command);
}

static bool env_name_valid(const char *s)
{
	return (*s == '_' || (*s >= 'A' && *s <= 'Z')) &&
	       strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") == strlen(s);
}

static int check_env(struct cfg_ctx *c, yaml_node_t *v, void *obj,
		     const struct cfg_key *kk)
{
	struct cfg_check *k = obj;
	int rc = cfg_want_map(c, v);
	size_t n = (size_t)(v->data.mapping.pairs.top - v->data.mapping.pairs.start);

	(void)kk;
	if (rc)
		return rc;
	if (n > 32)
		return cfg_fail(c, v, "%zu variables, more than 32", n);
	if (n && !(k->env = calloc(n, sizeof(*k->env))))
		return cfg_fail(c, v, "out of memory");
	for (size_t i = 0; !rc && i < n; i++) {
		yaml_node_pair_t *p = &v->data.mapping.pairs.start[i];
		yaml_node_t *kn = cfg_node(c, p->key), *vn = cfg_node(c, p->value);
		struct cfg_env *e = &k->env[k->n_env];

		if ((rc = cfg_want_scalar(c, kn, "a variable name")))
			break;
		size_t old = cfg_push_key(c, cfg_sval(kn));

		if (!env_name_valid(cfg_sval(kn)))
			rc = cfg_fail(c, kn, "'%s' is not a variable name ([A-Z_][A-Z0-9_]*)",
				      cfg_sval(kn));
		for (size_t j = 0; !rc && j < k->n_env; j++)
			if (strcmp(k->env[j].name, cfg_sval(kn)) == 0)
				rc = cfg_fail(c, kn, "duplicate variable '%s'", cfg_sval(kn));
		if (!rc && !(e->name = strdup(cfg_sval(kn))))
			rc = cfg_fail(c, kn, "out of memory");
		if (!rc)
			k->n_env++;
		if (!rc)
			rc = cfg_get_str(c, vn, &e->value);
		cfg_pop(c, old);
	}
	return rc;
}

static int check_workdir(struct cfg_ctx *c, yaml_node_t *v, void *obj,
			 const struct cfg_key *kk)
{
	struct cfg_check *k = obj;
	int rc = cfg_get_str(c, v, &k->working_directory);

	(void)kk;
	if (rc)
		return rc;
	if (k->working_directory[0] != '/')
		return cfg_fail(c, v, "'%s' is not an absolute path", k->working_directory);
	return 0;
}

/* Resolved at load, so a probe never looks a user up; another user than
 * healthd's own needs root. */
static int check_user(struct cfg_ctx *c, yaml_node_t *v, void *obj,
		      const struct cfg_key *kk)
{
	struct cfg_check *k = obj;
	struct passwd *pw;
	int rc = cfg_get_str(c, v, &k->user);

	(void)kk;
	if (rc)
		return rc;
	errno = 0;
	if (!(pw = getpwnam(k->user)))
		return cfg_fail(c, v, "no such user '%s'", k->user);
	if (geteuid() != 0 && pw->pw_uid != geteuid())
		return cfg_fail(c, v, "running as user '%s' needs healthd to run as root",
				k->user);
	k->uid = pw->pw_uid;
	k->gid = pw->pw_gid;
	return 0;
}

static int ignore(struct cfg_ctx *c, yaml_node_t *v, void *obj, const struct cfg_key *k)
{
	(void)c, (void)v, (void)obj, (void)k;
	return 0; /* read before the walk */
}

static const struct cfg_key check_keys[] = {
	CFG_FN("name", check_name, 0),
	CFG_FN("type", ignore, 0),
	CFG_DUR("interval", struct cfg_check, interval_ms, 10, CFG_HOUR(24)),
	CFG_DUR("timeout", struct cfg_check, timeout_ms, 1, CFG_HOUR(1)),
	CFG_UINT("rise", struct cfg_check, rise, 1, 100),
	CFG_UINT("fall", struct cfg_check, fall, 1, 100),
	CFG_FN("on_fail", check_on_fail, 0),
	CFG_FN("url", check_url, offsetof(struct cfg_check, url)),
	CFG_FN("expect_status", check_expect_status, 0),
	CFG_STR("expect_body", struct cfg_check, expect_body),
	CFG_FN("connect_to", check_connect_to, 0),
	CFG_BOOL("tls_verify", struct cfg_check, tls_verify),
	CFG_FN("headers", check_headers, 0),
	CFG_FN("redact_headers", check_redact_headers, 0),
	CFG_FN("host", check_host, 0),
	CFG_FN("port", check_port, 0),
	CFG_FN("qname", check_qname, 0),
	CFG_FN("qtype", check_qtype, 0),
	CFG_FN("server", check_server, 0),
	CFG_FN("expect_rcode", check_expect_rcode, 0),
	CFG_FN("expect_answer", check_expect_answer, 0),
	CFG_FN("interface", check_interface, 0),
	CFG_FN("peers", check_peers, 0),
	CFG_FN("min_peers", check_min_peers, 0),
	CFG_DUR("max_handshake_age", struct cfg_check, max_handshake_age_ms, CFG_SEC(1),
		CFG_HOUR(24)),
	CFG_DUR("max_rx_idle", struct cfg_check, max_rx_idle_ms, 0, CFG_HOUR(24)),
	CFG_FN("uapi_dir", check_uapi_dir, 0),
	CFG_FN("command", check_command, 0),
	CFG_FN("env", check_env, 0),
	CFG_FN("working_directory", check_workdir, 0),
	CFG_FN("user", check_user, 0),
	{ 0 },
};

/* A probe must end before the next one is due: timeout <= interval, once
 * defaults are applied. The error points at whichever of the two the check
 * sets itself, else at the check (both came from defaults). */
static int check_timeout_fits(struct cfg_ctx *c, yaml_node_t *m,
			      const struct cfg_check *k)
{
	char t[32], i[32];
	const char *key = "timeout";
	yaml_node_t *at;
	size_t old;

	if (k->timeout_ms <= k->interval_ms)
		return 0;
	if (!(at = cfg_map_get(c, m, key)) && !(at = cfg_map_get(c, m, key = "interval"))) {
		at = m;
		key = "timeout";
	}
	cfg_format_duration(t, sizeof(t), k->timeout_ms);
	cfg_format_duration(i, sizeof(i), k->interval_ms);
	old = cfg_push_key(c, key);
	cfg_fail(c, at, "check %s: timeout %s is longer than interval %s%s", k->name, t, i,
		 at == m ? " (both from defaults)" : "");
	cfg_pop(c, old);
	return -EINVAL;
}

int cfg_load_check(struct cfg_ctx *c, yaml_node_t *m, struct cfg_check *k)
{
	const struct check_type *t = NULL;
	yaml_node_t *tn;
	size_t old;
	int rc;

	k->line = (unsigned)m->start_mark.line + 1;
	k->col = (unsigned)m->start_mark.column + 1;
	k->interval_ms = c->cfg->defaults.interval_ms;
	k->timeout_ms = c->cfg->defaults.timeout_ms;
	k->rise = c->cfg->defaults.rise;
	k->fall = c->cfg->defaults.fall;
	if ((rc = cfg_want_map(c, m)))
		return rc;
	if (!(tn = cfg_map_get(c, m, "type")))
		return cfg_missing(c, m, "type", NULL);
	if (!cfg_map_get(c, m, "name"))
		return cfg_missing(c, m, "name", NULL);
	old = cfg_push_key(c, "type");
	if (!(rc = cfg_get_str(c, tn, &k->type)) && !(t = type_find(k->type))) {
		char list[128] = "";

		for (size_t i = 0; i < N_TYPES; i++)
			snprintf(list + strlen(list), sizeof(list) - strlen(list),
				 "%s%s", i ? ", " : "", check_types[i].type);
		rc = cfg_fail(c, tn, "unknown check type '%s' (known: %s)", k->type, list);
	}
	cfg_pop(c, old);
	if (rc)
		return rc;
	if (t->defaults && t->defaults(k))
		return cfg_fail(c, m, "out of memory");
	if ((rc = cfg_walk_map(c, m, check_keys, k, accept_check_key)))
		return rc;
	for (const char *const *r = t->required; *r; r++)
		if (!cfg_map_get(c, m, *r))
			return cfg_missing(c, m, *r, t->type);
	/* A timeout set nowhere is 1s, or the interval where that is shorter
	 * (as HAProxy's `timeout check` defaults to `inter`): `interval:
	 * 200ms` alone is no error about a timeout nobody wrote. */
	if (!cfg_map_get(c, m, "timeout") && !c->cfg->defaults.timeout_ms)
		k->timeout_ms = k->interval_ms < CFG_DEFAULT_TIMEOUT_MS ? k->interval_ms
								: CFG_DEFAULT_TIMEOUT_MS;
	return check_timeout_fits(c, m, k);
}

