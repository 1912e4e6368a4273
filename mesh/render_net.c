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
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
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

/*
 * One function writes the ruleset as nft text and, when j is given, the
 * same sets and rules as JSON (meshd's /api/v1/firewall/rules): the two
 * cannot drift apart.
 */

/* A set of addresses (or prefixes, with interval) of one family. */
struct nset {
	FILE *f;
	bool first;
	json_t *items;               /* the JSON set's elements, or NULL */
};

static void set_open(struct nset *s, FILE *f, json_t *j, const char *name, int family,
		     bool interval)
{
	s->f = f;
	s->first = true;
	s->items = NULL;
	fprintf(f, "\tset %s {\n\t\ttype %s;\n", name, family == AF_INET ? "ipv4_addr" : "ipv6_addr");
	if (interval)
		fputs("\t\tflags interval;\n", f);
	if (j && (s->items = json_array()))
		json_object_set_new(json_object_get(j, "sets"), name, s->items);
}

static void set_add(struct nset *s, const char *text)
{
	fprintf(s->f, "%s%s", s->first ? "\t\telements = { " : ", ", text);
	s->first = false;
	if (s->items)
		json_array_append_new(s->items, json_string(text));
}

static void set_close(struct nset *s)
{
	fputs(s->first ? "\t}\n" : " }\n\t}\n", s->f);
}

static void prefix_set(FILE *f, json_t *j, const char *name, const struct mesh_prefixes *p,
		       int family)
{
	struct nset s;

	set_open(&s, f, j, name, family, true);
	for (size_t i = 0; i < p->n; i++)
		if (p->items[i].p.family == family)
			set_add(&s, p->items[i].p.text);
	set_close(&s);
}

/* What a host needs at all, accepted before the mesh's own rules. */
static const struct fw_base {
	const char *comment;
	const char *family;          /* "inet", "ip", "ip6" */
	const char *iif;             /* the interface, or NULL */
	const char *proto;           /* "any" or the ICMP protocol */
	const char *icmp_types;      /* "a, b": the ICMP types, or NULL */
	const char *before;          /* a comment line in the text */
} fw_base[] = {
	{ "loopback", "inet", "lo", "any", NULL, NULL },
	{ "ICMP that IPv4 needs", "ip", NULL, "icmp",
	  "destination-unreachable, time-exceeded, parameter-problem",
	  "what IPv4 and IPv6 need to work at all (neighbour discovery, path MTU)" },
	{ "ICMPv6 that IPv6 needs", "ip6", NULL, "icmpv6",
	  "destination-unreachable, packet-too-big, time-exceeded, parameter-problem, "
	  "nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert", NULL },
};

static void fw_base_out(FILE *f, json_t *rules, const struct fw_base *b)
{
	json_t *jr, *types;

	if (b->before)
		fprintf(f, "\t\t# %s\n", b->before);
	if (b->iif)
		fprintf(f, "\t\tiif \"%s\" accept\n", b->iif);
	else
		fprintf(f, "\t\t%s type { %s } accept\n", b->proto, b->icmp_types);
	if (!rules || !(jr = json_pack("{ss ss so ss ss ss s[] ss}", "comment", b->comment,
				       "family", b->family,
				       "iif", b->iif ? json_string(b->iif) : json_null(),
				       "saddr", "any", "daddr", "any", "proto", b->proto,
				       "dport", "action", "accept")))
		return;
	if (b->icmp_types && (types = json_array())) {
		for (const char *p = b->icmp_types; *p;) {
			size_t n = strcspn(p, ",");

			json_array_append_new(types, json_stringn(p, n));
			p += n;
			p += strspn(p, ", ");
		}
		json_object_set_new(jr, "icmp_type", types);
	}
	json_array_append_new(rules, jr);
}

