/* The Prometheus renderer and the latency histogram behind it, on a daemon
 * state built by hand (no BIRD, no probes). */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "healthd/internal.h"

static uv_loop_t loop;
static struct config *cfg;
static struct hd hd;
static struct hd_service hs, *svcs[1] = { &hs };
static char *page;

static const char yaml[] =
	"bird: { socket: /nonexistent/bird.ctl, include: /nonexistent/healthd.conf }\n"
	"services:\n"
	"  - name: web\n"
	"    prefixes: [\"203.0.113.0/24\"]\n"
	"    checks:\n"
	"      - { name: probe, type: tcp, host: 127.0.0.1, port: 1 }\n";

static void setup(void)
{
	char err[512];

	cr_assert_eq(uv_loop_init(&loop), 0);
	cfg = cfg_load_string("m.yaml", yaml, strlen(yaml), err, sizeof(err));
	cr_assert_not_null(cfg, "%s", err);
	memset(&hd, 0, sizeof(hd));
	memset(&hs, 0, sizeof(hs));
	hd.loop = &loop;
	hd.cfg = cfg;
	hd.svcs = svcs;
	hd.n_svcs = 1;
	hd.reloads = 3;
	hd.reload_failures = 1;
	cr_assert_eq(svc_init(&hs.svc, &cfg->services[0], 0), 0);
	page = NULL;
}

static void teardown(void)
{
	free(page);
	svc_free(&hs.svc);
	cfg_free(cfg);
	cr_assert_eq(uv_loop_close(&loop), 0);
}

TestSuite(metrics, .init = setup, .fini = teardown, .timeout = 10);

static void result(enum check_reason why, uint64_t latency_us)
{
	struct check_result r = { .reason = why, .latency_us = latency_us };

	svc_check_result(&hs.svc, 0, &r, 1000, 1);
}

static void render(void)
{
	size_t len = 0;

	free(page);
	page = hd_metrics(&hd, &len);
	cr_assert_not_null(page);
	cr_assert_eq(strlen(page), len);
}

static void has_line(const char *line)
{
	char *want = NULL;

	cr_assert_geq(asprintf(&want, "\n%s\n", line), 0);
	cr_expect_not_null(strstr(page, want), "missing line: %s\n--- page:\n%s", line, page);
	free(want);
}

Test(metrics, histogram_buckets_are_cumulative_and_bounds_inclusive)
{
	result(CHECK_OK, 400);        /* <= 0.5 ms */
	result(CHECK_OK, 500);        /* exactly on the bound: same bucket */
	result(CHECK_OK, 30000);      /* 30 ms: le 0.05 */
	result(CHECK_TIMEOUT, 9000000); /* beyond 5 s: +Inf only */
	cr_assert_eq(hs.svc.checks[0].latency_hist[0], 2);
	cr_assert_eq(hs.svc.checks[0].latency_hist[SVC_LATENCY_BUCKETS], 1);
	cr_assert_eq(hs.svc.checks[0].latency_sum_us, 400 + 500 + 30000 + 9000000);
	render();
	has_line("healthd_check_latency_seconds_bucket{service=\"web\",check=\"probe\",le=\"0.0005\"} 2");
	has_line("healthd_check_latency_seconds_bucket{service=\"web\",check=\"probe\",le=\"0.025\"} 2");
	has_line("healthd_check_latency_seconds_bucket{service=\"web\",check=\"probe\",le=\"0.05\"} 3");
	has_line("healthd_check_latency_seconds_bucket{service=\"web\",check=\"probe\",le=\"5\"} 3");
	has_line("healthd_check_latency_seconds_bucket{service=\"web\",check=\"probe\",le=\"+Inf\"} 4");
	has_line("healthd_check_latency_seconds_count{service=\"web\",check=\"probe\"} 4");
	has_line("healthd_check_latency_seconds_sum{service=\"web\",check=\"probe\"} 9.030900");
	has_line("healthd_check_consecutive_failures{service=\"web\",check=\"probe\"} 1");
	has_line("healthd_check_probes_total{service=\"web\",check=\"probe\"} 4");
}

Test(metrics, service_state_and_daemon_counters)
{
	svc_adopt(&hs.svc, SVC_DRAINING, "test", 0, 1);
	render();
	has_line("healthd_service_state{service=\"web\",state=\"draining\"} 1");
	has_line("healthd_service_state{service=\"web\",state=\"up\"} 0");
	has_line("healthd_service_state{service=\"web\",state=\"withdrawn\"} 0");
	has_line("healthd_service_suppressed{service=\"web\"} 0");
	has_line("healthd_check_up{service=\"web\",check=\"probe\"} 0");
	has_line("healthd_bird_connected 0");
	has_line("healthd_reloads_total 3");
	has_line("healthd_reload_failures_total 1");
	has_line("# TYPE healthd_check_latency_seconds histogram");
	has_line("# TYPE healthd_service_transitions_total counter");
	/* The library may be built at another commit than this test. */
	const char *bi = strstr(page, "\nhealthd_build_info{version=\"");
	cr_assert_not_null(bi);
	const char *eol = strchr(bi + 1, '\n');
	cr_assert(eol && eol - bi > 4 && !strncmp(eol - 4, "\"} 1", 4));
}

Test(metrics, the_fleet_guard)
{
	struct svc_fleet f = { .known = true, .announcers = 0, .leaving = 1, .rank = 0,
			       .members = 4, .asof_ms = 2000, .counted_ms = 2000 };
	struct check_result down = { .reason = CHECK_STATUS };
	uint64_t wake;

	render();
	has_line("healthd_service_guarded{service=\"web\"} 0");
	has_line("healthd_service_fleet_known{service=\"web\"} 0");
	cr_assert_null(strstr(page, "\nhealthd_service_fleet_announcers{"), "no count while unknown");
	cr_assert_null(strstr(page, "\nhealthd_service_guarded_info{"));
	svc_adopt(&hs.svc, SVC_UP, "adopted", 0, 1);
	snprintf(down.detail, sizeof(down.detail), "connection refused");
	svc_fleet_set(&hs.svc, &f);
	for (int i = 0; i < 2; i++)
		svc_check_result(&hs.svc, 0, &down, 2000, 1);
	svc_evaluate(&hs.svc, 2000, 1, &wake);
	cr_assert(hs.svc.guarded);
	render();
	has_line("healthd_service_guarded{service=\"web\"} 1");
	has_line("healthd_service_guarded_info{service=\"web\",reason=\"GUARDED: last announcer "
		 "(check probe failed: connection refused)\"} 1");
	has_line("healthd_service_guard_holds_total{service=\"web\"} 1");
	has_line("healthd_service_fleet_known{service=\"web\"} 1");
	has_line("healthd_service_fleet_announcers{service=\"web\"} 0");
	has_line("healthd_service_fleet_leaving{service=\"web\"} 1");
	has_line("healthd_service_state{service=\"web\",state=\"degraded\"} 1");
}
