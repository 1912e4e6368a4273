/*
 * The daemon: schedules probes, feeds results to the state machine, and
 * hands every decision to bird-glue. Reload swaps the config whole.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "healthd/internal.h"

static void apply(struct hd_service *hs, bool changed);

uint64_t hd_now_ms(const struct hd *hd)
{
	return uv_now(hd->loop);
}

const struct config *hd_config(const struct hd *hd)
{
	return hd->cfg;
}

static uint64_t jitter(uint64_t interval_ms)
{
	return interval_ms > 1 ? (uint64_t)random() % interval_ms : 0;
}

static void handle_closed_free(uv_handle_t *h)
{
	(void)h;
}

/* ---- probes ---- */

static void probe_done(struct check *c, const struct check_result *r, void *arg)
{
	struct hd_probe *p = arg;
	struct hd_service *hs = p->svc;
	struct hd_waiter *w = p->waiters;

	(void)c;
	p->waiters = NULL;
	while (w) {
		struct hd_waiter *next = w->next;

		w->cb(w->arg, hs ? hs->svc.cfg->name : NULL, p->check->cfg->name, r);
		free(w);
		w = next;
	}
	if (!hs || p->hd->stopping)
		return;
	struct svc_check *sc = &hs->svc.checks[p->idx];
	enum chk_state old = sc->state;

	if (svc_check_result(&hs->svc, p->idx, r, hd_now_ms(p->hd), time(NULL)))
		hd_log(sc->state == CHK_DOWN ? LOG_LVL_WARNING : LOG_LVL_NOTICE,
		       hs->svc.cfg->name, sc->cfg->name, "check %s: %s -> %s (%s, %.1f ms)",
		       sc->cfg->name, chk_state_str(old), chk_state_str(sc->state),
		       r->detail, r->latency_us / 1000.0);
	else
		hd_log(LOG_LVL_DEBUG, hs->svc.cfg->name, sc->cfg->name, "check %s: %s (%.1f ms)",
		       sc->cfg->name, r->detail, r->latency_us / 1000.0);
	apply(hs, false);
}

static void probe_fire(uv_timer_t *t)
{
	struct hd_probe *p = t->data;
	int rc;

	rc = check_start(p->check);
	if (rc == -EBUSY) {
		/* the last probe still runs: one at a time; its result names the skips */
		if (p->svc)
			p->svc->svc.checks[p->idx].overruns++;
		return;
	}
	if (rc < 0 && p->svc) {
		struct check_result r = { .reason = CHECK_INTERNAL };

		snprintf(r.detail, sizeof(r.detail), "cannot start probe: %s", strerror(-rc));
		probe_done(p->check, &r, p);
	}
}

/* The timer's callback: how late it ran, then the probe. */
static void probe_tick(uv_timer_t *t)
{
	struct hd_probe *p = t->data;
	uint64_t now_us = uv_hrtime() / 1000, due_us = p->due_ms * 1000;

	hd_lateness_add(&p->hd->lateness, now_us > due_us ? now_us - due_us : 0);
	/* libuv re-arms a repeating timer from the loop time, before this runs. */
	p->due_ms = uv_now(p->hd->loop) + p->check->cfg->interval_ms;
	probe_fire(t);
}

static void probe_closed(uv_handle_t *h)
{
	free(h->data);
}

static void probe_free(struct hd_probe *p)
{
	struct hd_waiter *w = p->waiters;

	while (w) {
		struct hd_waiter *next = w->next;

		w->cb(w->arg, NULL, NULL, NULL);
		free(w);
		w = next;
	}
	p->waiters = NULL;
	check_destroy(p->check);
	uv_close((uv_handle_t *)&p->timer, probe_closed);
}

static struct hd_probe *probe_new(struct hd *hd, struct hd_service *hs, size_t idx)
{
	struct hd_probe *p = calloc(1, sizeof(*p));
	const struct cfg_check *cc = &hs->svc.cfg->checks[idx];
	int rc;

