/*
 * config/ — the YAML configuration of healthd.
 *
 * A struct config is immutable once loaded: a reload builds a new one and
 * swaps it in whole. Every error names FILE:LINE:COL and the key.
 */
#ifndef HEALTHD_CONFIG_H
#define HEALTHD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CFG_NAME_MAX 48 /* service and check names: [a-z0-9_] */
/* healthd_<service>_v4_degraded must fit BIRD's 63-character symbols */
#define CFG_SERVICE_NAME_MAX 43

/* The longest duration any key takes (8760h, 365 days): cfg_parse_duration
 * refuses more, so sums with a clock never overflow. Keys have their own,
 * smaller limits (config.c, check_keys.c). */
#define CFG_DURATION_MAX_MS (365ULL * 24 * 3600 * 1000)
/* `drain` and `healthctl drain --for`: 168h, a week of maintenance. */
#define CFG_DRAIN_MAX_MS (7ULL * 24 * 3600 * 1000)
/* penalty, suppress and reuse are at most this. */
#define CFG_DAMPENING_MAX 1000000.0
/* A unix socket path: sizeof(sockaddr_un.sun_path) - 1. */
#define CFG_UNIX_PATH_MAX 107

enum cfg_on_fail {
	CFG_ON_FAIL_WITHDRAW,
	CFG_ON_FAIL_DEGRADE,
	CFG_ON_FAIL_IGNORE,
};

enum cfg_on_stop {
	CFG_ON_STOP_KEEP,
	CFG_ON_STOP_DRAIN,
	CFG_ON_STOP_WITHDRAW,
};

/* The announcement states a service's communities are keyed by. */
enum cfg_comm_set {
	CFG_COMM_UP,
	CFG_COMM_DEGRADED,
	CFG_COMM_DRAINING,
	CFG_COMM_SETS,
};

struct cfg_prefix {
	int family;          /* AF_INET or AF_INET6 */
	uint8_t addr[16];    /* network byte order, host bits zero */
	uint8_t len;
	char text[64];       /* normalised, e.g. "192.0.2.10/32" */
};

struct cfg_community {
	bool large;          /* "A:B:C" */
	uint32_t v[3];       /* standard: v[0]:v[1] (each < 65536) */
};

struct cfg_communities {
	struct cfg_community *items;
	size_t n;
};

struct cfg_header {
	char *name;
	char *value;
};

/* An environment variable of an exec check: NAME is [A-Z_][A-Z0-9_]*. */
struct cfg_env {
	char *name;
	char *value;
};

/* A WireGuard peer that a check watches. */
struct cfg_wg_peer {
	char *name;                 /* NULL: shown by its key */
	char key[45];               /* base64, as in `wg show` */
	uint8_t raw[32];
};

/* One check. Fields not used by the check's type are zero/NULL. */
struct cfg_check {
	char *name;
	char *type;                 /* "http", "tcp", ... (checks/ registry) */
	unsigned line, col;         /* where the check is defined */

	uint64_t interval_ms;
	uint64_t timeout_ms;
	unsigned rise;
	unsigned fall;
	enum cfg_on_fail on_fail;

	/* http */
	char *url;
	int *expect_status;         /* default {200} */
	size_t n_expect_status;
	char *expect_body;          /* substring, NULL = any body */
	char *connect_to;           /* "host:port" or NULL */
	bool tls_verify;            /* default true */
	struct cfg_header *headers;
	size_t n_headers;
	char **redact_headers;      /* shown as ***; default Authorization, Cookie,
				       Proxy-Authorization */
	size_t n_redact_headers;

	/* tcp */
	char *host;
	uint16_t port;

	/* dns */
	char *qname;                /* the name asked for, no trailing dot ("." the root) */
	uint16_t qtype;             /* default 1 (A) */
	char *server;               /* normalised "IP:PORT", "[IPv6]:PORT"; default 127.0.0.1:53 */
	unsigned expect_rcode;      /* default 0 (NOERROR) */
	char *expect_answer;        /* substring of some answer's text, NULL = any */

	/* wireguard */
	char *interface;
	struct cfg_wg_peer *peers;  /* none listed: every peer present */
	size_t n_peers;
	unsigned min_peers;         /* 0: all listed, or all present */
	uint64_t max_handshake_age_ms; /* default 180s */
	uint64_t max_rx_idle_ms;    /* 0: off */
	char *uapi_dir;             /* default /var/run/wireguard */

	/* exec */
	char **command;             /* argv, NULL-terminated; [0] absolute */
	size_t n_command;
	struct cfg_env *env;        /* NAME: value, in file order */
	size_t n_env;
	char *working_directory;    /* default / */
	char *user;                 /* NULL: the user healthd runs as */
	unsigned uid, gid;          /* of user, resolved at load */
};

struct cfg_service {
	char *name;
	unsigned line, col;
	struct cfg_prefix *prefixes;
	size_t n_prefixes;
	struct cfg_communities communities[CFG_COMM_SETS];
	uint64_t drain_ms;          /* default 30s */
	uint64_t hold_down_ms;      /* default 5s */
	char *maintenance_file;     /* NULL = none */
	enum cfg_on_stop on_stop;   /* default keep */
	struct cfg_check *checks;
	size_t n_checks;
	char **on_change;           /* hook argv, NULL-terminated; NULL: none */
	size_t n_on_change;
	uint64_t on_change_timeout_ms; /* default 10s */
	/* RFC 2439-style: each failure withdrawal adds penalty, which halves
	 * every half_life; at suppress the service stays withdrawn until the
	 * penalty decays to reuse, or max_suppress has passed. */
	struct cfg_dampening {
		uint64_t half_life_ms;      /* default 60s, at least 1s */
		double suppress, reuse, penalty; /* 2500, 1000, 1000; reuse < suppress */
		uint64_t max_suppress_ms;   /* default 5m */
	} dampening;
	/* The fleet guard: a withdrawal that would leave fewer than
	 * min_announcers other nodes announcing the service (as this node's
	 * BIRD sees them over iBGP) is held, and a withdrawn node that sees
	 * none re-announces after rank * step. See healthd(8). */
	struct cfg_guard {
		unsigned min_announcers;    /* default 1; 0 = off */
		uint64_t step_ms;           /* default 2s; at least 3 * interval */
		uint64_t interval_ms;       /* default 500ms: how often BIRD is asked */
	} guard;
};

