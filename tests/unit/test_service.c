/* The service state machine, driven by a fake clock: no loop, no sleeping. */
#include <criterion/criterion.h>
#include <string.h>

#include "healthd/healthd.h"

static struct cfg_check checks[3];
static struct cfg_community comm_up = { .v = { 64500, 100 } };
static struct cfg_community comm_deg = { .v = { 64500, 666 } };
static struct cfg_community comm_drain = { .v = { 65535, 0 } };
static struct cfg_service cfg;
static struct svc s;
static uint64_t now;

static void setup(void)
{
	memset(checks, 0, sizeof(checks));
	memset(&cfg, 0, sizeof(cfg));
	const char *names[] = { "http", "https", "mesh" };
	for (int i = 0; i < 3; i++) {
		checks[i].name = (char *)names[i];
		checks[i].type = (char *)"http";
		checks[i].rise = 2;
		checks[i].fall = 2;
		checks[i].interval_ms = 1000;
		checks[i].on_fail = CFG_ON_FAIL_WITHDRAW;
	}
	checks[2].on_fail = CFG_ON_FAIL_DEGRADE;
	cfg.name = (char *)"web";
	cfg.checks = checks;
	cfg.n_checks = 3;
	cfg.drain_ms = 30000;
	cfg.hold_down_ms = 5000;
	cfg.dampening = (struct cfg_dampening){ .half_life_ms = 60000, .suppress = 2500,
						.reuse = 1000, .penalty = 1000,
						.max_suppress_ms = 300000 };
	cfg.communities[CFG_COMM_UP] = (struct cfg_communities){ &comm_up, 1 };
	cfg.communities[CFG_COMM_DEGRADED] = (struct cfg_communities){ &comm_deg, 1 };
	cfg.communities[CFG_COMM_DRAINING] = (struct cfg_communities){ &comm_drain, 1 };
	now = 1000000;
	cr_assert_eq(svc_init(&s, &cfg, now), 0);
}

static void teardown(void)
{
	svc_free(&s);
}

TestSuite(service, .init = setup, .fini = teardown, .timeout = 10);

static bool feed(size_t idx, bool ok)
{
	struct check_result r = { .reason = ok ? CHECK_OK : CHECK_STATUS };
	uint64_t wake;

	snprintf(r.detail, sizeof(r.detail), ok ? "status 200" : "status 503 (expected 200)");
	svc_check_result(&s, idx, &r, now, 0);
	return svc_evaluate(&s, now, 0, &wake);
}

static void all(bool ok, int times)
{
	for (int t = 0; t < times; t++) {
		for (size_t i = 0; i < cfg.n_checks; i++)
			feed(i, ok);
		now += 1000;
	}
}

Test(service, no_verdict_until_every_withdraw_check_has_risen_or_fallen)
{
	svc_adopt(&s, SVC_UP, "adopted from BIRD (announced)", now, 0);
	cr_assert_not(feed(0, true));
	cr_assert_not(feed(1, true));
	cr_assert_eq(s.state, SVC_UP, "one success each is not a verdict");
	cr_assert_not(s.decided);
	cr_assert_not(feed(0, false), "one failure is below fall=2");
	cr_assert_eq(s.state, SVC_UP);
}

Test(service, rise_announces_and_fall_withdraws_with_the_check_named)
{
	all(true, 1);
	cr_assert_eq(s.state, SVC_WITHDRAWN);
	all(true, 1);
	cr_assert_eq(s.state, SVC_UP);
	cr_assert_not(feed(1, false));
	cr_assert(feed(1, false), "second failure reaches fall=2");
	cr_assert_eq(s.state, SVC_WITHDRAWN);
	cr_assert(strstr(s.reason, "check https failed: status 503"), "reason: %s", s.reason);
	cr_assert_eq(s.history_n, 2);
	cr_assert_eq(s.history[1].to, SVC_WITHDRAWN);
}