/* The accept rules of chain input, in order. */
enum fw_port { FW_PORTS, FW_LG, FW_WG };
static const struct fw_rule {
	const char *comment;
	int family;                  /* AF_INET: ip, AF_INET6: ip6, 0: both */
	bool tunnel_if;              /* only on the mesh interface */
	const char *saddr, *daddr;   /* set names or NULL (any) */
	bool daddr_not;
	const char *proto;
	enum fw_port port;
	const char *ports;           /* FW_PORTS: "80, 443" */
	const char *before;          /* a comment line in the text */
} fw_rules[] = {
	{ "anycast: web", AF_INET, false, NULL, "anycast_v4", false, "tcp", FW_PORTS, "80, 443", NULL },
	{ "anycast: web", AF_INET6, false, NULL, "anycast_v6", false, "tcp", FW_PORTS, "80, 443", NULL },
	{ "looking glass", AF_INET, true, "tunnel_v4", NULL, false, "tcp", FW_LG, NULL, NULL },
	{ "looking glass", AF_INET6, true, "tunnel_v6", NULL, false, "tcp", FW_LG, NULL, NULL },
	{ "SSH from the admin prefixes", AF_INET, false, "admin_v4", "anycast_v4", true, "tcp",
	  FW_PORTS, "22", "the node's own addresses only: an anycast address answers 80 and 443" },
	{ "SSH from the admin prefixes", AF_INET6, false, "admin_v6", "anycast_v6", true, "tcp",
	  FW_PORTS, "22", NULL },
	{ "BGP from the upstream", AF_INET, false, "upstream_v4", "anycast_v4", true, "tcp",
	  FW_PORTS, "179", NULL },
	{ "BGP from the upstream", AF_INET6, false, "upstream_v6", "anycast_v6", true, "tcp",
	  FW_PORTS, "179", NULL },
	{ "BGP over the mesh", AF_INET, true, "tunnel_v4", NULL, false, "tcp", FW_PORTS, "179", NULL },
	{ "BGP over the mesh", AF_INET6, true, "tunnel_v6", NULL, false, "tcp", FW_PORTS, "179", NULL },
	{ "WireGuard from the mesh nodes", AF_INET, false, "mesh_nodes_v4", NULL, false, "udp",
	  FW_WG, NULL, NULL },
	{ "BFD on the mesh interface", 0, true, NULL, NULL, false, "udp", FW_PORTS, "3784, 4784", NULL },
};

static void fw_rule_out(FILE *f, json_t *rules, const struct fw_rule *r, const struct mesh *m,
			const char *ifname)
{
	const char *fam = r->family == AF_INET ? "ip" : r->family == AF_INET6 ? "ip6" : NULL;
	char ports[32];
	json_t *jr, *jp;

	if (r->port == FW_LG)
		snprintf(ports, sizeof(ports), "%u", m->looking_glass_port);
	else if (r->port == FW_WG)
		snprintf(ports, sizeof(ports), "%u", m->tunnel.port);
	else
		snprintf(ports, sizeof(ports), "%s", r->ports);
	if (r->before)
		fprintf(f, "\t\t# %s\n", r->before);
	fputs("\t\t", f);
	if (r->tunnel_if)
		fprintf(f, "iifname \"%s\" ", ifname);
	if (r->saddr)
		fprintf(f, "%s saddr @%s ", fam, r->saddr);
	if (r->daddr)
		fprintf(f, "%s daddr %s@%s ", fam, r->daddr_not ? "!= " : "", r->daddr);
	fprintf(f, strchr(ports, ',') ? "%s dport { %s } accept\n" : "%s dport %s accept\n",
		r->proto, ports);
	if (!rules || !(jr = json_object()))
		return;
	json_object_set_new(jr, "comment", json_string(r->comment));
	json_object_set_new(jr, "family", fam ? json_string(fam) : json_string("inet"));
	json_object_set_new(jr, "iif", r->tunnel_if ? json_string(ifname) : json_null());
	json_object_set_new(jr, "saddr", r->saddr ? json_sprintf("@%s", r->saddr) : json_string("any"));
	json_object_set_new(jr, "daddr", r->daddr ? json_sprintf("%s@%s", r->daddr_not ? "!= " : "",
								  r->daddr) : json_string("any"));
	json_object_set_new(jr, "proto", json_string(r->proto));
	jp = json_array();
	for (char *p = ports; p && *p;) {
		json_array_append_new(jp, json_integer(strtol(p, &p, 10)));
		while (*p == ',' || *p == ' ')
			p++;
	}
	json_object_set_new(jr, "dport", jp);
	json_object_set_new(jr, "action", json_string("accept"));
	json_array_append_new(rules, jr);
}

