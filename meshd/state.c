/*
 * meshd/state.c — the SQLite state behind enrolment; see state.h for the
 * flow and the spec (meshd-api.md) for the schema.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "meshd/state.h"

/* Rows are never deleted and audit rows never change: the triggers make
 * a bug that tries fail instead of losing history. Version 2 added
 * tokens.public_key, the key a token was redeemed with (a retry of the
 * enrolment must send the same). */
static const char schema[] =
	"CREATE TABLE nodes(name TEXT PRIMARY KEY, public_key TEXT UNIQUE NOT NULL,"
	" tunnel_ipv4 TEXT UNIQUE, tunnel_ipv6 TEXT UNIQUE, external_ip TEXT,"
	" credential_hash TEXT UNIQUE NOT NULL, enrolled_at INTEGER NOT NULL,"
	" disabled_at INTEGER);"
	"CREATE TABLE tokens(id INTEGER PRIMARY KEY, hash TEXT UNIQUE NOT NULL,"
	" node TEXT NOT NULL, created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL,"
	" redeemed_at INTEGER, redeemed_by TEXT, public_key TEXT);"
	"CREATE TABLE audit(id INTEGER PRIMARY KEY, at INTEGER NOT NULL, event TEXT NOT NULL,"
	" node TEXT, source TEXT, detail TEXT);"
	"CREATE TRIGGER nodes_keep BEFORE DELETE ON nodes"
	" BEGIN SELECT RAISE(ABORT, 'nodes are never deleted'); END;"
	"CREATE TRIGGER tokens_keep BEFORE DELETE ON tokens"
	" BEGIN SELECT RAISE(ABORT, 'tokens are never deleted'); END;"
	"CREATE TRIGGER audit_keep BEFORE DELETE ON audit"
	" BEGIN SELECT RAISE(ABORT, 'audit rows are never deleted'); END;"
	"CREATE TRIGGER audit_fixed BEFORE UPDATE ON audit"
	" BEGIN SELECT RAISE(ABORT, 'audit rows never change'); END;";

/* From each version to the next, in one transaction with user_version. */
static const char *const migrations[MSTATE_SCHEMA_VERSION] = {
	[1] = "ALTER TABLE tokens ADD COLUMN public_key TEXT;",
};

#define NODE_COLS "name, public_key, external_ip, tunnel_ipv4, tunnel_ipv6, enrolled_at, disabled_at"

enum stmt {
	S_BEGIN, S_COMMIT, S_ROLLBACK,
	S_TOKEN_INSERT, S_TOKEN_BY_HASH, S_TOKEN_REDEEM, S_TOKENS, S_TOKENS_VOID,
	S_TOKEN_BY_ID, S_TOKEN_REVOKE, S_TOKEN_LAST, S_NODE_CRED,
	S_NODE_GET, S_NODES, S_NODE_BY_KEY, S_NODE_BY_TUNNEL, S_NODE_UPSERT,
	S_NODE_BY_CRED, S_NODE_DISABLE, S_ENROLLED_COUNT,
	S_AUDIT,
	S_COUNT
};

static const char *const sql[S_COUNT] = {
	[S_BEGIN] = "BEGIN IMMEDIATE",
	[S_COMMIT] = "COMMIT",
	[S_ROLLBACK] = "ROLLBACK",
	[S_TOKEN_INSERT] = "INSERT INTO tokens(hash, node, created_at, expires_at) VALUES(?1, ?2, ?3, ?4)",
	[S_TOKEN_BY_HASH] = "SELECT id, node, expires_at, redeemed_at, public_key FROM tokens"
			    " WHERE hash = ?1",
	[S_TOKEN_REDEEM] = "UPDATE tokens SET redeemed_at = ?1, redeemed_by = ?2, public_key = ?5"
			   " WHERE hash = ?3 AND node = ?4 AND redeemed_at IS NULL AND expires_at > ?1",
	[S_TOKEN_LAST] = "SELECT id FROM tokens WHERE node = ?1 AND redeemed_at IS NOT NULL"
			 " ORDER BY redeemed_at DESC, id DESC LIMIT 1",
	[S_NODE_CRED] = "UPDATE nodes SET credential_hash = ?1"
			" WHERE name = ?2 AND public_key = ?3 AND disabled_at IS NULL",
	[S_TOKENS] = "SELECT id, node, created_at, expires_at, redeemed_at, redeemed_by"
		     " FROM tokens ORDER BY id",
	/* voided and revoked tokens expire now: nothing is deleted */
	[S_TOKENS_VOID] = "UPDATE tokens SET expires_at = ?1"
			  " WHERE node = ?2 AND redeemed_at IS NULL AND expires_at > ?1",
	[S_TOKEN_BY_ID] = "SELECT node, expires_at, redeemed_at FROM tokens WHERE id = ?1",
	[S_TOKEN_REVOKE] = "UPDATE tokens SET expires_at = ?1"
			   " WHERE id = ?2 AND redeemed_at IS NULL AND expires_at > ?1",
	[S_NODE_GET] = "SELECT " NODE_COLS " FROM nodes WHERE name = ?1",
	[S_NODES] = "SELECT " NODE_COLS " FROM nodes ORDER BY name",
	[S_NODE_BY_KEY] = "SELECT name FROM nodes WHERE public_key = ?1 AND name <> ?2",
	[S_NODE_BY_TUNNEL] = "SELECT name, CASE WHEN tunnel_ipv4 = ?1 THEN tunnel_ipv4 ELSE tunnel_ipv6 END"
			     " FROM nodes WHERE name <> ?3 AND (tunnel_ipv4 = ?1 OR tunnel_ipv6 = ?2)",
	/* a rebuilt machine: new key and credential, the same tunnel addresses */
	[S_NODE_UPSERT] = "INSERT INTO nodes(name, public_key, tunnel_ipv4, tunnel_ipv6, external_ip,"
			  " credential_hash, enrolled_at) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)"
			  " ON CONFLICT(name) DO UPDATE SET public_key = excluded.public_key,"
			  " external_ip = excluded.external_ip, credential_hash = excluded.credential_hash,"
			  " enrolled_at = excluded.enrolled_at,"
			  " tunnel_ipv4 = coalesce(nodes.tunnel_ipv4, excluded.tunnel_ipv4),"
			  " tunnel_ipv6 = coalesce(nodes.tunnel_ipv6, excluded.tunnel_ipv6)",
	[S_NODE_BY_CRED] = "SELECT name FROM nodes WHERE credential_hash = ?1 AND disabled_at IS NULL",
	[S_NODE_DISABLE] = "UPDATE nodes SET disabled_at = ?1 WHERE name = ?2 AND disabled_at IS NULL",
	[S_ENROLLED_COUNT] = "SELECT count(*) FROM nodes WHERE disabled_at IS NULL",
	[S_AUDIT] = "INSERT INTO audit(at, event, node, source, detail) VALUES(?1, ?2, ?3, ?4, ?5)",
};

