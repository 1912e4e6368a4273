/*
 * Tests of mesh/: the shipped inventory loads and checks clean; each error
 * names FILE:LINE:COL: KEY exactly (the strict walker's and the semantic
 * rules'); warnings; `meshctl plan` text and JSON against golden files.
 * Run from the repository root.
 *
 * Golden files: tests/unit/golden/mesh/example.plan and example.json are
 * the plan of config/examples/mesh.yaml. After an intended change of the
 * output, regenerate them with
 *     HEALTHD_UPDATE_GOLDEN=1 build/std/tests/test_mesh
 * and review the diff.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mesh/mesh.h"
#include "tests/lib/testlib.h"

#define EXAMPLE "config/examples/mesh.yaml"
#define GOLDEN_DIR "tests/unit/golden/mesh"

TestSuite(mesh, .timeout = 20);

static struct mesh *load(const char *yaml)
{
	char err[512];
	struct mesh *m = mesh_load_string("t.yaml", yaml, strlen(yaml), err, sizeof(err));

	cr_assert_not_null(m, "unexpected error: %s", err);
	return m;
}


/* Lines 1-15: a valid inventory in documentation values; two regions
 * (lax .0/29, ord .8/29), lax1 reflects for ord1, 192.0.2.10 is anycast. */
#define MESH "mesh:\n  asn: 64496\n  blocks: [\"192.0.2.0/24\", \"2001:db8::/48\"]\n  tunnel: {ipv4: 10.10.10.0/24, ipv6: \"fd00:10:10::/48\"}\n"
#define UP "upstreams:\n  t: {asn: 64497, neighbor_ipv4: 192.0.2.254}\n"
#define PROV "providers: {vultr: 1, future: 2, aws: 3}\n"
#define SVC "services:\n  - {name: web, addresses: [192.0.2.10], announce: [192.0.2.0/24]}\n"
#define REG "regions:\n  - {name: lax, subnet: 192.0.2.0/29}\n  - {name: ord, subnet: 192.0.2.8/29}\n"
#define N1 "nodes:\n  - {name: lax1, region: lax, provider: vultr, route_reflector: true, tunnel_ipv4: 10.10.10.1}\n"
#define N2 "  - {name: ord1, region: ord, provider: vultr, tunnel_ipv4: 10.10.10.2}\n"
#define BASE MESH UP PROV SVC REG N1 N2

Test(mesh, example_loads_clean)
{
	char err[512];
	struct mesh *m = mesh_load(EXAMPLE, err, sizeof(err));

	cr_assert_not_null(m, "%s", err);
	cr_assert_eq(m->n_warnings, 0, "%s", m->n_warnings ? m->warnings[0] : "");
	cr_assert_eq(m->asn, 27218);
	cr_assert_eq(m->n_regions, 4);
	cr_assert_eq(m->n_nodes, 4);
	cr_assert_str_eq(m->nodes[0].name, "lax1");
	cr_assert_str_eq(m->nodes[0].slot.text, "192.30.120.1");
	cr_assert_str_eq(m->nodes[1].slot.text, "192.30.120.9");
	cr_assert(m->nodes[0].route_reflector);
	cr_assert_str_eq(m->tunnel.interface, "wg0");
	cr_assert_eq(m->tunnel.port, 51820);
	cr_assert_eq(m->looking_glass_port, 8080);
	cr_assert_eq(m->n_services, 1);
	cr_assert_eq(m->services[0].n_checks, 2);
	cr_assert_str_eq(m->services[0].addresses.items[0].text, "192.30.120.10");
	cr_assert(m->services[0].has_guard);
	cr_assert_eq(m->services[0].guard.min_announcers, 1);
	cr_assert_eq(m->services[0].guard.step_ms, 3000);
	cr_assert_eq(m->services[0].guard.interval_ms, 500, "the default where not given");
	mesh_free(m);
}

Test(mesh, base_loads_clean)
{
	struct mesh *m = load(BASE);

	cr_assert_eq(m->n_warnings, 0);
	cr_assert_str_eq(m->nodes[1].slot.text, "192.0.2.9");
	mesh_free(m);
}

/* ---- broken inputs: each error names FILE:LINE:COL: KEY ---- */

struct broken {
	char name[48];
	char yaml[720];
	char expect[200];      /* the whole error */
};