Test(service, a_failed_withdraw_check_beats_unknown_ones)
{
	svc_adopt(&s, SVC_UP, "adopted", now, 0);
	feed(0, false);
	cr_assert(feed(0, false));
	cr_assert_eq(s.state, SVC_WITHDRAWN);
	cr_assert(s.decided);
}

Test(service, degrade_check_down_announces_degraded_with_both_community_sets)
{
	struct cfg_community out[8];

	all(true, 2);
	cr_assert_eq(s.state, SVC_UP);
	cr_assert_eq(svc_communities(&s, s.state, out, 8), 1);
	feed(2, false);
	cr_assert(feed(2, false));
	cr_assert_eq(s.state, SVC_DEGRADED);
	cr_assert_eq(svc_communities(&s, s.state, out, 8), 2);
	cr_assert_eq(out[1].v[1], 666);
	feed(2, true);
	cr_assert(feed(2, true));
	cr_assert_eq(s.state, SVC_UP);
}

Test(service, hold_down_keeps_a_recovered_service_withdrawn)
{
	uint64_t wake;

	all(true, 2);
	feed(0, false);
	feed(0, false);
	cr_assert_eq(s.state, SVC_WITHDRAWN);
	uint64_t withdrawn_at = now;
	now += 100;
	feed(0, true);
	feed(0, true);
	cr_assert_eq(s.state, SVC_WITHDRAWN, "hold-down of 5 s not over");
	svc_evaluate(&s, now, 0, &wake);
	cr_assert_eq(wake, withdrawn_at + 5000);
	now = wake;
	cr_assert(svc_evaluate(&s, now, 0, &wake));
	cr_assert_eq(s.state, SVC_UP);
}

Test(service, drain_announces_draining_then_withdraws_then_undrain_returns)
{
	uint64_t wake;
	struct cfg_community out[8];

	all(true, 2);
	svc_drain(&s, true, 0, now);
	cr_assert(svc_evaluate(&s, now, 0, &wake));
	cr_assert_eq(s.state, SVC_DRAINING);
	cr_assert_eq(wake, now + 30000);
	cr_assert_eq(svc_communities(&s, s.state, out, 8), 2);
	cr_assert_eq(out[1].v[0], 65535);
	now += 29999;
	cr_assert_not(svc_evaluate(&s, now, 0, &wake));
	now += 1;
	cr_assert(svc_evaluate(&s, now, 0, &wake));
	cr_assert_eq(s.state, SVC_WITHDRAWN);
	cr_assert(strstr(s.reason, "drain"), "reason: %s", s.reason);
	svc_drain(&s, false, 0, now);
	now += 5000;
	cr_assert(svc_evaluate(&s, now, 0, &wake));
	cr_assert_eq(s.state, SVC_UP);
	cr_assert_eq(s.damp.penalty, 0, "a planned drain is not penalised");
}

Test(service, a_failure_while_draining_withdraws_at_once)
{
	uint64_t wake;

	all(true, 2);
	svc_drain(&s, true, 0, now);
	svc_evaluate(&s, now, 0, &wake);
	feed(0, false);
	cr_assert(feed(0, false));
	cr_assert_eq(s.state, SVC_WITHDRAWN);
}

Test(service, drain_for_a_duration_ends_by_itself)
{
	uint64_t wake;

	all(true, 2);
	svc_drain(&s, true, 10000, now);
	svc_evaluate(&s, now, 0, &wake);
	cr_assert_eq(s.state, SVC_DRAINING);
	cr_assert_eq(wake, now + 10000);
	now += 10000;
	cr_assert(svc_evaluate(&s, now, 0, &wake));
	cr_assert_eq(s.state, SVC_UP);
}