struct mstate {
	sqlite3 *db;
	char *path;
	char warning[512];      /* mstate_warning; "" for none */
	sqlite3_stmt *s[S_COUNT];
};

const char *mstate_refusal_str(enum mstate_refusal why)
{
	static const char *const names[] = {
		[MSTATE_OK] = "ok",
		[MSTATE_TOKEN_UNKNOWN] = "unknown",
		[MSTATE_TOKEN_EXPIRED] = "expired",
		[MSTATE_TOKEN_REDEEMED] = "already redeemed",
		[MSTATE_TOKEN_OTHER_NODE] = "issued for another node",
		[MSTATE_NODE_DISABLED] = "node disabled",
		[MSTATE_KEY_TAKEN] = "public key taken",
		[MSTATE_ADDRESS_TAKEN] = "tunnel address taken",
	};

	return (unsigned)why < sizeof(names) / sizeof(names[0]) ? names[why] : "?";
}

void mstate_time_str(int64_t t, char *buf, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (!gmtime_r(&tt, &tm) || !strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(buf, len, "%lld", (long long)t);
}

/* ---- SQLite helpers ---- */

/* An SQLite error: the file, what was being done, SQLite's words. A lock
 * another connection holds (past MSTATE_BUSY_MS) is -EBUSY: the caller
 * may answer "try again" instead of failing. */
static int fail(struct mstate *st, const char *op, char *err, size_t errlen)
{
	int code = sqlite3_errcode(st->db) & 0xff;

	if (code == SQLITE_BUSY || code == SQLITE_LOCKED) {
		snprintf(err, errlen, "state %s: busy (another process holds the database lock)",
			 st->path);
		return -EBUSY;
	}
	snprintf(err, errlen, "state %s: %s: %s", st->path, op, sqlite3_errmsg(st->db));
	return -EIO;
}

static int invalid(char *err, size_t errlen, const char *fmt, const char *what)
{
	snprintf(err, errlen, fmt, what);
	return -EINVAL;
}

/* The statement, reset and with its bindings cleared after the last use. */
static sqlite3_stmt *stmt(struct mstate *st, enum stmt i)
{
	sqlite3_reset(st->s[i]);
	sqlite3_clear_bindings(st->s[i]);
	return st->s[i];
}

static void bind_text(sqlite3_stmt *s, int i, const char *v)
{
	if (v)
		sqlite3_bind_text(s, i, v, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(s, i);
}

static void col_text(sqlite3_stmt *s, int i, char *buf, size_t len)
{
	const unsigned char *v = sqlite3_column_text(s, i);

	snprintf(buf, len, "%s", v ? (const char *)v : "");
}

/* A statement that returns no row: SQLITE_DONE, else the error. */
static int run(struct mstate *st, enum stmt i, const char *op, char *err, size_t errlen)
{
	int rc = sqlite3_step(st->s[i]);

	sqlite3_reset(st->s[i]);
	return rc == SQLITE_DONE ? 0 : fail(st, op, err, errlen);
}

static int begin(struct mstate *st, const char *op, char *err, size_t errlen)
{
	stmt(st, S_BEGIN);
	return run(st, S_BEGIN, op, err, errlen);
}

static int commit(struct mstate *st, const char *op, char *err, size_t errlen)
{
	stmt(st, S_COMMIT);
	return run(st, S_COMMIT, op, err, errlen);
}

/* After an error inside a transaction; a failed COMMIT may leave it open. */
static void rollback(struct mstate *st)
{
	if (!sqlite3_get_autocommit(st->db)) {
		sqlite3_step(stmt(st, S_ROLLBACK));
		sqlite3_reset(st->s[S_ROLLBACK]);
	}
}

static int audit(struct mstate *st, int64_t now, const char *event, const char *node,
		 const char *source, const char *detail, char *err, size_t errlen)
{
	sqlite3_stmt *s = stmt(st, S_AUDIT);

	sqlite3_bind_int64(s, 1, now);
	bind_text(s, 2, event);
	bind_text(s, 3, node);
	bind_text(s, 4, source);
	bind_text(s, 5, detail);
	return run(st, S_AUDIT, "write audit row", err, errlen);
}

int mstate_audit(struct mstate *st, int64_t now, const char *event, const char *node,
		 const char *source, const char *detail, char *err, size_t errlen)
{
	if (!event || !*event)
		return invalid(err, errlen, "audit: %s", "no event");
	return audit(st, now, event, node, source, detail, err, errlen);
}

/* ---- secrets ---- */

static void hex(const unsigned char *raw, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[raw[i] >> 4];
		out[2 * i + 1] = digits[raw[i] & 15];
	}
	out[2 * n] = '\0';
}

static bool secret_valid(const char *s)
{
	return s && strlen(s) == MSTATE_SECRET_HEX &&
	       strspn(s, "0123456789abcdef") == MSTATE_SECRET_HEX;
}

/* sha256 of the secret's text, in hex: what the database holds. */
static int secret_hash(const char *secret, char out[65])
{
	unsigned char d[32];

	if (gnutls_hash_fast(GNUTLS_DIG_SHA256, secret, strlen(secret), d) < 0)
		return -EIO;
	hex(d, sizeof(d), out);
	return 0;
}

/* A new secret and its hash. */
static int secret_new(char out[MSTATE_SECRET_HEX + 1], char hash[65], char *err, size_t errlen)
{
	unsigned char raw[MSTATE_SECRET_HEX / 2];
	int rc = gnutls_rnd(GNUTLS_RND_KEY, raw, sizeof(raw));

	if (rc < 0) {
		snprintf(err, errlen, "random bytes: %s", gnutls_strerror(rc));
		return -EIO;
	}
	hex(raw, sizeof(raw), out);
	explicit_bzero(raw, sizeof(raw));
	if (secret_hash(out, hash) < 0) {
		explicit_bzero(out, MSTATE_SECRET_HEX + 1);
		snprintf(err, errlen, "sha256 failed");
		return -EIO;
	}
	return 0;
}

/* ---- open ---- */

static int exec(struct mstate *st, const char *text, const char *op, char *err, size_t errlen)
{
	return sqlite3_exec(st->db, text, NULL, NULL, NULL) == SQLITE_OK ? 0
	       : fail(st, op, err, errlen);
}

/* The one value of a one-row query (a pragma). */
static int query_int(struct mstate *st, const char *text, int64_t *v, char *err, size_t errlen)
{
	sqlite3_stmt *s;
	int rc;

	if (sqlite3_prepare_v2(st->db, text, -1, &s, NULL) != SQLITE_OK)
		return fail(st, text, err, errlen);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return rc == SQLITE_ROW ? 0 : fail(st, text, err, errlen);
}

static int wal_on(struct mstate *st, char *err, size_t errlen)
{
	sqlite3_stmt *s;
	const unsigned char *mode;
	bool wal;

	if (sqlite3_prepare_v2(st->db, "PRAGMA journal_mode=WAL", -1, &s, NULL) != SQLITE_OK)
		return fail(st, "journal_mode=WAL", err, errlen);
	wal = sqlite3_step(s) == SQLITE_ROW && (mode = sqlite3_column_text(s, 0)) &&
	      strcmp((const char *)mode, "wal") == 0;
	sqlite3_finalize(s);
	return wal ? 0 : fail(st, "journal_mode=WAL", err, errlen);
}

/* The schema, created in one transaction when the file has none. */
static int schema_ready(struct mstate *st, char *err, size_t errlen)
{
	int64_t v;
	int rc;

	char set[64];

	if ((rc = query_int(st, "PRAGMA user_version", &v, err, errlen)))
		return rc;
	if (v < MSTATE_SCHEMA_VERSION) {
		/* another process may be at it: look again inside the lock */
		if ((rc = exec(st, "BEGIN IMMEDIATE", "create schema", err, errlen)))
			return rc;
		if (!(rc = query_int(st, "PRAGMA user_version", &v, err, errlen)) && v == 0)
			rc = exec(st, schema, "create schema", err, errlen);
		else
			for (int64_t i = v; !rc && i > 0 && i < MSTATE_SCHEMA_VERSION; i++)
				rc = exec(st, migrations[i], "update the schema", err, errlen);
		snprintf(set, sizeof(set), "PRAGMA user_version=%d", MSTATE_SCHEMA_VERSION);
		if (!rc && v < MSTATE_SCHEMA_VERSION)
			rc = exec(st, set, "create schema", err, errlen);
		if (!rc)
			rc = exec(st, "COMMIT", "create schema", err, errlen);
		if (rc) {
			exec(st, "ROLLBACK", "create schema", NULL, 0);
			return rc;
		}
		v = v < MSTATE_SCHEMA_VERSION ? MSTATE_SCHEMA_VERSION : v;
	}
	if (v != MSTATE_SCHEMA_VERSION) {
		snprintf(err, errlen, "state %s: schema version %lld, this meshd knows %d",
			 st->path, (long long)v, MSTATE_SCHEMA_VERSION);
		return -EPROTO;
	}
	return 0;
}

/* The file open on fd to 0600 when its mode gives anything more; what
 * was changed goes to st->warning. */
static int mode_fix(struct mstate *st, int fd, const char *path, char *err, size_t errlen)
{
	size_t n = strlen(st->warning);
	struct stat sb;

	if (fstat(fd, &sb) < 0) {
		snprintf(err, errlen, "state %s: %s", path, strerror(errno));
		return -errno;
	}
	if (!(sb.st_mode & 07177))
		return 0;
	if (fchmod(fd, 0600) < 0) {
		int e = errno;

		snprintf(err, errlen, "state %s: mode %04o, wider than 0600, and chmod failed: %s",
			 path, (unsigned)(sb.st_mode & 07777), strerror(e));
		return -e;
	}
	snprintf(st->warning + n, sizeof(st->warning) - n, "%sstate %s: mode was %04o, set to 0600",
		 n ? "; " : "", path, (unsigned)(sb.st_mode & 07777));
	return 0;
}

const char *mstate_warning(const struct mstate *st)
{
	return st && st->warning[0] ? st->warning : NULL;
}

int mstate_open(const char *path, struct mstate **out, char *err, size_t errlen)
{
	struct mstate *st = calloc(1, sizeof(*st));
	int fd, rc;

	*out = NULL;
	if (!st || !(st->path = strdup(path))) {
		free(st);
		snprintf(err, errlen, "state %s: out of memory", path);
		return -ENOMEM;
	}
	/* created here so that it is 0600 from the start; SQLite gives its
	 * -wal and -shm files the database file's mode */
	if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0) {
		rc = -errno;
		snprintf(err, errlen, "state %s: %s", path, strerror(errno));
		goto fail;
	}
	/* an existing file (and the -wal, -shm a run left) may be wider */
	rc = mode_fix(st, fd, path, err, errlen);
	close(fd);
	for (int i = 0; !rc && i < 2; i++) {
		char side[4096];

		snprintf(side, sizeof(side), "%s%s", path, i ? "-shm" : "-wal");
		if ((fd = open(side, O_RDWR | O_NOFOLLOW | O_CLOEXEC)) < 0)
			continue;
		rc = mode_fix(st, fd, side, err, errlen);
		close(fd);
	}
	if (rc)
		goto fail;
	if (sqlite3_open_v2(path, &st->db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
		rc = st->db ? fail(st, "open", err, errlen) : -ENOMEM;
		goto fail;
	}
	sqlite3_extended_result_codes(st->db, 1);
	sqlite3_busy_timeout(st->db, MSTATE_BUSY_MS);
	if ((rc = wal_on(st, err, errlen)) ||
	    (rc = exec(st, "PRAGMA synchronous=FULL", "synchronous=FULL", err, errlen)) ||
	    (rc = exec(st, "PRAGMA foreign_keys=ON", "foreign_keys=ON", err, errlen)) ||
	    (rc = schema_ready(st, err, errlen)))
		goto fail;
	for (int i = 0; i < S_COUNT; i++)
		if (sqlite3_prepare_v3(st->db, sql[i], -1, SQLITE_PREPARE_PERSISTENT,
				       &st->s[i], NULL) != SQLITE_OK) {
			rc = fail(st, sql[i], err, errlen);
			goto fail;
		}
	*out = st;
	return 0;
fail:
	mstate_close(st);
	return rc;
}

void mstate_close(struct mstate *st)
{
	if (!st)
		return;
	for (int i = 0; i < S_COUNT; i++)
		sqlite3_finalize(st->s[i]);
	sqlite3_close(st->db);
	free(st->path);
	free(st);
}

/* ---- tokens ---- */

static void node_row(sqlite3_stmt *s, struct mstate_node *n)
{
	col_text(s, 0, n->name, sizeof(n->name));
	col_text(s, 1, n->public_key, sizeof(n->public_key));
	col_text(s, 2, n->external_ip, sizeof(n->external_ip));
	col_text(s, 3, n->tunnel_ipv4, sizeof(n->tunnel_ipv4));
	col_text(s, 4, n->tunnel_ipv6, sizeof(n->tunnel_ipv6));
	n->enrolled_at = sqlite3_column_int64(s, 5);
	n->disabled_at = sqlite3_column_int64(s, 6);
}

int mstate_node_get(struct mstate *st, const char *name, struct mstate_node *n,
		    char *err, size_t errlen)
{
	sqlite3_stmt *s = stmt(st, S_NODE_GET);
	int rc;

	bind_text(s, 1, name);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		node_row(s, n);
	sqlite3_reset(s);
	if (rc == SQLITE_DONE) {
		snprintf(err, errlen, "%s: not enrolled", name);
		return -ENOENT;
	}
	return rc == SQLITE_ROW ? 0 : fail(st, "read node", err, errlen);
}

static int token_insert(struct mstate *st, const char *node, const char *hash, int64_t now,
			int64_t expires, const char *source, int64_t *id, char *err, size_t errlen)
{
	sqlite3_stmt *s = stmt(st, S_TOKEN_INSERT);
	char detail[96], when[32];
	int rc;

	bind_text(s, 1, hash);
	bind_text(s, 2, node);
	sqlite3_bind_int64(s, 3, now);
	sqlite3_bind_int64(s, 4, expires);
	if ((rc = run(st, S_TOKEN_INSERT, "create token", err, errlen)))
		return rc;
	*id = sqlite3_last_insert_rowid(st->db);
	mstate_time_str(expires, when, sizeof(when));
	snprintf(detail, sizeof(detail), "token %lld, expires %s", (long long)*id, when);
	return audit(st, now, "token_created", node, source, detail, err, errlen);
}

int mstate_token_create(struct mstate *st, const char *node, int64_t ttl_s, int64_t now,
			const char *source, bool replace, char token_out[MSTATE_SECRET_HEX + 1],
			int64_t *id_out, int64_t *expires_out, char *err, size_t errlen)
{
	struct mstate_node n;
	char hash[65], e[8], when[32];
	int64_t id = 0;
	int rc;

	token_out[0] = '\0';
	if (!node || !cfg_name_valid(node))
		return invalid(err, errlen, "'%s' is not a node name", node ? node : "");
	if (ttl_s < MSTATE_TTL_MIN || ttl_s > MSTATE_TTL_MAX) {
		snprintf(err, errlen, "ttl %lld s is outside %d s .. %d days", (long long)ttl_s,
			 MSTATE_TTL_MIN, MSTATE_TTL_MAX / 86400);
		return -EINVAL;
	}
	if ((rc = secret_new(token_out, hash, err, errlen)))
		return rc;
	if ((rc = begin(st, "create token", err, errlen)))
		goto out;
	rc = mstate_node_get(st, node, &n, e, sizeof(e));
	if (rc == 0 && n.disabled_at) {
		snprintf(err, errlen, "%s: node is disabled", node);
		rc = -EPERM;
	} else if (rc == 0 && !replace) {
		mstate_time_str(n.enrolled_at, when, sizeof(when));
		snprintf(err, errlen, "%s is enrolled (since %s): a new token would let its holder"
			 " replace the node's key; pass --replace to mean it", node, when);
		rc = -EEXIST;
	} else if (rc == 0 || rc == -ENOENT) {
		rc = token_insert(st, node, hash, now, now + ttl_s, source, &id, err, errlen);
	} else {
		rc = fail(st, "create token: read node", err, errlen);
	}
	if (!rc)
		rc = commit(st, "create token", err, errlen);
out:
	if (rc) {
		rollback(st);
		explicit_bzero(token_out, MSTATE_SECRET_HEX + 1);
		return rc;
	}
	if (id_out)
		*id_out = id;
	if (expires_out)
		*expires_out = now + ttl_s;
	return 0;
}

/* What the token's row says: why it cannot be redeemed now, if so. */
struct token_row {
	bool known;
	int64_t id, redeemed_at;
	char node[MSTATE_NAME_MAX];
	char key[MSTATE_TEXT_MAX];      /* redeemed with; "" before */
	enum mstate_refusal why;
};

static int token_lookup(struct mstate *st, const char *token, int64_t now,
			struct token_row *t, char *err, size_t errlen)
{
	char hash[65];
	sqlite3_stmt *s;
	int rc;

	memset(t, 0, sizeof(*t));
	t->why = MSTATE_TOKEN_UNKNOWN;
	if (!secret_valid(token))
		return 0;
	if (secret_hash(token, hash) < 0) {
		snprintf(err, errlen, "sha256 failed");
		return -EIO;
	}
	s = stmt(st, S_TOKEN_BY_HASH);
	bind_text(s, 1, hash);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		t->known = true;
		t->id = sqlite3_column_int64(s, 0);
		col_text(s, 1, t->node, sizeof(t->node));
		t->redeemed_at = sqlite3_column_int64(s, 3);
		col_text(s, 4, t->key, sizeof(t->key));
		if (sqlite3_column_type(s, 3) != SQLITE_NULL)
			t->why = MSTATE_TOKEN_REDEEMED;
		else if (sqlite3_column_int64(s, 2) <= now)
			t->why = MSTATE_TOKEN_EXPIRED;
		else
			t->why = MSTATE_OK;
	}
	sqlite3_reset(s);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : fail(st, "read token", err, errlen);
}

