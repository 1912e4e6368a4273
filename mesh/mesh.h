/*
 * mesh/mesh.h — the mesh inventory (mesh.yaml, see MESH.md): its loader on
 * config/'s strict walker, the semantic checks, and the address plan.
 *
 *   load.c     the key tables: mesh.yaml into struct mesh
 *   values.c   addresses, prefixes, names; secrets refused (with load.h)
 *   check.c    the rules between keys: slots, tunnel addresses, reflectors
 *   plan.c     one snapshot of the plan, rendered as text or JSON
 *   cloudinit.c  a new node's cloud-init user-data, with mesh/bootstrap.sh
 *   meshctl.c  the command-line tool (check, plan)
 *
 * Data flow: mesh.yaml ──> mesh_load() ──> struct mesh (checked, immutable)
 *                                            └──> mesh_plan_build() ──> text | JSON
 */
#ifndef HEALTHD_MESH_MESH_H
#define HEALTHD_MESH_MESH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <jansson.h>

#include "config/config.h"

/* Where a value was written, for errors found after the walk. */
struct mesh_mark {
	unsigned line, col;
	char path[256];              /* as config/'s walker names it */
};

struct mesh_prefix {
	struct cfg_prefix p;
	struct mesh_mark at;
};

struct mesh_prefixes {
	struct mesh_prefix *items;
	size_t n;
};

/* A single address (no length). */
struct mesh_addr {
	int family;                  /* AF_INET or AF_INET6 */
	uint8_t addr[16];
	char text[48];
	struct mesh_mark at;
};

struct mesh_addrs {
	struct mesh_addr *items;
	size_t n;
};

struct mesh_tunnel {
	char *interface;
	unsigned port;
	uint64_t keepalive_ms;       /* WireGuard persistent keepalive; 1s */
	struct mesh_prefix ipv4, ipv6;
};

struct mesh_upstream {
	char *name;
	unsigned asn;
	struct mesh_addr neighbor_ipv4, neighbor_ipv6;
	unsigned multihop;
	char *password_file;
};

struct mesh_provider {
	char *name;
	unsigned slot;               /* offset in a region's /29 */
	struct mesh_mark at;
};

struct mesh_service {
	char *name;
	struct mesh_addrs addresses;     /* anycast, on every node */
	struct mesh_prefixes announce;
	struct mesh_mark at;
	struct cfg_communities communities[CFG_COMM_SETS];
	size_t n_checks;             /* checked as healthd.yaml's, kept there */
	bool has_guard;              /* guard: given; rendered into healthd.yaml */
	struct cfg_guard guard;      /* healthd.yaml's defaults where not given */
};

struct mesh_region {
	char *name;
	struct mesh_prefix subnet;   /* a /29 inside the IPv4 block */
	struct mesh_mark at;
};

struct mesh_node {
	char *name;
	char *region, *provider, *upstream;
	char *reflector;             /* a client's reflector; NULL = every one */
	bool route_reflector;
	struct mesh_addr public_ipv4, tunnel_ipv4, tunnel_ipv6;
	char *wireguard_public_key;  /* NULL before enrolment */
	char *tunnel_interface;      /* NULL: the mesh's tunnel.interface */
	char *root;                  /* where the node's files live; "/" */
	struct mesh_mark at, provider_at, reflector_at, key_at;
	/* filled in by the checks */
	const struct mesh_region *reg;
	const struct mesh_provider *prov;
	struct mesh_addr slot;       /* region's /29 + provider offset */
};

struct mesh {
	char *path;
	unsigned asn;
	struct mesh_prefixes blocks, admin;
	struct mesh_tunnel tunnel;
	unsigned looking_glass_port;
	struct mesh_upstream *upstreams;
	size_t n_upstreams;
	struct mesh_provider *providers;
	size_t n_providers;
	struct mesh_service *services;
	size_t n_services;
	struct mesh_region *regions;
	size_t n_regions;
	struct mesh_node *nodes;
	size_t n_nodes;
	struct mesh_addrs retired;
	char **warnings;             /* "FILE:LINE:COL: text", not fatal */
	size_t n_warnings;
	struct config *checks;       /* the services' healthd checks */
};

#define MESH_SLOTS 8                 /* addresses in a region's /29 */

/* ---- load.c ---- */

