/*
 * meshd/state.h — meshd's state in SQLite: enrolled nodes, enrolment
 * tokens and the audit log (spec: meshd-api.md, "SQLite schema").
 *
 *   state.c   open/schema, tokens, enrolment, credentials, nodes, audit
 *
 * One connection, prepared statements kept open; WAL, synchronous=FULL,
 * so what a call reports as done is on disk. Secrets (tokens, node
 * credentials) are 32 random bytes as 64 lowercase hex characters; only
 * their sha256 (hex) is stored, and they appear in no audit row. Nothing
 * is ever deleted (triggers refuse it): a token is redeemed, a node is
 * disabled.
 *
 *   token_create ──> tokens(hash, node, expires_at)      audit token_created
 *                    (an enrolled node: only with replace)
 *   token_revoke ──> expires_at = now                    audit token_revoked
 *   enroll(token) ─> BEGIN IMMEDIATE
 *                      classify the token (unknown/expired/redeemed/other node),
 *                      node disabled? key or tunnel address held by another node?
 *                      UPDATE tokens ... WHERE redeemed_at IS NULL AND expires_at>now
 *                      (or, redeemed < MSTATE_RETRY_S ago with this key: a retry,
 *                       the credential replaced, audit enroll_retry)
 *                      node upsert (new key + credential; tunnel addresses stay)
 *                      audit enrolled | refused
 *                      the node's other open tokens expire now (tokens_voided)
 *                    COMMIT                                  ──> credential, once
 *   node_by_credential ──> the node (never a disabled one)
 *
 * Every function returns 0 on success or a negative errno value with err
 * set: -EIO for SQLite errors (the text names the operation and carries
 * sqlite3_errmsg), -EBUSY when another process held the database lock
 * for longer than MSTATE_BUSY_MS (SQLITE_BUSY, SQLITE_LOCKED; err is
 * "state PATH: busy (another process holds the database lock)"; nothing
 * changed, the call may be tried again), -EINVAL for bad arguments.
 * Those returning a JSON list return NULL with the same err. Times are
 * unix seconds, passed in by the caller (tests run the clock).
 */
#ifndef HEALTHD_MESHD_STATE_H
#define HEALTHD_MESHD_STATE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"

#define MSTATE_SCHEMA_VERSION 2         /* PRAGMA user_version; 1 is updated */
#define MSTATE_SECRET_HEX 64            /* a token or a credential, without NUL */
#define MSTATE_NAME_MAX CFG_NAME_MAX    /* node names: [a-z0-9_], as the inventory's */
#define MSTATE_TEXT_MAX 64              /* a public key, an address, with NUL */
#define MSTATE_TTL_MIN 60               /* a token lives 60 s .. 30 days */
#define MSTATE_TTL_MAX (30 * 86400)
#define MSTATE_RETRY_S 600              /* an enrolment may be repeated this long */
/* sqlite3_busy_timeout: how long a call waits for a lock another process
 * holds (a sqlite3 shell, a backup) before it returns -EBUSY. meshd's one
 * event loop waits with it: 100 ms is far above what one of its own
 * transactions holds the lock (a few fsyncs), and short enough that a
 * foreign lock costs the other requests a stall of that much, not 5 s. */
#define MSTATE_BUSY_MS 100

struct mstate;

/* Why a token or an enrolment is refused; MSTATE_OK when it is not. */
enum mstate_refusal {
	MSTATE_OK = 0,
	MSTATE_TOKEN_UNKNOWN,
	MSTATE_TOKEN_EXPIRED,
	MSTATE_TOKEN_REDEEMED,
	MSTATE_TOKEN_OTHER_NODE,        /* issued for another node */
	MSTATE_NODE_DISABLED,
	MSTATE_KEY_TAKEN,               /* the public key is another node's */
	MSTATE_ADDRESS_TAKEN,           /* a tunnel address is another node's */
};

/* "unknown", "expired", "already redeemed", "issued for another node",
 * "node disabled", "public key taken", "tunnel address taken". */
const char *mstate_refusal_str(enum mstate_refusal why);

/* An enrolled node's row. Empty strings for NULL columns; disabled_at 0
 * while the node is enabled. */
struct mstate_node {
	char name[MSTATE_NAME_MAX];
	char public_key[MSTATE_TEXT_MAX];
	char external_ip[MSTATE_TEXT_MAX];
	char tunnel_ipv4[MSTATE_TEXT_MAX];
	char tunnel_ipv6[MSTATE_TEXT_MAX];
	int64_t enrolled_at, disabled_at;
};

/* What an enrolment asks for. tunnel_ipv4/6, external_ip and source may
 * be NULL. The caller has checked the key and the addresses against the
 * inventory; the state checks that no other node holds them. */
struct mstate_enroll_req {
	const char *token;              /* 64 hex, as sent */
	const char *node;               /* the token's node (mstate_token_node) */
	const char *public_key;
	const char *external_ip;
	const char *tunnel_ipv4, *tunnel_ipv6;
	const char *source;             /* the request's source address, for the audit */
};

/* "2026-12-01T18:00:00Z"; buf of at least 21 bytes. */
void mstate_time_str(int64_t t, char *buf, size_t len);

/* Open (create, mode 0600, with the schema) the database at path; an
 * existing one wider than 0600 is made 0600 (mstate_warning says so). A
 * schema newer than this code knows is refused. */
