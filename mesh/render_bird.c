/*
 * mesh/render_bird.c — a node's bird.conf: the router id, the mesh's
 * blocks as defines, healthd's include, eBGP to the node's upstream
 * (export only what healthd announces, every other route rejected with a
 * reason in BIRD's log), iBGP over the tunnel with ADD-PATH and BFD.
 *
 * Names BIRD will show: upstream_<upstream>_v4/_v6, ibgp_<node>_v4/_v6,
 * mesh_bfd; the filters mesh_to_upstream_v4/_v6, mesh_from_mesh_v4/_v6,
 * mesh_to_mesh. Includes stand on lines of their own (BIRD reads
 * `include` only at the start of a line).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mesh/render.h"

static bool any_family(const struct mesh_prefixes *p, int family)
{
	for (size_t i = 0; i < p->n; i++)
		if (p->items[i].p.family == family)
			return true;
	return false;
}

static bool announces(const struct mesh *m, int family)
{
	for (size_t i = 0; i < m->n_services; i++)
		if (any_family(&m->services[i].announce, family))
			return true;
	return false;
}

/* define NAME = [ a, b ]; with suffix ("+" for "and longer"). */
static void put_set(FILE *f, const char *name, const struct mesh_prefixes *p,
		    int family, const char *suffix)
{
	bool first = true;

	fprintf(f, "define %s = [", name);
	for (size_t i = 0; i < p->n; i++) {
		if (p->items[i].p.family != family)
			continue;
		fprintf(f, "%s %s%s", first ? "" : ",", p->items[i].p.text, suffix);
		first = false;
	}
	fputs(" ];\n", f);
}

static void put_announce_set(FILE *f, const struct mesh *m, int family)
{
	bool first = true;

	fprintf(f, "define MESH_ANNOUNCE_%s = [", family == AF_INET ? "V4" : "V6");
	for (size_t s = 0; s < m->n_services; s++) {
		const struct mesh_prefixes *p = &m->services[s].announce;

		for (size_t i = 0; i < p->n; i++) {
			if (p->items[i].p.family != family)
				continue;
			fprintf(f, "%s %s", first ? "" : ",", p->items[i].p.text);
			first = false;
		}
	}
	fputs(" ];\n", f);
}

static void put_upstream_filter(FILE *f, const struct mesh *m, const char *v)
{
	bool have = announces(m, strcmp(v, "v4") == 0 ? AF_INET : AF_INET6);

	fprintf(f, "# To the upstream: healthd's routes of the announced prefixes, nothing else.\n"
		"filter mesh_to_upstream_%s {\n"
		"\tif !(proto ~ \"healthd_*\") then reject \"not announced by healthd: \", net, \" from \", proto;\n", v);
	if (have)
		fprintf(f, "\tif !(net ~ MESH_ANNOUNCE_%s) then reject \"not an announced prefix of the mesh: \", net;\n"
			"\taccept;\n", strcmp(v, "v4") == 0 ? "V4" : "V6");
	else
		fputs("\treject \"the mesh announces no prefix of this family: \", net;\n", f);
	fputs("}\n\n", f);
}

static void put_mesh_import(FILE *f, const struct mesh *m, const char *v, int family)
{
	fprintf(f, "# From the mesh: routes inside our blocks only.\n"
		"filter mesh_from_mesh_%s {\n", v);
	if (any_family(&m->blocks, family))
		fprintf(f, "\tif net ~ MESH_BLOCKS_%s then accept;\n", strcmp(v, "v4") == 0 ? "V4" : "V6");
	fputs("\treject \"outside the mesh's blocks: \", net, \" from \", proto;\n}\n\n", f);
}

static void put_ibgp(FILE *f, const struct mesh *m, const struct mesh_node *n,
		     const struct mesh_bgp_peer *p, int family)
{
	const char *v = family == AF_INET ? "v4" : "v6";
	const struct mesh_addr *local = family == AF_INET ? &n->tunnel_ipv4 : &n->tunnel_ipv6;
	const struct mesh_addr *peer = family == AF_INET ? &p->node->tunnel_ipv4 : &p->node->tunnel_ipv6;

	fprintf(f, "protocol bgp ibgp_%s_%s {\n", p->node->name, v);
	fprintf(f, "\tdescription \"iBGP %s %s over %s\";\n",
		p->rr_client ? "to the client" : p->reflector ? "to the route reflector" : "to the reflector",
		p->node->name, mesh_node_ifname(m, n));
	fprintf(f, "\tlocal %s as MESH_ASN;\n", local->text);
	fprintf(f, "\tneighbor %s as MESH_ASN;\n", peer->text);
	fputs("\tdirect;\n", f);
	if (p->rr_client)
		fputs("\trr client;\n", f);
	/* a lost tunnel comes back in seconds, not BIRD's default minute */
	fputs("\tbfd on;\n"
	      "\tconnect retry time 5;\n"
	      "\terror wait time 5, 60;\n", f);
	/* A reflector passes routes on with their announcer's next hop, so
	 * every path a client sees names the node it comes from. */
	fprintf(f, "\t%s {\n"
		"\t\timport filter mesh_from_mesh_%s;\n"
		"\t\texport filter %s;\n"
		"%s"
		"\t\tadd paths on;\n"
		"\t};\n"
		"}\n\n",
		family == AF_INET ? "ipv4" : "ipv6", v,
		n->route_reflector ? "mesh_to_mesh" : "mesh_to_reflector",
		n->route_reflector ? "" : "\t\tnext hop self;\n");
}

