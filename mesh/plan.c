/*
 * mesh/plan.c — the address plan of a checked inventory as one snapshot:
 * each region's host slots (provider, node, anycast), each node's addresses,
 * its iBGP role and peers, and what it announces; rendered as a text table
 * or as JSON from the same struct.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "mesh/mesh.h"

/* Host slots of a /29: +1 to +6. */
#define FIRST_SLOT 1
#define LAST_SLOT (MESH_SLOTS - 2)

static const char *anycast_name(const struct mesh *m, const uint8_t *addr)
{
	for (size_t i = 0; i < m->n_services; i++)
		for (size_t j = 0; j < m->services[i].addresses.n; j++) {
			const struct mesh_addr *a = &m->services[i].addresses.items[j];

			if (a->family == AF_INET && !memcmp(a->addr, addr, 4))
				return m->services[i].name;
		}
	return NULL;
}

static void build_region(const struct mesh *m, const struct mesh_region *r,
			 struct mesh_plan_region *pr)
{
	pr->name = r->name;
	pr->subnet = r->subnet.p.text;
	for (unsigned off = FIRST_SLOT; off <= LAST_SLOT; off++) {
		struct mesh_plan_slot *s = &pr->slots[off];
		uint32_t a;

		memcpy(&a, r->subnet.p.addr, 4);
		a = htonl(ntohl(a) + off);
		s->offset = off;
		inet_ntop(AF_INET, &a, s->address, sizeof(s->address));
		for (size_t i = 0; i < m->n_providers && !s->provider; i++)
			if (m->providers[i].slot == off)
				s->provider = m->providers[i].name;
		for (size_t i = 0; i < m->n_nodes && !s->node; i++)
			if (m->nodes[i].reg == r && m->nodes[i].prov->slot == off)
				s->node = m->nodes[i].name;
		s->anycast = anycast_name(m, (const uint8_t *)&a);
		if (s->node)
			pr->used++;
		else if (!s->anycast)
			pr->free++;
	}
}

/* A reflector's clients, or a client's reflectors. */
static int build_peers(const struct mesh *m, const struct mesh_node *n,
		       struct mesh_plan_node *pn)
{
	if (!(pn->peers = calloc(m->n_nodes, sizeof(*pn->peers))))
		return -ENOMEM;
	pn->role = n->route_reflector ? "reflector" : "client";
	for (size_t i = 0; i < m->n_nodes; i++) {
		const struct mesh_node *o = &m->nodes[i];
		bool peer;

		if (o == n)
			continue;
		if (n->route_reflector)
			peer = !o->route_reflector &&
			       (!o->reflector || strcmp(o->reflector, n->name) == 0);
		else
			peer = o->route_reflector &&
			       (!n->reflector || strcmp(n->reflector, o->name) == 0);
		if (peer)
			pn->peers[pn->n_peers++] = o->name;
	}
	return 0;
}

int mesh_plan_build(const struct mesh *m, struct mesh_plan *p)
{
	memset(p, 0, sizeof(*p));
	p->mesh = m;
	p->regions = calloc(m->n_regions + 1, sizeof(*p->regions));
	p->nodes = calloc(m->n_nodes + 1, sizeof(*p->nodes));
	if (!p->regions || !p->nodes)
		goto fail;
	for (; p->n_regions < m->n_regions; p->n_regions++)
		build_region(m, &m->regions[p->n_regions], &p->regions[p->n_regions]);
	for (; p->n_nodes < m->n_nodes; p->n_nodes++) {
		p->nodes[p->n_nodes].node = &m->nodes[p->n_nodes];
		if (build_peers(m, &m->nodes[p->n_nodes], &p->nodes[p->n_nodes]))
			goto fail;
	}
	return 0;
fail:
	mesh_plan_free(p);
	return -ENOMEM;
}

void mesh_plan_free(struct mesh_plan *p)
{
	for (size_t i = 0; p->nodes && i <= p->n_nodes; i++)
		free(p->nodes[i].peers);
	free(p->nodes);
	free(p->regions);
	memset(p, 0, sizeof(*p));
}

/* ---- text ---- */

static const char *or_dash(const char *s)
{
	return s && *s ? s : "-";
}

static void print_list(FILE *f, const char *const *items, size_t n)
{
	if (!n)
		fputs("-", f);
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%s%s", i ? "," : "", items[i]);
}

