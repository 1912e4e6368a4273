/*
 * mesh/addnode.c — `meshctl add-node`: the entry of a new node, to paste
 * into the inventory. Its slot is its region's /29 plus its provider's
 * offset; its tunnel addresses are the lowest that no node has and that
 * `retired` does not list, so an address is never handed out twice. The
 * entry is checked by loading the inventory with it appended.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mesh/render.h"

static bool used(const struct mesh *m, int family, const uint8_t *addr)
{
	for (size_t i = 0; i < m->n_nodes; i++) {
		const struct mesh_addr *a = family == AF_INET ? &m->nodes[i].tunnel_ipv4
							      : &m->nodes[i].tunnel_ipv6;

		if (a->family == family && memcmp(a->addr, addr, family == AF_INET ? 4 : 16) == 0)
			return true;
	}
	for (size_t i = 0; i < m->retired.n; i++) {
		const struct mesh_addr *a = &m->retired.items[i];

		if (a->family == family && memcmp(a->addr, addr, family == AF_INET ? 4 : 16) == 0)
			return true;
	}
	return false;
}

/* Host number k of prefix p into out (k < 2^(bits-len)). */
static void host(const struct cfg_prefix *p, uint32_t k, uint8_t *out)
{
	size_t n = p->family == AF_INET ? 4 : 16;

	memcpy(out, p->addr, n);
	for (size_t i = n; i-- > 0 && k; k >>= 8)
		out[i] |= (uint8_t)(k & 0xff);
}

/* Where the block list under a top-level "nodes:" ends: the start of the
 * next top-level key, or the end. */
static size_t insert_at(const char *yaml, size_t len)
{
	bool in_nodes = false;

	for (size_t i = 0; i < len;) {
		size_t eol = i;

		while (eol < len && yaml[eol] != '\n')
			eol++;
		if (in_nodes && eol > i && yaml[i] != ' ' && yaml[i] != '-' && yaml[i] != '#')
			return i;
		if (eol - i >= 6 && strncmp(yaml + i, "nodes:", 6) == 0)
			in_nodes = true;
		i = eol + (eol < len);
	}
	return len;
}

int mesh_add_node(const struct mesh *m, const char *yaml, size_t yaml_len,
		  const char *region, const char *provider, const char *name,
		  const char *upstream, FILE *out, char *err, size_t errlen)
{
	const struct mesh_region *r = mesh_region_find(m, region);
	const struct mesh_provider *p = NULL;
	char auto_name[64], v4[INET_ADDRSTRLEN], v6[INET6_ADDRSTRLEN], slot[INET_ADDRSTRLEN];
	uint32_t hosts = m->tunnel.ipv4.p.len >= 31 ? 0 : (1u << (32 - m->tunnel.ipv4.p.len)) - 2;
	uint8_t a4[16] = { 0 }, a6[16] = { 0 };
	uint32_t k = 0, base;
	char *entry = NULL, *all = NULL;
	size_t entry_len = 0;
	FILE *f;
	struct mesh *check;

	if (!r) {
		snprintf(err, errlen, "no region named '%s'", region);
		return -1;
	}
	for (size_t i = 0; i < m->n_providers; i++)
		if (strcmp(m->providers[i].name, provider) == 0)
			p = &m->providers[i];
	if (!p) {
		snprintf(err, errlen, "no provider named '%s' in providers", provider);
		return -1;
	}
	memcpy(&base, r->subnet.p.addr, 4);
	base = htonl(ntohl(base) + p->slot);
	inet_ntop(AF_INET, &base, slot, sizeof(slot));
	for (size_t i = 0; i < m->n_nodes; i++)
		if (memcmp(m->nodes[i].slot.addr, &base, 4) == 0) {
			snprintf(err, errlen, "region %s's %s slot %s is node %s's already; another provider's slot is free",
				 region, provider, slot, m->nodes[i].name);
			return -1;
		}
	if (!upstream) {
		if (m->n_upstreams == 1)
			upstream = m->upstreams[0].name;
		else if (mesh_upstream_find(m, provider))
			upstream = provider;
		else if (m->n_upstreams) {
			snprintf(err, errlen, "the inventory has %zu upstreams: name one with --upstream",
				 m->n_upstreams);
			return -1;
		}
	}
	if (!name) {
		for (unsigned i = 1; i < 1000; i++) {
			snprintf(auto_name, sizeof(auto_name), "%s%u", region, i);
			if (!mesh_node_find(m, auto_name))
				break;
		}
		name = auto_name;
	}
	if (mesh_node_find(m, name)) {
		snprintf(err, errlen, "node '%s' exists already", name);
		return -1;
	}
	for (k = 1; k <= hosts; k++) {
		host(&m->tunnel.ipv4.p, k, a4);
		host(&m->tunnel.ipv6.p, k, a6);
		if (!used(m, AF_INET, a4) && !used(m, AF_INET6, a6))
			break;
	}
	if (k > hosts) {
		snprintf(err, errlen, "the tunnel range %s has no address left that was never used",
			 m->tunnel.ipv4.p.text);
		return -1;
	}
	inet_ntop(AF_INET, a4, v4, sizeof(v4));
	inet_ntop(AF_INET6, a6, v6, sizeof(v6));
	if (!(f = open_memstream(&entry, &entry_len)))
		goto nomem;
	fprintf(f, "  - name: %s\n    region: %s\n    provider: %s\t\t# %s's /29 + %u = %s\n",
		name, region, provider, region, p->slot, slot);
	if (upstream)
		fprintf(f, "    upstream: %s\n", upstream);
	fprintf(f, "    tunnel_ipv4: %s\n    tunnel_ipv6: %s\n"
		"    # public_ipv4: the provider's address, once the node has one\n"
		"    # wireguard_public_key: written at enrolment; the node makes its own key\n",
		v4, v6);
	if (fclose(f) || !entry)
		goto nomem;
	/* The inventory with the entry at the end of nodes: must check clean. */
	if (!(all = malloc(yaml_len + entry_len + 2)))
		goto nomem;
	{
		size_t at = insert_at(yaml, yaml_len), w;

		memcpy(all, yaml, at);
		w = at;
		if (at && all[at - 1] != '\n')
			all[w++] = '\n';   /* a file without a last newline */
		memcpy(all + w, entry, entry_len);
		memcpy(all + w + entry_len, yaml + at, yaml_len - at);
		w += entry_len + (yaml_len - at);
		all[w] = '\0';
		yaml_len = w - entry_len;
	}
	if (!(check = mesh_load_string(m->path, all, yaml_len + entry_len, err, errlen))) {
		free(all);
		free(entry);
		return -1;
	}
	mesh_free(check);
	free(all);
	fputs(entry, out);
	free(entry);
	return 0;
nomem:
	free(entry);
	snprintf(err, errlen, "out of memory");
	return -1;
}
