/*
 * mesh/check.c — the rules between the inventory's keys (MESH.md): region
 * subnets, provider slots, anycast addresses, tunnel addresses, retired
 * addresses, route reflectors; and the warnings that are not fatal.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "mesh/mesh.h"

struct chk {
	struct mesh *m;
	char *err;
	size_t errlen;
};

static int fail(struct chk *k, const struct mesh_mark *at, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int fail(struct chk *k, const struct mesh_mark *at, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (!k->errlen)
		return -EINVAL;
	n = snprintf(k->err, k->errlen, "%s:%u:%u: %s: ", k->m->path, at->line,
		     at->col, at->path);
	va_start(ap, fmt);
	if (n >= 0 && (size_t)n < k->errlen)
		vsnprintf(k->err + n, k->errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static int warn(struct chk *k, const struct mesh_mark *at, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int warn(struct chk *k, const struct mesh_mark *at, const char *fmt, ...)
{
	struct mesh *m = k->m;
	char buf[512], **w;
	va_list ap;
	int n;

	n = snprintf(buf, sizeof(buf), "%s:%u:%u: %s: ", m->path, at->line,
		     at->col, at->path);
	va_start(ap, fmt);
	vsnprintf(buf + n, sizeof(buf) - (size_t)n, fmt, ap);
	va_end(ap);
	if (!(w = realloc(m->warnings, (m->n_warnings + 1) * sizeof(*w))))
		return fail(k, at, "out of memory");
	m->warnings = w;
	if (!(w[m->n_warnings] = strdup(buf)))
		return fail(k, at, "out of memory");
	m->n_warnings++;
	return 0;
}

static int b64(char ch)
{
	const char *set = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const char *p = ch ? strchr(set, ch) : NULL;

	return p ? (int)(p - set) : -1;
}

/* 32 bytes: 43 characters and one '=', the last character's low two bits
 * zero. */
bool mesh_wg_key_valid(const char *s)
{
	if (strlen(s) != 44 || s[43] != '=')
		return false;
	for (int i = 0; i < 43; i++)
		if (b64(s[i]) < 0)
			return false;
	return (b64(s[42]) & 3) == 0;
}

bool mesh_prefix_contains(const struct cfg_prefix *p, int family,
			  const uint8_t *addr)
{
	if (p->family != family)
		return false;
	for (int i = 0; i < p->len; i++) {
		uint8_t bit = (uint8_t)(0x80 >> (i % 8));

		if ((p->addr[i / 8] & bit) != (addr[i / 8] & bit))
			return false;
	}
	return true;
}

static bool prefixes_overlap(const struct cfg_prefix *a, const struct cfg_prefix *b)
{
	return mesh_prefix_contains(a, b->family, b->addr) ||
	       mesh_prefix_contains(b, a->family, a->addr);
}

static bool addr_eq(const struct mesh_addr *a, const struct mesh_addr *b)
{
	return a->family && a->family == b->family &&
	       memcmp(a->addr, b->addr, sizeof(a->addr)) == 0;
}

const struct mesh_region *mesh_region_find(const struct mesh *m, const char *name)
{
	for (size_t i = 0; i < m->n_regions; i++)
		if (strcmp(m->regions[i].name, name) == 0)
			return &m->regions[i];
	return NULL;
}

const struct mesh_node *mesh_node_find(const struct mesh *m, const char *name)
{
	for (size_t i = 0; i < m->n_nodes; i++)
		if (strcmp(m->nodes[i].name, name) == 0)
			return &m->nodes[i];
	return NULL;
}

static const struct mesh_provider *provider_find(const struct mesh *m, const char *name)
{
	for (size_t i = 0; i < m->n_providers; i++)
		if (strcmp(m->providers[i].name, name) == 0)
			return &m->providers[i];
	return NULL;
}

/* The service whose anycast address a is, or NULL. */
static const struct mesh_service *anycast_of(const struct mesh *m,
					     const struct mesh_addr *a)
{
	for (size_t i = 0; i < m->n_services; i++)
		for (size_t j = 0; j < m->services[i].addresses.n; j++)
			if (addr_eq(&m->services[i].addresses.items[j], a))
				return &m->services[i];
	return NULL;
}

static int check_regions(struct chk *k)
{
	struct mesh *m = k->m;

	for (size_t i = 0; i < m->n_regions; i++) {
		const struct mesh_region *r = &m->regions[i];
		const struct mesh_prefix *s = &r->subnet;
		bool inside = false;

		for (size_t j = 0; j < i; j++) {
			if (strcmp(m->regions[j].name, r->name) == 0)
				return fail(k, &r->at, "region '%s' is defined twice (first at line %u)",
					    r->name, m->regions[j].at.line);
			if (prefixes_overlap(&m->regions[j].subnet.p, &s->p))
				return fail(k, &s->at, "%s overlaps region %s's %s", s->p.text,
					    m->regions[j].name, m->regions[j].subnet.p.text);
		}
		if (s->p.len != 29)
			return fail(k, &s->at, "a region's subnet is a /29, found %s", s->p.text);
		for (size_t j = 0; j < m->blocks.n; j++)
			inside |= mesh_prefix_contains(&m->blocks.items[j].p, AF_INET, s->p.addr);
		if (!inside)
			return fail(k, &s->at, "%s is outside the mesh's blocks", s->p.text);
	}
	return 0;
}

