/* healthd/ private: the daemon's state, shared by daemon.c, status.c,
 * control.c and intent.c only. */
#ifndef HEALTHD_INTERNAL_H
#define HEALTHD_INTERNAL_H

#include <uv.h>

#include "bird-glue/bird.h"
#include "healthd/healthd.h"

struct hd_waiter {
	hd_check_cb cb;
	void *arg;
	struct hd_waiter *next;
};

struct hd_probe {
	uv_timer_t timer;
	uint64_t due_ms;           /* loop time the timer should fire next */
	struct hd *hd;
	struct hd_service *svc;    /* NULL once detached by a reload */
	size_t idx;
	struct check *check;
	struct hd_waiter *waiters; /* healthctl check NAME */
};

struct hd_service {
	struct svc svc;
	uv_timer_t wake;           /* hold-down, drain and suppression ends */
	struct hd_probe **probes;
	struct hd *hd;
};

/* How late probe timers fire: log-linear µs buckets, 8 per power of two,
 * so p50/p99 cost no memory per probe and stay within 12.5%. */
#define HD_LATE_BUCKETS 216
struct hd_lateness {
	uint64_t count[HD_LATE_BUCKETS];
	uint64_t samples, max_us;
};

void hd_lateness_add(struct hd_lateness *l, uint64_t us);

/* hooks.c: a service's on_change command, queued per service. */
struct hd_hook_queue;
/* After a state change (and after BIRD was told): queue the service's hook. */
void hd_hook_change(struct hd *hd, const struct cfg_service *s, enum svc_state from,
		    enum svc_state to, const char *reason);
/* At stop: per service, the running hook (or the next in line) runs to its
 * end, bounded by on_change_timeout; the others are dropped. */
void hd_hooks_close(struct hd *hd);

/* intent.c: the state file's writer. */
struct hd_intent_io {
	bool busy;                 /* a write is in the thread pool */
	bool dirty;                /* intent changed since the last write began */
	unsigned failures;         /* in a row */
	uint64_t retry_ms;         /* loop time of the next attempt after a failure */
};
/* At start, before the first verdict: the drains that were in force. */
void hd_intent_restore(struct hd *hd);
/* After a drain or undrain: write the state file (off the loop). */
void hd_intent_save(struct hd *hd);
/* Once a second: retry a failed write when its delay is over. */
void hd_intent_tick(struct hd *hd);

struct hd {
	uv_loop_t *loop;
	struct config *cfg;
	struct check_engine *engine;
	struct bird_sync *sync;
	struct bird_fleet *fleet;  /* the fleet guard's view of BIRD's routes */
	struct hd_service **svcs;
	size_t n_svcs;
	struct ctl_server *ctl;
	struct ctl_server *ctl_ro;  /* control.readonly_socket, or NULL */
	struct httpd *httpd;       /* NULL without http.listen */
	uv_signal_t sig_term, sig_int, sig_hup;
	uv_timer_t maint_timer;    /* polls maintenance files */
	uv_timer_t watchdog;       /* WATCHDOG=1 to systemd, when it asks */
	bool stopping;             /* handles are being closed */
	bool stop_pending;         /* applying on_stop before closing */
	uv_timer_t stop_timer;
	uint64_t stop_deadline_ms;
	bool ready;                /* first BIRD sync done */
	time_t started_wall;
	uint64_t reloads, reload_failures;
	struct hd_lateness lateness;
	struct hd_intent_io intent;
	struct hd_hook_queue *hooks; /* services with a hook running or queued */
	char last_reload_error[512];
};

#endif
