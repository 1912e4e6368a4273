/*
 * lg/ — meshlg, the looking glass of a mesh node (meshlg(8)): read-only
 * BGP queries against the node's own BIRD, for the mesh only.
 *
 *   conf.c     meshlg.yaml on config/'s strict walker (meshctl renders it)
 *   query.c    the typed queries: parsed from a request, rebuilt as the one
 *              BIRD command each stands for (the allowlist), never from
 *              the request's text
 *   parse.c    BIRD's replies to those commands into structs (pure)
 *   fleet.c    who announces each anycast service, and in which state,
 *              from the ADD-PATH routes of its prefixes (pure)
 *   json.c     birdwatcher-compatible JSON (what alice-lg reads), fleet JSON
 *   html.c     the page for people: server-rendered, every value escaped
 *   serve.c    the HTTP routes, the BIRD connection (`restrict` first), the
 *              cache that coalesces identical queries, the limits
 *   main.c     options, the loop, signals
 *
 * Data flow:
 *   request ──> source allowed? ──> token bucket ──> lg_query_parse()
 *       ──> cache (hit: reply; pending: wait with it; miss: send) ──> BIRD
 *       <── lg_parse_*() <── reply (byte cap, timeout) ──> json | html
 *
 * What reaches BIRD, on a connection of its own that has answered 0016 to
 * `restrict` (else nothing is sent and every query gets 503):
 *   restrict
 *   show status
 *   show protocols
 *   show protocols all
 *   show protocols all "NAME"          NAME one that `show protocols` listed
 *   show route for ADDRESS all
 *   show route PREFIX all
 *   show route protocol NAME all
 *   show route filtered protocol NAME all
 *   show route noexport NAME all
 *   show route count
 */
#ifndef HEALTHD_LG_LG_H
#define HEALTHD_LG_LG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <jansson.h>
#include <uv.h>

#include "bird-glue/bird.h"
#include "config/config.h"
#include "mesh/mesh.h"

#define LG_CONF_DEFAULT "/etc/healthd/meshlg.yaml"
#define LG_VERSION "meshlg " HEALTHD_VERSION

/* ---- conf.c ---- */

struct lg_service {
	char *name;
	struct mesh_prefixes prefixes;   /* what the fleet view asks BIRD about */
	struct cfg_communities communities[CFG_COMM_SETS];
};

struct lg_node {
	char *name;
	struct mesh_addr router_id;      /* its BIRD's, as render_bird.c writes it */
};

struct lg_conf {
	char *path;
	char *node;                      /* this node's name */
	char **listen;                   /* "IP:PORT" */
	size_t n_listen;
	struct mesh_prefixes allow;      /* sources that may ask; nothing else */
	char *bird_socket;
	uint64_t timeout_ms;             /* one query, from the request to its reply */
	uint64_t cache_ms;               /* identical queries share one reply this long */
	uint64_t rate, burst;            /* requests per second per source */
	uint64_t concurrency;            /* requests waiting for BIRD, all sources */
	uint64_t per_source;             /* connections per source */
	uint64_t reply_max;              /* bytes of one BIRD reply */
	struct lg_service *services;
	size_t n_services;
	struct lg_node *nodes;
	size_t n_nodes;
};

struct lg_conf *lg_conf_load(const char *path, char *err, size_t errlen);
struct lg_conf *lg_conf_load_string(const char *name, const char *yaml, size_t len,
				    char *err, size_t errlen);
void lg_conf_free(struct lg_conf *c);
/* true when ss (v4, v6 or v4-mapped) lies inside one of the allowed prefixes */
bool lg_conf_allowed(const struct lg_conf *c, const struct sockaddr_storage *ss);

/* ---- query.c ---- */

