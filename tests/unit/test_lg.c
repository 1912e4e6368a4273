/*
 * test_lg — the looking glass's pure parts: BIRD's replies captured from
 * real BIRDs (tests/fixtures/capture-lg.sh) parsed into structs; the
 * typed queries and the allowlist of commands; the fleet view; the JSON
 * checked field by field against what alice-lg reads
 * (tests/unit/fixtures/alice-lg/fields.json); HTML escaping.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lg/lg.h"
#include "tests/lib/testlib.h"

#define FIXTURES "tests/unit/fixtures/lg/"

struct one {
	struct bird_reply r;
	int n;
};

static void keep(void *arg, const struct bird_reply *r)
{
	struct one *o = arg;

	o->n++;
	o->r.code = r->code;
	o->r.n_lines = r->n_lines;
	o->r.lines = calloc(r->n_lines, sizeof(*o->r.lines));
	for (size_t i = 0; i < r->n_lines; i++) {
		o->r.lines[i].code = r->lines[i].code;
		o->r.lines[i].text = strdup(r->lines[i].text);
	}
	o->r.text = o->r.lines[r->n_lines - 1].text;
}

/* The fixture NAME as the one reply it holds (free with drop()). */
static struct bird_reply load(const char *name)
{
	char path[256];
	char *text;
	struct bird_parser *p = bird_parser_new();
	struct one o = { 0 };

	snprintf(path, sizeof(path), FIXTURES "%s.raw", name);
	text = testlib_read_file(path);
	cr_assert_not_null(text, "%s missing: tests/fixtures/capture-lg.sh makes it", path);
	cr_assert_eq(bird_parser_feed(p, text, strlen(text), keep, &o), 0, "%s", path);
	cr_assert_eq(o.n, 1, "%s holds one reply", path);
	bird_parser_free(p);
	free(text);
	return o.r;
}

static void drop(struct bird_reply *r)
{
	for (size_t i = 0; i < r->n_lines; i++)
		free(r->lines[i].text);
	free(r->lines);
}

static const char lab_conf[] =
	"node: lax1\n"
	"listen: [\"192.0.2.129:8080\", \"[2001:db8:10::1]:8080\"]\n"
	"allow: [\"192.0.2.128/26\", \"2001:db8:10::/48\"]\n"
	"bird: {socket: /run/bird/bird.ctl}\n"
	"limits: {timeout: 2s, cache: 250ms}\n"
	"services:\n"
	"  - name: web\n"
	"    prefixes: [\"203.0.113.0/24\", \"2001:db8:100::/48\"]\n"
	"    communities: {up: [\"64496:100\"], degraded: [\"64496:300\"], draining: [\"65535:0\"]}\n"
	"nodes:\n"
	"  - {name: lax1, router_id: 203.0.113.1}\n"
	"  - {name: ord1, router_id: 203.0.113.9}\n"
	"  - {name: ewr1, router_id: 203.0.113.17}\n";

static struct lg_conf *conf_of(const char *yaml)
{
	char err[512];
	struct lg_conf *c = lg_conf_load_string("meshlg.yaml", yaml, strlen(yaml), err, sizeof(err));

	cr_assert_not_null(c, "%s", err);
	return c;
}

TestSuite(lg, .timeout = 10);

/* The path of rs that came from proto (BIRD's order of paths varies). */
static const struct lg_route *from(const struct lg_routes *rs, const char *proto)
{
	for (size_t i = 0; i < rs->n; i++)
		if (!strcmp(rs->items[i].from_protocol, proto))
			return &rs->items[i];
	cr_assert_fail("no path from %s", proto);
	return NULL;
}

/* ---- parse ---- */

