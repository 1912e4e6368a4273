/*
 * test_meshd_state — meshd/state.c on a real SQLite file in a per-PID temp
 * dir: the schema and its version, tokens redeemed exactly once, expiry
 * (the clock is passed in), tokens bound to their node, keys and tunnel
 * addresses never shared between nodes, re-enrolment, disabling, the
 * audit rows, nothing deleted and no secret in the file. Two process
 * tests: processes killed with SIGKILL in the middle of their redeems, and
 * two processes racing for the same tokens.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <gnutls/crypto.h>
#include <poll.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "meshd/state.h"
#include "tests/lib/testlib.h"

#define T0 1790000000       /* 2026-09-21T...: every test's clock starts here */
#define KEY_A "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
#define KEY_B "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBA="
#define KEY_C "CCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCA="

static struct {
	char dir[96], db[128];
	struct mstate *st;
} T;

static void setup(void)
{
	static int n;
	char err[512];

	snprintf(T.dir, sizeof(T.dir), "/tmp/meshd-state-%d-%d", (int)getpid(), n++);
	cr_assert_eq(mkdir(T.dir, 0700), 0, "%s: %s", T.dir, strerror(errno));
	snprintf(T.db, sizeof(T.db), "%s/state.db", T.dir);
	cr_assert_eq(mstate_open(T.db, &T.st, err, sizeof(err)), 0, "%s", err);
}

static void teardown(void)
{
	char p[200];

	mstate_close(T.st);
	T.st = NULL;
	snprintf(p, sizeof(p), "rm -rf '%s'", T.dir);
	if (T.dir[0] && system(p) != 0)
		cr_log_warn("could not remove %s", T.dir);
}

TestSuite(mstate, .init = setup, .fini = teardown, .timeout = 30);

/* ---- helpers ---- */

