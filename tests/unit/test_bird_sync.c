/*
 * test_bird_sync — bird_sync against a real BIRD (birdlab): adoption,
 * announce/withdraw, batched community changes, restarts of either side,
 * drift, and the failures it must ride out. Every wait runs the loop until
 * BIRD (polled over its socket) or sync says the state arrived, under a
 * deadline that fails the test.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bird-glue/bird.h"
#include "config/config.h"
#include "tests/lib/testlib.h"

#define N_SVCS 2
#define V4 "healthd_web_v4"
#define V6 "healthd_web_v6"
#define DNS "healthd_dns_v4"
#define WEB_V4_ROUTE "203.0.113.10/32"
#define WEB_V6_ROUTE "2001:db8::10/128"

static const char *const svc_names[N_SVCS] = { "web", "dns" };

struct seen {
	int adopts;
	bool exists, announced;
};

struct want {
	bool on;
	int variant;            /* enum cfg_comm_set */
};

struct ctx {
	uv_loop_t loop;
	uv_timer_t deadline, poll, later;
	bool expired;
	struct config *cfg;
	struct bird_sync *sync;
	bool reapply;           /* adopt re-applies `want`, as healthd does */
	struct want want[N_SVCS];
	struct seen seen[N_SVCS];
	int n_adopts;
	int n_logs;
	char logs[32768];
	bool later_done;
};

static struct ctx T;
static struct birdlab lab;

/* ---- callbacks ---- */

static int svc_index(const char *name)
{
	for (int i = 0; i < N_SVCS; i++)
		if (!strcmp(svc_names[i], name))
			return i;
	cr_assert_fail("unknown service %s", name);
	return -1;
}

static void set_svc(int i, bool on, int variant);

static void on_adopt(void *arg, const char *service, bool exists, bool announced, int variant)
{
	(void)variant;
	struct ctx *t = arg;
	int i = svc_index(service);

	t->n_adopts++;
	t->seen[i].adopts++;
	t->seen[i].exists = exists;
	t->seen[i].announced = announced;
	if (t->reapply) {
		struct want w = t->want[i];

		set_svc(i, w.on, w.variant);
	}
}

static void on_log(void *arg, int level, const char *service, const char *msg)
{
	struct ctx *t = arg;
	size_t len = strlen(t->logs);

	t->n_logs++;
	if (len + 1 < sizeof(t->logs))
		snprintf(t->logs + len, sizeof(t->logs) - len, "<%d> %s: %s\n", level,
			 service ? service : "-", msg);
}

static void on_deadline(uv_timer_t *timer)
{
	((struct ctx *)timer->data)->expired = true;
}

static void on_poll(uv_timer_t *timer)
{
	(void)timer;            /* only wakes the loop so conditions are re-read */
}

/* ---- fixture ---- */

static void setup(void)
{
	signal(SIGPIPE, SIG_IGN);
	memset(&T, 0, sizeof(T));
	memset(&lab, 0, sizeof(lab));
	cr_assert_eq(uv_loop_init(&T.loop), 0);
	uv_timer_init(&T.loop, &T.deadline);
	uv_timer_init(&T.loop, &T.poll);
	uv_timer_init(&T.loop, &T.later);
	T.deadline.data = T.poll.data = T.later.data = &T;
}

static void teardown(void)
{
	if (T.sync)
		bird_sync_close(T.sync);
	T.sync = NULL;
	uv_close((uv_handle_t *)&T.deadline, NULL);
	uv_close((uv_handle_t *)&T.poll, NULL);
	uv_close((uv_handle_t *)&T.later, NULL);
	uv_run(&T.loop, UV_RUN_DEFAULT);
	cfg_free(T.cfg);
	birdlab_destroy(&lab);
	cr_assert_eq(uv_loop_close(&T.loop), 0, "every handle was closed");
}

TestSuite(bird_sync, .init = setup, .fini = teardown, .timeout = 60);

/* Run the loop until cond holds (re-read at least every 10 ms), failing
 * after ms. */
#define RUN_UNTIL(cond, ms, what)                                              \
	do {                                                                   \
		T.expired = false;                                             \
		uv_timer_start(&T.deadline, on_deadline, (ms), 0);             \
		uv_timer_start(&T.poll, on_poll, 10, 10);                      \
		while (!(cond) && !T.expired)                                  \
			uv_run(&T.loop, UV_RUN_ONCE);                          \
		uv_timer_stop(&T.deadline);                                    \
		uv_timer_stop(&T.poll);                                        \
		cr_assert(cond, "timed out waiting for %s; sync said:\n%s",    \
			  what, T.logs);                                       \
	} while (0)

/* ---- what BIRD and the file say ---- */

/* 'U' up, 'D' down, 'O' another state, 'M' no such protocol, 0 no answer.
 * since gets the row's Since column (ms resolution, see lab_body). */
