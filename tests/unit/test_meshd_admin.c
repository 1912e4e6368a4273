/*
 * test_meshd_admin — meshd/admin.c on a real libuv loop, and its client
 * (mesh/admin_client.c, `meshctl token|node`). The server runs in a
 * forked child on its own loop over a state in a per-PID temp dir; it
 * reports "ready", the changed hook and its log lines on a pipe, and ends
 * on SIGTERM with every handle closed. The clock is fixed at T0.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/lsan_interface.h>
#endif

#include "mesh/admin_client.h"
#include "meshd/admin.h"
#include "meshd/state.h"

#define T0 1790000000       /* 2026-09-21T14:13:20Z */
#define DEADLINE_MS 300

static struct {
	char dir[96], db[128], sock[128];
	pid_t pid;              /* the server child; 0 when none */
	int events;             /* its pipe */
	char ev[8192];          /* read from it, not yet taken */
	size_t evlen;
	unsigned deadline_ms;   /* the server's; 0: DEADLINE_MS */
} T;

static void setup(void)
{
	static int n;

	snprintf(T.dir, sizeof(T.dir), "/tmp/meshd-admin-%d-%d", (int)getpid(), n++);
	cr_assert_eq(mkdir(T.dir, 0700), 0, "%s: %s", T.dir, strerror(errno));
	snprintf(T.db, sizeof(T.db), "%s/state.db", T.dir);
	snprintf(T.sock, sizeof(T.sock), "%s/admin.sock", T.dir);
	T.pid = 0;
	T.events = -1;
	T.evlen = 0;
	T.deadline_ms = 0;
	unsetenv(MESH_ADMIN_SOCKET_ENV);
}

static int server_stop(void);

/* The dir goes first, so that a server that ended badly leaves nothing. */
static void teardown(void)
{
	char cmd[200];
	int st = T.pid ? server_stop() : 0;

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", T.dir);
	if (T.dir[0] && system(cmd) != 0)
		cr_log_warn("could not remove %s", T.dir);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0,
		  "server status 0x%x (9: handles left open, 8: memory leaked)", st);
}

TestSuite(admin, .init = setup, .fini = teardown, .timeout = 30);

/* src into dst[len], cut if it must be (snprintf would warn of it). */
static void copy(char *dst, size_t len, const char *src)
{
	size_t n = strnlen(src, len - 1);

	memcpy(dst, src, n);
	dst[n] = '\0';
}

/* ---- the server child ---- */

static int ev_fd = -1;

static void ev_say(const char *a, const char *b)
{
	char line[600];
	int n = snprintf(line, sizeof(line), "%s%s\n", a, b);

	if (write(ev_fd, line, (size_t)n) != n)
		_exit(4);
}

static bool known(void *ctx, const char *node, char *why, size_t whylen)
{
	(void)ctx;
	if (!strcmp(node, "bad1")) {
		snprintf(why, whylen, "bad1: retired from the inventory");
		return false;
	}
	return !strcmp(node, "ord1") || !strcmp(node, "lax1");
}

static void changed(void *ctx)
{
	(void)ctx;
	ev_say("changed", "");
}

static int64_t fixed_now(void *ctx)
{
	(void)ctx;
	return T0;
}

static void log_line(void *ctx, const char *line)
{
	(void)ctx;
	ev_say("log: ", line);
}

static struct admin *child_admin;

static void on_term(uv_signal_t *s, int sig)
{
	(void)sig;
	admin_close(child_admin);
	uv_close((uv_handle_t *)s, NULL);
}

static _Noreturn void server_child(int out)
{
	struct admin_hooks h = { .node_known = known, .changed = changed, .now = fixed_now,
				 .log = log_line,
				 .deadline_ms = T.deadline_ms ? T.deadline_ms : DEADLINE_MS };
	uv_loop_t loop;
	uv_signal_t sig;
	struct mstate *st;
	char err[512];

	ev_fd = out;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	signal(SIGPIPE, SIG_IGN);       /* as meshd does: a closed peer is EPIPE */
	uv_loop_init(&loop);
	if (mstate_open(T.db, &st, err, sizeof(err)) ||
	    admin_start(&loop, T.sock, st, &h, &child_admin, err, sizeof(err))) {
		ev_say("error: ", err);
		_exit(3);
	}
	uv_signal_init(&loop, &sig);
	uv_signal_start(&sig, on_term, SIGTERM);
	ev_say("ready", "");
	uv_run(&loop, UV_RUN_DEFAULT);
	mstate_close(st);
	if (uv_loop_close(&loop) != 0)
		_exit(9);
#ifdef __SANITIZE_ADDRESS__
	/* _exit skips LeakSanitizer's own check at exit */
	if (__lsan_do_recoverable_leak_check())
		_exit(8);
#endif
	_exit(0);
}

/* The next line from the server's pipe, within 5 s. */
static void event(char *line, size_t len)
{
	for (;;) {
		char *nl = memchr(T.ev, '\n', T.evlen);
		struct pollfd p = { .fd = T.events, .events = POLLIN };
		ssize_t n;

		if (nl) {
			*nl = '\0';
			copy(line, len, T.ev);
			T.evlen -= (size_t)(nl + 1 - T.ev);
			memmove(T.ev, nl + 1, T.evlen);
			return;
		}
		cr_assert_eq(poll(&p, 1, 5000), 1, "the server said nothing for 5 s");
		n = read(T.events, T.ev + T.evlen, sizeof(T.ev) - T.evlen);
		cr_assert_gt(n, 0, "the server's pipe closed");
		T.evlen += (size_t)n;
	}
}

