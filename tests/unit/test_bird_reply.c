/*
 * test_bird_reply — the reply parser against replies captured from a real
 * BIRD 2.0.12 (tests/fixtures/capture-bird.sh) and against hostile input.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bird-glue/bird.h"

#define FIXTURES "tests/unit/fixtures/bird/"
#define MAX_REPLIES 32

/* Deep copies of the replies the parser handed out. */
struct got {
	size_t n;
	struct bird_reply r[MAX_REPLIES];
};

static void collect(void *arg, const struct bird_reply *r)
{
	struct got *g = arg;
	struct bird_reply *c;

	cr_assert_lt(g->n, MAX_REPLIES);
	c = &g->r[g->n++];
	c->code = r->code;
	c->n_lines = r->n_lines;
	c->lines = calloc(r->n_lines, sizeof(*c->lines));
	for (size_t i = 0; i < r->n_lines; i++) {
		c->lines[i].code = r->lines[i].code;
		c->lines[i].text = strdup(r->lines[i].text);
	}
	c->text = c->lines[r->n_lines - 1].text;
	cr_assert_str_eq(r->text, c->text, "the final line is the last line");
}

static void got_free(struct got *g)
{
	for (size_t i = 0; i < g->n; i++) {
		for (size_t j = 0; j < g->r[i].n_lines; j++)
			free(g->r[i].lines[j].text);
		free(g->r[i].lines);
	}
	g->n = 0;
}

static char *load(const char *name, size_t *len)
{
	char path[256], *buf;
	FILE *f;
	long n;

	snprintf(path, sizeof(path), FIXTURES "%s.raw", name);
	f = fopen(path, "rb");
	cr_assert_not_null(f, "fixture %s missing (run tests/fixtures/capture-bird.sh)", path);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = malloc((size_t)n + 1);
	cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	buf[n] = '\0';
	*len = (size_t)n;
	return buf;
}

static void assert_same(const struct got *a, const struct got *b)
{
	cr_assert_eq(a->n, b->n);
	for (size_t i = 0; i < a->n; i++) {
		cr_assert_eq(a->r[i].code, b->r[i].code);
		cr_assert_eq(a->r[i].n_lines, b->r[i].n_lines);
		for (size_t j = 0; j < a->r[i].n_lines; j++) {
			cr_assert_eq(a->r[i].lines[j].code, b->r[i].lines[j].code);
			cr_assert_str_eq(a->r[i].lines[j].text, b->r[i].lines[j].text);
		}
	}
}

/* Parse a fixture whole and byte by byte; both must agree. One reply. */
static void parse_fixture(const char *name, struct got *g)
{
	struct bird_parser *p = bird_parser_new();
	struct got bytes = { 0 };
	size_t len;
	char *buf = load(name, &len);

	cr_assert_eq(bird_parser_feed(p, buf, len, collect, g), 0, "%s: %s", name,
		     bird_parser_error(p));
	bird_parser_reset(p);
	for (size_t i = 0; i < len; i++)
		cr_assert_eq(bird_parser_feed(p, buf + i, 1, collect, &bytes), 0);
	assert_same(g, &bytes);
	cr_assert_eq(g->n, 1, "%s: one reply", name);
	got_free(&bytes);
	bird_parser_free(p);
	free(buf);
}

TestSuite(bird_reply, .timeout = 10);

Test(bird_reply, welcome)
{
	struct got g = { 0 };

	parse_fixture("welcome", &g);
	cr_assert_eq(g.r[0].code, 1);
	cr_assert_str_eq(g.r[0].text, "BIRD 2.0.12 ready.");
	cr_assert_eq(g.r[0].n_lines, 1);
	got_free(&g);
}

Test(bird_reply, show_status_continuations_inherit_the_block_code)
{
	struct got g = { 0 };
	const struct bird_reply *r = &g.r[0];

	parse_fixture("show_status", &g);
	cr_assert_eq(r->code, 13);
	cr_assert_eq(r->n_lines, 7);
	cr_assert_eq(r->lines[0].code, 1000);
	cr_assert_str_eq(r->lines[0].text, "BIRD 2.0.12");
	cr_assert_eq(r->lines[1].code, 1011);
	cr_assert_str_eq(r->lines[1].text, "Router ID is 198.51.100.1");
	for (size_t i = 2; i < 6; i++)
		cr_assert_eq(r->lines[i].code, 1011, "line %zu", i);
	cr_assert_str_eq(r->text, "Daemon is up and running");
	got_free(&g);
}

