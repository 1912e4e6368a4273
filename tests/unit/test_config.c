/*
 * Tests of config/: the loader's errors (exact FILE:LINE:COL: KEY), its
 * defaults and warnings, the value parsers, and the printer against golden
 * files. Run from the repository root.
 *
 * Golden files: tests/unit/golden/config/NAME.yaml is loaded and printed;
 * the output must equal NAME.out. After an intended change of the printed
 * form, regenerate them with
 *     HEALTHD_UPDATE_GOLDEN=1 build/std/tests/test_config
 * and review the diff.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config/config.h"
#include "tests/lib/testlib.h"

#define GOLDEN_DIR "tests/unit/golden/config"
#define EXAMPLES_DIR "config/examples"

TestSuite(config, .timeout = 20);

static struct config *load(const char *yaml)
{
	char err[512];
	struct config *cfg = cfg_load_string("t.yaml", yaml, strlen(yaml), err,
					     sizeof(err));

	cr_assert_not_null(cfg, "unexpected error: %s", err);
	return cfg;
}

static char *print_str(const struct config *cfg)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	cr_assert_not_null(f);
	cfg_print(f, cfg);
	fclose(f);
	return buf;
}


static bool has_suffix(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n > m && strcmp(s + n - m, suffix) == 0;
}

/* A check whose printed form hides a secret: it loads back with *** in
 * its place, equal but for the URL and the redacted header values. */
static bool check_equal_but_secrets(const struct cfg_check *a, const struct cfg_check *b)
{
	struct cfg_check c = *b;
	char url[512];

	if (a->url && b->url && !strcmp(cfg_redact_url(a->url, url, sizeof(url)), b->url))
		c.url = a->url;
	if (a->n_headers == b->n_headers) {
		struct cfg_header h[a->n_headers + 1];

		for (size_t i = 0; i < a->n_headers; i++) {
			h[i] = b->headers[i];
			if (cfg_header_redacted(a, a->headers[i].name) &&
			    !strcmp(b->headers[i].value, CFG_REDACTED))
				h[i].value = a->headers[i].value;
		}
		c.headers = h;
		return cfg_check_equal(a, &c);
	}
	return cfg_check_equal(a, &c);
}

/* print → load → print gives the same text, and the same checks (but for
 * secrets, which print as ***). */
static void assert_round_trip(const struct config *cfg, const char *what)
{
	char err[512];
	char *a = print_str(cfg);
	struct config *again = cfg_load_string("printed", a, strlen(a), err, sizeof(err));

	cr_assert_not_null(again, "%s: printed config does not load: %s\n%s", what, err, a);
	char *b = print_str(again);
	cr_assert_str_eq(a, b, "%s: print is not stable", what);
	cr_assert_eq(again->n_services, cfg->n_services);
	for (size_t i = 0; i < cfg->n_services; i++) {
		cr_assert_eq(again->services[i].n_checks, cfg->services[i].n_checks);
		for (size_t j = 0; j < cfg->services[i].n_checks; j++)
			cr_assert(check_equal_but_secrets(&cfg->services[i].checks[j],
							  &again->services[i].checks[j]),
				  "%s: check %zu.%zu differs after a round trip", what, i, j);
	}
	free(a);
	free(b);
	cfg_free(again);
}

static int each_yaml(const char *dir, void (*fn)(const char *path))
{
	struct dirent **ents;
	int n = scandir(dir, &ents, NULL, alphasort), count = 0;

	cr_assert_geq(n, 0, "%s: %s (run from the repository root)", dir, strerror(errno));
	for (int i = 0; i < n; i++) {
		char path[512];

		if (has_suffix(ents[i]->d_name, ".yaml")) {
			snprintf(path, sizeof(path), "%s/%s", dir, ents[i]->d_name);
			fn(path);
			count++;
		}
		free(ents[i]);
	}
	free(ents);
	return count;
}

static void golden_one(const char *path)
{
	char err[512], out_path[512];
	struct config *cfg = cfg_load(path, err, sizeof(err));

	cr_assert_not_null(cfg, "%s", err);
	snprintf(out_path, sizeof(out_path), "%.*s.out", (int)(strlen(path) - 5), path);
	char *got = print_str(cfg);
	const char *update = getenv("HEALTHD_UPDATE_GOLDEN");
	if (update && strcmp(update, "1") == 0) {
		FILE *f = fopen(out_path, "w");

		cr_assert_not_null(f, "%s: %s", out_path, strerror(errno));
		fputs(got, f);
		fclose(f);
	}
	char *want = testlib_read_file(out_path);
	cr_assert_not_null(want, "%s missing (HEALTHD_UPDATE_GOLDEN=1 writes it)", out_path);
	cr_assert_str_eq(got, want, "%s: printed config differs from %s:\n%s", path,
			 out_path, got);
	assert_round_trip(cfg, path);
	free(got);
	free(want);
	cfg_free(cfg);
}

Test(config, golden_files)
{
	cr_assert_geq(each_yaml(GOLDEN_DIR, golden_one), 3);
}

static void example_one(const char *path)
{
	char err[512];
	struct config *cfg;

	if (has_suffix(path, "/mesh.yaml"))
		return; /* the mesh inventory: test_mesh.c */
	if (has_suffix(path, "/meshd.yaml"))
		return; /* meshd's own file: test_meshd.c */
	cfg = cfg_load(path, err, sizeof(err));

	cr_assert_not_null(cfg, "shipped example does not load: %s", err);
	cr_assert_geq(cfg->n_services, 1);
	assert_round_trip(cfg, path);
	cfg_free(cfg);
}

Test(config, shipped_examples_load)
{
	cr_assert_geq(each_yaml(EXAMPLES_DIR, example_one), 1);
}

Test(config, example_is_the_documented_node)
{
	char err[512];
	struct config *cfg = cfg_load(EXAMPLES_DIR "/healthd.yaml", err, sizeof(err));

	cr_assert_not_null(cfg, "%s", err);
	cr_assert_str_eq(cfg->node, "lax1");
	const struct cfg_service *web = cfg_service_find(cfg, "web");
	cr_assert_not_null(web);
	cr_assert_null(cfg_service_find(cfg, "mail"));
	cr_assert_eq(web->n_prefixes, 2);
	cr_assert_str_eq(web->prefixes[0].text, "192.30.120.10/32");
	cr_assert_str_eq(web->prefixes[1].text, "2620:71:4000::10/128");
	cr_assert_eq(web->prefixes[1].family, AF_INET6);
	cr_assert_eq(web->n_checks, 4);
	cr_assert_str_eq(web->checks[3].type, "wireguard");
	cr_assert_str_eq(web->checks[3].interface, "wg0");
	cr_assert_eq(web->checks[3].on_fail, CFG_ON_FAIL_DEGRADE);
	cr_assert_str_eq(web->checks[1].connect_to, "127.0.0.1:443");
	cr_assert_str_eq(web->checks[2].type, "tcp");
	cr_assert_eq(web->checks[2].port, 443);
	cr_assert_eq(web->checks[2].on_fail, CFG_ON_FAIL_DEGRADE);
	cr_assert_eq(cfg->n_warnings, 2, "a /32 and a /128 each draw a warning");
	cfg_free(cfg);
}

/* ---- broken inputs: each error names FILE:LINE:COL: KEY ---- */

struct broken {
	char name[48];
	char yaml[640];
	char expect[320];      /* a prefix of the error */
};

/* Lines 1-4: one service; a check list follows at line 5, column 9. */
#define P "services:\n  - name: web\n    prefixes: [\"192.0.2.0/24\"]\n    checks:\n"
/* Lines 5-8: a valid tcp check. */
#define TCP "      - name: a\n        type: tcp\n        host: 127.0.0.1\n        port: 80\n"
/* Lines 5-7: a valid http check. */
#define HTTP "      - name: a\n        type: http\n        url: http://x/\n"
/* Lines 5-7: a valid wireguard check; two keys as `wg genkey | wg pubkey` prints them. */
#define WG "      - name: a\n        type: wireguard\n        interface: wg0\n"
/* A dns check, line 5 to 7. */
#define DNS "      - name: a\n        type: dns\n        qname: www.example.net\n"
#define WGK1 "0+n7PJLb8IXwhF35aUMnDb2YNd/yqUFw2IJ/bOfTNwI="
#define WGK2 "E0gPXQKhr5O0E/kmqM5HKTsM7ap/vhmUW1R4glu6QTw="
/* Lines 5-6 (7 with the command): an exec check. */
#define EXEC_NC "      - name: a\n        type: exec\n"
#define EXEC EXEC_NC "        command: [/bin/true]\n"
#define SVC2 "  - name: db\n    prefixes: [\"198.51.100.0/24\"]\n    checks:\n"

