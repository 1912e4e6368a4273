/*
 * bird-glue/ — the only part of healthd that talks to BIRD.
 *
 *   reply.c    pure parser of the control socket's numbered replies
 *   client.c   async control-socket client on libuv
 *   render.c   the include file healthd owns (atomic write)
 *   sync.c     makes BIRD's protocols match the desired states
 *   routes.c   pure parsers of routes and BGP sessions, for the guard
 *   fleet.c    the fleet guard's view: who else announces a service
 *
 * Replies are parsed by their four-digit codes only: "NNNN-text" opens a
 * block, " text" continues it, "NNNN text" ends the reply, "+text" is an
 * asynchronous log line (ignored). 0xxx ok, 1xxx rows, 2xxx headings,
 * 8xxx run-time error, 9xxx parse error.
 */
#ifndef HEALTHD_BIRD_H
#define HEALTHD_BIRD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "config/config.h"

/* ---- reply.c ---- */

#define BIRD_LINE_MAX 4096

struct bird_line {
	int code;       /* the code of the block this line belongs to */
	char *text;     /* without code, separator and newline */
};

struct bird_reply {
	int code;               /* the final line's code */
	char *text;             /* the final line's text */
	struct bird_line *lines;  /* every line, the final one included */
	size_t n_lines;
};

static inline bool bird_code_ok(int code) { return code >= 0 && code < 8000; }

struct bird_parser;

struct bird_parser *bird_parser_new(void);
void bird_parser_free(struct bird_parser *p);
void bird_parser_reset(struct bird_parser *p);
/*
 * Feed bytes. Every complete reply is passed to cb (the reply is valid
 * only during the call). Returns 0, or -EPROTO when the stream is not
 * BIRD's protocol (bad code, line too long, NUL byte): the caller must
 * drop the connection. The welcome "0001 ..." is a reply like any other.
 */
int bird_parser_feed(struct bird_parser *p, const char *buf, size_t len,
		     void (*cb)(void *arg, const struct bird_reply *r), void *arg);
/* After -EPROTO: what was wrong and what the peer sent, for the log. */
const char *bird_parser_error(const struct bird_parser *p);

enum bird_proto_state {
	BIRD_PROTO_UP,
	BIRD_PROTO_DOWN,        /* disabled, or down */
	BIRD_PROTO_START,
	BIRD_PROTO_STOP,
	BIRD_PROTO_OTHER,
};

struct bird_proto {
	char name[72];          /* BIRD allows 64 characters: never truncated */
	char proto[24];         /* "Static", "BGP", ... */
	enum bird_proto_state state;
	char info[64];          /* "Established", "" */
};

/* Rows of a `show protocols` reply (2002 heading, 1002 rows, 0000 end).
 * Returns the number of rows written (at most max), or -EPROTO. */
int bird_parse_protocols(const struct bird_reply *r, struct bird_proto *out,
			 size_t max, size_t *total);

/* ---- routes.c: what the fleet guard reads (pure) ---- */

#define BIRD_ROUTE_COMMUNITIES 32   /* more on one path are not looked at */
#define BIRD_FLEET_MAX 256          /* nodes of a fleet that are told apart */

/* One path of a prefix, as `show route PREFIX all` prints it. */
struct bird_route {
	char proto[72];         /* the protocol it came from */
	bool bgp;               /* "Type: BGP ..." */
	bool has_originator;
	uint32_t originator;    /* BGP.originator_id: set on reflected paths */
	struct cfg_community communities[BIRD_ROUTE_COMMUNITIES];
	size_t n_communities;   /* BGP.community and BGP.large_community */
};

/* The paths of a `show route PREFIX all` reply, 8001 (no path) included:
 * how many were written (at most max), or -EINVAL (an error reply), or
 * -EPROTO (not what BIRD prints). */
int bird_parse_routes(const struct bird_reply *r, struct bird_route *out, size_t max,
		      size_t *total);

/* A BGP protocol of `show protocols all`. */
struct bird_bgp_peer {
	char name[72];
	bool established;
	bool internal;          /* Local AS == Neighbor AS: iBGP */
	bool has_id;
	uint32_t neighbor_id;   /* "Neighbor ID": shown while the session is up */
};

int bird_parse_bgp_peers(const struct bird_reply *r, struct bird_bgp_peer *out, size_t max,
			 size_t *total);
/* "Router ID is A.B.C.D" of `show status`. 0, -EINVAL or -EPROTO. */
int bird_parse_router_id(const struct bird_reply *r, uint32_t *id);