Test(bird_reply, show_protocols_rows)
{
	static const char *const names[] = {
		"device1", "anycast4", "anycast4b", "anycast6", "healthd_web_v4",
	};
	struct got g = { 0 };
	struct bird_proto rows[8];
	size_t total = 99;

	parse_fixture("show_protocols", &g);
	cr_assert_eq(g.r[0].code, 0);
	cr_assert_eq(bird_parse_protocols(&g.r[0], rows, 8, &total), 5);
	cr_assert_eq(total, 5);
	for (size_t i = 0; i < 5; i++) {
		cr_assert_str_eq(rows[i].name, names[i]);
		cr_assert_eq(rows[i].state, BIRD_PROTO_UP, "%s", names[i]);
		cr_assert_str_eq(rows[i].info, "");
	}
	cr_assert_str_eq(rows[0].proto, "Device");
	cr_assert_str_eq(rows[4].proto, "Static");
	/* a short array still learns how many there were */
	cr_assert_eq(bird_parse_protocols(&g.r[0], rows, 2, &total), 2);
	cr_assert_eq(total, 5);
	got_free(&g);
}

Test(bird_reply, show_protocols_all_skips_details)
{
	struct got g = { 0 };
	struct bird_proto rows[4];
	size_t total;
	const struct bird_reply *r = &g.r[0];

	parse_fixture("show_protocols_all", &g);
	cr_assert_eq(bird_parse_protocols(r, rows, 4, &total), 1);
	cr_assert_str_eq(rows[0].name, "anycast4");
	cr_assert_eq(r->lines[2].code, 1006);
	cr_assert_eq(r->lines[3].code, 1006, "continuation of the 1006 block");
	cr_assert_str_eq(r->lines[r->n_lines - 2].text, "", "a lone ' ' continuation");
	got_free(&g);
}

Test(bird_reply, disabled_protocol_is_down)
{
	struct got g = { 0 };
	struct bird_proto row;

	parse_fixture("show_protocols_disabled", &g);
	cr_assert_eq(bird_parse_protocols(&g.r[0], &row, 1, NULL), 1);
	cr_assert_str_eq(row.name, "anycast4");
	cr_assert_eq(row.state, BIRD_PROTO_DOWN);
	got_free(&g);
}

/* Fixed arrays, not pointers: Criterion copies parameters as raw bytes
 * into a new process image. */
struct toggle {
	char fixture[32];
	int first_code;
	size_t lines;
};

ParameterizedTestParameters(bird_reply, enable_disable)
{
	static struct toggle t[] = {
		{ "disable", 9, 2 }, { "disable_already", 8, 2 },
		{ "enable", 11, 2 }, { "enable_already", 10, 2 },
		{ "disable_pattern", 9, 4 }, { "echo_async", 11, 2 },
		{ "echo_all", 0, 1 }, { "configure", 2, 2 },
	};
	return cr_make_param_array(struct toggle, t, sizeof(t) / sizeof(t[0]));
}

ParameterizedTest(struct toggle *t, bird_reply, enable_disable)
{
	struct got g = { 0 };
	const struct bird_reply *r = &g.r[0];

	parse_fixture(t->fixture, &g);
	cr_assert_eq(r->n_lines, t->lines, "%s", t->fixture);
	cr_assert_eq(r->lines[0].code, t->first_code, "%s", t->fixture);
	cr_assert(bird_code_ok(r->code));
	for (size_t i = 0; i < r->n_lines; i++)
		cr_assert_neq(r->lines[i].text[0], '+', "async lines are dropped");
	if (!strcmp(t->fixture, "configure"))
		cr_assert_eq(r->code, 3);
	else
		cr_assert_eq(r->code, 0);
	got_free(&g);
}