int mstate_token_node(struct mstate *st, const char *token, int64_t now, char *node,
		      size_t nodelen, enum mstate_refusal *why, char *err, size_t errlen)
{
	struct token_row t;
	int rc = token_lookup(st, token, now, &t, err, errlen);

	if (rc)
		return rc;
	snprintf(node, nodelen, "%s", t.node);
	*why = t.why;
	return 0;
}

int mstate_token_revoke(struct mstate *st, int64_t id, int64_t now, const char *source,
			char *node, size_t nodelen, char *err, size_t errlen)
{
	char name[MSTATE_NAME_MAX] = "", when[32], detail[64];
	int64_t expires = 0, redeemed = 0;
	sqlite3_stmt *s;
	int rc;

	if (node && nodelen)
		node[0] = '\0';
	if (id <= 0) {
		snprintf(err, errlen, "token %lld: no such token", (long long)id);
		return -ENOENT;
	}
	if ((rc = begin(st, "revoke token", err, errlen)))
		return rc;
	s = stmt(st, S_TOKEN_BY_ID);
	sqlite3_bind_int64(s, 1, id);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		col_text(s, 0, name, sizeof(name));
		expires = sqlite3_column_int64(s, 1);
		redeemed = sqlite3_column_int64(s, 2);
	}
	sqlite3_reset(s);
	if (rc == SQLITE_DONE) {
		snprintf(err, errlen, "token %lld: no such token", (long long)id);
		rc = -ENOENT;
		goto fail;
	}
	if (rc != SQLITE_ROW) {
		rc = fail(st, "revoke token: read it", err, errlen);
		goto fail;
	}
	if (redeemed || expires <= now) {
		mstate_time_str(redeemed ? redeemed : expires, when, sizeof(when));
		snprintf(err, errlen, "token %lld: already %s (%s)", (long long)id,
			 redeemed ? "redeemed" : "expired", when);
		rc = -EALREADY;
		goto fail;
	}
	s = stmt(st, S_TOKEN_REVOKE);
	sqlite3_bind_int64(s, 1, now);
	sqlite3_bind_int64(s, 2, id);
	snprintf(detail, sizeof(detail), "token %lld", (long long)id);
	if ((rc = run(st, S_TOKEN_REVOKE, "revoke token", err, errlen)) ||
	    (rc = audit(st, now, "token_revoked", name, source, detail, err, errlen)) ||
	    (rc = commit(st, "revoke token", err, errlen)))
		goto fail;
	if (node && nodelen)
		snprintf(node, nodelen, "%s", name);
	return 0;
