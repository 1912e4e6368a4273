/*
 * healthd/ — the daemon: scheduler, service state machine, reload, status
 * snapshot, control socket, and healthctl.
 *
 * Service states (the only place that decides):
 *
 *           checks rise & hold-down over & not suppressed
 *  WITHDRAWN ───────────────────────────────────────────> UP <──> DEGRADED
 *      ^  ^                                                │   (a `degrade` check down)
 *      │  └──────── a `withdraw` check falls ──────────────┤
 *      │                                                   │ drain request / maintenance file
 *      └──────────── drain time over ─────────── DRAINING <┘
 *
 * A check is UNKNOWN until it has `rise` successes or `fall` failures in a
 * row. While any `withdraw` check is UNKNOWN there is no verdict and the
 * service keeps the state it has (at start: the one adopted from BIRD), so
 * restarting healthd never moves a route by itself. A drain needs no
 * verdict: an announced service drains and is withdrawn after `drain`, a
 * withdrawn one stays withdrawn, whatever the checks say.
 *
 * The fleet guard (guard.min_announcers > 0, and a count of the other
 * announcers from this node's BIRD, struct svc_fleet): a failure that
 * would withdraw the service while fewer than min_announcers other nodes
 * announce it is held (DEGRADED, guarded); a withdrawn, failed service
 * that has seen no other announcer for rank * guard.step (at least one
 * guard.interval) re-announces DEGRADED, guarded; either is released (the
 * service withdrawn) once enough others announce or the count is unknown.
 * A drain, the maintenance file and the stop policy are never guarded.
 */
#ifndef HEALTHD_HEALTHD_H
#define HEALTHD_HEALTHD_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "checks/checks.h"
#include "config/config.h"

/* ---- log.c ---- */

enum log_level { LOG_LVL_ERR = 3, LOG_LVL_WARNING = 4, LOG_LVL_NOTICE = 5,
		 LOG_LVL_INFO = 6, LOG_LVL_DEBUG = 7 };