static void put_ebgp(FILE *f, const struct mesh *m, const struct mesh_upstream *u, int family)
{
	const char *v = family == AF_INET ? "v4" : "v6";
	const struct mesh_addr *a = family == AF_INET ? &u->neighbor_ipv4 : &u->neighbor_ipv6;

	(void)m;
	fprintf(f, "protocol bgp upstream_%s_%s {\n", u->name, v);
	fprintf(f, "\tdescription \"eBGP to %s (AS %u)\";\n", u->name, u->asn);
	fputs("\tlocal as MESH_ASN;\n", f);
	fprintf(f, "\tneighbor %s as %u;\n", a->text, u->asn);
	if (u->multihop)
		fprintf(f, "\tmultihop %u;\n", u->multihop);
	if (u->password_file)
		fprintf(f, "\t# the session's password: `password \"...\";` in a file only this node has\n"
			"include \"%s\";\n", u->password_file);
	fprintf(f, "\t%s {\n"
		"\t\timport none;\n"
		"\t\texport filter mesh_to_upstream_%s;\n"
		"\t};\n"
		"}\n\n", family == AF_INET ? "ipv4" : "ipv6", v);
}

int mesh_render_bird(FILE *f, const struct mesh *m, const struct mesh_node *n)
{
	const struct mesh_upstream *u = mesh_upstream_find(m, n->upstream);
	const char *ifname = mesh_node_ifname(m, n);
	struct mesh_bgp_peer *peers;
	size_t n_peers;
	char path[512];
	bool v6 = n->tunnel_ipv6.family == AF_INET6;

	fprintf(f, "# BIRD on %s (region %s, %s slot %s), rendered by meshctl from the\n"
		"# mesh inventory. Do not edit here: change the inventory, then\n"
		"# `meshctl apply`. Check with `bird -p -c` on this file.\n\n",
		n->name, n->region, n->provider, n->slot.text);
	fputs("log syslog all;\n", f);
	fprintf(f, "router id %s;\n", n->slot.text);
	fputs("timeformat base iso long;\n"
	      "timeformat log iso long;\n"
	      "timeformat protocol iso long;\n"
	      "timeformat route iso long;\n\n", f);

	fprintf(f, "define MESH_ASN = %u;\n", m->asn);
	if (any_family(&m->blocks, AF_INET))
		put_set(f, "MESH_BLOCKS_V4", &m->blocks, AF_INET, "+");
	if (any_family(&m->blocks, AF_INET6))
		put_set(f, "MESH_BLOCKS_V6", &m->blocks, AF_INET6, "+");
	if (announces(m, AF_INET))
		put_announce_set(f, m, AF_INET);
	if (announces(m, AF_INET6))
		put_announce_set(f, m, AF_INET6);
	fputc('\n', f);

	fputs("protocol device {\n\tscan time 10;\n}\n\n", f);
	fputs("# The anycast prefixes are announced, never installed: no kernel protocol.\n\n", f);
	fprintf(f, "protocol bfd mesh_bfd {\n"
		"\tinterface \"%s\" {\n"
		"\t\tmin rx interval 250 ms;\n"
		"\t\tmin tx interval 250 ms;\n"
		"\t\tmultiplier 4;\n"
		"\t};\n"
		"}\n\n", ifname);

	mesh_node_path(n, MESH_HEALTHD_INCLUDE, path, sizeof(path));
	fprintf(f, "# healthd's protocols: healthd_<service>_v4/_v6 and their states.\n"
		"include \"%s\";\n\n", path);

	if (u) {
		if (u->neighbor_ipv4.family)
			put_upstream_filter(f, m, "v4");
		if (u->neighbor_ipv6.family)
			put_upstream_filter(f, m, "v6");
	}
	put_mesh_import(f, m, "v4", AF_INET);
	if (v6)
		put_mesh_import(f, m, "v6", AF_INET6);
	if (n->route_reflector)
		fputs("# To the mesh: our own announcements and what we reflect.\n"
		      "filter mesh_to_mesh {\n"
		      "\tif proto ~ \"healthd_*\" then accept;\n"
		      "\tif source = RTS_BGP then accept;\n"
		      "\treject \"neither healthd's nor learnt from the mesh: \", net, \" from \", proto;\n"
		      "}\n\n", f);
	else
		fputs("# To the reflector: this node's announcements only.\n"
		      "filter mesh_to_reflector {\n"
		      "\tif proto ~ \"healthd_*\" then accept;\n"
		      "\treject \"not announced by healthd: \", net, \" from \", proto;\n"
		      "}\n\n", f);

	if (u && u->neighbor_ipv4.family)
		put_ebgp(f, m, u, AF_INET);
	if (u && u->neighbor_ipv6.family)
		put_ebgp(f, m, u, AF_INET6);
	if (mesh_bgp_peers(m, n, &peers, &n_peers))
		return -ENOMEM;
	for (size_t i = 0; i < n_peers; i++) {
		put_ibgp(f, m, n, &peers[i], AF_INET);
		if (v6 && peers[i].node->tunnel_ipv6.family == AF_INET6)
			put_ibgp(f, m, n, &peers[i], AF_INET6);
	}
	free(peers);
	return 0;
}