/* One integer from a query on a second connection of our own. */
static int64_t q(const char *sql)
{
	sqlite3 *db;
	sqlite3_stmt *s;
	int64_t v = -1;

	cr_assert_eq(sqlite3_open_v2(T.db, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK, "%s: %s", sql,
		     sqlite3_errmsg(db));
	if (sqlite3_step(s) == SQLITE_ROW)
		v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	sqlite3_close(db);
	return v;
}

/* A statement on a writable connection of our own: SQLite's result. */
static int raw_exec(const char *sql, char *msg, size_t len)
{
	sqlite3 *db;
	char *e = NULL;
	int rc;

	cr_assert_eq(sqlite3_open_v2(T.db, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	rc = sqlite3_exec(db, sql, NULL, NULL, &e);
	snprintf(msg, len, "%s", e ? e : "");
	sqlite3_free(e);
	sqlite3_close(db);
	return rc;
}

static void token_x(const char *node, int64_t ttl, int64_t now, bool replace, char tok[65],
		    int64_t *id)
{
	char err[512];
	int64_t exp;

	cr_assert_eq(mstate_token_create(T.st, node, ttl, now, "admin", replace, tok, id, &exp, err,
					 sizeof(err)), 0, "%s", err);
	cr_assert_eq(strlen(tok), 64);
	cr_assert_eq(exp, now + ttl);
}

/* A token for a node not enrolled yet, and one that may replace an
 * enrolled node's key. */
static void token(const char *node, int64_t ttl, int64_t now, char tok[65], int64_t *id)
{
	token_x(node, ttl, now, false, tok, id);
}

static void token_replace(const char *node, int64_t ttl, int64_t now, char tok[65], int64_t *id)
{
	token_x(node, ttl, now, true, tok, id);
}

/* mstate_enroll; returns the refusal (MSTATE_OK: enrolled, cred set). */
static enum mstate_refusal enroll(const char *tok, const char *node, const char *key,
				  const char *v4, const char *v6, int64_t now, char cred[65],
				  char *err, size_t errlen)
{
	struct mstate_enroll_req r = {
		.token = tok, .node = node, .public_key = key, .external_ip = "198.51.100.6",
		.tunnel_ipv4 = v4, .tunnel_ipv6 = v6, .source = "198.51.100.6",
	};
	enum mstate_refusal why = 99;
	int rc = mstate_enroll(T.st, &r, now, cred, &why, err, errlen);

	cr_assert_eq(rc, 0, "enroll %s: %d %s", node, rc, err);
	if (why == MSTATE_OK)
		cr_assert_eq(strlen(cred), 64);
	else
		cr_assert_eq(cred[0], '\0', "no credential on a refusal");
	return why;
}

/* A node enrolled with a fresh token (one that may replace its key); its
 * credential into cred. */
static void enrolled(const char *node, const char *key, const char *v4, const char *v6,
		     int64_t now, char cred[65])
{
	char tok[65], err[512];
	int64_t id;

	token_replace(node, 3600, now, tok, &id);
	cr_assert_eq(enroll(tok, node, key, v4, v6, now, cred, err, sizeof(err)), MSTATE_OK,
		     "%s", err);
}

static enum mstate_refusal lookup(const char *tok, int64_t now, char *node, size_t len)
{
	enum mstate_refusal why = 99;
	char err[512];

	cr_assert_eq(mstate_token_node(T.st, tok, now, node, len, &why, err, sizeof(err)), 0,
		     "%s", err);
	return why;
}

static int cred_node(const char *cred, char *node, size_t len)
{
	char err[512];

	return mstate_node_by_credential(T.st, cred, node, len, err, sizeof(err));
}

/* ---- the file ---- */

Test(mstate, schema_created_and_reopened)
{
	char err[512], tok[65], node[64], wal[200];
	struct stat sb;
	int64_t id;

	cr_assert_eq(stat(T.db, &sb), 0);
	cr_assert_eq(sb.st_mode & 0777, 0600, "mode %o", sb.st_mode & 0777);
	cr_assert_eq(q("PRAGMA user_version"), MSTATE_SCHEMA_VERSION);
	cr_assert_eq(q("SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND"
		       " name IN ('nodes', 'tokens', 'audit')"), 3);
	cr_assert_eq(q("SELECT count(*) FROM pragma_table_info('nodes')"), 8);
	cr_assert_eq(q("SELECT count(*) FROM pragma_table_info('tokens')"), 8);
	cr_assert_eq(q("SELECT count(*) FROM pragma_table_info('audit')"), 6);
	token("ord1", 3600, T0, tok, &id);
	cr_assert_eq(id, 1);
	/* SQLite gives the -wal file the database's mode */
	snprintf(wal, sizeof(wal), "%s-wal", T.db);
	cr_assert_eq(stat(wal, &sb), 0);
	cr_assert_eq(sb.st_mode & 0777, 0600, "-wal mode %o", sb.st_mode & 0777);
	mstate_close(T.st);
	T.st = NULL;
	cr_assert_eq(mstate_open(T.db, &T.st, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(lookup(tok, T0, node, sizeof(node)), MSTATE_OK);
	cr_assert_str_eq(node, "ord1");
	cr_assert_eq(q("PRAGMA user_version"), MSTATE_SCHEMA_VERSION);
}

Test(mstate, wider_mode_made_0600)
{
	char err[512], wal[200], shm[200], want[800];
	struct stat sb;
	int fd;

	cr_assert_null(mstate_warning(T.st), "a new file: nothing to say");
	mstate_close(T.st);
	T.st = NULL;
	snprintf(wal, sizeof(wal), "%s-wal", T.db);
	snprintf(shm, sizeof(shm), "%s-shm", T.db);
	unlink(shm);
	cr_assert_eq(chmod(T.db, 0644), 0);
	/* a -wal a run left behind, readable by all (SQLite takes it as it is) */
	cr_assert_geq(fd = open(wal, O_WRONLY | O_CREAT | O_TRUNC, 0600), 0);
	close(fd);
	cr_assert_eq(chmod(wal, 0664), 0);
	cr_assert_eq(mstate_open(T.db, &T.st, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(stat(T.db, &sb), 0);
	cr_assert_eq(sb.st_mode & 07777, 0600, "mode %o", sb.st_mode & 07777);
	cr_assert_eq(stat(wal, &sb), 0);
	cr_assert_eq(sb.st_mode & 07777, 0600, "-wal mode %o", sb.st_mode & 07777);
	cr_assert_eq(stat(shm, &sb), 0);
	cr_assert_eq(sb.st_mode & 07777, 0600, "-shm mode %o", sb.st_mode & 07777);
	snprintf(want, sizeof(want), "state %s: mode was 0644, set to 0600; state %s: mode was 0664,"
		 " set to 0600", T.db, wal);
	cr_assert_not_null(mstate_warning(T.st));
	cr_assert_str_eq(mstate_warning(T.st), want);
	/* and the next open has nothing to say */
	mstate_close(T.st);
	cr_assert_eq(mstate_open(T.db, &T.st, err, sizeof(err)), 0, "%s", err);
	cr_assert_null(mstate_warning(T.st), "%s", mstate_warning(T.st));
}

Test(mstate, wal_mode)
{
	sqlite3 *db;
	sqlite3_stmt *s;

	cr_assert_eq(sqlite3_open_v2(T.db, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	cr_assert_eq(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &s, NULL), SQLITE_OK);
	cr_assert_eq(sqlite3_step(s), SQLITE_ROW);
	cr_assert_str_eq((const char *)sqlite3_column_text(s, 0), "wal");
	sqlite3_finalize(s);
	sqlite3_close(db);
}

Test(mstate, newer_schema_refused)
{
	char err[512], msg[256];
	struct mstate *st;

	cr_assert_eq(raw_exec("PRAGMA user_version = 7", msg, sizeof(msg)), SQLITE_OK, "%s", msg);
	cr_assert_eq(mstate_open(T.db, &st, err, sizeof(err)), -EPROTO);
	cr_assert(strstr(err, "schema version 7, this meshd knows 2"), "%s", err);
	cr_assert(strstr(err, T.db), "%s", err);
}

Test(mstate, not_a_database)
{
	char path[200], err[512];
	struct mstate *st;
	FILE *f;

	snprintf(path, sizeof(path), "%s/junk.db", T.dir);
	cr_assert_not_null(f = fopen(path, "w"));
	for (int i = 0; i < 200; i++)
		fputs("this is not an SQLite database at all\n", f);
	fclose(f);
	cr_assert_lt(mstate_open(path, &st, err, sizeof(err)), 0);
	cr_assert_null(st);
	cr_assert(strstr(err, path) && strstr(err, "not a database"), "%s", err);
}

Test(mstate, unwritable_path)
{
	char err[512];
	struct mstate *st;

	cr_assert_eq(mstate_open("/nonexistent-dir/state.db", &st, err, sizeof(err)), -ENOENT);
	cr_assert_str_eq(err, "state /nonexistent-dir/state.db: No such file or directory");
}

/* ---- a lock another process holds ---- */

/* A second connection of our own that holds the write lock (BEGIN
 * IMMEDIATE, as a sqlite3 shell or a backup would) until released. */
static sqlite3 *lock_hold(const char *how)
{
	sqlite3 *db;

	cr_assert_eq(sqlite3_open_v2(T.db, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
	cr_assert_eq(sqlite3_exec(db, how, NULL, NULL, NULL), SQLITE_OK, "%s: %s", how,
		     sqlite3_errmsg(db));
	return db;
}

static void lock_release(sqlite3 *db)
{
	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	sqlite3_close(db);
}

Test(mstate, busy_is_ebusy_not_eio)
{
	char tok[65], tok2[65], cred[65], node[64], want[300], err[512];
	struct mstate_enroll_req r = { .node = "ord1", .public_key = KEY_A };
	enum mstate_refusal why = 99;
	int64_t id;
	sqlite3 *db;

	snprintf(want, sizeof(want), "state %s: busy (another process holds the database lock)", T.db);
	token("ord1", 3600, T0, tok, &id);
	r.token = tok;
	db = lock_hold("BEGIN IMMEDIATE");
	/* every writer: waits MSTATE_BUSY_MS at most, then says busy */
	cr_assert_eq(mstate_token_create(T.st, "ord1", 3600, T0, NULL, false, tok2, &id, NULL, err,
					 sizeof(err)), -EBUSY, "%s", err);
	cr_assert_str_eq(err, want);
	cr_assert_eq(tok2[0], '\0');
	cr_assert_eq(mstate_enroll(T.st, &r, T0, cred, &why, err, sizeof(err)), -EBUSY, "%s", err);
	cr_assert_str_eq(err, want);
	cr_assert_eq(why, MSTATE_OK);
	cr_assert_eq(cred[0], '\0');
	cr_assert_eq(mstate_node_disable(T.st, "ord1", T0, NULL, err, sizeof(err)), -EBUSY, "%s", err);
	cr_assert_eq(mstate_token_revoke(T.st, id, T0, NULL, NULL, 0, err, sizeof(err)), -EBUSY, "%s", err);
	cr_assert_eq(mstate_audit(T.st, T0, "refused", NULL, NULL, NULL, err, sizeof(err)), -EBUSY);
	cr_assert_str_eq(err, want);
	/* readers are not held up by a writer in WAL mode */
	cr_assert_eq(lookup(tok, T0, node, sizeof(node)), MSTATE_OK);
	lock_release(db);
	/* and once the lock is gone, the same calls go through */
	cr_assert_eq(enroll(tok, "ord1", KEY_A, NULL, NULL, T0, cred, err, sizeof(err)), MSTATE_OK,
		     "%s", err);
}

/* ---- tokens ---- */

Test(mstate, token_redeemed_exactly_once)
{
	char tok[65], cred[65], cred2[65], node[64], err[512];
	int64_t id;

	token("ord1", 3600, T0, tok, &id);
	cr_assert_eq(lookup(tok, T0 + 10, node, sizeof(node)), MSTATE_OK);
	cr_assert_str_eq(node, "ord1");
	cr_assert_eq(enroll(tok, "ord1", KEY_A, "10.10.10.2", NULL, T0 + 10, cred, err,
			    sizeof(err)), MSTATE_OK, "%s", err);
	cr_assert_eq(cred_node(cred, node, sizeof(node)), 0);
	cr_assert_str_eq(node, "ord1");
	cr_assert_eq(lookup(tok, T0 + 11, node, sizeof(node)), MSTATE_TOKEN_REDEEMED);
	/* (with another key: the same one would be a retry, see below) */
	cr_assert_eq(enroll(tok, "ord1", KEY_B, "10.10.10.2", NULL, T0 + 11, cred2, err,
			    sizeof(err)), MSTATE_TOKEN_REDEEMED);
	cr_assert_str_eq(err, "token refused: already redeemed");
	cr_assert_eq(cred_node(cred, node, sizeof(node)), 0, "the first credential stays");
	cr_assert_eq(q("SELECT redeemed_at FROM tokens"), T0 + 10);
	cr_assert_eq(q("SELECT count(*) FROM tokens WHERE redeemed_by = '198.51.100.6'"), 1);
}

Test(mstate, token_expires)
{
	char tok[65], cred[65], node[64], err[512];
	int64_t id;

	token("ord1", 60, T0, tok, &id);
	cr_assert_eq(lookup(tok, T0 + 59, node, sizeof(node)), MSTATE_OK);
	cr_assert_eq(lookup(tok, T0 + 60, node, sizeof(node)), MSTATE_TOKEN_EXPIRED);
	cr_assert_str_eq(node, "ord1", "an expired token still names its node");
	cr_assert_eq(enroll(tok, "ord1", KEY_A, NULL, NULL, T0 + 60, cred, err, sizeof(err)),
		     MSTATE_TOKEN_EXPIRED);
	cr_assert_str_eq(err, "token refused: expired");
	cr_assert_eq(q("SELECT count(*) FROM tokens WHERE redeemed_at IS NULL"), 1);
	cr_assert_eq(q("SELECT count(*) FROM nodes"), 0);
}

Test(mstate, unknown_token)
{
	char cred[65], node[64] = "x", err[512];
	const char *bad[] = {
		"0000000000000000000000000000000000000000000000000000000000000000",
		"00000000000000000000000000000000000000000000000000000000000000",
		"000000000000000000000000000000000000000000000000000000000000000G",
		"ABCDEF0000000000000000000000000000000000000000000000000000000000",
		"", "' OR 1=1 --",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_eq(lookup(bad[i], T0, node, sizeof(node)), MSTATE_TOKEN_UNKNOWN, "%s", bad[i]);
		cr_assert_str_eq(node, "");
		cr_assert_eq(enroll(bad[i], "ord1", KEY_A, NULL, NULL, T0, cred, err, sizeof(err)),
			     MSTATE_TOKEN_UNKNOWN, "%s", bad[i]);
		cr_assert_str_eq(err, "token refused: unknown");
	}
	cr_assert_eq(q("SELECT count(*) FROM audit WHERE event = 'refused'"
		       " AND detail = 'enroll: token refused: unknown'"), 6);
}

Test(mstate, token_for_another_node)
{
	char tok[65], cred[65], node[64], err[512];
	int64_t id;

	token("ord1", 3600, T0, tok, &id);
	cr_assert_eq(enroll(tok, "lax1", KEY_A, NULL, NULL, T0, cred, err, sizeof(err)),
		     MSTATE_TOKEN_OTHER_NODE);
	cr_assert_str_eq(err, "token refused: issued for another node");
	cr_assert_eq(q("SELECT count(*) FROM nodes"), 0);
	cr_assert_eq(lookup(tok, T0, node, sizeof(node)), MSTATE_OK, "still open for ord1");
	cr_assert_eq(enroll(tok, "ord1", KEY_A, NULL, NULL, T0, cred, err, sizeof(err)),
		     MSTATE_OK, "%s", err);
	cr_assert_eq(q("SELECT count(*) FROM audit WHERE event = 'refused' AND node = 'lax1'"
		       " AND detail = 'enroll: token 1: token refused: issued for another node'"), 1);
}

Test(mstate, token_create_bounds)
{
	char tok[65] = "x", err[512];
	int64_t id;

	cr_assert_eq(mstate_token_create(T.st, "ord1", 59, T0, NULL, false, tok, &id, NULL, err,
					 sizeof(err)), -EINVAL);
	cr_assert_str_eq(err, "ttl 59 s is outside 60 s .. 30 days");
	cr_assert_eq(tok[0], '\0');
	cr_assert_eq(mstate_token_create(T.st, "ord1", 30 * 86400 + 1, T0, NULL, false, tok, &id, NULL,
					 err, sizeof(err)), -EINVAL);
	cr_assert_eq(mstate_token_create(T.st, "Ord-1", 60, T0, NULL, false, tok, &id, NULL, err,
					 sizeof(err)), -EINVAL);
	cr_assert_str_eq(err, "'Ord-1' is not a node name");
	cr_assert_eq(mstate_token_create(T.st, "ord1", 30 * 86400, T0, NULL, false, tok, &id, NULL, err,
					 sizeof(err)), 0, "%s", err);
	cr_assert_eq(q("SELECT count(*) FROM tokens"), 1);
}

Test(mstate, tokens_differ)
{
	char a[65], b[65];
	int64_t ia, ib;

	token("ord1", 3600, T0, a, &ia);
	token("ord1", 3600, T0, b, &ib);
	cr_assert_str_neq(a, b);
	cr_assert_eq(ib, ia + 1);
}

/* ---- one redemption per node: the others are void ---- */

static const char *token_state(json_t *l, size_t i)
{
	return json_string_value(json_object_get(json_array_get(l, i), "state"));
}

Test(mstate, redemption_voids_the_nodes_other_tokens)
{
	char a[65], b[65], c[65], d[65], cred[65], node[64], err[512];
	json_t *l;
	int64_t id;

	token("ord1", 3600, T0, a, &id);
	token("ord1", 3600, T0, b, &id);
	token("ord1", 60, T0, c, &id);                      /* expires by itself first */
	token("lax1", 3600, T0, d, &id);                    /* another node's: untouched */
	cr_assert_eq(enroll(a, "ord1", KEY_A, NULL, NULL, T0 + 100, cred, err, sizeof(err)),
		     MSTATE_OK, "%s", err);
	cr_assert_eq(lookup(b, T0 + 100, node, sizeof(node)), MSTATE_TOKEN_EXPIRED);
	cr_assert_eq(enroll(b, "ord1", KEY_B, NULL, NULL, T0 + 101, cred, err, sizeof(err)),
		     MSTATE_TOKEN_EXPIRED, "the holder of another token cannot take ord1 over");
	cr_assert_str_eq(err, "token refused: expired");
	cr_assert_eq(q("SELECT expires_at FROM tokens WHERE id = 2"), T0 + 100, "voided: expires now");
	cr_assert_eq(q("SELECT expires_at FROM tokens WHERE id = 3"), T0 + 60, "already expired: as it was");
	cr_assert_eq(q("SELECT count(*) FROM tokens"), 4, "nothing deleted");
	cr_assert_eq(lookup(d, T0 + 101, node, sizeof(node)), MSTATE_OK);
	cr_assert_eq(q("SELECT count(*) FROM audit WHERE event = 'tokens_voided' AND node = 'ord1'"
		       " AND detail = '1 open token voided by the redemption of token 1'"
		       " AND source = '198.51.100.6'"), 1);
	cr_assert_not_null(l = mstate_token_list(T.st, T0 + 101, err, sizeof(err)), "%s", err);
	cr_assert_str_eq(token_state(l, 0), "redeemed");
	cr_assert_str_eq(token_state(l, 1), "expired");
	cr_assert_str_eq(token_state(l, 2), "expired");
	cr_assert_str_eq(token_state(l, 3), "open");
	json_decref(l);
	/* nothing open to void: no row */
	cr_assert_eq(enroll(d, "lax1", KEY_C, NULL, NULL, T0 + 102, cred, err, sizeof(err)), MSTATE_OK);
	cr_assert_eq(q("SELECT count(*) FROM audit WHERE event = 'tokens_voided'"), 1);
}

Test(mstate, token_for_an_enrolled_node_needs_replace)
{
	char tok[65] = "x", cred[65], want[300], err[512];
	int64_t id;

	enrolled("ord1", KEY_A, "10.10.10.2", NULL, T0, cred);
	cr_assert_eq(mstate_token_create(T.st, "ord1", 3600, T0 + 5, NULL, false, tok, &id, NULL,
					 err, sizeof(err)), -EEXIST);
	snprintf(want, sizeof(want), "ord1 is enrolled (since 2026-09-21T14:13:20Z): a new token would"
		 " let its holder replace the node's key; pass --replace to mean it");
	cr_assert_str_eq(err, want);
	cr_assert_eq(tok[0], '\0');
	cr_assert_eq(q("SELECT count(*) FROM tokens"), 1);
	/* replace says it is meant; and a node never enrolled needs no replace */
	token_replace("ord1", 3600, T0 + 5, tok, &id);
	token_replace("lax1", 3600, T0 + 5, tok, &id);
	/* a disabled node: no token either way */
	cr_assert_eq(mstate_node_disable(T.st, "ord1", T0 + 6, NULL, err, sizeof(err)), 0);
	cr_assert_eq(mstate_token_create(T.st, "ord1", 3600, T0 + 7, NULL, false, tok, &id, NULL,
					 err, sizeof(err)), -EPERM);
}

Test(mstate, token_revoke)
{
	char a[65], b[65], c[65], cred[65], node[64] = "x", err[512];
	int64_t ia, ib, ic;

	token("ord1", 3600, T0, a, &ia);
	token("lax1", 60, T0, b, &ib);
	token("sfo1", 3600, T0, c, &ic);
	cr_assert_eq(mstate_token_revoke(T.st, ia, T0 + 10, "admin uid 0", node, sizeof(node), err,
					 sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(node, "ord1");
	cr_assert_eq(lookup(a, T0 + 10, node, sizeof(node)), MSTATE_TOKEN_EXPIRED);
	cr_assert_eq(enroll(a, "ord1", KEY_A, NULL, NULL, T0 + 11, cred, err, sizeof(err)),
		     MSTATE_TOKEN_EXPIRED);
	cr_assert_eq(q("SELECT expires_at FROM tokens WHERE id = 1"), T0 + 10);
	cr_assert_eq(q("SELECT count(*) FROM audit WHERE event = 'token_revoked' AND node = 'ord1'"
		       " AND detail = 'token 1' AND source = 'admin uid 0'"), 1);
	cr_assert_eq(mstate_token_revoke(T.st, ia, T0 + 12, NULL, NULL, 0, err, sizeof(err)), -EALREADY);
	cr_assert_str_eq(err, "token 1: already expired (2026-09-21T14:13:30Z)");
	cr_assert_eq(mstate_token_revoke(T.st, ib, T0 + 60, NULL, NULL, 0, err, sizeof(err)), -EALREADY);
	cr_assert_str_eq(err, "token 2: already expired (2026-09-21T14:14:20Z)");
	cr_assert_eq(enroll(c, "sfo1", KEY_C, NULL, NULL, T0 + 13, cred, err, sizeof(err)), MSTATE_OK);
	cr_assert_eq(mstate_token_revoke(T.st, ic, T0 + 14, NULL, NULL, 0, err, sizeof(err)), -EALREADY);
	cr_assert_str_eq(err, "token 3: already redeemed (2026-09-21T14:13:33Z)");
	cr_assert_eq(mstate_token_revoke(T.st, 99, T0, NULL, NULL, 0, err, sizeof(err)), -ENOENT);
	cr_assert_str_eq(err, "token 99: no such token");
	cr_assert_eq(mstate_token_revoke(T.st, -1, T0, NULL, NULL, 0, err, sizeof(err)), -ENOENT);
	cr_assert_eq(q("SELECT count(*) FROM audit WHERE event = 'token_revoked'"), 1);
	cr_assert_eq(q("SELECT count(*) FROM tokens"), 3);
}

/* ---- a lost reply: the same enrolment again ---- */

static enum mstate_refusal enroll_retry(const char *tok, const char *key, int64_t now,
					char cred[65], bool *retry)
{
	struct mstate_enroll_req r = {
		.token = tok, .node = "ord1", .public_key = key, .external_ip = "198.51.100.6",
		.tunnel_ipv4 = "10.10.10.2", .source = "198.51.100.6",
	};
	enum mstate_refusal why = 99;
	char err[512];

	cr_assert_eq(mstate_enroll_ex(T.st, &r, now, cred, &why, retry, err, sizeof(err)), 0, "%s", err);
	if (why != MSTATE_OK)
		cr_assert_str_eq(err, "token refused: already redeemed");
	return why;
}

Test(mstate, retry_with_the_same_key_rotates_the_credential)
{
	char tok[65], c1[65], c2[65], c3[65], node[64], err[512];
	struct mstate_node n;
	bool retry = true;
	int64_t id;

	token("ord1", 3600, T0, tok, &id);
	cr_assert_eq(enroll_retry(tok, KEY_A, T0 + 10, c1, &retry), MSTATE_OK);
	cr_assert_not(retry, "the first is an enrolment");
	/* the reply with c1 was lost; the node asks again with the same key */
	cr_assert_eq(enroll_retry(tok, KEY_A, T0 + 70, c2, &retry), MSTATE_OK);
	cr_assert(retry);
	cr_assert_str_neq(c1, c2);
	cr_assert_eq(cred_node(c1, node, sizeof(node)), -ENOENT, "the lost credential is dead");
	cr_assert_eq(cred_node(c2, node, sizeof(node)), 0);
	cr_assert_str_eq(node, "ord1");
	/* again, within the ten minutes of the redemption */
	cr_assert_eq(enroll_retry(tok, KEY_A, T0 + 10 + MSTATE_RETRY_S - 1, c3, &retry), MSTATE_OK);
	cr_assert_eq(cred_node(c2, node, sizeof(node)), -ENOENT);
	cr_assert_eq(cred_node(c3, node, sizeof(node)), 0);
	cr_assert_eq(mstate_node_get(T.st, "ord1", &n, err, sizeof(err)), 0);
	cr_assert_str_eq(n.public_key, KEY_A);
	cr_assert_eq(n.enrolled_at, T0 + 10);
	cr_assert_eq(q("SELECT redeemed_at FROM tokens"), T0 + 10, "the redemption time stays");
	cr_assert_eq(q("SELECT count(*) FROM audit WHERE event = 'enrolled'"), 1);
	cr_assert_eq(q("SELECT count(*) FROM audit WHERE event = 'enroll_retry' AND node = 'ord1' AND"
		       " detail = 'token 1; public key " KEY_A "; credential replaced'"), 2);
	/* mstate_enroll takes retries too, without telling */
	cr_assert_eq(enroll(tok, "ord1", KEY_A, "10.10.10.2", NULL, T0 + 100, c1, err, sizeof(err)),
		     MSTATE_OK, "%s", err);
}

Test(mstate, retry_refused_otherwise)
{
	char tok[65], tok2[65], c1[65], c2[65], node[64], err[512];
	bool retry = true;
	int64_t id;

	token("ord1", 3600, T0, tok, &id);
	cr_assert_eq(enroll_retry(tok, KEY_A, T0, c1, &retry), MSTATE_OK);
	/* another key: whoever copied the token is not the node */
	cr_assert_eq(enroll_retry(tok, KEY_B, T0 + 1, c2, &retry), MSTATE_TOKEN_REDEEMED);
	cr_assert_not(retry);
	/* ten minutes after the redemption */
	cr_assert_eq(enroll_retry(tok, KEY_A, T0 + MSTATE_RETRY_S, c2, &retry), MSTATE_TOKEN_REDEEMED);
	cr_assert_eq(cred_node(c1, node, sizeof(node)), 0, "the credential stays");
	/* another node's name */
	struct mstate_enroll_req r = { .token = tok, .node = "lax1", .public_key = KEY_A };
	enum mstate_refusal why;

	cr_assert_eq(mstate_enroll_ex(T.st, &r, T0 + 2, c2, &why, &retry, err, sizeof(err)), 0);
	cr_assert_eq(why, MSTATE_TOKEN_REDEEMED);
	cr_assert_not(retry);
	/* the node enrolled again since, with another token: the old one is spent */
	token_replace("ord1", 3600, T0 + 3, tok2, &id);
	cr_assert_eq(enroll_retry(tok2, KEY_A, T0 + 4, c1, &retry), MSTATE_OK);
	cr_assert_not(retry);
	cr_assert_eq(enroll_retry(tok, KEY_A, T0 + 5, c2, &retry), MSTATE_TOKEN_REDEEMED);
	cr_assert_eq(cred_node(c1, node, sizeof(node)), 0);
	/* a disabled node */
	cr_assert_eq(mstate_node_disable(T.st, "ord1", T0 + 6, NULL, err, sizeof(err)), 0);
	cr_assert_eq(enroll_retry(tok2, KEY_A, T0 + 7, c2, &retry), MSTATE_TOKEN_REDEEMED);
	cr_assert_eq(cred_node(c1, node, sizeof(node)), -ENOENT);
	cr_assert_eq(q("SELECT count(*) FROM audit WHERE event = 'enroll_retry'"), 0);
	cr_assert_eq(q("SELECT count(*) FROM audit WHERE event = 'refused' AND"
		       " detail LIKE '%already redeemed'"), 5);
}

Test(mstate, schema_1_is_updated)
{
	char err[512], msg[256], tok[65], cred[65];
	bool retry;
	int64_t id;

	/* a version 1 file: tokens without public_key, one redeemed */
	mstate_close(T.st);
	T.st = NULL;
	unlink(T.db);
	close(open(T.db, O_WRONLY | O_CREAT | O_TRUNC, 0600));
	cr_assert_eq(raw_exec("CREATE TABLE nodes(name TEXT PRIMARY KEY, public_key TEXT UNIQUE NOT NULL,"
			      " tunnel_ipv4 TEXT UNIQUE, tunnel_ipv6 TEXT UNIQUE, external_ip TEXT,"
			      " credential_hash TEXT UNIQUE NOT NULL, enrolled_at INTEGER NOT NULL,"
			      " disabled_at INTEGER);"
			      "CREATE TABLE tokens(id INTEGER PRIMARY KEY, hash TEXT UNIQUE NOT NULL,"
			      " node TEXT NOT NULL, created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL,"
			      " redeemed_at INTEGER, redeemed_by TEXT);"
			      "CREATE TABLE audit(id INTEGER PRIMARY KEY, at INTEGER NOT NULL, event TEXT NOT NULL,"
			      " node TEXT, source TEXT, detail TEXT);"
			      "INSERT INTO tokens(hash, node, created_at, expires_at, redeemed_at)"
			      " VALUES('x', 'lax1', 1, 2, 1);"
			      "PRAGMA user_version = 1;", msg, sizeof(msg)), SQLITE_OK, "%s", msg);
	cr_assert_eq(mstate_open(T.db, &T.st, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(q("PRAGMA user_version"), 2);
	cr_assert_eq(q("SELECT count(*) FROM pragma_table_info('tokens') WHERE name = 'public_key'"), 1);
	cr_assert_eq(q("SELECT count(*) FROM tokens WHERE public_key IS NULL"), 1, "rows kept");
	token("ord1", 3600, T0, tok, &id);
	cr_assert_eq(enroll_retry(tok, KEY_A, T0, cred, &retry), MSTATE_OK);
	cr_assert_eq(enroll_retry(tok, KEY_A, T0 + 1, cred, &retry), MSTATE_OK);
	cr_assert(retry);
}

/* ---- keys and tunnel addresses ---- */

Test(mstate, key_and_address_unique_across_nodes)
{
	char cred[65], err[512], tok[65];
	int64_t id;

	enrolled("lax1", KEY_A, "10.10.10.1", "fd00:10:10::1", T0, cred);
	token("ord1", 3600, T0, tok, &id);
	cr_assert_eq(enroll(tok, "ord1", KEY_A, "10.10.10.2", NULL, T0, cred, err, sizeof(err)),
		     MSTATE_KEY_TAKEN);
	cr_assert_str_eq(err, "public key already belongs to node lax1");
	cr_assert_eq(enroll(tok, "ord1", KEY_B, "10.10.10.1", NULL, T0, cred, err, sizeof(err)),
		     MSTATE_ADDRESS_TAKEN);
	cr_assert_str_eq(err, "tunnel address 10.10.10.1 already belongs to node lax1");
	/* the same address written another way is the same address */
	cr_assert_eq(enroll(tok, "ord1", KEY_B, "10.10.10.2", "fd00:10:10:0:0::1", T0, cred, err,
			    sizeof(err)), MSTATE_ADDRESS_TAKEN);
	cr_assert_str_eq(err, "tunnel address fd00:10:10::1 already belongs to node lax1");
	cr_assert_eq(q("SELECT count(*) FROM tokens WHERE redeemed_at IS NULL"), 1,
		     "refusals leave the token open");
	cr_assert_eq(enroll(tok, "ord1", KEY_B, "10.10.10.2", "fd00:10:10::2", T0, cred, err,
			    sizeof(err)), MSTATE_OK, "%s", err);
}

Test(mstate, disabled_node_keeps_its_key_and_addresses)
{
	char cred[65], err[512], tok[65];
	int64_t id;

	enrolled("lax1", KEY_A, "10.10.10.1", "fd00:10:10::1", T0, cred);
	cr_assert_eq(mstate_node_disable(T.st, "lax1", T0 + 5, "admin", err, sizeof(err)), 0, "%s", err);
	token("ord1", 3600, T0 + 6, tok, &id);
	cr_assert_eq(enroll(tok, "ord1", KEY_A, "10.10.10.2", NULL, T0 + 6, cred, err, sizeof(err)),
		     MSTATE_KEY_TAKEN);
	cr_assert_eq(enroll(tok, "ord1", KEY_B, "10.10.10.1", NULL, T0 + 6, cred, err, sizeof(err)),
		     MSTATE_ADDRESS_TAKEN);
	cr_assert_eq(enroll(tok, "ord1", KEY_B, NULL, "fd00:10:10::1", T0 + 6, cred, err, sizeof(err)),
		     MSTATE_ADDRESS_TAKEN);
	cr_assert_str_eq(err, "tunnel address fd00:10:10::1 already belongs to node lax1");
}

Test(mstate, bad_enrolment_arguments)
{
	char cred[65], err[512], tok[65];
	struct mstate_enroll_req r = { .node = "ord1", .public_key = KEY_A };
	enum mstate_refusal why;
	int64_t id;

	token("ord1", 3600, T0, tok, &id);
	r.token = tok;
	r.tunnel_ipv4 = "fd00::1";
	cr_assert_eq(mstate_enroll(T.st, &r, T0, cred, &why, err, sizeof(err)), -EINVAL);
	cr_assert_str_eq(err, "tunnel_ipv4 'fd00::1' is not an IPv4 address");
	r.tunnel_ipv4 = NULL;
	r.tunnel_ipv6 = "10.0.0.1";
	cr_assert_eq(mstate_enroll(T.st, &r, T0, cred, &why, err, sizeof(err)), -EINVAL);
	r.tunnel_ipv6 = NULL;
	r.external_ip = "example.net";
	cr_assert_eq(mstate_enroll(T.st, &r, T0, cred, &why, err, sizeof(err)), -EINVAL);
	r.external_ip = NULL;
	r.public_key = "";
	cr_assert_eq(mstate_enroll(T.st, &r, T0, cred, &why, err, sizeof(err)), -EINVAL);
	r.public_key = KEY_A;
	r.node = "../x";
	cr_assert_eq(mstate_enroll(T.st, &r, T0, cred, &why, err, sizeof(err)), -EINVAL);
	cr_assert_eq(q("SELECT count(*) FROM tokens WHERE redeemed_at IS NULL"), 1);
}

/* ---- re-enrolment, disabling ---- */

Test(mstate, reenrolment_replaces_key_and_credential)
{
	char c1[65], c2[65], node[64], err[512];
	struct mstate_node n;

	enrolled("ord1", KEY_A, "10.10.10.2", "fd00:10:10::2", T0, c1);
	enrolled("ord1", KEY_B, NULL, NULL, T0 + 100, c2);
	cr_assert_str_neq(c1, c2);
	cr_assert_eq(cred_node(c1, node, sizeof(node)), -ENOENT, "the old credential is dead");
	cr_assert_eq(cred_node(c2, node, sizeof(node)), 0);
	cr_assert_str_eq(node, "ord1");
	cr_assert_eq(mstate_node_get(T.st, "ord1", &n, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(n.public_key, KEY_B);
	cr_assert_str_eq(n.tunnel_ipv4, "10.10.10.2", "tunnel addresses stay");
	cr_assert_str_eq(n.tunnel_ipv6, "fd00:10:10::2");
	cr_assert_eq(n.enrolled_at, T0 + 100);
	cr_assert_eq(n.disabled_at, 0);
	/* the old key is free again only for its own node: nobody else holds it */
	enrolled("lax1", KEY_A, "10.10.10.1", NULL, T0 + 200, c1);
	cr_assert_eq(mstate_enrolled_count(T.st, err, sizeof(err)), 2);
}

Test(mstate, disabled_node)
{
	char c[65], tok[65], node[64], err[512];
	struct mstate_node n;
	int64_t id;

	enrolled("ord1", KEY_A, "10.10.10.2", NULL, T0, c);
	token_replace("ord1", 3600, T0, tok, &id);
	cr_assert_eq(mstate_enrolled_count(T.st, err, sizeof(err)), 1);
	cr_assert_eq(mstate_node_disable(T.st, "ord1", T0 + 50, "admin uid 0", err, sizeof(err)), 0,
		     "%s", err);
	cr_assert_eq(mstate_enrolled_count(T.st, err, sizeof(err)), 0);
	cr_assert_eq(cred_node(c, node, sizeof(node)), -ENOENT);
	cr_assert_eq(enroll(tok, "ord1", KEY_B, NULL, NULL, T0 + 51, c, err, sizeof(err)),
		     MSTATE_NODE_DISABLED);
	cr_assert_str_eq(err, "node ord1 is disabled");
	cr_assert_eq(mstate_token_create(T.st, "ord1", 3600, T0 + 52, NULL, true, tok, &id, NULL, err,
					 sizeof(err)), -EPERM);
	cr_assert_str_eq(err, "ord1: node is disabled");
	cr_assert_eq(mstate_node_disable(T.st, "ord1", T0 + 53, NULL, err, sizeof(err)), -EALREADY);
	cr_assert(strstr(err, "already disabled (since "), "%s", err);
	cr_assert_eq(mstate_node_disable(T.st, "sfo1", T0 + 53, NULL, err, sizeof(err)), -ENOENT);
	cr_assert_str_eq(err, "sfo1: not enrolled");
	cr_assert_eq(mstate_node_get(T.st, "ord1", &n, err, sizeof(err)), 0);
	cr_assert_eq(n.disabled_at, T0 + 50);
	cr_assert_eq(q("SELECT count(*) FROM audit WHERE event = 'disabled' AND node = 'ord1'"
		       " AND source = 'admin uid 0'"), 1);
}

/* ---- lists ---- */

Test(mstate, token_list_states)
{
	char a[65], b[65], c[65], cred[65], err[512];
	json_t *l, *t;
	int64_t id;

	token("ord1", 60, T0, a, &id);                       /* expires */
	token("lax1", 3600, T0, b, &id);                     /* redeemed */
	token("sfo1", 3600, T0, c, &id);                     /* open */
	cr_assert_eq(enroll(b, "lax1", KEY_A, NULL, NULL, T0 + 30, cred, err, sizeof(err)), MSTATE_OK);
	cr_assert_not_null(l = mstate_token_list(T.st, T0 + 61, err, sizeof(err)), "%s", err);
	cr_assert_eq(json_array_size(l), 3);
	t = json_array_get(l, 0);
	cr_assert_eq(json_integer_value(json_object_get(t, "id")), 1);
	cr_assert_str_eq(json_string_value(json_object_get(t, "node")), "ord1");
	cr_assert_str_eq(json_string_value(json_object_get(t, "state")), "expired");
	cr_assert_str_eq(json_string_value(json_object_get(t, "created")), "2026-09-21T14:13:20Z");
	cr_assert_str_eq(json_string_value(json_object_get(t, "expires")), "2026-09-21T14:14:20Z");
	cr_assert(json_is_null(json_object_get(t, "redeemed")));
	cr_assert(json_is_null(json_object_get(t, "redeemed_by")));
	t = json_array_get(l, 1);
	cr_assert_str_eq(json_string_value(json_object_get(t, "state")), "redeemed");
	cr_assert_str_eq(json_string_value(json_object_get(t, "redeemed")), "2026-09-21T14:13:50Z");
	cr_assert_str_eq(json_string_value(json_object_get(t, "redeemed_by")), "198.51.100.6");
	cr_assert_str_eq(json_string_value(json_object_get(json_array_get(l, 2), "state")), "open");
	cr_assert_eq(json_object_size(t), 7);
	json_decref(l);
}

Test(mstate, node_list_and_walk)
{
	char cred[65], err[512];
	json_t *l, *n;

	enrolled("ord1", KEY_B, "10.10.10.2", NULL, T0, cred);
	enrolled("lax1", KEY_A, "10.10.10.1", "fd00:10:10::1", T0 + 1, cred);
	cr_assert_eq(mstate_node_disable(T.st, "ord1", T0 + 2, NULL, err, sizeof(err)), 0);
	cr_assert_not_null(l = mstate_node_list(T.st, err, sizeof(err)), "%s", err);
	cr_assert_eq(json_array_size(l), 2);
	n = json_array_get(l, 0);
	cr_assert_str_eq(json_string_value(json_object_get(n, "name")), "lax1", "by name");
	cr_assert_str_eq(json_string_value(json_object_get(n, "public_key")), KEY_A);
	cr_assert_str_eq(json_string_value(json_object_get(n, "external_ip")), "198.51.100.6");
	cr_assert_str_eq(json_string_value(json_object_get(n, "tunnel_ipv6")), "fd00:10:10::1");
	cr_assert_str_eq(json_string_value(json_object_get(n, "enrolled")), "2026-09-21T14:13:21Z");
	cr_assert(json_is_null(json_object_get(n, "disabled")));
	n = json_array_get(l, 1);
	cr_assert(json_is_null(json_object_get(n, "tunnel_ipv6")));
	cr_assert_str_eq(json_string_value(json_object_get(n, "disabled")), "2026-09-21T14:13:22Z");
	json_decref(l);
}

static int count_nodes(void *ctx, const struct mstate_node *n)
{
	int *k = ctx;

	(void)n;
	return ++*k == 2 ? 42 : 0;
}

Test(mstate, walk_stops_on_request)
{
	char cred[65], err[512];
	int k = 0;

	enrolled("a1", KEY_A, NULL, NULL, T0, cred);
	enrolled("b1", KEY_B, NULL, NULL, T0, cred);
	enrolled("c1", KEY_C, NULL, NULL, T0, cred);
	cr_assert_eq(mstate_nodes(T.st, count_nodes, &k, err, sizeof(err)), 42);
	cr_assert_eq(k, 2);
	/* and the statement was reset: a second walk starts over */
	k = -10;
	cr_assert_eq(mstate_nodes(T.st, count_nodes, &k, err, sizeof(err)), 0);
	cr_assert_eq(k, -7);
}

/* ---- history and secrets ---- */

Test(mstate, nothing_is_ever_deleted)
{
	char c[65], tok[65], err[512], msg[256];
	int64_t id, last[3] = { 0, 0, 0 };
	const char *tables[] = { "SELECT count(*) FROM nodes", "SELECT count(*) FROM tokens",
				 "SELECT count(*) FROM audit" };

	for (int round = 0; round < 6; round++) {
		switch (round) {
		case 0: enrolled("ord1", KEY_A, "10.10.10.2", NULL, T0, c); break;
		case 1: enrolled("ord1", KEY_B, NULL, NULL, T0 + 1, c); break;
		case 2: token_replace("ord1", 60, T0 + 2, tok, &id); break;
		case 3: enroll(tok, "ord1", KEY_C, NULL, NULL, T0 + 999, c, err, sizeof(err)); break;
		case 4: mstate_node_disable(T.st, "ord1", T0 + 1000, NULL, err, sizeof(err)); break;
		case 5: enroll(tok, "ord1", KEY_C, NULL, NULL, T0 + 1001, c, err, sizeof(err)); break;
		}
		for (int i = 0; i < 3; i++) {
			int64_t v = q(tables[i]);

			cr_assert_geq(v, last[i], "round %d: %s went down", round, tables[i]);
			last[i] = v;
		}
	}
	cr_assert_eq(last[0], 1);
	cr_assert_eq(last[1], 3);
	cr_assert_eq(raw_exec("DELETE FROM tokens", msg, sizeof(msg)), SQLITE_CONSTRAINT);
	cr_assert_str_eq(msg, "tokens are never deleted");
	cr_assert_eq(raw_exec("DELETE FROM nodes", msg, sizeof(msg)), SQLITE_CONSTRAINT);
	cr_assert_eq(raw_exec("DELETE FROM audit", msg, sizeof(msg)), SQLITE_CONSTRAINT);
	cr_assert_eq(raw_exec("UPDATE audit SET detail = 'x'", msg, sizeof(msg)), SQLITE_CONSTRAINT);
	cr_assert_eq(q(tables[1]), 3);
}

/* Every byte the database keeps: the file and its WAL. */
static char *db_bytes(size_t *len)
{
	char path[200], *buf = NULL;
	size_t n = 0;

	for (int i = 0; i < 2; i++) {
		FILE *f;
		char chunk[65536];
		size_t r;

		snprintf(path, sizeof(path), "%s%s", T.db, i ? "-wal" : "");
		if (!(f = fopen(path, "rb")))
			continue;
		while ((r = fread(chunk, 1, sizeof(chunk), f)) > 0) {
			cr_assert_not_null(buf = realloc(buf, n + r));
			memcpy(buf + n, chunk, r);
			n += r;
		}
		fclose(f);
	}
	*len = n;
	return buf;
}

static void hash_hex(const char *s, char out[65])
{
	unsigned char d[32];

	cr_assert_eq(gnutls_hash_fast(GNUTLS_DIG_SHA256, s, strlen(s), d), 0);
	for (int i = 0; i < 32; i++)
		sprintf(out + 2 * i, "%02x", d[i]);
}

Test(mstate, no_secret_in_the_file)
{
	char secrets[8][65], h[65], err[512];
	size_t len;
	char *bytes;
	int64_t id;

	for (int i = 0; i < 4; i++) {
		char node[16], v4[16], key[64];

		snprintf(node, sizeof(node), "n%d", i);
		snprintf(v4, sizeof(v4), "10.0.0.%d", i + 1);
		snprintf(key, sizeof(key), "key%d", i);
		token(node, 3600, T0, secrets[2 * i], &id);
		cr_assert_eq(enroll(secrets[2 * i], node, key, v4, NULL, T0,
				    secrets[2 * i + 1], err, sizeof(err)), MSTATE_OK, "%s", err);
	}
	for (int pass = 0; pass < 2; pass++) {
		cr_assert_not_null(bytes = db_bytes(&len));
		for (int i = 0; i < 8; i++) {
			cr_assert_null(memmem(bytes, len, secrets[i], 64), "secret %d in the file", i);
			hash_hex(secrets[i], h);
			cr_assert_not_null(memmem(bytes, len, h, 64), "hash %d not in the file", i);
		}
		free(bytes);
		/* and after the WAL is folded into the file */
		mstate_close(T.st);
		T.st = NULL;
		cr_assert_eq(mstate_open(T.db, &T.st, err, sizeof(err)), 0, "%s", err);
	}
}

Test(mstate, audit_rows)
{
	char tok[65], tok2[65], c[65], err[512];
	int64_t id;

	token("ord1", 60, T0, tok, &id);
	enroll(tok, "lax1", KEY_A, NULL, NULL, T0, c, err, sizeof(err));          /* other node */
	enroll(tok, "ord1", KEY_A, NULL, NULL, T0 + 60, c, err, sizeof(err));     /* expired */
	token("ord1", 3600, T0, tok2, &id);
	cr_assert_eq(enroll(tok2, "ord1", KEY_A, "10.10.10.2", NULL, T0, c, err, sizeof(err)), MSTATE_OK);
	enroll(tok2, "ord1", KEY_B, NULL, NULL, T0, c, err, sizeof(err));         /* redeemed */
	token("lax1", 3600, T0, tok, &id);
	enroll(tok, "lax1", KEY_A, NULL, NULL, T0, c, err, sizeof(err));          /* key */
	enroll(tok, "lax1", KEY_B, "10.10.10.2", NULL, T0, c, err, sizeof(err));  /* address */
	cr_assert_eq(mstate_node_disable(T.st, "ord1", T0, "admin", err, sizeof(err)), 0);
	token("lax1", 3600, T0, tok2, &id);
	cr_assert_eq(mstate_audit(T.st, T0, "refused", "lax1", "192.0.2.1",
				  "discover: no node has this address", err, sizeof(err)), 0);
	cr_assert_eq(mstate_audit(T.st, T0, "", NULL, NULL, NULL, err, sizeof(err)), -EINVAL);

	cr_assert_eq(q("SELECT count(*) FROM audit WHERE event = 'token_created'"), 4);
	cr_assert_eq(q("SELECT count(*) FROM audit WHERE event = 'enrolled'"), 1);
	cr_assert_eq(q("SELECT count(*) FROM audit WHERE event = 'disabled'"), 1);
	cr_assert_eq(q("SELECT count(*) FROM audit WHERE event = 'refused'"), 6);
	cr_assert_eq(q("SELECT count(*) FROM audit WHERE event = 'refused' AND detail ="
		       " 'enroll: token 1: token refused: expired' AND source = '198.51.100.6'"), 1);
	cr_assert_eq(q("SELECT count(*) FROM audit WHERE event = 'refused' AND detail ="
		       " 'enroll: token 2: token refused: already redeemed'"), 1);
	cr_assert_eq(q("SELECT count(*) FROM audit WHERE event = 'refused' AND detail ="
		       " 'enroll: token 3: public key already belongs to node ord1'"), 1);
	cr_assert_eq(q("SELECT count(*) FROM audit WHERE event = 'refused' AND detail ="
		       " 'enroll: token 3: tunnel address 10.10.10.2 already belongs to node ord1'"), 1);
	cr_assert_eq(q("SELECT count(*) FROM audit WHERE event = 'enrolled' AND detail ="
		       " 'token 2; public key " KEY_A "' AND node = 'ord1'"), 1);
	cr_assert_eq(q("SELECT count(*) FROM audit WHERE at <> 1790000000 AND at <> 1790000060"), 0);
	/* no secret in any audit column: they are 64 hex, nothing else is */
	cr_assert_eq(q("SELECT count(*) FROM audit WHERE coalesce(detail, '') || coalesce(source, '')"
		       " GLOB '*[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]"
		       "[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]*'"), 0);
}

/* ---- processes: SIGKILL in the middle, and a race ---- */

#define KILLS 200

struct reader {
	int fd;
	char buf[4096];
	size_t len;
};

/* Lines from a child's pipe, each handed to fn; until EOF, or until want
 * lines were read when want > 0. Returns the lines read. */
static int read_lines(struct reader *r, int want, void (*fn)(void *ctx, const char *line),
		      void *ctx)
{
	int got = 0;

	for (;;) {
		char *nl;

		while ((want <= 0 || got < want) && (nl = memchr(r->buf, '\n', r->len))) {
			*nl = '\0';
			fn(ctx, r->buf);
			got++;
			r->len -= (size_t)(nl + 1 - r->buf);
			memmove(r->buf, nl + 1, r->len);
		}
		if (want > 0 && got >= want)
			return got;
		struct pollfd p = { .fd = r->fd, .events = POLLIN };
		cr_assert_eq(poll(&p, 1, 20000), 1, "a child said nothing for 20 s");
		ssize_t n = read(r->fd, r->buf + r->len, sizeof(r->buf) - r->len);

		cr_assert_geq(n, 0);
		if (n == 0)
			return got;
		r->len += (size_t)n;
	}
}

/* The child: tokens for four nodes in turn, each redeemed with a key of
 * its own; "T <token>" after each enroll that returned enrolled, "O"
 * once open. A second redeem of the last token must be refused ("X"
 * if it is not). */
static _Noreturn void kill_child(const char *db, int k, int out)
{
	char err[512], tok[65], cred[65], prev[65] = "", line[80], key[64], node[16], v4[16];
	struct mstate *st;
	enum mstate_refusal why;
	int64_t id, now;

	if (mstate_open(db, &st, err, sizeof(err)))
		_exit(3);
	if (write(out, "O\n", 2) != 2)
		_exit(4);
	for (int i = 0; i < 1000; i++) {
		now = T0 + (int64_t)k * 10000 + i;
		snprintf(node, sizeof(node), "n%d", i % 4);
		snprintf(v4, sizeof(v4), "10.0.0.%d", i % 4 + 1);
		snprintf(key, sizeof(key), "key-%d-%d", k, i);
		if (mstate_token_create(st, node, 3600, now, NULL, true, tok, &id, NULL, err, sizeof(err)))
			_exit(5);
		struct mstate_enroll_req r = { .token = tok, .node = node, .public_key = key,
					       .tunnel_ipv4 = v4, .source = "192.0.2.1" };
		if (mstate_enroll(st, &r, now, cred, &why, err, sizeof(err)) || why != MSTATE_OK)
			_exit(6);
		snprintf(line, sizeof(line), "T %s\n", tok);
		if (write(out, line, strlen(line)) != (ssize_t)strlen(line))
			_exit(4);
		if (prev[0] && i % 3 == 0) {
			r.token = prev;
			if (mstate_enroll(st, &r, now, cred, &why, err, sizeof(err)) ||
			    why != MSTATE_TOKEN_REDEEMED)
				if (write(out, "X\n", 2) != 2)
					_exit(4);
		}
		memcpy(prev, tok, sizeof(prev));
	}
	_exit(0);
}

/* A varied moment after the child's report, so that kills land anywhere in
 * its next operation (SQLite's writes, its fsyncs), not only at its start. */
static void spin_us(long us)
{
	struct timespec a, b;

	clock_gettime(CLOCK_MONOTONIC, &a);
	do
		clock_gettime(CLOCK_MONOTONIC, &b);
	while ((b.tv_sec - a.tv_sec) * 1000000 + (b.tv_nsec - a.tv_nsec) / 1000 < us);
}

struct committed {
	char (*tokens)[65];
	size_t n, cap;
	bool opened, twice;
};

static void on_kill_line(void *ctx, const char *line)
{
	struct committed *c = ctx;

	if (line[0] == 'O') {
		c->opened = true;
	} else if (line[0] == 'X') {
		c->twice = true;
	} else {
		cr_assert_eq(strlen(line), 66, "%s", line);
		if (c->n == c->cap)
			cr_assert_not_null(c->tokens = realloc(c->tokens, (c->cap = c->cap * 2 + 64) *
							       sizeof(*c->tokens)));
		memcpy(c->tokens[c->n++], line + 2, 65);
	}
}

Test(mstate, sigkill_never_loses_or_repeats_a_redeem, .timeout = 240)
{
	struct committed c = { 0 };
	char node[64], cred[65], err[512];
	int64_t redeemed, enrolments;

	mstate_close(T.st);
	T.st = NULL;
	for (int k = 0; k < KILLS; k++) {
		int fds[2], st;
		struct reader r = { 0 };
		pid_t pid;

		cr_assert_eq(pipe2(fds, O_CLOEXEC), 0);
		cr_assert_geq(pid = fork(), 0);
		if (pid == 0) {
			close(fds[0]);
			kill_child(T.db, k, fds[1]);
		}
		close(fds[1]);
		r.fd = fds[0];
		c.opened = false;
		/* killed right after it opened, or after 1 to 6 redeems */
		read_lines(&r, k % 7 == 0 ? 1 : 2 + (k * 5) % 6, on_kill_line, &c);
		spin_us((k * 37) % 23 * 100);
		kill(pid, SIGKILL);
		read_lines(&r, 0, on_kill_line, &c);    /* what it wrote before it died */
		close(fds[0]);
		cr_assert_eq(waitpid(pid, &st, 0), pid);
		cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL,
			  "child %d ended otherwise: status 0x%x (3: open failed, 5/6: an operation failed)",
			  k, st);
		cr_assert(c.opened);
		cr_assert_not(c.twice, "child %d redeemed a token twice", k);
	}
	cr_assert_eq(mstate_open(T.db, &T.st, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(q("SELECT count(*) FROM pragma_integrity_check WHERE integrity_check = 'ok'"), 1);
	cr_assert_geq(c.n, (size_t)KILLS);
	for (size_t i = 0; i < c.n; i++) {
		cr_assert_eq(lookup(c.tokens[i], T0 + KILLS * 10000, node, sizeof(node)),
			     MSTATE_TOKEN_REDEEMED, "reported token %zu is not redeemed", i);
		cr_assert_eq(enroll(c.tokens[i], node, "another-key", NULL, NULL, T0 + 1, cred, err,
				    sizeof(err)), MSTATE_TOKEN_REDEEMED, "token %zu: %s", i, err);
	}
	redeemed = q("SELECT count(*) FROM tokens WHERE redeemed_at IS NOT NULL");
	enrolments = q("SELECT count(*) FROM audit WHERE event = 'enrolled'");
	cr_assert_geq(redeemed, (int64_t)c.n);
	cr_assert_eq(enrolments, redeemed, "a redeem and its audit row commit together");
	cr_assert_eq(q("SELECT count(*) FROM (SELECT substr(detail, 1, instr(detail, ';')) AS t"
		       " FROM audit WHERE event = 'enrolled' GROUP BY t HAVING count(*) > 1)"), 0,
		     "one enrolment per token");
	cr_assert_eq(q("SELECT count(*) FROM audit WHERE event = 'token_created'"),
		     q("SELECT count(*) FROM tokens"));
	cr_assert_eq(q("SELECT count(*) FROM nodes"), 4);
	cr_log_info("%d kills, %zu redeems reported, %lld in the database", KILLS, c.n,
		    (long long)redeemed);
	free(c.tokens);
}

/* Two processes redeem the same tokens, in opposite orders. */
#define RACE_TOKENS 40

static _Noreturn void race_child(const char *db, char (*toks)[65], int me, int out)
{
	char err[512], cred[65], key[32], node[16], line[32];
	struct mstate *st;
	enum mstate_refusal why;

	if (mstate_open(db, &st, err, sizeof(err)))
		_exit(3);
	for (int j = 0; j < RACE_TOKENS; j++) {
		int i = me ? RACE_TOKENS - 1 - j : j;

		snprintf(node, sizeof(node), "r%d", i);
		snprintf(key, sizeof(key), "key-%d-%d", me, i);
		struct mstate_enroll_req r = { .token = toks[i], .node = node, .public_key = key };
		int rc;

		/* -EBUSY: the other racer held the lock past MSTATE_BUSY_MS; again */
		while ((rc = mstate_enroll(st, &r, T0, cred, &why, err, sizeof(err))) == -EBUSY)
			;
		if (rc)
			_exit(5);
		if (why != MSTATE_OK && why != MSTATE_TOKEN_REDEEMED)
			_exit(6);
		snprintf(line, sizeof(line), "%c %d\n", why == MSTATE_OK ? 'W' : 'L', i);
		if (write(out, line, strlen(line)) != (ssize_t)strlen(line))
			_exit(4);
	}
	mstate_close(st);
	_exit(0);
}

static void on_race_line(void *ctx, const char *line)
{
	int *wins = ctx, i = atoi(line + 2);

	cr_assert(i >= 0 && i < RACE_TOKENS);
	if (line[0] == 'W')
		wins[i]++;
}

Test(mstate, two_processes_race_for_each_token)
{
	char toks[RACE_TOKENS][65], node[16];
	int wins[RACE_TOKENS] = { 0 }, fds[2][2];
	pid_t pids[2];
	int64_t id;

	for (int i = 0; i < RACE_TOKENS; i++) {
		snprintf(node, sizeof(node), "r%d", i);
		token(node, 3600, T0 - 1, toks[i], &id);
	}
	for (int me = 0; me < 2; me++) {
		cr_assert_eq(pipe2(fds[me], O_CLOEXEC), 0);
		cr_assert_geq(pids[me] = fork(), 0);
		if (pids[me] == 0) {
			close(fds[me][0]);
			race_child(T.db, toks, me, fds[me][1]);
		}
		close(fds[me][1]);
	}
	for (int me = 0; me < 2; me++) {
		struct reader r = { .fd = fds[me][0] };
		int st;

		cr_assert_eq(read_lines(&r, 0, on_race_line, wins), RACE_TOKENS);
		close(fds[me][0]);
		cr_assert_eq(waitpid(pids[me], &st, 0), pids[me]);
		cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "racer %d: status 0x%x", me, st);
	}
	for (int i = 0; i < RACE_TOKENS; i++)
		cr_assert_eq(wins[i], 1, "token %d redeemed %d times", i, wins[i]);
	cr_assert_eq(q("SELECT count(*) FROM audit WHERE event = 'enrolled'"), RACE_TOKENS);
	cr_assert_eq(q("SELECT count(*) FROM audit WHERE event = 'refused'"), RACE_TOKENS);
}