	if (!p)
		return NULL;
	p->hd = hd;
	p->svc = hs;
	p->idx = idx;
	rc = check_new(hd->engine, cc, probe_done, p, &p->check);
	if (rc < 0) {
		log_err("service %s check %s: cannot create: %s", hs->svc.cfg->name,
			cc->name, strerror(-rc));
		free(p);
		return NULL;
	}
	uv_timer_init(hd->loop, &p->timer);
	p->timer.data = p;
	/* Jitter the first probe so many checks with one interval spread out. */
	p->due_ms = uv_now(hd->loop) + jitter(cc->interval_ms);
	uv_timer_start(&p->timer, probe_tick, p->due_ms - uv_now(hd->loop), cc->interval_ms);
	return p;
}

/* ---- services ---- */

static void wake_fire(uv_timer_t *t)
{
	apply(t->data, false);
}

/* The protocol a state announces through: its communities' set. */
static int state_variant(enum svc_state st)
{
	return st == SVC_DEGRADED ? CFG_COMM_DEGRADED :
	       st == SVC_DRAINING ? CFG_COMM_DRAINING : CFG_COMM_UP;
}

static void publish(struct hd_service *hs)
{
	struct svc *s = &hs->svc;

	if (hs->hd->sync)
		bird_sync_set(hs->hd->sync, s->cfg->name, svc_state_announced(s->state),
			      state_variant(s->state), svc_state_str(s->state));
}

static void apply(struct hd_service *hs, bool force)
{
	struct svc *s = &hs->svc;
	enum svc_state old = s->state;
	uint64_t wake = 0;

	if (hs->hd->stop_pending && s->cfg->on_stop == CFG_ON_STOP_WITHDRAW)
		return;   /* withdrawn for good: we are on our way out */
	bool changed = svc_evaluate(s, hd_now_ms(hs->hd), time(NULL), &wake);

	if (changed)
		hd_log(s->state == SVC_WITHDRAWN || s->guarded ? LOG_LVL_WARNING : LOG_LVL_NOTICE,
		       s->cfg->name, NULL, "service %s: %s -> %s: %s", s->cfg->name,
		       svc_state_str(old), svc_state_str(s->state), s->reason);
	if (changed || force)
		publish(hs);
	if (changed && old != s->state)
		hd_hook_change(hs->hd, s->cfg, old, s->state, s->reason);
	if (s->fleet_wanted)
		bird_fleet_refresh(hs->hd->fleet);   /* a withdrawal waits for a fresh count */
	uv_timer_stop(&hs->wake);
	if (wake) {
		uint64_t now = hd_now_ms(hs->hd);

		uv_timer_start(&hs->wake, wake_fire, wake > now ? wake - now : 0, 0);
	}
}

static void service_closed(uv_handle_t *h)
{
	struct hd_service *hs = h->data;

	svc_free(&hs->svc);
	free(hs->probes);
	free(hs);
}

static void service_free(struct hd_service *hs)
{
	for (size_t i = 0; i < hs->svc.n_checks; i++)
		if (hs->probes[i]) {
			hs->probes[i]->svc = NULL;
			probe_free(hs->probes[i]);
		}
	uv_close((uv_handle_t *)&hs->wake, service_closed);
}

static struct hd_service *service_new(struct hd *hd, const struct cfg_service *cfg)
{
	struct hd_service *hs = calloc(1, sizeof(*hs));

	if (!hs)
		return NULL;
	hs->hd = hd;
	if (svc_init(&hs->svc, cfg, hd_now_ms(hd)) < 0 ||
	    !(hs->probes = calloc(cfg->n_checks + 1, sizeof(*hs->probes)))) {
		svc_free(&hs->svc);
		free(hs);
		return NULL;
	}
	uv_timer_init(hd->loop, &hs->wake);
	hs->wake.data = hs;
	return hs;
}

static void service_start_probes(struct hd_service *hs)
{
	for (size_t i = 0; i < hs->svc.n_checks; i++)
		hs->probes[i] = probe_new(hs->hd, hs, i);
}

static struct hd_service *find_service(struct hd *hd, const char *name)
{
	for (size_t i = 0; i < hd->n_svcs; i++)
		if (!strcmp(hd->svcs[i]->svc.cfg->name, name))
			return hd->svcs[i];
	return NULL;
}

static enum svc_state state_from_word(const char *w)
{
	for (int i = 0; i < SVC_STATES; i++)
		if (!strcmp(w, svc_state_str(i)))
			return i;
	return SVC_UP;
}

