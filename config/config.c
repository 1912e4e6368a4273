/*
 * config/config.c — loads healthd.yaml with libyaml and validates it.
 *
 * The YAML tree is walked with key tables; every value is checked where it
 * is read, so each error carries the node's mark and its dotted key path.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>
#include <yaml.h>

#include "config/config.h"

struct ctx {
	const char *file;
	yaml_document_t *doc;
	struct config *cfg;
	char *err;
	size_t errlen;
	char path[256];              /* dotted key path of the node in hand */
	yaml_node_t *services;       /* read after everything it inherits */
	struct cfg_service *svc;     /* the service being read, and its index */
	size_t svc_idx;
	size_t chk_idx;
};

struct key;
typedef int (*key_fn)(struct ctx *c, yaml_node_t *v, void *obj,
		      const struct key *k);

/* One accepted key of a mapping: a typed field at off, or a handler. */
struct key {
	const char *name;
	key_fn fn;
	enum { K_FN, K_STR, K_DUR, K_UINT, K_BOOL } kind;
	size_t off;
	uint64_t min, max;
};

#define FN(n, f, arg)      { n, f, K_FN, arg, 0, 0 }
#define STR(n, T, f)       { n, NULL, K_STR, offsetof(T, f), 0, 0 }
#define DUR(n, T, f, lo)   { n, NULL, K_DUR, offsetof(T, f), lo, 0 }
#define UINT(n, T, f, lo, hi) { n, NULL, K_UINT, offsetof(T, f), lo, hi }
#define BOOL(n, T, f)      { n, NULL, K_BOOL, offsetof(T, f), 0, 0 }

static int http_defaults(struct cfg_check *k);

/* Check types and the keys each accepts beyond the common ones (in
 * printing order). A new type is one row here plus its fields. */
static const struct check_type {
	const char *type;
	const char *const *keys;
	const char *const *required;
	int (*defaults)(struct cfg_check *k);
} check_types[] = {
	{ "http", (const char *const[]){ "url", "expect_status", "expect_body",
		"connect_to", "tls_verify", "headers", NULL },
	  (const char *const[]){ "url", NULL }, http_defaults },
	{ "tcp", (const char *const[]){ "host", "port", NULL },
	  (const char *const[]){ "host", "port", NULL }, NULL },
};
#define N_TYPES (sizeof(check_types) / sizeof(check_types[0]))

static const char *const on_fail_names[] = { "withdraw", "degrade", "ignore", NULL };
static const char *const on_stop_names[] = { "keep", "drain", "withdraw", NULL };

/* ---- errors, warnings and the key path ---- */

static int vfail_at(struct ctx *c, yaml_mark_t m, const char *label,
		    const char *fmt, va_list ap)
{
	int n;

	if (c->errlen == 0)
		return -EINVAL;
	n = snprintf(c->err, c->errlen, "%s:%zu:%zu: %s: ", c->file,
		     m.line + 1, m.column + 1, label);
	if (n >= 0 && (size_t)n < c->errlen)
		vsnprintf(c->err + n, c->errlen - (size_t)n, fmt, ap);
	return -EINVAL;
}