fail:
	rollback(st);
	return rc;
}

static json_t *time_or_null(sqlite3_stmt *s, int col)
{
	char buf[32];

	if (sqlite3_column_type(s, col) == SQLITE_NULL)
		return json_null();
	mstate_time_str(sqlite3_column_int64(s, col), buf, sizeof(buf));
	return json_string(buf);
}

static json_t *text_or_null(sqlite3_stmt *s, int col)
{
	const unsigned char *v = sqlite3_column_text(s, col);

	return v ? json_string((const char *)v) : json_null();
}

static json_t *token_json(sqlite3_stmt *s, int64_t now)
{
	const char *state = sqlite3_column_type(s, 4) != SQLITE_NULL ? "redeemed"
			    : sqlite3_column_int64(s, 3) <= now ? "expired" : "open";

	return json_pack("{s:I,s:s,s:o,s:o,s:o,s:o,s:s}",
			 "id", (json_int_t)sqlite3_column_int64(s, 0),
			 "node", (const char *)sqlite3_column_text(s, 1),
			 "created", time_or_null(s, 2), "expires", time_or_null(s, 3),
			 "redeemed", time_or_null(s, 4), "redeemed_by", text_or_null(s, 5),
			 "state", state);
}

json_t *mstate_token_list(struct mstate *st, int64_t now, char *err, size_t errlen)
{
	sqlite3_stmt *s = stmt(st, S_TOKENS);
	json_t *a = json_array(), *t;
	int rc = SQLITE_NOMEM;

	while (a && (rc = sqlite3_step(s)) == SQLITE_ROW)
		if (!(t = token_json(s, now)) || json_array_append_new(a, t)) {
			rc = SQLITE_NOMEM;
			break;
		}
	sqlite3_reset(s);
	if (rc == SQLITE_DONE)
		return a;
	json_decref(a);
	if (rc == SQLITE_NOMEM)
		snprintf(err, errlen, "token list: out of memory");
	else
		fail(st, "list tokens", err, errlen);
	return NULL;
}