/* At start, before BIRD has answered: what healthd last wrote. */
static void adopt_from_file(struct hd *hd, struct hd_service *hs)
{
	char word[32];
	int rc = bird_sync_file_state(hd->cfg->bird.include, hs->svc.cfg->name,
				      word, sizeof(word));

	if (rc > 0)
		svc_adopt(&hs->svc, state_from_word(word), "adopted from the include file",
			  hd_now_ms(hd), time(NULL));
	else
		svc_adopt(&hs->svc, SVC_WITHDRAWN, "not announced yet", hd_now_ms(hd),
			  time(NULL));
}

/* ---- BIRD sync callbacks ---- */

static void on_adopt(void *arg, const char *service, bool exists, bool announced,
		     int variant)
{
	struct hd *hd = arg;
	struct hd_service *hs = find_service(hd, service);
	char why[128];

	if (!hs)
		return;
	if (!hs->svc.decided) {
		enum svc_state st = SVC_WITHDRAWN;

		/* BIRD tells the state by the protocol it runs; the file tells
		 * it where the state has no communities of its own. */
		if (announced)
			st = variant == CFG_COMM_DEGRADED ? SVC_DEGRADED :
			     variant == CFG_COMM_DRAINING ? SVC_DRAINING :
			     hs->svc.state == SVC_WITHDRAWN ? SVC_UP : hs->svc.state;
		snprintf(why, sizeof(why), "adopted from BIRD (%s)",
			 !exists ? "not configured" : announced ? "announced" : "disabled");
		svc_adopt(&hs->svc, st, why, hd_now_ms(hd), time(NULL));
		hd_log(LOG_LVL_NOTICE, service, NULL, "service %s: %s, %s", service,
		       svc_state_str(st), why);
	}
	apply(hs, true);
	if (!hd->ready) {
		hd->ready = true;
		sd_notify(0, "READY=1\nSTATUS=BIRD in sync");
	}
}

static void on_sync_log(void *arg, int level, const char *service, const char *msg)
{
	(void)arg;
	hd_log(level, service, NULL, "%s", msg);
}

/* ---- the fleet guard ---- */

/* BIRD's view of the fleet for one service. A round that failed keeps the
 * last count for 3 guard intervals plus bird.timeout, then the count is
 * unknown (the guard holds nothing); a round without an iBGP session is
 * unknown at once: not seeing the fleet is not seeing it empty. */
static void on_fleet(void *arg, const char *service, const struct bird_fleet_view *v)
{
	struct hd *hd = arg;
	struct hd_service *hs = find_service(hd, service);
	uint64_t now = hd_now_ms(hd), keep;
	struct svc_fleet f;
	struct svc *s;
	bool was;

	if (!hs || hd->stopping)
		return;
	s = &hs->svc;
	f = s->fleet;
	was = f.known;
	keep = 3 * s->cfg->guard.interval_ms + hd->cfg->bird.timeout_ms;
	f.asof_ms = v->asof_ms;
	if (v->visible) {
		f.known = true;
		f.announcers = v->announcers;
		f.leaving = v->leaving;
		f.rank = v->rank;
		f.members = v->members;
		f.counted_ms = v->asof_ms;
		f.why[0] = '\0';
	} else if (v->ok || !f.counted_ms || now - f.counted_ms >= keep) {
		f.known = false;
		snprintf(f.why, sizeof(f.why), "%s", v->why);
	}
	if (was && !f.known)
		hd_log(LOG_LVL_WARNING, service, NULL, "service %s: guard: fleet count unknown, "
		       "the guard holds nothing: %s", service, f.why);
	else if (f.known && (!was || f.announcers != s->fleet.announcers ||
			     f.leaving != s->fleet.leaving))
		hd_log(LOG_LVL_INFO, service, NULL, "service %s: guard: %u other announcers, "
		       "%u leaving (rank %u of %u router ids)", service, f.announcers, f.leaving,
		       f.rank, f.members);
	else if (!v->ok && f.known)
		hd_log(LOG_LVL_DEBUG, service, NULL, "service %s: guard: keeping the last count: %s",
		       service, v->why);
	svc_fleet_set(s, &f);
	apply(hs, false);
}

/* ---- maintenance files ---- */

