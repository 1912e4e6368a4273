/*
 * mesh/load.h — internals shared by load.c and values.c; not installed.
 */
#ifndef HEALTHD_MESH_LOAD_H
#define HEALTHD_MESH_LOAD_H

#include "config/load.h"
#include "mesh/mesh.h"

/* ---- values.c ---- */

/* Where n is, named by the current key path. */
void mesh_mark_at(struct cfg_ctx *c, const yaml_node_t *n, struct mesh_mark *at);
/* Each of keys (NULL-terminated) present in mapping m. */
int mesh_require(struct cfg_ctx *c, yaml_node_t *m, const char *const *keys);
/* Any key anywhere that names a private key, a password or a secret. */
int mesh_scan_secrets(struct cfg_ctx *c, yaml_node_t *n);

/* Key handlers: the field at the key's offset; min is the family (0 any)
 * or, for mesh_key_addrs, 1 when the list must not be empty. */
int mesh_key_addr(struct cfg_ctx *c, yaml_node_t *v, void *obj, const struct cfg_key *k);
int mesh_key_prefix(struct cfg_ctx *c, yaml_node_t *v, void *obj, const struct cfg_key *k);
int mesh_key_prefixes(struct cfg_ctx *c, yaml_node_t *v, void *obj, const struct cfg_key *k);
int mesh_key_addrs(struct cfg_ctx *c, yaml_node_t *v, void *obj, const struct cfg_key *k);
int mesh_key_name(struct cfg_ctx *c, yaml_node_t *v, void *obj, const struct cfg_key *k);
int mesh_key_ifname(struct cfg_ctx *c, yaml_node_t *v, void *obj, const struct cfg_key *k);
int mesh_key_path(struct cfg_ctx *c, yaml_node_t *v, void *obj, const struct cfg_key *k);
int mesh_key_root(struct cfg_ctx *c, yaml_node_t *v, void *obj, const struct cfg_key *k);

#define ADDR(n, T, f, fam)   { n, mesh_key_addr, CFG_K_FN, offsetof(T, f), fam, 0 }
#define PREFIX(n, T, f, fam) { n, mesh_key_prefix, CFG_K_FN, offsetof(T, f), fam, 0 }
#define NAME(n, T, f) { n, mesh_key_name, CFG_K_FN, offsetof(T, f), 0, 0 }

#endif