ParameterizedTestParameters(config, broken)
{
	static struct broken cases[] = {
		{ "empty", "", "t.yaml:1:1: config: the file is empty" },
		{ "only_comments", "# nothing\n", "t.yaml:1:1: config: the file is empty" },
		{ "syntax", "node: [a\n", "t.yaml:2:1: yaml: did not find expected ',' or ']' (while parsing a flow sequence at line 1)" },
		{ "tab", "\ta: 1\n", "t.yaml:1:1: yaml: found character that cannot start any token" },
		{ "anchor", P TCP "node: &n x\nbird:\n  socket: *n\n", "t.yaml:9:7: yaml: anchors and aliases are not supported" },
		{ "two_documents", P TCP "---\nnode: x\n", "t.yaml:9:1: yaml: only one YAML document is allowed" },
		{ "root_list", "- a\n", "t.yaml:1:1: config: expected a mapping, found a list" },
		{ "complex_key", "? [a]\n: b\n", "t.yaml:1:3: config: a key must be a string, found a list" },
		{ "unknown_top", P TCP "nodes: x\n", "t.yaml:9:1: nodes: unknown key" },
		{ "duplicate_top", P TCP "node: a\nnode: b\n", "t.yaml:10:1: node: duplicate key (first at line 9)" },
		{ "no_services", "node: a\n", "t.yaml:1:1: services: missing required key" },
		{ "services_map", "services: {}\n", "t.yaml:1:11: services: expected a list, found a mapping" },
		{ "services_empty", "services: []\n", "t.yaml:1:11: services: must not be empty" },
		{ "node_null", P TCP "node:\n", "t.yaml:9:6: node: expected a string, found nothing" },
		{ "node_list", P TCP "node: [a]\n", "t.yaml:9:7: node: expected a string, found a list" },
		{ "bird_scalar", P TCP "bird: yes\n", "t.yaml:9:7: bird: expected a mapping, found a scalar" },
		{ "bird_unknown", P TCP "bird:\n  sock: x\n", "t.yaml:10:3: bird.sock: unknown key" },
		{ "socket_empty", P TCP "bird:\n  socket: \"\"\n", "t.yaml:10:11: bird.socket: must not be empty" },
		{ "duration_no_unit", P TCP "bird:\n  timeout: 2\n", "t.yaml:10:12: bird.timeout: '2' is not a duration" },
		{ "duration_negative", P TCP "bird:\n  timeout: -1s\n", "t.yaml:10:12: bird.timeout: '-1s' is not a duration" },
		{ "duration_fraction", P TCP "bird:\n  timeout: 1.5s\n", "t.yaml:10:12: bird.timeout: '1.5s' is not a duration" },
		{ "duration_unit", P TCP "bird:\n  timeout: 2d\n", "t.yaml:10:12: bird.timeout: '2d' is not a duration" },
		{ "duration_space", P TCP "bird:\n  timeout: 2 s\n", "t.yaml:10:12: bird.timeout: '2 s' is not a duration" },
		{ "duration_overflow", P TCP "bird:\n  reconcile: 99999999999999999999ms\n", "t.yaml:10:14: bird.reconcile: duration '99999999999999999999ms' is too large (at most 1h)" },
		{ "duration_unit_overflow", P TCP "bird:\n  reconcile: 18446744073709551615h\n", "t.yaml:10:14: bird.reconcile: duration '18446744073709551615h' is too large (at most 1h)" },
		{ "duration_u64_max_ms", P TCP "bird:\n  reconcile: 18446744073709551615ms\n", "t.yaml:10:14: bird.reconcile: duration '18446744073709551615ms' is too large (at most 1h)" },
		{ "duration_past_year", P TCP "bird:\n  reconcile: 8761h\n", "t.yaml:10:14: bird.reconcile: duration '8761h' is too large (at most 1h)" },
		{ "duration_overflow_junk", P TCP "bird:\n  reconcile: 99999999999999999999xs\n", "t.yaml:10:14: bird.reconcile: '99999999999999999999xs' is not a duration" },
		{ "reconcile_long", P TCP "bird:\n  reconcile: 61m\n", "t.yaml:10:14: bird.reconcile: must be at most 1h, found 61m" },
		{ "bird_timeout_long", P TCP "bird:\n  timeout: 301s\n", "t.yaml:10:12: bird.timeout: must be at most 5m, found 301s" },
		{ "bird_socket_long", P TCP "bird:\n  socket: /run/bird/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.ctl\n", "t.yaml:10:11: bird.socket: '/run/bird/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.ctl' is 108 bytes, longer than the 107 a unix socket path may have" },
		{ "bird_purge", P TCP "bird:\n  purge: yes\n", "t.yaml:10:10: bird.purge: expected true or false, found 'yes'" },
		{ "control_socket_long", P TCP "control:\n  socket: /run/healthd/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.sock\n", "t.yaml:10:11: control.socket: '/run/healthd/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.sock' is 108 bytes" },
		{ "control_socket_empty", P TCP "control:\n  socket: \"\"\n", "t.yaml:10:11: control.socket: must not be empty" },
		{ "reconcile_short", P TCP "bird:\n  reconcile: 5ms\n", "t.yaml:10:14: bird.reconcile: must be at least 10ms, found 5ms" },
		{ "control_unknown", P TCP "control:\n  path: x\n", "t.yaml:10:3: control.path: unknown key" },
		{ "listen_bare_v6", P TCP "http:\n  listen: [\"::1:9110\"]\n", "t.yaml:10:12: http.listen[0]: '::1:9110' is not ADDR:PORT" },
		{ "listen_name", P TCP "http:\n  listen: [\"localhost:9110\"]\n", "t.yaml:10:12: http.listen[0]: 'localhost:9110' is not ADDR:PORT" },
		{ "listen_port0", P TCP "http:\n  listen: [\"127.0.0.1:0\"]\n", "t.yaml:10:12: http.listen[0]: '127.0.0.1:0' is not ADDR:PORT" },
		{ "listen_no_port", P TCP "http:\n  listen: [\"[::1]\"]\n", "t.yaml:10:12: http.listen[0]: '[::1]' is not ADDR:PORT" },
		{ "listen_scalar", P TCP "http:\n  listen: 127.0.0.1:9110\n", "t.yaml:10:11: http.listen: expected a list, found a scalar" },
		{ "per_source_0", P TCP "http:\n  per_source_limit: 0\n", "t.yaml:10:21: http.per_source_limit: expected an integer from 1 to 512, found '0'" },
		{ "per_source_513", P TCP "http:\n  per_source_limit: 513\n", "t.yaml:10:21: http.per_source_limit: expected an integer from 1 to 512, found '513'" },
		{ "defaults_rise0", P TCP "defaults:\n  rise: 0\n", "t.yaml:10:9: defaults.rise: expected an integer from 1 to 100, found '0'" },
		{ "defaults_fall101", P TCP "defaults:\n  fall: 101\n", "t.yaml:10:9: defaults.fall: expected an integer from 1 to 100, found '101'" },
		{ "defaults_interval", P TCP "defaults:\n  interval: 9ms\n", "t.yaml:10:13: defaults.interval: must be at least 10ms, found 9ms" },
		{ "defaults_timeout", P TCP "defaults:\n  timeout: 0ms\n", "t.yaml:10:12: defaults.timeout: must be at least 1ms, found 0ms" },
		{ "service_no_name", "services:\n  - prefixes: [\"192.0.2.0/24\"]\n    checks: []\n", "t.yaml:2:5: services[0].name: missing required key" },
		{ "service_scalar", "services:\n  - web\n", "t.yaml:2:5: services[0]: expected a mapping, found a scalar" },
		{ "service_upper", "services:\n  - name: Web\n    prefixes: [\"192.0.2.0/24\"]\n    checks:\n" TCP, "t.yaml:2:11: services[0].name: 'Web' is not a valid name" },
		{ "service_dash", "services:\n  - name: web-1\n    prefixes: [\"192.0.2.0/24\"]\n    checks:\n" TCP, "t.yaml:2:11: services[0].name: 'web-1' is not a valid name" },
		{ "service_long", "services:\n  - name: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n    prefixes: [\"192.0.2.0/24\"]\n    checks:\n" TCP, "t.yaml:2:11: services[0].name: 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa' is not a valid name" },
		{ "service_longer_than_bird_allows", "services:\n  - name: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n    prefixes: [\"192.0.2.0/24\"]\n    checks:\n" TCP, "t.yaml:2:11: services[0].name: 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa' is longer than 43 characters: BIRD's protocol healthd_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa_v4_degraded would pass its 63-character limit" },
		{ "service_duplicate", P TCP "  - name: web\n    prefixes: [\"198.51.100.0/24\"]\n    checks:\n" TCP, "t.yaml:9:11: services[1].name: duplicate service name 'web' (first at line 2)" },
		{ "service_unknown", P TCP "    drian: 1s\n", "t.yaml:9:5: services[0].drian: unknown key" },
		{ "no_prefixes", "services:\n  - name: web\n    checks: []\n", "t.yaml:2:5: services[0].prefixes: missing required key" },
		{ "prefixes_empty", "services:\n  - name: web\n    prefixes: []\n    checks:\n" TCP, "t.yaml:3:15: services[0].prefixes: must not be empty" },
		{ "prefixes_scalar", "services:\n  - name: web\n    prefixes: 192.0.2.0/24\n    checks:\n" TCP, "t.yaml:3:15: services[0].prefixes: expected a list, found a scalar" },
		{ "prefix_list", "services:\n  - name: web\n    prefixes: [[1]]\n    checks:\n" TCP, "t.yaml:3:16: services[0].prefixes[0]: expected a prefix, found a list" },
		{ "prefix_host_bits", "services:\n  - name: web\n    prefixes: [\"192.0.2.1/24\"]\n    checks:\n" TCP, "t.yaml:3:16: services[0].prefixes[0]: '192.0.2.1/24' has host bits set (the prefix is 192.0.2.0/24)" },
		{ "prefix_host_bits_v6", "services:\n  - name: web\n    prefixes: [\"2001:db8::1/32\"]\n    checks:\n" TCP, "t.yaml:3:16: services[0].prefixes[0]: '2001:db8::1/32' has host bits set (the prefix is 2001:db8::/32)" },
		{ "prefix_no_len", "services:\n  - name: web\n    prefixes: [\"192.0.2.0\"]\n    checks:\n" TCP, "t.yaml:3:16: services[0].prefixes[0]: '192.0.2.0' is not a prefix" },
		{ "prefix_len", "services:\n  - name: web\n    prefixes: [\"2001:db8::/129\"]\n    checks:\n" TCP, "t.yaml:3:16: services[0].prefixes[0]: '2001:db8::/129' is not a prefix" },
		{ "prefix_addr", "services:\n  - name: web\n    prefixes: [\"192.0.2.256/32\"]\n    checks:\n" TCP, "t.yaml:3:16: services[0].prefixes[0]: '192.0.2.256/32' is not a prefix" },
		{ "prefix_duplicate", "services:\n  - name: web\n    prefixes: [\"192.0.2.0/24\", \"192.0.2.0/24\"]\n    checks:\n" TCP, "t.yaml:3:32: services[0].prefixes[1]: duplicate prefix 192.0.2.0/24" },
		{ "prefix_other_service", P TCP "  - name: db\n    prefixes: [\"192.0.2.0/24\"]\n    checks:\n" TCP, "t.yaml:10:16: services[1].prefixes[0]: prefix 192.0.2.0/24 is already announced by service web" },
		{ "prefix_same_normalised", "services:\n  - name: web\n    prefixes: [\"2001:db8::/48\", \"2001:db8:0::/48\"]\n    checks:\n" TCP, "t.yaml:3:33: services[0].prefixes[1]: duplicate prefix 2001:db8::/48" },
		{ "community_range", P TCP "    communities:\n      up: [\"65536:1\"]\n", "t.yaml:10:12: services[0].communities.up[0]: '65536:1' is not a community" },
		{ "community_four", P TCP "    communities:\n      up: [\"1:2:3:4\"]\n", "t.yaml:10:12: services[0].communities.up[0]: '1:2:3:4' is not a community" },
		{ "community_words", P TCP "    communities:\n      degraded: [\"a:b\"]\n", "t.yaml:10:18: services[0].communities.degraded[0]: 'a:b' is not a community" },
		{ "community_single", P TCP "    communities:\n      up: [\"1\"]\n", "t.yaml:10:12: services[0].communities.up[0]: '1' is not a community" },
		{ "community_large_range", P TCP "    communities:\n      draining: [\"4294967296:1:1\"]\n", "t.yaml:10:18: services[0].communities.draining[0]: '4294967296:1:1' is not a community" },
		{ "community_duplicate", P TCP "    communities:\n      up: [\"1:2\", \"1:2\"]\n", "t.yaml:10:19: services[0].communities.up[1]: duplicate community '1:2'" },
		{ "community_set", P TCP "    communities:\n      down: []\n", "t.yaml:10:7: services[0].communities.down: unknown key" },
		{ "community_scalar", P TCP "    communities:\n      up: \"1:2\"\n", "t.yaml:10:11: services[0].communities.up: expected a list, found a scalar" },
		{ "on_stop", P TCP "    on_stop: stop\n", "t.yaml:9:14: services[0].on_stop: 'stop' is not one of keep, drain, withdraw" },
		{ "drain", P TCP "    drain: 30\n", "t.yaml:9:12: services[0].drain: '30' is not a duration" },
		{ "drain_overflow", P TCP "    drain: 5124095576030h\n", "t.yaml:9:12: services[0].drain: duration '5124095576030h' is too large (at most 168h)" },
		{ "drain_long", P TCP "    drain: 169h\n", "t.yaml:9:12: services[0].drain: must be at most 168h, found 169h" },
		{ "hold_down_long", P TCP "    hold_down: 1441m\n", "t.yaml:9:16: services[0].hold_down: must be at most 24h, found 1441m" },
		{ "guard_scalar", P TCP "    guard: 1\n", "t.yaml:9:12: services[0].guard: expected a mapping, found a scalar" },
		{ "guard_unknown", P TCP "    guard:\n      min: 1\n", "t.yaml:10:7: services[0].guard.min: unknown key" },
		{ "guard_min_many", P TCP "    guard:\n      min_announcers: 1001\n", "t.yaml:10:23: services[0].guard.min_announcers: expected an integer from 0 to 1000, found '1001'" },
		{ "guard_min_negative", P TCP "    guard:\n      min_announcers: -1\n", "t.yaml:10:23: services[0].guard.min_announcers:" },
		{ "guard_step_short", P TCP "    guard:\n      step: 1s\n", "t.yaml:10:13: services[0].guard.step: step (1s) must be at least 3 times interval (500ms)" },
		{ "guard_interval_long", P TCP "    guard:\n      interval: 1s\n", "t.yaml:10:17: services[0].guard.interval: step (2s) must be at least 3 times interval (1s)" },
		{ "guard_interval_fast", P TCP "    guard:\n      interval: 99ms\n", "t.yaml:10:17: services[0].guard.interval: must be at least 100ms, found 99ms" },
		{ "guard_step_long", P TCP "    guard:\n      step: 11m\n", "t.yaml:10:13: services[0].guard.step: must be at most 10m, found 11m" },
		{ "dampening_scalar", P TCP "    dampening: yes\n", "t.yaml:9:16: services[0].dampening: expected a mapping, found a scalar" },
		{ "dampening_unknown", P TCP "    dampening:\n      halflife: 1m\n", "t.yaml:10:7: services[0].dampening.halflife: unknown key" },
		{ "dampening_duplicate", P TCP "    dampening:\n      reuse: 1\n      reuse: 2\n", "t.yaml:11:7: services[0].dampening.reuse: duplicate key (first at line 10)" },
		{ "half_life_short", P TCP "    dampening:\n      half_life: 999ms\n", "t.yaml:10:18: services[0].dampening.half_life: must be at least 1s, found 999ms" },
		{ "half_life_no_unit", P TCP "    dampening:\n      half_life: 60\n", "t.yaml:10:18: services[0].dampening.half_life: '60' is not a duration" },
		{ "max_suppress_zero", P TCP "    dampening:\n      max_suppress: 0s\n", "t.yaml:10:21: services[0].dampening.max_suppress: must be at least 1ms, found 0s" },
		{ "max_suppress_long", P TCP "    dampening:\n      max_suppress: 25h\n", "t.yaml:10:21: services[0].dampening.max_suppress: must be at most 24h, found 25h" },
		{ "half_life_long", P TCP "    dampening:\n      half_life: 86400001ms\n", "t.yaml:10:18: services[0].dampening.half_life: must be at most 24h, found 86400001ms" },
		{ "half_life_overflow", P TCP "    dampening:\n      half_life: 18446744073709551615ms\n", "t.yaml:10:18: services[0].dampening.half_life: duration '18446744073709551615ms' is too large (at most 24h)" },
		{ "penalty_huge", P TCP "    dampening:\n      penalty: 1e308\n", "t.yaml:10:16: services[0].dampening.penalty: must be at most 1000000, found '1e308'" },
		{ "suppress_huge", P TCP "    dampening:\n      suppress: 1000000.5\n", "t.yaml:10:17: services[0].dampening.suppress: must be at most 1000000, found '1000000.5'" },
		{ "reuse_huge", P TCP "    dampening:\n      reuse: 2e6\n", "t.yaml:10:14: services[0].dampening.reuse: must be at most 1000000, found '2e6'" },
		{ "penalty_negative_inf", P TCP "    dampening:\n      penalty: -.inf\n", "t.yaml:10:16: services[0].dampening.penalty: expected a number greater than 0, found '-.inf'" },
		{ "penalty_nan_upper", P TCP "    dampening:\n      penalty: .NaN\n", "t.yaml:10:16: services[0].dampening.penalty: expected a number greater than 0, found '.NaN'" },
		{ "penalty_underflow", P TCP "    dampening:\n      penalty: 1e-400\n", "t.yaml:10:16: services[0].dampening.penalty: expected a number greater than 0, found '1e-400'" },
		{ "suppress_zero", P TCP "    dampening:\n      suppress: 0\n", "t.yaml:10:17: services[0].dampening.suppress: expected a number greater than 0, found '0'" },
		{ "suppress_zero_point", P TCP "    dampening:\n      suppress: 0.0\n", "t.yaml:10:17: services[0].dampening.suppress: expected a number greater than 0, found '0.0'" },
		{ "suppress_hex", P TCP "    dampening:\n      suppress: 0x10\n", "t.yaml:10:17: services[0].dampening.suppress: expected a number greater than 0, found '0x10'" },
		{ "suppress_list", P TCP "    dampening:\n      suppress: [1]\n", "t.yaml:10:17: services[0].dampening.suppress: expected a number, found a list" },
		{ "reuse_negative", P TCP "    dampening:\n      reuse: -5\n", "t.yaml:10:14: services[0].dampening.reuse: expected a number greater than 0, found '-5'" },
		{ "penalty_word", P TCP "    dampening:\n      penalty: lots\n", "t.yaml:10:16: services[0].dampening.penalty: expected a number greater than 0, found 'lots'" },
		{ "penalty_inf", P TCP "    dampening:\n      penalty: .inf\n", "t.yaml:10:16: services[0].dampening.penalty: expected a number greater than 0, found '.inf'" },
		{ "penalty_nan", P TCP "    dampening:\n      penalty: nan\n", "t.yaml:10:16: services[0].dampening.penalty: expected a number greater than 0, found 'nan'" },
		{ "penalty_overflow", P TCP "    dampening:\n      penalty: 1e400\n", "t.yaml:10:16: services[0].dampening.penalty: expected a number greater than 0, found '1e400'" },
		{ "penalty_trailing", P TCP "    dampening:\n      penalty: 10x\n", "t.yaml:10:16: services[0].dampening.penalty: expected a number greater than 0, found '10x'" },
		{ "penalty_empty", P TCP "    dampening:\n      penalty:\n", "t.yaml:10:15: services[0].dampening.penalty: expected a number, found nothing" },
		{ "reuse_equals_suppress", P TCP "    dampening:\n      reuse: 2500\n", "t.yaml:10:14: services[0].dampening.reuse: reuse (2500) must be less than suppress (2500)" },
		{ "suppress_below_reuse", P TCP "    dampening:\n      suppress: 900\n", "t.yaml:10:17: services[0].dampening.suppress: reuse (1000) must be less than suppress (900)" },
		{ "reuse_above_suppress", P TCP "    dampening:\n      suppress: 10\n      reuse: 20.5\n", "t.yaml:11:14: services[0].dampening.reuse: reuse (20.5) must be less than suppress (10)" },
		{ "dampening_second_service", P TCP SVC2 TCP "    dampening:\n      half_life: 0s\n", "t.yaml:17:18: services[1].dampening.half_life: must be at least 1s, found 0s" },
		{ "maintenance_list", P TCP "    maintenance_file: []\n", "t.yaml:9:23: services[0].maintenance_file: expected a string, found a list" },
		{ "no_checks", "services:\n  - name: web\n    prefixes: [\"192.0.2.0/24\"]\n", "t.yaml:2:5: services[0].checks: missing required key" },
		{ "checks_empty", "services:\n  - name: web\n    prefixes: [\"192.0.2.0/24\"]\n    checks: []\n", "t.yaml:4:13: services[0].checks: must not be empty" },
		{ "check_scalar", P "      - tcp\n", "t.yaml:5:9: services[0].checks[0]: expected a mapping, found a scalar" },
		{ "check_no_type", P "      - name: a\n        host: x\n", "t.yaml:5:9: services[0].checks[0].type: missing required key" },
		{ "check_no_name", P "      - type: tcp\n        host: x\n        port: 1\n", "t.yaml:5:9: services[0].checks[0].name: missing required key" },
		{ "check_type", P "      - name: a\n        type: nosuch\n", "t.yaml:6:15: services[0].checks[0].type: unknown check type 'nosuch' (known: http, tcp, dns, wireguard, exec)" },
		{ "check_name", P "      - name: A-1\n        type: tcp\n        host: x\n        port: 1\n", "t.yaml:5:15: services[0].checks[0].name: 'A-1' is not a valid name" },
		{ "check_duplicate", P TCP TCP, "t.yaml:9:15: services[0].checks[1].name: duplicate check name 'a' (first at line 5)" },
		{ "check_same_name_other_service", P TCP SVC2 "      - name: a\n        type: tcp\n        host: x\n        port: 0\n", "t.yaml:15:15: services[1].checks[0].port: expected an integer from 1 to 65535, found '0'" },
		{ "http_no_url", P "      - name: a\n        type: http\n", "t.yaml:5:9: services[0].checks[0].url: missing required key for type http" },
		{ "tcp_no_port", P "      - name: a\n        type: tcp\n        host: x\n", "t.yaml:5:9: services[0].checks[0].port: missing required key for type tcp" },
		{ "tcp_no_host", P "      - name: a\n        type: tcp\n        port: 1\n", "t.yaml:5:9: services[0].checks[0].host: missing required key for type tcp" },
		{ "url_on_tcp", P TCP "        url: http://x/\n", "t.yaml:9:9: services[0].checks[0].url: key 'url' is not valid for type tcp" },
		{ "host_on_http", P HTTP "        host: x\n", "t.yaml:8:9: services[0].checks[0].host: key 'host' is not valid for type http" },
		{ "check_unknown", P TCP "        retries: 3\n", "t.yaml:9:9: services[0].checks[0].retries: unknown key" },
		{ "check_duplicate_key", P TCP "        port: 81\n", "t.yaml:9:9: services[0].checks[0].port: duplicate key (first at line 8)" },
		{ "url_scheme", P "      - name: a\n        type: http\n        url: ftp://x/\n", "t.yaml:7:14: services[0].checks[0].url: 'ftp://x/' is not an http:// or https:// URL" },
		{ "url_empty_host", P "      - name: a\n        type: http\n        url: http://\n", "t.yaml:7:14: services[0].checks[0].url: 'http://' is not an http:// or https:// URL" },
		{ "url_bad_with_password", P "      - name: a\n        type: http\n        url: \"https://admin:s3cret@host/ x\"\n", "t.yaml:7:14: services[0].checks[0].url: 'https://admin:***@host/ x' is not an http:// or https:// URL" },
		{ "url_bad_scheme_with_password", P "      - name: a\n        type: http\n        url: \"htp//admin:s3cret@host/\"\n", "t.yaml:7:14: services[0].checks[0].url: '***@host/' is not an http:// or https:// URL" },
		{ "expect_status_low", P HTTP "        expect_status: [200, 99]\n", "t.yaml:8:30: services[0].checks[0].expect_status[1]: expected an integer from 100 to 599, found '99'" },
		{ "expect_status_high", P HTTP "        expect_status: [600]\n", "t.yaml:8:25: services[0].checks[0].expect_status[0]: expected an integer from 100 to 599, found '600'" },
		{ "expect_status_word", P HTTP "        expect_status: [ok]\n", "t.yaml:8:25: services[0].checks[0].expect_status[0]: expected an integer from 100 to 599, found 'ok'" },
		{ "expect_status_empty", P HTTP "        expect_status: []\n", "t.yaml:8:24: services[0].checks[0].expect_status: must not be empty" },
		{ "expect_status_scalar", P HTTP "        expect_status: 200\n", "t.yaml:8:24: services[0].checks[0].expect_status: expected a list, found a scalar" },
		{ "connect_to_no_port", P HTTP "        connect_to: 127.0.0.1\n", "t.yaml:8:21: services[0].checks[0].connect_to: '127.0.0.1' is not HOST:PORT" },
		{ "connect_to_port0", P HTTP "        connect_to: 127.0.0.1:0\n", "t.yaml:8:21: services[0].checks[0].connect_to: '127.0.0.1:0' is not HOST:PORT" },
		{ "connect_to_port_high", P HTTP "        connect_to: 127.0.0.1:65536\n", "t.yaml:8:21: services[0].checks[0].connect_to: '127.0.0.1:65536' is not HOST:PORT" },
		{ "connect_to_bare_v6", P HTTP "        connect_to: \"::1:443\"\n", "t.yaml:8:21: services[0].checks[0].connect_to: '::1:443' is not HOST:PORT" },
		{ "connect_to_bad_v6", P HTTP "        connect_to: \"[x]:443\"\n", "t.yaml:8:21: services[0].checks[0].connect_to: '[x]:443' is not HOST:PORT" },
		{ "tls_verify", P HTTP "        tls_verify: yes\n", "t.yaml:8:21: services[0].checks[0].tls_verify: expected true or false, found 'yes'" },
		{ "headers_list", P HTTP "        headers: [a]\n", "t.yaml:8:18: services[0].checks[0].headers: expected a mapping, found a list" },
		{ "header_value_list", P HTTP "        headers:\n          X-A: [1]\n", "t.yaml:9:16: services[0].checks[0].headers.X-A: expected a string, found a list" },
		{ "header_name", P HTTP "        headers:\n          \"X A\": b\n", "t.yaml:9:11: services[0].checks[0].headers.X A: 'X A' is not a valid header name" },
		{ "header_name_with_a_secret", P HTTP "        headers: {Authorization:Bearer xyz}\n", "t.yaml:8:19: services[0].checks[0].headers.Authorization: 'Authorization' is not a valid header name" },
		{ "header_duplicate", P HTTP "        headers:\n          X-A: \"1\"\n          x-a: \"2\"\n", "t.yaml:10:11: services[0].checks[0].headers.x-a: duplicate header 'x-a'" },
		{ "port0", P "      - name: a\n        type: tcp\n        host: x\n        port: 0\n", "t.yaml:8:15: services[0].checks[0].port: expected an integer from 1 to 65535, found '0'" },
		{ "port_high", P "      - name: a\n        type: tcp\n        host: x\n        port: 70000\n", "t.yaml:8:15: services[0].checks[0].port: expected an integer from 1 to 65535, found '70000'" },
		{ "port_negative", P "      - name: a\n        type: tcp\n        host: x\n        port: -1\n", "t.yaml:8:15: services[0].checks[0].port: expected an integer from 1 to 65535, found '-1'" },
		{ "port_suffix", P "      - name: a\n        type: tcp\n        host: x\n        port: 80a\n", "t.yaml:8:15: services[0].checks[0].port: expected an integer from 1 to 65535, found '80a'" },
		{ "host_space", P "      - name: a\n        type: tcp\n        host: a b\n        port: 1\n", "t.yaml:7:15: services[0].checks[0].host: 'a b' is not a host name or address" },
		{ "host_bad_v6", P "      - name: a\n        type: tcp\n        host: \"1:2:3\"\n        port: 1\n", "t.yaml:7:15: services[0].checks[0].host: '1:2:3' is not a host name or address" },
		{ "on_fail", P TCP "        on_fail: drain\n", "t.yaml:9:18: services[0].checks[0].on_fail: 'drain' is not one of withdraw, degrade, ignore" },
		{ "check_rise0", P TCP "        rise: 0\n", "t.yaml:9:15: services[0].checks[0].rise: expected an integer from 1 to 100, found '0'" },
		{ "check_fall", P TCP "        fall: 1000\n", "t.yaml:9:15: services[0].checks[0].fall: expected an integer from 1 to 100, found '1000'" },
		{ "check_interval", P TCP "        interval: 9ms\n", "t.yaml:9:19: services[0].checks[0].interval: must be at least 10ms, found 9ms" },
		{ "check_timeout", P TCP "        timeout: 0s\n", "t.yaml:9:18: services[0].checks[0].timeout: must be at least 1ms, found 0s" },
		{ "check_interval_long", P TCP "        interval: 25h\n", "t.yaml:9:19: services[0].checks[0].interval: must be at most 24h, found 25h" },
		{ "check_timeout_long", P TCP "        interval: 2h\n        timeout: 61m\n", "t.yaml:10:18: services[0].checks[0].timeout: must be at most 1h, found 61m" },
		{ "check_timeout_overflow", P TCP "        timeout: 18446744073709551615ms\n", "t.yaml:9:18: services[0].checks[0].timeout: duration '18446744073709551615ms' is too large (at most 1h)" },
		{ "defaults_interval_long", P TCP "defaults:\n  interval: 1441m\n", "t.yaml:10:13: defaults.interval: must be at most 24h, found 1441m" },
		{ "defaults_timeout_long", P TCP "defaults:\n  timeout: 2h\n", "t.yaml:10:12: defaults.timeout: must be at most 1h, found 2h" },
		{ "timeout_over_interval", P TCP "        interval: 1s\n        timeout: 1001ms\n", "t.yaml:10:18: services[0].checks[0].timeout: check a: timeout 1001ms is longer than interval 1s" },
		{ "timeout_over_default_interval", P TCP "        timeout: 5s\n", "t.yaml:9:18: services[0].checks[0].timeout: check a: timeout 5s is longer than interval 1s" },
		{ "interval_under_default_timeout", "defaults:\n  timeout: 1s\n" P TCP "        interval: 500ms\n", "t.yaml:11:19: services[0].checks[0].interval: check a: timeout 1s is longer than interval 500ms" },
		{ "timeout_over_interval_defaults", P TCP "defaults:\n  interval: 100ms\n  timeout: 200ms\n", "t.yaml:5:9: services[0].checks[0].timeout: check a: timeout 200ms is longer than interval 100ms (both from defaults)" },
		{ "timeout_over_interval_second", "defaults:\n  timeout: 1s\n" P TCP "      - name: b\n        type: http\n        url: http://x/\n        interval: 10ms\n", "t.yaml:14:19: services[0].checks[1].interval: check b: timeout 1s is longer than interval 10ms" },
		{ "wg_handshake_age_long", P WG "        max_handshake_age: 25h\n", "t.yaml:8:28: services[0].checks[0].max_handshake_age: must be at most 24h, found 25h" },
		{ "wg_rx_idle_long", P WG "        max_rx_idle: 86401s\n", "t.yaml:8:22: services[0].checks[0].max_rx_idle: must be at most 24h, found 86401s" },
		{ "wg_no_interface", P "      - name: a\n        type: wireguard\n", "t.yaml:5:9: services[0].checks[0].interface: missing required key for type wireguard" },
		{ "wg_interface_long", P "      - name: a\n        type: wireguard\n        interface: wg0123456789abcd\n", "t.yaml:7:20: services[0].checks[0].interface: 'wg0123456789abcd' is not an interface name" },
		{ "wg_interface_slash", P "      - name: a\n        type: wireguard\n        interface: wg/0\n", "t.yaml:7:20: services[0].checks[0].interface: 'wg/0' is not an interface name" },
		{ "wg_key_short", P WG "        peers: [\"abc=\"]\n", "t.yaml:8:17: services[0].checks[0].peers[0]: 'abc=' is not a WireGuard public key (44 characters of base64, 32 bytes)" },
		{ "wg_key_hex", P WG "        peers: [\"13480f5d02a1af93b413f926a8ce47293b0cedaa7fbe19945b5478825bba413c\"]\n", "t.yaml:8:17: services[0].checks[0].peers[0]: '13480f5d02a1af93b413f926a8ce47293b0cedaa7fbe19945b5478825bba413c' is not a WireGuard public key" },
		{ "wg_key_bad_char", P WG "        peers: [\"0+n7PJLb8IXwhF35aUMnDb2YNd/yqUFw2IJ/bOfTN*I=\"]\n", "t.yaml:8:17: services[0].checks[0].peers[0]: '0+n7PJLb8IXwhF35aUMnDb2YNd/yqUFw2IJ/bOfTN*I=' is not a WireGuard public key" },
		{ "wg_key_noncanonical", P WG "        peers: [\"E0gPXQKhr5O0E/kmqM5HKTsM7ap/vhmUW1R4glu6QTx=\"]\n", "t.yaml:8:17: services[0].checks[0].peers[0]: 'E0gPXQKhr5O0E/kmqM5HKTsM7ap/vhmUW1R4glu6QTx=' is not a WireGuard public key" },
		{ "wg_key_twice", P WG "        peers: [\"" WGK1 "\", {ord: \"" WGK1 "\"}]\n", "t.yaml:8:71: services[0].checks[0].peers[1].ord: peer key " WGK1 " is listed twice" },
		{ "wg_name_twice", P WG "        peers:\n          - ord: \"" WGK1 "\"\n          - ord: \"" WGK2 "\"\n", "t.yaml:10:13: services[0].checks[0].peers[1].ord: duplicate peer name 'ord'" },
		{ "wg_name_bad", P WG "        peers: {Ord-1: \"" WGK1 "\"}\n", "t.yaml:8:17: services[0].checks[0].peers.Ord-1: 'Ord-1' is not a valid peer name" },
		{ "wg_named_two_pairs", P WG "        peers: [{a: \"" WGK1 "\", b: \"" WGK2 "\"}]\n", "t.yaml:8:17: services[0].checks[0].peers[0]: a named peer is one pair, NAME: KEY" },
		{ "wg_peers_empty", P WG "        peers: []\n", "t.yaml:8:16: services[0].checks[0].peers: must not be empty" },
		{ "wg_peers_scalar", P WG "        peers: " WGK1 "\n", "t.yaml:8:16: services[0].checks[0].peers: expected a list, found a scalar" },
		{ "wg_min_peers_0", P WG "        min_peers: 0\n", "t.yaml:8:20: services[0].checks[0].min_peers: expected an integer from 1 to 10000, found '0'" },
		{ "wg_min_peers_more", P WG "        peers: [\"" WGK1 "\"]\n        min_peers: 2\n", "t.yaml:9:20: services[0].checks[0].min_peers: 2 is more than the 1 peers listed" },
		{ "wg_min_peers_first", P WG "        min_peers: 3\n        peers: [\"" WGK1 "\", \"" WGK2 "\"]\n", "t.yaml:9:16: services[0].checks[0].peers: lists 2 peers, fewer than min_peers 3" },
		{ "wg_handshake_age", P WG "        max_handshake_age: 500ms\n", "t.yaml:8:28: services[0].checks[0].max_handshake_age: must be at least 1s, found 500ms" },
		{ "wg_rx_idle", P WG "        max_rx_idle: soon\n", "t.yaml:8:22: services[0].checks[0].max_rx_idle: 'soon' is not a duration" },
		{ "wg_uapi_dir_relative", P WG "        uapi_dir: run/wg\n", "t.yaml:8:19: services[0].checks[0].uapi_dir: 'run/wg' is not an absolute path" },
		{ "wg_key_on_tcp", P TCP "        interface: wg0\n", "t.yaml:9:9: services[0].checks[0].interface: key 'interface' is not valid for type tcp" },
		{ "port_on_wg", P WG "        port: 1\n", "t.yaml:8:9: services[0].checks[0].port: key 'port' is not valid for type wireguard" },
		{ "redact_headers_bad_name", P HTTP "        redact_headers: [\"X Key\"]\n", "t.yaml:8:26: services[0].checks[0].redact_headers[0]: 'X Key' is not a valid header name" },
		{ "redact_headers_twice", P HTTP "        redact_headers: [Cookie, cookie]\n", "t.yaml:8:34: services[0].checks[0].redact_headers[1]: header 'cookie' is listed twice" },
		{ "redact_headers_map", P HTTP "        redact_headers: {a: b}\n", "t.yaml:8:25: services[0].checks[0].redact_headers: expected a list, found a mapping" },
		{ "redact_headers_on_tcp", P TCP "        redact_headers: []\n", "t.yaml:9:9: services[0].checks[0].redact_headers: key 'redact_headers' is not valid for type tcp" },
		{ "dns_no_qname", P "      - name: a\n        type: dns\n", "t.yaml:5:9: services[0].checks[0].qname: missing required key for type dns" },
		{ "dns_qname_label_empty", P "      - name: a\n        type: dns\n        qname: www..example.net\n", "t.yaml:7:16: services[0].checks[0].qname: 'www..example.net' is not a DNS name" },
		{ "dns_qname_space", P "      - name: a\n        type: dns\n        qname: \"a b.example\"\n", "t.yaml:7:16: services[0].checks[0].qname: 'a b.example' is not a DNS name" },
		{ "dns_qname_long_label", P "      - name: a\n        type: dns\n        qname: " "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.net\n", "t.yaml:7:16: services[0].checks[0].qname: 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.net' is not a DNS name" },
		{ "dns_qname_list", P "      - name: a\n        type: dns\n        qname: [a]\n", "t.yaml:7:16: services[0].checks[0].qname: expected a string, found a list" },
		{ "dns_qtype", P DNS "        qtype: ANY\n", "t.yaml:8:16: services[0].checks[0].qtype: 'ANY' is not a DNS type this check asks for (A, AAAA, NS, CNAME, SOA, PTR, MX, TXT, SRV, CAA)" },
		{ "dns_rcode", P DNS "        expect_rcode: NOTFOUND\n", "t.yaml:8:23: services[0].checks[0].expect_rcode: 'NOTFOUND' is not a DNS rcode (NOERROR, FORMERR, SERVFAIL, NXDOMAIN" },
		{ "dns_server_name", P DNS "        server: ns.example.net:53\n", "t.yaml:8:17: services[0].checks[0].server: 'ns.example.net:53' is not an IP address, IP:PORT or [IPv6]:PORT (port 1 to 65535)" },
		{ "dns_server_port0", P DNS "        server: \"192.0.2.53:0\"\n", "t.yaml:8:17: services[0].checks[0].server: '192.0.2.53:0' is not an IP address" },
		{ "dns_server_v6_unbracketed_port", P DNS "        server: \"2001:db8::53:5353:\"\n", "t.yaml:8:17: services[0].checks[0].server: '2001:db8::53:5353:' is not an IP address" },
		{ "dns_expect_answer_empty", P DNS "        expect_answer: \"\"\n", "t.yaml:8:24: services[0].checks[0].expect_answer: must not be empty" },
		{ "dns_key_on_tcp", P TCP "        qtype: A\n", "t.yaml:9:9: services[0].checks[0].qtype: key 'qtype' is not valid for type tcp" },
		{ "host_on_dns", P DNS "        host: x\n", "t.yaml:8:9: services[0].checks[0].host: key 'host' is not valid for type dns" },
		{ "exec_no_command", P "      - name: a\n        type: exec\n", "t.yaml:5:9: services[0].checks[0].command: missing required key for type exec" },
		{ "exec_command_empty", P EXEC_NC "        command: []\n", "t.yaml:7:18: services[0].checks[0].command: must not be empty" },
		{ "exec_command_scalar", P EXEC_NC "        command: /bin/true\n", "t.yaml:7:18: services[0].checks[0].command: expected a list, found a scalar" },
		{ "exec_command_relative", P EXEC_NC "        command: [\"true\"]\n", "t.yaml:7:19: services[0].checks[0].command[0]: 'true' is not an absolute path" },
		{ "exec_command_missing", P EXEC_NC "        command: [/nonexistent/probe]\n", "t.yaml:7:19: services[0].checks[0].command[0]: /nonexistent/probe: No such file or directory" },
		{ "exec_command_not_executable", P EXEC_NC "        command: [/etc/passwd]\n", "t.yaml:7:19: services[0].checks[0].command[0]: /etc/passwd is not an executable file" },
		{ "exec_command_directory", P EXEC_NC "        command: [/bin]\n", "t.yaml:7:19: services[0].checks[0].command[0]: /bin is not an executable file" },
		{ "exec_command_nested", P EXEC_NC "        command: [/bin/true, [x]]\n", "t.yaml:7:30: services[0].checks[0].command[1]: expected a string, found a list" },
		{ "exec_env_list", P EXEC "        env: [A]\n", "t.yaml:8:14: services[0].checks[0].env: expected a mapping, found a list" },
		{ "exec_env_name", P EXEC "        env: {lower: x}\n", "t.yaml:8:15: services[0].checks[0].env.lower: 'lower' is not a variable name ([A-Z_][A-Z0-9_]*)" },
		{ "exec_env_digit", P EXEC "        env: {1A: x}\n", "t.yaml:8:15: services[0].checks[0].env.1A: '1A' is not a variable name" },
		{ "exec_env_duplicate", P EXEC "        env: {A: x, A: y}\n", "t.yaml:8:21: services[0].checks[0].env.A: duplicate key (first at line 8)" },
		{ "exec_env_value_list", P EXEC "        env: {A: [x]}\n", "t.yaml:8:18: services[0].checks[0].env.A: expected a string, found a list" },
		{ "exec_workdir_relative", P EXEC "        working_directory: tmp\n", "t.yaml:8:28: services[0].checks[0].working_directory: 'tmp' is not an absolute path" },
		{ "exec_user_unknown", P EXEC "        user: no_such_user_x\n", "t.yaml:8:15: services[0].checks[0].user: no such user 'no_such_user_x'" },
		{ "exec_key_on_tcp", P TCP "        command: [/bin/true]\n", "t.yaml:9:9: services[0].checks[0].command: key 'command' is not valid for type tcp" },
		{ "on_change_empty", P TCP "    on_change: []\n", "t.yaml:9:16: services[0].on_change: must not be empty" },
		{ "on_change_relative", P TCP "    on_change: [sh, -c, x]\n", "t.yaml:9:17: services[0].on_change[0]: 'sh' is not an absolute path" },
		{ "on_change_missing", P TCP "    on_change: [/nonexistent/hook]\n", "t.yaml:9:17: services[0].on_change[0]: /nonexistent/hook: No such file or directory" },
		{ "on_change_timeout_zero", P TCP "    on_change_timeout: 0s\n", "t.yaml:9:24: services[0].on_change_timeout: must be at least 10ms, found 0s" },
		{ "on_change_timeout_long", P TCP "    on_change_timeout: 2h\n", "t.yaml:9:24: services[0].on_change_timeout: must be at most 1h, found 2h" },
		{ "second_check_timeout", P TCP "      - name: b\n        type: tcp\n        host: x\n        port: 1\n        timeout: 1x\n", "t.yaml:13:18: services[0].checks[1].timeout: '1x' is not a duration" },
	};

	return cr_make_param_array(struct broken, cases, sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct broken *b, config, broken)
{
	char err[512] = "";
	struct config *cfg = cfg_load_string("t.yaml", b->yaml, strlen(b->yaml),
					     err, sizeof(err));

	cr_assert_null(cfg, "%s: loaded, expected \"%s\"", b->name, b->expect);
	cr_assert(strncmp(err, b->expect, strlen(b->expect)) == 0,
		  "%s:\n  got    \"%s\"\n  wanted \"%s...\"", b->name, err, b->expect);
}

/* ---- defaults, inheritance, warnings ---- */

Test(config, defaults_filled_in)
{
	char host[256] = "";
	struct config *cfg = load(P TCP);
	const struct cfg_service *s = &cfg->services[0];
	const struct cfg_check *k = &s->checks[0];

	cr_assert_eq(gethostname(host, sizeof(host) - 1), 0);
	cr_assert_str_eq(cfg->node, host);
	cr_assert_str_eq(cfg->path, "t.yaml");
	cr_assert_str_eq(cfg->bird.socket, "/run/bird/bird.ctl");
	cr_assert_str_eq(cfg->bird.include, "/etc/bird/healthd.conf");
	cr_assert_eq(cfg->bird.timeout_ms, 2000);
	cr_assert_eq(cfg->bird.reconcile_ms, 5000);
	cr_assert_str_eq(cfg->control.socket, "/run/healthd/healthd.sock");
	cr_assert_str_eq(cfg->state_dir, "/var/lib/healthd");
	cr_assert_eq(cfg->http.n_listen, 0);
	cr_assert_eq(s->drain_ms, 30000);
	cr_assert_eq(s->hold_down_ms, 5000);
	cr_assert_eq(s->on_stop, CFG_ON_STOP_KEEP);
	cr_assert_eq(s->guard.min_announcers, 1, "the guard is on by default");
	cr_assert_eq(s->guard.step_ms, 2000);
	cr_assert_eq(s->guard.interval_ms, 500);
	cr_assert_null(s->maintenance_file);
	cr_assert_eq(s->communities[CFG_COMM_UP].n, 0);
	cr_assert_eq(s->communities[CFG_COMM_DEGRADED].n, 0);
	cr_assert_eq(s->communities[CFG_COMM_DRAINING].n, 1);
	cr_assert_eq(s->communities[CFG_COMM_DRAINING].items[0].v[0], 65535);
	cr_assert_eq(s->communities[CFG_COMM_DRAINING].items[0].v[1], 0);
	cr_assert_eq(k->interval_ms, 1000);
	cr_assert_eq(k->timeout_ms, 1000);
	cr_assert_eq(k->rise, 2);
	cr_assert_eq(k->fall, 2);
	cr_assert_eq(k->on_fail, CFG_ON_FAIL_WITHDRAW);
	cr_assert_eq(k->line, 5);
	cr_assert_eq(k->col, 9);
	cr_assert_eq(k->port, 80);
	cr_assert_null(k->url, "http fields stay empty for tcp");
	cr_assert_null(k->expect_status);
	cr_assert_not(k->tls_verify);
	cr_assert_eq(cfg->n_warnings, 0);
	cfg_free(cfg);
}

Test(config, wireguard_values)
{
	struct config *cfg = load(P WG "        peers: [\"" WGK1 "\", {ord: \"" WGK2 "\"}]\n"
				  "        max_rx_idle: 3s\n");
	const struct cfg_check *k = &cfg->services[0].checks[0];
	struct config *other = load(P WG "        peers: [\"" WGK1 "\", {fra: \"" WGK2 "\"}]\n"
				    "        max_rx_idle: 3s\n");

	cr_assert_str_eq(k->interface, "wg0");
	cr_assert_eq(k->n_peers, 2);
	cr_assert_null(k->peers[0].name);
	cr_assert_str_eq(k->peers[1].name, "ord");
	cr_assert_str_eq(k->peers[1].key, WGK2);
	/* E0gPXQ... decodes to 0x13 0x48 0x0f 0x5d ... (the UAPI's hex form). */
	cr_assert_eq(k->peers[1].raw[0], 0x13);
	cr_assert_eq(k->peers[1].raw[3], 0x5d);
	cr_assert_eq(k->peers[1].raw[31], 0x3c);
	cr_assert_eq(k->min_peers, 0, "default: all listed");
	cr_assert_eq(k->max_handshake_age_ms, 180000);
	cr_assert_eq(k->max_rx_idle_ms, 3000);
	cr_assert_str_eq(k->uapi_dir, "/var/run/wireguard");
	cr_assert(cfg_check_equal(k, k));
	cr_assert_not(cfg_check_equal(k, &other->services[0].checks[0]),
		      "a peer's name is part of the settings");
	cfg_free(other);
	cfg_free(cfg);
}

Test(config, http_defaults)
{
	struct config *cfg = load(P HTTP);
	const struct cfg_check *k = &cfg->services[0].checks[0];

	cr_assert_eq(k->n_expect_status, 1);
	cr_assert_eq(k->expect_status[0], 200);
	cr_assert(k->tls_verify);
	cr_assert_null(k->connect_to);
	cr_assert_null(k->host);
	cr_assert_eq(k->n_headers, 0);
	cr_assert_eq(k->n_redact_headers, 3);
	cr_assert_str_eq(k->redact_headers[0], "Authorization");
	cr_assert_str_eq(k->redact_headers[1], "Cookie");
	cr_assert_str_eq(k->redact_headers[2], "Proxy-Authorization");
	cfg_free(cfg);
}

/* ---- secrets ---- */

Test(config, redact_url)
{
	static const struct { const char *in, *out; } cases[] = {
		{ "http://user:pass@127.0.0.1/healthz", "http://user:***@127.0.0.1/healthz" },
		{ "https://user:pass@www.example.net:8443/a?b=c", "https://user:***@www.example.net:8443/a?b=c" },
		{ "http://user@127.0.0.1/", "http://***@127.0.0.1/" },          /* a token alone */
		{ "http://127.0.0.1/", "http://127.0.0.1/" },
		{ "http://127.0.0.1/a@b:c", "http://127.0.0.1/a@b:c" },         /* '@' in the path */
		{ "http://127.0.0.1/?u=a:b@c", "http://127.0.0.1/?u=a:b@c" },
		{ "http://127.0.0.1#x:y@z", "http://127.0.0.1#x:y@z" },
		{ "http://user:@host/", "http://user:***@host/" },              /* empty password */
		{ "http://:pw@host/", "http://:***@host/" },
		{ "http://user:p:w@host/", "http://user:***@host/" },           /* ':' in the password */
		{ "http://user:p@w@host/", "http://user:***@host/" },           /* '@' in the password */
		{ "http://user:pw@[::1]:80/", "http://user:***@[::1]:80/" },
		{ "http://user:pw@host", "http://user:***@host" },
		{ "not a url", "not a url" },
		{ "", "" },
	};
	char buf[128];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cr_assert_str_eq(cfg_redact_url(cases[i].in, buf, sizeof(buf)), cases[i].out,
				 "%s", cases[i].in);
		/* strlen + 4 always fits */
		char tight[strlen(cases[i].in) + 4];
		cr_assert_str_eq(cfg_redact_url(cases[i].in, tight, sizeof(tight)),
				 cases[i].out, "%s (tight buffer)", cases[i].in);
	}
	/* A buffer too short cuts the text, never shows the password. */
	cr_assert_str_eq(cfg_redact_url("http://u:secret@h/", buf, 12), "http://u:**");
}

