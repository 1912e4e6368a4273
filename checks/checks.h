/*
 * checks/ — probes. A check only reports results; it never decides.
 *
 * Each type is one file exporting one `const struct check_ops`; checks.c
 * holds the only registry. A probe is started with check_start() and ends
 * in exactly one call of the check's done callback, always from the loop
 * (never from inside check_start()), unless it is cancelled first.
 */
#ifndef HEALTHD_CHECKS_H
#define HEALTHD_CHECKS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>
#include <uv.h>

#include "config/config.h"

enum check_reason {
	CHECK_OK = 0,
	CHECK_TIMEOUT,       /* no answer within the check's timeout */
	CHECK_REFUSED,       /* connection refused */
	CHECK_UNREACHABLE,   /* no route, host unreachable */
	CHECK_DNS,           /* name did not resolve */
	CHECK_TLS,           /* handshake or certificate failed */
	CHECK_STATUS,        /* HTTP status not in expect_status, DNS rcode not expect_rcode */
	CHECK_BODY,          /* expect_body, or a DNS expect_answer, not found */
	CHECK_PROTOCOL,      /* malformed reply */
	CHECK_IO,            /* other socket/transfer error */
	CHECK_INTERNAL,      /* could not start the probe */
	CHECK_EXIT,          /* an exec check's command exited non-zero or was killed */
	CHECK_REASONS,
};

/* "ok", "timeout", "refused", ... (a table, like relayd's). */
const char *check_reason_str(enum check_reason r);

struct check_result {
	enum check_reason reason;   /* CHECK_OK = passed */
	uint64_t latency_us;        /* start to end of the probe */
	int http_status;            /* 0 when none */
	char detail[160];           /* for people: "status 503", "connect to 127.0.0.1:80 refused" */
};

struct check;
struct check_engine;
struct json_t;

typedef void (*check_done_cb)(struct check *c, const struct check_result *r,
			      void *arg);

struct check_ops {
	const char *type;
	/* Allocate type state into c->priv; 0 or -errno. */
	int (*init)(struct check *c);
	/* Begin one probe; report with check_report(). 0 or -errno. */
	int (*start)(struct check *c);
	/* Abort the probe in flight, if any, without reporting. */
	void (*cancel)(struct check *c);
	/* Free c->priv and, once every handle is closed, call check_freed(c).
	 * NULL: free(c->priv) and call check_freed(c) at once. */
	void (*destroy)(struct check *c);
	/* Optional: add type-specific state (per-peer liveness, ...) to the
	 * check's object in the status snapshot. */
	void (*status)(const struct check *c, struct json_t *obj);
};

struct check {
	const struct check_ops *ops;
	const struct cfg_check *cfg;   /* owned by the config */
	struct check_engine *engine;
	check_done_cb done;
	void *arg;
	void *priv;
	bool running;                  /* a probe is in flight */
	uint64_t started_us;           /* when the probe in flight began */
	unsigned skipped;              /* starts refused while the probe ran */
	bool closing;
};

/* ---- checks.c ---- */

const struct check_ops *check_ops_find(const char *type);
/* NULL-terminated list of every registered type name. */
const char *const *check_types(void);

/* One engine per loop: the shared curl multi handle and its libuv glue. */
int check_engine_new(uv_loop_t *loop, struct check_engine **out);
/* Close the engine's handles; engine memory is freed from the loop.
 * Every check must be destroyed first. */
void check_engine_close(struct check_engine *e);
uv_loop_t *check_engine_loop(struct check_engine *e);

int check_new(struct check_engine *e, const struct cfg_check *cfg,
	      check_done_cb done, void *arg, struct check **out);
/* Start a probe; -EBUSY when one is in flight (counted in c->skipped: the
 * result of the probe that overran says how many starts it cost). */
int check_start(struct check *c);
void check_cancel(struct check *c);
/* The type's status hook, if any. */
void check_status(const struct check *c, struct json_t *obj);
/* Cancel and free; memory goes once the check's handles are closed. */
void check_destroy(struct check *c);

/* Bytes of S that are not UTF-8 become '?' (S stays NUL-terminated). */
void check_detail_clean(char *s);
/* For check types: end the probe in flight with a result. The latency is
 * filled in from started_us. */