void hd_log_init(bool debug, bool journal);
/* service/check may be NULL; they become SERVICE=/CHECK= journal fields. */
void hd_log(enum log_level lvl, const char *service, const char *check,
	    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
#define log_err(...)    hd_log(LOG_LVL_ERR, NULL, NULL, __VA_ARGS__)
#define log_warn(...)   hd_log(LOG_LVL_WARNING, NULL, NULL, __VA_ARGS__)
#define log_notice(...) hd_log(LOG_LVL_NOTICE, NULL, NULL, __VA_ARGS__)
#define log_info(...)   hd_log(LOG_LVL_INFO, NULL, NULL, __VA_ARGS__)
#define log_debug(...)  hd_log(LOG_LVL_DEBUG, NULL, NULL, __VA_ARGS__)

/* ---- service.c: the state machine (pure: time is passed in) ---- */

enum svc_state { SVC_WITHDRAWN, SVC_UP, SVC_DEGRADED, SVC_DRAINING, SVC_STATES };
enum chk_state { CHK_UNKNOWN, CHK_UP, CHK_DOWN };

const char *svc_state_str(enum svc_state s);
const char *chk_state_str(enum chk_state s);
static inline bool svc_state_announced(enum svc_state s) { return s != SVC_WITHDRAWN; }

#define SVC_LATENCY_BUCKETS 13
/* Upper bounds of the latency buckets: 0.5ms ... 5s. */
extern const uint64_t svc_latency_bounds_us[SVC_LATENCY_BUCKETS];

struct svc_check {
	const struct cfg_check *cfg;
	enum chk_state state;
	unsigned successes;        /* consecutive */
	unsigned failures;         /* consecutive */
	bool have_result;
	struct check_result last;
	uint64_t last_ms;          /* when the last result came */
	time_t last_wall;
	uint64_t since_ms;         /* when state last changed */
	time_t since_wall;
	uint64_t probes, probes_failed;
	uint64_t overruns;         /* intervals skipped: the last probe still ran */
	/* Probe latency histogram: counts per bucket (not cumulative), the
	 * last one is +Inf; bounds in svc_latency_bounds_us. */
	uint64_t latency_hist[SVC_LATENCY_BUCKETS + 1];
	uint64_t latency_sum_us;
};

struct svc_event {
	time_t wall;
	enum svc_state from, to;
	char reason[160];
};

#define SVC_HISTORY 16

/* RFC 2439-style dampening of withdrawals caused by failures. */
struct svc_damp {
	double penalty;            /* decayed to penalty_ms */
	uint64_t penalty_ms;
	bool suppressed;
	uint64_t suppressed_since_ms;
};

#define SVC_REASON_MAX 200   /* bytes of an operator's reason for a drain */

/* What this node's BIRD shows of the rest of the fleet for a service
 * (bird-glue/fleet.c); the daemon passes it in with svc_fleet_set. */
struct svc_fleet {
	bool known;                /* a count to go by: BIRD answered, an iBGP
				      session is up (or the last answer is
				      recent enough to hold on to) */
	unsigned announcers;       /* other nodes announcing, those with the
				      draining communities not counted */
	unsigned leaving;          /* other nodes announcing with them */
	unsigned rank;             /* this node's router id among those known,
				      0 = the lowest */
	unsigned members;          /* router ids known, this node's included */
	uint64_t asof_ms;          /* loop time BIRD was last asked */
	uint64_t counted_ms;       /* loop time of the answer the count is from */
	char why[160];             /* !known: why not */
};

/* An operator's drain: who asked, why, until when. Kept across restarts
 * (intent.c) and shown in the status; not set by the stop policy. */
struct svc_intent {
	bool drained;
	int64_t since_ms;          /* wall clock, ms since the epoch */
	int64_t until_ms;          /* wall clock; 0 = until undrain */
	long uid;                  /* the control socket peer; -1 = not known */
	char user[64];             /* its name, "" when there is none */
	char reason[SVC_REASON_MAX + 1];
};

struct svc {
	const struct cfg_service *cfg;
	enum svc_state state;
	uint64_t since_ms;
	time_t since_wall;
	char reason[200];
	bool decided;              /* a verdict was made since start */

	struct svc_check *checks;
	size_t n_checks;
	/* How many checks are in each state, per on_fail: the verdict is
	 * O(1) per probe result however many checks a service has. */
	unsigned count[3][3];      /* [on_fail][chk_state] */

	bool drain_requested;      /* healthctl drain, or the stop policy */
	uint64_t drain_until_ms;   /* 0 = until undrain */
	struct svc_intent intent;
	bool maintenance;          /* maintenance file present */
	uint64_t draining_since_ms;
	uint64_t withdrawn_ms;     /* for hold_down */

	struct svc_damp damp;
	struct svc_fleet fleet;
	uint64_t zero_since_ms;    /* counted_ms of the first of the answers in a
				      row that showed no other announcer; 0 = not */
	bool guarded;              /* announced only because of the guard */
	bool fleet_wanted;         /* a withdrawal waits for a fresh count */
	uint64_t guard_holds;      /* times the guard kept the service announced */
	uint64_t transitions;
	struct svc_event history[SVC_HISTORY];
	size_t history_n;          /* total ever recorded */
};

int svc_init(struct svc *s, const struct cfg_service *cfg, uint64_t now_ms);
void svc_free(struct svc *s);
/* Adopt a state (from BIRD, or from the include file) before any verdict. */
void svc_adopt(struct svc *s, enum svc_state st, const char *why,
	       uint64_t now_ms, time_t wall);
/* Carry counters of unchanged checks and the service state over a reload. */
void svc_migrate(struct svc *to, const struct svc *from);
/* Record a probe result; true when the check's state changed. */
bool svc_check_result(struct svc *s, size_t idx, const struct check_result *r,
		      uint64_t now_ms, time_t wall);
/* Decide. Returns true when the state changed (reason filled in).
 * *wake_ms is set to when to evaluate again (0 = only on the next event). */
bool svc_evaluate(struct svc *s, uint64_t now_ms, time_t wall, uint64_t *wake_ms);
void svc_drain(struct svc *s, bool on, uint64_t for_ms, uint64_t now_ms);
/* An operator's drain or undrain (in->drained), now or restored at start:
 * records the intent and drains for what is left of in->until_ms. A
 * deadline already passed at wall_ms means undrained. Returns whether the
 * service is drained now. */
bool svc_intent_set(struct svc *s, const struct svc_intent *in, uint64_t now_ms,
		    int64_t wall_ms);
/* A new count of the fleet (time and counts passed in: still pure). */
void svc_fleet_set(struct svc *s, const struct svc_fleet *f);
/* Would a drain of s now leave fewer than guard.min_announcers other
 * announcers? 0, or -EBUSY and why says so. An unknown count never
 * refuses. */
int svc_guard_drain_check(const struct svc *s, char *why, size_t len);
/* An operator's or the stop policy's decision that overrides checks. */
bool svc_force(struct svc *s, enum svc_state to, const char *reason,
	       uint64_t now_ms, time_t wall);
double svc_penalty(const struct svc *s, uint64_t now_ms);
/* When a suppressed service may be announced again (0 = not suppressed). */
uint64_t svc_reuse_ms(const struct svc *s, uint64_t now_ms);
/* The communities a state carries: up; up + degraded; up + draining.
 * Returns how many were written (at most max). */
size_t svc_communities(const struct svc *s, enum svc_state st,
		       struct cfg_community *out, size_t max);


/* ---- daemon.c: the loop's owner (scheduler, reload, BIRD sync) ---- */

struct hd;
struct bird_sync;

/* Takes ownership of cfg. */
int hd_new(uv_loop_t *loop, struct config *cfg, struct hd **out);
/* Validate PATH in full and switch to it; on error the old config keeps
 * running and err says why. */
int hd_reload(struct hd *hd, char *err, size_t errlen);
/* Close every handle (after applying the on_stop policy); the loop then
 * ends by itself. */
void hd_stop(struct hd *hd);
/* Free what is left once the loop has ended. */
void hd_free(struct hd *hd);
/* Who asked for a drain or an undrain, and why; kept with the intent. */
struct hd_who {
	long uid;                  /* the control socket peer; -1 = not known */
	const char *user;          /* NULL or "": no name for the uid */
	const char *reason;        /* NULL: none given */
	bool force;                /* drain even what the fleet guard refuses */
};
/* service NULL: every service. 0, -ENOENT (no such service), -EBUSY (the
 * fleet guard refuses: a drain would leave too few announcers; err says
 * which service and how many; nothing was drained). */
int hd_drain(struct hd *hd, const char *service, bool on, uint64_t for_ms,
	     const struct hd_who *who, char *err, size_t errlen);
/* Probe now; cb gets the result (NULL: the check was removed meanwhile). */
typedef void (*hd_check_cb)(void *arg, const char *service, const char *check,
			    const struct check_result *r);
int hd_check_now(struct hd *hd, const char *name, hd_check_cb cb, void *arg);
const struct config *hd_config(const struct hd *hd);
uint64_t hd_now_ms(const struct hd *hd);

/* ---- intent.c: operator intent kept across restarts ---- */

/* Wall clock, ms since the epoch: deadlines that survive a restart. */
int64_t hd_wall_ms(void);
struct json_t;
/* One service's intent as the state file keeps it, and back (-EINVAL and
 * err names the field). */
struct json_t *svc_intent_json(const struct svc_intent *in);
int svc_intent_from_json(struct json_t *o, struct svc_intent *in, char *err, size_t errlen);
/* The state file's text, checked in full: the document, or NULL and err
 * says where it is wrong. */
struct json_t *hd_intent_parse(const char *text, size_t len, char *err, size_t errlen);
/* "by USER (uid N), until TIME, reason: TEXT" for logs (no "until" when
 * undrained). */
void hd_intent_describe(const struct svc_intent *in, char *buf, size_t len);

/* ---- status.c: one snapshot, several renderers ---- */

/* The snapshot: what healthctl status --json and GET /status print. */
struct json_t *hd_status(struct hd *hd);
/* The text table healthctl prints, from the snapshot. */
char *hd_status_text(struct json_t *snap);

/* ---- ctl_parse.c: the control protocol's pure parts ---- */

enum ctl_cmd { CTL_STATUS, CTL_VERSION, CTL_RELOAD, CTL_DRAIN, CTL_UNDRAIN, CTL_CHECK };
/*
 * Request lines:
 *   status | version | reload | check [SERVICE/]CHECK
 *   drain (SERVICE | --all) [DURATION] [force] [reason TEXT]
 *   undrain (SERVICE | --all) [reason TEXT]
 * TEXT is the rest of the line: at most SVC_REASON_MAX bytes of UTF-8
 * without control characters. A drain the fleet guard refuses is 409
 * unless `force` is given (older clients never send it: they are refused
 * as they were refused anything else, and healthctl exits 3).
 */
struct ctl_request {
	enum ctl_cmd cmd;
	const char *arg;           /* SERVICE, --all or [SERVICE/]CHECK, points into the line */
	bool all;                  /* drain/undrain --all */
	uint64_t for_ms;           /* drain SERVICE DURATION; 0 = until undrain */
	const char *reason;        /* NULL, or the text, points into the line */
	bool force;                /* drain ... force: past the fleet guard */
};
/* One request line (no newline), split in place. 0, or -EINVAL and err
 * says what was wrong; pure, so it can be fuzzed. */
int ctl_request_parse(char *line, struct ctl_request *req, char *err, size_t errlen);
/* Text safe to store and show (reasons, user names): 1..max bytes of
 * UTF-8, no control characters. 0, or -EINVAL and err says why. */
int ctl_text_check(const char *what, const char *s, size_t max, char *err, size_t errlen);

/* control.socket from the text of a config file, read tolerantly so that
 * healthctl finds healthd while the file is half edited: the YAML events
 * up to the first error, then a line scan (block or flow map, quoted or
 * plain value). 1 and the path in out, 0 when the file does not say,
 * -ENAMETOOLONG when it does not fit. */
int ctl_socket_scan(const char *text, size_t len, char *out, size_t outlen);

/* ---- control.c: the unix control socket ---- */

/*
 * Bounded against hostile or broken clients: one request at a time per
 * client (its next line is not read while a reply is queued or a probe is
 * owed), at most CTL_OUT_MAX bytes queued, a request line must arrive
 * whole within CTL_REQUEST_MS, a reply not taken within CTL_WRITE_MS drops
 * the client, and CTL_RESERVE of the slots are kept for operators (uid 0,
 * healthd's own uid or group, by SO_PEERCRED). A read-only socket serves
 * status and version only (403 for the rest).
 */
struct ctl_server;
int ctl_server_new(struct hd *hd, uv_loop_t *loop, const char *path, bool readonly,
		   struct ctl_server **out, char *err, size_t errlen);
void ctl_server_close(struct ctl_server *c);

/* ---- lock.c: one healthd per control socket and include file ---- */

/* flock control.socket.lock and bird.include.lock, or fail with "another
 * healthd (pid N) holds LOCKFILE: ..." in err. Call before anything touches
 * the socket or the file; the locks are the process's until it exits. */
int hd_lock_start(const struct config *cfg, char *err, size_t errlen);
/* Reload: move the include file's lock to a changed bird.include; on error
 * the old lock stays. Does nothing unless hd_lock_start took the locks. */
int hd_lock_include(const char *include, char *err, size_t errlen);

/* ---- metrics.c: Prometheus text exposition ---- */

/* The metrics page (malloc'ed, *len set), NULL when out of memory. */
char *hd_metrics(struct hd *hd, size_t *len);

/* ---- httpd.c: GET /health, /health/SERVICE, /status, /metrics ---- */

/*
 * libmicrohttpd in its epoll mode, driven from the loop (no thread): one
 * MHD daemon per http.listen address. /health is 200 with the node's state
 * word when every service is announced, else 503; the word is the worst
 * state of any service (withdrawn > draining > degraded > up).
 */
struct httpd;
int httpd_new(struct hd *hd, uv_loop_t *loop, const struct config *cfg,
	      struct httpd **out, char *err, size_t errlen);
/* Closes the listeners and every connection; memory goes with the handles. */
void httpd_close(struct httpd *h);
/* For tests: one daemon with no socket and no loop; the caller hands it
 * connections (MHD_add_connection) and runs it (MHD_run). */
struct MHD_Daemon;
int httpd_new_unbound(struct hd *hd, struct httpd **out, struct MHD_Daemon **mhd);
void httpd_free_unbound(struct httpd *h);

#endif