Test(config, redact_headers)
{
	struct config *cfg = load(P HTTP
		"        headers: {authorization: \"Bearer t0k3n\", X-Api-Key: k3y, Accept: \"*/*\"}\n"
		"        redact_headers: [x-api-key, AUTHORIZATION]\n"
		"      - name: b\n        type: http\n        url: http://x/\n"
		"        headers: {Authorization: \"Basic dTpw\"}\n        redact_headers: []\n");
	const struct cfg_check *a = &cfg->services[0].checks[0], *b = &cfg->services[0].checks[1];

	cr_assert_eq(a->n_redact_headers, 2);
	cr_assert(cfg_header_redacted(a, "Authorization"), "case-insensitive");
	cr_assert(cfg_header_redacted(a, "X-API-KEY"));
	cr_assert_not(cfg_header_redacted(a, "Accept"));
	cr_assert_not(cfg_header_redacted(a, "Cookie"), "a list replaces the default");
	cr_assert_eq(b->n_redact_headers, 0);
	cr_assert_not(cfg_header_redacted(b, "Authorization"), "[] shows every value");
	/* The real value still goes on the wire. */
	cr_assert_str_eq(a->headers[0].value, "Bearer t0k3n");
	char *out = print_str(cfg);
	cr_assert_null(strstr(out, "t0k3n"), "%s", out);
	cr_assert_null(strstr(out, "k3y"), "%s", out);
	cr_assert(strstr(out, "\"authorization\": \"***\""), "%s", out);
	cr_assert(strstr(out, "\"Accept\": \"*/*\""), "%s", out);
	cr_assert(strstr(out, "redact_headers: [\"x-api-key\", \"AUTHORIZATION\"]"), "%s", out);
	cr_assert(strstr(out, "\"Authorization\": \"Basic dTpw\""), "%s", out);
	cr_assert(strstr(out, "redact_headers: []"), "%s", out);
	free(out);
	cfg_free(cfg);
}