Test(bird_reply, errors)
{
	struct got g = { 0 };
	struct bird_proto row;
	size_t total = 7;

	parse_fixture("no_match", &g);
	cr_assert_eq(g.r[0].code, 8003);
	cr_assert_not(bird_code_ok(g.r[0].code));
	cr_assert_eq(bird_parse_protocols(&g.r[0], &row, 1, &total), 0);
	cr_assert_eq(total, 0);
	got_free(&g);

	parse_fixture("syntax_error", &g);
	cr_assert_eq(g.r[0].code, 9001);
	cr_assert_eq(bird_parse_protocols(&g.r[0], &row, 1, &total), -EINVAL);
	got_free(&g);

	parse_fixture("configure_broken", &g);
	cr_assert_eq(g.r[0].code, 8002);
	cr_assert_eq(g.r[0].lines[0].code, 2);
	cr_assert(strstr(g.r[0].text, "healthd.conf:1:"), "%s", g.r[0].text);
	got_free(&g);
}

Test(bird_reply, every_fixture_in_one_stream)
{
	static const char *const names[] = {
		"welcome", "show_status", "show_protocols", "show_protocols_all",
		"disable", "disable_already", "show_protocols_disabled", "enable",
		"enable_already", "disable_pattern", "no_match", "syntax_error",
		"configure", "configure_broken", "echo_all", "echo_async",
	};
	size_t n = sizeof(names) / sizeof(names[0]);
	struct bird_parser *p = bird_parser_new();
	struct got all = { 0 }, one = { 0 };

	for (size_t i = 0; i < n; i++) {
		size_t len;
		char *buf = load(names[i], &len);

		cr_assert_eq(bird_parser_feed(p, buf, len, collect, &all), 0);
		free(buf);
	}
	cr_assert_eq(all.n, n);
	for (size_t i = 0; i < n; i++) {
		parse_fixture(names[i], &one);
		cr_assert_eq(one.r[0].code, all.r[i].code, "%s", names[i]);
		cr_assert_eq(one.r[0].n_lines, all.r[i].n_lines, "%s", names[i]);
		got_free(&one);
	}
	got_free(&all);
	bird_parser_free(p);
}

/* The default time format of other set-ups: "DATE TIME", and an Info. */
Test(bird_reply, rows_with_date_and_info)
{
	static const char text[] =
		"2002-Name       Proto      Table      State  Since         Info\n"
		"1002-device1    Device     ---        up     2026-11-24 16:08:13  \n"
		" upstream4  BGP        ---        start  2026-11-24 16:10:02  Active        Socket: Connection refused\n"
		" anycast4   Static     master4    stop   2026-11-24 16:09:53  \n"
		" odd        Pipe       ---        feed   16:09:53.123\n"
		"0000 \n";
	struct bird_parser *p = bird_parser_new();
	struct got g = { 0 };
	struct bird_proto rows[4];

	cr_assert_eq(bird_parser_feed(p, text, sizeof(text) - 1, collect, &g), 0);
	cr_assert_eq(bird_parse_protocols(&g.r[0], rows, 4, NULL), 4);
	cr_assert_str_eq(rows[0].info, "");
	cr_assert_eq(rows[1].state, BIRD_PROTO_START);
	cr_assert_str_eq(rows[1].info, "Active        Socket: Connection refused");
	cr_assert_eq(rows[2].state, BIRD_PROTO_STOP);
	cr_assert_eq(rows[3].state, BIRD_PROTO_OTHER);
	got_free(&g);
	bird_parser_free(p);
}

Test(bird_reply, unparsable_rows)
{
	static const char text[] =
		"2002-Name       Proto      Table      State  Since         Info\n"
		"1002-lonely\n"
		"0000 \n";
	struct bird_parser *p = bird_parser_new();
	struct got g = { 0 };
	struct bird_proto row;

	cr_assert_eq(bird_parser_feed(p, text, sizeof(text) - 1, collect, &g), 0);
	cr_assert_eq(bird_parse_protocols(&g.r[0], &row, 1, NULL), -EPROTO);
	got_free(&g);
	/* a reply that is not a table at all */
	cr_assert_eq(bird_parser_feed(p, "0003 Reconfigured\n", 18, collect, &g), 0);
	cr_assert_eq(bird_parse_protocols(&g.r[0], &row, 1, NULL), -EPROTO);
	got_free(&g);
	bird_parser_free(p);
}