Test(lg, routes_of_the_reflector)
{
	struct bird_reply r = load("route_prefix_rr");
	struct lg_routes rs;

	cr_assert_eq(lg_parse_routes(&r, &rs), 0);
	cr_assert_eq(rs.n, 3, "ADD-PATH: lax1's own path and one from each client");
	cr_assert_str_eq(rs.table, "master4");
	cr_assert_str_eq(rs.items[0].network, "203.0.113.0/24");
	cr_assert_str_eq(rs.items[0].from_protocol, "healthd_web_v4");
	cr_assert_str_eq(rs.items[0].type, "blackhole");
	cr_assert(rs.items[0].primary);
	cr_assert_eq(rs.items[0].metric, 200);
	cr_assert_str_eq(rs.items[0].source, "static univ");
	cr_assert_eq(rs.items[0].n_comm, 1);
	cr_assert_eq(rs.items[0].comm[0][0], 64496);
	cr_assert_eq(rs.items[0].comm[0][1], 100);
	cr_assert_eq(rs.items[0].n_large, 1);
	cr_assert_eq(rs.items[0].large[0][2], 2);
	for (size_t i = 1; i < 3; i++) {
		cr_assert_str_eq(rs.items[i].network, "203.0.113.0/24", "a further path keeps its net");
		cr_assert_str_eq(rs.items[i].type, "unicast");
		cr_assert_not(rs.items[i].primary);
		cr_assert_str_eq(rs.items[i].interface, "wg0");
		cr_assert_str_eq(rs.items[i].origin, "IGP");
		cr_assert_str_eq(rs.items[i].local_pref, "100");
	}
	cr_assert_str_eq(from(&rs, "ibgp_ord1_v4")->gateway, "192.0.2.130");
	cr_assert_str_eq(from(&rs, "ibgp_ord1_v4")->med, "20");
	cr_assert_eq(from(&rs, "ibgp_ord1_v4")->n_ext, 1);
	cr_assert_str_eq(from(&rs, "ibgp_ord1_v4")->ext[0][0], "rt");
	cr_assert_str_eq(from(&rs, "ibgp_ord1_v4")->ext[0][2], "7");
	cr_assert_eq(from(&rs, "ibgp_ewr1_v4")->comm[0][1], 300);
	cr_assert_eq(strlen(from(&rs, "ibgp_ewr1_v4")->age), 19, "date and time");
	lg_routes_free(&rs);
	drop(&r);
}

Test(lg, routes_of_a_client_name_the_originator)
{
	struct bird_reply r = load("route_prefix_client");
	struct lg_routes rs;

	cr_assert_eq(lg_parse_routes(&r, &rs), 0);
	cr_assert_eq(rs.n, 3);
	cr_assert_str_eq(rs.items[0].from_protocol, "healthd_web_v4");
	for (size_t i = 1; i < 3; i++)
		cr_assert_str_eq(rs.items[i].from_protocol, "ibgp_lax1_v4");
	/* one is lax1's own (not reflected), the other ord1's through lax1 */
	cr_assert(!strcmp(rs.items[1].originator_id, "203.0.113.9") ||
		  !strcmp(rs.items[2].originator_id, "203.0.113.9"));
	cr_assert(!rs.items[1].originator_id[0] || !rs.items[2].originator_id[0]);
	cr_assert_str_eq(rs.items[rs.items[1].originator_id[0] ? 1 : 2].cluster_list, "203.0.113.1");
	lg_routes_free(&rs);
	drop(&r);
}

Test(lg, not_found_is_no_routes)
{
	struct bird_reply r = load("route_none");
	struct lg_routes rs;

	cr_assert_eq(r.code, 8001);
	cr_assert_eq(lg_parse_routes(&r, &rs), 0);
	cr_assert_eq(rs.n, 0);
	drop(&r);
	r = load("restricted_denied");
	cr_assert_eq(lg_parse_routes(&r, &rs), -EPROTO, "8007 is an error, not an empty table");
	drop(&r);
}