enum lg_kind {
	LG_Q_STATUS,
	LG_Q_PROTOCOLS,              /* show protocols */
	LG_Q_PROTOCOLS_ALL,          /* show protocols all: BGP details for alice-lg */
	LG_Q_PROTOCOL,               /* one protocol, all details */
	LG_Q_ROUTE_FOR,              /* the best match for an address */
	LG_Q_ROUTE_NET,              /* every path of exactly one prefix */
	LG_Q_ROUTES_PROTOCOL,
	LG_Q_ROUTES_FILTERED,
	LG_Q_ROUTES_NOEXPORT,
	LG_Q_COUNT,
	LG_Q_KINDS,
};

#define LG_NAME_MAX 64               /* BIRD's own limit on a symbol */

struct lg_query {
	enum lg_kind kind;
	char name[LG_NAME_MAX + 1];      /* a protocol; checked against BIRD's list */
	struct cfg_prefix net;           /* an address is a full-length prefix */
};

/* A value from a request into q; false with the reason (for the 400) in
 * why. Names: [A-Za-z_][A-Za-z0-9_]{0,63}. Addresses and prefixes: parsed,
 * host bits zero, printed back by inet_ntop. */
bool lg_query_name(struct lg_query *q, enum lg_kind kind, const char *text,
		   char *why, size_t whylen);
bool lg_query_net(struct lg_query *q, const char *text, char *why, size_t whylen);
/* The one BIRD command q stands for, from its parsed values only. */
void lg_query_command(const struct lg_query *q, char *out, size_t len);
/* Whether a command line is one of the shapes above (the tests' check,
 * and the last one before a line is sent). */
bool lg_command_allowed(const char *cmd);
const char *lg_kind_str(enum lg_kind k);
/* true when q names a protocol that BIRD must have listed */
static inline bool lg_query_has_name(const struct lg_query *q)
{
	return q->kind == LG_Q_PROTOCOL || q->kind == LG_Q_ROUTES_PROTOCOL ||
	       q->kind == LG_Q_ROUTES_FILTERED || q->kind == LG_Q_ROUTES_NOEXPORT;
}

/* ---- parse.c ---- */

#define LG_COMM_MAX 64

struct lg_route {
	char network[64];
	char type[24];               /* "unicast", "blackhole", "unreachable" */
	char from_protocol[LG_NAME_MAX + 8];
	char age[32];                /* as BIRD printed it */
	char learnt_from[48];        /* "from X" when BIRD showed it */
	char gateway[48];            /* "via X" */
	char interface[32];          /* "on IF" / "dev IF" */
	bool primary;
	int metric;                  /* the preference in "(100)" */
	char source[32];             /* "Type: BGP univ" -> "BGP univ" */
	/* BGP attributes, "" or 0 when absent */
	bool bgp;
	char origin[16];
	char as_path[256];
	char next_hop[96];
	char local_pref[16];
	char med[16];
	char originator_id[48];
	char cluster_list[128];
	uint32_t comm[LG_COMM_MAX][2];
	size_t n_comm;
	uint32_t large[LG_COMM_MAX][3];
	size_t n_large;
	char ext[LG_COMM_MAX][3][24];
	size_t n_ext;
};

struct lg_routes {
	struct lg_route *items;
	size_t n, cap;
	char table[32];              /* of the first route */
};

/* 0 (an 8001 "Network not found" is 0 with no routes) or -EPROTO/-ENOMEM. */
int lg_parse_routes(const struct bird_reply *r, struct lg_routes *out);
void lg_routes_free(struct lg_routes *rs);

struct lg_channel {
	char name[16];               /* "ipv4" */
	long imported, filtered, exported, preferred;
};

struct lg_protocol {
	char name[LG_NAME_MAX + 8];
	char proto[24];              /* "BGP", "Static" */
	char table[32];
	char state[16];              /* "up", "down", "start" */
	char since[32];
	char info[96];
	char description[128];
	char bgp_state[32];
	char neighbor_address[48];
	long neighbor_as;            /* 0 unknown */
	char neighbor_id[48];
	char last_error[128];
	struct lg_channel channels[2];
	size_t n_channels;
};

struct lg_protocols {
	struct lg_protocol *items;
	size_t n, cap;
};

