/*
 * The status snapshot: one jansson document built from the daemon's state.
 * `healthctl status --json`, GET /status and the text table all render it.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "healthd/internal.h"

static json_t *wall_str(time_t t)
{
	char buf[40];
	struct tm tm;

	if (!t)
		return json_null();
	gmtime_r(&t, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
	return json_string(buf);
}

/* ---- probe timer lateness ---- */

static unsigned late_bucket(uint64_t us)
{
	unsigned e = 63 - (unsigned)__builtin_clzll(us | 1), b;

	if (us < 8)
		return (unsigned)us;
	b = 8 + (e - 3) * 8 + (unsigned)((us >> (e - 3)) & 7);
	return b < HD_LATE_BUCKETS ? b : HD_LATE_BUCKETS - 1;
}

/* The largest value that lands in bucket b. */
static uint64_t late_bucket_max(unsigned b)
{
	unsigned e = (b - 8) / 8 + 3;

	if (b < 8)
		return b;
	return ((uint64_t)(8 + (b - 8) % 8 + 1) << (e - 3)) - 1;
}

void hd_lateness_add(struct hd_lateness *l, uint64_t us)
{
	l->count[late_bucket(us)]++;
	l->samples++;
	if (us > l->max_us)
		l->max_us = us;
}

static double late_quantile_ms(const struct hd_lateness *l, double q)
{
	uint64_t rank = (uint64_t)(q * (double)l->samples), seen = 0;

	for (unsigned b = 0; b < HD_LATE_BUCKETS; b++) {
		seen += l->count[b];
		if (seen > rank)
			return late_bucket_max(b) / 1000.0;
	}
	return l->max_us / 1000.0;
}

/* Percentiles since start, and the non-empty buckets as [max_us, count]
 * so a reader can take the difference of two snapshots for a window. */
static json_t *scheduler_json(const struct hd *hd)
{
	const struct hd_lateness *l = &hd->lateness;
	json_t *o = json_object(), *lat = json_object(), *hist = json_array();

	json_object_set_new(lat, "p50", json_real(late_quantile_ms(l, 0.50)));
	json_object_set_new(lat, "p99", json_real(late_quantile_ms(l, 0.99)));
	json_object_set_new(lat, "max", json_real(l->max_us / 1000.0));
	json_object_set_new(lat, "samples", json_integer((json_int_t)l->samples));
	for (unsigned b = 0; b < HD_LATE_BUCKETS; b++)
		if (l->count[b])
			json_array_append_new(hist, json_pack("[II]", (json_int_t)late_bucket_max(b),
							      (json_int_t)l->count[b]));
	json_object_set_new(lat, "histogram_us", hist);
	json_object_set_new(o, "lateness_ms", lat);
	return o;
}

static json_t *check_json(const struct hd *hd, const struct svc_check *c,
			  const struct hd_probe *p)
{
	json_t *o = json_object();

	json_object_set_new(o, "name", json_string(c->cfg->name));
	json_object_set_new(o, "type", json_string(c->cfg->type));
	json_object_set_new(o, "on_fail", json_string(cfg_on_fail_str(c->cfg->on_fail)));
	json_object_set_new(o, "state", json_string(chk_state_str(c->state)));
	json_object_set_new(o, "since", wall_str(c->since_wall));
	json_object_set_new(o, "successes", json_integer(c->successes));
	json_object_set_new(o, "failures", json_integer(c->failures));
	json_object_set_new(o, "rise", json_integer(c->cfg->rise));
	json_object_set_new(o, "fall", json_integer(c->cfg->fall));
	json_object_set_new(o, "probes", json_integer((json_int_t)c->probes));
	json_object_set_new(o, "probes_failed", json_integer((json_int_t)c->probes_failed));
	json_object_set_new(o, "overruns", json_integer((json_int_t)c->overruns));
	if (c->have_result) {
		json_t *l = json_object();

		json_object_set_new(l, "result", json_string(check_reason_str(c->last.reason)));
		json_object_set_new(l, "detail", json_string(c->last.detail));
		json_object_set_new(l, "latency_ms", json_real(c->last.latency_us / 1000.0));
		json_object_set_new(l, "at", wall_str(c->last_wall));
		json_object_set_new(l, "age_ms", json_integer((json_int_t)(hd_now_ms(hd) - c->last_ms)));
		json_object_set_new(o, "last", l);
	} else {
		json_object_set_new(o, "last", json_null());
	}
	if (p)
		check_status(p->check, o);
	return o;
}