Test(lg, filtered_and_dev_routes)
{
	struct bird_reply r = load("route_filtered");
	struct lg_routes rs;

	cr_assert_eq(lg_parse_routes(&r, &rs), 0);
	cr_assert_eq(rs.n, 1);
	cr_assert_str_eq(rs.items[0].network, "198.51.100.128/25");
	lg_routes_free(&rs);
	drop(&r);
	r = load("route_noexport");
	cr_assert_eq(lg_parse_routes(&r, &rs), 0);
	cr_assert_eq(rs.n, 1);
	cr_assert_str_eq(rs.items[0].interface, "wg0", "\"dev wg0\"");
	cr_assert_str_eq(rs.items[0].gateway, "");
	lg_routes_free(&rs);
	drop(&r);
}

Test(lg, protocols_all)
{
	struct bird_reply r = load("protocols_all");
	struct lg_protocols ps;
	const struct lg_protocol *p;

	cr_assert_eq(lg_parse_protocols(&r, &ps), 0);
	cr_assert_eq(ps.n, 6);
	p = lg_protocols_find(&ps, "ibgp_ord1_v4");
	cr_assert_not_null(p);
	cr_assert_str_eq(p->proto, "BGP");
	cr_assert_str_eq(p->state, "up");
	cr_assert_str_eq(p->info, "Established");
	cr_assert_eq(strlen(p->since), 19, "\"%s\": date and time", p->since);
	cr_assert_str_eq(p->description, "iBGP to ord1");
	cr_assert_str_eq(p->neighbor_address, "192.0.2.130");
	cr_assert_eq(p->neighbor_as, 64496);
	cr_assert_str_eq(p->neighbor_id, "203.0.113.9");
	cr_assert_eq(p->n_channels, 1);
	cr_assert_str_eq(p->channels[0].name, "ipv4");
	cr_assert_eq(p->channels[0].imported, 1);
	cr_assert_eq(p->channels[0].exported, 2);
	cr_assert_null(lg_protocols_find(&ps, "nosuch"));
	lg_protocols_free(&ps);
	drop(&r);
}

Test(lg, status_and_count)
{
	struct bird_reply r = load("status");
	struct lg_status st;
	struct lg_count c;

	cr_assert_eq(lg_parse_status(&r, &st), 0);
	cr_assert_str_eq(st.version, "2.0.12");
	cr_assert_str_eq(st.router_id, "203.0.113.1");
	cr_assert_str_eq(st.message, "Daemon is up and running");
	cr_assert_eq(strlen(st.server_time), 19);
	drop(&r);
	r = load("route_count");
	cr_assert_eq(lg_parse_count(&r, &c), 0);
	cr_assert_eq(c.routes, 5);
	cr_assert_eq(c.networks, 3);
	cr_assert_eq(c.tables, 2);
	drop(&r);
	r = load("restrict");
	cr_assert_eq(r.code, 16, "what BIRD answers restrict: 0016");
	drop(&r);
}

/* ---- typed queries ---- */

Test(lg, names_are_checked_byte_by_byte)
{
	static const char *const bad[] = {
		"", "a;b", "a b", "a|b", "a\"b", "a'b", "$(id)", "`id`", "-x", "1abc", "a\r", "a\n",
		"a\\x", "caf\xc3\xa9", "\xff", "a*", "a?", "a/b", "%41",
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",   /* 65 */
	};
	struct lg_query q;
	char why[256], cmd[200];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_not(lg_query_name(&q, LG_Q_ROUTES_PROTOCOL, bad[i], why, sizeof(why)),
			      "\"%s\" taken", bad[i]);
		cr_assert_gt(strlen(why), 10, "a reason: %s", why);
		for (const char *p = why; *p; p++)
			cr_assert((unsigned char)*p >= 0x20 && (unsigned char)*p < 0x7f,
				  "the reason carries only printable ASCII: %s", why);
	}
	cr_assert(lg_query_name(&q, LG_Q_ROUTES_FILTERED, "ibgp_ord1_v4", why, sizeof(why)));
	lg_query_command(&q, cmd, sizeof(cmd));
	cr_assert_str_eq(cmd, "show route filtered protocol ibgp_ord1_v4 all");
	cr_assert(lg_command_allowed(cmd));
	cr_assert(lg_query_name(&q, LG_Q_PROTOCOL, "_x", why, sizeof(why)));
	lg_query_command(&q, cmd, sizeof(cmd));
	cr_assert_str_eq(cmd, "show protocols all \"_x\"");
}