Test(service, flapping_is_suppressed_until_the_penalty_decays)
{
	uint64_t wake;
	int announces = 0;

	all(true, 2);
	for (int i = 0; i < 10; i++) {
		feed(0, false);
		feed(0, false);            /* withdrawn */
		now += 300;
		feed(0, true);
		feed(0, true);             /* recovered, held down */
		now += cfg.hold_down_ms;
		svc_evaluate(&s, now, 0, &wake);
		if (s.state == SVC_UP)
			announces++;
	}
	cr_assert(s.damp.suppressed, "penalty %.0f", svc_penalty(&s, now));
	cr_assert_eq(announces, 2, "re-announced %d times in 10 flaps", announces);
	cr_assert_eq(s.state, SVC_WITHDRAWN);
	cr_assert(strstr(s.reason, "suppressed"), "reason: %s", s.reason);
	uint64_t reuse = svc_reuse_ms(&s, now);
	cr_assert_gt(reuse, now);
	cr_assert_eq(wake, reuse);
	now = reuse - 1;
	cr_assert_not(svc_evaluate(&s, now, 0, &wake));
	now = reuse + 1;
	cr_assert(svc_evaluate(&s, now, 0, &wake));
	cr_assert_eq(s.state, SVC_UP);
}

Test(service, adopt_is_ignored_after_a_verdict)
{
	all(true, 2);
	cr_assert_eq(s.state, SVC_UP);
	svc_adopt(&s, SVC_WITHDRAWN, "late", now, 0);
	cr_assert_eq(s.state, SVC_UP);
}

Test(service, reload_keeps_counters_of_unchanged_checks_only)
{
	struct cfg_check c2[3];
	struct cfg_service cfg2 = cfg;
	struct svc s2;

	all(true, 2);
	memcpy(c2, checks, sizeof(c2));
	c2[1].fall = 5;           /* changed: starts afresh */
	cfg2.checks = c2;
	cr_assert_eq(svc_init(&s2, &cfg2, now), 0);
	svc_migrate(&s2, &s);
	cr_assert_eq(s2.state, SVC_UP);
	cr_assert_eq(s2.checks[0].state, CHK_UP);
	cr_assert_eq(s2.checks[0].successes, 2);
	cr_assert_eq(s2.checks[0].cfg, &c2[0], "the new config is referenced");
	cr_assert_eq(s2.checks[1].state, CHK_UNKNOWN);
	svc_free(&s2);
}

Test(service, max_suppress_caps_how_long_a_suppression_lasts)
{
	uint64_t wake;

	all(true, 2);
	for (int i = 0; i < 50; i++) {
		feed(0, true);
		feed(0, true);
		now += cfg.hold_down_ms;
		svc_evaluate(&s, now, 0, &wake);
		s.state = SVC_UP;          /* force a withdrawal each round */
		feed(0, false);
		feed(0, false);
	}
	cr_assert(s.damp.suppressed);
	cr_assert_leq(svc_reuse_ms(&s, now), now + cfg.dampening.max_suppress_ms + 1,
		      "suppressed for %llu ms", (unsigned long long)(svc_reuse_ms(&s, now) - now));
}

/* ---- a drain takes effect while checks are still unknown ---- */

static bool eval(void)
{
	uint64_t wake;

	return svc_evaluate(&s, now, 0, &wake);
}

Test(service, drain_while_checks_are_unknown_drains_an_announced_service)
{
	uint64_t wake;

	svc_adopt(&s, SVC_UP, "adopted from BIRD (announced)", now, 0);
	svc_drain(&s, true, 0, now);
	cr_assert(svc_evaluate(&s, now, 0, &wake), "a drain is not a verdict on checks");
	cr_assert_eq(s.state, SVC_DRAINING);
	cr_assert_eq(wake, now + cfg.drain_ms);
	now += cfg.drain_ms - 1;
	cr_assert_not(eval());
	now += 1;
	cr_assert(eval());
	cr_assert_eq(s.state, SVC_WITHDRAWN);
	cr_assert(strstr(s.reason, "drain"), "reason: %s", s.reason);
	/* checks rise later: still drained, still withdrawn */
	all(true, 3);
	cr_assert_eq(s.state, SVC_WITHDRAWN);
	svc_drain(&s, false, 0, now);
	now += cfg.hold_down_ms;
	cr_assert(eval());
	cr_assert_eq(s.state, SVC_UP);
}