/* The next event that is not a log line, or the next log line. */
static void event_kind(bool log, char *line, size_t len)
{
	do
		event(line, len);
	while (!strncmp(line, "log: ", 5) != log);
}

static void server_start(void)
{
	int fds[2];
	char line[600];

	cr_assert_eq(pipe2(fds, O_CLOEXEC), 0);
	cr_assert_geq(T.pid = fork(), 0);
	if (T.pid == 0) {
		close(fds[0]);
		server_child(fds[1]);
	}
	close(fds[1]);
	T.events = fds[0];
	event(line, sizeof(line));
	cr_assert_str_eq(line, "ready");
}

/* SIGTERM; the child closes everything and says so by its exit status,
 * which teardown checks. */
static int server_stop(void)
{
	int st = 0;
	pid_t pid = T.pid;

	T.pid = 0;
	kill(pid, SIGTERM);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	close(T.events);
	return st;
}

/* Stop the server; none of its remaining log lines holds what. */
static void server_stop_and_check_log_lacks(const char *what)
{
	char buf[8192];
	ssize_t n;
	size_t len = T.evlen;
	int st;
	pid_t pid = T.pid;

	memcpy(buf, T.ev, len);
	T.pid = 0;
	kill(pid, SIGTERM);
	while (len < sizeof(buf) - 1 && (n = read(T.events, buf + len, sizeof(buf) - 1 - len)) > 0)
		len += (size_t)n;
	buf[len] = '\0';
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	close(T.events);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "server status 0x%x", st);
	cr_assert_null(strstr(buf, what), "%s", buf);
}

/* ---- clients ---- */

static int connect_sock(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	copy(sa.sun_path, sizeof(sa.sun_path), path);
	cr_assert_geq(fd, 0);
	cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0, "%s: %s", path,
		     strerror(errno));
	return fd;
}

/* Everything the server sends until it closes, within 5 s. */
static size_t read_to_eof(int fd, char *buf, size_t len)
{
	size_t n = 0;

	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t r;

		cr_assert_eq(poll(&p, 1, 5000), 1, "no reply or close within 5 s");
		r = read(fd, buf + n, len - 1 - n);
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	buf[n] = '\0';
	return n;
}

/* Raw bytes in, the raw reply out. */
static void raw(const char *req, size_t len, bool shut, char *reply, size_t replylen)
{
	int fd = connect_sock(T.sock);

	cr_assert_eq(send(fd, req, len, MSG_NOSIGNAL), (ssize_t)len);
	if (shut)
		shutdown(fd, SHUT_WR);
	read_to_eof(fd, reply, replylen);
	close(fd);
}

/* A request through the client; the reply object. */
static json_t *call(const char *json)
{
	char err[512];
	json_error_t je;
	json_t *req = json_loads(json, 0, &je), *r;

	cr_assert_not_null(req, "%s: %s", json, je.text);
	r = mesh_admin_call(T.sock, req, 5000, err, sizeof(err));
	json_decref(req);
	cr_assert_not_null(r, "%s: %s", json, err);
	return r;
}

static void expect_error(const char *json, const char *error)
{
	json_t *r = call(json);

	cr_assert(json_is_false(json_object_get(r, "ok")), "%s: ok", json);
	cr_assert_str_eq(json_string_value(json_object_get(r, "error")), error, "%s", json);
	cr_assert_eq(json_object_size(r), 2);
	json_decref(r);
}

static void expect_raw_error(const char *req, size_t len, const char *error)
{
	char reply[8192], want[1024];

	raw(req, len, false, reply, sizeof(reply));
	snprintf(want, sizeof(want), "{\"ok\":false,\"error\":\"%s\"}\n", error);
	cr_assert_str_eq(reply, want);
}