/* NULL with "FILE:LINE:COL: KEY: text" in err on any error. */
struct mesh *mesh_load(const char *path, char *err, size_t errlen);
struct mesh *mesh_load_string(const char *name, const char *yaml, size_t len,
			      char *err, size_t errlen);
void mesh_free(struct mesh *m);
int mesh_parse_addr(const char *s, struct mesh_addr *a);
bool mesh_ifname_valid(const char *s);
/* The 32 bytes of a WireGuard key in base64 (44 characters). */
bool mesh_wg_key_valid(const char *s);

/* An enrolled node's key (and, when the inventory names none, its public
 * address) laid over the inventory, as meshd and `meshctl --enrolled` see
 * it. -ENOENT: no such node; -EINVAL: not a key. *key_replaced: the
 * inventory had another key. */
int mesh_overlay_node(struct mesh *m, const char *node, const char *public_key,
		      const char *external_ip, bool *key_replaced);

/* ---- check.c ---- */

/* Every rule between keys; the first broken one into err. Adds warnings. */
int mesh_check(struct mesh *m, char *err, size_t errlen);
bool mesh_prefix_contains(const struct cfg_prefix *p, int family,
			  const uint8_t *addr);
const struct mesh_region *mesh_region_find(const struct mesh *m, const char *name);
const struct mesh_node *mesh_node_find(const struct mesh *m, const char *name);

/* ---- plan.c ---- */

struct mesh_plan_slot {
	unsigned offset;
	char address[48];
	const char *provider;        /* NULL: no provider has this offset */
	const char *node;            /* NULL: free */
	const char *anycast;         /* the service whose address this is */
};

struct mesh_plan_region {
	const char *name;
	const char *subnet;
	struct mesh_plan_slot slots[MESH_SLOTS];
	size_t used, free;
};

struct mesh_plan_node {
	const struct mesh_node *node;
	const char *role;            /* "reflector" or "client" */
	const char **peers;          /* a client's reflectors, a reflector's clients */
	size_t n_peers;
};

struct mesh_plan {
	const struct mesh *mesh;
	struct mesh_plan_region *regions;
	size_t n_regions;
	struct mesh_plan_node *nodes;
	size_t n_nodes;
};

int mesh_plan_build(const struct mesh *m, struct mesh_plan *p);
void mesh_plan_free(struct mesh_plan *p);
void mesh_plan_text(FILE *f, const struct mesh_plan *p);
/* 0, or -ENOMEM. */
int mesh_plan_json(FILE *f, const struct mesh_plan *p);

/* ---- render.c ---- */

enum mesh_tool {
	MESH_TOOL_NONE,
	MESH_TOOL_BIRD,              /* bird -p -c */
	MESH_TOOL_NFT,               /* nft -c -f, inside unshare -n */
	MESH_TOOL_HEALTHD,           /* healthd -t -c */
};

/* The per-node file names, relative to the node's root. */
#define MESH_BIRD_CONF "etc/bird/bird.conf"
#define MESH_BIRD_SOCKET "run/bird/bird.ctl"
#define MESH_HEALTHD_INCLUDE "var/lib/healthd/bird.conf"   /* the package's tmpfiles.d makes it */
#define MESH_HEALTHD_CONF "etc/healthd/healthd.yaml"
#define MESH_HEALTHD_SOCKET "run/healthd/healthd.sock"
#define MESH_NFT_CONF "etc/nftables.d/healthd-mesh.nft"
#define MESH_LG_CONF "etc/healthd/meshlg.yaml"

struct mesh_file {
	char *path;                  /* relative to the node's root */
	char *data;
	size_t len;
	unsigned mode;
	enum mesh_tool tool;
};

struct mesh_files {
	const struct mesh *mesh;
	const struct mesh_node *node;
	struct mesh_file *items;
	size_t n;
};

/* Every file of node n, in a fixed order. 0 or -ENOMEM. */
int mesh_render_node(const struct mesh *m, const struct mesh_node *n,
		     struct mesh_files *out);
void mesh_files_free(struct mesh_files *f);
const struct mesh_file *mesh_files_find(const struct mesh_files *f, const char *path);

/* ---- stage.c ---- */

struct mesh_tools {
	const char *bird, *nft, *unshare, *healthd;   /* NULL: not found; "": skip */
	char found[4][512];          /* where PATH had them */
};

/* The tools from the environment (MESHCTL_BIRD, …) or PATH, healthd
 * beside argv0 first. */