/* Who a prefix's paths say announces it, by router id: a path from an
 * iBGP session is its BGP.originator_id's (reflected) or the neighbour's;
 * this node (self), static routes and eBGP paths are not counted; a node
 * whose paths all carry one of the draining communities is leaving. */
struct bird_announcers {
	uint32_t announcing[BIRD_FLEET_MAX];
	size_t n_announcing;
	uint32_t leaving[BIRD_FLEET_MAX];
	size_t n_leaving;
};
void bird_fleet_announcers(const struct bird_route *routes, size_t n,
			   const struct bird_bgp_peer *peers, size_t n_peers, uint32_t self,
			   const struct cfg_communities *draining, struct bird_announcers *out);

/* ---- client.c ---- */

struct bird_client;

/* err: 0, or -ETIMEDOUT (no reply within the timeout), -ENOTCONN (BIRD is
 * not reachable; the command was not sent), -ECONNRESET (connection lost
 * mid-command), -EPROTO (garbage). r is NULL when err != 0. A reply with
 * an 8xxx/9xxx code is err == 0 with r->code telling. */
typedef void (*bird_cmd_cb)(void *arg, int err, const struct bird_reply *r);
/* connected: the welcome was received. why: text for the log when not. */
typedef void (*bird_state_cb)(void *arg, bool connected, const char *why);

/*
 * Connects at once and reconnects with backoff (100ms doubling to 5s)
 * whenever the connection is lost. Commands are queued; one is in flight
 * at a time; each has timeout_ms. Commands queued while BIRD is down fail
 * with -ENOTCONN (the caller retries on reconnect, which it learns from
 * state_cb).
 */
int bird_client_new(uv_loop_t *loop, const char *socket_path,
		    uint64_t timeout_ms, bird_state_cb state_cb, void *state_arg,
		    struct bird_client **out);
int bird_client_send(struct bird_client *c, const char *cmd, bird_cmd_cb cb,
		     void *arg);
bool bird_client_connected(const struct bird_client *c);
/* A reply longer than bytes (0: no cap, the default) drops the connection
 * and fails its command with -EMSGSIZE; nothing of it is kept. */
void bird_client_set_reply_max(struct bird_client *c, size_t bytes);
/* Pending commands get -ECANCELED; handles closed; memory freed from the
 * loop. No callback runs after this returns. */
void bird_client_close(struct bird_client *c);

/* ---- render.c ---- */

struct bird_static {
	char name[96];                   /* healthd_<service>_v4 */
	int family;                      /* AF_INET or AF_INET6 */
	const struct cfg_prefix *prefixes; /* only those of this family are used */
	size_t n_prefixes;
	const struct cfg_communities *communities; /* NULL or the set to attach */
	bool disabled;
	const char *state;               /* NULL, or a word rendered as a
					    "# healthd-state: WORD" line in the
					    protocol, read back at start */
};

/* The include file's text; caller frees. */
char *bird_render_text(const struct bird_static *s, size_t n, const char *node);
/* Write atomically: PATH.tmp, fsync, rename, fsync dir. 0 or -errno; err
 * names the file and the system call that failed. */
int bird_render_write(const char *path, const struct bird_static *s, size_t n,
		      const char *node, char *err, size_t errlen);
/* Write TEXT to PATH the same way (PATH.tmp.PID, fsync, rename, fsync of
 * the directory); the old file stays on any failure. */
int bird_write_atomic(const char *path, const char *text, char *err, size_t errlen);

/* ---- sync.c: make BIRD match the desired announcements ---- */

/*
 * Per service, healthd states what it wants: withdrawn, or announced in
 * one of the states that carry communities (up, degraded, draining). Each
 * such state is a static protocol of its own (table.h), so a change of
 * state is `enable` of the new protocol, then `disable` of the old one:
 * the prefix never leaves the upstream on a community change, and
 * `configure` (which also applies whatever else the operator changed in
 * bird.conf) is sent only when the set of protocols changes.
 *
 * Commands go out at once; the include file follows from a thread of its
 * own and always states the desired state, so a BIRD `configure` or
 * restart keeps it. A reconcile pass (`show protocols "healthd_*"`, parsed
 * whole) every reconcile_ms and on every (re)connect repairs drift.
 * Nothing is sent before the first pass has told what BIRD has: that is
 * what healthd adopts. Every failure backs off, doubling to a cap.
 */
#define BIRD_PROTO_NAME_MAX 64      /* BIRD's own limit on a symbol */

struct bird_sync;

struct bird_sync_cbs {
	/* BIRD's state of a service at first contact: exists = every
	 * protocol of the service is there; announced = each family has one
	 * of them up, variant (enum cfg_comm_set) the state it announces. */
	void (*adopt)(void *arg, const char *service, bool exists, bool announced,
		      int variant);
	/* level: LOG-style 3 err, 4 warning, 5 notice, 6 info, 7 debug */
	void (*log)(void *arg, int level, const char *service, const char *msg);
};