/* Its slot: the region's /29 plus the provider's offset. */
static int node_slot(struct chk *k, struct mesh_node *n)
{
	const struct mesh_provider *p = n->prov;
	const struct mesh_region *r = n->reg;
	const struct mesh_service *svc;
	uint32_t base;

	if (p->slot >= MESH_SLOTS)
		return fail(k, &n->provider_at, "provider %s's slot +%u is outside region %s's /29 %s",
			    p->name, p->slot, r->name, r->subnet.p.text);
	if (p->slot == 0 || p->slot == MESH_SLOTS - 1)
		return fail(k, &n->provider_at, "provider %s's slot +%u is not a host address of region %s's /29 %s",
			    p->name, p->slot, r->name, r->subnet.p.text);
	memcpy(&base, r->subnet.p.addr, 4);
	base = htonl(ntohl(base) + p->slot);
	n->slot.family = AF_INET;
	memcpy(n->slot.addr, &base, 4);
	inet_ntop(AF_INET, n->slot.addr, n->slot.text, sizeof(n->slot.text));
	n->slot.at = n->provider_at;
	if ((svc = anycast_of(k->m, &n->slot)))
		return fail(k, &n->provider_at, "%s is %s's +%u slot (%s) and the anycast address of service %s; no node may be given it",
			    n->slot.text, r->name, p->slot, p->name, svc->name);
	return 0;
}

static int check_retired(struct chk *k, const struct mesh_addr *a, const char *what)
{
	for (size_t i = 0; i < k->m->retired.n; i++)
		if (addr_eq(&k->m->retired.items[i], a))
			return fail(k, &a->at, "%s %s is retired (line %u) and never reused",
				    what, a->text, k->m->retired.items[i].at.line);
	return 0;
}

static int check_tunnel(struct chk *k, const struct mesh_addr *a,
			const struct mesh_prefix *range, size_t idx,
			size_t off)
{
	int rc;

	if (!a->family)
		return 0;
	if (!mesh_prefix_contains(&range->p, a->family, a->addr))
		return fail(k, &a->at, "%s is outside the tunnel range %s", a->text,
			    range->p.text);
	for (size_t j = 0; j < idx; j++) {
		const struct mesh_node *o = &k->m->nodes[j];
		const struct mesh_addr *b = (const void *)((const char *)o + off);

		if (addr_eq(a, b))
			return fail(k, &a->at, "%s is already node %s's tunnel address (line %u)",
				    a->text, o->name, b->at.line);
	}
	if ((rc = check_retired(k, a, "tunnel address")))
		return rc;
	return 0;
}

static int check_node(struct chk *k, size_t i)
{
	struct mesh *m = k->m;
	struct mesh_node *n = &m->nodes[i];
	const struct mesh_service *svc;
	int rc;

	for (size_t j = 0; j < i; j++)
		if (strcmp(m->nodes[j].name, n->name) == 0)
			return fail(k, &n->at, "node '%s' is defined twice (first at line %u)",
				    n->name, m->nodes[j].at.line);
	if (!(n->reg = mesh_region_find(m, n->region)))
		return fail(k, &n->at, "node %s: region '%s' is not defined", n->name, n->region);
	if (!(n->prov = provider_find(m, n->provider)))
		return fail(k, &n->provider_at, "provider '%s' is not defined", n->provider);
	if (n->upstream) {
		bool found = false;

		for (size_t j = 0; j < m->n_upstreams; j++)
			found |= strcmp(m->upstreams[j].name, n->upstream) == 0;
		if (!found)
			return fail(k, &n->at, "node %s: upstream '%s' is not defined",
				    n->name, n->upstream);
	}
	if ((rc = node_slot(k, n)))
		return rc;
	for (size_t j = 0; j < i; j++)
		if (addr_eq(&m->nodes[j].slot, &n->slot))
			return fail(k, &n->provider_at, "slot %s is already node %s's (line %u)",
				    n->slot.text, m->nodes[j].name, m->nodes[j].at.line);
	if ((rc = check_retired(k, &n->slot, "slot")))
		return rc;
	if (n->public_ipv4.family && (svc = anycast_of(m, &n->public_ipv4)))
		return fail(k, &n->public_ipv4.at, "%s is the anycast address of service %s; no node may be given it",
			    n->public_ipv4.text, svc->name);
	if ((rc = check_tunnel(k, &n->tunnel_ipv4, &m->tunnel.ipv4, i,
			       offsetof(struct mesh_node, tunnel_ipv4))) ||
	    (rc = check_tunnel(k, &n->tunnel_ipv6, &m->tunnel.ipv6, i,
			       offsetof(struct mesh_node, tunnel_ipv6))))
		return rc;
	if (n->wireguard_public_key && !n->public_ipv4.family &&
	    (rc = warn(k, &n->key_at, "node %s has a WireGuard key but no public_ipv4: the other nodes cannot reach it, and their firewalls drop its packets",
		       n->name)))
		return rc;
	return 0;
}