/* ---- enrolment ---- */

/* An address as inet_ntop writes it, so that equal addresses compare
 * equal as text; NULL and "" stay NULL. */
static int addr_norm(const char *in, int family, char *out, size_t len, const char **res)
{
	unsigned char a[16];

	*res = NULL;
	if (!in || !*in)
		return 0;
	if (family == AF_UNSPEC)
		family = strchr(in, ':') ? AF_INET6 : AF_INET;
	if (inet_pton(family, in, a) != 1 || !inet_ntop(family, a, out, (socklen_t)len))
		return -EINVAL;
	*res = out;
	return 0;
}

struct enroll_args {
	const struct mstate_enroll_req *req;
	const char *v4, *v6, *ext;      /* normalised */
	char v4buf[MSTATE_TEXT_MAX], v6buf[MSTATE_TEXT_MAX], extbuf[MSTATE_TEXT_MAX];
};

static int enroll_check_args(const struct mstate_enroll_req *req, struct enroll_args *a,
			     char *err, size_t errlen)
{
	const char *k = req->public_key;

	a->req = req;
	if (!req->node || !cfg_name_valid(req->node))
		return invalid(err, errlen, "'%s' is not a node name", req->node ? req->node : "");
	if (!k || !*k || strlen(k) >= MSTATE_TEXT_MAX || strcspn(k, " \t\r\n\"\\") != strlen(k))
		return invalid(err, errlen, "'%.64s' is not a public key", k ? k : "");
	if (addr_norm(req->tunnel_ipv4, AF_INET, a->v4buf, sizeof(a->v4buf), &a->v4))
		return invalid(err, errlen, "tunnel_ipv4 '%.64s' is not an IPv4 address", req->tunnel_ipv4);
	if (addr_norm(req->tunnel_ipv6, AF_INET6, a->v6buf, sizeof(a->v6buf), &a->v6))
		return invalid(err, errlen, "tunnel_ipv6 '%.64s' is not an IPv6 address", req->tunnel_ipv6);
	if (addr_norm(req->external_ip, AF_UNSPEC, a->extbuf, sizeof(a->extbuf), &a->ext))
		return invalid(err, errlen, "external_ip '%.64s' is not an address", req->external_ip);
	if (req->source && strlen(req->source) >= MSTATE_TEXT_MAX)
		return invalid(err, errlen, "source '%.64s...' is too long", req->source);
	return 0;
}