Test(config, defaults_inherited_wherever_written)
{
	struct config *cfg = load(P TCP "      - name: b\n        type: tcp\n"
				  "        host: x\n        port: 1\n        interval: 5s\n"
				  "        rise: 1\n"
				  "defaults:\n  interval: 250ms\n  rise: 3\n  timeout: 100ms\n");
	const struct cfg_check *a = &cfg->services[0].checks[0];
	const struct cfg_check *b = &cfg->services[0].checks[1];

	cr_assert_eq(a->interval_ms, 250);
	cr_assert_eq(a->timeout_ms, 100);
	cr_assert_eq(a->rise, 3);
	cr_assert_eq(a->fall, 2);
	cr_assert_eq(b->interval_ms, 5000, "a check's own value wins");
	cr_assert_eq(b->rise, 1);
	cr_assert_eq(b->timeout_ms, 100);
	cfg_free(cfg);
}

Test(config, draining_can_be_emptied)
{
	struct config *cfg = load(P TCP "    communities:\n      draining: []\n"
				  "      up: [\"4200000000:1:2\", \"65535:65535\"]\n");
	const struct cfg_service *s = &cfg->services[0];

	cr_assert_eq(s->communities[CFG_COMM_DRAINING].n, 0);
	cr_assert_eq(s->communities[CFG_COMM_UP].n, 2);
	cr_assert(s->communities[CFG_COMM_UP].items[0].large);
	cr_assert_eq(s->communities[CFG_COMM_UP].items[0].v[0], 4200000000u);
	cr_assert_not(s->communities[CFG_COMM_UP].items[1].large);
	cfg_free(cfg);
}