static void maint_poll(uv_timer_t *t)
{
	struct hd *hd = t->data;

	for (size_t i = 0; i < hd->n_svcs; i++) {
		struct hd_service *hs = hd->svcs[i];
		const char *f = hs->svc.cfg->maintenance_file;
		bool present = f && access(f, F_OK) == 0;

		if (present != hs->svc.maintenance) {
			hs->svc.maintenance = present;
			hd_log(LOG_LVL_NOTICE, hs->svc.cfg->name, NULL,
			       "service %s: maintenance file %s %s", hs->svc.cfg->name, f,
			       present ? "appeared" : "removed");
			apply(hs, false);
		}
	}
	hd_intent_tick(hd);
}

/* ---- systemd watchdog ---- */

/* Fed from the loop, so a loop that stalls stops feeding it. */
static void watchdog_fire(uv_timer_t *t)
{
	(void)t;
	sd_notify(0, "WATCHDOG=1");
}

static void watchdog_start(struct hd *hd)
{
	uint64_t usec = 0;

	uv_timer_init(hd->loop, &hd->watchdog);
	hd->watchdog.data = hd;
	if (sd_watchdog_enabled(0, &usec) > 0 && usec >= 2000)
		uv_timer_start(&hd->watchdog, watchdog_fire, 0, usec / 2000);
}

/* ---- signals ---- */

static void on_signal(uv_signal_t *h, int signum)
{
	struct hd *hd = h->data;
	char err[512];

	if (signum == SIGHUP) {
		if (hd_reload(hd, err, sizeof(err)) < 0)
			log_err("reload failed, the running config stays: %s", err);
		return;
	}
	log_notice("signal %d: stopping", signum);
	hd_stop(hd);
}

/* ---- life cycle ---- */

static int build_services(struct hd *hd, const struct config *cfg,
			  struct hd_service ***out)
{
	struct hd_service **v = calloc(cfg->n_services + 1, sizeof(*v));

	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < cfg->n_services; i++) {
		v[i] = service_new(hd, &cfg->services[i]);
		if (!v[i]) {
			while (i--)
				service_free(v[i]);
			free(v);
			return -ENOMEM;
		}
	}
	*out = v;
	return 0;
}

int hd_new(uv_loop_t *loop, struct config *cfg, struct hd **out)
{
	struct hd *hd = calloc(1, sizeof(*hd));
	struct bird_sync_cbs cbs = { .adopt = on_adopt, .log = on_sync_log };
	char err[512];
	int rc;

	if (!hd)
		return -ENOMEM;
	hd->loop = loop;
	hd->cfg = cfg;
	hd->started_wall = time(NULL);
	srandom((unsigned)getpid() ^ (unsigned)time(NULL));
	rc = check_engine_new(loop, &hd->engine);
	if (rc < 0)
		goto fail;
	rc = build_services(hd, cfg, &hd->svcs);
	if (rc < 0)
		goto fail;
	hd->n_svcs = cfg->n_services;
	for (size_t i = 0; i < hd->n_svcs; i++)
		adopt_from_file(hd, hd->svcs[i]);
	hd_intent_restore(hd);   /* before any verdict and before BIRD is told anything */
	rc = bird_sync_new(loop, cfg, &cbs, hd, &hd->sync);
	if (rc < 0)
		goto fail;
	rc = bird_fleet_new(loop, cfg, on_fleet, hd, &hd->fleet);
	if (rc < 0)
		goto fail;
	rc = ctl_server_new(hd, loop, cfg->control.socket, false, &hd->ctl, err, sizeof(err));
	if (rc == 0 && cfg->control.readonly_socket[0])
		rc = ctl_server_new(hd, loop, cfg->control.readonly_socket, true, &hd->ctl_ro,
				    err, sizeof(err));
	if (rc < 0) {
		log_err("%s", err);
		goto fail;
	}
	if (cfg->http.n_listen > 0) {
		rc = httpd_new(hd, loop, cfg, &hd->httpd, err, sizeof(err));
		if (rc < 0) {
			log_err("%s", err);
			goto fail;
		}
	}
	for (size_t i = 0; i < hd->n_svcs; i++)
		service_start_probes(hd->svcs[i]);
	uv_signal_init(loop, &hd->sig_term);
	uv_signal_init(loop, &hd->sig_int);
	uv_signal_init(loop, &hd->sig_hup);
	hd->sig_term.data = hd->sig_int.data = hd->sig_hup.data = hd;
	uv_signal_start(&hd->sig_term, on_signal, SIGTERM);
	uv_signal_start(&hd->sig_int, on_signal, SIGINT);
	uv_signal_start(&hd->sig_hup, on_signal, SIGHUP);
	uv_timer_init(loop, &hd->stop_timer);
	hd->stop_timer.data = hd;
	uv_timer_init(loop, &hd->maint_timer);
	hd->maint_timer.data = hd;
	uv_timer_start(&hd->maint_timer, maint_poll, 0, 1000);
	watchdog_start(hd);
	*out = hd;
	return 0;
fail:
	/* Partial start: close what exists and let the loop drain. */
	hd->stopping = true;
	for (size_t i = 0; i < hd->n_svcs; i++)
		service_free(hd->svcs[i]);
	free(hd->svcs);
	hd->svcs = NULL;
	hd->n_svcs = 0;
	if (hd->ctl)
		ctl_server_close(hd->ctl);
	if (hd->ctl_ro)
		ctl_server_close(hd->ctl_ro);
	if (hd->sync)
		bird_sync_close(hd->sync);
	if (hd->fleet)
		bird_fleet_close(hd->fleet);
	if (hd->engine)
		check_engine_close(hd->engine);
	cfg_free(hd->cfg);
	free(hd);
	return rc < 0 ? rc : -EINVAL;
}