Test(bird_reply, crlf_and_bare_code)
{
	static const char text[] = "0009-web: disabled\r\n web2: disabled\r\n0000\r\n0000\n";
	struct bird_parser *p = bird_parser_new();
	struct got g = { 0 };

	cr_assert_eq(bird_parser_feed(p, text, sizeof(text) - 1, collect, &g), 0);
	cr_assert_eq(g.n, 2);
	cr_assert_eq(g.r[0].n_lines, 3);
	cr_assert_str_eq(g.r[0].lines[0].text, "web: disabled");
	cr_assert_str_eq(g.r[0].lines[1].text, "web2: disabled");
	cr_assert_eq(g.r[0].lines[1].code, 9);
	cr_assert_str_eq(g.r[0].text, "");
	cr_assert_eq(g.r[1].n_lines, 1);
	got_free(&g);
	bird_parser_free(p);
}

Test(bird_reply, longest_line_accepted)
{
	struct bird_parser *p = bird_parser_new();
	struct got g = { 0 };
	char *line = malloc(BIRD_LINE_MAX + 2);

	memset(line, 'x', BIRD_LINE_MAX);
	memcpy(line, "0000 ", 5);
	line[BIRD_LINE_MAX] = '\r';
	line[BIRD_LINE_MAX + 1] = '\n';
	cr_assert_eq(bird_parser_feed(p, line, BIRD_LINE_MAX + 2, collect, &g), 0);
	cr_assert_eq(strlen(g.r[0].text), BIRD_LINE_MAX - 5);
	got_free(&g);
	free(line);
	bird_parser_free(p);
}

struct hostile {
	char what[32];
	char bytes[48];         /* empty: an overlong line */
	size_t len;
	char error[48];         /* a part of bird_parser_error() */
};

#define H(what, s, err) { what, s, sizeof(s) - 1, err }

ParameterizedTestParameters(bird_reply, hostile)
{
	static struct hostile h[] = {
		H("garbage", "hello, world\n", "no four-digit code in \"hello, world\""),
		H("three-digit code", "000 ok\n", "no four-digit code"),
		H("short line", "12\n", "no four-digit code"),
		H("NUL", "0001 BIRD\0 ready\n", "NUL byte"),
		/* the bytes from the NUL on are quoted, not only those before it */
		H("NUL first", "\0\xffjunk\n", "NUL byte in \"\\x00\\xffjunk\\x0a\""),
		H("empty line", "0009-x: disabled\n\n", "empty line"),
		H("bad separator", "0001:ready\n", "neither"),
		H("orphan continuation", " anycast4 up\n", "continuation outside a block"),
		H("after a good reply", "0000 \nHTTP/1.1 200 OK\r\n", "no four-digit code"),
		{ "overlong line", "", 0, "longer than BIRD_LINE_MAX" },
	};
	return cr_make_param_array(struct hostile, h, sizeof(h) / sizeof(h[0]));
}

ParameterizedTest(struct hostile *h, bird_reply, hostile)
{
	struct bird_parser *p = bird_parser_new();
	struct got g = { 0 };
	char *buf = NULL;
	const char *bytes = h->bytes;
	size_t len = h->len;

	if (!len) {
		len = BIRD_LINE_MAX + 10;
		buf = malloc(len);
		memset(buf, '1', len);  /* digits only: only the length is wrong */
		bytes = buf;
	}
	cr_assert_eq(bird_parser_feed(p, bytes, len, collect, &g), -EPROTO, "%s", h->what);
	cr_assert(strstr(bird_parser_error(p), h->error), "%s: got \"%s\"", h->what,
		  bird_parser_error(p));
	/* the stream stays refused until the caller resets */
	cr_assert_eq(bird_parser_feed(p, "0000 \n", 6, collect, &g), -EPROTO);
	got_free(&g);
	bird_parser_reset(p);
	cr_assert_eq(bird_parser_feed(p, "0001 BIRD ready.\n", 17, collect, &g), 0);
	cr_assert_eq(g.n, 1);
	cr_assert_eq(g.r[0].code, 1);
	got_free(&g);
	free(buf);
	bird_parser_free(p);
}

/* ---- routes.c: what the fleet guard reads (fixtures from
 * tests/fixtures/capture-bird-fleet.sh: a reflector 198.51.100.1, clients
 * c2 198.51.100.2 "degraded" and c3 198.51.100.3 draining) ---- */

TestSuite(bird_routes, .timeout = 10);

#define RID(a, b, c, d) (((uint32_t)(a) << 24) | ((uint32_t)(b) << 16) | ((uint32_t)(c) << 8) | (uint32_t)(d))