static int proto_state(const char *name, char *since, size_t len)
{
	char cmd[128], out[8192], *save = NULL;
	int code;

	snprintf(cmd, sizeof(cmd), "show protocols \"%s\"", name);
	code = birdlab_cmd(&lab, cmd, out, sizeof(out));
	if (code == 8003)
		return 'M';
	if (code != 0)
		return 0;
	for (char *l = strtok_r(out, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		char n[64], proto[24], table[24], state[16], d[16], tm[24];

		if (!strncmp(l, "1002-", 5))
			l += 5;
		else if (l[0] == ' ')
			l++;
		else
			continue;
		if (sscanf(l, "%63s %23s %23s %15s %15s %23s", n, proto, table, state, d, tm) != 6 ||
		    strcmp(n, name))
			continue;
		if (since)
			snprintf(since, len, "%s %s", d, tm);
		return !strcmp(state, "up") ? 'U' : !strcmp(state, "down") ? 'D' : 'O';
	}
	return 0;
}

static bool web_is(int state)
{
	return proto_state(V4, NULL, 0) == state && proto_state(V6, NULL, 0) == state;
}

/* The route is in BIRD and carries text (e.g. "(65000,100)"). */
static bool route_has(const char *prefix, const char *text)
{
	char cmd[128], out[8192];

	snprintf(cmd, sizeof(cmd), "show route %s all", prefix);
	return birdlab_cmd(&lab, cmd, out, sizeof(out)) == 0 && strstr(out, text);
}

static bool route_absent(const char *prefix)
{
	char cmd[128], out[8192];

	snprintf(cmd, sizeof(cmd), "show route %s", prefix);
	return birdlab_cmd(&lab, cmd, out, sizeof(out)) == 8001;
}

static char *slurp(const char *path)
{
	static char buf[65536];
	FILE *f = fopen(path, "r");
	size_t n = 0;

	buf[0] = '\0';
	if (f) {
		n = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
	}
	buf[n] = '\0';
	return buf;
}

static bool file_has(const char *path, const char *text)
{
	return strstr(slurp(path), text) != NULL;
}

static bool idle(void)
{
	return T.sync && bird_sync_idle(T.sync);
}

static struct bird_sync_stats stats(void)
{
	struct bird_sync_stats st;

	bird_sync_stats(T.sync, &st);
	return st;
}

/* ---- driving sync ---- */

static const char *const variant_word[] = { "up", "degraded", "draining" };

static void set_svc(int i, bool on, int variant)
{
	T.want[i].on = on;
	T.want[i].variant = variant;
	bird_sync_set(T.sync, svc_names[i], on, variant, on ? variant_word[variant] : "withdrawn");
}

/* More keys for bird: in the next config loaded. */
static const char *bird_extra = "";

/* reconcile: a duration; include: NULL for the lab's file; up: web's `up`
 * communities (NULL: the default); extra: more services. */
static void load_cfg_with(const char *include, const char *reconcile, const char *up,
			  const char *extra)
{
	char *yaml, err[512];
	const char *check = "    checks:\n      - name: port\n        type: tcp\n"
			    "        host: 127.0.0.1\n        port: 9\n";
	int len;

	len = asprintf(&yaml,
		       "node: lab1\n"
		       "bird:\n  socket: %s\n  include: %s\n  timeout: 2s\n  reconcile: %s\n%s"
		       "services:\n"
		       "  - name: web\n"
		       "    prefixes: [\"" WEB_V4_ROUTE "\", \"" WEB_V6_ROUTE "\"]\n"
		       "    communities:\n      up: [%s]\n      degraded: [\"65000:666\"]\n%s"
		       "  - name: dns\n"
		       "    prefixes: [\"203.0.113.53/32\"]\n%s%s",
		       lab.sock, include ? include : lab.include, reconcile, bird_extra,
		       up ? up : "\"65000:100\", \"65000:1:2\"", check, check, extra ? extra : "");
	cr_assert_gt(len, 0);
	cfg_free(T.cfg);
	T.cfg = cfg_load_string("sync.yaml", yaml, (size_t)len, err, sizeof(err));
	free(yaml);
	cr_assert_not_null(T.cfg, "%s", err);
}

static void load_cfg(const char *include, const char *reconcile)
{
	load_cfg_with(include, reconcile, NULL, NULL);
}

static void start_sync(void)
{
	const struct bird_sync_cbs cbs = { .adopt = on_adopt, .log = on_log };

	cr_assert_eq(bird_sync_new(&T.loop, T.cfg, &cbs, &T, &T.sync), 0);
}

/* Millisecond "since" times: a toggle between two looks shows. */
static const char lab_body[] = "timeformat protocol iso long ms;\n";

static void start_lab(void)
{
	cr_assert_eq(birdlab_init(&lab, lab_body), 0);
	cr_assert_eq(birdlab_start(&lab, 10000), 0, "BIRD did not start, see %s", lab.log);
}

/* BIRD running, sync adopted and idle; services withdrawn. */
static void lab_and_sync(const char *reconcile)
{
	start_lab();
	load_cfg(NULL, reconcile);
	start_sync();
	RUN_UNTIL(T.n_adopts == N_SVCS, 5000, "adoption");
	set_svc(0, false, 0);
	set_svc(1, false, 0);
	RUN_UNTIL(idle() && web_is('D') && proto_state(DNS, NULL, 0) == 'D', 5000,
		  "the services withdrawn in BIRD");
}

/* Announce web in a state and wait until BIRD carries the state's text. */
static void announce_web(int variant, const char *bird_text)
{
	set_svc(0, true, variant);
	RUN_UNTIL(idle() && route_has(WEB_V4_ROUTE, bird_text) &&
		  route_has(WEB_V6_ROUTE, bird_text), 5000, "web announced");
}

/* ---- 1. adoption ---- */

Test(bird_sync, adopts_empty_bird_then_configures_withdrawn)
{
	start_lab();
	load_cfg(NULL, "200ms");
	start_sync();
	RUN_UNTIL(T.n_adopts == N_SVCS, 5000, "adoption");
	for (int i = 0; i < N_SVCS; i++) {
		cr_assert_eq(T.seen[i].adopts, 1, "%s adopted once", svc_names[i]);
		cr_assert_not(T.seen[i].exists, "%s is not in BIRD", svc_names[i]);
		cr_assert_not(T.seen[i].announced);
	}
	cr_assert_eq(proto_state(V4, NULL, 0), 'M', "nothing sent before adoption");

	set_svc(0, false, 0);
	set_svc(1, false, 0);
	RUN_UNTIL(idle() && web_is('D') && proto_state(DNS, NULL, 0) == 'D', 5000,
		  "the protocols in BIRD, disabled");
	const char *text = slurp(lab.include);
	cr_assert(strstr(text, "protocol static " V4 " {\n\t# healthd-state: withdrawn\n"
			       "\tdisabled yes;\n"), "%s", text);
	cr_assert(strstr(text, "protocol static " V6 " {"), "%s", text);
	cr_assert(strstr(text, "protocol static " DNS " {"), "%s", text);
	cr_assert_null(strstr(text, "healthd_dns_v6"), "dns has no v6 prefix");
	cr_assert_eq(stats().configures, 1, "one configure loads the new protocols");
	cr_assert(stats().adopted && stats().connected);
	cr_assert(route_absent(WEB_V4_ROUTE));
}

/* ---- 2. announce, withdraw ---- */

Test(bird_sync, announce_then_withdraw)
{
	lab_and_sync("200ms");
	announce_web(CFG_COMM_UP, "(65000,100)");
	cr_assert(route_has(WEB_V4_ROUTE, "(65000, 1, 2)"), "the large community too");
	cr_assert_eq(proto_state(DNS, NULL, 0), 'D', "dns was not touched");
	RUN_UNTIL(file_has(lab.include, "# healthd-state: up"), 5000, "the file");

	set_svc(0, false, 0);
	RUN_UNTIL(idle() && web_is('D'), 5000, "web withdrawn");
	cr_assert(route_absent(WEB_V4_ROUTE));
	cr_assert(route_absent(WEB_V6_ROUTE));
	const char *text = slurp(lab.include);
	cr_assert(strstr(text, "protocol static " V4 " {\n\t# healthd-state: withdrawn\n"
			       "\tdisabled yes;\n"), "%s", text);
	cr_assert(strstr(text, "protocol static " V6 " {\n\t# healthd-state: withdrawn\n"
			       "\tdisabled yes;\n"), "%s", text);
	cr_assert_eq(stats().command_errors, 0, "%s", T.logs);
}

/* ---- 3. states: enable the new protocol, then disable the old ---- */

static void later_dns(uv_timer_t *t)
{
	(void)t;
	set_svc(1, true, CFG_COMM_UP);
	T.later_done = true;
}

/* Was the route ever absent while we looked? Call it first in a condition,
 * so that it looks at every turn of the loop. */
static bool v4_gap;
static bool degraded_watch(const char *text)
{
	char cmd[128], out[8192];
	int code;

	snprintf(cmd, sizeof(cmd), "show route %s all", WEB_V4_ROUTE);
	code = birdlab_cmd(&lab, cmd, out, sizeof(out));
	v4_gap |= code == 8001;
	return code == 0 && strstr(out, text);
}

Test(bird_sync, state_change_is_enable_then_disable_without_configure)
{
	char out[4096];

	lab_and_sync("200ms");
	announce_web(CFG_COMM_UP, "(65000,100)");
	uint64_t c0 = stats().configures;
	cr_assert_eq(proto_state(V4 "_degraded", NULL, 0), 'D', "each state has its protocol");
	cr_assert_eq(proto_state(V4 "_draining", NULL, 0), 'D');
	cr_assert_eq(proto_state("healthd_dns_v4_degraded", NULL, 0), 'M',
		     "dns has no degraded communities, so no protocol");
	cr_assert_eq(proto_state("healthd_dns_v4_draining", NULL, 0), 'D');

	/* A protocol the operator added to bird.conf but did not configure:
	 * no state change may load it. */
	FILE *f = fopen(lab.conf, "a");
	cr_assert_not_null(f);
	fputs("protocol static operator_extra { ipv4; route 198.51.100.0/24 blackhole; }\n", f);
	fclose(f);

	v4_gap = false;
	set_svc(0, true, CFG_COMM_DEGRADED);
	RUN_UNTIL(degraded_watch("(65000,666)") && idle(), 5000, "degraded");
	cr_assert_eq(proto_state(V4 "_degraded", NULL, 0), 'U');
	cr_assert_eq(proto_state(V4, NULL, 0), 'D', "the up protocol handed over");
	cr_assert(route_has(WEB_V6_ROUTE, "(65000,666)"));
	cr_assert_not(v4_gap, "the prefix never left BIRD's table");

	set_svc(0, true, CFG_COMM_DRAINING);
	RUN_UNTIL(degraded_watch("(65535,0)") && idle(), 5000, "draining");
	cr_assert_not(route_has(WEB_V4_ROUTE, "(65000,666)"));
	cr_assert_not(v4_gap, "the prefix never left BIRD's table");

	set_svc(0, false, 0);
	RUN_UNTIL(idle() && route_absent(WEB_V4_ROUTE) && route_absent(WEB_V6_ROUTE), 5000,
		  "withdrawn");
	cr_assert_eq(proto_state(V4 "_draining", NULL, 0), 'D');

	set_svc(0, true, CFG_COMM_UP);
	uv_timer_start(&T.later, later_dns, 5, 0);
	RUN_UNTIL(T.later_done && idle() && route_has(WEB_V4_ROUTE, "(65000,100)") &&
		  route_has("203.0.113.53/32", "blackhole"), 5000, "recovered");
	cr_assert_eq(stats().configures, c0, "no configure for any state change:\n%s", T.logs);
	cr_assert_eq(birdlab_cmd(&lab, "show protocols \"operator_extra\"", out, sizeof(out)), 8003,
		     "the operator's half-done edit was not applied: %s", out);
	cr_assert_eq(stats().command_errors, 0, "%s", T.logs);
	uint64_t cmds = stats().commands;
	RUN_UNTIL(stats().commands >= cmds + 2, 5000, "two reconcile passes");
	cr_assert_eq(stats().configures, c0, "no configure without a change");
	cr_assert_eq(stats().repairs, 0, "%s", T.logs);
}

/* ---- 4. restart of healthd ---- */

Test(bird_sync, restart_adopts_without_a_command)
{
	char since4[64], since6[64], now[64];

	lab_and_sync("200ms");
	announce_web(CFG_COMM_UP, "(65000,100)");
	cr_assert_eq(proto_state(V4, since4, sizeof(since4)), 'U');
	cr_assert_eq(proto_state(V6, since6, sizeof(since6)), 'U');

	bird_sync_close(T.sync);
	T.sync = NULL;
	memset(T.seen, 0, sizeof(T.seen));
	T.n_adopts = 0;
	T.logs[0] = '\0';
	T.reapply = true;
	start_sync();
	RUN_UNTIL(T.n_adopts == N_SVCS && idle(), 5000, "adoption");
	cr_assert(T.seen[0].exists && T.seen[0].announced, "web adopted as announced");
	cr_assert(T.seen[1].exists && !T.seen[1].announced, "dns adopted as withdrawn");
	RUN_UNTIL(stats().commands >= 4, 5000, "a few reconcile passes");
	cr_assert_eq(stats().configures, 0, "%s", T.logs);
	cr_assert_eq(stats().repairs, 0, "%s", T.logs);
	cr_assert_null(strstr(T.logs, "BIRD: "), "no enable/disable was sent:\n%s", T.logs);
	cr_assert_eq(proto_state(V4, now, sizeof(now)), 'U');
	cr_assert_str_eq(now, since4, "no flap of " V4);
	cr_assert_eq(proto_state(V6, now, sizeof(now)), 'U');
	cr_assert_str_eq(now, since6, "no flap of " V6);
	cr_assert(route_has(WEB_V4_ROUTE, "(65000,100)"));
}

/* ---- 5., 6. drift, someone else's configure, BIRD restarted ---- */

Test(bird_sync, drift_is_repaired_within_a_reconcile)
{
	char out[4096];

	lab_and_sync("200ms");
	cr_assert_eq(birdlab_cmd(&lab, "enable \"" V4 "\"", out, sizeof(out)), 0, "%s", out);
	cr_assert_eq(proto_state(V4, NULL, 0), 'U', "drifted");
	/* One interval of 200 ms, with room for a slow (sanitizer) build. */
	RUN_UNTIL(proto_state(V4, NULL, 0) == 'D' && stats().repairs > 0, 1000, "the repair");
	cr_assert(strstr(T.logs, V4 " is up in BIRD but should be disabled"), "%s", T.logs);
	cr_assert_eq(proto_state(V6, NULL, 0), 'D');
}

static bool seen_up;

static bool web_down_watch(void)
{
	int s4 = proto_state(V4, NULL, 0), s6 = proto_state(V6, NULL, 0);

	seen_up |= s4 == 'U' || s6 == 'U';
	return s4 == 'D' && s6 == 'D';
}

Test(bird_sync, withdrawal_survives_configure_and_bird_restart)
{
	char out[4096];

	lab_and_sync("200ms");
	cr_assert_eq(birdlab_cmd(&lab, "configure", out, sizeof(out)), 3, "%s", out);
	cr_assert(web_is('D'), "the file keeps it disabled");
	uint64_t cmds = stats().commands;
	RUN_UNTIL(stats().commands >= cmds + 2, 5000, "two reconcile passes");
	cr_assert_eq(stats().repairs, 0, "nothing drifted: %s", T.logs);
	cr_assert(web_is('D'));

	birdlab_stop(&lab, SIGKILL);
	RUN_UNTIL(!stats().connected, 5000, "the disconnect");
	cr_assert_eq(birdlab_start(&lab, 10000), 0, "see %s", lab.log);
	seen_up = false;
	RUN_UNTIL(stats().connected && idle() && web_down_watch(), 10000, "the reconnect");
	cr_assert_not(seen_up, "nothing was announced");
	cr_assert(strstr(T.logs, "BIRD unreachable"), "%s", T.logs);
	cr_assert(route_absent(WEB_V4_ROUTE));
	cr_assert_eq(proto_state(DNS, NULL, 0), 'D');
}

/* ---- 7. BIRD not there yet ---- */

Test(bird_sync, bird_unreachable_at_start)
{
	cr_assert_eq(birdlab_init(&lab, lab_body), 0);
	load_cfg(NULL, "200ms");
	start_sync();
	set_svc(0, false, 0);
	set_svc(1, false, 0);
	RUN_UNTIL(file_has(lab.include, "protocol static " V4 " {\n\t# healthd-state: "
				  "withdrawn\n\tdisabled yes;\n") &&
		  file_has(lab.include, "protocol static " DNS " {"), 5000, "the include file");
	cr_assert_not(stats().connected);
	cr_assert_not(stats().adopted);
	cr_assert_eq(T.n_adopts, 0);

	cr_assert_eq(birdlab_start(&lab, 10000), 0, "see %s", lab.log);
	cr_assert(web_is('D'), "BIRD read the file at start");
	RUN_UNTIL(T.n_adopts == N_SVCS && idle(), 10000, "adoption");
	cr_assert(T.seen[0].exists && !T.seen[0].announced);
	cr_assert(web_is('D') && proto_state(DNS, NULL, 0) == 'D');
	cr_assert_eq(stats().command_errors, 0, "%s", T.logs);
}

/* ---- 8., 9. failures ---- */

/* An include file from before healthd: every protocol up. */
static const char preset[] =
	"protocol static " V4 " { ipv4; route " WEB_V4_ROUTE " blackhole; }\n"
	"protocol static " V6 " { ipv6; route " WEB_V6_ROUTE " blackhole; }\n"
	"protocol static " DNS " { ipv4; route 203.0.113.53/32 blackhole; }\n";

Test(bird_sync, include_not_writable_still_disables)
{
	char bad[200];

	cr_assert_eq(birdlab_init(&lab, lab_body), 0);
	cr_assert_eq(birdlab_write_include(&lab, preset), 0);
	cr_assert_eq(birdlab_start(&lab, 10000), 0, "see %s", lab.log);
	cr_assert(web_is('U'));
	snprintf(bad, sizeof(bad), "%s/missing/healthd.conf", lab.dir);
	load_cfg(bad, "200ms");
	T.reapply = true;
	T.want[0].on = T.want[1].on = true;
	start_sync();
	RUN_UNTIL(T.n_adopts == N_SVCS, 5000, "adoption");
	cr_assert(T.seen[0].announced);
	cr_assert(web_is('U'), "adopted as it was");

	set_svc(0, false, 0);
	RUN_UNTIL(web_is('D') && stats().render_errors > 0, 5000,
		  "the disable, and the failed write after it");
	cr_assert(strstr(T.logs, bad), "the log names %s:\n%s", bad, T.logs);
	cr_assert_eq(proto_state(DNS, NULL, 0), 'U', "dns untouched");
}

/* A write that failed is retried at each reconcile: once the directory
 * exists, the file says what BIRD was told, so a restart keeps it. */
Test(bird_sync, failed_include_write_is_retried)
{
	char dir[200], path[240];

	cr_assert_eq(birdlab_init(&lab, lab_body), 0);
	cr_assert_eq(birdlab_write_include(&lab, preset), 0);
	cr_assert_eq(birdlab_start(&lab, 10000), 0, "see %s", lab.log);
	snprintf(dir, sizeof(dir), "%s/later", lab.dir);
	snprintf(path, sizeof(path), "%s/healthd.conf", dir);
	load_cfg(path, "200ms");
	T.reapply = true;
	T.want[0].on = T.want[1].on = true;
	start_sync();
	RUN_UNTIL(T.n_adopts == N_SVCS, 5000, "adoption");
	set_svc(0, false, 0);
	RUN_UNTIL(web_is('D') && stats().render_errors > 0, 5000,
		  "the disable, and the failed write after it");
	cr_assert_eq(mkdir(dir, 0755), 0);
	RUN_UNTIL(file_has(path, "disabled yes;"), 5000, "the include file to be written");
	/* BIRD includes another file: the protocols the new one defines never
	 * come, and healthd says so instead of sending configure after
	 * configure. */
	RUN_UNTIL(strstr(stats().problem, "does bird.conf include"), 5000, "the diagnosis");
	cr_assert(strstr(stats().problem, path), "%s", stats().problem);
	uint64_t c = stats().configures, until = uv_now(&T.loop) + 4000;
	RUN_UNTIL(uv_now(&T.loop) >= until, 6000, "4 s");
	cr_assert_leq(stats().configures - c, 3, "backed off: %llu configures in 4 s",
		      (unsigned long long)(stats().configures - c));
	cr_assert_not(idle());
	cr_assert(web_is('D'), "the withdrawal holds");
	cr_assert(strstr(T.logs, "written again"), "the recovery is logged:\n%s", T.logs);
}

static void append(const char *path, const char *text)
{
	FILE *f = fopen(path, "a");

	cr_assert_not_null(f);
	fputs(text, f);
	fclose(f);
}

static void rewrite(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	cr_assert_not_null(f);
	fputs(text, f);
	fclose(f);
}

/* A reload whose routes change needs a configure; BIRD refuses it for a
 * fault in the operator's bird.conf: retried with back-off, logged once. */
Test(bird_sync, refused_configure_is_retried)
{
	char conf[8192];

	lab_and_sync("200ms");
	announce_web(CFG_COMM_UP, "(65000,100)");
	snprintf(conf, sizeof(conf), "%s", slurp(lab.conf));
	append(lab.conf, "this is not a bird config\n");

	load_cfg_with(NULL, "200ms", "\"65000:200\"", NULL);
	bird_sync_reconfig(T.sync, T.cfg);
	RUN_UNTIL(stats().command_errors > 0 && strstr(T.logs, "8002"), 5000, "the refusal");
	cr_assert(strstr(T.logs, "8002 ") && strstr(T.logs, lab.conf), "BIRD's text:\n%s",
		  T.logs);
	cr_assert(strstr(stats().last_error, "8002"), "%s", stats().last_error);
	cr_assert(strstr(stats().problem, "refused configure"), "%s", stats().problem);
	cr_assert_not(idle());
	cr_assert(stats().connected);
	cr_assert(web_is('U'), "the old config stays active");
	cr_assert(route_has(WEB_V4_ROUTE, "(65000,100)"));

	/* Retries back off: over 3 s at most a few configures, one log line. */
	uint64_t c = stats().configures;
	uint64_t until = uv_now(&T.loop) + 3000;
	RUN_UNTIL(uv_now(&T.loop) >= until, 5000, "3 s of refusals");
	cr_assert_leq(stats().configures - c, 2, "backed off: %llu configures in 3 s",
		      (unsigned long long)(stats().configures - c));
	const char *first = strstr(T.logs, "<3> -: BIRD refused configure");
	cr_assert_not_null(first, "%s", T.logs);
	cr_assert_null(strstr(first + 1, "<3> -: BIRD refused configure"), "logged once:\n%s",
		       T.logs);

	rewrite(lab.conf, conf);
	RUN_UNTIL(idle() && route_has(WEB_V4_ROUTE, "(65000,200)") &&
		  route_has(WEB_V6_ROUTE, "(65000,200)"), 10000, "the retry");
	cr_assert(web_is('U'));
	cr_assert_str_eq(stats().problem, "", "the problem is over");
}

/* When the refusal names the include file, the file goes back to what BIRD
 * runs (with today's enable/disable lines): it never holds what BIRD refused. */
Test(bird_sync, refused_include_is_restored)
{
	char conf[8192], *inc;

	lab_and_sync("200ms");
	announce_web(CFG_COMM_UP, "(65000,100)");
	/* The operator's config now claims a name our file defines: BIRD
	 * reports the clash in our file. */
	snprintf(conf, sizeof(conf), "%s", slurp(lab.conf));
	inc = strstr(conf, "include");
	cr_assert_not_null(inc);
	char patched[8300];
	snprintf(patched, sizeof(patched), "%.*sdefine healthd_web_v6 = 1;\n%s",
		 (int)(inc - conf), conf, inc);
	rewrite(lab.conf, patched);

	load_cfg_with(NULL, "200ms", "\"65000:200\"", NULL);
	bird_sync_reconfig(T.sync, T.cfg);
	RUN_UNTIL(strstr(T.logs, "restored to the last version BIRD accepted"), 5000,
		  "the restore");
	cr_assert(strstr(T.logs, lab.include), "the refusal names the include file:\n%s", T.logs);
	RUN_UNTIL(file_has(lab.include, "(65000,100)") && !file_has(lab.include, "(65000,200)"),
		  5000, "the include file restored");
	cr_assert(file_has(lab.include, "# healthd-state: up"));
	cr_assert(route_has(WEB_V4_ROUTE, "(65000,100)"), "BIRD still runs the old routes");

	/* A withdrawal meanwhile still reaches BIRD and the restored file. */
	set_svc(0, false, 0);
	RUN_UNTIL(web_is('D') && file_has(lab.include, "disabled yes;"), 5000,
		  "the withdrawal with the restored file");
	cr_assert_not(file_has(lab.include, "(65000,200)"));
}

/* ---- 10. reloads, removals, scale, a BIRD that refuses everything ---- */

static void load_dns_only(const char *reconcile)
{
	char *yaml, err[512];
	int len = asprintf(&yaml,
			   "node: lab1\n"
			   "bird:\n  socket: %s\n  include: %s\n  timeout: 2s\n  reconcile: %s\n"
			   "services:\n"
			   "  - name: dns\n"
			   "    prefixes: [\"203.0.113.53/32\"]\n"
			   "    checks:\n      - name: port\n        type: tcp\n"
			   "        host: 127.0.0.1\n        port: 9\n",
			   lab.sock, lab.include, reconcile);

	cr_assert_gt(len, 0);
	cfg_free(T.cfg);
	T.cfg = cfg_load_string("sync.yaml", yaml, (size_t)len, err, sizeof(err));
	free(yaml);
	cr_assert_not_null(T.cfg, "%s", err);
}

static void run_for(uint64_t ms)
{
	uint64_t until = uv_now(&T.loop) + ms;

	RUN_UNTIL(uv_now(&T.loop) >= until, ms + 1000, "time to pass");
}

/* A reload frees the service table while BIRD has not answered a command:
 * the answer must find its protocol by name (this was a use-after-free). */
Test(bird_sync, reload_while_a_command_is_in_flight)
{
	lab_and_sync("5s");
	announce_web(CFG_COMM_UP, "(65000,100)");
	cr_assert_eq(kill(lab.pid, SIGSTOP), 0);
	set_svc(0, false, 0);           /* `disable` goes out; no answer yet */
	run_for(50);
	for (int i = 0; i < 6; i++) {
		if (i % 2)
			load_cfg_with(NULL, "5s", NULL, NULL);
		else
			load_dns_only("5s");
		bird_sync_reconfig(T.sync, T.cfg);
		run_for(20);
	}
	cr_assert_eq(kill(lab.pid, SIGCONT), 0);
	RUN_UNTIL(idle() && web_is('D'), 5000, "the answers, matched by name");
	cr_assert(route_absent(WEB_V4_ROUTE));
	cr_assert_eq(stats().command_errors, 0, "%s", T.logs);
}

/* A service that leaves the config is disabled first, then dropped from
 * the file and from BIRD. */
Test(bird_sync, removed_service_is_disabled_then_dropped)
{
	lab_and_sync("200ms");
	announce_web(CFG_COMM_UP, "(65000,100)");
	uint64_t c = stats().configures;

	load_dns_only("200ms");
	bird_sync_reconfig(T.sync, T.cfg);
	RUN_UNTIL(route_absent(WEB_V4_ROUTE) && route_absent(WEB_V6_ROUTE), 5000, "withdrawn");
	RUN_UNTIL(idle() && proto_state(V4, NULL, 0) == 'M' && proto_state(V6, NULL, 0) == 'M',
		  5000, "web gone from BIRD");
	cr_assert_not(file_has(lab.include, "healthd_web"), "%s", slurp(lab.include));
	cr_assert_eq(stats().configures, c + 1, "one configure drops it");
	cr_assert(strstr(T.logs, "BIRD: healthd_web_v4: disabled"), "disabled before the drop:\n%s",
		  T.logs);
}

/* BIRD refuses the configure that would drop the removed service, naming
 * our file: it stays disabled, and the restored file never enables it. */
Test(bird_sync, removed_service_stays_disabled_when_configure_is_refused)
{
	char conf[8192], patched[8300], *inc;

	lab_and_sync("200ms");
	announce_web(CFG_COMM_UP, "(65000,100)");
	snprintf(conf, sizeof(conf), "%s", slurp(lab.conf));
	inc = strstr(conf, "include");
	cr_assert_not_null(inc);
	snprintf(patched, sizeof(patched), "%.*sdefine healthd_dns_v4 = 1;\n%s",
		 (int)(inc - conf), conf, inc);
	rewrite(lab.conf, patched);

	load_dns_only("200ms");
	bird_sync_reconfig(T.sync, T.cfg);
	RUN_UNTIL(web_is('D') && strstr(T.logs, "restored to the last version BIRD accepted"),
		  5000, "the disable and the refusal");
	RUN_UNTIL(file_has(lab.include, "protocol static " V4 " {\n\t# healthd-state: withdrawn\n"
				  "\tdisabled yes;\n"), 5000, "the restored file, web disabled");
	cr_assert(file_has(lab.include, "protocol static " V6 " {\n\t# healthd-state: withdrawn\n"
				  "\tdisabled yes;\n"), "%s", slurp(lab.include));
	run_for(1500);                  /* a retry or two, and reconcile passes */
	cr_assert(web_is('D'), "still disabled");
	cr_assert(route_absent(WEB_V4_ROUTE));

	rewrite(lab.conf, conf);
	RUN_UNTIL(idle() && proto_state(V4, NULL, 0) == 'M', 10000, "the drop, once BIRD agrees");
	cr_assert_not(file_has(lab.include, "healthd_web"));
}

/* A BIRD that answers every command with 8007 gets a few commands a
 * second at first, then fewer: never a loop. */
Test(bird_sync, a_bird_that_refuses_everything_is_not_flooded)
{
	struct fakebird *fb;
	char sock[96];

	cr_assert_eq(birdlab_init(&lab, lab_body), 0);
	snprintf(sock, sizeof(sock), "%.80s/deny.ctl", lab.dir);
	cr_assert_eq(fakebird_start(&T.loop, sock, FAKEBIRD_DENY, &fb), 0);
	snprintf(lab.sock, sizeof(lab.sock), "%s", sock);
	load_cfg(NULL, "200ms");
	start_sync();
	run_for(1000);
	unsigned first = fakebird_commands(fb);
	run_for(4000);
	unsigned later = fakebird_commands(fb) - first;
	cr_log_info("measured: a BIRD answering 8007 to everything got %u commands in the "
		    "first second, %u in the next 4 s", first, later);
	cr_assert_leq(first, 3, "%u commands in the first second", first);
	cr_assert_leq(later, 4, "%u commands in the next 4 s", later);
	cr_assert(strstr(stats().problem, "8007"), "%s", stats().problem);
	cr_assert_eq(T.n_adopts, 0, "nothing adopted from a refusal");
	bird_sync_close(T.sync);
	T.sync = NULL;
	fakebird_close(fb);
}

/* web renamed to www with the same prefixes: www's protocols are loaded
 * and enabled before web's are disabled, so the prefixes never leave. */
Test(bird_sync, renamed_service_hands_over_without_a_gap)
{
	char *yaml, err[512];
	int len;

	lab_and_sync("200ms");
	announce_web(CFG_COMM_UP, "(65000,100)");
	len = asprintf(&yaml,
		       "node: lab1\n"
		       "bird:\n  socket: %s\n  include: %s\n  timeout: 2s\n  reconcile: 200ms\n"
		       "services:\n"
		       "  - name: www\n"
		       "    prefixes: [\"" WEB_V4_ROUTE "\", \"" WEB_V6_ROUTE "\"]\n"
		       "    communities:\n      up: [\"65000:101\"]\n"
		       "    checks:\n      - name: port\n        type: tcp\n"
		       "        host: 127.0.0.1\n        port: 9\n",
		       lab.sock, lab.include);
	cr_assert_gt(len, 0);
	cfg_free(T.cfg);
	T.cfg = cfg_load_string("sync.yaml", yaml, (size_t)len, err, sizeof(err));
	free(yaml);
	cr_assert_not_null(T.cfg, "%s", err);
	bird_sync_reconfig(T.sync, T.cfg);
	/* what the daemon does at once: the state carried over to the new name */
	bird_sync_set(T.sync, "www", true, CFG_COMM_UP, "up");
	v4_gap = false;
	RUN_UNTIL(degraded_watch("(65000,101)") && idle() && proto_state(V4, NULL, 0) == 'M',
		  10000, "www announcing, web gone");
	cr_assert_not(v4_gap, "the prefix never left BIRD's table:\n%s", T.logs);
	cr_assert(route_has(WEB_V6_ROUTE, "(65000,101)"));
	cr_assert_eq(proto_state("healthd_www_v4", NULL, 0), 'U');
	cr_assert_not(file_has(lab.include, "healthd_web_"), "%s", slurp(lab.include));
}

/* A healthd_* protocol no service owns (left by an old config, or by hand)
 * is reported; with bird.purge it is disabled. */
Test(bird_sync, unknown_protocols_are_reported_and_purged_on_request)
{
	static const char body[] = "timeformat protocol iso long ms;\n"
		"protocol static healthd_stale_v4 { ipv4; route 198.51.100.77/32 blackhole; }\n";
	bool up = false;

	cr_assert_eq(birdlab_init(&lab, body), 0);
	cr_assert_eq(birdlab_start(&lab, 10000), 0, "see %s", lab.log);
	load_cfg(NULL, "200ms");
	start_sync();
	RUN_UNTIL(T.n_adopts == N_SVCS, 5000, "adoption");
	set_svc(0, false, 0);
	set_svc(1, false, 0);
	RUN_UNTIL(idle() && stats().unknown == 1, 5000, "the unknown protocol reported");
	cr_assert_str_eq(bird_sync_unknown(T.sync, 0, &up), "healthd_stale_v4");
	cr_assert(up);
	cr_assert_null(bird_sync_unknown(T.sync, 1, NULL));
	cr_assert(strstr(T.logs, "BIRD runs healthd_stale_v4, which no configured service owns"),
		  "%s", T.logs);
	run_for(500);
	cr_assert_eq(proto_state("healthd_stale_v4", NULL, 0), 'U', "left alone without purge");

	bird_extra = "  purge: true\n";
	load_cfg(NULL, "200ms");
	bird_extra = "";
	bird_sync_reconfig(T.sync, T.cfg);
	RUN_UNTIL(proto_state("healthd_stale_v4", NULL, 0) == 'D' && idle(), 5000, "the purge");
	cr_assert_eq(stats().purged, 1);
	cr_assert(route_absent("198.51.100.77/32"));
}

/* A BIRD that answers one command and then closes: reconnects back off
 * (an answered command alone does not prove the connection good). */
Test(bird_sync, a_bird_that_drops_after_each_answer_is_not_hammered)
{
	struct fakebird *fb;
	char sock[96];

	cr_assert_eq(birdlab_init(&lab, lab_body), 0);
	snprintf(sock, sizeof(sock), "%.80s/drop.ctl", lab.dir);
	cr_assert_eq(fakebird_start(&T.loop, sock, FAKEBIRD_ANSWER_CLOSE, &fb), 0);
	snprintf(lab.sock, sizeof(lab.sock), "%s", sock);
	load_cfg(NULL, "200ms");
	start_sync();
	run_for(4000);
	unsigned conns = fakebird_connections(fb);
	cr_log_info("measured: a BIRD that drops after each answer: %u connections in 4 s", conns);
	cr_assert_leq(conns, 8, "%u connections in 4 s", conns);
	bird_sync_close(T.sync);
	T.sync = NULL;
	fakebird_close(fb);
}

/* Was web ever reported as not announced while we looked? */
static bool web_lapse;
static bool web_announcing_watch(void)
{
	char why[128];

	web_lapse |= !bird_sync_announcing(T.sync, "web", why, sizeof(why));
	return true;
}

/* A reload that needs a configure: the announced service stays reported
 * as announced throughout (it did not flip to 503 while BIRD answered). */
Test(bird_sync, a_configure_does_not_make_an_announced_service_look_withdrawn)
{
	lab_and_sync("200ms");
	announce_web(CFG_COMM_UP, "(65000,100)");
	uint64_t c = stats().configures;

	load_cfg_with(NULL, "200ms", NULL, "  - name: extra\n    prefixes: [\"198.51.100.88/32\"]\n"
		      "    checks:\n      - name: port\n        type: tcp\n"
		      "        host: 127.0.0.1\n        port: 9\n");
	bird_sync_reconfig(T.sync, T.cfg);
	web_lapse = false;
	RUN_UNTIL(web_announcing_watch() && stats().configures > c && idle() &&
		  proto_state("healthd_extra_v4", NULL, 0) == 'D', 5000, "the configure");
	cr_assert_not(web_lapse, "web looked withdrawn during the configure");
}

/* A reload gives the degraded state communities of its own while the
 * service is degraded: the new protocol is loaded and enabled before the
 * up protocol (which carried the state so far) is disabled. */
Test(bird_sync, a_state_that_gets_its_own_protocol_hands_over)
{
	lab_and_sync("200ms");
	announce_web(CFG_COMM_UP, "(65000,100)");
	load_cfg_with(NULL, "200ms", NULL, NULL);
	/* dns has no degraded communities: degraded is its up protocol */
	set_svc(1, true, CFG_COMM_DEGRADED);
	RUN_UNTIL(idle() && route_has("203.0.113.53/32", "blackhole"), 5000, "dns degraded");
	cr_assert_eq(proto_state(DNS, NULL, 0), 'U');

	char *yaml, err[512];
	int len = asprintf(&yaml,
			   "node: lab1\n"
			   "bird:\n  socket: %s\n  include: %s\n  timeout: 2s\n  reconcile: 200ms\n"
			   "services:\n"
			   "  - name: web\n"
			   "    prefixes: [\"" WEB_V4_ROUTE "\", \"" WEB_V6_ROUTE "\"]\n"
			   "    communities:\n      up: [\"65000:100\", \"65000:1:2\"]\n"
			   "      degraded: [\"65000:666\"]\n"
			   "    checks:\n      - name: port\n        type: tcp\n"
			   "        host: 127.0.0.1\n        port: 9\n"
			   "  - name: dns\n"
			   "    prefixes: [\"203.0.113.53/32\"]\n"
			   "    communities:\n      degraded: [\"65000:54\"]\n"
			   "    checks:\n      - name: port\n        type: tcp\n"
			   "        host: 127.0.0.1\n        port: 9\n",
			   lab.sock, lab.include);
	cr_assert_gt(len, 0);
	cfg_free(T.cfg);
	T.cfg = cfg_load_string("sync.yaml", yaml, (size_t)len, err, sizeof(err));
	free(yaml);
	cr_assert_not_null(T.cfg, "%s", err);
	bird_sync_reconfig(T.sync, T.cfg);
	bool gap = false;
	char out[4096];
#define DNS_WATCH() (gap |= birdlab_cmd(&lab, "show route 203.0.113.53/32 all", out, sizeof(out)) == 8001, \
		     strstr(out, "(65000,54)") != NULL)
	RUN_UNTIL(DNS_WATCH() && idle(), 5000, "dns degraded through its own protocol");
#undef DNS_WATCH
	cr_assert_not(gap, "the prefix never left BIRD's table");
	cr_assert_eq(proto_state("healthd_dns_v4_degraded", NULL, 0), 'U');
	cr_assert_eq(proto_state(DNS, NULL, 0), 'D');
}