int mstate_open(const char *path, struct mstate **out, char *err, size_t errlen);
void mstate_close(struct mstate *st);
/* What mstate_open changed that the operator should hear of, for the
 * caller's log, or NULL: "state PATH: mode was 0644, set to 0600" for the
 * database and for a -wal or -shm file left beside it whose mode gave
 * more than 0600 (each fixed with fchmod before SQLite reads it). */
const char *mstate_warning(const struct mstate *st);

/* ---- tokens ---- */

/*
 * A new token for node, valid ttl_s seconds from now (MSTATE_TTL_MIN ..
 * MSTATE_TTL_MAX). token_out gets the 64 hex and a NUL (shown once; the
 * caller clears it). -EINVAL: bad name or ttl; -EPERM: the node is
 * disabled; -EEXIST: the node is enrolled and replace is false ("ord1 is
 * enrolled (since …): a new token would let its holder replace the
 * node's key; pass --replace to mean it"). source names who asked
 * (audit), may be NULL.
 */
int mstate_token_create(struct mstate *st, const char *node, int64_t ttl_s, int64_t now,
			const char *source, bool replace, char token_out[MSTATE_SECRET_HEX + 1],
			int64_t *id_out, int64_t *expires_out, char *err, size_t errlen);
/* Revoke the open token id: it expires now (audit token_revoked) and node
 * (may be NULL) gets its node. -ENOENT "token 7: no such token";
 * -EALREADY "token 7: already redeemed (…Z)" or "already expired (…Z)". */
int mstate_token_revoke(struct mstate *st, int64_t id, int64_t now, const char *source,
			char *node, size_t nodelen, char *err, size_t errlen);
/* Which node a token is for, read-only. 0 with node filled in and *why
 * MSTATE_OK when it could be redeemed now; 0 with *why set (and node
 * filled in when the token is known) when it could not. */
int mstate_token_node(struct mstate *st, const char *token, int64_t now, char *node,
		      size_t nodelen, enum mstate_refusal *why, char *err, size_t errlen);
/* Every token, oldest first, as the admin socket's token_list shows them:
 * [{"id","node","created","expires","redeemed"|null,"redeemed_by"|null,
 *   "state":"open"|"redeemed"|"expired"}]. NULL on error. */
json_t *mstate_token_list(struct mstate *st, int64_t now, char *err, size_t errlen);

/* ---- enrolment ---- */

/*
 * Redeem req->token for req->node in one transaction, which also voids
 * every other open token of the node (they expire now; audit
 * tokens_voided with their count). 0: enrolled,
 * cred_out holds the node's new credential (64 hex and a NUL; returned
 * once, the caller clears it) and *why is MSTATE_OK. 0 with *why set:
 * refused, nothing changed but the audit row, and err holds the reason
 * for the reply ("token refused: expired", "public key already belongs
 * to node lax1"). Negative: an error, nothing changed.
 */
int mstate_enroll(struct mstate *st, const struct mstate_enroll_req *req, int64_t now,
		  char cred_out[MSTATE_SECRET_HEX + 1], enum mstate_refusal *why,
		  char *err, size_t errlen);
/* mstate_enroll, and *retry (may be NULL) true when the enrolment was a
 * retry: the reply was lost and the same enrolment is asked for again.
 * A token already redeemed is taken again when it comes for the same
 * node, with the public key it was redeemed with (still the node's key),
 * it is the node's last redemption, the node is not disabled, and less
 * than MSTATE_RETRY_S seconds have passed since the redemption: 0, *why
 * MSTATE_OK, a new credential in cred_out that replaces the one the lost
 * reply carried (audit enroll_retry; the token's redemption time stays).
 * Anything else is refused "already redeemed" as before. */
int mstate_enroll_ex(struct mstate *st, const struct mstate_enroll_req *req, int64_t now,
		     char cred_out[MSTATE_SECRET_HEX + 1], enum mstate_refusal *why, bool *retry,
		     char *err, size_t errlen);
/* The node whose credential this is: 0 with node filled in, -ENOENT
 * when none is (unknown, replaced, or the node is disabled). */
int mstate_node_by_credential(struct mstate *st, const char *credential, char *node,
			      size_t nodelen, char *err, size_t errlen);

/* ---- nodes ---- */

/* One node's row: 0, or -ENOENT when it never enrolled. */
int mstate_node_get(struct mstate *st, const char *name, struct mstate_node *n,
		    char *err, size_t errlen);
/* fn for every node by name; a non-zero return from fn stops the walk and
 * is returned. */
int mstate_nodes(struct mstate *st, int (*fn)(void *ctx, const struct mstate_node *n),
		 void *ctx, char *err, size_t errlen);
/* Nodes enrolled and not disabled, or a negative errno. */
int64_t mstate_enrolled_count(struct mstate *st, char *err, size_t errlen);
/* [{"name","public_key","external_ip"|null,"tunnel_ipv4"|null,"tunnel_ipv6"|null,
 *   "enrolled","disabled":null|"…Z"}], by name. NULL on error. */
json_t *mstate_node_list(struct mstate *st, char *err, size_t errlen);
/* Disable node from now on: its credential stops working, it cannot
 * enrol again, no token is issued for it. -ENOENT: never enrolled;
 * -EALREADY: already disabled. */
int mstate_node_disable(struct mstate *st, const char *node, int64_t now, const char *source,
			char *err, size_t errlen);

/* ---- audit ---- */

/* One audit row; node, source and detail may be NULL. The caller never
 * passes a secret. */
int mstate_audit(struct mstate *st, int64_t now, const char *event, const char *node,
		 const char *source, const char *detail, char *err, size_t errlen);

#endif