static bool http_listen_changed(const struct config *a, const struct config *b)
{
	if (a->http.n_listen != b->http.n_listen)
		return true;
	for (size_t i = 0; i < a->http.n_listen; i++)
		if (strcmp(a->http.listen[i], b->http.listen[i]))
			return true;
	return false;
}

/* A running service that the new config lacks, with exactly the prefixes
 * of NEW, which the running config lacks: NEW is its new name. */
static struct hd_service *renamed_from(struct hd *hd, const struct config *ncfg,
				       const struct cfg_service *nsvc)
{
	for (size_t i = 0; i < hd->n_svcs; i++) {
		const struct cfg_service *o = hd->svcs[i]->svc.cfg;

		if (!cfg_service_find(ncfg, o->name) && o->n_prefixes &&
		    cfg_prefixes_equal(o->prefixes, o->n_prefixes, nsvc->prefixes, nsvc->n_prefixes))
			return hd->svcs[i];
	}
	return NULL;
}

int hd_reload(struct hd *hd, char *err, size_t errlen)
{
	struct config *ncfg = cfg_load(hd->cfg->path, err, errlen);
	struct hd_service **nv;

	hd->reloads++;
	if (ncfg && hd_lock_include(ncfg->bird.include, err, errlen) < 0) {
		cfg_free(ncfg);
		ncfg = NULL;
	}
	if (!ncfg) {
		hd->reload_failures++;
		snprintf(hd->last_reload_error, sizeof(hd->last_reload_error), "%s", err);
		return -EINVAL;
	}
	if (build_services(hd, ncfg, &nv) < 0) {
		snprintf(err, errlen, "out of memory");
		cfg_free(ncfg);
		return -ENOMEM;
	}
	for (size_t i = 0; i < ncfg->n_services; i++) {
		struct hd_service *old = find_service(hd, ncfg->services[i].name);

		if (old) {
			svc_migrate(&nv[i]->svc, &old->svc);
		} else if ((old = renamed_from(hd, ncfg, &ncfg->services[i]))) {
			/* The same prefixes under a new name: the state and the
			 * counters of equal checks carry over, and bird-glue keeps
			 * the old protocols until the new ones are up. */
			svc_migrate(&nv[i]->svc, &old->svc);
			hd_log(LOG_LVL_NOTICE, ncfg->services[i].name, NULL,
			       "reload: service %s renamed to %s (same prefixes): %s carried over",
			       old->svc.cfg->name, ncfg->services[i].name,
			       svc_state_str(old->svc.state));
		} else {
			adopt_from_file(hd, nv[i]);
		}
	}
	if (strcmp(ncfg->control.readonly_socket, hd->cfg->control.readonly_socket))
		log_warn("reload: control.readonly_socket changed to '%s'; it takes effect at restart",
			 ncfg->control.readonly_socket);
	if (strcmp(ncfg->control.socket, hd->cfg->control.socket))
		log_warn("reload: control.socket changed to %s; it takes effect at restart",
			 ncfg->control.socket);
	if (http_listen_changed(ncfg, hd->cfg))
		log_warn("reload: http.listen changed; it takes effect at restart");
	for (size_t i = 0; i < hd->n_svcs; i++)
		service_free(hd->svcs[i]);
	free(hd->svcs);
	/* Until the new services are in place, a callback the reconfigs below
	 * make at once (the fleet guard reports a round it could not start
	 * before returning) must find no service, not the freed ones. */
	hd->svcs = NULL;
	hd->n_svcs = 0;
	/* Old probes are closed and no longer point into the old config once
	 * check_destroy() returned; sync copies what it keeps. */
	bird_sync_reconfig(hd->sync, ncfg);
	bird_fleet_reconfig(hd->fleet, ncfg);
	cfg_free(hd->cfg);
	hd->cfg = ncfg;
	hd->svcs = nv;
	hd->n_svcs = ncfg->n_services;
	for (size_t i = 0; i < hd->n_svcs; i++) {
		service_start_probes(hd->svcs[i]);
		apply(hd->svcs[i], true);
	}
	hd->last_reload_error[0] = '\0';
	log_notice("reloaded %s: %zu services", ncfg->path, ncfg->n_services);
	return 0;
}