static int check_reflectors(struct chk *k)
{
	struct mesh *m = k->m;
	size_t n_rr = 0;

	for (size_t i = 0; i < m->n_nodes; i++)
		n_rr += m->nodes[i].route_reflector;
	if (m->n_nodes && !n_rr)
		return fail(k, &m->nodes[0].at, "no node is a route reflector (route_reflector: true)");
	for (size_t i = 0; i < m->n_nodes; i++) {
		const struct mesh_node *n = &m->nodes[i], *r;

		if (!n->reflector)
			continue;
		if (!(r = mesh_node_find(m, n->reflector)))
			return fail(k, &n->reflector_at, "reflector '%s' is not a node", n->reflector);
		if (r == n)
			return fail(k, &n->reflector_at, "a node cannot be its own reflector");
		if (!r->route_reflector)
			return fail(k, &n->reflector_at, "node %s is not a route reflector (route_reflector: true)",
				    r->name);
	}
	return 0;
}

/* The Internet drops longer routes: an upstream alone would carry them. */
static int warn_announce(struct chk *k)
{
	struct mesh *m = k->m;
	const struct mesh_upstream *ebgp = NULL;
	int rc = 0;

	for (size_t i = 0; i < m->n_upstreams && !ebgp; i++)
		if (m->upstreams[i].asn != m->asn)
			ebgp = &m->upstreams[i];
	for (size_t i = 0; ebgp && !rc && i < m->n_services; i++)
		for (size_t j = 0; !rc && j < m->services[i].announce.n; j++) {
			const struct mesh_prefix *p = &m->services[i].announce.items[j];
			unsigned max = p->p.family == AF_INET ? 24 : 48;

			if (p->p.len > max)
				rc = warn(k, &p->at, "%s is longer than /%u: the Internet drops it, only upstream %s would carry it; announce the covering /%u",
					  p->p.text, max, ebgp->name, max);
		}
	return rc;
}

/* A service announces inside our blocks, and what it announces carries
 * its addresses: an address outside every announced prefix is reached by
 * nobody. */
static int check_services(struct chk *k)
{
	struct mesh *m = k->m;

	for (size_t i = 0; i < m->n_services; i++) {
		const struct mesh_service *s = &m->services[i];

		for (size_t j = 0; j < s->announce.n; j++) {
			const struct mesh_prefix *p = &s->announce.items[j];
			bool inside = false;

			for (size_t b = 0; b < m->blocks.n && !inside; b++)
				inside = m->blocks.items[b].p.family == p->p.family &&
					 m->blocks.items[b].p.len <= p->p.len &&
					 mesh_prefix_contains(&m->blocks.items[b].p, p->p.family, p->p.addr);
			if (!inside)
				return fail(k, &p->at, "%s is outside the mesh's blocks: the upstream would refuse it, or worse, carry it",
					    p->p.text);
		}
		for (size_t j = 0; j < s->addresses.n; j++) {
			const struct mesh_addr *a = &s->addresses.items[j];
			bool covered = false;

			for (size_t q = 0; q < s->announce.n && !covered; q++)
				covered = mesh_prefix_contains(&s->announce.items[q].p, a->family, a->addr);
			if (!covered)
				return fail(k, &a->at, "service %s's address %s is in none of its announced prefixes: no user would reach it",
					    s->name, a->text);
		}
	}
	return 0;
}

int mesh_check(struct mesh *m, char *err, size_t errlen)
{
	struct chk k = { m, err, errlen };
	int rc;

	if ((rc = check_regions(&k)))
		return rc;
	for (size_t i = 0; i < m->n_nodes; i++)
		if ((rc = check_node(&k, i)))
			return rc;
	if ((rc = check_reflectors(&k)) || (rc = check_services(&k)) || (rc = warn_announce(&k)))
		return rc;
	for (size_t i = 0; i < m->n_regions; i++) {
		bool used = false;

		for (size_t j = 0; j < m->n_nodes; j++)
			used |= m->nodes[j].reg == &m->regions[i];
		if (!used && (rc = warn(&k, &m->regions[i].at, "region %s has no nodes",
					m->regions[i].name)))
			return rc;
	}
	return 0;
}
