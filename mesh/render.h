/*
 * mesh/render.h — internals of the renderers (render*.c); not installed.
 */
#ifndef HEALTHD_MESH_RENDER_H
#define HEALTHD_MESH_RENDER_H

#include <sys/socket.h>
#include <sys/types.h>

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

/* ---- stage.c, for apply.c ---- */

/* path and every missing parent, like mkdir -p. 0 or -errno. */
int mesh_mkdirs(const char *path, mode_t mode);
/* All of data to fd, across short writes and EINTR. 0 or -errno. */
int mesh_write_all(int fd, const char *data, size_t len);

/* Each writes one file of node n to f: 0, or -ENOMEM. */
typedef int mesh_render_fn(FILE *f, const struct mesh *m, const struct mesh_node *n);
mesh_render_fn mesh_render_bird, mesh_render_wg, mesh_render_wg_netdev, mesh_render_wg_network,
	mesh_render_anycast_netdev, mesh_render_anycast_network, mesh_render_nft,
	mesh_render_healthd, mesh_render_lg;

#endif