Test(config, accepted_edge_values)
{
	struct config *cfg = load(P
		"      - name: a\n        type: http\n        url: https://h.example/\n"
		"        connect_to: \"[::1]:443\"\n        timeout: 5s\n        interval: 5s\n"
		"        tls_verify: false\n        expect_status: [200, 204, 599, 100]\n"
		"        headers:\n          Host: www.example.net\n"
		"      - name: b\n        type: http\n        url: http://x/\n"
		"        connect_to: www.example.net:65535\n        timeout: 1ms\n        interval: 10ms\n"
		"      - name: c\n        type: tcp\n        host: \"2001:db8::1\"\n        port: 65535\n"
		"    drain: 0s\n    hold_down: 1h\n    on_stop: withdraw\n"
		"http:\n  listen: [\"[::1]:9110\", \"127.0.0.1:9110\"]\n");
	const struct cfg_service *s = &cfg->services[0];

	cr_assert_eq(s->checks[0].timeout_ms, 5000, "timeout may equal interval");
	cr_assert_eq(s->checks[0].interval_ms, 5000);
	cr_assert_str_eq(s->checks[0].connect_to, "[::1]:443");
	cr_assert_not(s->checks[0].tls_verify);
	cr_assert_eq(s->checks[0].n_expect_status, 4);
	cr_assert_eq(s->checks[0].expect_status[3], 100);
	cr_assert_eq(s->checks[0].n_headers, 1);
	cr_assert_str_eq(s->checks[0].headers[0].name, "Host");
	cr_assert_str_eq(s->checks[0].headers[0].value, "www.example.net");
	cr_assert_eq(s->checks[1].timeout_ms, 1);
	cr_assert_eq(s->checks[1].interval_ms, 10);
	cr_assert_eq(s->checks[2].port, 65535);
	cr_assert_eq(s->drain_ms, 0);
	cr_assert_eq(s->hold_down_ms, 3600000);
	cr_assert_eq(s->on_stop, CFG_ON_STOP_WITHDRAW);
	cr_assert_eq(cfg->http.n_listen, 2);
	cr_assert_str_eq(cfg->http.listen[0], "[::1]:9110");
	assert_round_trip(cfg, "edge values");
	cfg_free(cfg);
}