/* The state's own connection beside the server's, to enrol. */
static void enrol(const char *tok, const char *node, const char *key)
{
	struct mstate_enroll_req r = { .token = tok, .node = node, .public_key = key,
				       .tunnel_ipv4 = "10.10.10.2", .external_ip = "198.51.100.6",
				       .source = "198.51.100.6" };
	enum mstate_refusal why;
	struct mstate *st;
	char err[512], cred[65];

	cr_assert_eq(mstate_open(T.db, &st, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(mstate_enroll(st, &r, T0 + 1, cred, &why, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(why, MSTATE_OK, "%s", err);
	mstate_close(st);
}

/* ---- the ops ---- */

Test(admin, token_create_and_list)
{
	json_t *r, *t;
	const char *tok;

	server_start();
	r = call("{\"op\":\"token_create\",\"node\":\"ord1\",\"ttl\":600}");
	cr_assert(json_is_true(json_object_get(r, "ok")));
	cr_assert_eq(json_integer_value(json_object_get(r, "id")), 1);
	cr_assert_str_eq(json_string_value(json_object_get(r, "node")), "ord1");
	cr_assert_str_eq(json_string_value(json_object_get(r, "expires")), "2026-09-21T14:23:20Z");
	cr_assert_not_null(tok = json_string_value(json_object_get(r, "token")));
	cr_assert_eq(strlen(tok), 64);
	cr_assert_eq(strspn(tok, "0123456789abcdef"), 64);
	cr_assert_eq(json_object_size(r), 5);
	json_decref(r);
	r = call("{\"op\":\"token_create\",\"node\":\"lax1\"}");
	cr_assert_str_eq(json_string_value(json_object_get(r, "expires")), "2026-09-21T15:13:20Z",
			 "an hour by default");
	json_decref(r);

	r = call("{\"op\":\"token_list\"}");
	cr_assert(json_is_true(json_object_get(r, "ok")));
	cr_assert_eq(json_array_size(json_object_get(r, "tokens")), 2);
	t = json_array_get(json_object_get(r, "tokens"), 0);
	cr_assert_str_eq(json_string_value(json_object_get(t, "state")), "open");
	cr_assert_str_eq(json_string_value(json_object_get(t, "node")), "ord1");
	cr_assert_null(json_object_get(t, "token"), "a token is shown once");
	json_decref(r);
}

Test(admin, token_refusals)
{
	server_start();
	expect_error("{\"op\":\"token_create\",\"node\":\"sfo1\"}", "sfo1: no such node in the inventory");
	expect_error("{\"op\":\"token_create\",\"node\":\"bad1\"}", "bad1: retired from the inventory");
	expect_error("{\"op\":\"token_create\"}", "token_create needs \"node\", a node name");
}

Test(admin, argument_errors)
{
	server_start();
	expect_error("{\"op\":\"token_create\",\"node\":\"ord1\",\"ttl\":59}",
		     "ttl 59 s is outside 60 s .. 30 days");
	expect_error("{\"op\":\"token_create\",\"node\":\"ord1\",\"ttl\":2592001}",
		     "ttl 2592001 s is outside 60 s .. 30 days");
	expect_error("{\"op\":\"token_create\",\"node\":\"ord1\",\"ttl\":\"1h\"}",
		     "token_create: \"ttl\" is a number of seconds");
	expect_error("{\"op\":\"token_create\",\"node\":7}", "token_create needs \"node\", a node name");
	expect_error("{\"op\":\"token_create\",\"node\":\"ord1\",\"tll\":60}",
		     "token_create: unknown key 'tll'");
	expect_error("{\"op\":\"token_list\",\"all\":true}", "token_list: unknown key 'all'");
	expect_error("{\"op\":\"frobnicate\"}", "unknown op 'frobnicate'");
	expect_error("{\"op\":1}", "a request needs \"op\", one of token_create, token_revoke,"
		     " token_list, node_list, node_disable");
	expect_error("{\"op\":\"token_create\",\"node\":\"ord1\",\"replace\":1}",
		     "token_create: \"replace\" is true or false");
	expect_error("{\"op\":\"token_revoke\"}", "token_revoke needs \"id\", a token's number");
	expect_error("{\"op\":\"token_revoke\",\"id\":\"1\"}", "token_revoke needs \"id\", a token's number");
	expect_error("{\"op\":\"token_revoke\",\"id\":1,\"node\":\"ord1\"}",
		     "token_revoke: unknown key 'node'");
	expect_error("[\"token_list\"]", "a request is a JSON object");
}

Test(admin, bad_json_gets_the_parser_reason)
{
	const char *bad[] = { "{\"op\":", "{op: token_list}", "not json", "{\"op\":\"x\"} trailing" };
	char req[64], want[256];
	json_error_t je;

	server_start();
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_null(json_loadb(bad[i], strlen(bad[i]), 0, &je));
		snprintf(req, sizeof(req), "%s\n", bad[i]);
		snprintf(want, sizeof(want), "%s", je.text);
		expect_raw_error(req, strlen(req), want);
	}
}

Test(admin, request_size_cap)
{
	char req[ADMIN_LINE_MAX + 200], reply[8192];
	const char *op = "{\"op\":\"token_list\"}";

	server_start();
	/* ADMIN_LINE_MAX bytes with the newline: taken */
	memset(req, ' ', sizeof(req));
	memcpy(req, op, strlen(op));
	req[ADMIN_LINE_MAX - 1] = '\n';
	raw(req, ADMIN_LINE_MAX, false, reply, sizeof(reply));
	cr_assert_str_eq(reply, "{\"ok\":true,\"tokens\":[]}\n");
	/* one more: refused */
	req[ADMIN_LINE_MAX - 1] = ' ';
	req[ADMIN_LINE_MAX] = '\n';
	expect_raw_error(req, ADMIN_LINE_MAX + 1, "request longer than 4096 bytes");
	memset(req, 'x', sizeof(req));
	expect_raw_error(req, sizeof(req), "request longer than 4096 bytes");
}

Test(admin, one_request_per_connection)
{
	char reply[8192];
	const char two[] = "{\"op\":\"token_list\"}\n{\"op\":\"node_list\"}\n";

	server_start();
	raw(two, strlen(two), false, reply, sizeof(reply));
	cr_assert_str_eq(reply, "{\"ok\":true,\"tokens\":[]}\n", "the second is never read");
	/* a request that ends at EOF without its newline is still taken */
	raw("{\"op\":\"node_list\"}", 18, true, reply, sizeof(reply));
	cr_assert_str_eq(reply, "{\"ok\":true,\"nodes\":[]}\n");
	/* CRLF is whitespace to JSON */
	raw("{\"op\":\"node_list\"}\r\n", 20, false, reply, sizeof(reply));
	cr_assert_str_eq(reply, "{\"ok\":true,\"nodes\":[]}\n");
}

Test(admin, silent_client_is_dropped)
{
	char reply[64], line[600];
	struct timespec a, b;
	int fd;

	server_start();
	clock_gettime(CLOCK_MONOTONIC, &a);
	fd = connect_sock(T.sock);
	cr_assert_eq(read_to_eof(fd, reply, sizeof(reply)), 0, "closed without a word");
	clock_gettime(CLOCK_MONOTONIC, &b);
	close(fd);
	cr_assert_geq((b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000,
		      DEADLINE_MS - 20);
	event_kind(true, line, sizeof(line));
	cr_assert(strstr(line, "no whole request within 300 ms"), "%s", line);
	/* half a line is no better */
	fd = connect_sock(T.sock);
	cr_assert_eq(send(fd, "{\"op\":", 6, 0), 6);
	cr_assert_eq(read_to_eof(fd, reply, sizeof(reply)), 0);
	close(fd);
	/* and the server still serves */
	json_decref(call("{\"op\":\"token_list\"}"));
}

/* The next log line that holds what, within the server's 5 s per line. */
static void log_with(const char *what, char *line, size_t len)
{
	do
		event_kind(true, line, len);
	while (!strstr(line, what));
}

Test(admin, idle_clients_cannot_lock_meshctl_out)
{
	int fds[ADMIN_CLIENTS_MAX];
	char reply[64], line[600];
	json_t *r;

	T.deadline_ms = 20000;          /* the idle ones stay, unless pushed out */
	server_start();
	for (int i = 0; i < ADMIN_CLIENTS_MAX; i++) {
		fds[i] = connect_sock(T.sock);
		if (i == 0)
			cr_assert_eq(send(fds[i], "{\"op\":", 6, 0), 6, "half a line is idle too");
	}
	/* all taken, and one more: the oldest idle one goes, meshctl is served */
	r = call("{\"op\":\"token_list\"}");
	cr_assert(json_is_true(json_object_get(r, "ok")));
	json_decref(r);
	log_with("dropped the oldest idle one", line, sizeof(line));
	cr_assert(strstr(line, "more than 16 clients: dropped the oldest idle one (uid 0, pid "), "%s", line);
	cr_assert_eq(read_to_eof(fds[0], reply, sizeof(reply)), 0, "the oldest was closed");
	/* all taken again: the next oldest goes */
	close(fds[0]);
	fds[0] = connect_sock(T.sock);
	r = call("{\"op\":\"node_list\"}");
	cr_assert(json_is_true(json_object_get(r, "ok")));
	json_decref(r);
	cr_assert_eq(read_to_eof(fds[1], reply, sizeof(reply)), 0);
	for (int i = 0; i < ADMIN_CLIENTS_MAX; i++)
		close(fds[i]);
}

Test(admin, undelivered_token_is_logged)
{
	const char req[] = "{\"op\":\"token_create\",\"node\":\"ord1\"}\n";
	char line[600];
	int fd;

	server_start();
	/* the request, and gone before the reply: the token exists, nobody has it */
	fd = connect_sock(T.sock);
	cr_assert_eq(send(fd, req, strlen(req), MSG_NOSIGNAL), (ssize_t)strlen(req));
	close(fd);
	log_with("created but", line, sizeof(line));
	cr_assert(!strncmp(line, "log: admin socket: token 1 for ord1 created but the reply could not"
			   " be written: ", 75), "%s", line);
	cr_assert(strstr(line, "; revoke it with meshctl token revoke 1"), "%s", line);
	/* a client that takes its reply: nothing of the kind */
	json_decref(call("{\"op\":\"token_create\",\"node\":\"lax1\"}"));
	json_decref(call("{\"op\":\"token_list\"}"));
	server_stop_and_check_log_lacks("token 2 for lax1 created but");
}

Test(admin, node_list_and_disable)
{
	json_t *r, *n;
	char line[600];
	const char *tok;

	server_start();
	r = call("{\"op\":\"token_create\",\"node\":\"ord1\",\"ttl\":600}");
	cr_assert_not_null(tok = json_string_value(json_object_get(r, "token")));
	enrol(tok, "ord1", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=");
	json_decref(r);

	r = call("{\"op\":\"node_list\"}");
	cr_assert_eq(json_array_size(json_object_get(r, "nodes")), 1);
	n = json_array_get(json_object_get(r, "nodes"), 0);
	cr_assert_str_eq(json_string_value(json_object_get(n, "name")), "ord1");
	cr_assert_str_eq(json_string_value(json_object_get(n, "tunnel_ipv4")), "10.10.10.2");
	cr_assert(json_is_null(json_object_get(n, "disabled")));
	cr_assert_null(json_object_get(n, "credential_hash"));
	json_decref(r);

	r = call("{\"op\":\"node_disable\",\"node\":\"ord1\"}");
	cr_assert(json_is_true(json_object_get(r, "ok")));
	cr_assert_eq(json_object_size(r), 1);
	json_decref(r);
	event_kind(false, line, sizeof(line));
	cr_assert_str_eq(line, "changed");
	r = call("{\"op\":\"node_list\"}");
	n = json_array_get(json_object_get(r, "nodes"), 0);
	cr_assert_str_eq(json_string_value(json_object_get(n, "disabled")), "2026-09-21T14:13:20Z");
	json_decref(r);

	expect_error("{\"op\":\"node_disable\",\"node\":\"ord1\"}",
		     "ord1: already disabled (since 2026-09-21T14:13:20Z)");
	expect_error("{\"op\":\"node_disable\",\"node\":\"lax1\"}", "lax1: not enrolled");
	expect_error("{\"op\":\"node_disable\"}", "node_disable needs \"node\", a node name");
	expect_error("{\"op\":\"token_create\",\"node\":\"ord1\"}", "ord1: node is disabled");
	r = call("{\"op\":\"token_list\"}");
	n = json_array_get(json_object_get(r, "tokens"), 0);
	cr_assert_str_eq(json_string_value(json_object_get(n, "state")), "redeemed");
	cr_assert_str_eq(json_string_value(json_object_get(n, "redeemed_by")), "198.51.100.6");
	json_decref(r);
}

Test(admin, enrolled_node_token_needs_replace_and_revoke)
{
	json_t *r;
	const char *tok;
	char line[600];

	server_start();
	r = call("{\"op\":\"token_create\",\"node\":\"ord1\"}");
	cr_assert_not_null(tok = json_string_value(json_object_get(r, "token")));
	enrol(tok, "ord1", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=");
	json_decref(r);
	expect_error("{\"op\":\"token_create\",\"node\":\"ord1\"}",
		     "ord1 is enrolled (since 2026-09-21T14:13:21Z): a new token would let its holder"
		     " replace the node's key; pass --replace to mean it");
	expect_error("{\"op\":\"token_create\",\"node\":\"ord1\",\"replace\":false}",
		     "ord1 is enrolled (since 2026-09-21T14:13:21Z): a new token would let its holder"
		     " replace the node's key; pass --replace to mean it");
	r = call("{\"op\":\"token_create\",\"node\":\"ord1\",\"replace\":true}");
	cr_assert(json_is_true(json_object_get(r, "ok")));
	cr_assert_eq(json_integer_value(json_object_get(r, "id")), 2);
	json_decref(r);
	r = call("{\"op\":\"token_revoke\",\"id\":2}");
	cr_assert(json_is_true(json_object_get(r, "ok")));
	cr_assert_eq(json_integer_value(json_object_get(r, "id")), 2);
	cr_assert_str_eq(json_string_value(json_object_get(r, "node")), "ord1");
	cr_assert_eq(json_object_size(r), 3);
	json_decref(r);
	do
		event_kind(true, line, sizeof(line));
	while (!strstr(line, "revoked"));
	cr_assert_str_eq(line, "log: admin socket: token 2 for ord1 revoked (uid 0)");
	expect_error("{\"op\":\"token_revoke\",\"id\":2}", "token 2: already expired (2026-09-21T14:13:20Z)");
	expect_error("{\"op\":\"token_revoke\",\"id\":1}", "token 1: already redeemed (2026-09-21T14:13:21Z)");
	expect_error("{\"op\":\"token_revoke\",\"id\":7}", "token 7: no such token");
	r = call("{\"op\":\"token_list\"}");
	cr_assert_str_eq(json_string_value(json_object_get(json_array_get(json_object_get(r, "tokens"), 1),
							   "state")), "expired");
	json_decref(r);
}

Test(admin, other_uids_refused)
{
	char reply[512];
	int fds[2], st;
	pid_t pid;
	ssize_t n;

	if (geteuid() != 0)
		cr_skip_test("needs root to connect as another uid");
	server_start();
	/* past the file modes, to SO_PEERCRED */
	cr_assert_eq(chmod(T.dir, 0711), 0);
	cr_assert_eq(chmod(T.sock, 0666), 0);
	cr_assert_eq(pipe2(fds, O_CLOEXEC), 0);
	cr_assert_geq(pid = fork(), 0);
	if (pid == 0) {
		struct sockaddr_un sa = { .sun_family = AF_UNIX };
		int fd = socket(AF_UNIX, SOCK_STREAM, 0);
		ssize_t k, m = 0;

		close(fds[0]);
		if (setgid(65534) || setuid(65534))
			_exit(3);
		copy(sa.sun_path, sizeof(sa.sun_path), T.sock);
		/* the server may refuse (and close) before the request is
		 * written: a write into the closed socket must not kill us */
		signal(SIGPIPE, SIG_IGN);
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)))
			_exit(4);
		if (write(fd, "{\"op\":\"token_list\"}\n", 20) != 20 && errno != EPIPE &&
		    errno != ECONNRESET)
			_exit(4);
		while ((k = read(fd, reply + m, sizeof(reply) - 1 - (size_t)m)) > 0)
			m += k;
		if (write(fds[1], reply, (size_t)m) != m)
			_exit(5);
		_exit(0);
	}
	close(fds[1]);
	n = read(fds[0], reply, sizeof(reply) - 1);
	close(fds[0]);
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status 0x%x", st);
	cr_assert_gt(n, 0);
	reply[n] = '\0';
	cr_assert_str_eq(reply, "{\"ok\":false,\"error\":\"uid 65534 may not use the admin socket"
			 " (root only)\"}\n");
}

/* ---- the listener, in this process ---- */

static void run_out(uv_loop_t *loop)
{
	uv_run(loop, UV_RUN_DEFAULT);
	cr_assert_eq(uv_loop_close(loop), 0, "every handle was closed");
}

Test(admin, socket_file)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct admin *a, *b;
	struct stat sb;
	uv_loop_t loop;
	char err[512], path[200];
	int fd;

	cr_assert_eq(uv_loop_init(&loop), 0);
	/* a stale socket: nobody listens, it is replaced */
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	copy(sa.sun_path, sizeof(sa.sun_path), T.sock);
	cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
	cr_assert_eq(admin_start(&loop, T.sock, NULL, NULL, &a, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(stat(T.sock, &sb), 0);
	cr_assert(S_ISSOCK(sb.st_mode));
	cr_assert_eq(sb.st_mode & 0777, 0600, "mode %o", sb.st_mode & 0777);
	/* a live one is not */
	cr_assert_eq(admin_start(&loop, T.sock, NULL, NULL, &b, err, sizeof(err)), -EADDRINUSE);
	snprintf(path, sizeof(path), "admin socket %s: a running process listens on it", T.sock);
	cr_assert_str_eq(err, path);
	cr_assert_null(b);
	admin_close(a);
	run_out(&loop);
	cr_assert_neq(stat(T.sock, &sb), 0, "the socket file is removed at close");
}

Test(admin, path_refused)
{
	struct admin *a;
	uv_loop_t loop;
	char err[512], path[300], want[400];
	struct stat sb;
	FILE *f;

	cr_assert_eq(uv_loop_init(&loop), 0);
	snprintf(path, sizeof(path), "%s/plain", T.dir);
	cr_assert_not_null(f = fopen(path, "w"));
	fclose(f);
	cr_assert_eq(admin_start(&loop, path, NULL, NULL, &a, err, sizeof(err)), -EEXIST);
	snprintf(want, sizeof(want), "admin socket %s: exists and is not a socket", path);
	cr_assert_str_eq(err, want);
	cr_assert_eq(stat(path, &sb), 0, "left alone");
	cr_assert(S_ISREG(sb.st_mode));
	memset(path, 'a', 200);
	path[0] = '/';
	path[200] = '\0';
	cr_assert_eq(admin_start(&loop, path, NULL, NULL, &a, err, sizeof(err)), -ENAMETOOLONG);
	cr_assert(strstr(err, "path too long (at most 107 bytes)"), "%s", err);
	snprintf(path, sizeof(path), "%s/no/such/dir.sock", T.dir);
	cr_assert_eq(admin_start(&loop, path, NULL, NULL, &a, err, sizeof(err)), -ENOENT);
	snprintf(want, sizeof(want), "admin socket %s: directory %s/no/such does not exist", path,
		 T.dir);
	cr_assert_str_eq(err, want);
	run_out(&loop);
}

/* ---- the client's parts ---- */

Test(admin, client_cannot_connect)
{
	char err[512], want[300];
	json_t *req = json_pack("{s:s}", "op", "token_list");

	cr_assert_null(mesh_admin_call(T.sock, req, 1000, err, sizeof(err)));
	snprintf(want, sizeof(want), "%s: cannot connect: No such file or directory (is meshd running?)",
		 T.sock);
	cr_assert_str_eq(err, want);
	json_decref(req);
}

Test(admin, socket_path_choice)
{
	cr_assert_str_eq(mesh_admin_socket(NULL), "/run/meshd/admin.sock");
	setenv(MESH_ADMIN_SOCKET_ENV, "/tmp/env.sock", 1);
	cr_assert_str_eq(mesh_admin_socket(NULL), "/tmp/env.sock");
	cr_assert_str_eq(mesh_admin_socket("/tmp/opt.sock"), "/tmp/opt.sock");
	setenv(MESH_ADMIN_SOCKET_ENV, "", 1);
	cr_assert_str_eq(mesh_admin_socket(NULL), "/run/meshd/admin.sock");
}

Test(admin, ttl_parser)
{
	static const struct { const char *s; int64_t v; } good[] = {
		{ "90", 90 }, { "90s", 90 }, { "15m", 900 }, { "1h", 3600 }, { "7d", 604800 },
		{ "60", MSTATE_TTL_MIN }, { "1m", 60 }, { "30d", MSTATE_TTL_MAX },
		{ "720h", MSTATE_TTL_MAX }, { "2592000s", MSTATE_TTL_MAX },
	};
	static const char *const bad[] = { "", "h", "1x", "1hh", "1h30m", "-1h", "1.5h", " 1h",
					   "9999999999" };
	static const struct { const char *s; const char *err; } range[] = {
		{ "31d", "ttl 2678400 s is outside 60 s .. 30 days" },
		{ "366d", "ttl 31622400 s is outside 60 s .. 30 days" },
		{ "2592001", "ttl 2592001 s is outside 60 s .. 30 days" },
		{ "59s", "ttl 59 s is outside 60 s .. 30 days" },
		{ "0", "ttl 0 s is outside 60 s .. 30 days" },
		{ "999999999d", "ttl 86399999913600 s is outside 60 s .. 30 days" },
	};
	char err[256], want[256];
	int64_t v;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		cr_assert_eq(mesh_admin_parse_ttl(good[i].s, &v, err, sizeof(err)), 0, "%s", good[i].s);
		cr_assert_eq(v, good[i].v, "%s", good[i].s);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_eq(mesh_admin_parse_ttl(bad[i], &v, err, sizeof(err)), -EINVAL, "'%s'", bad[i]);
		snprintf(want, sizeof(want), "--ttl: '%s' is not a duration (90s, 15m, 1h, 7d)", bad[i]);
		cr_assert_str_eq(err, want);
	}
	for (size_t i = 0; i < sizeof(range) / sizeof(range[0]); i++) {
		cr_assert_eq(mesh_admin_parse_ttl(range[i].s, &v, err, sizeof(err)), -ERANGE, "'%s'",
			     range[i].s);
		cr_assert_str_eq(err, range[i].err);
	}
}

static char *render(void (*fn)(FILE *, json_t *), const char *json)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	json_t *rows = json_loads(json, 0, NULL);

	cr_assert_not_null(rows);
	fn(f, rows);
	fclose(f);
	json_decref(rows);
	return buf;
}

Test(admin, tables)
{
	char *t = render(mesh_admin_tokens_text,
		"[{\"id\":3,\"node\":\"ord1\",\"state\":\"redeemed\",\"created\":\"2026-09-21T14:13:20Z\","
		"\"expires\":\"2026-09-21T15:13:20Z\",\"redeemed\":\"2026-09-21T14:20:00Z\","
		"\"redeemed_by\":\"198.51.100.6\"},"
		"{\"id\":12,\"node\":\"lax10\",\"state\":\"open\",\"created\":\"2026-09-21T14:13:20Z\","
		"\"expires\":\"2026-09-21T15:13:20Z\",\"redeemed\":null,\"redeemed_by\":null}]");

	cr_assert_str_eq(t,
		"ID  NODE   STATE     CREATED               EXPIRES               REDEEMED              BY\n"
		"3   ord1   redeemed  2026-09-21T14:13:20Z  2026-09-21T15:13:20Z  2026-09-21T14:20:00Z  198.51.100.6\n"
		"12  lax10  open      2026-09-21T14:13:20Z  2026-09-21T15:13:20Z  -                     -\n");
	free(t);
	t = render(mesh_admin_nodes_text, "[]");
	cr_assert_str_eq(t, "NAME  PUBLIC KEY  EXTERNAL IP  TUNNEL IPV4  TUNNEL IPV6  ENROLLED  DISABLED\n");
	free(t);
}

/* ---- the real meshctl against the server child ---- */

/* BUILD/meshctl, beside BUILD/tests/ this binary is in. */
static void meshctl_path(char *buf, size_t len)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	cr_assert_gt(n, 0);
	exe[n] = '\0';
	snprintf(buf, len, "%s/meshctl", dirname(dirname(exe)));
	cr_assert_eq(access(buf, X_OK), 0, "%s: %s", buf, strerror(errno));
}

/* Run meshctl with args (NULL-ended), env_sock as $MESHD_ADMIN_SOCKET
 * when not NULL; its stdout and stderr, and its exit status. */
static int meshctl(const char *env_sock, char *out, char *errout, size_t len, ...)
{
	char bin[PATH_MAX], path_out[200], path_err[200], *argv[16];
	va_list ap;
	int n = 1, st;
	pid_t pid;

	meshctl_path(bin, sizeof(bin));
	argv[0] = bin;
	va_start(ap, len);
	while (n < 15 && (argv[n] = va_arg(ap, char *)))
		n++;
	va_end(ap);
	argv[n] = NULL;
	snprintf(path_out, sizeof(path_out), "%s/out", T.dir);
	snprintf(path_err, sizeof(path_err), "%s/err", T.dir);
	cr_assert_geq(pid = fork(), 0);
	if (pid == 0) {
		int o = open(path_out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		int e = open(path_err, O_WRONLY | O_CREAT | O_TRUNC, 0600);

		if (o < 0 || e < 0 || dup2(o, 1) < 0 || dup2(e, 2) < 0)
			_exit(126);
		if (env_sock)
			setenv(MESH_ADMIN_SOCKET_ENV, env_sock, 1);
		execv(bin, argv);
		_exit(127);
	}
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert(WIFEXITED(st), "meshctl status 0x%x", st);
	for (int i = 0; i < 2; i++) {
		FILE *f = fopen(i ? path_err : path_out, "r");
		char *dst = i ? errout : out;
		size_t r;

		cr_assert_not_null(f);
		r = fread(dst, 1, len - 1, f);
		dst[r] = '\0';
		fclose(f);
	}
	return WEXITSTATUS(st);
}

Test(admin, meshctl_token_create_and_list)
{
	char out[8192], err[8192], want[512], tok[65];
	json_t *j;

	server_start();
	cr_assert_eq(meshctl(NULL, out, err, sizeof(out), "token", "create", "ord1", "--ttl", "10m",
			     "--socket", T.sock, NULL), 0, "%s", err);
	cr_assert_eq(strlen(out), 65, "the token alone on its line: '%s'", out);
	cr_assert_eq(strspn(out, "0123456789abcdef"), 64);
	cr_assert_eq(out[64], '\n');
	memcpy(tok, out, 64);
	tok[64] = '\0';
	cr_assert_str_eq(err, "token 1 for ord1, expires 2026-09-21T14:23:20Z\n");

	cr_assert_eq(meshctl(T.sock, out, err, sizeof(out), "token", "list", NULL), 0, "%s", err);
	cr_assert_str_eq(out,
		"ID  NODE  STATE  CREATED               EXPIRES               REDEEMED  BY\n"
		"1   ord1  open   2026-09-21T14:13:20Z  2026-09-21T14:23:20Z  -         -\n");
	cr_assert_null(strstr(out, tok));
	cr_assert_str_eq(err, "");

	cr_assert_eq(meshctl(T.sock, out, err, sizeof(out), "token", "list", "--json", NULL), 0);
	cr_assert_not_null(j = json_loads(out, 0, NULL), "%s", out);
	cr_assert_eq(json_array_size(json_object_get(j, "tokens")), 1);
	cr_assert_null(json_object_get(j, "ok"));
	json_decref(j);

	cr_assert_eq(meshctl(T.sock, out, err, sizeof(out), "token", "create", "sfo1", NULL), 1);
	cr_assert_str_eq(out, "");
	cr_assert_str_eq(err, "meshctl: sfo1: no such node in the inventory\n");
	/* refused before meshd is asked, in meshd's words */
	cr_assert_eq(meshctl(T.sock, out, err, sizeof(out), "token", "create", "ord1", "--ttl", "59s",
			     NULL), 2);
	cr_assert_str_eq(err, "meshctl: ttl 59 s is outside 60 s .. 30 days\n");
	cr_assert_eq(meshctl(T.sock, out, err, sizeof(out), "token", "create", "ord1", "--ttl", "31d",
			     NULL), 2);
	cr_assert_str_eq(err, "meshctl: ttl 2678400 s is outside 60 s .. 30 days\n");
	cr_assert_str_eq(out, "");

	enrol(tok, "ord1", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=");
	cr_assert_eq(meshctl(T.sock, out, err, sizeof(out), "node", "list", NULL), 0, "%s", err);
	cr_assert(strstr(out, "ord1  AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=  198."), "%s", out);
	cr_assert_eq(meshctl(T.sock, out, err, sizeof(out), "node", "disable", "ord1", NULL), 0, "%s", err);
	cr_assert_str_eq(out, "ord1: disabled\n");
	cr_assert_eq(meshctl(T.sock, out, err, sizeof(out), "node", "disable", "ord1", NULL), 1);
	cr_assert_str_eq(err, "meshctl: ord1: already disabled (since 2026-09-21T14:13:20Z)\n");
	cr_assert_eq(meshctl(T.sock, out, err, sizeof(out), "node", "list", "--json", NULL), 0);
	cr_assert(strstr(out, "\"disabled\": \"2026-09-21T14:13:20Z\""), "%s", out);

	snprintf(want, sizeof(want), "%s/none.sock", T.dir);
	cr_assert_eq(meshctl(want, out, err, sizeof(out), "token", "list", NULL), 1);
	snprintf(want, sizeof(want),
		 "meshctl: %s/none.sock: cannot connect: No such file or directory (is meshd running?)\n",
		 T.dir);
	cr_assert_str_eq(err, want);
}

Test(admin, meshctl_usage_errors)
{
	char out[8192], err[8192];

	cr_assert_eq(meshctl(T.sock, out, err, sizeof(out), "token", NULL), 2);
	cr_assert_str_eq(err, "meshctl: token needs a subcommand (create, revoke, list)\n");
	cr_assert_eq(meshctl(T.sock, out, err, sizeof(out), "token", "revoke", NULL), 2);
	cr_assert_str_eq(err, "meshctl: usage: meshctl token revoke ID\n");
	cr_assert_eq(meshctl(T.sock, out, err, sizeof(out), "token", "revoke", "x1", NULL), 2);
	cr_assert_str_eq(err, "meshctl: token revoke: 'x1' is not a token's number (meshctl token list)\n");
	cr_assert_eq(meshctl(T.sock, out, err, sizeof(out), "token", "list", "--replace", NULL), 2);
	cr_assert_str_eq(err, "meshctl: --replace is an option of token create\n");
	cr_assert_eq(meshctl(T.sock, out, err, sizeof(out), "node", "create", "x", NULL), 2);
	cr_assert_str_eq(err, "meshctl: node: unknown subcommand 'create' (list, disable)\n");
	cr_assert_eq(meshctl(T.sock, out, err, sizeof(out), "token", "create", NULL), 2);
	cr_assert_str_eq(err, "meshctl: usage: meshctl token create NODE\n");
	cr_assert_eq(meshctl(T.sock, out, err, sizeof(out), "token", "create", "ord1", "--ttl",
			     "soon", NULL), 2);
	cr_assert_str_eq(err, "meshctl: --ttl: 'soon' is not a duration (90s, 15m, 1h, 7d)\n");
	cr_assert_eq(meshctl(T.sock, out, err, sizeof(out), "node", "disable", "ord1", "--json",
			     NULL), 2);
	cr_assert_str_eq(err, "meshctl: --json is an option of token list and node list\n");
	cr_assert_eq(meshctl(T.sock, out, err, sizeof(out), "token", "list", "--ttl", "1h", NULL), 2);
	cr_assert_str_eq(err, "meshctl: --ttl is an option of token create\n");
}

Test(admin, meshctl_replace_and_revoke)
{
	char out[8192], err[8192], tok[65];

	server_start();
	cr_assert_eq(meshctl(T.sock, out, err, sizeof(out), "token", "create", "ord1", NULL), 0, "%s", err);
	memcpy(tok, out, 64);
	tok[64] = '\0';
	enrol(tok, "ord1", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=");
	cr_assert_eq(meshctl(T.sock, out, err, sizeof(out), "token", "create", "ord1", NULL), 1);
	cr_assert_str_eq(out, "");
	cr_assert_str_eq(err, "meshctl: ord1 is enrolled (since 2026-09-21T14:13:21Z): a new token would"
			 " let its holder replace the node's key; pass --replace to mean it\n");
	cr_assert_eq(meshctl(T.sock, out, err, sizeof(out), "token", "create", "ord1", "--replace",
			     NULL), 0, "%s", err);
	cr_assert_eq(strlen(out), 65);
	cr_assert_str_eq(err, "token 2 for ord1, expires 2026-09-21T15:13:20Z\n");
	cr_assert_eq(meshctl(T.sock, out, err, sizeof(out), "token", "revoke", "2", NULL), 0, "%s", err);
	cr_assert_str_eq(out, "token 2 for ord1: revoked\n");
	cr_assert_eq(meshctl(T.sock, out, err, sizeof(out), "token", "revoke", "2", NULL), 1);
	cr_assert_str_eq(err, "meshctl: token 2: already expired (2026-09-21T14:13:20Z)\n");
	cr_assert_eq(meshctl(T.sock, out, err, sizeof(out), "token", "list", NULL), 0, "%s", err);
	cr_assert(strstr(out, "2   ord1  expired"), "%s", out);
}