#define CFG_DEFAULT_TIMEOUT_MS 1000
struct cfg_defaults {
	uint64_t interval_ms;       /* 1s */
	uint64_t timeout_ms;        /* 1s; a check's is at most its interval
				       unless set explicitly */
	unsigned rise;              /* 2 */
	unsigned fall;              /* 2 */
};

struct config {
	char *path;
	char *node;                 /* default: host name */
	struct {
		char *socket;       /* /run/bird/bird.ctl */
		char *include;      /* /etc/bird/healthd.conf */
		uint64_t timeout_ms;   /* 2s */
		uint64_t reconcile_ms; /* 5s */
		bool purge;         /* disable healthd_* protocols no service owns */
	} bird;
	struct {
		char *socket;       /* /run/healthd/healthd.sock */
		char *readonly_socket; /* "": none; status and version only, mode 0666 */
	} control;
	char *state_dir;            /* /var/lib/healthd: operator intent */
	struct {
		char **listen;      /* "127.0.0.1:9110", "[::1]:9110" */
		size_t n_listen;
		unsigned per_source_limit; /* connections from one address; 256 */
	} http;
	struct cfg_defaults defaults;
	struct cfg_service *services;
	size_t n_services;
	char **warnings;            /* "FILE:LINE:COL: text", not fatal */
	size_t n_warnings;
};

#define CFG_HTTP_PER_SOURCE_DEFAULT 256u
#define CFG_HTTP_PER_SOURCE_MAX 512u    /* HTTP_CONN_LIMIT (http/server.h): all sources */

/* ---- config.c ---- */

/* Parse and validate PATH. On error returns NULL and writes
 * "FILE:LINE:COL: KEY: what is wrong" into err. */
struct config *cfg_load(const char *path, char *err, size_t errlen);
/* The same from a string; name is used in messages. */
struct config *cfg_load_string(const char *name, const char *yaml, size_t len,
			       char *err, size_t errlen);
void cfg_free(struct config *cfg);

/* drain, hold_down, dampening and on_stop as a service without them has. */
void cfg_service_defaults(struct cfg_service *s);
/* True when two checks have the same settings (a reload keeps counters). */
bool cfg_check_equal(const struct cfg_check *a, const struct cfg_check *b);
const struct cfg_service *cfg_service_find(const struct config *cfg,
					   const char *name);
/* The same set of prefixes, in any order. */
bool cfg_prefixes_equal(const struct cfg_prefix *a, size_t na,
			const struct cfg_prefix *b, size_t nb);
/* The type-specific keys a check type accepts, in printing order,
 * NULL-terminated; NULL for an unknown type. */
const char *const *cfg_check_keys(const char *type);

/* ---- check_keys.c ---- */

/* DNS type and rcode names ("A", "NXDOMAIN") of the dns check's qtype and
 * expect_rcode; NULL for a value the keys do not take. */
const char *cfg_dns_qtype_str(uint16_t qtype);
const char *cfg_dns_rcode_str(unsigned rcode);

/* ---- redact.c: secrets off every surface (status, logs, -t -v) ---- */

#define CFG_REDACTED "***"
/* The URL with the password of its user info replaced by CFG_REDACTED
 * ("http://user:***@host/"); a URL without one is copied as is. len of
 * strlen(url) + 4 always fits. Returns buf. */
const char *cfg_redact_url(const char *url, char *buf, size_t len);
/* True when header NAME of check k is shown as CFG_REDACTED: named in
 * redact_headers, case-insensitively. */
bool cfg_header_redacted(const struct cfg_check *k, const char *name);

/* ---- print.c ---- */

/* The normalised config: every key, defaults filled in, stable order. */
void cfg_print(FILE *out, const struct config *cfg);
/* "250ms", "2s", "5m", "1h" — the largest unit that divides exactly. */
void cfg_format_duration(char *buf, size_t len, uint64_t ms);
void cfg_format_community(char *buf, size_t len, const struct cfg_community *c);
const char *cfg_on_fail_str(enum cfg_on_fail f);
const char *cfg_on_stop_str(enum cfg_on_stop s);

/* ---- parse.c: value parsers, also used by healthctl ---- */

/* 0; -EINVAL: not a duration; -ERANGE: more than CFG_DURATION_MAX_MS. */
int cfg_parse_duration(const char *s, uint64_t *ms);
/* The same, and -ERANGE above max ms. */
int cfg_parse_duration_max(const char *s, uint64_t max, uint64_t *ms);
/* -EDOM: host bits set; p then holds the normalised prefix. */
int cfg_parse_prefix(const char *s, struct cfg_prefix *p);
int cfg_parse_community(const char *s, struct cfg_community *c);
bool cfg_name_valid(const char *s);
/* "host:port" or "[v6]:port", port 1..65535; ip_only rejects host names.
 * host gets the address without brackets. 0 or -EINVAL. */
int cfg_parse_hostport(const char *s, bool ip_only, char *host, size_t hostlen,
		       uint16_t *port);

#endif
