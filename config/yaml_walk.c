/*
 * config/yaml_walk.c — the YAML walker under the loader: errors that carry
 * the node's mark and dotted key path, typed value readers, and the walk of
 * a mapping through a key table. Knows nothing of healthd's keys.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "config/load.h"

/* ---- errors, warnings and the key path ---- */

static int vfail_at(struct cfg_ctx *c, yaml_mark_t m, const char *label,
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

int cfg_fail_at(struct cfg_ctx *c, yaml_mark_t m, const char *label,
		const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfail_at(c, m, label, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

int cfg_fail(struct cfg_ctx *c, const yaml_node_t *n, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfail_at(c, n->start_mark, c->path[0] ? c->path : "config", fmt, ap);
	va_end(ap);
	return -EINVAL;
}

int cfg_warn(struct cfg_ctx *c, const yaml_node_t *n, const char *fmt, ...)
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
		return cfg_fail(c, n, "out of memory");
	cfg->warnings = w;
	if (!(w[cfg->n_warnings] = strdup(buf)))
		return cfg_fail(c, n, "out of memory");
	cfg->n_warnings++;
	return 0;
}

size_t cfg_push_key(struct cfg_ctx *c, const char *key)
{
	size_t old = strlen(c->path);

	snprintf(c->path + old, sizeof(c->path) - old, "%s%s",
		 old ? "." : "", key);
	return old;
}

size_t cfg_push_idx(struct cfg_ctx *c, size_t i)
{
	size_t old = strlen(c->path);

	snprintf(c->path + old, sizeof(c->path) - old, "[%zu]", i);
	return old;
}

void cfg_pop(struct cfg_ctx *c, size_t old)
{
	c->path[old] = '\0';
}

/* ---- nodes ---- */

static bool is_null(const yaml_node_t *n)
{
	static const char *const nulls[] = { "", "~", "null", "Null", "NULL" };

	if (n->type != YAML_SCALAR_NODE ||
	    n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	for (size_t i = 0; i < sizeof(nulls) / sizeof(nulls[0]); i++)
		if (strcmp(cfg_sval(n), nulls[i]) == 0)
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

int cfg_want_scalar(struct cfg_ctx *c, const yaml_node_t *n, const char *what)
{
	if (n->type != YAML_SCALAR_NODE || is_null(n))
		return cfg_fail(c, n, "expected %s, found %s", what, kind(n));
	if (strlen(cfg_sval(n)) != n->data.scalar.length)
		return cfg_fail(c, n, "contains a NUL byte");
	return 0;
}

int cfg_want_seq(struct cfg_ctx *c, const yaml_node_t *n, bool nonempty)
{
	if (n->type != YAML_SEQUENCE_NODE)
		return cfg_fail(c, n, "expected a list, found %s", kind(n));
	if (nonempty && n->data.sequence.items.top == n->data.sequence.items.start)
		return cfg_fail(c, n, "must not be empty");
	return 0;
}

/* A mapping with scalar keys, none repeated. */
int cfg_want_map(struct cfg_ctx *c, const yaml_node_t *m)
{
	yaml_node_pair_t *p, *q, *start = m->data.mapping.pairs.start;

	if (m->type != YAML_MAPPING_NODE)
		return cfg_fail(c, m, "expected a mapping, found %s", kind(m));
	for (p = start; p < m->data.mapping.pairs.top; p++) {
		yaml_node_t *k = cfg_node(c, p->key);

		if (k->type != YAML_SCALAR_NODE || is_null(k))
			return cfg_fail(c, k, "a key must be a string, found %s", kind(k));
		for (q = start; q < p; q++) {
			yaml_node_t *first = cfg_node(c, q->key);

			if (strcmp(cfg_sval(first), cfg_sval(k)) != 0)
				continue;
			size_t old = cfg_push_key(c, cfg_sval(k));
			cfg_fail(c, k, "duplicate key (first at line %zu)",
				 first->start_mark.line + 1);
			cfg_pop(c, old);
			return -EINVAL;
		}
	}
	return 0;
}

yaml_node_t *cfg_map_get(struct cfg_ctx *c, const yaml_node_t *m, const char *key)
{
	for (yaml_node_pair_t *p = m->data.mapping.pairs.start;
	     p < m->data.mapping.pairs.top; p++)
		if (strcmp(cfg_sval(cfg_node(c, p->key)), key) == 0)
			return cfg_node(c, p->value);
	return NULL;
}

int cfg_missing(struct cfg_ctx *c, const yaml_node_t *m, const char *key,
		const char *type)
{
	size_t old = cfg_push_key(c, key);

	cfg_fail(c, m, "missing required key%s%s", type ? " for type " : "",
		 type ? type : "");
	cfg_pop(c, old);
	return -EINVAL;
}

/* ---- typed values ---- */

int cfg_get_str(struct cfg_ctx *c, yaml_node_t *n, char **out)
{
	int rc = cfg_want_scalar(c, n, "a string");

	if (rc)
		return rc;
	if (!*cfg_sval(n))
		return cfg_fail(c, n, "must not be empty");
	free(*out);
	if (!(*out = strdup(cfg_sval(n))))
		return cfg_fail(c, n, "out of memory");
	return 0;
}

int cfg_get_uint(struct cfg_ctx *c, yaml_node_t *n, uint64_t lo, uint64_t hi,
		 uint64_t *out)
{
	const char *s;
	char *end;
	int rc = cfg_want_scalar(c, n, "an integer");

	if (rc)
		return rc;
	s = cfg_sval(n);
	errno = 0;
	*out = strtoull(s, &end, 10);
	if (*s < '0' || *s > '9' || *end || errno || *out < lo || *out > hi)
		return cfg_fail(c, n, "expected an integer from %" PRIu64 " to %"
				PRIu64 ", found '%s'", lo, hi, s);
	return 0;
}

int cfg_get_duration(struct cfg_ctx *c, yaml_node_t *n, uint64_t min,
		     uint64_t max, uint64_t *ms)
{
	char lo[32], hi[32];
	int rc = cfg_want_scalar(c, n, "a duration");

	if (rc)
		return rc;
	cfg_format_duration(lo, sizeof(lo), min);
	cfg_format_duration(hi, sizeof(hi), max);
	rc = cfg_parse_duration(cfg_sval(n), ms);
	if (rc == -ERANGE)
		return cfg_fail(c, n, "duration '%s' is too large (at most %s)",
				cfg_sval(n), hi);
	if (rc)
		return cfg_fail(c, n, "'%s' is not a duration (an integer and ms, s, m or h, e.g. 250ms)",
				cfg_sval(n));
	if (*ms < min)
		return cfg_fail(c, n, "must be at least %s, found %s", lo, cfg_sval(n));
	if (*ms > max)
		return cfg_fail(c, n, "must be at most %s, found %s", hi, cfg_sval(n));
	return 0;
}

int cfg_get_enum(struct cfg_ctx *c, yaml_node_t *n, const char *const *names,
		 int *out)
{
	char list[128] = "";
	int rc = cfg_want_scalar(c, n, "a word");

	if (rc)
		return rc;
	for (int i = 0; names[i]; i++) {
		if (strcmp(cfg_sval(n), names[i]) == 0) {
			*out = i;
			return 0;
		}
		snprintf(list + strlen(list), sizeof(list) - strlen(list),
			 "%s%s", i ? ", " : "", names[i]);
	}
	return cfg_fail(c, n, "'%s' is not one of %s", cfg_sval(n), list);
}

/* A plain decimal greater than 0 and at most max: no sign, hex, inf or
 * nan. */
int cfg_get_number(struct cfg_ctx *c, yaml_node_t *n, double max, double *out)
{
	const char *s;
	char *end;
	int rc = cfg_want_scalar(c, n, "a number");

	if (rc)
		return rc;
	s = cfg_sval(n);
	errno = 0;
	*out = strtod(s, &end);
	if (*s < '0' || *s > '9' || strspn(s, "0123456789.eE+-") != strlen(s) ||
	    *end || errno || !isfinite(*out) || !(*out > 0))
		return cfg_fail(c, n, "expected a number greater than 0, found '%s'",
				s);
	if (*out > max)
		return cfg_fail(c, n, "must be at most %.0f, found '%s'", max, s);
	return 0;
}

static int set_value(struct cfg_ctx *c, yaml_node_t *v, void *obj,
		     const struct cfg_key *k)
{
	char *field = (char *)obj + k->off;
	uint64_t u;
	int rc;

	switch (k->kind) {
	case CFG_K_FN:
		return k->fn(c, v, obj, k);
	case CFG_K_STR:
		return cfg_get_str(c, v, (char **)field);
	case CFG_K_DUR:
		return cfg_get_duration(c, v, k->min, k->max, (uint64_t *)field);
	case CFG_K_UINT:
		if ((rc = cfg_get_uint(c, v, k->min, k->max, &u)))
			return rc;
		*(unsigned *)field = (unsigned)u;
		return 0;
	case CFG_K_BOOL:
		if ((rc = cfg_want_scalar(c, v, "true or false")))
			return rc;
		if (strcmp(cfg_sval(v), "true") && strcmp(cfg_sval(v), "false"))
			return cfg_fail(c, v, "expected true or false, found '%s'", cfg_sval(v));
		*(bool *)field = strcmp(cfg_sval(v), "true") == 0;
		return 0;
	case CFG_K_NUM:
		return cfg_get_number(c, v, CFG_DAMPENING_MAX, (double *)field);
	}
	return -EINVAL;
}

int cfg_walk_map(struct cfg_ctx *c, yaml_node_t *m, const struct cfg_key *tab,
		 void *obj, cfg_accept_fn accept)
{
	int rc = cfg_want_map(c, m);

	for (yaml_node_pair_t *p = m->data.mapping.pairs.start;
	     !rc && p < m->data.mapping.pairs.top; p++) {
		yaml_node_t *k = cfg_node(c, p->key);
		const struct cfg_key *e = tab;
		size_t old = cfg_push_key(c, cfg_sval(k));

		while (e->name && strcmp(e->name, cfg_sval(k)) != 0)
			e++;
		if (!e->name)
			rc = cfg_fail(c, k, "unknown key");
		else if (accept && (rc = accept(c, k, obj)))
			;
		else
			rc = set_value(c, cfg_node(c, p->value), obj, e);
		cfg_pop(c, old);
	}
	return rc;
}