static json_t *history_json(const struct svc *s)
{
	json_t *a = json_array();
	size_t n = s->history_n < SVC_HISTORY ? s->history_n : SVC_HISTORY;

	for (size_t i = 0; i < n; i++) {
		const struct svc_event *e = &s->history[(s->history_n - 1 - i) % SVC_HISTORY];
		json_t *o = json_object();

		json_object_set_new(o, "at", wall_str(e->wall));
		json_object_set_new(o, "from", json_string(svc_state_str(e->from)));
		json_object_set_new(o, "to", json_string(svc_state_str(e->to)));
		json_object_set_new(o, "reason", json_string(e->reason));
		json_array_append_new(a, o);
	}
	return a;
}

static json_t *wall_ms_str(int64_t ms)
{
	return ms > 0 ? wall_str((time_t)(ms / 1000)) : json_null();
}

/* An operator's drain: who, why, since and until when. */
static json_t *intent_json(const struct svc *s, uint64_t now)
{
	const struct svc_intent *in = &s->intent;
	json_t *o = json_object();
	char by[80];

	json_object_set_new(o, "drained", json_boolean(in->drained));
	if (!in->drained)
		return o;
	if (in->user[0])
		snprintf(by, sizeof(by), "%s", in->user);
	else if (in->uid >= 0)
		snprintf(by, sizeof(by), "uid %ld", in->uid);
	json_object_set_new(o, "by", in->user[0] || in->uid >= 0 ? json_string(by) : json_null());
	json_object_set_new(o, "uid", in->uid >= 0 ? json_integer(in->uid) : json_null());
	json_object_set_new(o, "reason", in->reason[0] ? json_string(in->reason) : json_null());
	json_object_set_new(o, "since", wall_ms_str(in->since_ms));
	json_object_set_new(o, "until", wall_ms_str(in->until_ms));
	json_object_set_new(o, "remaining_s", s->drain_until_ms
			    ? json_integer((json_int_t)((s->drain_until_ms > now ? s->drain_until_ms - now : 0) + 999) / 1000)
			    : json_null());
	return o;
}

/* What BIRD runs for the service, protocol by protocol: desired and actual. */
static json_t *service_bird_json(const struct hd *hd, const struct svc *s)
{
	struct bird_proto_view v[2 * CFG_COMM_SETS + 4];
	json_t *o = json_object(), *a = json_array();
	char why[160] = "";
	size_t n = hd->sync ? bird_sync_protocols(hd->sync, s->cfg->name, v, 2 * CFG_COMM_SETS + 4) : 0;
	bool running = hd->sync && bird_sync_announcing(hd->sync, s->cfg->name, why, sizeof(why));

	json_object_set_new(o, "announcing", json_boolean(running));
	if (svc_state_announced(s->state) && !running)
		json_object_set_new(o, "problem", json_string(why[0] ? why : "BIRD not reached"));
	else if (!svc_state_announced(s->state) && running)
		json_object_set_new(o, "problem", json_string("withdrawn, but BIRD still runs it"));
	for (size_t i = 0; i < n && i < 2 * CFG_COMM_SETS + 4; i++) {
		json_t *p = json_object();

		json_object_set_new(p, "name", json_string(v[i].name));
		json_object_set_new(p, "state", json_string(v[i].variant));
		json_object_set_new(p, "want", json_string(v[i].want ? "enabled" : "disabled"));
		json_object_set_new(p, "bird", json_string(v[i].bird));
		if (v[i].leaving)
			json_object_set_new(p, "leaving", json_true());
		json_array_append_new(a, p);
	}
	json_object_set_new(o, "protocols", a);
	return o;
}

/* The fleet guard: its settings and what BIRD shows of the fleet. */
static json_t *guard_json(const struct svc *s, uint64_t now)
{
	const struct svc_fleet *f = &s->fleet;
	const struct cfg_guard *g = &s->cfg->guard;
	json_t *o = json_object();

	json_object_set_new(o, "min_announcers", json_integer(g->min_announcers));
	json_object_set_new(o, "step_ms", json_integer((json_int_t)g->step_ms));
	json_object_set_new(o, "interval_ms", json_integer((json_int_t)g->interval_ms));
	json_object_set_new(o, "guarded", json_boolean(s->guarded));
	json_object_set_new(o, "holds", json_integer((json_int_t)s->guard_holds));
	json_object_set_new(o, "known", json_boolean(f->known));
	json_object_set_new(o, "announcers", f->known ? json_integer(f->announcers) : json_null());
	json_object_set_new(o, "leaving", f->known ? json_integer(f->leaving) : json_null());
	json_object_set_new(o, "rank", f->known ? json_integer(f->rank) : json_null());
	json_object_set_new(o, "members", f->known ? json_integer(f->members) : json_null());
	json_object_set_new(o, "counted_ago_ms", f->counted_ms && now >= f->counted_ms ?
			    json_integer((json_int_t)(now - f->counted_ms)) : json_null());
	json_object_set_new(o, "why", f->known || !f->why[0] ? json_null() : json_string(f->why));
	return o;
}