/* Rows (2002 heading, 1002 rows) and, for `all`, their 1006 details. */
int lg_parse_protocols(const struct bird_reply *r, struct lg_protocols *out);
void lg_protocols_free(struct lg_protocols *ps);
const struct lg_protocol *lg_protocols_find(const struct lg_protocols *ps, const char *name);

struct lg_status {
	char version[32], router_id[48], hostname[64];
	char server_time[32], last_reboot[32], last_reconfig[32];
	char message[96];
};

int lg_parse_status(const struct bird_reply *r, struct lg_status *out);

struct lg_count {
	long routes, networks, tables;   /* the 0014 "Total: ..." line */
	char text[512];                  /* every line, one per row */
};

int lg_parse_count(const struct bird_reply *r, struct lg_count *out);

/* ---- fleet.c ---- */

enum lg_fleet_state { LG_FLEET_UP, LG_FLEET_DEGRADED, LG_FLEET_DRAINING, LG_FLEET_UNKNOWN };

struct lg_fleet_row {
	const char *service;
	char node[LG_NAME_MAX + 8];      /* a node's name, or its router id when unknown */
	char prefix[64];
	enum lg_fleet_state state;
	char via[LG_NAME_MAX + 8];       /* the protocol BIRD has it from */
	char how[16];                    /* "local", "peer", "reflected" */
	bool primary;
};

struct lg_fleet {
	struct lg_fleet_row *rows;
	size_t n, cap;
};

/* Add the rows of one prefix of service s from routes (a `show route
 * PREFIX all` reply on node `self`). Sorted and deduplicated by
 * lg_fleet_finish. 0 or -ENOMEM. */
int lg_fleet_add(struct lg_fleet *f, const struct lg_conf *c, const struct lg_service *s,
		 const struct lg_routes *routes);
void lg_fleet_finish(struct lg_fleet *f);
void lg_fleet_free(struct lg_fleet *f);
const char *lg_fleet_state_str(enum lg_fleet_state s);

/* ---- json.c ---- */

/* The birdwatcher envelope: api {Version, result_from_cache, cache_status
 * {cached_at {date, timezone_type, timezone}}} and ttl, in UTC. */
json_t *lg_json_envelope(bool from_cache, int64_t cached_at_s, int64_t ttl_s);
json_t *lg_json_status(const struct lg_status *s);
/* {"protocols": {NAME: {...}}}; only_bgp for /protocols/bgp */
json_t *lg_json_protocols(const struct lg_protocols *ps, bool only_bgp);
json_t *lg_json_protocols_short(const struct lg_protocols *ps);
json_t *lg_json_routes(const struct lg_routes *rs);
json_t *lg_json_count(const struct lg_count *c);
json_t *lg_json_fleet(const struct lg_fleet *f, const struct lg_conf *c);

/* ---- html.c ---- */

/* s with & < > " ' as entities, and every byte that is not printable
 * UTF-8 as U+FFFD, into f. */
void lg_html_escape(FILE *f, const char *s);
void lg_html_head(FILE *f, const char *node, const char *title);
void lg_html_foot(FILE *f);
void lg_html_status(FILE *f, const struct lg_status *s);
void lg_html_protocols(FILE *f, const struct lg_protocols *ps);
void lg_html_routes(FILE *f, const char *what, const struct lg_routes *rs);
void lg_html_fleet(FILE *f, const struct lg_fleet *fl);
void lg_html_form(FILE *f, const char *net);
void lg_html_error(FILE *f, const char *msg);

/* ---- serve.c ---- */

struct lg;

int lg_start(uv_loop_t *loop, const struct lg_conf *conf, struct lg **out,
	     char *err, size_t errlen);
/* Cancels every query (their requests get 503), closes the listeners and
 * the BIRD connection; the loop then runs out. */
void lg_stop(struct lg *lg);
/* After the loop has run out. */
void lg_free(struct lg *lg);

#endif