Test(lg, addresses_are_parsed_and_printed_back)
{
	static const char *const bad[] = {
		"", "203.0.113.10;", "203.0.113.10 all", "203.0.113.1/33", "203.0.113.1/24",
		"203.0.113.0/", "203.0.113.0/-1", "203.0.113.0/+8", "0x1.2.3.4", "1.2.3", "::g",
		"2001:db8::/129", "203.0.113.0/24 where", "203.0.113.0/08x", "$(id)", "-1.2.3.4",
		"203.0.113.10\n", "2001:db8::1%eth0",
	};
	struct lg_query q;
	char why[256], cmd[200];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_not(lg_query_net(&q, bad[i], why, sizeof(why)), "\"%s\" taken", bad[i]);
	cr_assert(lg_query_net(&q, "203.0.113.10", why, sizeof(why)), "%s", why);
	cr_assert_eq(q.kind, LG_Q_ROUTE_FOR);
	lg_query_command(&q, cmd, sizeof(cmd));
	cr_assert_str_eq(cmd, "show route for 203.0.113.10 all");
	cr_assert(lg_query_net(&q, "2001:DB8:0:0::0/48", why, sizeof(why)), "%s", why);
	cr_assert_eq(q.kind, LG_Q_ROUTE_NET);
	lg_query_command(&q, cmd, sizeof(cmd));
	cr_assert_str_eq(cmd, "show route 2001:db8::/48 all", "printed back by inet_ntop");
	cr_assert(lg_command_allowed(cmd));
	cr_assert(lg_query_net(&q, "203.0.113.0/24", why, sizeof(why)));
	lg_query_command(&q, cmd, sizeof(cmd));
	cr_assert(lg_command_allowed(cmd));
}

Test(lg, the_allowlist)
{
	static const char *const good[] = {
		"restrict", "show status", "show protocols", "show protocols all",
		"show protocols all \"ibgp_ord1_v4\"", "show route for 203.0.113.10 all",
		"show route for 2001:db8::10 all", "show route 203.0.113.0/24 all",
		"show route protocol ibgp_ord1_v4 all", "show route filtered protocol x all",
		"show route noexport x all", "show route count",
	};
	static const char *const bad[] = {
		"disable x", "configure", "show route where net ~ 1.2.3.0/24", "show route all",
		"show route for 203.0.113.10 all\nconfigure", "show protocols all \"a*\"",
		"show route protocol a;b all", "restrict ", "echo all", "show route export x",
		"dump routes", "down", "show symbols",
	};

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		cr_assert(lg_command_allowed(good[i]), "%s", good[i]);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_not(lg_command_allowed(bad[i]), "%s", bad[i]);
}

/* ---- fleet ---- */

static void fleet_of(const char *fixture, const char *self, struct lg_fleet *f)
{
	char yaml[sizeof(lab_conf) + 16];
	struct lg_conf *c;
	struct bird_reply r = load(fixture);
	struct lg_routes rs;

	snprintf(yaml, sizeof(yaml), "%s", lab_conf);
	memcpy(yaml + 6, self, 4);           /* "node: lax1" -> self */
	c = conf_of(yaml);
	memset(f, 0, sizeof(*f));
	cr_assert_eq(lg_parse_routes(&r, &rs), 0);
	cr_assert_eq(lg_fleet_add(f, c, &c->services[0], &rs), 0);
	lg_fleet_finish(f);
	for (size_t i = 0; i < f->n; i++)
		f->rows[i].service = "web";      /* the conf goes: keep a lasting name */
	lg_routes_free(&rs);
	drop(&r);
	lg_conf_free(c);
}

