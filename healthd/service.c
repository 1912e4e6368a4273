/*
 * The service state machine: rise/fall per check, the verdict per service,
 * hold-down, drain and dampening. Pure logic: time is passed in, nothing
 * here touches the loop, BIRD or a socket (the diagram is in healthd.h).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "healthd/healthd.h"

static const char *const svc_state_names[SVC_STATES] = {
	[SVC_WITHDRAWN] = "withdrawn",
	[SVC_UP] = "up",
	[SVC_DEGRADED] = "degraded",
	[SVC_DRAINING] = "draining",
};

const uint64_t svc_latency_bounds_us[SVC_LATENCY_BUCKETS] = {
	500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000,
	1000000, 2500000, 5000000,
};

const char *svc_state_str(enum svc_state s)
{
	return s < SVC_STATES ? svc_state_names[s] : "invalid";
}

const char *chk_state_str(enum chk_state s)
{
	switch (s) {
	case CHK_UNKNOWN: return "unknown";
	case CHK_UP: return "up";
	case CHK_DOWN: return "down";
	}
	return "invalid";
}

int svc_init(struct svc *s, const struct cfg_service *cfg, uint64_t now_ms)
{
	memset(s, 0, sizeof(*s));
	s->cfg = cfg;
	s->state = SVC_WITHDRAWN;
	s->since_ms = now_ms;
	s->since_wall = time(NULL);
	snprintf(s->reason, sizeof(s->reason), "starting");
	s->checks = calloc(cfg->n_checks ? cfg->n_checks : 1, sizeof(*s->checks));
	if (!s->checks)
		return -1;
	s->n_checks = cfg->n_checks;
	for (size_t i = 0; i < cfg->n_checks; i++) {
		s->checks[i].cfg = &cfg->checks[i];
		s->checks[i].since_ms = now_ms;
		s->checks[i].since_wall = s->since_wall;
	}
	for (size_t i = 0; i < cfg->n_checks; i++)
		s->count[cfg->checks[i].on_fail][CHK_UNKNOWN]++;
	/* Nothing was withdrawn by us yet: no hold-down applies at start. */
	s->withdrawn_ms = 0;
	return 0;
}

void svc_free(struct svc *s)
{
	free(s->checks);
	s->checks = NULL;
	s->n_checks = 0;
}

static void record(struct svc *s, enum svc_state to, time_t wall,
		   const char *reason)
{
	struct svc_event *e = &s->history[s->history_n % SVC_HISTORY];

	e->wall = wall;
	e->from = s->state;
	e->to = to;
	snprintf(e->reason, sizeof(e->reason), "%.159s", reason);
	s->history_n++;
}

void svc_adopt(struct svc *s, enum svc_state st, const char *why,
	       uint64_t now_ms, time_t wall)
{
	if (s->decided)
		return;
	if (st != s->state) {
		record(s, st, wall, why);
		s->since_ms = now_ms;
		s->since_wall = wall;
		/* loop time does not survive a restart: the drain time starts again */
		if (st == SVC_DRAINING)
			s->draining_since_ms = now_ms;
	}
	s->state = st;
	snprintf(s->reason, sizeof(s->reason), "%s", why);
}

void svc_migrate(struct svc *to, const struct svc *from)
{
	to->state = from->state;
	to->since_ms = from->since_ms;
	to->since_wall = from->since_wall;
	to->decided = from->decided;
	memcpy(to->reason, from->reason, sizeof(to->reason));
	to->drain_requested = from->drain_requested;
	to->drain_until_ms = from->drain_until_ms;
	to->intent = from->intent;
	to->maintenance = from->maintenance;
	to->draining_since_ms = from->draining_since_ms;
	to->withdrawn_ms = from->withdrawn_ms;
	to->damp = from->damp;
	to->fleet = from->fleet;
	to->zero_since_ms = from->zero_since_ms;
	to->guarded = from->guarded;
	to->guard_holds = from->guard_holds;
	to->transitions = from->transitions;
	memcpy(to->history, from->history, sizeof(to->history));
	to->history_n = from->history_n;
	for (size_t i = 0; i < to->n_checks; i++) {
		for (size_t j = 0; j < from->n_checks; j++) {
			if (!cfg_check_equal(to->checks[i].cfg, from->checks[j].cfg))
				continue;
			const struct cfg_check *keep = to->checks[i].cfg;
			to->checks[i] = from->checks[j];
			to->checks[i].cfg = keep;
			break;
		}
	}
	memset(to->count, 0, sizeof(to->count));
	for (size_t i = 0; i < to->n_checks; i++)
		to->count[to->checks[i].cfg->on_fail][to->checks[i].state]++;
}

