/*
 * mesh/render.h — internals of the renderers (render*.c); not installed.
 */
#ifndef HEALTHD_MESH_RENDER_H
#define HEALTHD_MESH_RENDER_H

#include <sys/socket.h>

#include "mesh/mesh.h"

/* A BGP neighbour of a node over the tunnel. */
struct mesh_bgp_peer {
	const struct mesh_node *node;
	bool rr_client;              /* we reflect for it */
	bool reflector;              /* it reflects for us */
};

/* The node's iBGP neighbours, in inventory order; *n set. -ENOMEM. */
int mesh_bgp_peers(const struct mesh *m, const struct mesh_node *n,
		   struct mesh_bgp_peer **out, size_t *n_out);
const char *mesh_node_ifname(const struct mesh *m, const struct mesh_node *n);
/* n's root joined with rel ("etc/bird/bird.conf"), into buf. */
void mesh_node_path(const struct mesh_node *n, const char *rel, char *buf, size_t len);
const struct mesh_upstream *mesh_upstream_find(const struct mesh *m, const char *name);

/* Each writes one file to f. */
void mesh_render_bird(FILE *f, const struct mesh *m, const struct mesh_node *n,
		      const struct mesh_bgp_peer *peers, size_t n_peers);
void mesh_render_wg(FILE *f, const struct mesh *m, const struct mesh_node *n);
void mesh_render_wg_netdev(FILE *f, const struct mesh *m, const struct mesh_node *n);
void mesh_render_wg_network(FILE *f, const struct mesh *m, const struct mesh_node *n);
void mesh_render_anycast_netdev(FILE *f, const struct mesh *m, const struct mesh_node *n);
void mesh_render_anycast_network(FILE *f, const struct mesh *m, const struct mesh_node *n);
void mesh_render_nft(FILE *f, const struct mesh *m, const struct mesh_node *n,
		     const struct mesh_bgp_peer *peers, size_t n_peers);
/* 0 or -ENOMEM. */
int mesh_render_healthd(FILE *f, const struct mesh *m, const struct mesh_node *n);

#endif