/* A reload to another include path writes the new file even when its
 * text would equal the old file's. */
Test(bird_sync, a_new_include_path_is_written)
{
	char path[200];

	lab_and_sync("200ms");
	snprintf(path, sizeof(path), "%s/moved.conf", lab.dir);
	load_cfg(path, "200ms");
	bird_sync_reconfig(T.sync, T.cfg);
	RUN_UNTIL(file_has(path, "protocol static " V4 " {"), 5000, "the file at the new path");
}

/* A service removed while healthd was not running: its protocols, known
 * only from the include file, are disabled before they are dropped. */
Test(bird_sync, a_service_removed_while_down_is_disabled_then_dropped)
{
	static const char old[] =
		"protocol static healthd_gone_v4 { ipv4; route 198.51.100.99/32 blackhole; }\n";

	cr_assert_eq(birdlab_init(&lab, lab_body), 0);
	cr_assert_eq(birdlab_write_include(&lab, old), 0);
	cr_assert_eq(birdlab_start(&lab, 10000), 0, "see %s", lab.log);
	cr_assert_eq(proto_state("healthd_gone_v4", NULL, 0), 'U');
	load_cfg(NULL, "200ms");
	start_sync();
	RUN_UNTIL(T.n_adopts == N_SVCS, 5000, "adoption");
	set_svc(0, false, 0);
	set_svc(1, false, 0);
	RUN_UNTIL(idle() && proto_state("healthd_gone_v4", NULL, 0) == 'M', 5000, "the drop");
	const char *dis = strstr(T.logs, "BIRD: healthd_gone_v4: disabled");
	const char *cfgd = strstr(T.logs, "BIRD reconfigured");
	cr_assert(dis && cfgd && dis < cfgd, "disabled before the configure:\n%s", T.logs);
	cr_assert_eq(stats().unknown, 0);
}