bool svc_check_result(struct svc *s, size_t idx, const struct check_result *r,
		      uint64_t now_ms, time_t wall)
{
	struct svc_check *c = &s->checks[idx];
	enum chk_state old = c->state;

	c->last = *r;
	c->have_result = true;
	c->last_ms = now_ms;
	c->last_wall = wall;
	c->probes++;
	size_t b = 0;

	while (b < SVC_LATENCY_BUCKETS && r->latency_us > svc_latency_bounds_us[b])
		b++;
	c->latency_hist[b]++;
	c->latency_sum_us += r->latency_us;
	if (r->reason == CHECK_OK) {
		c->successes++;
		c->failures = 0;
		if (c->state != CHK_UP && c->successes >= c->cfg->rise)
			c->state = CHK_UP;
	} else {
		c->probes_failed++;
		c->failures++;
		c->successes = 0;
		if (c->state != CHK_DOWN && c->failures >= c->cfg->fall)
			c->state = CHK_DOWN;
	}
	if (c->state == old)
		return false;
	s->count[c->cfg->on_fail][old]--;
	s->count[c->cfg->on_fail][c->state]++;
	c->since_ms = now_ms;
	c->since_wall = wall;
	return true;
}

/* ---- dampening ---- */

double svc_penalty(const struct svc *s, uint64_t now_ms)
{
	if (s->damp.penalty <= 0 || now_ms <= s->damp.penalty_ms)
		return s->damp.penalty;
	double dt = (double)(now_ms - s->damp.penalty_ms);

	return s->damp.penalty * exp2(-dt / (double)s->cfg->dampening.half_life_ms);
}

/* The ceiling keeps a suppression from outlasting max_suppress. */
static double damp_ceiling(const struct svc *s)
{
	return s->cfg->dampening.reuse * exp2((double)(double)s->cfg->dampening.max_suppress_ms / (double)s->cfg->dampening.half_life_ms);
}

static void damp_penalise(struct svc *s, uint64_t now_ms)
{
	double p = svc_penalty(s, now_ms) + s->cfg->dampening.penalty;

	if (p > damp_ceiling(s))
		p = damp_ceiling(s);
	s->damp.penalty = p;
	s->damp.penalty_ms = now_ms;
	if (!s->damp.suppressed && p >= s->cfg->dampening.suppress) {
		s->damp.suppressed = true;
		s->damp.suppressed_since_ms = now_ms;
	}
}

uint64_t svc_reuse_ms(const struct svc *s, uint64_t now_ms)
{
	if (!s->damp.suppressed)
		return 0;
	double p = svc_penalty(s, now_ms);

	if (p <= s->cfg->dampening.reuse)
		return now_ms;
	/* p * 2^(-t/h) = reuse  =>  t = h * log2(p / reuse) */
	double t = (double)s->cfg->dampening.half_life_ms * log2(p / s->cfg->dampening.reuse);

	return now_ms + (uint64_t)ceil(t);
}

static void damp_update(struct svc *s, uint64_t now_ms)
{
	if (s->damp.suppressed && svc_penalty(s, now_ms) <= s->cfg->dampening.reuse)
		s->damp.suppressed = false;
}

/* ---- verdict ---- */

struct verdict {
	const struct svc_check *down;      /* a withdraw check that is down */
	bool unknown;                      /* a withdraw check without a state yet */
	const struct svc_check *degraded;  /* a degrade check that is down */
};

/* The first check of this kind in this state: only looked for when there
 * is one, which is rare. */
static const struct svc_check *first(const struct svc *s, enum cfg_on_fail f,
				     enum chk_state st)
{
	if (!s->count[f][st])
		return NULL;
	for (size_t i = 0; i < s->n_checks; i++)
		if (s->checks[i].cfg->on_fail == f && s->checks[i].state == st)
			return &s->checks[i];
	return NULL;
}