static json_t *service_json(const struct hd *hd, const struct hd_service *hs)
{
	const struct svc *s = &hs->svc;
	json_t *o = json_object(), *checks = json_array(), *pfx = json_array();
	uint64_t now = hd_now_ms(hd);

	json_object_set_new(o, "name", json_string(s->cfg->name));
	json_object_set_new(o, "state", json_string(svc_state_str(s->state)));
	json_object_set_new(o, "announced", json_boolean(svc_state_announced(s->state)));
	json_object_set_new(o, "since", wall_str(s->since_wall));
	json_object_set_new(o, "reason", json_string(s->reason));
	for (size_t i = 0; i < s->cfg->n_prefixes; i++)
		json_array_append_new(pfx, json_string(s->cfg->prefixes[i].text));
	json_object_set_new(o, "prefixes", pfx);
	json_object_set_new(o, "transitions", json_integer((json_int_t)s->transitions));
	json_object_set_new(o, "drain_requested", json_boolean(s->drain_requested));
	json_object_set_new(o, "drain", intent_json(s, now));
	json_object_set_new(o, "maintenance", json_boolean(s->maintenance));
	json_object_set_new(o, "penalty", json_real(svc_penalty(s, now)));
	json_object_set_new(o, "suppressed", json_boolean(s->damp.suppressed));
	if (s->damp.suppressed) {
		uint64_t reuse = svc_reuse_ms(s, now);
		json_object_set_new(o, "suppressed_until",
				    wall_str(time(NULL) + (time_t)((reuse - now + 999) / 1000)));
	}
	json_object_set_new(o, "guarded", json_boolean(s->guarded));
	json_object_set_new(o, "guard", guard_json(s, now));
	json_object_set_new(o, "bird", service_bird_json(hd, s));
	for (size_t i = 0; i < s->n_checks; i++)
		json_array_append_new(checks, check_json(hd, &s->checks[i], hs->probes[i]));
	json_object_set_new(o, "checks", checks);
	json_object_set_new(o, "history", history_json(s));
	return o;
}

json_t *hd_status(struct hd *hd)
{
	json_t *o = json_object(), *svcs = json_array(), *b = json_object();
	struct bird_sync_stats st = { 0 };

	json_object_set_new(o, "node", json_string(hd->cfg->node));
	json_object_set_new(o, "version", json_string(HEALTHD_VERSION));
	json_object_set_new(o, "started", wall_str(hd->started_wall));
	json_object_set_new(o, "config", json_string(hd->cfg->path));
	if (hd->sync)
		bird_sync_stats(hd->sync, &st);
	json_object_set_new(b, "socket", json_string(hd->cfg->bird.socket));
	json_object_set_new(b, "include", json_string(hd->cfg->bird.include));
	json_object_set_new(b, "connected", json_boolean(st.connected));
	json_object_set_new(b, "in_sync", json_boolean(hd->sync && bird_sync_idle(hd->sync)));
	json_object_set_new(b, "commands", json_integer((json_int_t)st.commands));
	json_object_set_new(b, "command_errors", json_integer((json_int_t)st.command_errors));
	json_object_set_new(b, "configures", json_integer((json_int_t)st.configures));
	json_object_set_new(b, "repairs", json_integer((json_int_t)st.repairs));
	json_object_set_new(b, "render_errors", json_integer((json_int_t)st.render_errors));
	json_object_set_new(b, "last_error", json_string(st.last_error));
	json_object_set_new(b, "problem", json_string(st.problem));
	json_object_set_new(b, "backoff_ms", json_integer((json_int_t)st.backoff_ms));
	json_object_set_new(b, "protocols", json_integer((json_int_t)st.protocols));
	json_object_set_new(b, "purge", json_boolean(hd->cfg->bird.purge));
	json_object_set_new(b, "purged", json_integer((json_int_t)st.purged));
	json_t *unknown = json_array();
	const char *name;
	bool up;
	for (size_t i = 0; hd->sync && (name = bird_sync_unknown(hd->sync, i, &up)); i++) {
		json_t *u = json_object();

		json_object_set_new(u, "name", json_string(name));
		json_object_set_new(u, "bird", json_string(up ? "up" : "down"));
		json_array_append_new(unknown, u);
	}
	json_object_set_new(b, "unknown_protocols", unknown);
	json_object_set_new(o, "bird", b);
	json_object_set_new(o, "reloads", json_integer((json_int_t)hd->reloads));
	json_object_set_new(o, "reload_failures", json_integer((json_int_t)hd->reload_failures));
	json_object_set_new(o, "last_reload_error", json_string(hd->last_reload_error));
	json_object_set_new(o, "scheduler", scheduler_json(hd));
	for (size_t i = 0; i < hd->n_svcs; i++)
		json_array_append_new(svcs, service_json(hd, hd->svcs[i]));
	json_object_set_new(o, "services", svcs);
	return o;
}

