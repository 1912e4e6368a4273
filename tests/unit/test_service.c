/* The service state machine, driven by a fake clock: no loop, no sleeping. */
#include <criterion/criterion.h>
#include <errno.h>
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

/* ---- the fleet guard ---- */

static void guard_setup(void)
{
	setup();
	cfg.guard = (struct cfg_guard){ .min_announcers = 1, .step_ms = 2000, .interval_ms = 500 };
}

TestSuite(guard, .init = guard_setup, .fini = teardown, .timeout = 10);

/* BIRD's answer, asked for and counted at `now`. */
static void fleet(bool known, unsigned announcers, unsigned rank, unsigned members)
{
	struct svc_fleet f = { .known = known, .announcers = announcers, .rank = rank,
			       .members = members, .asof_ms = now, .counted_ms = now };

	if (!known)
		snprintf(f.why, sizeof(f.why), "no iBGP session established");
	svc_fleet_set(&s, &f);
}

static bool evaluate(uint64_t *wake)
{
	uint64_t w;

	return svc_evaluate(&s, now, 0, wake ? wake : &w);
}

/* Up on every check, then http falls (two failures, 1 s apart). */
static void up_then_http_falls(unsigned announcers)
{
	all(true, 2);
	cr_assert_eq(s.state, SVC_UP);
	feed(0, false);
	now += 1000;
	fleet(true, announcers, 0, 4);
	feed(0, false);
}

Test(guard, the_last_announcer_stays_announced_degraded_with_the_failing_check)
{
	struct cfg_community out[8];

	up_then_http_falls(0);
	cr_assert_eq(s.state, SVC_DEGRADED);
	cr_assert(s.guarded);
	cr_assert(strstr(s.reason, "GUARDED: last announcer (check http failed: status 503"),
		  "reason: %s", s.reason);
	cr_assert_eq(svc_communities(&s, s.state, out, 8), 2, "up and degraded communities");
	cr_assert_eq(s.damp.penalty, 0, "nothing was withdrawn: no penalty");
	cr_assert_eq(s.guard_holds, 1);
	/* further failures change nothing and log nothing */
	for (int i = 0; i < 5; i++) {
		now += 1000;
		fleet(true, 0, 0, 4);
		cr_assert_not(feed(0, false));
	}
	cr_assert_eq(s.guard_holds, 1);
}

Test(guard, withdraws_when_other_nodes_announce)
{
	up_then_http_falls(2);
	cr_assert_eq(s.state, SVC_WITHDRAWN);
	cr_assert_not(s.guarded);
	cr_assert(strstr(s.reason, "check http failed"), "reason: %s", s.reason);
}

Test(guard, released_when_another_announcer_appears)
{
	up_then_http_falls(0);
	cr_assert(s.guarded);
	now += 300;
	fleet(true, 1, 0, 4);
	cr_assert(evaluate(NULL));
	cr_assert_eq(s.state, SVC_WITHDRAWN);
	cr_assert_not(s.guarded);
	cr_assert(strstr(s.reason, "guard released: 1 other announcers (check http failed"),
		  "reason: %s", s.reason);
	cr_assert_eq(s.damp.penalty, 0, "a hand-over is no flap");
}

Test(guard, min_announcers_counts_the_others)
{
	cfg.guard.min_announcers = 2;
	up_then_http_falls(1);
	cr_assert_eq(s.state, SVC_DEGRADED);
	cr_assert(strstr(s.reason, "GUARDED: last announcer (1 other announcers, 2 wanted)"),
		  "reason: %s", s.reason);
	now += 300;
	fleet(true, 2, 0, 4);
	cr_assert(evaluate(NULL));
	cr_assert_eq(s.state, SVC_WITHDRAWN);
}

Test(guard, off_with_min_announcers_zero)
{
	cfg.guard.min_announcers = 0;
	up_then_http_falls(0);
	cr_assert_eq(s.state, SVC_WITHDRAWN);
}

Test(guard, an_unknown_count_never_holds)
{
	all(true, 2);
	feed(0, false);
	now += 1000;
	fleet(false, 0, 0, 0);
	feed(0, false);
	cr_assert_eq(s.state, SVC_WITHDRAWN, "a lone node withdraws as without the guard");
	/* and never re-announces */
	for (int i = 0; i < 20; i++) {
		now += 1000;
		fleet(false, 0, 0, 0);
		cr_assert_not(feed(0, false));
	}
	cr_assert_eq(s.state, SVC_WITHDRAWN);
}

Test(guard, a_count_turning_unknown_releases_the_hold)
{
	up_then_http_falls(0);
	cr_assert(s.guarded);
	now += 2000;
	fleet(false, 0, 0, 0);
	cr_assert(evaluate(NULL));
	cr_assert_eq(s.state, SVC_WITHDRAWN);
	cr_assert(strstr(s.reason, "guard released: fleet count unknown (no iBGP session established)"),
		  "reason: %s", s.reason);
}

Test(guard, a_withdrawal_waits_for_a_count_asked_after_the_check_fell)
{
	uint64_t wake, fell;

	all(true, 2);
	fleet(true, 0, 0, 4);   /* asked before the failure */
	now += 100;
	feed(0, false);
	now += 1000;
	fell = now;
	cr_assert_not(feed(0, false), "no decision on an old count");
	cr_assert_eq(s.state, SVC_UP);
	cr_assert(s.fleet_wanted);
	cr_assert_not(evaluate(&wake));
	cr_assert_eq(wake, fell + cfg.guard.interval_ms, "waits one interval at most");
	now += 5;
	fleet(true, 0, 0, 4);
	cr_assert(evaluate(NULL));
	cr_assert(s.guarded);
	cr_assert_not(s.fleet_wanted);
}