/* Every limit is itself accepted. */
Test(config, accepted_upper_bounds)
{
	char yaml[2048], sock[CFG_UNIX_PATH_MAX + 1];

	memset(sock, 'a', sizeof(sock) - 1);
	sock[0] = '/';
	sock[sizeof(sock) - 1] = '\0';
	snprintf(yaml, sizeof(yaml), P
		 "      - name: a\n        type: wireguard\n        interface: wg0\n"
		 "        interval: 24h\n        timeout: 1h\n"
		 "        max_handshake_age: 24h\n        max_rx_idle: 86400s\n"
		 "    drain: 168h\n    hold_down: 24h\n"
		 "    dampening:\n      half_life: 24h\n      max_suppress: 1440m\n"
		 "      penalty: 1000000\n      suppress: 1e6\n      reuse: 999999.5\n"
		 "    guard:\n      min_announcers: 1000\n      step: 10m\n      interval: 1m\n"
		 "bird:\n  timeout: 5m\n  reconcile: 1h\n  socket: %s\n  purge: true\n"
		 "control:\n  socket: %s\n", sock, sock);
	struct config *cfg = load(yaml);
	const struct cfg_service *s = &cfg->services[0];

	cr_assert_eq(s->checks[0].interval_ms, 86400000);
	cr_assert_eq(s->checks[0].timeout_ms, 3600000);
	cr_assert_eq(s->checks[0].max_handshake_age_ms, 86400000);
	cr_assert_eq(s->checks[0].max_rx_idle_ms, 86400000);
	cr_assert_eq(s->drain_ms, CFG_DRAIN_MAX_MS);
	cr_assert_eq(s->hold_down_ms, 86400000);
	cr_assert_eq(s->dampening.half_life_ms, 86400000);
	cr_assert_eq(s->dampening.max_suppress_ms, 86400000);
	cr_assert_eq(s->dampening.penalty, CFG_DAMPENING_MAX);
	cr_assert_eq(s->dampening.suppress, CFG_DAMPENING_MAX);
	cr_assert_eq(s->guard.min_announcers, 1000);
	cr_assert_eq(s->guard.step_ms, 600000);
	cr_assert_eq(s->guard.interval_ms, 60000);
	cr_assert_eq(cfg->bird.timeout_ms, 300000);
	cr_assert_eq(cfg->bird.reconcile_ms, 3600000);
	cr_assert_eq(strlen(cfg->bird.socket), CFG_UNIX_PATH_MAX);
	cr_assert_eq(strlen(cfg->control.socket), CFG_UNIX_PATH_MAX);
	cr_assert(cfg->bird.purge);
	assert_round_trip(cfg, "upper bounds");
	cfg_free(cfg);
}

Test(config, purge_defaults_to_false)
{
	struct config *cfg = load(P TCP);
	struct config *off = load(P TCP "bird:\n  purge: false\n");

	cr_assert_not(cfg->bird.purge);
	cr_assert_not(off->bird.purge);
	char *out = print_str(cfg);
	cr_assert_not_null(strstr(out, "\n  reconcile: 5s\n  purge: false\ncontrol:\n"), "%s", out);
	free(out);
	cfg_free(off);
	cfg_free(cfg);
}