ParameterizedTestParameters(mesh, broken)
{
	static struct broken cases[] = {
		{ "unknown_top", MESH UP PROV SVC REG N1 N2 "node: x\n",
		  "t.yaml:16:1: node: unknown key" },
		{ "unknown_node_key", MESH UP PROV SVC REG N1 "  - {name: ord1, region: ord, provider: vultr, tunnel_ipv4: 10.10.10.2, port: 1}\n",
		  "t.yaml:15:73: nodes[1].port: unknown key" },
		{ "duplicate_key", MESH UP PROV SVC REG N1 N2 "retired: []\nretired: []\n",
		  "t.yaml:17:1: retired: duplicate key (first at line 16)" },
		{ "asn_word", "mesh:\n  asn: many\n",
		  "t.yaml:2:8: mesh.asn: expected an integer from 1 to 4294967295, found 'many'" },
		{ "nodes_map", MESH UP PROV SVC REG "nodes: {}\n",
		  "t.yaml:13:8: nodes: expected a list, found a mapping" },
		{ "missing_tunnel_ipv4", MESH UP PROV SVC REG N1 "  - {name: ord1, region: ord, provider: vultr}\n",
		  "t.yaml:15:5: nodes[1].tunnel_ipv4: missing required key" },
		{ "slot_outside", MESH UP "providers: {vultr: 1, future: 2, far: 9}\n" SVC REG N1 "  - {name: ord1, region: ord, provider: far, tunnel_ipv4: 10.10.10.2}\n",
		  "t.yaml:15:41: nodes[1].provider: provider far's slot +9 is outside region ord's /29 192.0.2.8/29" },
		{ "two_in_slot", MESH UP PROV SVC REG N1 N2 "  - {name: ord2, region: ord, provider: vultr, tunnel_ipv4: 10.10.10.3}\n",
		  "t.yaml:16:41: nodes[2].provider: slot 192.0.2.9 is already node ord1's (line 15)" },
		{ "anycast_future_slot", MESH UP PROV SVC REG N1 N2 "  - {name: ord2, region: ord, provider: future, tunnel_ipv4: 10.10.10.3}\n",
		  "t.yaml:16:41: nodes[2].provider: 192.0.2.10 is ord's +2 slot (future) and the anycast address of service web; no node may be given it" },
		{ "anycast_public", MESH UP PROV SVC REG N1 N2 "  - {name: ord2, region: ord, provider: aws, public_ipv4: 192.0.2.10, tunnel_ipv4: 10.10.10.3}\n",
		  "t.yaml:16:59: nodes[2].public_ipv4: 192.0.2.10 is the anycast address of service web; no node may be given it" },
		{ "tunnel_outside", MESH UP PROV SVC REG N1 "  - {name: ord1, region: ord, provider: vultr, tunnel_ipv4: 10.10.11.2}\n",
		  "t.yaml:15:61: nodes[1].tunnel_ipv4: 10.10.11.2 is outside the tunnel range 10.10.10.0/24" },
		{ "tunnel6_outside", MESH UP PROV SVC REG N1 "  - {name: ord1, region: ord, provider: vultr, tunnel_ipv4: 10.10.10.2, tunnel_ipv6: \"fd00:10:11::2\"}\n",
		  "t.yaml:15:86: nodes[1].tunnel_ipv6: fd00:10:11::2 is outside the tunnel range fd00:10:10::/48" },
		{ "tunnel_reused", MESH UP PROV SVC REG N1 "  - {name: ord1, region: ord, provider: vultr, tunnel_ipv4: 10.10.10.1}\n",
		  "t.yaml:15:61: nodes[1].tunnel_ipv4: 10.10.10.1 is already node lax1's tunnel address (line 14)" },
		{ "tunnel_retired", MESH UP PROV SVC REG N1 N2 "retired: [10.10.10.9, 10.10.10.2]\n",
		  "t.yaml:15:61: nodes[1].tunnel_ipv4: tunnel address 10.10.10.2 is retired (line 16) and never reused" },
		{ "slot_retired", MESH UP PROV SVC REG N1 N2 "retired: [192.0.2.9]\n",
		  "t.yaml:15:41: nodes[1].provider: slot 192.0.2.9 is retired (line 16) and never reused" },
		{ "no_reflector", MESH UP PROV SVC REG "nodes:\n  - {name: lax1, region: lax, provider: vultr, tunnel_ipv4: 10.10.10.1}\n",
		  "t.yaml:14:5: nodes[0]: no node is a route reflector (route_reflector: true)" },
		{ "reflector_not_node", MESH UP PROV SVC REG N1 "  - {name: ord1, region: ord, provider: vultr, reflector: sfo1, tunnel_ipv4: 10.10.10.2}\n",
		  "t.yaml:15:59: nodes[1].reflector: reflector 'sfo1' is not a node" },
		{ "reflector_not_reflector", MESH UP PROV SVC REG N1 N2 "  - {name: ord2, region: ord, provider: aws, reflector: ord1, tunnel_ipv4: 10.10.10.3}\n",
		  "t.yaml:16:57: nodes[2].reflector: node ord1 is not a route reflector (route_reflector: true)" },
		{ "region_outside_blocks", MESH UP PROV SVC "regions:\n  - {name: lax, subnet: 198.51.100.0/29}\n" N1,
		  "t.yaml:11:25: regions[0].subnet: 198.51.100.0/29 is outside the mesh's blocks" },
		{ "region_overlap", MESH UP PROV SVC "regions:\n  - {name: lax, subnet: 192.0.2.0/29}\n  - {name: ord, subnet: 192.0.2.0/29}\n" N1,
		  "t.yaml:12:25: regions[1].subnet: 192.0.2.0/29 overlaps region lax's 192.0.2.0/29" },
		{ "region_not_29", MESH UP PROV SVC "regions:\n  - {name: lax, subnet: 192.0.2.0/28}\n" N1,
		  "t.yaml:11:25: regions[0].subnet: a region's subnet is a /29, found 192.0.2.0/28" },
		{ "region_host_bits", MESH UP PROV SVC "regions:\n  - {name: lax, subnet: 192.0.2.1/29}\n" N1,
		  "t.yaml:11:25: regions[0].subnet: '192.0.2.1/29' has host bits set (did you mean 192.0.2.0/29?)" },
		{ "wg_key_short", MESH UP PROV SVC REG N1 "  - {name: ord1, region: ord, provider: vultr, tunnel_ipv4: 10.10.10.2, wireguard_public_key: \"AAAA\"}\n",
		  "t.yaml:15:95: nodes[1].wireguard_public_key: 'AAAA' is not a WireGuard public key (32 bytes in base64, 44 characters)" },
		{ "wg_key_33", MESH UP PROV SVC REG N1 "  - {name: ord1, region: ord, provider: vultr, tunnel_ipv4: 10.10.10.2, wireguard_public_key: \"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}\n",
		  "t.yaml:15:95: nodes[1].wireguard_public_key: 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' is not a WireGuard public key (32 bytes in base64, 44 characters)" },
		{ "private_key", MESH UP PROV SVC REG N1 "  - {name: ord1, region: ord, provider: vultr, tunnel_ipv4: 10.10.10.2, private_key: x}\n",
		  "t.yaml:15:73: nodes[1].private_key: refused: a private key never leaves the machine that made it; the inventory holds public keys only" },
		{ "PrivateKey", MESH UP PROV SVC REG N1 N2 "wireguard:\n  PrivateKey: x\n",
		  "t.yaml:17:3: wireguard.PrivateKey: refused: a private key never leaves the machine that made it; the inventory holds public keys only" },
		{ "password", MESH "upstreams:\n  t: {asn: 64497, neighbor_ipv4: 192.0.2.254, password: hunter2}\n" PROV SVC REG N1,
		  "t.yaml:6:47: upstreams.t.password: refused: a password does not belong in the inventory; give password_file, a path on the node" },
		{ "unknown_region", MESH UP PROV SVC REG N1 "  - {name: ord1, region: sfo, provider: vultr, tunnel_ipv4: 10.10.10.2}\n",
		  "t.yaml:15:5: nodes[1]: node ord1: region 'sfo' is not defined" },
		{ "unknown_provider", MESH UP PROV SVC REG N1 "  - {name: ord1, region: ord, provider: ovh, tunnel_ipv4: 10.10.10.2}\n",
		  "t.yaml:15:41: nodes[1].provider: provider 'ovh' is not defined" },
		{ "node_twice", MESH UP PROV SVC REG N1 "  - {name: lax1, region: ord, provider: vultr, tunnel_ipv4: 10.10.10.2}\n",
		  "t.yaml:15:5: nodes[1]: node 'lax1' is defined twice (first at line 14)" },
		{ "bad_check", MESH UP PROV "services:\n  - name: web\n    addresses: [192.0.2.10]\n    announce: [192.0.2.0/24]\n    checks:\n      - {name: a, type: tcp, host: 127.0.0.1, port: 0}\n" REG N1,
		  "t.yaml:13:53: services[0].checks[0].port: expected an integer from 1 to 65535, found '0'" },
		{ "bad_guard", MESH UP PROV "services:\n  - {name: web, addresses: [192.0.2.10], announce: [192.0.2.0/24], guard: {step: 1s}}\n" REG N1,
		  "t.yaml:9:82: services[0].guard.step: step (1s) must be at least 3 times interval (500ms)" },
		{ "guard_unknown_key", MESH UP PROV "services:\n  - {name: web, addresses: [192.0.2.10], announce: [192.0.2.0/24], guard: {min: 2}}\n" REG N1,
		  "t.yaml:9:76: services[0].guard.min: unknown key" },
		{ "anchor", MESH UP PROV SVC REG N1 "  - &x {name: ord1, region: ord, provider: vultr, tunnel_ipv4: 10.10.10.2}\n",
		  "t.yaml:15:5: yaml: anchors and aliases are not supported" },
		{ "announce_outside_blocks", MESH UP PROV "services:\n  - {name: web, addresses: [192.0.2.10], announce: [192.0.2.0/24, 198.51.100.0/24]}\n" REG N1 N2,
		  "t.yaml:9:67: services[0].announce[1]: 198.51.100.0/24 is outside the mesh's blocks: the upstream would refuse it, or worse, carry it" },
		{ "announce_wider_than_blocks", MESH UP PROV "services:\n  - {name: web, addresses: [192.0.2.10], announce: [192.0.0.0/22]}\n" REG N1 N2,
		  "t.yaml:9:53: services[0].announce[0]: 192.0.0.0/22 is outside the mesh's blocks: the upstream would refuse it, or worse, carry it" },
		{ "address_not_announced", MESH UP PROV "services:\n  - {name: web, addresses: [192.0.2.10, \"2001:db8::10\"], announce: [192.0.2.0/24]}\n" REG N1 N2,
		  "t.yaml:9:41: services[0].addresses[1]: service web's address 2001:db8::10 is in none of its announced prefixes: no user would reach it" },
		{ "tunnel_interface_long", MESH UP PROV SVC REG N1 "  - {name: ord1, region: ord, provider: vultr, tunnel_ipv4: 10.10.10.2, tunnel_interface: wg-much-too-long}\n",
		  "t.yaml:15:91: nodes[1].tunnel_interface: 'wg-much-too-long' is not an interface name (1-15 of [A-Za-z0-9_.-])" },
		{ "root_relative", MESH UP PROV SVC REG N1 "  - {name: ord1, region: ord, provider: vultr, tunnel_ipv4: 10.10.10.2, root: srv/ord1}\n",
		  "t.yaml:15:79: nodes[1].root: 'srv/ord1' is not an absolute directory (at most 160 characters, no blank, quote, backslash, % or /../)" },
		{ "keepalive_zero", "mesh:\n  asn: 64496\n  blocks: [\"192.0.2.0/24\"]\n  tunnel: {ipv4: 10.10.10.0/24, ipv6: \"fd00:10:10::/48\", keepalive: 0s}\n",
		  "t.yaml:4:69: mesh.tunnel.keepalive: must be at least 1s, found 0s" },
		{ "password_file_injection", MESH "upstreams:\n  t: {asn: 64497, neighbor_ipv4: 192.0.2.254, password_file: \"/dev/null\\\";\\n\\tpassword \\\"hunter2\"}\n" PROV SVC REG N1 N2,
		  "t.yaml:6:62: upstreams.t.password_file: '/dev/null\";\n\tpassword \"hunter2' is not an absolute file name (at most 160 characters, no blank, quote, backslash, % or /../)" },
		{ "password_file_relative", MESH "upstreams:\n  t: {asn: 64497, neighbor_ipv4: 192.0.2.254, password_file: vultr.pw}\n" PROV SVC REG N1 N2,
		  "t.yaml:6:62: upstreams.t.password_file: 'vultr.pw' is not an absolute file name (at most 160 characters, no blank, quote, backslash, % or /../)" },
		{ "check_url_password", MESH UP PROV "services:\n  - name: web\n    addresses: [192.0.2.10]\n    announce: [192.0.2.0/24]\n    checks:\n      - {name: a, type: http, url: \"http://probe:s3cret@127.0.0.1/\"}\n" REG N1,
		  "t.yaml:13:9: services[0].checks[0]: refused: the url of check a carries a user or password; the inventory holds no credential (give the check none, or keep it in healthd.yaml on the node)" },
		{ "check_header_token", MESH UP PROV "services:\n  - name: web\n    addresses: [192.0.2.10]\n    announce: [192.0.2.0/24]\n    checks:\n      - {name: a, type: http, url: \"http://127.0.0.1/\", headers: {Authorization: \"Bearer x\"}}\n" REG N1,
		  "t.yaml:13:9: services[0].checks[0]: refused: header Authorization of check a is a credential; the inventory holds none (keep it in healthd.yaml on the node)" },
		{ "check_named_mesh", MESH UP PROV "services:\n  - name: web\n    addresses: [192.0.2.10]\n    announce: [192.0.2.0/24]\n    checks:\n      - {name: mesh, type: tcp, host: 127.0.0.1, port: 80}\n" REG N1,
		  "t.yaml:13:9: services[0].checks[0]: check name 'mesh' is taken: meshctl adds the tunnel's WireGuard check under it" },
		{ "tunnel_interface_anycast", MESH UP PROV SVC REG N1 "  - {name: ord1, region: ord, provider: vultr, tunnel_ipv4: 10.10.10.2, tunnel_interface: anycast0}\n",
		  "t.yaml:15:91: nodes[1].tunnel_interface: 'anycast0' is taken (lo, and anycast0 for the anycast addresses)" },
		{ "keepalive_fraction", "mesh:\n  asn: 64496\n  blocks: [\"192.0.2.0/24\"]\n  tunnel: {ipv4: 10.10.10.0/24, ipv6: \"fd00:10:10::/48\", keepalive: 1500ms}\n",
		  "t.yaml:4:69: mesh.tunnel.keepalive: WireGuard's keepalive is whole seconds, found 1500ms" },
		{ "file_empty", "", "t.yaml:1:1: config: the file is empty" },
		{ "missing_nodes", MESH UP PROV SVC REG, "t.yaml:1:1: nodes: missing required key" },
	};

	return cr_make_param_array(struct broken, cases, sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct broken *b, mesh, broken)
{
	char err[512] = "";
	struct mesh *m = mesh_load_string("t.yaml", b->yaml, strlen(b->yaml), err,
					  sizeof(err));

	cr_assert_null(m, "%s: loaded, expected \"%s\"", b->name, b->expect);
	cr_assert_str_eq(err, b->expect, "%s:\n  got    \"%s\"\n  wanted \"%s\"",
			 b->name, err, b->expect);
}

/* The production trap: 192.30.120.10 is ORD's +2 ("future") slot. */
Test(mesh, anycast_is_ords_future_slot)
{
	char *yaml = testlib_read_file(EXAMPLE), err[512];
	const char *extra =
		"  - name: ord2\n    region: ord\n    provider: future\n"
		"    tunnel_ipv4: 10.10.10.5\n";
	char *at = strstr(yaml, "retired:");
	struct mesh *m;
	char *doc;
	unsigned line = 1;

	cr_assert_not_null(at);
	for (const char *p = yaml; p < at; p++)
		line += *p == '\n';
	cr_assert_geq(asprintf(&doc, "%.*s%s%s", (int)(at - yaml), yaml, extra, at), 0);
	m = mesh_load_string("mesh.yaml", doc, strlen(doc), err, sizeof(err));
	cr_assert_null(m);
	char want[256];
	snprintf(want, sizeof(want), "mesh.yaml:%u:15: nodes[4].provider: 192.30.120.10 is ord's +2 slot (future) and the anycast address of service web; no node may be given it",
		 line + 2);
	cr_assert_str_eq(err, want);
	free(doc);
	free(yaml);
}

/* ---- warnings ---- */

Test(mesh, enrolled_node_without_public_address_warns)
{
	struct mesh *m = load(MESH UP PROV SVC REG N1
			      "  - {name: ord1, region: ord, provider: vultr, tunnel_ipv4: 10.10.10.2, wireguard_public_key: \"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAI=\"}\n");

	cr_assert_eq(m->n_warnings, 1);
	cr_assert_str_eq(m->warnings[0], "t.yaml:15:95: nodes[1].wireguard_public_key: node ord1 has a WireGuard key but no public_ipv4: the other nodes cannot reach it, and their firewalls drop its packets");
	mesh_free(m);
}

Test(mesh, long_announce_warns)
{
	struct mesh *m = load(MESH UP PROV
		"services:\n  - {name: web, addresses: [192.0.2.10], announce: [192.0.2.10/32, \"2001:db8::/64\", 192.0.2.0/24]}\n"
		REG N1 N2);

	cr_assert_eq(m->n_warnings, 2);
	cr_assert_str_eq(m->warnings[0], "t.yaml:9:53: services[0].announce[0]: 192.0.2.10/32 is longer than /24: the Internet drops it, only upstream t would carry it; announce the covering /24");
	cr_assert_str_eq(m->warnings[1], "t.yaml:9:68: services[0].announce[1]: 2001:db8::/64 is longer than /48: the Internet drops it, only upstream t would carry it; announce the covering /48");
	mesh_free(m);
}

Test(mesh, long_announce_without_ebgp_is_quiet)
{
	struct mesh *m = load(MESH PROV
		"services:\n  - {name: web, addresses: [192.0.2.10], announce: [192.0.2.10/32]}\n"
		REG N1 N2);

	cr_assert_eq(m->n_warnings, 0);
	mesh_free(m);
}

Test(mesh, region_without_nodes_warns)
{
	struct mesh *m = load(MESH UP PROV SVC REG "  - {name: ewr, subnet: 192.0.2.16/29}\n" N1 N2);

	cr_assert_eq(m->n_warnings, 1);
	cr_assert_str_eq(m->warnings[0], "t.yaml:13:5: regions[2]: region ewr has no nodes");
	mesh_free(m);
}

/* ---- values ---- */

Test(mesh, wg_key_valid)
{
	cr_assert(mesh_wg_key_valid("0+n7PJLb8IXwhF35aUMnDb2YNd/yqUFw2IJ/bOfTNwI="));
	cr_assert(mesh_wg_key_valid("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAE="));
	cr_assert_not(mesh_wg_key_valid("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB="));
	cr_assert_not(mesh_wg_key_valid("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=="));
	cr_assert_not(mesh_wg_key_valid("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA!="));
	cr_assert_not(mesh_wg_key_valid(""));
}

Test(mesh, reflector_peers)
{
	struct mesh *m = load(BASE "  - {name: ord2, region: ord, provider: aws, reflector: lax1, tunnel_ipv4: 10.10.10.3}\n");
	struct mesh_plan p;

	cr_assert_eq(mesh_plan_build(m, &p), 0);
	cr_assert_str_eq(p.nodes[0].role, "reflector");
	cr_assert_eq(p.nodes[0].n_peers, 2);
	cr_assert_str_eq(p.nodes[0].peers[1], "ord2");
	cr_assert_str_eq(p.nodes[2].role, "client");
	cr_assert_eq(p.nodes[2].n_peers, 1);
	cr_assert_str_eq(p.regions[1].slots[2].anycast, "web");
	cr_assert_eq(p.regions[1].used, 2);
	cr_assert_eq(p.regions[1].free, 3);
	mesh_plan_free(&p);
	mesh_free(m);
}

/* ---- the plan of the example against golden files ---- */

static void golden(const char *name, bool json)
{
	char err[512], path[256], *got = NULL;
	size_t len = 0;
	struct mesh *m = mesh_load(EXAMPLE, err, sizeof(err));
	struct mesh_plan p;
	FILE *f;

	cr_assert_not_null(m, "%s", err);
	cr_assert_eq(mesh_plan_build(m, &p), 0);
	cr_assert_not_null(f = open_memstream(&got, &len));
	if (json)
		cr_assert_eq(mesh_plan_json(f, &p), 0);
	else
		mesh_plan_text(f, &p);
	fclose(f);
	snprintf(path, sizeof(path), GOLDEN_DIR "/%s", name);
	const char *update = getenv("HEALTHD_UPDATE_GOLDEN");
	if (update && strcmp(update, "1") == 0) {
		FILE *w = fopen(path, "w");

		cr_assert_not_null(w, "%s: %s", path, strerror(errno));
		fputs(got, w);
		fclose(w);
	}
	char *want = testlib_read_file(path);
	cr_assert_not_null(want, "%s missing (HEALTHD_UPDATE_GOLDEN=1 writes it)", path);
	cr_assert_str_eq(got, want, "plan differs from %s:\n%s", path, got);
	free(want);
	free(got);
	mesh_plan_free(&p);
	mesh_free(m);
}

Test(mesh, plan_text_golden)
{
	golden("example.plan", false);
}

Test(mesh, plan_json_golden)
{
	golden("example.json", true);
}
