/*
 * tests/lib — helpers shared by the test suites, one section per file.
 */
#ifndef HEALTHD_TESTLIB_H
#define HEALTHD_TESTLIB_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <uv.h>

/* ---- birdlab.c: a real BIRD in a per-PID temp dir ---- */

struct birdlab {
	char dir[96];           /* /tmp/healthd-birdlab-PID-N */
	char conf[128];         /* DIR/bird.conf */
	char include[128];      /* DIR/healthd.conf, included by bird.conf */
	char sock[108];         /* DIR/bird.ctl */
	char pidfile[128];
	char log[128];          /* BIRD's stdout/stderr and log */
	pid_t pid;              /* 0 when not running */
};

/*
 * Create the dir and DIR/bird.conf: router id, log, a device protocol,
 * BODY, then `include "DIR/healthd.conf";` (an empty file is created).
 * Returns 0 or -errno.
 */
int birdlab_init(struct birdlab *b, const char *body);
/* Start `bird -f` as a child and wait until the socket answers with its
 * welcome, at most timeout_ms. 0, -ETIMEDOUT, or -ECHILD if BIRD exited
 * (its output is in b->log). */
int birdlab_start(struct birdlab *b, unsigned timeout_ms);
/* Send sig to BIRD's PID and reap it (SIGKILL after 5 s). */
void birdlab_stop(struct birdlab *b, int sig);
/* Stop BIRD if running and remove the dir. */
void birdlab_destroy(struct birdlab *b);
/* One command over a fresh connection, blocking with a deadline (for test
 * set-up outside a loop). The raw reply goes to out; returns the final
 * code, or -errno. */
int birdlab_cmd(struct birdlab *b, const char *cmd, char *out, size_t outlen);
/* Write text to b->include. 0 or -errno. */
int birdlab_write_include(struct birdlab *b, const char *text);

/* ---- testfile.c ---- */

/* PATH's whole text, NUL-terminated (caller frees); NULL when it cannot be
 * read whole. */
char *testlib_read_file(const char *path);

/* ---- fakebird.c: a control-socket server misbehaving on purpose ---- */

enum fakebird_mode {
	FAKEBIRD_GARBAGE,       /* welcome, then "hello, world" to any command */
	FAKEBIRD_SILENT,        /* welcome, then nothing */
	FAKEBIRD_CLOSE_MID,     /* welcome, then half a reply and close */
	FAKEBIRD_SLOW,          /* everything one byte per loop turn */
	FAKEBIRD_BAD_WELCOME,   /* "9001 ..." instead of the welcome */
	FAKEBIRD_DENY,          /* welcome, then "8007 Access denied" to anything */
	FAKEBIRD_ANSWER_CLOSE,  /* welcome, one good answer, then close */
};

/* The reply FAKEBIRD_SLOW gives to every command. */
#define FAKEBIRD_SLOW_REPLY \
	"2002-Name       Proto      Table      State  Since         Info\r\n" \
	"1002-healthd_web_v4 Static     master4    up     12:00:00.000  \r\n" \
	"+Enabling protocol healthd_web_v4\n" \
	" healthd_web_v6 Static     master6    down   12:00:00.000  \n" \
	"0000\n"

struct fakebird;

/* Listen on path (unlinked first) on loop. 0 or a libuv error. */
int fakebird_start(uv_loop_t *loop, const char *path, enum fakebird_mode mode,
		   struct fakebird **out);
unsigned fakebird_connections(const struct fakebird *f);
unsigned fakebird_commands(const struct fakebird *f);
/* Close the listener and every connection; memory goes in close callbacks. */
void fakebird_close(struct fakebird *f);

/* ---- testproc.c: a helper process that prints a ready line ---- */

struct testproc {
	pid_t pid;              /* 0 when not running */
	int out;                /* read end of the child's stdout */
	char buf[8192];         /* read but not yet returned */
	size_t len;
};

/* Start argv[0] (searched in PATH) with stdout on a pipe; the child dies
 * with the test process. 0 or -errno. */
int testproc_start(struct testproc *p, char *const argv[]);
/* The next line of the child's stdout without its newline, waiting at most
 * timeout_ms. 0, -ETIMEDOUT, -EPIPE at end of output, -ENOSPC if too long. */
int testproc_read_line(struct testproc *p, char *line, size_t len,
		       unsigned timeout_ms);
/* SIGTERM to the child's PID, then SIGKILL after 5 s; reaps it. */
void testproc_stop(struct testproc *p);
/* SRCDIR/rel into buf: the source tree is found from /proc/self/exe
 * (BUILD/tests/X) or $HEALTHD_SRC. 0 or -errno. */
int testproc_srcpath(char *buf, size_t len, const char *rel);

#endif