static struct verdict verdict_of(const struct svc *s)
{
	struct verdict v = { 0 };

	v.down = first(s, CFG_ON_FAIL_WITHDRAW, CHK_DOWN);
	v.unknown = s->count[CFG_ON_FAIL_WITHDRAW][CHK_UNKNOWN] > 0;
	if (!v.down && !v.unknown)
		v.degraded = first(s, CFG_ON_FAIL_DEGRADE, CHK_DOWN);
	return v;
}

static void describe_check(char *buf, size_t len, const char *what,
			   const struct svc_check *c)
{
	snprintf(buf, len, "check %s %s: %s", c->cfg->name, what,
		 c->have_result ? c->last.detail : "no result");
}

static bool transition(struct svc *s, enum svc_state to, const char *reason,
		       uint64_t now_ms, time_t wall)
{
	if (to == s->state) {
		return false;
	}
	record(s, to, wall, reason);
	s->guarded = false;        /* the guard's own moves set it again */
	if (to == SVC_WITHDRAWN)
		s->withdrawn_ms = now_ms;
	if (to == SVC_DRAINING)
		s->draining_since_ms = now_ms;
	s->state = to;
	s->since_ms = now_ms;
	s->since_wall = wall;
	s->transitions++;
	snprintf(s->reason, sizeof(s->reason), "%s", reason);
	return true;
}

static bool draining_wanted(struct svc *s, uint64_t now_ms)
{
	if (s->drain_requested && s->drain_until_ms && now_ms >= s->drain_until_ms) {
		s->drain_requested = false;
		s->drain_until_ms = 0;
		s->intent.drained = false;
	}
	return s->drain_requested || s->maintenance;
}

static void wake_at(uint64_t *wake, uint64_t at)
{
	if (at && (*wake == 0 || at < *wake))
		*wake = at;
}

/* Drain wanted: an announced service drains, then is withdrawn after
 * `drain`; a withdrawn one stays withdrawn. */
static bool drain_step(struct svc *s, uint64_t now_ms, time_t wall, uint64_t *wake_ms)
{
	const char *cause = s->drain_requested ? "drain requested" : "maintenance file present";
	uint64_t end = s->draining_since_ms + s->cfg->drain_ms;
	char why[200];

	switch (s->state) {
	case SVC_UP:
	case SVC_DEGRADED:
		transition(s, SVC_DRAINING, cause, now_ms, wall);
		wake_at(wake_ms, now_ms + s->cfg->drain_ms);
		return true;
	case SVC_DRAINING:
		if (now_ms >= end) {
			snprintf(why, sizeof(why), "drained for %llu ms (%s)",
				 (unsigned long long)s->cfg->drain_ms, cause);
			return transition(s, SVC_WITHDRAWN, why, now_ms, wall);
		}
		wake_at(wake_ms, end);
		return false;
	default:
		return false;
	}
}

/* ---- the fleet guard ---- */

void svc_fleet_set(struct svc *s, const struct svc_fleet *f)
{
	bool zero = f->known && f->announcers == 0;

	if (!zero)
		s->zero_since_ms = 0;
	else if (!s->zero_since_ms || f->counted_ms < s->zero_since_ms)
		s->zero_since_ms = f->counted_ms ? f->counted_ms : 1;
	s->fleet = *f;
}

static bool guard_sees(const struct svc *s)
{
	return s->cfg->guard.min_announcers > 0 && s->fleet.known;
}

static bool guard_short(const struct svc *s)
{
	return guard_sees(s) && s->fleet.announcers < s->cfg->guard.min_announcers;
}

/* A withdrawal is decided on a count asked for after the check fell; at
 * most one guard.interval is waited for it. Only while the last count was
 * known: a lone node withdraws at once, as without the guard. */
static bool guard_wants_fresh(struct svc *s, const struct svc_check *down,
			      uint64_t now_ms, uint64_t *wake_ms)
{
	uint64_t give_up = down->since_ms + s->cfg->guard.interval_ms;

	if (!guard_sees(s) || s->fleet.asof_ms >= down->since_ms || now_ms >= give_up)
		return false;
	s->fleet_wanted = true;
	wake_at(wake_ms, give_up);
	return true;
}