Test(lg, fleet_on_the_reflector)
{
	struct lg_fleet f;

	fleet_of("route_prefix_rr", "lax1", &f);
	cr_assert_eq(f.n, 3);
	cr_assert_str_eq(f.rows[0].node, "ewr1");
	cr_assert_eq(f.rows[0].state, LG_FLEET_DEGRADED, "64496:300 is the degraded set");
	cr_assert_str_eq(f.rows[0].how, "peer");
	cr_assert_str_eq(f.rows[1].node, "lax1");
	cr_assert_str_eq(f.rows[1].how, "local");
	cr_assert_eq(f.rows[1].state, LG_FLEET_UP);
	cr_assert_str_eq(f.rows[2].node, "ord1");
	cr_assert_eq(f.rows[2].state, LG_FLEET_UP);
	lg_fleet_free(&f);
}

Test(lg, fleet_on_a_client)
{
	struct lg_fleet f;

	fleet_of("route_prefix_client", "ewr1", &f);
	cr_assert_eq(f.n, 3);
	cr_assert_str_eq(f.rows[0].node, "ewr1");
	cr_assert_str_eq(f.rows[0].how, "local");
	cr_assert_str_eq(f.rows[1].node, "lax1");
	cr_assert_str_eq(f.rows[1].how, "peer");
	cr_assert_str_eq(f.rows[2].node, "ord1", "named by its originator_id");
	cr_assert_str_eq(f.rows[2].how, "reflected");
	lg_fleet_free(&f);
}

/* ---- JSON against what alice-lg reads ---- */

static json_t *render(const char *group, const char *fixture)
{
	struct bird_reply r = load(fixture);
	json_t *j = NULL, *env = lg_json_envelope(false, 1764611806, 1764611807);

	if (!strcmp(group, "envelope") || !strcmp(group, "status")) {
		struct lg_status st;

		cr_assert_eq(lg_parse_status(&r, &st), 0);
		j = lg_json_status(&st);
	} else if (!strncmp(group, "protocols", 9)) {
		struct lg_protocols ps;

		cr_assert_eq(lg_parse_protocols(&r, &ps), 0);
		j = strcmp(group, "protocols_short") ? lg_json_protocols(&ps, true) :
		    lg_json_protocols_short(&ps);
		lg_protocols_free(&ps);
	} else if (!strcmp(group, "routes")) {
		struct lg_routes rs;

		cr_assert_eq(lg_parse_routes(&r, &rs), 0);
		j = lg_json_routes(&rs);
		lg_routes_free(&rs);
	}
	cr_assert_not_null(j, "%s: no JSON", group);
	cr_assert_not_null(env);
	cr_assert_eq(json_object_update(j, env), 0);
	json_decref(env);
	drop(&r);
	return j;
}

static bool type_is(json_t *v, const char *type)
{
	if (!strcmp(type, "string"))
		return json_is_string(v);
	if (!strcmp(type, "number"))
		return json_is_number(v);
	if (!strcmp(type, "boolean"))
		return json_is_boolean(v);
	if (!strcmp(type, "object"))
		return json_is_object(v);
	if (!strcmp(type, "array"))
		return json_is_array(v);
	return false;
}

/* Every value at path (rest: the dotted remainder) has type; *hits counts
 * how many there were. */