static struct cfg_community gshut = { .v = { 65535, 0 } };
static const struct cfg_communities draining = { &gshut, 1 };

static int routes_of(const char *fixture, struct bird_route *rt, size_t max)
{
	struct got g = { 0 };
	int n;

	parse_fixture(fixture, &g);
	n = bird_parse_routes(&g.r[0], rt, max, NULL);
	got_free(&g);
	return n;
}

static int peers_of(const char *fixture, struct bird_bgp_peer *p, size_t max)
{
	struct got g = { 0 };
	int n;

	parse_fixture(fixture, &g);
	n = bird_parse_bgp_peers(&g.r[0], p, max, NULL);
	got_free(&g);
	return n;
}

Test(bird_routes, a_client_sees_its_own_path_the_reflectors_and_a_reflected_one)
{
	struct bird_route rt[8];

	cr_assert_eq(routes_of("fleet_route_client", rt, 8), 3);
	cr_assert_str_eq(rt[0].proto, "healthd_web_v4");
	cr_assert_not(rt[0].bgp, "Type: static univ");
	cr_assert_eq(rt[0].n_communities, 1);
	cr_assert_eq(rt[0].communities[0].v[1], 300);
	cr_assert_str_eq(rt[1].proto, "ibgp_rr_v4");
	cr_assert(rt[1].bgp);
	cr_assert_not(rt[1].has_originator, "learnt from the reflector itself");
	cr_assert_eq(rt[1].communities[0].v[1], 100);
	cr_assert_str_eq(rt[2].proto, "ibgp_rr_v4", "\"[ibgp_rr_v4 DATE TIME from ...]\"");
	cr_assert(rt[2].has_originator);
	cr_assert_eq(rt[2].originator, RID(198, 51, 100, 3));
	cr_assert_eq(rt[2].n_communities, 1);
	cr_assert_eq(rt[2].communities[0].v[0], 65535);
}

Test(bird_routes, no_path_is_an_answer_not_an_error)
{
	struct bird_route rt[2];

	cr_assert_eq(routes_of("fleet_route_not_found", rt, 2), 0, "8001 Network not found");
	cr_assert_eq(routes_of("fleet_route_alone", rt, 2), 1);
	cr_assert_str_eq(rt[0].proto, "healthd_web_v4");
}

Test(bird_routes, bgp_sessions_with_their_neighbour_ids)
{
	struct bird_bgp_peer p[8];

	cr_assert_eq(peers_of("fleet_protocols_all_client", p, 8), 1, "device and static are no BGP");
	cr_assert_str_eq(p[0].name, "ibgp_rr_v4");
	cr_assert(p[0].established);
	cr_assert(p[0].internal);
	cr_assert(p[0].has_id);
	cr_assert_eq(p[0].neighbor_id, RID(198, 51, 100, 1));
	cr_assert_eq(peers_of("fleet_protocols_all_reflector", p, 8), 2);
	cr_assert_str_eq(p[0].name, "ibgp_c2_v4");
	cr_assert_eq(p[0].neighbor_id, RID(198, 51, 100, 2));
	cr_assert_str_eq(p[1].name, "ibgp_c3_v4");
	cr_assert_eq(p[1].neighbor_id, RID(198, 51, 100, 3));
	cr_assert(p[1].established && p[1].internal);
	cr_assert_eq(peers_of("fleet_protocols_all_down", p, 8), 1);
	cr_assert_not(p[0].established);
	cr_assert(p[0].internal);
	cr_assert_not(p[0].has_id, "no Neighbor ID while the session is down");
}

Test(bird_routes, router_id_of_show_status)
{
	struct got g = { 0 };
	uint32_t id = 0;

	parse_fixture("show_status", &g);
	cr_assert_eq(bird_parse_router_id(&g.r[0], &id), 0);
	cr_assert_eq(id, RID(198, 51, 100, 1));
	got_free(&g);
	parse_fixture("show_protocols", &g);
	cr_assert_eq(bird_parse_router_id(&g.r[0], &id), -EPROTO);
	got_free(&g);
}

