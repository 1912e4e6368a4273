/*
 * mesh/render_net.c — a node's network files: WireGuard (wg(8)'s format
 * for `wg syncconf`, and systemd-networkd's .netdev/.network), the dummy
 * interface with the anycast addresses, and the nftables ruleset of
 * MESH.md's security model.
 *
 * No private key is ever written: networkd reads it with PrivateKeyFile=;
 * wg(8)'s file has no [Interface] PrivateKey, so it is given to syncconf
 * with the key put in (syncconf would clear a key the file leaves out):
 * meshctl apply does that through a pipe.
 */
#include <stdio.h>
#include <string.h>

#include "mesh/render.h"

#define ANYCAST_IF "anycast0"

static unsigned keepalive_s(const struct mesh *m)
{
	return (unsigned)(m->tunnel.keepalive_ms / 1000);
}

static void put_peer(FILE *f, const struct mesh *m, const struct mesh_node *o,
		     bool networkd)
{
	fprintf(f, "\n# %s (region %s)\n%s\n", o->name, o->region,
		networkd ? "[WireGuardPeer]" : "[Peer]");
	fprintf(f, "PublicKey = %s\n", o->wireguard_public_key);
	if (o->public_ipv4.family)
		fprintf(f, "Endpoint = %s:%u\n", o->public_ipv4.text, m->tunnel.port);
	fprintf(f, "AllowedIPs = %s/32", o->tunnel_ipv4.text);
	if (o->tunnel_ipv6.family)
		fprintf(f, ", %s/128", o->tunnel_ipv6.text);
	fprintf(f, "\nPersistentKeepalive = %u\n", keepalive_s(m));
}

static void put_peers(FILE *f, const struct mesh *m, const struct mesh_node *n,
		      bool networkd)
{
	for (size_t i = 0; i < m->n_nodes; i++) {
		const struct mesh_node *o = &m->nodes[i];

		if (o == n)
			continue;
		if (!o->wireguard_public_key) {
			fprintf(f, "\n# %s: not enrolled yet (no wireguard_public_key)\n", o->name);
			continue;
		}
		put_peer(f, m, o, networkd);
	}
}

int mesh_render_wg(FILE *f, const struct mesh *m, const struct mesh_node *n)
{
	char key[512];

	mesh_node_path(n, "etc/wireguard/", key, sizeof(key));
	fprintf(f, "# WireGuard %s on %s, rendered by meshctl; `meshctl apply` loads it.\n"
		"# The private key stays in %s%s.key on the node. `wg syncconf` clears\n"
		"# a key its file leaves out: apply hands it this file with the key\n"
		"# added, through a pipe. By hand: wg addconf, or wg set %s private-key.\n"
		"[Interface]\nListenPort = %u\n",
		mesh_node_ifname(m, n), n->name, key, mesh_node_ifname(m, n),
		mesh_node_ifname(m, n), m->tunnel.port);
	put_peers(f, m, n, false);
	return 0;
}

int mesh_render_wg_netdev(FILE *f, const struct mesh *m, const struct mesh_node *n)
{
	char key[512], rel[64];

	snprintf(rel, sizeof(rel), "etc/wireguard/%s.key", mesh_node_ifname(m, n));
	mesh_node_path(n, rel, key, sizeof(key));
	fprintf(f, "# The WireGuard mesh on %s (systemd-networkd); rendered by meshctl.\n"
		"# The node made its own key at first boot; it never leaves it.\n"
		"[NetDev]\nName = %s\nKind = wireguard\n"
		"Description = mesh tunnel of AS %u\n\n"
		"[WireGuard]\nListenPort = %u\nPrivateKeyFile = %s\n",
		n->name, mesh_node_ifname(m, n), m->asn, m->tunnel.port, key);
	put_peers(f, m, n, true);
	return 0;
}