/* An operator's drain or undrain of one service, recorded as its intent. */
static void drain_one(struct hd_service *hs, bool on, uint64_t for_ms,
		      const struct hd_who *who, int64_t wall)
{
	struct svc_intent in = { .drained = on, .since_ms = wall, .uid = who->uid };
	const char *name = hs->svc.cfg->name;
	char what[400];

	in.until_ms = on && for_ms ? wall + (int64_t)for_ms : 0;
	snprintf(in.user, sizeof(in.user), "%s", who->user ? who->user : "");
	snprintf(in.reason, sizeof(in.reason), "%s", who->reason ? who->reason : "");
	svc_intent_set(&hs->svc, &in, hd_now_ms(hs->hd), wall);
	hd_intent_describe(&in, what, sizeof(what));
	hd_log(LOG_LVL_NOTICE, name, NULL, "service %s: %s requested %s", name,
	       on ? "drain" : "undrain", what);
	apply(hs, false);
}

int hd_drain(struct hd *hd, const char *service, bool on, uint64_t for_ms,
	     const struct hd_who *who, char *err, size_t errlen)
{
	struct hd_service *hs = service ? find_service(hd, service) : NULL;
	int64_t wall = hd_wall_ms();

	if (service && !hs)
		return -ENOENT;
	/* all or nothing: --all drains none when the guard refuses one */
	for (size_t i = 0; on && i < hd->n_svcs; i++) {
		struct svc *s = &hd->svcs[i]->svc;

		if ((hs && hd->svcs[i] != hs) || svc_guard_drain_check(s, err, errlen) == 0)
			continue;
		if (!who->force) {
			hd_log(LOG_LVL_WARNING, s->cfg->name, NULL, "service %s: drain refused: %s",
			       s->cfg->name, err);
			return -EBUSY;
		}
		hd_log(LOG_LVL_WARNING, s->cfg->name, NULL, "service %s: drain forced: %s",
		       s->cfg->name, err);
	}
	for (size_t i = 0; i < hd->n_svcs; i++)
		if (!hs || hd->svcs[i] == hs)
			drain_one(hd->svcs[i], on, for_ms, who, wall);
	hd_intent_save(hd);
	return 0;
}

int hd_check_now(struct hd *hd, const char *name, hd_check_cb cb, void *arg)
{
	const char *slash = strchr(name, '/');

	for (size_t i = 0; i < hd->n_svcs; i++) {
		struct hd_service *hs = hd->svcs[i];
		size_t sl = slash ? (size_t)(slash - name) : 0;

		if (slash && (strlen(hs->svc.cfg->name) != sl ||
			      strncmp(hs->svc.cfg->name, name, sl)))
			continue;
		for (size_t j = 0; j < hs->svc.n_checks; j++) {
			struct hd_probe *p = hs->probes[j];

			if (!p || strcmp(p->check->cfg->name, slash ? slash + 1 : name))
				continue;
			struct hd_waiter *w = calloc(1, sizeof(*w));
			if (!w)
				return -ENOMEM;
			w->cb = cb;
			w->arg = arg;
			w->next = p->waiters;
			p->waiters = w;
			if (!p->check->running)
				probe_fire(&p->timer);
			return 0;
		}
	}
	return -ENOENT;
}


