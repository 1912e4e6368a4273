/*
 * checks/spawn.c and the exec check, on a real loop with real children:
 * exit codes and the first line, the cap, megabytes of output, a hanging
 * script that forks (its whole group gone after the timeout), exit and EOF
 * in either order, cancel, and never a zombie.
 */
#include <errno.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <criterion/criterion.h>

#include "checks/checks.h"

static uv_loop_t loop;

struct got {
	int n;
	struct check_spawn_result r;
};

static void on_result(const struct check_spawn_result *r, void *arg)
{
	struct got *g = arg;

	g->n++;
	g->r = *r;
}

static void setup(void)
{
	cr_assert_eq(uv_loop_init(&loop), 0);
}

/* Every handle closed, and no child of ours left unreaped. */
static void finish(void)
{
	int st;

	uv_run(&loop, UV_RUN_DEFAULT);
	cr_assert_eq(uv_loop_close(&loop), 0, "handles left open on the loop");
	cr_assert_eq(waitpid(-1, &st, WNOHANG), -1, "a child is left over (zombie or running)");
	cr_assert_eq(errno, ECHILD);
}

TestSuite(spawn, .init = setup, .timeout = 30);

static void run_sh(const char *script, uint64_t timeout_ms, struct got *g)
{
	char *argv[] = { "/bin/sh", "-c", (char *)script, NULL };
	struct check_spawn_opts o = { .argv = argv, .timeout_ms = timeout_ms };
	struct check_spawn *s;

	memset(g, 0, sizeof(*g));
	cr_assert_eq(check_spawn(&loop, &o, on_result, g, &s), 0);
	while (g->n == 0 && uv_run(&loop, UV_RUN_ONCE))
		;
	cr_assert_eq(g->n, 1, "one callback");
}

Test(spawn, exit_zero_and_one_with_a_message)
{
	struct got g;
	char buf[64];

	run_sh("echo hello; echo second line", 5000, &g);
	cr_assert_eq(g.r.exit_status, 0);
	cr_assert_not(g.r.timed_out);
	cr_assert_str_eq(g.r.line, "hello");
	cr_assert_str_eq(check_spawn_describe(&g.r, buf, sizeof(buf)), "exit 0");
	run_sh("echo 'db is read-only' >&2; exit 1", 5000, &g);
	cr_assert_eq(g.r.exit_status, 1);
	cr_assert_str_eq(g.r.line, "db is read-only", "stderr shares the one output");
	cr_assert_str_eq(check_spawn_describe(&g.r, buf, sizeof(buf)), "exit 1");
	run_sh("printf 'crlf\\r\\n'; kill -9 $$", 5000, &g);
	cr_assert_eq(g.r.term_signal, SIGKILL);
	cr_assert_eq(g.r.exit_status, -1);
	cr_assert_str_eq(g.r.line, "crlf");
	cr_assert_str_eq(check_spawn_describe(&g.r, buf, sizeof(buf)), "killed by signal 9");
	finish();
}

Test(spawn, environment_is_minimal_and_cwd_set)
{
	char *argv[] = { "/bin/sh", "-c", "echo \"[$FOO][${HOME-unset}][$PATH][$(pwd)]\"", NULL };
	char *env[] = { "FOO=bar baz", NULL };
	struct check_spawn_opts o = { .argv = argv, .env = env, .cwd = "/tmp", .timeout_ms = 5000 };
	struct check_spawn *s;
	struct got g = { 0 };

	setenv("HOME", "/root", 1);
	cr_assert_eq(check_spawn(&loop, &o, on_result, &g, &s), 0);
	uv_run(&loop, UV_RUN_DEFAULT);
	cr_assert_eq(g.n, 1);
	cr_assert_str_eq(g.r.line, "[bar baz][unset][/usr/sbin:/usr/bin:/sbin:/bin][/tmp]");
	finish();
}

/* As root: the child runs as the user asked for, without our groups. */
Test(spawn, runs_as_the_user)
{
	char *argv[] = { "/bin/sh", "-c", "echo $(id -u):$(id -g):$(id -G)", NULL };
	struct check_spawn_opts o = { .argv = argv, .timeout_ms = 5000, .set_user = true };
	struct passwd *pw = getpwnam("nobody");
	struct check_spawn *s;
	struct got g = { 0 };
	char want[64];

	if (geteuid() != 0 || !pw) {
		cr_log_warn("not root, or no user nobody: skipped");
		finish();
		return;
	}
	o.uid = pw->pw_uid;
	o.gid = pw->pw_gid;
	snprintf(want, sizeof(want), "%u:%u:%u", (unsigned)pw->pw_uid, (unsigned)pw->pw_gid,
		 (unsigned)pw->pw_gid);
	cr_assert_eq(check_spawn(&loop, &o, on_result, &g, &s), 0);
	uv_run(&loop, UV_RUN_DEFAULT);
	cr_assert_eq(g.n, 1);
	cr_assert_str_eq(g.r.line, want);
	finish();
}