Test(guard, without_a_fresh_count_the_last_one_decides_after_an_interval)
{
	all(true, 2);
	fleet(true, 3, 0, 4);
	now += 100;
	feed(0, false);
	now += 1000;
	cr_assert_not(feed(0, false));
	now += cfg.guard.interval_ms;
	cr_assert(evaluate(NULL));
	cr_assert_eq(s.state, SVC_WITHDRAWN);
}

/* Failed and withdrawn while others announced; then none is left. */
static uint64_t withdrawn_then_fleet_empty(unsigned rank)
{
	up_then_http_falls(3);
	cr_assert_eq(s.state, SVC_WITHDRAWN);
	now += 100;
	fleet(true, 0, rank, 4);
	cr_assert_not(evaluate(NULL), "the first answer showing none is not enough");
	return now;
}

Test(guard, rank_zero_re_announces_once_two_answers_in_a_row_show_nobody)
{
	uint64_t zero = withdrawn_then_fleet_empty(0);

	now = zero + cfg.guard.interval_ms - 1;
	fleet(true, 0, 0, 4);
	cr_assert_not(evaluate(NULL));
	now = zero + cfg.guard.interval_ms;
	fleet(true, 0, 0, 4);
	cr_assert(evaluate(NULL));
	cr_assert_eq(s.state, SVC_DEGRADED);
	cr_assert(s.guarded);
	cr_assert(strstr(s.reason, "GUARDED: last announcer: re-announced, no other announcer for 500 ms, rank 0 of 4"),
		  "reason: %s", s.reason);
}

Test(guard, rank_two_re_announces_after_two_steps)
{
	uint64_t zero = withdrawn_then_fleet_empty(2);

	for (now = zero + 500; now < zero + 2 * cfg.guard.step_ms; now += 500) {
		fleet(true, 0, 2, 4);
		cr_assert_not(evaluate(NULL), "at +%llu ms", (unsigned long long)(now - zero));
	}
	now = zero + 2 * cfg.guard.step_ms;
	fleet(true, 0, 2, 4);
	cr_assert(evaluate(NULL));
	cr_assert(s.guarded);
	cr_assert_eq(s.state, SVC_DEGRADED);
}

Test(guard, stays_withdrawn_when_another_node_comes_back_first)
{
	uint64_t zero = withdrawn_then_fleet_empty(1);

	now = zero + 1000;
	fleet(true, 1, 1, 4);   /* rank 0 re-announced */
	cr_assert_not(evaluate(NULL));
	cr_assert_eq(s.zero_since_ms, 0);
	now = zero + 1500;
	fleet(true, 0, 1, 4);   /* ... and left again: the wait starts over */
	now = zero + 3000;
	fleet(true, 0, 1, 4);
	cr_assert_not(evaluate(NULL), "1.5 s of nobody is less than a step");
	now = zero + 3500;
	fleet(true, 0, 1, 4);
	cr_assert(evaluate(NULL));
	cr_assert(s.guarded);
}

Test(guard, healthy_again_ends_the_guard)
{
	up_then_http_falls(0);
	cr_assert(s.guarded);
	now += 1000;
	feed(0, true);
	cr_assert(feed(0, true));
	cr_assert_eq(s.state, SVC_UP);
	cr_assert_not(s.guarded);
	cr_assert_str_eq(s.reason, "all checks up");
}

Test(guard, a_drain_is_never_guarded)
{
	char why[256];

	all(true, 2);
	fleet(true, 0, 0, 4);
	cr_assert_eq(svc_guard_drain_check(&s, why, sizeof(why)), -EBUSY);
	cr_assert_str_eq(why, "draining web would leave 0 other announcers in the fleet "
			      "(guard.min_announcers 1); --force drains it anyway");
	svc_drain(&s, true, 0, now);   /* forced */
	cr_assert_eq(svc_guard_drain_check(&s, why, sizeof(why)), 0, "already draining");
	cr_assert(evaluate(NULL));
	cr_assert_eq(s.state, SVC_DRAINING);
	feed(0, false);
	now += 1000;
	fleet(true, 0, 0, 4);
	feed(0, false);
	cr_assert_eq(s.state, SVC_WITHDRAWN, "a failure during a drain withdraws");
	now += 60000;
	fleet(true, 0, 0, 4);
	now += 1000;
	fleet(true, 0, 0, 4);
	cr_assert_not(evaluate(NULL), "no guarded re-announce while drained");
}

Test(guard, a_drain_is_allowed_with_enough_others_or_an_unknown_count)
{
	char why[256];

	all(true, 2);
	fleet(true, 1, 0, 4);
	cr_assert_eq(svc_guard_drain_check(&s, why, sizeof(why)), 0);
	fleet(false, 0, 0, 0);
	cr_assert_eq(svc_guard_drain_check(&s, why, sizeof(why)), 0);
	cfg.guard.min_announcers = 0;
	fleet(true, 0, 0, 4);
	cr_assert_eq(svc_guard_drain_check(&s, why, sizeof(why)), 0);
}