static void guard_words(const struct svc *s, char *buf, size_t len)
{
	if (s->cfg->guard.min_announcers > 1)
		snprintf(buf, len, "GUARDED: last announcer (%u other announcers, %u wanted)",
			 s->fleet.announcers, s->cfg->guard.min_announcers);
	else
		snprintf(buf, len, "GUARDED: last announcer");
}

/* Keep the failed service announced with its degraded communities. */
static bool guard_hold(struct svc *s, const char *check, uint64_t now_ms, time_t wall)
{
	char words[96], why[400];
	bool was = s->guarded;

	if (was && s->state == SVC_DEGRADED)
		return false;
	guard_words(s, words, sizeof(words));
	snprintf(why, sizeof(why), "%s (%.100s)", words, check);
	if (s->state != SVC_DEGRADED) {
		transition(s, SVC_DEGRADED, why, now_ms, wall);
	} else {
		record(s, SVC_DEGRADED, wall, why);
		snprintf(s->reason, sizeof(s->reason), "%.199s", why);
	}
	s->guarded = true;
	s->guard_holds++;
	return true;
}

/* Withdrawn and failed, with no other announcer seen for rank steps (at
 * least one interval: two answers in a row): announce again, guarded. */
static bool guard_reannounce(struct svc *s, const char *check, uint64_t now_ms, time_t wall)
{
	const struct cfg_guard *g = &s->cfg->guard;
	uint64_t delay = (uint64_t)s->fleet.rank * g->step_ms;
	char words[96], why[400];

	if (!guard_sees(s) || s->fleet.announcers || !s->zero_since_ms)
		return false;
	if (delay < g->interval_ms)
		delay = g->interval_ms;
	if (s->fleet.counted_ms < s->zero_since_ms + delay)
		return false;
	guard_words(s, words, sizeof(words));
	snprintf(why, sizeof(why), "%s: re-announced, no other announcer for %llu ms, rank %u of %u (%.60s)",
		 words, (unsigned long long)(s->fleet.counted_ms - s->zero_since_ms),
		 s->fleet.rank, s->fleet.members, check);
	transition(s, SVC_DEGRADED, why, now_ms, wall);
	s->guarded = true;
	s->guard_holds++;
	return true;
}

/* The guard lets go: enough others announce, or the count is unknown. */
static bool guard_release(struct svc *s, const char *check, uint64_t now_ms, time_t wall)
{
	char why[400];

	if (s->fleet.known)
		snprintf(why, sizeof(why), "guard released: %u other announcers (%.150s)",
			 s->fleet.announcers, check);
	else
		snprintf(why, sizeof(why), "guard released: fleet count unknown (%.80s) (%.80s)",
			 s->fleet.why, check);
	/* a hand-over, not a flap: no dampening penalty */
	return transition(s, SVC_WITHDRAWN, why, now_ms, wall);
}

int svc_guard_drain_check(const struct svc *s, char *why, size_t len)
{
	if (!guard_short(s) || s->state == SVC_WITHDRAWN || s->state == SVC_DRAINING ||
	    s->drain_requested)
		return 0;
	snprintf(why, len, "draining %s would leave %u other announcers in the fleet "
		 "(guard.min_announcers %u); --force drains it anyway",
		 s->cfg->name, s->fleet.announcers, s->cfg->guard.min_announcers);
	return -EBUSY;
}

