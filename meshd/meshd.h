/*
 * meshd/ — the service-discovery and enrolment API over the mesh inventory
 * (MESH.md, meshd(8)).
 *
 *   conf.c     meshd.yaml on config/'s strict walker
 *   inv.c      the inventory, its hash, the enrolled keys laid over it,
 *              and each node's rendered reply, cached per generation
 *   api.c      the routes, who may call them, the counters
 *   state.c    SQLite: nodes, tokens, the audit log      (state.h)
 *   admin.c    the admin unix socket (meshctl token ...)  (admin.h)
 *   main.c     options, the loop, signals
 *
 * Data flow:
 *   mesh.yaml ──> inv_load() ──> struct inv (mesh + overlay from state)
 *                                   │ render per node, cached until the
 *                                   │ next enrolment or reload
 *   request ──> limit (http/limit.h) ──> route ──> auth (credential | tunnel address) ──> reply
 *   enroll  ──> state (one transaction, committed before the reply) ──> overlay
 */
#ifndef HEALTHD_MESHD_MESHD_H
#define HEALTHD_MESHD_MESHD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "http/limit.h"
#include "http/server.h"
#include "mesh/mesh.h"

#define MESHD_CONF_DEFAULT "/etc/healthd/meshd.yaml"

/* ---- conf.c ---- */

struct meshd_listen {
	char *address;               /* "IP:PORT" */
	char *certificate, *key;     /* PEM files; both or neither */
};

struct meshd_conf {
	char *path;
	char *inventory;
	char *state;
	char *admin_socket;
	struct meshd_listen *listen;
	size_t n_listen;
	uint64_t rate;               /* requests per second per source */
	uint64_t burst;
	uint64_t max_body;           /* bytes */
	uint64_t per_source;         /* connections per source */
};

struct meshd_conf *meshd_conf_load(const char *path, char *err, size_t errlen);
void meshd_conf_free(struct meshd_conf *c);

/* ---- inv.c ---- */

struct mstate;

struct inv {
	struct mesh *m;
	char sha256[65];             /* of the inventory file's bytes */
	time_t loaded;
	uint64_t generation;         /* bumped on every change of the overlay */
	struct inv_cache *cache;     /* per node, n_nodes entries */
	char *src;                   /* the inventory's bytes, for inv_rebuild */
	size_t src_len;
};

/* Loads path and lays the enrolled nodes of st over it; err names why not. */
struct inv *inv_load(const char *path, struct mstate *st, char *err, size_t errlen);
/* The same inventory bytes as old, with the state laid over afresh (after
 * an admin change: a disable applies whatever the file on disk holds). */
struct inv *inv_rebuild(const struct inv *old, struct mstate *st, char *err, size_t errlen);
void inv_free(struct inv *v);
/* Disabled in the state: refused on every path, left out of every peer. */
bool inv_node_disabled(const struct inv *v, const struct mesh_node *n);
/* One enrolled node's key and address over the inventory; drops caches. */
int inv_overlay(struct inv *v, const char *node, const char *public_key,
		const char *external_ip);
/* The node's config reply (JSON, cached); NULL when out of memory. The
 * response is MHD's, refcounted: the caller queues it and does not free it. */
struct MHD_Response *inv_config_reply(struct inv *v, const struct mesh_node *n);
/* A node by name, by its region (when the region has exactly one node: *many
 * set otherwise), by public address, by tunnel address. */
const struct mesh_node *inv_node(const struct inv *v, const char *name);
const struct mesh_node *inv_node_by_region(const struct inv *v, const char *region, bool *many);
const struct mesh_node *inv_node_by_public(const struct inv *v, const char *ip);
const struct mesh_node *inv_node_by_tunnel(const struct inv *v, const struct sockaddr_storage *ss);
/* The inventory itself names n's public_ipv4 (not an enrolment). */
bool inv_public_from_inventory(const struct inv *v, const struct mesh_node *n);
void meshd_sha256_hex(const void *data, size_t len, char out[65]);
/* true when ss is loopback or inside the mesh's tunnel prefixes */
bool inv_plain_ok(const struct inv *v, const struct sockaddr_storage *ss);
json_t *inv_wireguard_json(const struct inv *v, const struct mesh_node *n);
json_t *inv_firewall_json(const struct inv *v, const struct mesh_node *n);

/* ---- api.c ---- */

struct meshd_counters {
	uint64_t requests, errors, refused, rate_limited, enrolled;
};

struct meshd {
	uv_loop_t *loop;
	struct meshd_conf *conf;
	struct inv *inv;
	struct mstate *st;
	struct limiter *lim;
	struct http_server *http;
	struct admin *admin;
	struct meshd_counters n;
	time_t started;
	char pin[80];                /* "sha256//..." of the first TLS listener */
};

enum MHD_Result meshd_route(void *ctx, struct http_request *r);
/* The certificate's public-key pin, curl's --pinnedpubkey form. */
int meshd_tls_pin(const char *cert_pem, char *out, size_t outlen, char *err, size_t errlen);
/* 0 when key_pem is a PEM key and the certificate's; -1 with why not. */
int meshd_tls_pair(const char *cert_pem, const char *key_pem, char *err, size_t errlen);
/* Replaces d->inv with a fresh load; keeps the old one on any error. */
int meshd_reload(struct meshd *d, char *err, size_t errlen);

#endif