/* Inside the transaction: what refuses this enrolment, if anything; the
 * reason for the reply goes to err. */
static int enroll_refusal(struct mstate *st, const struct enroll_args *a, const struct token_row *t,
			  enum mstate_refusal *why, char *err, size_t errlen)
{
	const struct mstate_enroll_req *req = a->req;
	struct mstate_node n;
	char other[MSTATE_NAME_MAX], addr[MSTATE_TEXT_MAX], e[8];
	sqlite3_stmt *s;
	int rc;

	*why = t->why != MSTATE_OK ? t->why
	       : strcmp(t->node, req->node) ? MSTATE_TOKEN_OTHER_NODE : MSTATE_OK;
	if (*why != MSTATE_OK) {
		snprintf(err, errlen, "token refused: %s", mstate_refusal_str(*why));
		return 0;
	}
	rc = mstate_node_get(st, req->node, &n, e, sizeof(e));
	if (rc && rc != -ENOENT)
		return fail(st, "enroll: read node", err, errlen);
	if (rc == 0 && n.disabled_at) {
		*why = MSTATE_NODE_DISABLED;
		snprintf(err, errlen, "node %s is disabled", req->node);
		return 0;
	}
	s = stmt(st, S_NODE_BY_KEY);
	bind_text(s, 1, req->public_key);
	bind_text(s, 2, req->node);
	if ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		col_text(s, 0, other, sizeof(other));
		*why = MSTATE_KEY_TAKEN;
		snprintf(err, errlen, "public key already belongs to node %s", other);
	}
	sqlite3_reset(s);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return fail(st, "enroll: look up key", err, errlen);
	if (*why != MSTATE_OK || (!a->v4 && !a->v6))
		return 0;
	s = stmt(st, S_NODE_BY_TUNNEL);
	bind_text(s, 1, a->v4);
	bind_text(s, 2, a->v6);
	bind_text(s, 3, req->node);
	if ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		col_text(s, 0, other, sizeof(other));
		col_text(s, 1, addr, sizeof(addr));
		*why = MSTATE_ADDRESS_TAKEN;
		snprintf(err, errlen, "tunnel address %s already belongs to node %s", addr, other);
	}
	sqlite3_reset(s);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0
	       : fail(st, "enroll: look up tunnel addresses", err, errlen);
}

