/*
 * config/load.h — internals shared by the loader's files; not installed,
 * included only by the .c files of config/ and by mesh/, which reads its
 * inventory through the same walker.
 *
 *   yaml_walk.c   errors with marks, the key path, typed value readers,
 *                 and the table-driven walk of a mapping
 *   check_keys.c  the check key table and the per-type handlers
 *   config.c      services, the top level, load and free
 */
#ifndef HEALTHD_CONFIG_LOAD_H
#define HEALTHD_CONFIG_LOAD_H

#include <stddef.h>
#include <stdint.h>
#include <yaml.h>

#include "config/config.h"

struct cfg_ctx {
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

struct cfg_key;
typedef int (*cfg_key_fn)(struct cfg_ctx *c, yaml_node_t *v, void *obj,
			  const struct cfg_key *k);

/* One accepted key of a mapping: a typed field at off, or a handler. */
struct cfg_key {
	const char *name;
	cfg_key_fn fn;
	enum { CFG_K_FN, CFG_K_STR, CFG_K_DUR, CFG_K_UINT, CFG_K_BOOL,
	       CFG_K_NUM } kind;
	size_t off;
	uint64_t min, max;
};

#define CFG_FN(n, f, arg)         { n, f, CFG_K_FN, arg, 0, 0 }
#define CFG_STR(n, T, f)          { n, NULL, CFG_K_STR, offsetof(T, f), 0, 0 }
/* A duration from lo to hi ms. */
#define CFG_DUR(n, T, f, lo, hi)  { n, NULL, CFG_K_DUR, offsetof(T, f), lo, hi }
#define CFG_UINT(n, T, f, lo, hi) { n, NULL, CFG_K_UINT, offsetof(T, f), lo, hi }
#define CFG_BOOL(n, T, f)         { n, NULL, CFG_K_BOOL, offsetof(T, f), 0, 0 }
/* Durations in the key tables' limits. */
#define CFG_SEC(n)  ((uint64_t)(n) * 1000)
#define CFG_MIN(n)  ((uint64_t)(n) * 60000)
#define CFG_HOUR(n) ((uint64_t)(n) * 3600000)

/* A double greater than 0 and at most CFG_DAMPENING_MAX. */
#define CFG_NUM(n, T, f)          { n, NULL, CFG_K_NUM, offsetof(T, f), 0, 0 }

/* May refuse a key that the table knows (see cfg_walk_map). */
typedef int (*cfg_accept_fn)(struct cfg_ctx *c, yaml_node_t *key, void *obj);

static inline yaml_node_t *cfg_node(struct cfg_ctx *c, int id)
{
	return yaml_document_get_node(c->doc, id);
}

static inline const char *cfg_sval(const yaml_node_t *n)
{
	return (const char *)n->data.scalar.value;
}

#define CFG_SEQ_LEN(n) \
	((size_t)((n)->data.sequence.items.top - (n)->data.sequence.items.start))
#define CFG_SEQ_AT(c, n, i) cfg_node(c, (n)->data.sequence.items.start[i])

/* ---- yaml_walk.c: errors, warnings and the key path ---- */

/* Each returns -EINVAL after writing "FILE:LINE:COL: LABEL: text". */
int cfg_fail_at(struct cfg_ctx *c, yaml_mark_t m, const char *label,
		const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Labelled with the current key path. */
int cfg_fail(struct cfg_ctx *c, const yaml_node_t *n, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
int cfg_warn(struct cfg_ctx *c, const yaml_node_t *n, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
int cfg_missing(struct cfg_ctx *c, const yaml_node_t *m, const char *key,
		const char *type);

/* Push returns the old length, for cfg_pop. */
size_t cfg_push_key(struct cfg_ctx *c, const char *key);
size_t cfg_push_idx(struct cfg_ctx *c, size_t i);
void cfg_pop(struct cfg_ctx *c, size_t old);

/* ---- yaml_walk.c: nodes and typed values ---- */

int cfg_want_scalar(struct cfg_ctx *c, const yaml_node_t *n, const char *what);
int cfg_want_seq(struct cfg_ctx *c, const yaml_node_t *n, bool nonempty);
int cfg_want_map(struct cfg_ctx *c, const yaml_node_t *m);
yaml_node_t *cfg_map_get(struct cfg_ctx *c, const yaml_node_t *m,
			 const char *key);

int cfg_get_str(struct cfg_ctx *c, yaml_node_t *n, char **out);
int cfg_get_uint(struct cfg_ctx *c, yaml_node_t *n, uint64_t lo, uint64_t hi,
		 uint64_t *out);
int cfg_get_duration(struct cfg_ctx *c, yaml_node_t *n, uint64_t min,
		     uint64_t max, uint64_t *ms);
/* Greater than 0 and at most max. */
int cfg_get_number(struct cfg_ctx *c, yaml_node_t *n, double max, double *out);
int cfg_get_enum(struct cfg_ctx *c, yaml_node_t *n, const char *const *names,
		 int *out);

/* Read every pair of mapping m through the table; accept, when given, may
 * refuse a key the table knows. */
int cfg_walk_map(struct cfg_ctx *c, yaml_node_t *m, const struct cfg_key *tab,
		 void *obj, cfg_accept_fn accept);

/* ---- config.c: reading a document ---- */

/* Syntax errors, anchors and extra documents refused; sets c->doc once
 * there is a document to delete, *root to its root node. */
int cfg_parse_doc(struct cfg_ctx *c, yaml_document_t *doc, const char *yaml,
		  size_t len, yaml_node_t **root);
/* The whole file into *out (free it), NUL-terminated; errors "PATH: reason"
 * into err. */
int cfg_read_file(const char *path, char **out, size_t *outlen, char *err,
		  size_t errlen);

/* guard: {min_announcers, step, interval} into g (defaults already in
 * it); healthd.yaml's services and the mesh inventory's. */
int cfg_load_guard(struct cfg_ctx *c, yaml_node_t *v, struct cfg_guard *g);

/* ---- check_keys.c ---- */

/* Check m of service c->svc, index c->chk_idx, into k. */
int cfg_load_check(struct cfg_ctx *c, yaml_node_t *m, struct cfg_check *k);
/* A command (exec checks, hooks): a non-empty list of strings into *argv
 * (NULL-terminated) and *n, the first an absolute path to an executable
 * file. 0 or -EINVAL. */
int cfg_get_argv(struct cfg_ctx *c, yaml_node_t *v, char ***argv, size_t *n);
void cfg_argv_free(char **argv, size_t n);

#endif