int mesh_render_wg_network(FILE *f, const struct mesh *m, const struct mesh_node *n)
{
	fprintf(f, "# The node's tunnel addresses; rendered by meshctl.\n"
		"[Match]\nName = %s\n\n[Network]\n"
		"Address = %s/%u\n",
		mesh_node_ifname(m, n), n->tunnel_ipv4.text, m->tunnel.ipv4.p.len);
	if (n->tunnel_ipv6.family)
		fprintf(f, "Address = %s/%u\n", n->tunnel_ipv6.text, m->tunnel.ipv6.p.len);
	return 0;
}

int mesh_render_anycast_netdev(FILE *f, const struct mesh *m, const struct mesh_node *n)
{
	(void)m;
	fprintf(f, "# The anycast addresses live on a dummy interface of %s; rendered by meshctl.\n"
		"[NetDev]\nName = " ANYCAST_IF "\nKind = dummy\n", n->name);
	return 0;
}

int mesh_render_anycast_network(FILE *f, const struct mesh *m, const struct mesh_node *n)
{
	(void)n;
	fputs("# The services' anycast addresses; rendered by meshctl.\n"
	      "[Match]\nName = " ANYCAST_IF "\n\n[Network]\n", f);
	for (size_t s = 0; s < m->n_services; s++)
		for (size_t i = 0; i < m->services[s].addresses.n; i++) {
			const struct mesh_addr *a = &m->services[s].addresses.items[i];

			fprintf(f, "Address = %s/%u\n", a->text, a->family == AF_INET ? 32 : 128);
		}
	return 0;
}

/* ---- nftables ---- */

/* A set of addresses (or prefixes, with interval) of one family. */
struct nset {
	FILE *f;
	bool first;
};

static void set_open(struct nset *s, FILE *f, const char *name, int family, bool interval)
{
	s->f = f;
	s->first = true;
	fprintf(f, "\tset %s {\n\t\ttype %s;\n", name, family == AF_INET ? "ipv4_addr" : "ipv6_addr");
	if (interval)
		fputs("\t\tflags interval;\n", f);
}

static void set_add(struct nset *s, const char *text)
{
	fprintf(s->f, "%s%s", s->first ? "\t\telements = { " : ", ", text);
	s->first = false;
}

static void set_close(struct nset *s)
{
	fputs(s->first ? "\t}\n" : " }\n\t}\n", s->f);
}

static void prefix_set(FILE *f, const char *name, const struct mesh_prefixes *p, int family)
{
	struct nset s;

	set_open(&s, f, name, family, true);
	for (size_t i = 0; i < p->n; i++)
		if (p->items[i].p.family == family)
			set_add(&s, p->items[i].p.text);
	set_close(&s);
}