Test(spawn, first_line_is_capped)
{
	struct got g;

	run_sh("head -c 5000 /dev/zero | tr '\\0' a; echo; echo b", 5000, &g);
	cr_assert_eq(strlen(g.r.line), CHECK_SPAWN_LINE_MAX);
	cr_assert_eq(g.r.line[0], 'a');
	cr_assert_eq(g.r.output_bytes, 5003);
	finish();
}

/* Megabytes are read and dropped as they come: the child never blocks. */
Test(spawn, megabytes_of_output_do_not_block)
{
	struct got g;

	run_sh("echo first; head -c 20000000 /dev/zero; exit 0", 10000, &g);
	cr_assert_not(g.r.timed_out, "the child blocked on a full pipe");
	cr_assert_eq(g.r.exit_status, 0);
	cr_assert_str_eq(g.r.line, "first");
	cr_assert_eq(g.r.output_bytes, 6 + 20000000);
	finish();
}

/* Gone: no such process, or a zombie that is not ours (init reaps it). */
static bool gone(pid_t pid)
{
	char path[64], line[256];
	bool z = false;
	FILE *f;

	if (kill(pid, 0) < 0 && errno == ESRCH)
		return true;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if (!(f = fopen(path, "r")))
		return true;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, "State:", 6) == 0)
			z = strchr(line, 'Z') != NULL;
	fclose(f);
	return z;
}

Test(spawn, hanging_script_and_its_children_are_killed)
{
	char dir[] = "/tmp/healthd-spawn.XXXXXX", script[1024], path[64];
	pid_t pids[8];
	int n = 0, pid;
	struct got g;
	FILE *f;

	cr_assert_not_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/pids", dir);
	/* Two children, one deaf to SIGTERM, and the script itself hangs. */
	snprintf(script, sizeof(script),
		 "sleep 100 & echo $! >%s; "
		 "sh -c 'trap \"\" TERM; while :; do sleep 1; done' & echo $! >>%s; "
		 "echo $$ >>%s; echo started; trap '' TERM; sleep 100", path, path, path);
	run_sh(script, 300, &g);
	cr_assert(g.r.timed_out);
	cr_assert_str_eq(g.r.line, "started");
	cr_assert_not_null(f = fopen(path, "r"));
	while (n < 8 && fscanf(f, "%d", &pid) == 1)
		pids[n++] = pid;
	fclose(f);
	cr_assert_eq(n, 3, "the script wrote its PIDs");
	for (int i = 0; i < n; i++) {
		for (int t = 0; t < 200 && !gone(pids[i]); t++)
			usleep(10000);
		cr_assert(gone(pids[i]), "pid %d survived the timeout", pids[i]);
	}
	unlink(path);
	rmdir(dir);
	finish();
}

/* The child exits first, a grandchild keeps the output open a while. */
Test(spawn, exit_before_eof_and_eof_before_exit)
{
	struct got g;

	run_sh("(sleep 0.3; echo late) & echo first", 5000, &g);
	cr_assert_eq(g.r.exit_status, 0);
	cr_assert_not(g.r.timed_out);
	cr_assert_str_eq(g.r.line, "first");
	cr_assert_eq(g.r.output_bytes, strlen("first\nlate\n"), "read until EOF");
	run_sh("echo closing; exec >&- 2>&-; sleep 0.2; exit 3", 5000, &g);
	cr_assert_eq(g.r.exit_status, 3);
	cr_assert_str_eq(g.r.line, "closing");
	finish();
}

Test(spawn, cancel_kills_and_reaps)
{
	char *argv[] = { "/bin/sleep", "100", NULL };
	struct check_spawn_opts o = { .argv = argv, .timeout_ms = 60000 };
	struct check_spawn *s;
	struct got g = { 0 };
	uint64_t t0 = uv_hrtime();

	cr_assert_eq(check_spawn(&loop, &o, on_result, &g, &s), 0);
	uv_run(&loop, UV_RUN_NOWAIT);
	check_spawn_cancel(s);
	finish();
	cr_assert_eq(g.n, 0, "no callback after cancel");
	cr_assert_lt(uv_hrtime() - t0, 5000000000ull, "cancel did not wait for the timeout");
}

