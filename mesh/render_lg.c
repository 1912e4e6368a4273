/*
 * mesh/render_lg.c — a node's meshlg.yaml (meshlg(8)): the looking glass
 * listens on the node's tunnel addresses at mesh.looking_glass.port,
 * answers only the tunnel prefixes, reads the node's BIRD socket, and
 * knows each service's announced prefixes and community sets and each
 * node's BIRD router id (its slot address, as render_bird.c writes it),
 * so that it can tell who announces what.
 */
#include <stdio.h>

#include "mesh/render.h"

static void put_comms(FILE *f, const char *name, const struct cfg_communities *set, bool last)
{
	fprintf(f, "%s: [", name);
	for (size_t i = 0; i < set->n; i++) {
		const struct cfg_community *c = &set->items[i];

		if (c->large)
			fprintf(f, "%s\"%u:%u:%u\"", i ? ", " : "", c->v[0], c->v[1], c->v[2]);
		else
			fprintf(f, "%s\"%u:%u\"", i ? ", " : "", c->v[0], c->v[1]);
	}
	fprintf(f, "]%s", last ? "" : ", ");
}

int mesh_render_lg(FILE *f, const struct mesh *m, const struct mesh_node *n)
{
	char sock[512];
	const char *sep = "";

	mesh_node_path(n, MESH_BIRD_SOCKET, sock, sizeof(sock));
	fprintf(f, "# meshlg, the looking glass on %s, rendered by meshctl from the mesh\n"
		"# inventory. Do not edit here: change the inventory, then `meshctl apply`.\n"
		"# Check with `meshlg -t -c` on this file.\n", n->name);
	fprintf(f, "node: %s\nlisten: [", n->name);
	if (n->tunnel_ipv4.family) {
		fprintf(f, "\"%s:%u\"", n->tunnel_ipv4.text, m->looking_glass_port);
		sep = ", ";
	}
	if (n->tunnel_ipv6.family)
		fprintf(f, "%s\"[%s]:%u\"", sep, n->tunnel_ipv6.text, m->looking_glass_port);
	fputs("]\n# from the mesh's tunnel addresses only (MESH.md)\nallow: [", f);
	sep = "";
	if (m->tunnel.ipv4.p.family) {
		fprintf(f, "\"%s\"", m->tunnel.ipv4.p.text);
		sep = ", ";
	}
	if (m->tunnel.ipv6.p.family)
		fprintf(f, "%s\"%s\"", sep, m->tunnel.ipv6.p.text);
	fprintf(f, "]\nbird: {socket: %s}\n", sock);
	fputs("limits: {timeout: 2s, cache: 250ms, rate: 20, burst: 40, concurrency: 32, per_source: 8, "
	      "reply_max: 4194304}\n", f);
	fputs("services:\n", f);
	for (size_t i = 0; i < m->n_services; i++) {
		const struct mesh_service *s = &m->services[i];

		fprintf(f, "  - name: %s\n    prefixes: [", s->name);
		for (size_t j = 0; j < s->announce.n; j++)
			fprintf(f, "%s\"%s\"", j ? ", " : "", s->announce.items[j].p.text);
		fputs("]\n    communities: {", f);
		put_comms(f, "up", &s->communities[CFG_COMM_UP], false);
		put_comms(f, "degraded", &s->communities[CFG_COMM_DEGRADED], false);
		put_comms(f, "draining", &s->communities[CFG_COMM_DRAINING], true);
		fputs("}\n", f);
	}
	fputs("nodes:\n", f);
	for (size_t i = 0; i < m->n_nodes; i++)
		fprintf(f, "  - {name: %s, router_id: %s}\n", m->nodes[i].name, m->nodes[i].slot.text);
	return 0;
}