static void check_path(json_t *v, const char *rest, const char *type, const char *full, int *hits)
{
	char seg[64];
	const char *dot;
	size_t n;

	if (!*rest) {
		cr_assert(type_is(v, type), "%s: not a %s", full, type);
		(*hits)++;
		return;
	}
	dot = strchr(rest, '.');
	n = dot ? (size_t)(dot - rest) : strlen(rest);
	snprintf(seg, sizeof(seg), "%.*s", (int)n, rest);
	rest = dot ? dot + 1 : "";
	if (!strcmp(seg, "*")) {
		const char *k;
		json_t *m;

		cr_assert(json_is_object(v), "%s: '*' on a non-object", full);
		json_object_foreach(v, k, m)
			check_path(m, rest, type, full, hits);
	} else if (!strcmp(seg, "[]")) {
		size_t i;
		json_t *m;

		cr_assert(json_is_array(v), "%s: '[]' on a non-array", full);
		json_array_foreach(v, i, m)
			check_path(m, rest, type, full, hits);
	} else {
		json_t *m = json_object_get(v, seg);

		cr_assert_not_null(m, "%s: no member \"%s\"", full, seg);
		check_path(m, rest, type, full, hits);
	}
}

Test(lg, json_has_every_field_alice_lg_reads)
{
	json_error_t e;
	json_t *spec = json_load_file("tests/unit/fixtures/alice-lg/fields.json", 0, &e);
	json_t *groups, *g;
	const char *name;
	int checked = 0;

	cr_assert_not_null(spec, "fields.json: %s", e.text);
	groups = json_object_get(spec, "groups");
	json_object_foreach(groups, name, g) {
		json_t *out = render(name, json_string_value(json_object_get(g, "fixture")));
		json_t *f;
		size_t i;

		json_array_foreach(json_object_get(g, "fields"), i, f) {
			const char *path = json_string_value(json_object_get(f, "path"));
			const char *type = json_string_value(json_object_get(f, "type"));
			int hits = 0;

			check_path(out, path, type, path, &hits);
			cr_assert_gt(hits, 0, "%s.%s: the fixture has no such value", name, path);
			if (json_is_true(json_object_get(f, "rfc3339"))) {
				const char *s = json_string_value(json_object_get(out, "ttl"));

				cr_assert_eq(strlen(s), 20, "%s", s);
				cr_assert(s[10] == 'T' && s[19] == 'Z', "ttl \"%s\" is RFC 3339", s);
			}
			checked++;
		}
		json_decref(out);
	}
	cr_assert_gt(checked, 50, "%d fields", checked);
	json_decref(spec);
}

/* ---- conf, HTML ---- */

Test(lg, conf_is_strict)
{
	char err[512];
	struct lg_conf *c = conf_of(lab_conf);
	struct sockaddr_storage ss = { 0 };
	struct sockaddr_in *in = (struct sockaddr_in *)&ss;

	cr_assert_eq(c->n_listen, 2);
	cr_assert_eq(c->cache_ms, 250);
	cr_assert_eq(c->n_nodes, 3);
	cr_assert_str_eq(c->nodes[1].router_id.text, "203.0.113.9");
	in->sin_family = AF_INET;
	inet_pton(AF_INET, "192.0.2.130", &in->sin_addr);
	cr_assert(lg_conf_allowed(c, &ss));
	inet_pton(AF_INET, "198.51.100.6", &in->sin_addr);
	cr_assert_not(lg_conf_allowed(c, &ss), "a public address is not the tunnel");
	lg_conf_free(c);
	static const char bogus[] = "node: a\nlisten: [\"1.2.3.4:1\"]\nallow: []\nbogus: 1\n";

	cr_assert_null(lg_conf_load_string("x.yaml", bogus, sizeof(bogus) - 1, err, sizeof(err)));
	cr_assert(strstr(err, "x.yaml:"), "%s", err);
	static const char no_port[] = "node: a\nlisten: [\"1.2.3.4\"]\nallow: [\"192.0.2.0/24\"]\n";

	cr_assert_null(lg_conf_load_string("x.yaml", no_port, sizeof(no_port) - 1, err, sizeof(err)));
}

Test(lg, html_escapes_everything)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	lg_html_escape(f, "<script>alert('x')</script>&\"\x01\xff caf\xc3\xa9 \xed\xa0\x80");
	fclose(f);
	cr_assert_str_eq(buf, "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;"
			 "\xef\xbf\xbd\xef\xbf\xbd caf\xc3\xa9 \xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
	free(buf);
}