Test(spawn, missing_file_fails_at_once)
{
	char *argv[] = { "/nonexistent/probe", NULL };
	struct check_spawn_opts o = { .argv = argv, .timeout_ms = 1000 };
	struct check_spawn *s = NULL;
	struct got g = { 0 };

	cr_assert_eq(check_spawn(&loop, &o, on_result, &g, &s), UV_ENOENT);
	cr_assert_null(s);
	finish();
	cr_assert_eq(g.n, 0);
}

/* ---- the exec check ---- */

struct results {
	int n;
	struct check_result r;
};

static void on_check(struct check *c, const struct check_result *r, void *arg)
{
	struct results *w = arg;

	(void)c;
	w->n++;
	w->r = *r;
}

static struct cfg_check exec_cfg(char **argv, uint64_t timeout_ms)
{
	struct cfg_check k = { .name = "e", .type = "exec", .interval_ms = 1000,
			       .timeout_ms = timeout_ms, .rise = 1, .fall = 1,
			       .command = argv, .working_directory = "/" };

	while (argv[k.n_command])
		k.n_command++;
	return k;
}

Test(spawn, exec_check_results)
{
	char *ok[] = { "/bin/sh", "-c", "echo \"fine $X\"", NULL };
	char *bad[] = { "/bin/sh", "-c", "echo 'replica lag 40s'; exit 2", NULL };
	char *hang[] = { "/bin/sleep", "100", NULL };
	struct cfg_env env = { "X", "here" };
	struct cfg_check k1 = exec_cfg(ok, 5000), k2 = exec_cfg(bad, 5000),
			 k3 = exec_cfg(hang, 100);
	struct check_engine *eng;
	struct check *c1, *c2, *c3;
	struct results w1 = { 0 }, w2 = { 0 }, w3 = { 0 };

	k1.env = &env;
	k1.n_env = 1;
	cr_assert_eq(check_engine_new(&loop, &eng), 0);
	cr_assert_eq(check_new(eng, &k1, on_check, &w1, &c1), 0);
	cr_assert_eq(check_new(eng, &k2, on_check, &w2, &c2), 0);
	cr_assert_eq(check_new(eng, &k3, on_check, &w3, &c3), 0);
	cr_assert_eq(check_start(c1), 0);
	cr_assert_eq(check_start(c2), 0);
	cr_assert_eq(check_start(c3), 0);
	while ((w1.n + w2.n + w3.n) < 3 && uv_run(&loop, UV_RUN_ONCE))
		;
	cr_assert_eq(w1.r.reason, CHECK_OK);
	cr_assert_str_eq(w1.r.detail, "exit 0: fine here");
	cr_assert_eq(w2.r.reason, CHECK_EXIT);
	cr_assert_str_eq(check_reason_str(w2.r.reason), "exit");
	cr_assert_str_eq(w2.r.detail, "exit 2: replica lag 40s");
	cr_assert_eq(w3.r.reason, CHECK_TIMEOUT);
	cr_assert_str_eq(w3.r.detail, "no exit within 100ms, process group killed");
	check_destroy(c1);
	check_destroy(c2);
	check_destroy(c3);
	check_engine_close(eng);
	finish();
}

/* One run at a time: a start while the probe runs is refused and counted,
 * and the probe's result says so. */
Test(spawn, exec_check_one_at_a_time)
{
	char *slow[] = { "/bin/sh", "-c", "sleep 0.3; echo done", NULL };
	struct cfg_check k = exec_cfg(slow, 5000);
	struct check_engine *eng;
	struct check *c;
	struct results w = { 0 };

	cr_assert_eq(check_engine_new(&loop, &eng), 0);
	cr_assert_eq(check_new(eng, &k, on_check, &w, &c), 0);
	cr_assert_eq(check_start(c), 0);
	cr_assert_eq(check_start(c), -EBUSY);
	cr_assert_eq(check_start(c), -EBUSY);
	while (w.n == 0 && uv_run(&loop, UV_RUN_ONCE))
		;
	cr_assert_eq(w.r.reason, CHECK_OK);
	cr_assert_str_eq(w.r.detail, "exit 0: done (overran: 2 probes skipped)");
	cr_assert_eq(check_start(c), 0, "free again once reported");
	while (w.n == 1 && uv_run(&loop, UV_RUN_ONCE))
		;
	cr_assert_str_eq(w.r.detail, "exit 0: done", "the count starts again");
	check_start(c);
	check_destroy(c);   /* in flight: cancelled, killed, reaped */
	check_engine_close(eng);
	finish();
	cr_assert_eq(w.n, 2);
}