Test(config, long_prefixes_warn)
{
	struct config *cfg = load("services:\n  - name: web\n"
		"    prefixes: [\"192.0.2.0/24\", \"192.0.2.128/25\", \"2001:db8::/48\", \"2001:db8:1::/49\"]\n"
		"    checks:\n" TCP);

	cr_assert_eq(cfg->n_warnings, 2);
	cr_assert_str_eq(cfg->warnings[0],
			 "t.yaml:3:32: prefix 192.0.2.128/25 is longer than /24; many upstreams filter it");
	cr_assert_str_eq(cfg->warnings[1],
			 "t.yaml:3:67: prefix 2001:db8:1::/49 is longer than /48; many upstreams filter it");
	cfg_free(cfg);
}

Test(config, load_file_errors_name_the_file)
{
	char path[64], err[512];
	FILE *f;

	cr_assert_null(cfg_load("/nonexistent/healthd.yaml", err, sizeof(err)));
	cr_assert_str_eq(err, "/nonexistent/healthd.yaml: No such file or directory");
	snprintf(path, sizeof(path), "/tmp/healthd-test-config-%d.yaml", (int)getpid());
	cr_assert_not_null(f = fopen(path, "w"));
	fputs(P TCP "bird:\n  timeout: soon\n", f);
	fclose(f);
	struct config *cfg = cfg_load(path, err, sizeof(err));
	unlink(path);
	cr_assert_null(cfg);
	char want[128];
	snprintf(want, sizeof(want), "%s:10:12: bird.timeout: 'soon' is not a duration", path);
	cr_assert(strncmp(err, want, strlen(want)) == 0, "got \"%s\"", err);
}

Test(config, small_error_buffer_is_safe)
{
	char err[16];

	cr_assert_null(cfg_load_string("some-long-file-name.yaml", "x: 1\n", 5, err, sizeof(err)));
	cr_assert_eq(strlen(err), sizeof(err) - 1);
	cr_assert_null(cfg_load_string("t.yaml", "x: 1\n", 5, err, 0));
}

Test(config, dampening_defaults_and_values)
{
	struct config *cfg = load(P TCP SVC2 TCP
		"    dampening:\n      half_life: 1s\n      suppress: 1e3\n"
		"      reuse: 999.5\n      max_suppress: 1ms\n      penalty: 0.25\n");
	const struct cfg_dampening *d = &cfg->services[0].dampening;
	const struct cfg_dampening *e = &cfg->services[1].dampening;

	cr_assert_eq(d->half_life_ms, 60000);
	cr_assert_eq(d->suppress, 2500);
	cr_assert_eq(d->reuse, 1000);
	cr_assert_eq(d->max_suppress_ms, 300000);
	cr_assert_eq(d->penalty, 1000);
	cr_assert_eq(e->half_life_ms, 1000, "the shortest half-life allowed");
	cr_assert_eq(e->suppress, 1000);
	cr_assert_eq(e->reuse, 999.5);
	cr_assert_eq(e->max_suppress_ms, 1);
	cr_assert_eq(e->penalty, 0.25);
	char *out = print_str(cfg);
	cr_assert_not_null(strstr(out, "    dampening:\n      half_life: 1s\n"
				  "      suppress: 1000\n      reuse: 999.5\n"
				  "      max_suppress: 1ms\n      penalty: 0.25\n"), "%s", out);
	free(out);
	assert_round_trip(cfg, "dampening");
	cfg_free(cfg);
}

/* ---- check equality ---- */

Test(config, check_equal_compares_every_setting)
{
	struct config *cfg = load(P
		"      - name: a\n        type: http\n        url: http://x/\n"
		"        connect_to: \"y:80\"\n        expect_body: ok\n"
		"        headers:\n          A: b\n"
		"  - name: db\n    prefixes: [\"198.51.100.0/24\"]\n    checks:\n"
		"      - name: a\n        type: http\n        url: http://x/\n"
		"        connect_to: \"y:80\"\n        expect_body: ok\n"
		"        headers:\n          A: b\n");
	const struct cfg_check *a = &cfg->services[0].checks[0];
	const struct cfg_check *b = &cfg->services[1].checks[0];
	int status[] = { 201 };
	struct cfg_header hdr = { "A", "c" };
	char *redact[] = { "Authorization", "Cookie", "Set-Cookie" };

	cr_assert(cfg_check_equal(a, b), "same settings, other place");
	cr_assert_neq(a->line, b->line);
#define DIFFERS(field, value) do { struct cfg_check c = *a; c.field = value; \
	cr_assert_not(cfg_check_equal(a, &c), #field " ignored"); } while (0)
	DIFFERS(name, "b");
	DIFFERS(type, "tcp");
	DIFFERS(interval_ms, 999);
	DIFFERS(timeout_ms, 999);
	DIFFERS(rise, 5);
	DIFFERS(fall, 5);
	DIFFERS(on_fail, CFG_ON_FAIL_IGNORE);
	DIFFERS(url, "http://z/");
	DIFFERS(expect_status, status);
	DIFFERS(n_expect_status, 0);
	DIFFERS(expect_body, NULL);
	DIFFERS(connect_to, "y:81");
	DIFFERS(tls_verify, false);
	DIFFERS(headers, &hdr);
	DIFFERS(n_headers, 0);
	DIFFERS(n_redact_headers, 0);
	DIFFERS(redact_headers, redact);
	DIFFERS(host, "x");
	DIFFERS(port, 1);
	DIFFERS(n_command, 1);
	DIFFERS(n_env, 1);
	DIFFERS(working_directory, "/tmp");
	DIFFERS(user, "root");
#undef DIFFERS
	cfg_free(cfg);
}

Test(config, dns_defaults_and_values)
{
	struct config *cfg = load(P DNS
		"      - name: b\n        type: dns\n        qname: big.example.net.\n"
		"        qtype: txt\n        server: \"[2001:db8::53]:5353\"\n"
		"        expect_rcode: nxdomain\n        expect_answer: v=spf1\n"
		"      - name: c\n        type: dns\n        qname: .\n        qtype: SOA\n"
		"        server: 2001:db8::0:53\n"
		"      - name: d\n        type: dns\n        qname: _sip._tcp.example.net\n"
		"        qtype: SRV\n        server: 192.0.2.53:5300\n");
	const struct cfg_check *a = &cfg->services[0].checks[0];
	const struct cfg_check *b = &cfg->services[0].checks[1];
	const struct cfg_check *c = &cfg->services[0].checks[2];
	const struct cfg_check *d = &cfg->services[0].checks[3];

	cr_assert_str_eq(a->qname, "www.example.net");
	cr_assert_eq(a->qtype, 1, "default A");
	cr_assert_str_eq(a->server, "127.0.0.1:53", "default: the local resolver");
	cr_assert_eq(a->expect_rcode, 0, "default NOERROR");
	cr_assert_null(a->expect_answer);
	cr_assert_str_eq(b->qname, "big.example.net", "the trailing dot goes");
	cr_assert_eq(b->qtype, 16);
	cr_assert_str_eq(b->server, "[2001:db8::53]:5353");
	cr_assert_eq(b->expect_rcode, 3);
	cr_assert_str_eq(b->expect_answer, "v=spf1");
	cr_assert_str_eq(c->qname, ".");
	cr_assert_eq(c->qtype, 6);
	cr_assert_str_eq(c->server, "[2001:db8::53]:53", "an address alone is port 53, normalised");
	cr_assert_str_eq(d->server, "192.0.2.53:5300");
	cr_assert_eq(d->qtype, 33);
	cr_assert_str_eq(cfg_dns_qtype_str(257), "CAA");
	cr_assert_null(cfg_dns_qtype_str(255));
	cr_assert_str_eq(cfg_dns_rcode_str(2), "SERVFAIL");
	cr_assert_null(cfg_dns_rcode_str(11));
#define DIFFERS(field, value) do { struct cfg_check x = *b; x.field = value; \
	cr_assert_not(cfg_check_equal(b, &x), #field " ignored"); } while (0)
	cr_assert(cfg_check_equal(b, b));
	DIFFERS(qname, "x.example.net");
	DIFFERS(qtype, 1);
	DIFFERS(server, "192.0.2.53:53");
	DIFFERS(expect_rcode, 0);
	DIFFERS(expect_answer, NULL);
#undef DIFFERS
	cfg_free(cfg);
}

Test(config, exec_values_and_defaults)
{
	struct config *cfg = load(P EXEC
		"      - name: b\n        type: exec\n        command: [/bin/sh, -c, \"exit 0\"]\n"
		"        env: {A: x, B_2: \"y z\"}\n        working_directory: /tmp\n"
		"        timeout: 300ms\n"
		"    on_change: [/bin/echo, changed]\n");
	const struct cfg_service *s = &cfg->services[0];
	const struct cfg_check *a = &s->checks[0], *b = &s->checks[1];

	cr_assert_eq(a->n_command, 1);
	cr_assert_str_eq(a->command[0], "/bin/true");
	cr_assert_null(a->command[1], "argv is NULL-terminated");
	cr_assert_str_eq(a->working_directory, "/");
	cr_assert_null(a->user);
	cr_assert_eq(a->n_env, 0);
	cr_assert_eq(b->n_command, 3);
	cr_assert_str_eq(b->command[2], "exit 0");
	cr_assert_eq(b->n_env, 2);
	cr_assert_str_eq(b->env[1].name, "B_2");
	cr_assert_str_eq(b->env[1].value, "y z");
	cr_assert_str_eq(b->working_directory, "/tmp");
	cr_assert_eq(b->timeout_ms, 300);
	cr_assert_eq(s->n_on_change, 2);
	cr_assert_str_eq(s->on_change[1], "changed");
	cr_assert_null(s->on_change[2]);
	cr_assert_eq(s->on_change_timeout_ms, 10000, "on_change_timeout defaults to 10s");
	cfg_free(cfg);
}

/* Running as another user needs root; one's own user is always fine. */
Test(config, exec_user)
{
	char yaml[512], err[512];
	struct passwd *me = getpwuid(geteuid());
	struct config *cfg;

	cr_assert_not_null(me);
	snprintf(yaml, sizeof(yaml), P EXEC "        user: %s\n", me->pw_name);
	cfg = load(yaml);
	cr_assert_str_eq(cfg->services[0].checks[0].user, me->pw_name);
	cr_assert_eq(cfg->services[0].checks[0].uid, me->pw_uid);
	cr_assert_eq(cfg->services[0].checks[0].gid, me->pw_gid);
	cfg_free(cfg);
	snprintf(yaml, sizeof(yaml), P EXEC "        user: nobody\n");
	cfg = cfg_load_string("t.yaml", yaml, strlen(yaml), err, sizeof(err));
	if (geteuid() == 0) {
		cr_assert_not_null(cfg, "%s", err);
		cr_assert_eq(cfg->services[0].checks[0].uid, getpwnam("nobody")->pw_uid);
		cfg_free(cfg);
	} else {
		cr_assert_null(cfg);
		cr_assert_str_eq(err, "t.yaml:8:15: services[0].checks[0].user: running as user "
				 "'nobody' needs healthd to run as root");
	}
}

/* ---- value parsers and formatters ---- */

Test(config, parse_duration)
{
	static const struct { const char *s; int rc; uint64_t ms; } t[] = {
		{ "250ms", 0, 250 }, { "2s", 0, 2000 }, { "5m", 0, 300000 },
		{ "1h", 0, 3600000 }, { "0s", 0, 0 }, { "007s", 0, 7000 },
		{ "8760h", 0, CFG_DURATION_MAX_MS }, { "31536000000ms", 0, CFG_DURATION_MAX_MS },
		{ "525600m", 0, CFG_DURATION_MAX_MS }, { "31536000s", 0, CFG_DURATION_MAX_MS },
		{ "8761h", -ERANGE, 0 }, { "31536000001ms", -ERANGE, 0 }, { "31536001s", -ERANGE, 0 },
		{ "18446744073709551615ms", -ERANGE, 0 }, { "18446744073709551616ms", -ERANGE, 0 },
		{ "5124095576030h", -ERANGE, 0 }, { "5124095576030432h", -ERANGE, 0 },
		{ "99999999999999999999999999s", -ERANGE, 0 },
		{ "99999999999999999999999999x", -EINVAL, 0 }, { "99999999999999999999", -EINVAL, 0 },
		{ "2", -EINVAL, 0 }, { "s", -EINVAL, 0 }, { "", -EINVAL, 0 },
		{ "-1s", -EINVAL, 0 }, { "+1s", -EINVAL, 0 }, { "1.5s", -EINVAL, 0 },
		{ "1 s", -EINVAL, 0 }, { " 1s", -EINVAL, 0 }, { "1S", -EINVAL, 0 },
		{ "1sec", -EINVAL, 0 }, { "1d", -EINVAL, 0 },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		uint64_t ms = 12345;
		int rc = cfg_parse_duration(t[i].s, &ms);

		cr_expect_eq(rc, t[i].rc, "'%s': rc %d", t[i].s, rc);
		if (rc == 0)
			cr_expect_eq(ms, t[i].ms, "'%s': %" PRIu64, t[i].s, ms);
		else
			cr_expect_eq(ms, 12345, "'%s': written on error", t[i].s);
	}
}

Test(config, parse_duration_max)
{
	uint64_t ms = 1;

	cr_expect_eq(cfg_parse_duration_max("168h", CFG_DRAIN_MAX_MS, &ms), 0);
	cr_expect_eq(ms, CFG_DRAIN_MAX_MS);
	cr_expect_eq(cfg_parse_duration_max("604800001ms", CFG_DRAIN_MAX_MS, &ms), -ERANGE);
	cr_expect_eq(cfg_parse_duration_max("18446744073709551615ms", CFG_DRAIN_MAX_MS, &ms),
		     -ERANGE);
	cr_expect_eq(cfg_parse_duration_max("soon", CFG_DRAIN_MAX_MS, &ms), -EINVAL);
	cr_expect_eq(ms, CFG_DRAIN_MAX_MS, "written on error");
}

Test(config, format_duration)
{
	static const struct { uint64_t ms; const char *s; } t[] = {
		{ 0, "0s" }, { 1, "1ms" }, { 250, "250ms" }, { 1000, "1s" },
		{ 1500, "1500ms" }, { 90000, "90s" }, { 120000, "2m" },
		{ 5400000, "90m" }, { 7200000, "2h" }, { CFG_DURATION_MAX_MS, "8760h" },
		{ CFG_DURATION_MAX_MS - 1, "31535999999ms" },
	};
	char buf[32];

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		uint64_t back;

		cfg_format_duration(buf, sizeof(buf), t[i].ms);
		cr_expect_str_eq(buf, t[i].s);
		cr_expect_eq(cfg_parse_duration(buf, &back), 0);
		cr_expect_eq(back, t[i].ms, "%s does not parse back", buf);
	}
}

Test(config, parse_prefix)
{
	static const struct { const char *s; int rc; const char *text; int family; } t[] = {
		{ "192.0.2.0/24", 0, "192.0.2.0/24", AF_INET },
		{ "192.0.2.10/32", 0, "192.0.2.10/32", AF_INET },
		{ "0.0.0.0/0", 0, "0.0.0.0/0", AF_INET },
		{ "2001:DB8:0:0::/48", 0, "2001:db8::/48", AF_INET6 },
		{ "2001:db8::10/128", 0, "2001:db8::10/128", AF_INET6 },
		{ "192.0.2.1/24", -EDOM, "192.0.2.0/24", AF_INET },
		{ "2001:db8:ffff::/32", -EDOM, "2001:db8::/32", AF_INET6 },
		{ "192.0.2.0", -EINVAL, NULL, 0 }, { "192.0.2.0/33", -EINVAL, NULL, 0 },
		{ "192.0.2.0/", -EINVAL, NULL, 0 }, { "192.0.2.0/-1", -EINVAL, NULL, 0 },
		{ "192.0.2.0/24x", -EINVAL, NULL, 0 }, { "2001:db8::/129", -EINVAL, NULL, 0 },
		{ "web/24", -EINVAL, NULL, 0 }, { "/24", -EINVAL, NULL, 0 },
		{ "192.0.2.0/99999999999999999999", -EINVAL, NULL, 0 },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct cfg_prefix p;
		int rc = cfg_parse_prefix(t[i].s, &p);

		cr_expect_eq(rc, t[i].rc, "'%s': rc %d", t[i].s, rc);
		if (t[i].text) {
			cr_expect_str_eq(p.text, t[i].text);
			cr_expect_eq(p.family, t[i].family);
		}
	}
	struct cfg_prefix p;
	cr_assert_eq(cfg_parse_prefix("198.51.100.7/30", &p), -EDOM);
	cr_assert_eq(p.len, 30);
	cr_assert_eq(p.addr[3], 4, "host bits cleared");
}

Test(config, parse_community)
{
	static const struct { const char *s; int ok; bool large; uint32_t v[3]; } t[] = {
		{ "65535:0", 1, false, { 65535, 0, 0 } },
		{ "0:65535", 1, false, { 0, 65535, 0 } },
		{ "4294967295:4294967295:4294967295", 1, true, { 4294967295u, 4294967295u, 4294967295u } },
		{ "1:2:3", 1, true, { 1, 2, 3 } },
		{ "65536:0", 0, false, { 0 } }, { "1:65536", 0, false, { 0 } },
		{ "4294967296:0:0", 0, false, { 0 } }, { "1", 0, false, { 0 } },
		{ "1:", 0, false, { 0 } }, { ":1", 0, false, { 0 } },
		{ "1:2:3:4", 0, false, { 0 } }, { "1::2", 0, false, { 0 } },
		{ "-1:2", 0, false, { 0 } }, { "a:b", 0, false, { 0 } }, { "", 0, false, { 0 } },
	};
	char buf[48];

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct cfg_community c;
		int rc = cfg_parse_community(t[i].s, &c);

		cr_expect_eq(rc == 0, t[i].ok, "'%s': rc %d", t[i].s, rc);
		if (!t[i].ok)
			continue;
		cr_expect_eq(c.large, t[i].large);
		cr_expect_eq(memcmp(c.v, t[i].v, sizeof(c.v)), 0, "'%s'", t[i].s);
		cfg_format_community(buf, sizeof(buf), &c);
		cr_expect_str_eq(buf, t[i].s);
	}
}