void check_report(struct check *c, enum check_reason reason, int http_status,
		  const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* For check types: the destroy hook's last act. */
void check_freed(struct check *c);
/* Monotonic microseconds (one clock for every probe). */
uint64_t check_now_us(void);
/* Wall-clock time (CLOCK_REALTIME), only for times that come from outside
 * as wall clock (a WireGuard handshake); never to measure a duration. */
void check_wall_now(struct timespec *ts);
/* For tests: replace either clock (a NULL member: the real one); NULL
 * restores both. */
struct check_clock {
	uint64_t (*now_us)(void);
	void (*wall)(struct timespec *ts);
};
void check_set_clock(const struct check_clock *clk);
/* For curl_uv.c: the engine's curl half. */
/* The shard of the engine's curl state that EASY belongs to. */
struct check_curl *check_engine_curl(struct check_engine *e, const void *easy);

/* ---- curl_uv.c: libcurl multi_socket driven by libuv ---- */

struct CURLM;
/* Add easy handles with check_curl_add(). */
/* Add an easy handle; on completion cb(easy, CURLcode, arg) runs from
 * the loop. */
typedef void (*check_curl_done_cb)(void *easy, int curlcode, void *arg);
int check_curl_add(struct check_engine *e, void *easy, check_curl_done_cb cb,
		   void *arg);
void check_curl_remove(struct check_engine *e, void *easy);
/* For checks.c: the engine's multi handle and its libuv handles. */
struct check_curl;
int check_curl_new(uv_loop_t *loop, struct check_curl **out);
/* Every easy handle must be removed first; memory goes from the loop. */
void check_curl_close(struct check_curl *cc);

/* ---- check_http.c, check_tcp.c, check_exec.c ---- */

extern const struct check_ops check_http_ops;
extern const struct check_ops check_tcp_ops;
extern const struct check_ops check_exec_ops;

/* ---- spawn.c: child processes for exec checks and hooks ----
 *
 * The child gets a session and process group of its own, stdin from
 * /dev/null, stdout and stderr on one socket (the first line kept, the rest
 * read and dropped), an environment of PATH and the caller's strings only.
 * At the timeout the group gets SIGTERM, one second later SIGKILL. The
 * callback runs once, from the loop, when the child has exited and its
 * output ended; the child is always reaped. */

#define CHECK_SPAWN_LINE_MAX 200
#define CHECK_SPAWN_PATH "PATH=/usr/sbin:/usr/bin:/sbin:/bin"

struct check_spawn_opts {
	char *const *argv;          /* argv[0] an absolute path */
	char *const *env;           /* NAME=value, NULL-terminated; NULL: none */
	const char *cwd;            /* NULL: / */
	bool set_user;              /* run as uid/gid (needs root) */
	unsigned uid, gid;
	uint64_t timeout_ms;
};

struct check_spawn_result {
	int pid;
	int exit_status;            /* -1 when killed by a signal */
	int term_signal;
	bool timed_out;             /* the group was killed at the timeout */
	uint64_t output_bytes;
	char line[CHECK_SPAWN_LINE_MAX + 1]; /* the first line, without its newline */
};

struct check_spawn;
typedef void (*check_spawn_cb)(const struct check_spawn_result *r, void *arg);
/* 0 or a negative UV error (nothing started, no callback). */
int check_spawn(uv_loop_t *loop, const struct check_spawn_opts *o, check_spawn_cb cb,
		void *arg, struct check_spawn **out);
/* No callback after this; the group is killed and reaped from the loop. */
void check_spawn_cancel(struct check_spawn *s);
/* "exit 1", "killed by signal 9", "timed out, process group killed". */
const char *check_spawn_describe(const struct check_spawn_result *r, char *buf, size_t len);

/* ---- check_dns.c: one query per probe, c-ares on the loop ---- */

extern const struct check_ops check_dns_ops;

/* ---- check_wireguard.c, wg_uapi.c, wg_netlink.c: WireGuard peers ----
 *
 * A probe reads the interface's peers through one of two backends: the
 * userspace UAPI socket DIR/IFACE.sock when it exists, else the kernel's
 * generic netlink family. Each reads once, then calls back from the loop
 * with the device (err 0) or -errno and a line for people. */

extern const struct check_ops check_wireguard_ops;

#define CHECK_WG_KEY_LEN 32
#define CHECK_WG_MAX_PEERS 4096    /* a reply with more is refused */

struct check_wg_peer {
	uint8_t key[CHECK_WG_KEY_LEN];
	struct sockaddr_storage endpoint;  /* ss_family 0: none */
	int64_t handshake_sec;             /* wall clock; 0: never */
	uint32_t handshake_nsec;
	uint64_t rx_bytes, tx_bytes;
	uint16_t keepalive_s;
};

struct check_wg_device {
	struct check_wg_peer *peers;
	size_t n_peers, cap;
};

/* The peer with this key, added (zeroed but for the key) if absent, so
 * peers split across messages merge; NULL when out of memory or over
 * CHECK_WG_MAX_PEERS. */
struct check_wg_peer *check_wg_device_peer(struct check_wg_device *d,
					   const uint8_t key[CHECK_WG_KEY_LEN]);
void check_wg_device_clear(struct check_wg_device *d);

/* err: 0 (dev valid until return), -ENOENT (no such UAPI socket),
 * -ECONNREFUSED (stale socket), -ENODEV (no such interface),
 * -EPFNOSUPPORT (no wireguard family in the kernel), -EPROTO (malformed
 * reply), other -errno. */
typedef void (*check_wg_cb)(void *arg, int err, const char *detail,
			    const struct check_wg_device *dev);

/* wg_uapi.c: one `get=1` reply (through its blank line) into dev. 0;
 * -EPROTO (err names the line), or -EREMOTEIO for a reply of errno=N != 0. */
int check_wg_uapi_parse(const char *buf, size_t len, struct check_wg_device *dev,
			char *err, size_t errlen);
struct check_wg_uapi;
/* Connect to path, send get=1, read the reply. 0 or -errno. */
int check_wg_uapi_get(uv_loop_t *loop, const char *path, check_wg_cb cb,
		      void *arg, struct check_wg_uapi **out);
/* No callback after this; memory goes from the loop. */
void check_wg_uapi_cancel(struct check_wg_uapi *u);

/* wg_netlink.c: WG_CMD_GET_DEVICE as a dump, via libnl-genl-3. */
struct check_wg_nl;
struct nl_sock;
int check_wg_nl_get(uv_loop_t *loop, const char *ifname, check_wg_cb cb,
		    void *arg, struct check_wg_nl **out);
void check_wg_nl_cancel(struct check_wg_nl *n);
/* One WG_CMD_GET_DEVICE reply message (struct nlmsghdr on, len bytes)
 * merged into dev by peer key, as the dump reads it. 0; or -EPROTO /
 * -ENOMEM with err set. */
int check_wg_nl_parse(const void *msg, size_t len, struct check_wg_device *dev,
		      char *err, size_t errlen);
/* For tests: called with each new socket once it is connected, to
 * override its send and receive (nl_cb_overwrite_send/recv); NULL: none. */
void check_wg_nl_set_socket_hook(void (*hook)(struct nl_sock *sk, void *arg),
				 void *arg);

#endif