bool svc_evaluate(struct svc *s, uint64_t now_ms, time_t wall, uint64_t *wake_ms)
{
	struct verdict v = verdict_of(s);
	char why[200];

	*wake_ms = 0;
	s->fleet_wanted = false;
	damp_update(s, now_ms);
	if (s->drain_requested && s->drain_until_ms)
		wake_at(wake_ms, s->drain_until_ms);

	if (v.down) {
		bool guarded = !draining_wanted(s, now_ms);

		s->decided = true;
		describe_check(why, sizeof(why), "failed", v.down);
		if (s->state == SVC_WITHDRAWN)
			return guarded && guard_reannounce(s, why, now_ms, wall);
		if (guarded && guard_wants_fresh(s, v.down, now_ms, wake_ms))
			return false;
		if (guarded && guard_short(s))
			return guard_hold(s, why, now_ms, wall);
		if (guarded && s->guarded)
			return guard_release(s, why, now_ms, wall);
		damp_penalise(s, now_ms);
		return transition(s, SVC_WITHDRAWN, why, now_ms, wall);
	}
	if (v.unknown) {
		/* No verdict yet: keep what we have, unless an operator (or the
		 * stop policy) wants it drained, which needs no verdict. */
		if (!draining_wanted(s, now_ms))
			return false;
		bool changed = drain_step(s, now_ms, wall, wake_ms);

		if (s->state == SVC_WITHDRAWN)
			s->decided = true;   /* withdrawn by us: BIRD's old state no longer counts */
		return changed;
	}
	s->decided = true;

	enum svc_state healthy = v.degraded ? SVC_DEGRADED : SVC_UP;

	if (v.degraded)
		describe_check(why, sizeof(why), "failed", v.degraded);
	else
		snprintf(why, sizeof(why), "all checks up");

	if (draining_wanted(s, now_ms))
		return drain_step(s, now_ms, wall, wake_ms);

	switch (s->state) {
	case SVC_WITHDRAWN: {
		uint64_t hold_end = s->withdrawn_ms ? s->withdrawn_ms + s->cfg->hold_down_ms : 0;

		if (s->damp.suppressed) {
			wake_at(wake_ms, svc_reuse_ms(s, now_ms));
			snprintf(s->reason, sizeof(s->reason),
				 "suppressed by dampening (penalty %.0f)",
				 svc_penalty(s, now_ms));
			return false;
		}
		if (hold_end > now_ms) {
			wake_at(wake_ms, hold_end);
			return false;
		}
		return transition(s, healthy, why, now_ms, wall);
	}
	case SVC_DRAINING:
		return transition(s, healthy, "drain ended", now_ms, wall);
	case SVC_UP:
	case SVC_DEGRADED:
		if (s->guarded && healthy == s->state) {
			/* degraded by a check of its own now, no longer by the guard */
			record(s, healthy, wall, why);
			snprintf(s->reason, sizeof(s->reason), "%s", why);
			s->guarded = false;
			return true;
		}
		return transition(s, healthy, why, now_ms, wall);
	default:
		return false;
	}
}

bool svc_force(struct svc *s, enum svc_state to, const char *reason,
	       uint64_t now_ms, time_t wall)
{
	s->decided = true;
	return transition(s, to, reason, now_ms, wall);
}

void svc_drain(struct svc *s, bool on, uint64_t for_ms, uint64_t now_ms)
{
	s->drain_requested = on;
	s->drain_until_ms = on && for_ms ? now_ms + for_ms : 0;
}

bool svc_intent_set(struct svc *s, const struct svc_intent *in, uint64_t now_ms,
		    int64_t wall_ms)
{
	bool on = in->drained && (!in->until_ms || in->until_ms > wall_ms);

	s->intent = *in;
	s->intent.drained = on;
	svc_drain(s, on, on && in->until_ms ? (uint64_t)(in->until_ms - wall_ms) : 0, now_ms);
	return on;
}

static size_t append_set(const struct cfg_communities *set,
			 struct cfg_community *out, size_t n, size_t max)
{
	for (size_t i = 0; i < set->n && n < max; i++) {
		bool dup = false;

		for (size_t j = 0; j < n; j++)
			dup |= out[j].large == set->items[i].large &&
			       !memcmp(out[j].v, set->items[i].v, sizeof(out[j].v));
		if (!dup)
			out[n++] = set->items[i];
	}
	return n;
}

size_t svc_communities(const struct svc *s, enum svc_state st,
		       struct cfg_community *out, size_t max)
{
	const struct cfg_communities *c = s->cfg->communities;
	size_t n = 0;

	if (st == SVC_WITHDRAWN)
		return 0;
	n = append_set(&c[CFG_COMM_UP], out, n, max);
	if (st == SVC_DEGRADED)
		n = append_set(&c[CFG_COMM_DEGRADED], out, n, max);
	if (st == SVC_DRAINING)
		n = append_set(&c[CFG_COMM_DRAINING], out, n, max);
	return n;
}