static int render_nft(FILE *f, json_t *j, const struct mesh *m, const struct mesh_node *n)
{
	const struct mesh_upstream *u = mesh_upstream_find(m, n->upstream);
	const char *ifname = mesh_node_ifname(m, n);
	json_t *rules = j ? json_object_get(j, "rules") : NULL;
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

	set_open(&s, f, j, "anycast_v4", AF_INET, false);
	for (size_t i = 0; i < m->n_services; i++)
		for (size_t k = 0; k < m->services[i].addresses.n; k++)
			if (m->services[i].addresses.items[k].family == AF_INET)
				set_add(&s, m->services[i].addresses.items[k].text);
	set_close(&s);
	set_open(&s, f, j, "anycast_v6", AF_INET6, false);
	for (size_t i = 0; i < m->n_services; i++)
		for (size_t k = 0; k < m->services[i].addresses.n; k++)
			if (m->services[i].addresses.items[k].family == AF_INET6)
				set_add(&s, m->services[i].addresses.items[k].text);
	set_close(&s);

	set_open(&s, f, j, "tunnel_v4", AF_INET, true);
	set_add(&s, m->tunnel.ipv4.p.text);
	set_close(&s);
	set_open(&s, f, j, "tunnel_v6", AF_INET6, true);
	set_add(&s, m->tunnel.ipv6.p.text);
	set_close(&s);
	prefix_set(f, j, "admin_v4", &m->admin, AF_INET);
	prefix_set(f, j, "admin_v6", &m->admin, AF_INET6);

	set_open(&s, f, j, "upstream_v4", AF_INET, false);
	if (u && u->neighbor_ipv4.family)
		set_add(&s, u->neighbor_ipv4.text);
	set_close(&s);
	set_open(&s, f, j, "upstream_v6", AF_INET6, false);
	if (u && u->neighbor_ipv6.family)
		set_add(&s, u->neighbor_ipv6.text);
	set_close(&s);

	set_open(&s, f, j, "mesh_nodes_v4", AF_INET, false);
	for (size_t i = 0; i < m->n_nodes; i++)
		if (&m->nodes[i] != n && m->nodes[i].public_ipv4.family)
			set_add(&s, m->nodes[i].public_ipv4.text);
	set_close(&s);

	fputs("\n\tchain input {\n"
	      "\t\ttype filter hook input priority filter; policy drop;\n"
	      "\t\tct state established,related accept\n"
	      "\t\tct state invalid drop\n", f);
	for (size_t i = 0; i < sizeof(fw_base) / sizeof(fw_base[0]); i++)
		fw_base_out(f, rules, &fw_base[i]);
	for (size_t i = 0; i < sizeof(fw_rules) / sizeof(fw_rules[0]); i++)
		fw_rule_out(f, rules, &fw_rules[i], m, ifname);
	fputs("\t\tlimit rate 10/minute burst 5 packets log prefix \"healthd-mesh drop: \" level info\n"
	      "\t\tcounter drop\n"
	      "\t}\n"
	      "}\n", f);
	return 0;
}

int mesh_render_nft(FILE *f, const struct mesh *m, const struct mesh_node *n)
{
	return render_nft(f, NULL, m, n);
}

json_t *mesh_firewall_json(const struct mesh *m, const struct mesh_node *n)
{
	json_t *j = json_pack("{ss ss ss s{} s[]}", "node", n->name, "table", "inet healthd_mesh",
			      "policy", "drop", "sets", "rules");
	char *text = NULL;
	size_t len = 0;
	FILE *f;

	if (!j || !(f = open_memstream(&text, &len))) {
		json_decref(j);
		return NULL;
	}
	render_nft(f, j, m, n);
	if (fclose(f) || !text) {
		free(text);
		json_decref(j);
		return NULL;
	}
	json_object_set_new(j, "established", json_string("accept (ct state established,related)"));
	json_object_set_new(j, "nftables", json_stringn(text, len));
	free(text);
	return j;
}
