/*
 * GET /metrics: the Prometheus text exposition (format 0.0.4), rendered
 * from the same state as the status snapshot. Every family is written as
 * one block (HELP, TYPE, then all its samples), as the format requires.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "healthd/internal.h"

/* Label values: backslash, double quote and newline are escaped. */
static void put_label(FILE *f, const char *name, const char *value)
{
	fprintf(f, "%s=\"", name);
	for (const char *p = value; *p; p++) {
		if (*p == '\\' || *p == '"')
			fprintf(f, "\\%c", *p);
		else if (*p == '\n')
			fputs("\\n", f);
		else
			fputc(*p, f);
	}
	fputc('"', f);
}

static void family(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* One sample with the labels service= and, if check is set, check=. */
static void sample(FILE *f, const char *name, const char *service,
		   const char *check, double v)
{
	fputs(name, f);
	if (service) {
		fputc('{', f);
		put_label(f, "service", service);
		if (check) {
			fputc(',', f);
			put_label(f, "check", check);
		}
		fputc('}', f);
	}
	fprintf(f, " %.17g\n", v);
}

enum check_metric { CM_UP, CM_FAILURES, CM_PROBES, CM_PROBES_FAILED };

static double check_value(const struct svc_check *c, enum check_metric m)
{
	switch (m) {
	case CM_UP: return c->state == CHK_UP;
	case CM_FAILURES: return c->failures;
	case CM_PROBES: return (double)c->probes;
	case CM_PROBES_FAILED: return (double)c->probes_failed;
	}
	return 0;
}

static void check_family(FILE *f, struct hd *hd, const char *name, const char *type,
			 const char *help, enum check_metric m)
{
	family(f, name, type, help);
	for (size_t i = 0; i < hd->n_svcs; i++) {
		const struct svc *s = &hd->svcs[i]->svc;

		for (size_t j = 0; j < s->n_checks; j++)
			sample(f, name, s->cfg->name, s->checks[j].cfg->name,
			       check_value(&s->checks[j], m));
	}
}

static void histogram_one(FILE *f, const char *service, const struct svc_check *c)
{
	const char *name = "healthd_check_latency_seconds";
	uint64_t cum = 0;

	for (size_t b = 0; b <= SVC_LATENCY_BUCKETS; b++) {
		cum += c->latency_hist[b];
		fprintf(f, "%s_bucket{", name);
		put_label(f, "service", service);
		fputc(',', f);
		put_label(f, "check", c->cfg->name);
		if (b < SVC_LATENCY_BUCKETS)
			fprintf(f, ",le=\"%g\"} %llu\n", svc_latency_bounds_us[b] / 1e6,
				(unsigned long long)cum);
		else
			fprintf(f, ",le=\"+Inf\"} %llu\n", (unsigned long long)cum);
	}
	fprintf(f, "%s_sum{", name);
	put_label(f, "service", service);
	fputc(',', f);
	put_label(f, "check", c->cfg->name);
	fprintf(f, "} %.6f\n", c->latency_sum_us / 1e6);
	fprintf(f, "%s_count{", name);
	put_label(f, "service", service);
	fputc(',', f);
	put_label(f, "check", c->cfg->name);
	fprintf(f, "} %llu\n", (unsigned long long)cum);
}

static void check_metrics(FILE *f, struct hd *hd)
{
	check_family(f, hd, "healthd_check_up", "gauge",
		     "1 when the check is up, 0 when down or not yet known.", CM_UP);
	family(f, "healthd_check_latency_seconds", "histogram",
	       "Probe latency, from start to result, of every probe.");
	for (size_t i = 0; i < hd->n_svcs; i++) {
		const struct svc *s = &hd->svcs[i]->svc;

		for (size_t j = 0; j < s->n_checks; j++)
			histogram_one(f, s->cfg->name, &s->checks[j]);
	}
	check_family(f, hd, "healthd_check_consecutive_failures", "gauge",
		     "Failed probes in a row.", CM_FAILURES);
	check_family(f, hd, "healthd_check_probes_total", "counter",
		     "Probes that ended, with any result.", CM_PROBES);
	check_family(f, hd, "healthd_check_probe_failures_total", "counter",
		     "Probes that ended with a failure.", CM_PROBES_FAILED);
}

/* The fleet guard. The reason is a label of an info sample that exists
 * only while the guard holds, so healthd_service_guarded keeps one series. */
static void guard_metrics(FILE *f, struct hd *hd)
{
	family(f, "healthd_service_guarded", "gauge",
	       "1 while the fleet guard keeps the service announced (GUARDED: last announcer).");
	for (size_t i = 0; i < hd->n_svcs; i++)
		sample(f, "healthd_service_guarded", hd->svcs[i]->svc.cfg->name, NULL,
		       hd->svcs[i]->svc.guarded);
	family(f, "healthd_service_guarded_info", "gauge",
	       "Why the fleet guard keeps the service announced: the failing check.");
	for (size_t i = 0; i < hd->n_svcs; i++) {
		const struct svc *s = &hd->svcs[i]->svc;

		if (!s->guarded)
			continue;
		fputs("healthd_service_guarded_info{", f);
		put_label(f, "service", s->cfg->name);
		fputc(',', f);
		put_label(f, "reason", s->reason);
		fputs("} 1\n", f);
	}
	family(f, "healthd_service_guard_holds_total", "counter",
	       "Times the fleet guard kept the service announced or announced it again.");
	for (size_t i = 0; i < hd->n_svcs; i++)
		sample(f, "healthd_service_guard_holds_total", hd->svcs[i]->svc.cfg->name, NULL,
		       (double)hd->svcs[i]->svc.guard_holds);
	family(f, "healthd_service_fleet_known", "gauge",
	       "1 while this node's BIRD shows the fleet (an iBGP session up, BIRD answering).");
	for (size_t i = 0; i < hd->n_svcs; i++)
		sample(f, "healthd_service_fleet_known", hd->svcs[i]->svc.cfg->name, NULL,
		       hd->svcs[i]->svc.fleet.known);
	family(f, "healthd_service_fleet_announcers", "gauge",
	       "Other nodes announcing the service, draining ones not counted (while known).");
	for (size_t i = 0; i < hd->n_svcs; i++)
		if (hd->svcs[i]->svc.fleet.known)
			sample(f, "healthd_service_fleet_announcers", hd->svcs[i]->svc.cfg->name,
			       NULL, hd->svcs[i]->svc.fleet.announcers);
	family(f, "healthd_service_fleet_leaving", "gauge",
	       "Other nodes announcing the service with its draining communities (while known).");
	for (size_t i = 0; i < hd->n_svcs; i++)
		if (hd->svcs[i]->svc.fleet.known)
			sample(f, "healthd_service_fleet_leaving", hd->svcs[i]->svc.cfg->name,
			       NULL, hd->svcs[i]->svc.fleet.leaving);
}

static void service_metrics(FILE *f, struct hd *hd)
{
	uint64_t now = hd_now_ms(hd);

	family(f, "healthd_service_state", "gauge",
	       "1 for the state the service is in, 0 for the others.");
	for (size_t i = 0; i < hd->n_svcs; i++) {
		const struct svc *s = &hd->svcs[i]->svc;

		for (int st = 0; st < SVC_STATES; st++) {
			fputs("healthd_service_state{", f);
			put_label(f, "service", s->cfg->name);
			fputc(',', f);
			put_label(f, "state", svc_state_str(st));
			fprintf(f, "} %d\n", s->state == (enum svc_state)st);
		}
	}
	family(f, "healthd_service_transitions_total", "counter",
	       "State changes since start (kept over reloads).");
	for (size_t i = 0; i < hd->n_svcs; i++)
		sample(f, "healthd_service_transitions_total", hd->svcs[i]->svc.cfg->name,
		       NULL, (double)hd->svcs[i]->svc.transitions);
	family(f, "healthd_service_dampening_penalty", "gauge",
	       "Dampening penalty of withdrawals, decayed to now.");
	for (size_t i = 0; i < hd->n_svcs; i++)
		sample(f, "healthd_service_dampening_penalty", hd->svcs[i]->svc.cfg->name,
		       NULL, svc_penalty(&hd->svcs[i]->svc, now));
	family(f, "healthd_service_suppressed", "gauge",
	       "1 while dampening keeps the service withdrawn.");
	for (size_t i = 0; i < hd->n_svcs; i++)
		sample(f, "healthd_service_suppressed", hd->svcs[i]->svc.cfg->name, NULL,
		       hd->svcs[i]->svc.damp.suppressed);
	guard_metrics(f, hd);
	family(f, "healthd_service_bird_announcing", "gauge",
	       "1 while BIRD runs the protocol the service's state wants announced.");
	for (size_t i = 0; i < hd->n_svcs; i++) {
		char why[8];

		sample(f, "healthd_service_bird_announcing", hd->svcs[i]->svc.cfg->name, NULL,
		       hd->sync && bird_sync_announcing(hd->sync, hd->svcs[i]->svc.cfg->name,
							why, sizeof(why)));
	}
}

static void daemon_metrics(FILE *f, struct hd *hd)
{
	struct bird_sync_stats st = { 0 };

	if (hd->sync)
		bird_sync_stats(hd->sync, &st);
	family(f, "healthd_bird_connected", "gauge",
	       "1 while the BIRD control socket is connected.");
	sample(f, "healthd_bird_connected", NULL, NULL, st.connected);
	family(f, "healthd_bird_command_errors_total", "counter",
	       "BIRD commands that failed or timed out.");
	sample(f, "healthd_bird_command_errors_total", NULL, NULL, (double)st.command_errors);
	family(f, "healthd_bird_reconcile_repairs_total", "counter",
	       "Drift between BIRD and the desired state that was repaired.");
	sample(f, "healthd_bird_reconcile_repairs_total", NULL, NULL, (double)st.repairs);
	family(f, "healthd_bird_configures_total", "counter",
	       "BIRD configure commands sent.");
	sample(f, "healthd_bird_configures_total", NULL, NULL, (double)st.configures);
	family(f, "healthd_bird_problem", "gauge",
	       "1 while something keeps BIRD from matching the desired state (see status).");
	sample(f, "healthd_bird_problem", NULL, NULL, st.problem[0] != '\0');
	family(f, "healthd_bird_backoff_seconds", "gauge",
	       "The longest back-off in force after a failed BIRD command.");
	sample(f, "healthd_bird_backoff_seconds", NULL, NULL, (double)st.backoff_ms / 1000.0);
	family(f, "healthd_bird_unknown_protocols", "gauge",
	       "healthd_* protocols BIRD runs that no configured service owns.");
	sample(f, "healthd_bird_unknown_protocols", NULL, NULL, (double)st.unknown);
	family(f, "healthd_reloads_total", "counter", "Config reloads attempted.");
	sample(f, "healthd_reloads_total", NULL, NULL, (double)hd->reloads);
	family(f, "healthd_reload_failures_total", "counter",
	       "Config reloads rejected (the running config stayed).");
	sample(f, "healthd_reload_failures_total", NULL, NULL, (double)hd->reload_failures);
	family(f, "healthd_build_info", "gauge", "Always 1; the version is a label.");
	fputs("healthd_build_info{", f);
	put_label(f, "version", HEALTHD_VERSION);
	fputs("} 1\n", f);
}

char *hd_metrics(struct hd *hd, size_t *len)
{
	char *out = NULL;
	FILE *f = open_memstream(&out, len);

	if (!f)
		return NULL;
	check_metrics(f, hd);
	service_metrics(f, hd);
	daemon_metrics(f, hd);
	if (fclose(f) != 0) {
		free(out);
		return NULL;
	}
	return out;
}