/* ---- the text renderer (healthctl status) ---- */

static const char *jstr(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "-";
}

/* Said only once the fleet was in sight: a lone node shows no guard line. */
static void guard_text(FILE *f, json_t *svc)
{
	json_t *g = json_object_get(svc, "guard");
	long long min = json_integer_value(json_object_get(g, "min_announcers"));

	if (!min)
		return;
	if (json_is_true(json_object_get(g, "guarded")))
		fprintf(f, "  GUARDED: kept announced by the fleet guard (guard.min_announcers %lld)\n",
			min);
	if (json_is_true(json_object_get(g, "known")))
		fprintf(f, "  guard:    %lld other announcers, %lld leaving; rank %lld of %lld router ids\n",
			json_integer_value(json_object_get(g, "announcers")),
			json_integer_value(json_object_get(g, "leaving")),
			json_integer_value(json_object_get(g, "rank")),
			json_integer_value(json_object_get(g, "members")));
	else if (json_is_integer(json_object_get(g, "counted_ago_ms")))
		fprintf(f, "  guard:    fleet count unknown (%s): the guard holds nothing\n",
			jstr(g, "why"));
}

/* A check's "peers" array (from its type's status hook), a line each:
 * name or key, state, then every other scalar member as key=value. */
static void peers_text(FILE *f, json_t *peers)
{
	json_t *p, *v;
	const char *k;
	size_t i;

	json_array_foreach(peers, i, p) {
		json_t *name = json_object_get(p, "name");

		fprintf(f, "    peer %s: %s", json_is_string(name) ? json_string_value(name)
			: jstr(p, "key"), jstr(p, "state"));
		json_object_foreach(p, k, v) {
			if (!strcmp(k, "name") || !strcmp(k, "state") || json_is_boolean(v) ||
			    (!strcmp(k, "key") && !json_is_string(name)))
				continue;
			if (json_is_string(v))
				fprintf(f, "  %s=%s", k, json_string_value(v));
			else if (json_is_real(v))
				fprintf(f, "  %s=%.1f", k, json_real_value(v));
			else if (json_is_integer(v))
				fprintf(f, "  %s=%lld", k, json_integer_value(v));
			else if (json_is_null(v))
				fprintf(f, "  %s=-", k);
		}
		fputc('\n', f);
	}
}

