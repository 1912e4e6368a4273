/*
 * bird-glue/ private: the table of protocols healthd owns, shared by
 * table.c (build, lookup, the include file's text), writer.c (the file
 * written off the loop) and sync.c (the commands).
 *
 * Every protocol is found by its name; nothing outside one table version
 * holds an index or a pointer into it, so a reload can swap it at any time,
 * commands in flight included.
 */
#ifndef HEALTHD_BIRD_TABLE_H
#define HEALTHD_BIRD_TABLE_H

#include "bird-glue/bird.h"

enum bstate { B_UNKNOWN = -1, B_MISSING = 0, B_DOWN = 1, B_UP = 2 };

struct backoff {
	uint64_t delay_ms;      /* 0: no failure since the last success */
	uint64_t until_ms;      /* nothing of this kind is sent before */
};

struct sync_proto {
	char name[BIRD_PROTO_NAME_MAX];
	char svc[CFG_NAME_MAX];
	int family;             /* AF_INET, AF_INET6 */
	int variant;            /* enum cfg_comm_set: the state it announces */
	bool leaving;           /* its service, family or state left the config */
	bool want;              /* desired: enabled */
	enum bstate bird;       /* what BIRD last told */
	struct backoff bo;      /* enable/disable refused */
	struct cfg_prefix *prefixes;    /* of this family only */
	size_t n_prefixes;
	struct cfg_community *comms;
	size_t n_comms;
};

struct sync_svc {
	char name[CFG_NAME_MAX];
	bool announce;
	int variant;            /* the state asked for (enum cfg_comm_set) */
	char state[16];         /* the word for the file's comment */
	int proto[2][CFG_COMM_SETS];    /* [family][variant]: index, or -1 */
};

struct sync_table {
	struct sync_proto *protos;      /* sorted by name */
	size_t n_protos;
	struct sync_svc *svcs;          /* sorted by name */
	size_t n_svcs;
};

/* ---- table.c ---- */

/*
 * The table for cfg. Protocols and services already in old keep what BIRD
 * told and what was asked; new services take their state from TEXT (the
 * include file as it is): *file_lacks is set when one had none there.
 * Protocols of old that cfg no longer has stay, as leaving, while BIRD
 * may still run them. 0 or -ENOMEM (old untouched).
 */
int table_build(struct sync_table *out, const struct sync_table *old,
		const struct config *cfg, const char *text, bool *file_lacks);
void table_free(struct sync_table *t);
struct sync_proto *table_proto(const struct sync_table *t, const char *name);
struct sync_svc *table_svc(const struct sync_table *t, const char *name);
/* The protocol a service's state calls for in family f (0 v4, 1 v6): the
 * state's own, or the up protocol where the state has no communities of
 * its own; NULL when the service has no prefix of that family. */
struct sync_proto *table_wanted(const struct sync_table *t, const struct sync_svc *v, int f);
/* Recompute every protocol's `want` from its service. */
void table_update_wants(struct sync_table *t);
/* An unwanted protocol that stays up (and enabled in the file) while the
 * one taking over its prefixes is wanted but not up yet: the service's old
 * state, or a renamed service's old name. */
bool table_holding(const struct sync_table *t, const struct sync_proto *p);
/* BIRD runs one of the service's protocols of family f (0 v4, 1 v6), or
 * the old name's while a renamed service hands over. */
bool table_family_up(const struct sync_table *t, const struct sync_svc *v, int f);
/* Protocols healthd's file (TEXT) defines that T does not own: the
 * services removed while healthd was not running, to be disabled before
 * they are dropped. 0 or -ENOMEM. */
int table_seed_leaving(struct sync_table *t, const char *text);
/* Drop leaving protocols BIRD does not have. */
void table_drop_gone(struct sync_table *t);

/* The include file: every protocol but the leaving ones BIRD no longer
 * runs. NULL with errno set. */
char *table_render(const struct sync_table *t, const char *node);
/* TEXT (what BIRD last accepted) restated with today's `disabled` and
 * state lines: a protocol not wanted, or not ours, is disabled. */
char *table_restate(const struct sync_table *t, const char *text);
/* Equal but for the lines `enable`/`disable` take care of: then no
 * `configure` is needed. */
bool table_same_config(const char *a, const char *b);
/* The state word healthd wrote for SERVICE into TEXT: 1 when found. */
int table_state_in(const char *text, const char *service, char *state, size_t len);
/* The whole file; "" when it does not exist. 0 or -errno. */
int table_read_file(const char *path, char **out);
const char *bstate_str(enum bstate b);

/* ---- writer.c: the include file, written by a thread of its own ---- */

/*
 * A write never waits behind the probes' resolver or anything else on
 * libuv's thread pool, and nothing on the loop waits for a write: the
 * commands to BIRD go out at once, the file follows.
 */
struct bird_writer;
/* done runs on the loop; it owns text (what was written, or not). */
typedef void (*writer_done_cb)(void *arg, char *text, int rc, const char *err);
int writer_new(uv_loop_t *loop, writer_done_cb done, void *arg, struct bird_writer **out);
bool writer_busy(const struct bird_writer *w);
/* Takes text. -EBUSY while a write is under way. */
int writer_submit(struct bird_writer *w, const char *path, char *text);
/* Waits for a write under way; done is not called again. Memory goes with
 * the handle, from the loop. */
void writer_close(struct bird_writer *w);

#endif