static void close_all(struct hd *hd)
{
	if (hd->stopping)
		return;
	hd->stopping = true;
	sd_notify(0, "STOPPING=1");
	if (hd->ctl)
		ctl_server_close(hd->ctl);
	if (hd->ctl_ro)
		ctl_server_close(hd->ctl_ro);
	hd->ctl = hd->ctl_ro = NULL;
	httpd_close(hd->httpd);
	hd->httpd = NULL;
	hd_hooks_close(hd);
	for (size_t i = 0; i < hd->n_svcs; i++)
		service_free(hd->svcs[i]);
	free(hd->svcs);
	hd->svcs = NULL;
	hd->n_svcs = 0;
	bird_sync_close(hd->sync);
	hd->sync = NULL;
	bird_fleet_close(hd->fleet);
	hd->fleet = NULL;
	check_engine_close(hd->engine);
	hd->engine = NULL;
	uv_close((uv_handle_t *)&hd->sig_term, handle_closed_free);
	uv_close((uv_handle_t *)&hd->sig_int, handle_closed_free);
	uv_close((uv_handle_t *)&hd->sig_hup, handle_closed_free);
	uv_close((uv_handle_t *)&hd->maint_timer, handle_closed_free);
	uv_close((uv_handle_t *)&hd->watchdog, handle_closed_free);
	uv_close((uv_handle_t *)&hd->stop_timer, handle_closed_free);
}

/* The stop policy is done when every service that had one is withdrawn
 * and BIRD acknowledged it. */
static void stop_poll(uv_timer_t *t)
{
	struct hd *hd = t->data;
	bool done = bird_sync_idle(hd->sync);

	for (size_t i = 0; i < hd->n_svcs; i++) {
		const struct svc *s = &hd->svcs[i]->svc;

		if (s->cfg->on_stop != CFG_ON_STOP_KEEP && s->state != SVC_WITHDRAWN)
			done = false;
	}
	if (done) {
		log_notice("stop policy applied; exiting");
		close_all(hd);
	} else if (hd_now_ms(hd) >= hd->stop_deadline_ms) {
		log_err("stop policy not confirmed by BIRD in time; exiting anyway");
		close_all(hd);
	}
}

void hd_stop(struct hd *hd)
{
	uint64_t longest = 0, now = hd_now_ms(hd);

	if (hd->stopping)
		return;
	if (hd->stop_pending) {
		log_warn("second stop request: exiting without waiting for the stop policy");
		close_all(hd);
		return;
	}
	for (size_t i = 0; i < hd->n_svcs; i++) {
		struct hd_service *hs = hd->svcs[i];
		struct svc *s = &hs->svc;

		switch (s->cfg->on_stop) {
		case CFG_ON_STOP_KEEP:
			break;
		case CFG_ON_STOP_WITHDRAW: {
			enum svc_state old = s->state;

			if (svc_force(s, SVC_WITHDRAWN, "healthd stopping (on_stop: withdraw)",
				      now, time(NULL))) {
				hd_log(LOG_LVL_NOTICE, s->cfg->name, NULL,
				       "service %s: withdrawn: %s", s->cfg->name, s->reason);
				publish(hs);
				hd_hook_change(hd, s->cfg, old, s->state, s->reason);
			}
			hd->stop_pending = true;
			break;
		}
		case CFG_ON_STOP_DRAIN:
			svc_drain(s, true, 0, now);
			apply(hs, false);
			if (s->cfg->drain_ms > longest)
				longest = s->cfg->drain_ms;
			hd->stop_pending = true;
			break;
		}
	}
	if (!hd->stop_pending) {
		close_all(hd);
		return;
	}
	sd_notify(0, "STOPPING=1\nSTATUS=applying the stop policy");
	hd->stop_deadline_ms = now + longest + 2 * hd->cfg->bird.timeout_ms + 1000;
	uv_timer_start(&hd->stop_timer, stop_poll, 10, 10);
}

/* After the loop ended. */
void hd_free(struct hd *hd)
{
	cfg_free(hd->cfg);
	free(hd);
}