static int fail_at(struct ctx *c, yaml_mark_t m, const char *label,
		   const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfail_at(c, m, label, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static int fail(struct ctx *c, const yaml_node_t *n, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfail_at(c, n->start_mark, c->path[0] ? c->path : "config", fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static int warn(struct ctx *c, const yaml_node_t *n, const char *fmt, ...)
{
	struct config *cfg = c->cfg;
	char buf[512], **w;
	va_list ap;
	int k;

	k = snprintf(buf, sizeof(buf), "%s:%zu:%zu: ", c->file,
		     n->start_mark.line + 1, n->start_mark.column + 1);
	va_start(ap, fmt);
	vsnprintf(buf + k, sizeof(buf) - (size_t)k, fmt, ap);
	va_end(ap);
	w = realloc(cfg->warnings, (cfg->n_warnings + 1) * sizeof(*w));
	if (!w)
		return fail(c, n, "out of memory");
	cfg->warnings = w;
	if (!(w[cfg->n_warnings] = strdup(buf)))
		return fail(c, n, "out of memory");
	cfg->n_warnings++;
	return 0;
}

static size_t push_key(struct ctx *c, const char *key)
{
	size_t old = strlen(c->path);

	snprintf(c->path + old, sizeof(c->path) - old, "%s%s",
		 old ? "." : "", key);
	return old;
}

static size_t push_idx(struct ctx *c, size_t i)
{
	size_t old = strlen(c->path);

	snprintf(c->path + old, sizeof(c->path) - old, "[%zu]", i);
	return old;
}

static void pop(struct ctx *c, size_t old)
{
	c->path[old] = '\0';
}

/* ---- nodes ---- */

static yaml_node_t *node(struct ctx *c, int id)
{
	return yaml_document_get_node(c->doc, id);
}

static const char *sval(const yaml_node_t *n)
{
	return (const char *)n->data.scalar.value;
}

static bool is_null(const yaml_node_t *n)
{
	static const char *const nulls[] = { "", "~", "null", "Null", "NULL" };

	if (n->type != YAML_SCALAR_NODE ||
	    n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	for (size_t i = 0; i < sizeof(nulls) / sizeof(nulls[0]); i++)
		if (strcmp(sval(n), nulls[i]) == 0)
			return true;
	return false;
}

static const char *kind(const yaml_node_t *n)
{
	if (n->type == YAML_SEQUENCE_NODE)
		return "a list";
	if (n->type == YAML_MAPPING_NODE)
		return "a mapping";
	return is_null(n) ? "nothing" : "a scalar";
}

static int want_scalar(struct ctx *c, const yaml_node_t *n, const char *what)
{
	if (n->type != YAML_SCALAR_NODE || is_null(n))
		return fail(c, n, "expected %s, found %s", what, kind(n));
	if (strlen(sval(n)) != n->data.scalar.length)
		return fail(c, n, "contains a NUL byte");
	return 0;
}

static int want_seq(struct ctx *c, const yaml_node_t *n, bool nonempty)
{
	if (n->type != YAML_SEQUENCE_NODE)
		return fail(c, n, "expected a list, found %s", kind(n));
	if (nonempty && n->data.sequence.items.top == n->data.sequence.items.start)
		return fail(c, n, "must not be empty");
	return 0;
}

#define SEQ_LEN(n) ((size_t)((n)->data.sequence.items.top - (n)->data.sequence.items.start))
#define SEQ_AT(c, n, i) node(c, (n)->data.sequence.items.start[i])

/* A mapping with scalar keys, none repeated. */
static int want_map(struct ctx *c, const yaml_node_t *m)
{
	yaml_node_pair_t *p, *q, *start = m->data.mapping.pairs.start;

	if (m->type != YAML_MAPPING_NODE)
		return fail(c, m, "expected a mapping, found %s", kind(m));
	for (p = start; p < m->data.mapping.pairs.top; p++) {
		yaml_node_t *k = node(c, p->key);

		if (k->type != YAML_SCALAR_NODE || is_null(k))
			return fail(c, k, "a key must be a string, found %s", kind(k));
		for (q = start; q < p; q++) {
			yaml_node_t *first = node(c, q->key);

			if (strcmp(sval(first), sval(k)) != 0)
				continue;
			size_t old = push_key(c, sval(k));
			fail(c, k, "duplicate key (first at line %zu)",
			     first->start_mark.line + 1);
			pop(c, old);
			return -EINVAL;
		}
	}
	return 0;
}

static yaml_node_t *map_get(struct ctx *c, const yaml_node_t *m, const char *key)
{
	for (yaml_node_pair_t *p = m->data.mapping.pairs.start;
	     p < m->data.mapping.pairs.top; p++)
		if (strcmp(sval(node(c, p->key)), key) == 0)
			return node(c, p->value);
	return NULL;
}

static int missing(struct ctx *c, const yaml_node_t *m, const char *key,
		   const char *type)
{
	size_t old = push_key(c, key);

	fail(c, m, "missing required key%s%s", type ? " for type " : "",
	     type ? type : "");
	pop(c, old);
	return -EINVAL;
}

/* ---- typed values ---- */

static int get_str(struct ctx *c, yaml_node_t *n, char **out)
{
	int rc = want_scalar(c, n, "a string");

	if (rc)
		return rc;
	if (!*sval(n))
		return fail(c, n, "must not be empty");
	free(*out);
	if (!(*out = strdup(sval(n))))
		return fail(c, n, "out of memory");
	return 0;
}

static int get_uint(struct ctx *c, yaml_node_t *n, uint64_t lo, uint64_t hi,
		    uint64_t *out)
{
	const char *s;
	char *end;
	int rc = want_scalar(c, n, "an integer");

	if (rc)
		return rc;
	s = sval(n);
	errno = 0;
	*out = strtoull(s, &end, 10);
	if (*s < '0' || *s > '9' || *end || errno || *out < lo || *out > hi)
		return fail(c, n, "expected an integer from %" PRIu64 " to %"
			    PRIu64 ", found '%s'", lo, hi, s);
	return 0;
}

static int get_duration(struct ctx *c, yaml_node_t *n, uint64_t min,
			uint64_t *ms)
{
	char buf[32];
	int rc = want_scalar(c, n, "a duration");

	if (rc)
		return rc;
	rc = cfg_parse_duration(sval(n), ms);
	if (rc == -ERANGE)
		return fail(c, n, "duration '%s' is too large", sval(n));
	if (rc)
		return fail(c, n, "'%s' is not a duration (an integer and ms, s, m or h, e.g. 250ms)",
			    sval(n));
	cfg_format_duration(buf, sizeof(buf), min);
	if (*ms < min)
		return fail(c, n, "must be at least %s, found %s", buf, sval(n));
	return 0;
}

static int get_enum(struct ctx *c, yaml_node_t *n, const char *const *names,
		    int *out)
{
	char list[128] = "";
	int rc = want_scalar(c, n, "a word");

	if (rc)
		return rc;
	for (int i = 0; names[i]; i++) {
		if (strcmp(sval(n), names[i]) == 0) {
			*out = i;
			return 0;
		}
		snprintf(list + strlen(list), sizeof(list) - strlen(list),
			 "%s%s", i ? ", " : "", names[i]);
	}
	return fail(c, n, "'%s' is not one of %s", sval(n), list);
}

static int set_value(struct ctx *c, yaml_node_t *v, void *obj,
		     const struct key *k)
{
	char *field = (char *)obj + k->off;
	uint64_t u;
	int rc;

	switch (k->kind) {
	case K_FN:
		return k->fn(c, v, obj, k);
	case K_STR:
		return get_str(c, v, (char **)field);
	case K_DUR:
		return get_duration(c, v, k->min, (uint64_t *)field);
	case K_UINT:
		if ((rc = get_uint(c, v, k->min, k->max, &u)))
			return rc;
		*(unsigned *)field = (unsigned)u;
		return 0;
	case K_BOOL:
		if ((rc = want_scalar(c, v, "true or false")))
			return rc;
		if (strcmp(sval(v), "true") && strcmp(sval(v), "false"))
			return fail(c, v, "expected true or false, found '%s'", sval(v));
		*(bool *)field = strcmp(sval(v), "true") == 0;
		return 0;
	}
	return -EINVAL;
}

typedef int (*accept_fn)(struct ctx *c, yaml_node_t *key, void *obj);

/* Read every pair of mapping m through the table; accept, when given, may
 * refuse a key the table knows. */
static int walk_map(struct ctx *c, yaml_node_t *m, const struct key *tab,
		    void *obj, accept_fn accept)
{
	int rc = want_map(c, m);

	for (yaml_node_pair_t *p = m->data.mapping.pairs.start;
	     !rc && p < m->data.mapping.pairs.top; p++) {
		yaml_node_t *k = node(c, p->key);
		const struct key *e = tab;
		size_t old = push_key(c, sval(k));

		while (e->name && strcmp(e->name, sval(k)) != 0)
			e++;
		if (!e->name)
			rc = fail(c, k, "unknown key");
		else if (accept && (rc = accept(c, k, obj)))
			;
		else
			rc = set_value(c, node(c, p->value), obj, e);
		pop(c, old);
	}
	return rc;
}

/* ---- check keys ---- */

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

static int http_defaults(struct cfg_check *k)
{
	k->tls_verify = true;
	if (!(k->expect_status = malloc(sizeof(int))))
		return -ENOMEM;
	k->expect_status[0] = 200;
	k->n_expect_status = 1;
	return 0;
}

/* A key of another check type is named as such, not as unknown. */
static int accept_check_key(struct ctx *c, yaml_node_t *key, void *obj)
{
	const struct cfg_check *k = obj;
	static const char *const common[] = { "name", "type", "interval",
		"timeout", "rise", "fall", "on_fail", NULL };

	if (in_list(common, sval(key)) ||
	    in_list(type_find(k->type)->keys, sval(key)))
		return 0;
	return fail(c, key, "key '%s' is not valid for type %s", sval(key),
		    k->type);
}

static int check_name(struct ctx *c, yaml_node_t *v, void *obj,
		      const struct key *kk)
{
	struct cfg_check *k = obj;
	int rc = get_str(c, v, &k->name);

	(void)kk;
	if (rc)
		return rc;
	if (!cfg_name_valid(k->name))
		return fail(c, v, "'%s' is not a valid name ([a-z0-9_], 1 to %d characters)",
			    k->name, CFG_NAME_MAX - 1);
	for (size_t i = 0; i < c->chk_idx; i++)
		if (strcmp(c->svc->checks[i].name, k->name) == 0)
			return fail(c, v, "duplicate check name '%s' (first at line %u)",
				    k->name, c->svc->checks[i].line);
	return 0;
}

static int check_on_fail(struct ctx *c, yaml_node_t *v, void *obj,
			 const struct key *kk)
{
	int i, rc = get_enum(c, v, on_fail_names, &i);

	(void)kk;
	if (!rc)
		((struct cfg_check *)obj)->on_fail = (enum cfg_on_fail)i;
	return rc;
}

static int check_url(struct ctx *c, yaml_node_t *v, void *obj,
		     const struct key *kk)
{
	char **url = (char **)((char *)obj + kk->off);
	int rc = get_str(c, v, url);

	if (rc)
		return rc;
	if ((strncmp(*url, "http://", 7) && strncmp(*url, "https://", 8)) ||
	    strpbrk(*url, " \t\r\n") || !strchr(*url, '/')[2])
		return fail(c, v, "'%s' is not an http:// or https:// URL", *url);
	return 0;
}

static int check_connect_to(struct ctx *c, yaml_node_t *v, void *obj,
			    const struct key *kk)
{
	struct cfg_check *k = obj;
	char host[256];
	uint16_t port;
	int rc = get_str(c, v, &k->connect_to);

	(void)kk;
	if (rc)
		return rc;
	if (cfg_parse_hostport(k->connect_to, false, host, sizeof(host), &port))
		return fail(c, v, "'%s' is not HOST:PORT (IPv6 as [ADDR]:PORT, port 1 to 65535)",
			    k->connect_to);
	return 0;
}

static int check_expect_status(struct ctx *c, yaml_node_t *v, void *obj,
			       const struct key *kk)
{
	struct cfg_check *k = obj;
	size_t n = SEQ_LEN(v);
	int rc = want_seq(c, v, true);

	(void)kk;
	if (rc)
		return rc;
	free(k->expect_status);
	k->n_expect_status = 0;
	if (!(k->expect_status = calloc(n, sizeof(int))))
		return fail(c, v, "out of memory");
	for (size_t i = 0; !rc && i < n; i++) {
		size_t old = push_idx(c, i);
		uint64_t st;

		if (!(rc = get_uint(c, SEQ_AT(c, v, i), 100, 599, &st)))
			k->expect_status[k->n_expect_status++] = (int)st;
		pop(c, old);
	}
	return rc;
}

static int check_headers(struct ctx *c, yaml_node_t *v, void *obj,
			 const struct key *kk)
{
	struct cfg_check *k = obj;
	int rc = want_map(c, v);
	size_t n = (size_t)(v->data.mapping.pairs.top - v->data.mapping.pairs.start);

	(void)kk;
	if (rc)
		return rc;
	if (n && !(k->headers = calloc(n, sizeof(*k->headers))))
		return fail(c, v, "out of memory");
	for (size_t i = 0; !rc && i < n; i++) {
		yaml_node_pair_t *p = &v->data.mapping.pairs.start[i];
		yaml_node_t *kn = node(c, p->key), *vn = node(c, p->value);
		struct cfg_header *h = &k->headers[k->n_headers++];
		size_t old = push_key(c, sval(kn));

		if (strspn(sval(kn), "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz"
			   "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != strlen(sval(kn)))
			rc = fail(c, kn, "'%s' is not a valid header name", sval(kn));
		for (size_t j = 0; !rc && j + 1 < k->n_headers; j++)
			if (strcasecmp(k->headers[j].name, sval(kn)) == 0)
				rc = fail(c, kn, "duplicate header '%s'", sval(kn));
		if (!rc && !(h->name = strdup(sval(kn))))
			rc = fail(c, kn, "out of memory");
		if (!rc && !(rc = get_str(c, vn, &h->value)) &&
		    strpbrk(h->value, "\r\n"))
			rc = fail(c, vn, "a header value must be one line");
		pop(c, old);
	}
	return rc;
}

static int check_host(struct ctx *c, yaml_node_t *v, void *obj,
		      const struct key *kk)
{
	struct cfg_check *k = obj;
	uint8_t a[16];
	int rc = get_str(c, v, &k->host);

	(void)kk;
	if (rc)
		return rc;
	if (strspn(k->host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
		   "0123456789.-:") != strlen(k->host) ||
	    (strchr(k->host, ':') && inet_pton(AF_INET6, k->host, a) != 1))
		return fail(c, v, "'%s' is not a host name or address", k->host);
	return 0;
}

static int check_port(struct ctx *c, yaml_node_t *v, void *obj,
		      const struct key *kk)
{
	uint64_t port;
	int rc = get_uint(c, v, 1, 65535, &port);

	(void)kk;
	if (!rc)
		((struct cfg_check *)obj)->port = (uint16_t)port;
	return rc;
}

static int ignore(struct ctx *c, yaml_node_t *v, void *obj, const struct key *k)
{
	(void)c, (void)v, (void)obj, (void)k;
	return 0; /* read before the walk */
}

static const struct key check_keys[] = {
	FN("name", check_name, 0),
	FN("type", ignore, 0),
	DUR("interval", struct cfg_check, interval_ms, 10),
	DUR("timeout", struct cfg_check, timeout_ms, 1),
	UINT("rise", struct cfg_check, rise, 1, 100),
	UINT("fall", struct cfg_check, fall, 1, 100),
	FN("on_fail", check_on_fail, 0),
	FN("url", check_url, offsetof(struct cfg_check, url)),
	FN("expect_status", check_expect_status, 0),
	STR("expect_body", struct cfg_check, expect_body),
	FN("connect_to", check_connect_to, 0),
	BOOL("tls_verify", struct cfg_check, tls_verify),
	FN("headers", check_headers, 0),
	FN("host", check_host, 0),
	FN("port", check_port, 0),
	{ 0 },
};

static int load_check(struct ctx *c, yaml_node_t *m, struct cfg_check *k)
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
	if ((rc = want_map(c, m)))
		return rc;
	if (!(tn = map_get(c, m, "type")))
		return missing(c, m, "type", NULL);
	if (!map_get(c, m, "name"))
		return missing(c, m, "name", NULL);
	old = push_key(c, "type");
	if (!(rc = get_str(c, tn, &k->type)) && !(t = type_find(k->type))) {
		char list[128] = "";

		for (size_t i = 0; i < N_TYPES; i++)
			snprintf(list + strlen(list), sizeof(list) - strlen(list),
				 "%s%s", i ? ", " : "", check_types[i].type);
		rc = fail(c, tn, "unknown check type '%s' (known: %s)", k->type, list);
	}
	pop(c, old);
	if (rc)
		return rc;
	if (t->defaults && t->defaults(k))
		return fail(c, m, "out of memory");
	if ((rc = walk_map(c, m, check_keys, k, accept_check_key)))
		return rc;
	for (const char *const *r = t->required; *r; r++)
		if (!map_get(c, m, *r))
			return missing(c, m, *r, t->type);
	return 0;
}

/* ---- services ---- */

static int svc_name(struct ctx *c, yaml_node_t *v, void *obj,
		    const struct key *kk)
{
	struct cfg_service *s = obj;
	int rc = get_str(c, v, &s->name);

	(void)kk;
	if (rc)
		return rc;
	if (!cfg_name_valid(s->name))
		return fail(c, v, "'%s' is not a valid name ([a-z0-9_], 1 to %d characters)",
			    s->name, CFG_NAME_MAX - 1);
	for (size_t i = 0; i < c->svc_idx; i++)
		if (strcmp(c->cfg->services[i].name, s->name) == 0)
			return fail(c, v, "duplicate service name '%s' (first at line %u)",
				    s->name, c->cfg->services[i].line);
	return 0;
}

/* A prefix may be announced by one service only, and only once. */
static int prefix_dup(struct ctx *c, yaml_node_t *v, const struct cfg_prefix *p)
{
	for (size_t i = 0; i <= c->svc_idx; i++) {
		const struct cfg_service *o = &c->cfg->services[i];

		for (size_t j = 0; j < o->n_prefixes; j++) {
			if (strcmp(o->prefixes[j].text, p->text) != 0)
				continue;
			if (o == c->svc)
				return fail(c, v, "duplicate prefix %s", p->text);
			return fail(c, v, "prefix %s is already announced by service %s",
				    p->text, o->name);
		}
	}
	return 0;
}

static int svc_prefix(struct ctx *c, yaml_node_t *v, struct cfg_prefix *p)
{
	int rc = want_scalar(c, v, "a prefix");

	if (rc)
		return rc;
	rc = cfg_parse_prefix(sval(v), p);
	if (rc == -EDOM)
		return fail(c, v, "'%s' has host bits set (the prefix is %s)",
			    sval(v), p->text);
	if (rc)
		return fail(c, v, "'%s' is not a prefix (ADDR/LEN, IPv4 or IPv6)",
			    sval(v));
	if ((rc = prefix_dup(c, v, p)))
		return rc;
	if (p->len > (p->family == AF_INET ? 24 : 48))
		return warn(c, v, "prefix %s is longer than /%d; many upstreams filter it",
			    p->text, p->family == AF_INET ? 24 : 48);
	return 0;
}

static int svc_prefixes(struct ctx *c, yaml_node_t *v, void *obj,
			const struct key *kk)
{
	struct cfg_service *s = obj;
	int rc = want_seq(c, v, true);

	(void)kk;
	if (rc)
		return rc;
	if (!(s->prefixes = calloc(SEQ_LEN(v), sizeof(*s->prefixes))))
		return fail(c, v, "out of memory");
	for (size_t i = 0; !rc && i < SEQ_LEN(v); i++) {
		size_t old = push_idx(c, i);

		rc = svc_prefix(c, SEQ_AT(c, v, i), &s->prefixes[i]);
		if (!rc)
			s->n_prefixes++;
		pop(c, old);
	}
	return rc;
}

static int comm_set(struct ctx *c, yaml_node_t *v, void *obj,
		    const struct key *kk)
{
	struct cfg_communities *set = &((struct cfg_service *)obj)->communities[kk->off];
	int rc = want_seq(c, v, false);

	if (rc)
		return rc;
	free(set->items);
	set->n = 0;
	if (!(set->items = calloc(SEQ_LEN(v) + 1, sizeof(*set->items))))
		return fail(c, v, "out of memory");
	for (size_t i = 0; !rc && i < SEQ_LEN(v); i++) {
		yaml_node_t *n = SEQ_AT(c, v, i);
		struct cfg_community *cm = &set->items[set->n];
		size_t old = push_idx(c, i);

		if (!(rc = want_scalar(c, n, "a community")) &&
		    cfg_parse_community(sval(n), cm))
			rc = fail(c, n, "'%s' is not a community (\"A:B\", each 0 to 65535, or large \"A:B:C\", each 0 to 4294967295)",
				  sval(n));
		for (size_t j = 0; !rc && j < set->n; j++)
			if (!memcmp(&set->items[j], cm, sizeof(*cm)))
				rc = fail(c, n, "duplicate community '%s'", sval(n));
		set->n += !rc;
		pop(c, old);
	}
	return rc;
}

static const struct key comm_keys[] = {
	FN("up", comm_set, CFG_COMM_UP),
	FN("degraded", comm_set, CFG_COMM_DEGRADED),
	FN("draining", comm_set, CFG_COMM_DRAINING),
	{ 0 },
};

static int svc_communities(struct ctx *c, yaml_node_t *v, void *obj,
			   const struct key *kk)
{
	(void)kk;
	return walk_map(c, v, comm_keys, obj, NULL);
}

static int svc_on_stop(struct ctx *c, yaml_node_t *v, void *obj,
		       const struct key *kk)
{
	int i, rc = get_enum(c, v, on_stop_names, &i);

	(void)kk;
	if (!rc)
		((struct cfg_service *)obj)->on_stop = (enum cfg_on_stop)i;
	return rc;
}

static int svc_checks(struct ctx *c, yaml_node_t *v, void *obj,
		      const struct key *kk)
{
	struct cfg_service *s = obj;
	int rc = want_seq(c, v, true);

	(void)kk;
	if (rc)
		return rc;
	if (!(s->checks = calloc(SEQ_LEN(v), sizeof(*s->checks))))
		return fail(c, v, "out of memory");
	s->n_checks = SEQ_LEN(v);
	for (c->chk_idx = 0; !rc && c->chk_idx < s->n_checks; c->chk_idx++) {
		size_t old = push_idx(c, c->chk_idx);

		rc = load_check(c, SEQ_AT(c, v, c->chk_idx), &s->checks[c->chk_idx]);
		pop(c, old);
	}
	return rc;
}

static const struct key service_keys[] = {
	FN("name", svc_name, 0),
	FN("prefixes", svc_prefixes, 0),
	FN("communities", svc_communities, 0),
	DUR("drain", struct cfg_service, drain_ms, 0),
	DUR("hold_down", struct cfg_service, hold_down_ms, 0),
	STR("maintenance_file", struct cfg_service, maintenance_file),
	FN("on_stop", svc_on_stop, 0),
	FN("checks", svc_checks, 0),
	{ 0 },
};

static int load_service(struct ctx *c, yaml_node_t *m, struct cfg_service *s)
{
	static const char *const required[] = { "name", "prefixes", "checks", NULL };
	struct cfg_communities *dr = &s->communities[CFG_COMM_DRAINING];
	int rc = want_map(c, m);

	s->line = (unsigned)m->start_mark.line + 1;
	s->col = (unsigned)m->start_mark.column + 1;
	s->drain_ms = 30000;
	s->hold_down_ms = 5000;
	s->on_stop = CFG_ON_STOP_KEEP;
	if (!(dr->items = calloc(1, sizeof(*dr->items))))
		return fail(c, m, "out of memory");
	dr->items[0] = (struct cfg_community){ .v = { 65535, 0 } }; /* RFC 8326 */
	dr->n = 1;
	for (const char *const *r = required; !rc && *r; r++)
		if (!map_get(c, m, *r))
			rc = missing(c, m, *r, NULL);
	return rc ? rc : walk_map(c, m, service_keys, s, NULL);
}

static int load_services(struct ctx *c, yaml_node_t *v)
{
	struct config *cfg = c->cfg;
	size_t old = push_key(c, "services");
	int rc = want_seq(c, v, true);

	if (!rc && !(cfg->services = calloc(SEQ_LEN(v), sizeof(*cfg->services))))
		rc = fail(c, v, "out of memory");
	if (!rc)
		cfg->n_services = SEQ_LEN(v);
	for (c->svc_idx = 0; !rc && c->svc_idx < cfg->n_services; c->svc_idx++) {
		size_t o = push_idx(c, c->svc_idx);

		c->svc = &cfg->services[c->svc_idx];
		rc = load_service(c, SEQ_AT(c, v, c->svc_idx), c->svc);
		pop(c, o);
	}
	pop(c, old);
	return rc;
}

/* ---- top level ---- */

static int http_listen(struct ctx *c, yaml_node_t *v, void *obj,
		       const struct key *kk)
{
	struct config *cfg = obj;
	int rc = want_seq(c, v, false);

	(void)kk;
	if (rc)
		return rc;
	if (!(cfg->http.listen = calloc(SEQ_LEN(v) + 1, sizeof(char *))))
		return fail(c, v, "out of memory");
	for (size_t i = 0; !rc && i < SEQ_LEN(v); i++) {
		yaml_node_t *n = SEQ_AT(c, v, i);
		char host[64], **l = &cfg->http.listen[cfg->http.n_listen];
		uint16_t port;
		size_t old = push_idx(c, i);

		if (!(rc = get_str(c, n, l)))
			cfg->http.n_listen++;
		if (!rc && cfg_parse_hostport(*l, true, host, sizeof(host), &port))
			rc = fail(c, n, "'%s' is not ADDR:PORT (IPv4 or [IPv6], port 1 to 65535)",
				  *l);
		pop(c, old);
	}
	return rc;
}

static const struct key bird_keys[] = {
	STR("socket", struct config, bird.socket),
	STR("include", struct config, bird.include),
	DUR("timeout", struct config, bird.timeout_ms, 1),
	DUR("reconcile", struct config, bird.reconcile_ms, 10),
	{ 0 },
};
static const struct key control_keys[] = {
	STR("socket", struct config, control.socket),
	{ 0 },
};
static const struct key http_keys[] = {
	FN("listen", http_listen, 0),
	{ 0 },
};
static const struct key defaults_keys[] = {
	DUR("interval", struct config, defaults.interval_ms, 10),
	DUR("timeout", struct config, defaults.timeout_ms, 1),
	UINT("rise", struct config, defaults.rise, 1, 100),
	UINT("fall", struct config, defaults.fall, 1, 100),
	{ 0 },
};

/* A nested mapping whose table is in the key's arg. */
static int section(struct ctx *c, yaml_node_t *v, void *obj,
		   const struct key *kk)
{
	return walk_map(c, v, (const struct key *)kk->off, obj, NULL);
}

static int top_services(struct ctx *c, yaml_node_t *v, void *obj,
			const struct key *kk)
{
	(void)obj, (void)kk;
	c->services = v; /* read last: checks inherit `defaults` */
	return 0;
}

static const struct key top_keys[] = {
	STR("node", struct config, node),
	FN("bird", section, (size_t)bird_keys),
	FN("control", section, (size_t)control_keys),
	FN("http", section, (size_t)http_keys),
	FN("defaults", section, (size_t)defaults_keys),
	FN("services", top_services, 0),
	{ 0 },
};

static int set_defaults(struct config *cfg, const char *name)
{
	char host[256] = "localhost";

	if (gethostname(host, sizeof(host) - 1) != 0)
		snprintf(host, sizeof(host), "localhost");
	cfg->path = strdup(name);
	cfg->node = strdup(host);
	cfg->bird.socket = strdup("/run/bird/bird.ctl");
	cfg->bird.include = strdup("/etc/bird/healthd.conf");
	cfg->bird.timeout_ms = 2000;
	cfg->bird.reconcile_ms = 5000;
	cfg->control.socket = strdup("/run/healthd/healthd.sock");
	cfg->defaults = (struct cfg_defaults){ 1000, 1000, 2, 2 };
	if (!cfg->path || !cfg->node || !cfg->bird.socket ||
	    !cfg->bird.include || !cfg->control.socket)
		return -ENOMEM;
	return 0;
}

/* ---- loading ---- */

/* A first pass over the events: syntax errors, anchors and extra
 * documents, none of which the document tree shows. */
static int scan_events(struct ctx *c, const char *yaml, size_t len)
{
	yaml_parser_t p;
	yaml_event_t ev;
	int rc = 0, docs = 0;

	if (!yaml_parser_initialize(&p))
		return fail_at(c, (yaml_mark_t){ 0 }, "yaml", "out of memory");
	yaml_parser_set_input_string(&p, (const unsigned char *)yaml, len);
	for (bool end = false; !end && !rc;) {
		if (!yaml_parser_parse(&p, &ev)) {
			if (p.error == YAML_READER_ERROR)
				rc = fail_at(c, (yaml_mark_t){ 0 }, "yaml", "%s at byte %zu",
					     p.problem, p.problem_offset);
			else if (p.context)
				rc = fail_at(c, p.problem_mark, "yaml", "%s (%s at line %zu)",
					     p.problem, p.context, p.context_mark.line + 1);
			else
				rc = fail_at(c, p.problem_mark, "yaml", "%s",
					     p.problem ? p.problem : "syntax error");
			break;
		}
		if (ev.type == YAML_ALIAS_EVENT ||
		    (ev.type == YAML_SCALAR_EVENT && ev.data.scalar.anchor) ||
		    (ev.type == YAML_SEQUENCE_START_EVENT && ev.data.sequence_start.anchor) ||
		    (ev.type == YAML_MAPPING_START_EVENT && ev.data.mapping_start.anchor))
			rc = fail_at(c, ev.start_mark, "yaml",
				     "anchors and aliases are not supported");
		else if (ev.type == YAML_DOCUMENT_START_EVENT && ++docs > 1)
			rc = fail_at(c, ev.start_mark, "yaml",
				     "only one YAML document is allowed");
		end = ev.type == YAML_STREAM_END_EVENT;
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&p);
	return rc;
}

/* Sets c->doc once there is a document to delete. */
static int load_doc(struct ctx *c, yaml_document_t *doc, const char *yaml,
		    size_t len)
{
	yaml_parser_t p;
	yaml_node_t *root;
	int rc;

	if ((rc = scan_events(c, yaml, len)))
		return rc;
	if (!yaml_parser_initialize(&p))
		return fail_at(c, (yaml_mark_t){ 0 }, "yaml", "out of memory");
	yaml_parser_set_input_string(&p, (const unsigned char *)yaml, len);
	if (yaml_parser_load(&p, doc))
		c->doc = doc;
	else /* the loader deleted what it had built */
		rc = fail_at(c, p.problem_mark, "yaml", "%s", p.problem ? p.problem : "cannot load");
	yaml_parser_delete(&p);
	if (rc)
		return rc;
	if (!(root = yaml_document_get_root_node(c->doc)))
		return fail_at(c, (yaml_mark_t){ 0 }, "config", "the file is empty");
	if ((rc = walk_map(c, root, top_keys, c->cfg, NULL)))
		return rc;
	if (!c->services)
		return missing(c, root, "services", NULL);
	return load_services(c, c->services);
}

struct config *cfg_load_string(const char *name, const char *yaml, size_t len,
			       char *err, size_t errlen)
{
	yaml_document_t doc;
	struct ctx c = { .file = name, .err = err, .errlen = errlen };
	int rc;

	if (errlen)
		err[0] = '\0';
	if (!(c.cfg = calloc(1, sizeof(*c.cfg))) || set_defaults(c.cfg, name)) {
		snprintf(err, errlen, "%s: out of memory", name);
		goto fail;
	}
	rc = load_doc(&c, &doc, yaml, len);
	if (c.doc)
		yaml_document_delete(&doc);
	if (rc)
		goto fail;
	return c.cfg;
fail:
	cfg_free(c.cfg);
	return NULL;
}

struct config *cfg_load(const char *path, char *err, size_t errlen)
{
	struct config *cfg = NULL;
	char *buf = NULL;
	size_t len = 0, cap = 0, n;
	FILE *f = fopen(path, "r");

	if (!f) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	do {
		if (len == cap) {
			char *nb = realloc(buf, (cap = cap ? cap * 2 : 8192));

			if (!nb) {
				snprintf(err, errlen, "%s: out of memory", path);
				goto out;
			}
			buf = nb;
		}
		len += n = fread(buf + len, 1, cap - len, f);
	} while (n > 0);
	if (ferror(f))
		snprintf(err, errlen, "%s: read error", path);
	else
		cfg = cfg_load_string(path, buf, len, err, errlen);
out:
	fclose(f);
	free(buf);
	return cfg;
}

/* ---- the rest of the API ---- */

static void check_free(struct cfg_check *k)
{
	free(k->name);
	free(k->type);
	free(k->url);
	free(k->expect_status);
	free(k->expect_body);
	free(k->connect_to);
	for (size_t i = 0; i < k->n_headers; i++) {
		free(k->headers[i].name);
		free(k->headers[i].value);
	}
	free(k->headers);
	free(k->host);
}

void cfg_free(struct config *cfg)
{
	if (!cfg)
		return;
	for (size_t i = 0; i < cfg->n_services; i++) {
		struct cfg_service *s = &cfg->services[i];

		for (size_t j = 0; j < s->n_checks; j++)
			check_free(&s->checks[j]);
		for (int j = 0; j < CFG_COMM_SETS; j++)
			free(s->communities[j].items);
		free(s->checks);
		free(s->prefixes);
		free(s->name);
		free(s->maintenance_file);
	}
	free(cfg->services);
	for (size_t i = 0; i < cfg->http.n_listen; i++)
		free(cfg->http.listen[i]);
	for (size_t i = 0; i < cfg->n_warnings; i++)
		free(cfg->warnings[i]);
	free(cfg->http.listen);
	free(cfg->warnings);
	free(cfg->path);
	free(cfg->node);
	free(cfg->bird.socket);
	free(cfg->bird.include);
	free(cfg->control.socket);
	free(cfg);
}

static bool str_eq(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

bool cfg_check_equal(const struct cfg_check *a, const struct cfg_check *b)
{
	if (!str_eq(a->name, b->name) || !str_eq(a->type, b->type) ||
	    a->interval_ms != b->interval_ms || a->timeout_ms != b->timeout_ms ||
	    a->rise != b->rise || a->fall != b->fall || a->on_fail != b->on_fail ||
	    !str_eq(a->url, b->url) || !str_eq(a->expect_body, b->expect_body) ||
	    !str_eq(a->connect_to, b->connect_to) ||
	    a->tls_verify != b->tls_verify || !str_eq(a->host, b->host) ||
	    a->port != b->port || a->n_expect_status != b->n_expect_status ||
	    a->n_headers != b->n_headers)
		return false;
	for (size_t i = 0; i < a->n_expect_status; i++)
		if (a->expect_status[i] != b->expect_status[i])
			return false;
	for (size_t i = 0; i < a->n_headers; i++)
		if (!str_eq(a->headers[i].name, b->headers[i].name) ||
		    !str_eq(a->headers[i].value, b->headers[i].value))
			return false;
	return true;
}

const struct cfg_service *cfg_service_find(const struct config *cfg,
					   const char *name)
{
	for (size_t i = 0; i < cfg->n_services; i++)
		if (strcmp(cfg->services[i].name, name) == 0)
			return &cfg->services[i];
	return NULL;
}