struct bird_sync_stats {
	bool connected;
	bool adopted;
	uint64_t commands;
	uint64_t command_errors;
	uint64_t configures;
	uint64_t repairs;
	uint64_t render_errors;
	uint64_t purged;
	size_t protocols;           /* in the table, leaving ones included */
	size_t unknown;             /* healthd_* protocols BIRD runs, not ours */
	uint64_t backoff_ms;        /* the longest back-off now in force */
	char last_error[256];
	char problem[256];          /* what keeps BIRD from matching, "" if nothing */
};

/* One protocol of a service, for status. */
struct bird_proto_view {
	char name[BIRD_PROTO_NAME_MAX];
	const char *variant;        /* "up", "degraded", "draining" */
	bool want;                  /* desired enabled */
	bool leaving;
	const char *bird;           /* "up", "down", "missing", "unknown" */
};

int bird_sync_new(uv_loop_t *loop, const struct config *cfg,
		  const struct bird_sync_cbs *cbs, void *arg,
		  struct bird_sync **out);
/* Reload: new socket/include/services. Protocols not in cfg are disabled,
 * then dropped from the include file once BIRD no longer runs them. */
void bird_sync_reconfig(struct bird_sync *s, const struct config *cfg);
/* variant: enum cfg_comm_set, the state's communities; state: a word for
 * the include file's comment ("up", "degraded", ...). */
void bird_sync_set(struct bird_sync *s, const char *service, bool announce,
		   int variant, const char *state);
void bird_sync_stats(const struct bird_sync *s, struct bird_sync_stats *out);
/* True when nothing is pending: file written, BIRD acknowledged. */
bool bird_sync_idle(const struct bird_sync *s);
/* The service's protocols (at most max written); returns how many it has. */
size_t bird_sync_protocols(const struct bird_sync *s, const char *service,
			   struct bird_proto_view *out, size_t max);
/* True when BIRD runs what the service wants announced; else why says
 * what is missing ("BIRD does not run healthd_web_v4", ...). */
bool bird_sync_announcing(const struct bird_sync *s, const char *service,
			  char *why, size_t len);
/* The i-th healthd_* protocol BIRD runs that no service owns; NULL past
 * the end. */
const char *bird_sync_unknown(const struct bird_sync *s, size_t i, bool *up);
void bird_sync_close(struct bird_sync *s);

/* ---- fleet.c: the fleet guard's view of a service ---- */

struct bird_fleet;

struct bird_fleet_view {
	bool ok;                    /* BIRD answered the whole round */
	bool visible;               /* ok, and an iBGP session is Established */
	unsigned announcers;        /* other nodes announcing (the prefix with the fewest) */
	unsigned leaving;           /* other nodes announcing with a draining community */
	unsigned rank;              /* router ids known that are lower than this node's */
	unsigned members;           /* router ids known, this node's included */
	uint64_t asof_ms;           /* loop time the round began */
	char why[160];              /* !ok or !visible: why */
};
typedef void (*bird_fleet_cb)(void *arg, const char *service, const struct bird_fleet_view *v);

/* Asks BIRD every guard.interval (the shortest of the guarded services)
 * and calls cb once per guarded service after each round. Nothing is
 * asked when no service is guarded. */
int bird_fleet_new(uv_loop_t *loop, const struct config *cfg, bird_fleet_cb cb, void *arg,
		   struct bird_fleet **out);
void bird_fleet_reconfig(struct bird_fleet *f, const struct config *cfg);
/* A round now (or right after the one in flight). */
void bird_fleet_refresh(struct bird_fleet *f);
/* No callback runs after this returns; memory goes from the loop. */
void bird_fleet_close(struct bird_fleet *f);

/* ---- withdraw.c ---- */

/*
 * `healthd --withdraw-all`: writes the include file with every protocol of
 * cfg disabled, then disables in BIRD every healthd_* protocol it runs (its
 * own loop, at most timeout_ms). 0, or -errno with err saying what failed;
 * log gets each step.
 */
int bird_withdraw_all(const struct config *cfg, uint64_t timeout_ms,
		      void (*log)(int level, const char *msg), char *err, size_t errlen);

/*
 * Read the state healthd last wrote for SERVICE from the include file:
 * 1 and *state filled ("up", "withdrawn", ...) when found; 0 when the file
 * or the service is absent; -errno on a read error.
 */
int bird_sync_file_state(const char *include_path, const char *service,
			 char *state, size_t len);

#endif