char *hd_status_text(json_t *snap)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	json_t *b = json_object_get(snap, "bird"), *svc;
	size_t i;

	if (!f)
		return NULL;
	fprintf(f, "node %s, healthd %s, config %s\n", jstr(snap, "node"),
		jstr(snap, "version"), jstr(snap, "config"));
	fprintf(f, "BIRD %s: %s%s", jstr(b, "socket"),
		json_is_true(json_object_get(b, "connected")) ? "connected" : "NOT CONNECTED",
		json_is_true(json_object_get(b, "in_sync")) ? ", in sync" : ", syncing");
	fprintf(f, ", %lld repairs, %lld command errors\n",
		json_integer_value(json_object_get(b, "repairs")),
		json_integer_value(json_object_get(b, "command_errors")));
	if (*jstr(b, "last_error") && strcmp(jstr(b, "last_error"), "-"))
		fprintf(f, "  last BIRD error: %s\n", jstr(b, "last_error"));
	if (*jstr(b, "problem") && strcmp(jstr(b, "problem"), "-"))
		fprintf(f, "  PROBLEM: %s\n", jstr(b, "problem"));
	json_t *u;
	json_array_foreach(json_object_get(b, "unknown_protocols"), i, u)
		fprintf(f, "  BIRD runs %s (%s), which no service owns%s\n", jstr(u, "name"),
			jstr(u, "bird"), json_is_true(json_object_get(b, "purge")) ?
			" (bird.purge: disabling it)" : "");
	if (*jstr(snap, "last_reload_error") && strcmp(jstr(snap, "last_reload_error"), "-"))
		fprintf(f, "last reload failed: %s\n", jstr(snap, "last_reload_error"));
	json_array_foreach(json_object_get(snap, "services"), i, svc) {
		json_t *chk, *pfx;
		size_t j;

		fprintf(f, "\nservice %-12s %-9s since %s\n", jstr(svc, "name"),
			jstr(svc, "state"), jstr(svc, "since"));
		fprintf(f, "  reason:   %s\n", jstr(svc, "reason"));
		fprintf(f, "  prefixes:");
		json_array_foreach(json_object_get(svc, "prefixes"), j, pfx)
			fprintf(f, " %s", json_string_value(pfx));
		fprintf(f, "\n");
		if (json_is_true(json_object_get(svc, "suppressed")))
			fprintf(f, "  SUPPRESSED by dampening until %s (penalty %.0f)\n",
				jstr(svc, "suppressed_until"),
				json_real_value(json_object_get(svc, "penalty")));
		json_t *drain = json_object_get(svc, "drain");

		if (json_is_true(json_object_get(drain, "drained"))) {
			json_t *uid = json_object_get(drain, "uid"), *left = json_object_get(drain, "remaining_s");

			fprintf(f, "  drain requested by %s", jstr(drain, "by"));
			if (json_is_integer(uid) && strncmp(jstr(drain, "by"), "uid ", 4))
				fprintf(f, " (uid %lld)", json_integer_value(uid));
			fprintf(f, " since %s, until ", jstr(drain, "since"));
			if (json_is_integer(left))
				fprintf(f, "%s (%llds left)\n", jstr(drain, "until"),
					json_integer_value(left));
			else
				fprintf(f, "undrain\n");
			if (json_is_string(json_object_get(drain, "reason")))
				fprintf(f, "  drain reason: %s\n", jstr(drain, "reason"));
		} else if (json_is_true(json_object_get(svc, "drain_requested"))) {
			fprintf(f, "  drain requested by the stop policy\n");
		}
		if (json_is_true(json_object_get(svc, "maintenance")))
			fprintf(f, "  maintenance file present\n");
		guard_text(f, svc);
		json_t *sb = json_object_get(svc, "bird"), *bp;
		if (json_is_string(json_object_get(sb, "problem")))
			fprintf(f, "  %s: %s\n", json_is_true(json_object_get(sb, "announcing")) ?
				"STILL ANNOUNCED by BIRD" : "NOT ANNOUNCED by BIRD", jstr(sb, "problem"));
		int shown = 0;

		fprintf(f, "  BIRD:");
		json_array_foreach(json_object_get(sb, "protocols"), j, bp) {
			bool want = !strcmp(jstr(bp, "want"), "enabled"), up = !strcmp(jstr(bp, "bird"), "up");

			/* the enabled ones, and any that differs from what is wanted */
			if (want || up || strcmp(jstr(bp, "bird"), "down"))
				shown += fprintf(f, " %s %s%s%s", jstr(bp, "name"), jstr(bp, "bird"),
						 want != up ? want ? " (want up)" : " (want down)" : "",
						 json_is_true(json_object_get(bp, "leaving")) ?
						 " (leaving)" : "") > 0;
		}
		fprintf(f, "%s\n", shown ? "" : " every protocol disabled");
		fprintf(f, "  %-12s %-6s %-8s %-8s %9s %5s %5s  %s\n", "CHECK", "TYPE",
			"ON_FAIL", "STATE", "LATENCY", "OK", "FAIL", "LAST RESULT");
		json_array_foreach(json_object_get(svc, "checks"), j, chk) {
			json_t *last = json_object_get(chk, "last");
			char lat[16] = "-";

			if (json_is_object(last))
				snprintf(lat, sizeof(lat), "%.1fms",
					 json_real_value(json_object_get(last, "latency_ms")));
			fprintf(f, "  %-12s %-6s %-8s %-8s %9s %5lld %5lld  %s\n",
				jstr(chk, "name"), jstr(chk, "type"), jstr(chk, "on_fail"),
				jstr(chk, "state"), lat,
				json_integer_value(json_object_get(chk, "successes")),
				json_integer_value(json_object_get(chk, "failures")),
				json_is_object(last) ? jstr(last, "detail") : "(no probe yet)");
			peers_text(f, json_object_get(chk, "peers"));
		}
		json_t *hist = json_object_get(svc, "history"), *ev;
		if (json_array_size(hist)) {
			fprintf(f, "  history:\n");
			json_array_foreach(hist, j, ev) {
				if (j >= 5)
					break;
				fprintf(f, "    %s  %s -> %s  %s\n", jstr(ev, "at"), jstr(ev, "from"),
					jstr(ev, "to"), jstr(ev, "reason"));
			}
		}
	}
	fclose(f);
	return out;
}