Test(config, name_valid)
{
	char longest[CFG_NAME_MAX], too_long[CFG_NAME_MAX + 1];

	memset(longest, 'a', sizeof(longest) - 1);
	longest[sizeof(longest) - 1] = '\0';
	memset(too_long, 'a', sizeof(too_long) - 1);
	too_long[sizeof(too_long) - 1] = '\0';
	cr_assert(cfg_name_valid("web"));
	cr_assert(cfg_name_valid("web_2"));
	cr_assert(cfg_name_valid("0"));
	cr_assert(cfg_name_valid(longest));
	cr_assert_not(cfg_name_valid(too_long));
	cr_assert_not(cfg_name_valid(""));
	cr_assert_not(cfg_name_valid("Web"));
	cr_assert_not(cfg_name_valid("web-2"));
	cr_assert_not(cfg_name_valid("web 2"));
	cr_assert_not(cfg_name_valid("wéb"));
}

Test(config, parse_hostport)
{
	static const struct { const char *s; bool ip_only; int ok; const char *host; unsigned port; } t[] = {
		{ "127.0.0.1:443", true, 1, "127.0.0.1", 443 },
		{ "[::1]:9110", true, 1, "::1", 9110 },
		{ "www.example.net:8443", false, 1, "www.example.net", 8443 },
		{ "www.example.net:8443", true, 0, NULL, 0 },
		{ "::1:443", false, 0, NULL, 0 }, { "[::1]443", false, 0, NULL, 0 },
		{ "[::1:443", false, 0, NULL, 0 }, { "[192.0.2.1]:443", false, 0, NULL, 0 },
		{ "host:0", false, 0, NULL, 0 }, { "host:65536", false, 0, NULL, 0 },
		{ "host:", false, 0, NULL, 0 }, { ":80", false, 0, NULL, 0 },
		{ "host", false, 0, NULL, 0 }, { "ho st:80", false, 0, NULL, 0 },
		{ "-host:80", false, 0, NULL, 0 }, { "host:80x", false, 0, NULL, 0 },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		char host[64] = "";
		uint16_t port = 0;
		int rc = cfg_parse_hostport(t[i].s, t[i].ip_only, host, sizeof(host), &port);

		cr_expect_eq(rc == 0, t[i].ok, "'%s': rc %d", t[i].s, rc);
		if (t[i].ok) {
			cr_expect_str_eq(host, t[i].host);
			cr_expect_eq(port, t[i].port);
		}
	}
}

Test(config, enum_names)
{
	cr_assert_str_eq(cfg_on_fail_str(CFG_ON_FAIL_WITHDRAW), "withdraw");
	cr_assert_str_eq(cfg_on_fail_str(CFG_ON_FAIL_DEGRADE), "degrade");
	cr_assert_str_eq(cfg_on_fail_str(CFG_ON_FAIL_IGNORE), "ignore");
	cr_assert_str_eq(cfg_on_stop_str(CFG_ON_STOP_KEEP), "keep");
	cr_assert_str_eq(cfg_on_stop_str(CFG_ON_STOP_DRAIN), "drain");
	cr_assert_str_eq(cfg_on_stop_str(CFG_ON_STOP_WITHDRAW), "withdraw");
	cr_assert_null(cfg_check_keys("nosuch"));
	cr_assert_str_eq(cfg_check_keys("tcp")[0], "host");
	cr_assert_str_eq(cfg_check_keys("http")[0], "url");
}

/* A timeout nobody wrote is 1s, or the check's interval where that is
 * shorter: `interval: 200ms` alone loads. */
Test(config, implicit_timeout_follows_a_short_interval)
{
	char err[512];
	const char *y = "bird: { socket: /b.ctl, include: /b.conf }\n"
			"services:\n  - name: web\n    prefixes: [\"192.0.2.0/24\"]\n    checks:\n"
			"      - { name: a, type: tcp, host: x, port: 1, interval: 200ms }\n"
			"      - { name: b, type: tcp, host: x, port: 1, interval: 5s }\n"
			"      - { name: c, type: tcp, host: x, port: 1, interval: 5s, timeout: 3s }\n";
	struct config *cfg = cfg_load_string("t.yaml", y, strlen(y), err, sizeof(err));

	cr_assert_not_null(cfg, "%s", err);
	cr_assert_eq(cfg->services[0].checks[0].timeout_ms, 200);
	cr_assert_eq(cfg->services[0].checks[1].timeout_ms, 1000);
	cr_assert_eq(cfg->services[0].checks[2].timeout_ms, 3000);
	cr_assert_eq(cfg->defaults.timeout_ms, 1000, "printed as the documented default");
	cfg_free(cfg);
}