void mesh_plan_text(FILE *f, const struct mesh_plan *p)
{
	const struct mesh *m = p->mesh;

	fprintf(f, "mesh AS%u, tunnel %s %s on %s port %u\n\n", m->asn,
		m->tunnel.ipv4.p.text, m->tunnel.ipv6.p.text, m->tunnel.interface,
		m->tunnel.port);
	fprintf(f, "%-8s %-18s %4s %4s\n", "REGION", "SUBNET", "USED", "FREE");
	for (size_t i = 0; i < p->n_regions; i++)
		fprintf(f, "%-8s %-18s %4zu %4zu\n", p->regions[i].name,
			p->regions[i].subnet, p->regions[i].used, p->regions[i].free);
	fprintf(f, "\n%-8s %-5s %-16s %-10s %s\n", "REGION", "SLOT", "ADDRESS",
		"PROVIDER", "USE");
	for (size_t i = 0; i < p->n_regions; i++)
		for (unsigned off = FIRST_SLOT; off <= LAST_SLOT; off++) {
			const struct mesh_plan_slot *s = &p->regions[i].slots[off];

			fprintf(f, "%-8s +%-4u %-16s %-10s %s%s\n", p->regions[i].name,
				off, s->address, or_dash(s->provider),
				s->anycast ? "anycast " : s->node ? "node " : "free",
				s->anycast ? s->anycast : s->node ? s->node : "");
		}
	fprintf(f, "\n%-8s %-8s %-16s %-16s %-12s %-16s %-10s %s\n", "NODE",
		"REGION", "SLOT", "PUBLIC", "TUNNEL4", "TUNNEL6", "ROLE", "PEERS");
	for (size_t i = 0; i < p->n_nodes; i++) {
		const struct mesh_plan_node *pn = &p->nodes[i];
		const struct mesh_node *n = pn->node;

		fprintf(f, "%-8s %-8s %-16s %-16s %-12s %-16s %-10s ", n->name,
			n->region, n->slot.text, or_dash(n->public_ipv4.text),
			or_dash(n->tunnel_ipv4.text), or_dash(n->tunnel_ipv6.text),
			pn->role);
		print_list(f, pn->peers, pn->n_peers);
		fputc('\n', f);
	}
	fprintf(f, "\n%-8s %-20s %s\n", "SERVICE", "ANNOUNCED BY", "PREFIXES");
	for (size_t i = 0; i < m->n_services; i++) {
		fprintf(f, "%-8s %-20s ", m->services[i].name, "every node");
		for (size_t j = 0; j < m->services[i].announce.n; j++)
			fprintf(f, "%s%s", j ? "," : "", m->services[i].announce.items[j].p.text);
		fputc('\n', f);
	}
}

/* ---- JSON ---- */

static json_t *str_or_null(const char *s)
{
	return s && *s ? json_string(s) : json_null();
}

static json_t *json_region(const struct mesh_plan_region *r)
{
	json_t *slots = json_array();

	for (unsigned off = FIRST_SLOT; off <= LAST_SLOT; off++) {
		const struct mesh_plan_slot *s = &r->slots[off];

		json_array_append_new(slots, json_pack("{s:I, s:s, s:o, s:o, s:o}",
			"offset", (json_int_t)off, "address", s->address,
			"provider", str_or_null(s->provider), "node", str_or_null(s->node),
			"anycast", str_or_null(s->anycast)));
	}
	return json_pack("{s:s, s:s, s:I, s:I, s:o}", "name", r->name, "subnet",
			 r->subnet, "used", (json_int_t)r->used, "free",
			 (json_int_t)r->free, "slots", slots);
}

static json_t *json_node(const struct mesh *m, const struct mesh_plan_node *pn)
{
	const struct mesh_node *n = pn->node;
	json_t *peers = json_array(), *announce = json_array();

	for (size_t i = 0; i < pn->n_peers; i++)
		json_array_append_new(peers, json_string(pn->peers[i]));
	for (size_t i = 0; i < m->n_services; i++)
		for (size_t j = 0; j < m->services[i].announce.n; j++)
			json_array_append_new(announce,
				json_string(m->services[i].announce.items[j].p.text));
	return json_pack("{s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:s, s:o, s:o}",
			 "name", n->name, "region", n->region, "provider", n->provider,
			 "slot", n->slot.text, "public_ipv4", str_or_null(n->public_ipv4.text),
			 "tunnel_ipv4", str_or_null(n->tunnel_ipv4.text),
			 "tunnel_ipv6", str_or_null(n->tunnel_ipv6.text),
			 "role", pn->role, "peers", peers, "announce", announce);
}

int mesh_plan_json(FILE *f, const struct mesh_plan *p)
{
	json_t *regions = json_array(), *nodes = json_array(), *root;
	int rc;

	for (size_t i = 0; i < p->n_regions; i++)
		json_array_append_new(regions, json_region(&p->regions[i]));
	for (size_t i = 0; i < p->n_nodes; i++)
		json_array_append_new(nodes, json_node(p->mesh, &p->nodes[i]));
	root = json_pack("{s:I, s:s, s:s, s:o, s:o}", "asn", (json_int_t)p->mesh->asn,
			 "tunnel_ipv4", p->mesh->tunnel.ipv4.p.text,
			 "tunnel_ipv6", p->mesh->tunnel.ipv6.p.text,
			 "regions", regions, "nodes", nodes);
	if (!root)
		return -ENOMEM;
	rc = json_dumpf(root, f, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	fputc('\n', f);
	json_decref(root);
	return rc ? -ENOMEM : 0;
}