Test(service, maintenance_file_while_checks_are_unknown_drains)
{
	svc_adopt(&s, SVC_DEGRADED, "adopted from the include file", now, 0);
	s.maintenance = true;
	cr_assert(eval());
	cr_assert_eq(s.state, SVC_DRAINING);
	now += cfg.drain_ms;
	cr_assert(eval());
	cr_assert_eq(s.state, SVC_WITHDRAWN);
}

Test(service, a_drain_keeps_a_withdrawn_service_withdrawn_when_checks_rise)
{
	svc_adopt(&s, SVC_WITHDRAWN, "adopted from BIRD (disabled)", now, 0);
	svc_drain(&s, true, 0, now);
	cr_assert_not(eval());
	cr_assert_eq(s.state, SVC_WITHDRAWN);
	all(true, 3);
	now += cfg.hold_down_ms;
	cr_assert_not(eval());
	cr_assert_eq(s.state, SVC_WITHDRAWN, "never announced while drained");
	svc_drain(&s, false, 0, now);
	cr_assert(eval());
	cr_assert_eq(s.state, SVC_UP);
}

Test(service, an_adopted_drain_gets_its_full_drain_time)
{
	svc_adopt(&s, SVC_DRAINING, "adopted from the include file", now, 0);
	svc_drain(&s, true, 0, now);
	cr_assert_not(eval());
	cr_assert_eq(s.state, SVC_DRAINING, "not withdrawn at once after a restart");
	now += cfg.drain_ms;
	cr_assert(eval());
	cr_assert_eq(s.state, SVC_WITHDRAWN);
}

Test(service, no_drain_and_unknown_checks_keep_the_adopted_state)
{
	svc_adopt(&s, SVC_UP, "adopted from BIRD (announced)", now, 0);
	cr_assert_not(eval());
	cr_assert_eq(s.state, SVC_UP);
	cr_assert_not(s.decided);
}

/* ---- operator intent restored at start (wall-clock deadlines) ---- */

Test(service, intent_with_a_passed_deadline_is_undrained)
{
	struct svc_intent in = { .drained = true, .since_ms = 1000, .until_ms = 5000, .uid = 0 };

	snprintf(in.reason, sizeof(in.reason), "kernel upgrade");
	cr_assert_not(svc_intent_set(&s, &in, now, 5000));
	cr_assert_not(s.drain_requested);
	cr_assert_not(s.intent.drained);
}

Test(service, intent_with_time_left_drains_for_what_is_left)
{
	struct svc_intent in = { .drained = true, .since_ms = 1000, .until_ms = 61000, .uid = 1000 };
	uint64_t wake;

	svc_adopt(&s, SVC_UP, "adopted from BIRD (announced)", now, 0);
	cr_assert(svc_intent_set(&s, &in, now, 41000));
	cr_assert_eq(s.drain_until_ms, now + 20000, "20 s were left");
	cr_assert(svc_evaluate(&s, now, 0, &wake));
	cr_assert_eq(s.state, SVC_DRAINING);
	now += 20000;
	all(true, 2);
	cr_assert_not(s.drain_requested, "the deadline passed");
	cr_assert_not(s.intent.drained);
	cr_assert_eq(s.state, SVC_UP);
}

Test(service, intent_until_undrain_stays_and_migrates)
{
	struct svc_intent in = { .drained = true, .since_ms = 1000, .uid = -1 };
	struct svc s2;

	cr_assert(svc_intent_set(&s, &in, now, 1 << 30));
	cr_assert_eq(s.drain_until_ms, 0);
	cr_assert_eq(svc_init(&s2, &cfg, now), 0);
	svc_migrate(&s2, &s);
	cr_assert(s2.intent.drained);
	cr_assert(s2.drain_requested);
	svc_free(&s2);
	in.drained = false;
	cr_assert_not(svc_intent_set(&s, &in, now, 1 << 30));
	cr_assert_not(s.drain_requested);
}