int mesh_render_nft(FILE *f, const struct mesh *m, const struct mesh_node *n)
{
	const struct mesh_upstream *u = mesh_upstream_find(m, n->upstream);
	const char *ifname = mesh_node_ifname(m, n);
	struct nset s;

	fprintf(f, "#!/usr/sbin/nft -f\n"
		"# The firewall of %s (MESH.md's security model); rendered by meshctl.\n"
		"# Only the table healthd_mesh is replaced: other tables stay. A packet\n"
		"# this table drops is dropped whatever another table says.\n"
		"#   anycast addresses   TCP 80, 443 from anywhere\n"
		"#   looking glass       TCP %u from tunnel addresses on %s only\n"
		"#   SSH                 TCP 22 from the admin prefixes only\n"
		"#   BGP                 TCP 179 from the upstream's neighbour and, on %s, the mesh\n"
		"#   WireGuard           UDP %u from the mesh nodes' public addresses only\n"
		"#   BFD                 UDP 3784, 4784 on %s only\n"
		"#   everything else     dropped; established traffic allowed back\n\n",
		n->name, m->looking_glass_port, ifname, ifname, m->tunnel.port, ifname);
	fputs("table inet healthd_mesh\n"
	      "delete table inet healthd_mesh\n\n"
	      "table inet healthd_mesh {\n", f);

	set_open(&s, f, "anycast_v4", AF_INET, false);
	for (size_t i = 0; i < m->n_services; i++)
		for (size_t j = 0; j < m->services[i].addresses.n; j++)
			if (m->services[i].addresses.items[j].family == AF_INET)
				set_add(&s, m->services[i].addresses.items[j].text);
	set_close(&s);
	set_open(&s, f, "anycast_v6", AF_INET6, false);
	for (size_t i = 0; i < m->n_services; i++)
		for (size_t j = 0; j < m->services[i].addresses.n; j++)
			if (m->services[i].addresses.items[j].family == AF_INET6)
				set_add(&s, m->services[i].addresses.items[j].text);
	set_close(&s);

	set_open(&s, f, "tunnel_v4", AF_INET, true);
	set_add(&s, m->tunnel.ipv4.p.text);
	set_close(&s);
	set_open(&s, f, "tunnel_v6", AF_INET6, true);
	set_add(&s, m->tunnel.ipv6.p.text);
	set_close(&s);
	prefix_set(f, "admin_v4", &m->admin, AF_INET);
	prefix_set(f, "admin_v6", &m->admin, AF_INET6);

	set_open(&s, f, "upstream_v4", AF_INET, false);
	if (u && u->neighbor_ipv4.family)
		set_add(&s, u->neighbor_ipv4.text);
	set_close(&s);
	set_open(&s, f, "upstream_v6", AF_INET6, false);
	if (u && u->neighbor_ipv6.family)
		set_add(&s, u->neighbor_ipv6.text);
	set_close(&s);

	set_open(&s, f, "mesh_nodes_v4", AF_INET, false);
	for (size_t i = 0; i < m->n_nodes; i++)
		if (&m->nodes[i] != n && m->nodes[i].public_ipv4.family)
			set_add(&s, m->nodes[i].public_ipv4.text);
	set_close(&s);

	fprintf(f, "\n\tchain input {\n"
		"\t\ttype filter hook input priority filter; policy drop;\n"
		"\t\tct state established,related accept\n"
		"\t\tct state invalid drop\n"
		"\t\tiif \"lo\" accept\n"
		"\t\t# what IPv4 and IPv6 need to work at all (neighbour discovery, path MTU)\n"
		"\t\ticmp type { destination-unreachable, time-exceeded, parameter-problem } accept\n"
		"\t\ticmpv6 type { destination-unreachable, packet-too-big, time-exceeded, parameter-problem, nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert } accept\n"
		"\t\tip daddr @anycast_v4 tcp dport { 80, 443 } accept\n"
		"\t\tip6 daddr @anycast_v6 tcp dport { 80, 443 } accept\n"
		"\t\tiifname \"%s\" ip saddr @tunnel_v4 tcp dport %u accept\n"
		"\t\tiifname \"%s\" ip6 saddr @tunnel_v6 tcp dport %u accept\n"
		"\t\t# the node's own addresses only: an anycast address answers 80 and 443\n"
		"\t\tip saddr @admin_v4 ip daddr != @anycast_v4 tcp dport 22 accept\n"
		"\t\tip6 saddr @admin_v6 ip6 daddr != @anycast_v6 tcp dport 22 accept\n"
		"\t\tip saddr @upstream_v4 ip daddr != @anycast_v4 tcp dport 179 accept\n"
		"\t\tip6 saddr @upstream_v6 ip6 daddr != @anycast_v6 tcp dport 179 accept\n"
		"\t\tiifname \"%s\" ip saddr @tunnel_v4 tcp dport 179 accept\n"
		"\t\tiifname \"%s\" ip6 saddr @tunnel_v6 tcp dport 179 accept\n"
		"\t\tip saddr @mesh_nodes_v4 udp dport %u accept\n"
		"\t\tiifname \"%s\" udp dport { 3784, 4784 } accept\n"
		"\t\tlimit rate 10/minute burst 5 packets log prefix \"healthd-mesh drop: \" level info\n"
		"\t\tcounter drop\n"
		"\t}\n"
		"}\n",
		ifname, m->looking_glass_port, ifname, m->looking_glass_port,
		ifname, ifname, m->tunnel.port, ifname);
	return 0;
}