void mesh_tools_default(struct mesh_tools *t, const char *argv0);
/* f into dir (made, mode 0755); durable only after a syncfs(). */
int mesh_files_write(const struct mesh_files *f, const char *dir, char *err, size_t errlen);
/* The files in dir (as written by mesh_files_write) through the real
 * tools. stubs: a directory for stand-ins of included files that do not
 * exist here (the healthd include, the upstream password); NULL = the
 * includes must exist. 0, or -1 with the tool's own words in err. */
/* The node's firewall as JSON: its sets, its accept rules in order, the
 * policy, and the nft text itself (render_net.c writes both at once). */
json_t *mesh_firewall_json(const struct mesh *m, const struct mesh_node *n);
int mesh_files_validate(const struct mesh_files *f, const char *dir,
			const struct mesh_tools *t, const char *stubs,
			char *err, size_t errlen);
/* Write f into a new dir/.NAME.XXXXXX (its path into stage) and check it
 * there; removed again on failure. */
int mesh_stage_tree(const struct mesh_files *f, const char *dir,
		    const struct mesh_tools *t, char *stage, size_t stagelen,
		    char *err, size_t errlen);
/* The staged tree trades places with dir/NAME in one rename (renameat2
 * RENAME_EXCHANGE); the old tree is removed. dir/NAME that is not a
 * directory (a symbolic link) is refused. */
int mesh_swap_tree(const char *stage, const char *name, char *err, size_t errlen);
void mesh_stage_drop(const char *stage);
/* Every staged file on disk (one syncfs() of the file system), before any
 * tree is swapped in. */
int mesh_stage_sync(const char *stage, char *err, size_t errlen);
/* Both: render, validate, swap. */
int mesh_render_tree(const struct mesh_files *f, const char *dir,
		     const struct mesh_tools *t, char *err, size_t errlen);

/* ---- apply.c, addnode.c ---- */

struct mesh_apply_opts {
	const char *root;            /* DESTDIR-like prefix; "/" */
	const char *bird_socket;     /* NULL: the node's run/bird/bird.ctl */
	const struct mesh_tools *tools;
	const char *healthctl;
	unsigned timeout_s;          /* BIRD undoes an unconfirmed configure then */
	unsigned wait_s;             /* for the BGP sessions to come back */
};

/* Unified diffs of what would change under root; 1 changed, 0 same, -1. */
int mesh_diff(const struct mesh_files *f, const char *root, FILE *out);
/* 0 applied; 1 with the reason on stderr, and nothing left changed. */
int mesh_apply(const struct mesh_files *f, const struct mesh_apply_opts *o, FILE *out);
/* The entry of a new node, checked against the inventory's text. */
int mesh_add_node(const struct mesh *m, const char *yaml, size_t yaml_len,
		  const char *region, const char *provider, const char *name,
		  const char *upstream, FILE *out, char *err, size_t errlen);

/* ---- cloudinit.c ---- */

struct mesh_cloudinit_opts {
	const char *token;           /* the one-time enrolment token */
	const char *api;             /* https://HOST[:PORT][/PREFIX] of meshd */
	const char *pin;             /* sha256//BASE64 of meshd's key, or BASE64 */
	const char *metadata;        /* NULL: the bootstrap's default; "none" */
	const char *package_name;    /* NULL: "healthd" from the archive */
	const char *package_url;     /* a .deb to fetch instead, with: */
	const char *package_sha256;
};

/* #cloud-config user-data of node `node` to f: 0, or -1 with the reason
 * (an unknown node, a bad option) in err and nothing written. */
int mesh_cloudinit(FILE *f, const struct mesh *m, const char *node,
		   const struct mesh_cloudinit_opts *o, char *err, size_t errlen);
int mesh_cloudinit_check_token(const char *token, char *err, size_t errlen);
int mesh_cloudinit_check_api(const char *url, char *err, size_t errlen);
int mesh_cloudinit_check_pin(const char *pin, char *err, size_t errlen);

/* ---- fleet.c ---- */

/* `meshctl fleet --lg URL [--json]`: argv as main's; the exit status. */
int mesh_fleet_cmd(int argc, char **argv);

/* mesh/bootstrap.sh, built in ($(BUILD)/gen/bootstrap.c); NUL-terminated. */
extern const char mesh_bootstrap_script[];
extern const size_t mesh_bootstrap_script_len;

#endif