Test(bird_routes, announcers_seen_from_a_client)
{
	struct bird_route rt[8];
	struct bird_bgp_peer p[8];
	struct bird_announcers a;
	int n = routes_of("fleet_route_client", rt, 8), np = peers_of("fleet_protocols_all_client", p, 8);

	bird_fleet_announcers(rt, (size_t)n, p, (size_t)np, RID(198, 51, 100, 2), &draining, &a);
	cr_assert_eq(a.n_announcing, 1, "the reflector, by its neighbour id");
	cr_assert_eq(a.announcing[0], RID(198, 51, 100, 1));
	cr_assert_eq(a.n_leaving, 1, "c3, by its originator id, draining");
	cr_assert_eq(a.leaving[0], RID(198, 51, 100, 3));
	/* without a draining set c3 announces */
	bird_fleet_announcers(rt, (size_t)n, p, (size_t)np, RID(198, 51, 100, 2), NULL, &a);
	cr_assert_eq(a.n_announcing, 2);
	cr_assert_eq(a.n_leaving, 0);
}

Test(bird_routes, announcers_seen_from_the_reflector)
{
	struct bird_route rt[8];
	struct bird_bgp_peer p[8];
	struct bird_announcers a;
	int n = routes_of("fleet_route_reflector", rt, 8), np = peers_of("fleet_protocols_all_reflector", p, 8);

	bird_fleet_announcers(rt, (size_t)n, p, (size_t)np, RID(198, 51, 100, 1), &draining, &a);
	cr_assert_eq(a.n_announcing, 1);
	cr_assert_eq(a.announcing[0], RID(198, 51, 100, 2));
	cr_assert_eq(a.n_leaving, 1);
	cr_assert_eq(a.leaving[0], RID(198, 51, 100, 3));
}

Test(bird_routes, paths_of_unknown_or_external_sessions_and_our_own_id_do_not_count)
{
	struct bird_route rt[8];
	struct bird_bgp_peer p[8];
	struct bird_announcers a;
	int n = routes_of("fleet_route_client", rt, 8), np = peers_of("fleet_protocols_all_client", p, 8);

	bird_fleet_announcers(rt, (size_t)n, p, 0, RID(198, 51, 100, 2), &draining, &a);
	cr_assert_eq(a.n_announcing + a.n_leaving, 0, "no session known: nobody");
	p[0].internal = false;
	bird_fleet_announcers(rt, (size_t)n, p, (size_t)np, RID(198, 51, 100, 2), &draining, &a);
	cr_assert_eq(a.n_announcing + a.n_leaving, 0, "eBGP paths are not the fleet");
	p[0].internal = true;
	bird_fleet_announcers(rt, (size_t)n, p, (size_t)np, RID(198, 51, 100, 3), &draining, &a);
	cr_assert_eq(a.n_leaving, 0, "a path reflected back with our own id is us");
	cr_assert_eq(a.n_announcing, 1);
}

Test(bird_routes, replies_that_are_not_routes)
{
	struct bird_route rt[2];
	struct bird_bgp_peer p[2];
	struct bird_line bad_comm[] = {
		{ 1007, "Table master4:" },
		{ 1007, "192.0.2.0/24 unicast [ibgp_x 12:00:00] * (100) [i]" },
		{ 1012, "\tBGP.community: (64496,100" },
		{ 0, "" },
	};
	struct bird_line bad_orig[] = {
		{ 1007, "192.0.2.0/24 unicast [ibgp_x 12:00:00] * (100) [i]" },
		{ 1012, "\tBGP.originator_id: 1.2.3" },
		{ 0, "" },
	};
	struct bird_line err[] = { { 9001, "syntax error" } };
	struct bird_line rows[] = { { 1002, "ibgp_x BGP --- up 12:00:00 Established" }, { 0, "" } };

	cr_assert_eq(bird_parse_routes(&(struct bird_reply){ 0, "", bad_comm, 4 }, rt, 2, NULL), -EPROTO);
	cr_assert_eq(bird_parse_routes(&(struct bird_reply){ 0, "", bad_orig, 3 }, rt, 2, NULL), -EPROTO);
	cr_assert_eq(bird_parse_routes(&(struct bird_reply){ 9001, "syntax error", err, 1 }, rt, 2, NULL), -EINVAL);
	cr_assert_eq(bird_parse_bgp_peers(&(struct bird_reply){ 0, "", rows, 2 }, p, 2, NULL), -EPROTO,
		     "rows without the heading");
	cr_assert_eq(bird_parse_bgp_peers(&(struct bird_reply){ 9001, "syntax error", err, 1 }, p, 2, NULL), -EINVAL);
}