/* Inside the transaction: redeem, upsert, audit. */
static int enroll_write(struct mstate *st, const struct enroll_args *a, const struct token_row *t,
			int64_t now, const char *token, const char *cred_hash, char *err, size_t errlen)
{
	const struct mstate_enroll_req *req = a->req;
	char hash[65], detail[160];
	sqlite3_stmt *s;
	int rc, voided;

	if (secret_hash(token, hash) < 0) {
		snprintf(err, errlen, "sha256 failed");
		return -EIO;
	}
	s = stmt(st, S_TOKEN_REDEEM);
	sqlite3_bind_int64(s, 1, now);
	bind_text(s, 2, req->source);
	bind_text(s, 3, hash);
	bind_text(s, 4, req->node);
	bind_text(s, 5, req->public_key);
	if ((rc = run(st, S_TOKEN_REDEEM, "enroll: redeem token", err, errlen)))
		return rc;
	if (sqlite3_changes(st->db) != 1) {
		/* classified as redeemable in this same transaction: cannot be */
		snprintf(err, errlen, "state %s: enroll: token %lld was not redeemed", st->path,
			 (long long)t->id);
		return -EIO;
	}
	s = stmt(st, S_NODE_UPSERT);
	bind_text(s, 1, req->node);
	bind_text(s, 2, req->public_key);
	bind_text(s, 3, a->v4);
	bind_text(s, 4, a->v6);
	bind_text(s, 5, a->ext);
	bind_text(s, 6, cred_hash);
	sqlite3_bind_int64(s, 7, now);
	if ((rc = run(st, S_NODE_UPSERT, "enroll: write node", err, errlen)))
		return rc;
	snprintf(detail, sizeof(detail), "token %lld; public key %s", (long long)t->id,
		 req->public_key);
	if ((rc = audit(st, now, "enrolled", req->node, req->source, detail, err, errlen)))
		return rc;
	/* the node has its key now: no other token of it may replace that */
	s = stmt(st, S_TOKENS_VOID);
	sqlite3_bind_int64(s, 1, now);
	bind_text(s, 2, req->node);
	if ((rc = run(st, S_TOKENS_VOID, "enroll: void the node's other tokens", err, errlen)))
		return rc;
	if ((voided = sqlite3_changes(st->db)) == 0)
		return 0;
	snprintf(detail, sizeof(detail), "%d open token%s voided by the redemption of token %lld",
		 voided, voided == 1 ? "" : "s", (long long)t->id);
	return audit(st, now, "tokens_voided", req->node, req->source, detail, err, errlen);
}

/*
 * Inside the transaction, for a token already redeemed: is this the
 * enrolment again, its reply lost? The same node, the key the token was
 * redeemed with, which is still the node's, the node's last redemption,
 * less than MSTATE_RETRY_S ago, the node not disabled. *ok says.
 */
static int retry_allowed(struct mstate *st, const struct enroll_args *a, const struct token_row *t,
			 int64_t now, bool *ok, char *err, size_t errlen)
{
	const struct mstate_enroll_req *req = a->req;
	struct mstate_node n;
	sqlite3_stmt *s;
	char e[8];
	int rc;

	*ok = false;
	if (!t->known || t->why != MSTATE_TOKEN_REDEEMED || strcmp(t->node, req->node) ||
	    !t->key[0] || strcmp(t->key, req->public_key) ||
	    now < t->redeemed_at || now >= t->redeemed_at + MSTATE_RETRY_S)
		return 0;
	rc = mstate_node_get(st, req->node, &n, e, sizeof(e));
	if (rc == -ENOENT)
		return 0;
	if (rc)
		return fail(st, "enroll: read node", err, errlen);
	if (n.disabled_at || strcmp(n.public_key, req->public_key))
		return 0;
	s = stmt(st, S_TOKEN_LAST);
	bind_text(s, 1, req->node);
	rc = sqlite3_step(s);
	*ok = rc == SQLITE_ROW && sqlite3_column_int64(s, 0) == t->id;
	sqlite3_reset(s);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : fail(st, "enroll: last token", err, errlen);
}

/* Inside the transaction: the retry's new credential replaces the old. */
static int retry_write(struct mstate *st, const struct enroll_args *a, const struct token_row *t,
		       int64_t now, const char *cred_hash, char *err, size_t errlen)
{
	const struct mstate_enroll_req *req = a->req;
	sqlite3_stmt *s = stmt(st, S_NODE_CRED);
	char detail[160];
	int rc;

	bind_text(s, 1, cred_hash);
	bind_text(s, 2, req->node);
	bind_text(s, 3, req->public_key);
	if ((rc = run(st, S_NODE_CRED, "enroll: replace the credential", err, errlen)))
		return rc;
	if (sqlite3_changes(st->db) != 1) {
		snprintf(err, errlen, "state %s: enroll: node %s's credential was not replaced",
			 st->path, req->node);
		return -EIO;
	}
	snprintf(detail, sizeof(detail), "token %lld; public key %s; credential replaced",
		 (long long)t->id, req->public_key);
	return audit(st, now, "enroll_retry", req->node, req->source, detail, err, errlen);
}

int mstate_enroll(struct mstate *st, const struct mstate_enroll_req *req, int64_t now,
		  char cred_out[MSTATE_SECRET_HEX + 1], enum mstate_refusal *why,
		  char *err, size_t errlen)
{
	return mstate_enroll_ex(st, req, now, cred_out, why, NULL, err, errlen);
}

int mstate_enroll_ex(struct mstate *st, const struct mstate_enroll_req *req, int64_t now,
		     char cred_out[MSTATE_SECRET_HEX + 1], enum mstate_refusal *why, bool *retry,
		     char *err, size_t errlen)
{
	bool again = false;
	struct enroll_args a;
	struct token_row t;
	char cred_hash[65], detail[320];
	int rc;

	cred_out[0] = '\0';
	*why = MSTATE_OK;
	if (retry)
		*retry = false;
	if ((rc = enroll_check_args(req, &a, err, errlen)))
		return rc;
	if ((rc = secret_new(cred_out, cred_hash, err, errlen)))
		return rc;
	if ((rc = begin(st, "enroll", err, errlen)) ||
	    (rc = token_lookup(st, req->token, now, &t, err, errlen)) ||
	    (rc = enroll_refusal(st, &a, &t, why, err, errlen)) ||
	    (*why == MSTATE_TOKEN_REDEEMED &&
	     (rc = retry_allowed(st, &a, &t, now, &again, err, errlen))))
		goto fail;
	if (again) {
		*why = MSTATE_OK;
		rc = retry_write(st, &a, &t, now, cred_hash, err, errlen);
	} else if (*why == MSTATE_OK) {
		rc = enroll_write(st, &a, &t, now, req->token, cred_hash, err, errlen);
	} else {
		if (t.known)
			snprintf(detail, sizeof(detail), "enroll: token %lld: %s", (long long)t.id, err);
		else
			snprintf(detail, sizeof(detail), "enroll: %s", err);
		rc = audit(st, now, "refused", req->node, req->source, detail, err, errlen);
	}
	if (rc || (rc = commit(st, "enroll", err, errlen)))
		goto fail;
	if (*why != MSTATE_OK) {
		/* err still holds the reason: audit() and commit() leave it alone on success */
		explicit_bzero(cred_out, MSTATE_SECRET_HEX + 1);
	}
	if (retry)
		*retry = again;
	return 0;
fail:
	rollback(st);
	*why = MSTATE_OK;
	explicit_bzero(cred_out, MSTATE_SECRET_HEX + 1);
	return rc;
}

int mstate_node_by_credential(struct mstate *st, const char *credential, char *node,
			      size_t nodelen, char *err, size_t errlen)
{
	char hash[65];
	sqlite3_stmt *s;
	int rc;

	node[0] = '\0';
	if (!secret_valid(credential)) {
		snprintf(err, errlen, "not a credential");
		return -ENOENT;
	}
	if (secret_hash(credential, hash) < 0) {
		snprintf(err, errlen, "sha256 failed");
		return -EIO;
	}
	s = stmt(st, S_NODE_BY_CRED);
	bind_text(s, 1, hash);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		col_text(s, 0, node, nodelen);
	sqlite3_reset(s);
	if (rc == SQLITE_DONE) {
		snprintf(err, errlen, "unknown credential");
		return -ENOENT;
	}
	return rc == SQLITE_ROW ? 0 : fail(st, "look up credential", err, errlen);
}

/* ---- nodes ---- */

int mstate_nodes(struct mstate *st, int (*fn)(void *ctx, const struct mstate_node *n),
		 void *ctx, char *err, size_t errlen)
{
	sqlite3_stmt *s = stmt(st, S_NODES);
	struct mstate_node n;
	int rc, ret = 0;

	while (!ret && (rc = sqlite3_step(s)) == SQLITE_ROW) {
		node_row(s, &n);
		ret = fn(ctx, &n);
	}
	sqlite3_reset(s);
	if (ret)
		return ret;
	return rc == SQLITE_DONE ? 0 : fail(st, "list nodes", err, errlen);
}

int64_t mstate_enrolled_count(struct mstate *st, char *err, size_t errlen)
{
	sqlite3_stmt *s = stmt(st, S_ENROLLED_COUNT);
	int64_t n = 0;
	int rc = sqlite3_step(s);

	if (rc == SQLITE_ROW)
		n = sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	return rc == SQLITE_ROW ? n : fail(st, "count nodes", err, errlen);
}

static json_t *str_or_null(const char *s)
{
	return *s ? json_string(s) : json_null();
}

static int node_append(void *ctx, const struct mstate_node *n)
{
	char enrolled[32], disabled[32];
	json_t *o;

	mstate_time_str(n->enrolled_at, enrolled, sizeof(enrolled));
	mstate_time_str(n->disabled_at, disabled, sizeof(disabled));
	o = json_pack("{s:s,s:s,s:o,s:o,s:o,s:s,s:o}", "name", n->name,
		      "public_key", n->public_key, "external_ip", str_or_null(n->external_ip),
		      "tunnel_ipv4", str_or_null(n->tunnel_ipv4),
		      "tunnel_ipv6", str_or_null(n->tunnel_ipv6), "enrolled", enrolled,
		      "disabled", n->disabled_at ? json_string(disabled) : json_null());
	return o && json_array_append_new(ctx, o) == 0 ? 0 : -ENOMEM;
}

json_t *mstate_node_list(struct mstate *st, char *err, size_t errlen)
{
	json_t *a = json_array();
	int rc = a ? mstate_nodes(st, node_append, a, err, errlen) : -ENOMEM;

	if (rc == -ENOMEM)
		snprintf(err, errlen, "node list: out of memory");
	if (rc) {
		json_decref(a);
		return NULL;
	}
	return a;
}

int mstate_node_disable(struct mstate *st, const char *node, int64_t now, const char *source,
			char *err, size_t errlen)
{
	struct mstate_node n;
	char when[32];
	sqlite3_stmt *s;
	int rc;

	if (!node || !cfg_name_valid(node))
		return invalid(err, errlen, "'%s' is not a node name", node ? node : "");
	if ((rc = begin(st, "disable node", err, errlen)))
		return rc;
	s = stmt(st, S_NODE_DISABLE);
	sqlite3_bind_int64(s, 1, now);
	bind_text(s, 2, node);
	if ((rc = run(st, S_NODE_DISABLE, "disable node", err, errlen)))
		goto fail;
	if (sqlite3_changes(st->db) == 0) {
		if ((rc = mstate_node_get(st, node, &n, err, errlen)) == 0) {
			mstate_time_str(n.disabled_at, when, sizeof(when));
			snprintf(err, errlen, "%s: already disabled (since %s)", node, when);
			rc = -EALREADY;
		}
		goto fail;
	}
	if ((rc = audit(st, now, "disabled", node, source, NULL, err, errlen)) ||
	    (rc = commit(st, "disable node", err, errlen)))
		goto fail;
	return 0;
fail:
	rollback(st);
	return rc;
}
