/*
 * test_bird_client — the control-socket client against a real BIRD
 * (birdlab) and, for what BIRD cannot be made to do, against fakebird.
 * Every test runs the loop until the callback it waits for, under a
 * deadline timer that fails the test.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bird-glue/bird.h"
#include "tests/lib/testlib.h"

#define MAX_DONE 16

struct done {
	int err;
	int code;               /* final code, -1 without a reply */
	int first_code;         /* code of the first line */
	struct bird_proto rows[8];
	int n_rows;             /* bird_parse_protocols() result */
};

struct ctx {
	uv_loop_t loop;
	uv_timer_t deadline;
	bool expired;
	struct bird_client *c;
	int ups, downs;
	bool up;
	char why[512];
	int n_done;
	struct done done[MAX_DONE];
};

static struct ctx T;
static struct birdlab lab;
static struct fakebird *fake;
static char fake_path[108];

static void on_state(void *arg, bool up, const char *why)
{
	struct ctx *t = arg;

	t->up = up;
	if (up)
		t->ups++;
	else
		t->downs++;
	snprintf(t->why, sizeof(t->why), "%s", why);
}

static void on_done(void *arg, int err, const struct bird_reply *r)
{
	struct ctx *t = arg;
	struct done *d;

	cr_assert_lt(t->n_done, MAX_DONE);
	d = &t->done[t->n_done++];
	d->err = err;
	d->code = r ? r->code : -1;
	d->first_code = r ? r->lines[0].code : -1;
	d->n_rows = r ? bird_parse_protocols(r, d->rows, 8, NULL) : -1;
	cr_assert_eq(err != 0, r == NULL, "a reply comes exactly when err == 0");
}

static void on_deadline(uv_timer_t *timer)
{
	((struct ctx *)timer->data)->expired = true;
}

static void setup(void)
{
	signal(SIGPIPE, SIG_IGN);
	memset(&T, 0, sizeof(T));
	memset(&lab, 0, sizeof(lab));
	fake = NULL;
	cr_assert_eq(uv_loop_init(&T.loop), 0);
	uv_timer_init(&T.loop, &T.deadline);
	T.deadline.data = &T;
	snprintf(fake_path, sizeof(fake_path), "/tmp/healthd-fakebird-%ld.sock", (long)getpid());
}

static void teardown(void)
{
	if (T.c)
		bird_client_close(T.c);
	T.c = NULL;
	if (fake)
		fakebird_close(fake);
	fake = NULL;
	if (!uv_is_closing((uv_handle_t *)&T.deadline))
		uv_close((uv_handle_t *)&T.deadline, NULL);
	uv_run(&T.loop, UV_RUN_DEFAULT);
	birdlab_destroy(&lab);
	unlink(fake_path);
	cr_assert_eq(uv_loop_close(&T.loop), 0, "every handle was closed");
}

/* Run the loop until *flag flips true, failing after ms. */
#define RUN_UNTIL(cond, ms, what)                                              \
	do {                                                                   \
		T.expired = false;                                             \
		uv_timer_start(&T.deadline, on_deadline, (ms), 0);             \
		while (!(cond) && !T.expired)                                  \
			uv_run(&T.loop, UV_RUN_ONCE);                          \
		uv_timer_stop(&T.deadline);                                    \
		cr_assert(cond, "timed out waiting for %s (last state: %s)",   \
			  what, T.why);                                        \
	} while (0)

static void send_ok(const char *cmd)
{
	cr_assert_eq(bird_client_send(T.c, cmd, on_done, &T), 0, "%s", cmd);
}

static const char lab_body[] =
	"protocol static p1 { ipv4; route 192.0.2.1/32 blackhole; }\n"
	"protocol static p2 { ipv6; route 2001:db8::1/128 blackhole; }\n";

static void start_lab(uint64_t timeout_ms)
{
	cr_assert_eq(birdlab_init(&lab, lab_body), 0);
	cr_assert_eq(birdlab_start(&lab, 10000), 0, "BIRD did not start, see %s", lab.log);
	cr_assert_eq(bird_client_new(&T.loop, lab.sock, timeout_ms, on_state, &T, &T.c), 0);
	RUN_UNTIL(T.up, 5000, "the welcome");
	cr_assert(strstr(T.why, lab.sock) && strstr(T.why, "BIRD 2.0.12 ready"), "%s", T.why);
	cr_assert(bird_client_connected(T.c));
}

static const struct bird_proto *row(const struct done *d, const char *name)
{
	for (int i = 0; i < d->n_rows; i++)
		if (!strcmp(d->rows[i].name, name))
			return &d->rows[i];
	cr_assert_fail("%s not in show protocols", name);
	return NULL;
}

TestSuite(bird_client, .init = setup, .fini = teardown, .timeout = 60);

Test(bird_client, show_protocols_from_real_bird)
{
	start_lab(2000);
	send_ok("show protocols");
	RUN_UNTIL(T.n_done == 1, 5000, "show protocols");
	cr_assert_eq(T.done[0].err, 0);
	cr_assert_eq(T.done[0].code, 0);
	cr_assert_eq(T.done[0].n_rows, 3, "device1, p1, p2");
	cr_assert_eq(row(&T.done[0], "p1")->state, BIRD_PROTO_UP);
	cr_assert_str_eq(row(&T.done[0], "p2")->proto, "Static");
}

Test(bird_client, queue_runs_in_order_and_toggles_protocols)
{
	start_lab(2000);
	send_ok("disable p1");
	send_ok("disable p1");
	send_ok("show protocols p1");
	send_ok("enable p1");
	send_ok("show protocols p1");
	send_ok("enable nosuchproto");
	send_ok("show protocols \"nosuch*\"");
	RUN_UNTIL(T.n_done == 7, 5000, "seven replies");
	for (int i = 0; i < 7; i++)
		cr_assert_eq(T.done[i].err, 0, "command %d", i);
	cr_assert_eq(T.done[0].first_code, 9, "disabled");
	cr_assert_eq(T.done[1].first_code, 8, "already disabled");
	cr_assert_eq(row(&T.done[2], "p1")->state, BIRD_PROTO_DOWN);
	cr_assert_eq(T.done[3].first_code, 11, "enabled");
	cr_assert_eq(row(&T.done[4], "p1")->state, BIRD_PROTO_UP);
	cr_assert_eq(T.done[5].code, 9001, "a parse error is a reply, not an error");
	cr_assert_eq(T.done[6].code, 8003);
	cr_assert_eq(T.done[6].n_rows, 0);
}

Test(bird_client, bird_killed_then_restarted)
{
	int before;

	start_lab(2000);
	birdlab_stop(&lab, SIGKILL);
	RUN_UNTIL(!T.up, 5000, "the disconnect");
	cr_assert(strstr(T.why, lab.sock), "%s", T.why);
	cr_assert_not(bird_client_connected(T.c));

	send_ok("show status");
	cr_assert_eq(T.n_done, 0, "-ENOTCONN comes from the loop, not from send");
	RUN_UNTIL(T.n_done == 1, 5000, "-ENOTCONN");
	cr_assert_eq(T.done[0].err, -ENOTCONN);

	before = T.ups;
	cr_assert_eq(birdlab_start(&lab, 10000), 0);
	RUN_UNTIL(T.ups > before, 10000, "the reconnect");
	send_ok("show status");
	RUN_UNTIL(T.n_done == 2, 5000, "show status");
	cr_assert_eq(T.done[1].code, 13);
}

Test(bird_client, no_bird_at_all)
{
	snprintf(fake_path, sizeof(fake_path), "/tmp/healthd-nobird-%ld.ctl", (long)getpid());
	cr_assert_eq(bird_client_new(&T.loop, fake_path, 500, on_state, &T, &T.c), 0);
	send_ok("show status");
	cr_assert_eq(T.n_done, 0);
	RUN_UNTIL(T.n_done == 1 && T.downs == 1, 5000, "the failed connect");
	cr_assert_eq(T.done[0].err, -ENOTCONN);
	cr_assert(strstr(T.why, fake_path) && strstr(T.why, "no such file or directory"),
		  "%s", T.why);
	/* retries with the same reason are not reported again */
	send_ok("show status");
	RUN_UNTIL(T.n_done == 2, 5000, "-ENOTCONN again");
	cr_assert_eq(T.done[1].err, -ENOTCONN);
	cr_assert_eq(T.downs, 1);
}

Test(bird_client, bad_commands_are_refused)
{
	cr_assert_eq(bird_client_new(&T.loop, fake_path, 500, on_state, &T, &T.c), 0);
	cr_assert_eq(bird_client_send(T.c, "disable p1\nenable p1", on_done, &T), -EINVAL);
	cr_assert_eq(bird_client_send(T.c, "show status\r", on_done, &T), -EINVAL);
	cr_assert_eq(bird_client_send(T.c, "", on_done, &T), -EINVAL);
	cr_assert_eq(bird_client_send(T.c, "x", NULL, &T), -EINVAL);
	cr_assert_eq(T.n_done, 0);
}

Test(bird_client, close_cancels_synchronously)
{
	start_lab(2000);
	send_ok("show status");
	send_ok("show protocols");
	send_ok("show status");
	bird_client_close(T.c);
	T.c = NULL;
	cr_assert_eq(T.n_done, 3, "every pending command is told inside close");
	for (int i = 0; i < 3; i++)
		cr_assert_eq(T.done[i].err, -ECANCELED);
	int ups = T.ups, downs = T.downs;

	uv_close((uv_handle_t *)&T.deadline, NULL);
	uv_run(&T.loop, UV_RUN_DEFAULT);
	cr_assert_eq(T.n_done, 3, "no callback after close");
	cr_assert_eq(T.ups, ups);
	cr_assert_eq(T.downs, downs);
}

/* ---- fakebird ---- */

static void start_fake(enum fakebird_mode mode, uint64_t timeout_ms)
{
	cr_assert_eq(fakebird_start(&T.loop, fake_path, mode, &fake), 0);
	cr_assert_eq(bird_client_new(&T.loop, fake_path, timeout_ms, on_state, &T, &T.c), 0);
}

Test(bird_client, garbage_is_eproto_then_reconnect)
{
	start_fake(FAKEBIRD_GARBAGE, 2000);
	RUN_UNTIL(T.up, 5000, "the welcome");
	send_ok("show status");
	RUN_UNTIL(T.n_done == 1, 5000, "the garbage");
	cr_assert_eq(T.done[0].err, -EPROTO);
	cr_assert_not(T.up);
	cr_assert(strstr(T.why, fake_path) && strstr(T.why, "hello, world"), "%s", T.why);
	RUN_UNTIL(T.ups == 2, 5000, "the reconnect");
	cr_assert_eq(fakebird_connections(fake), 2);
}

Test(bird_client, silence_is_etimedout)
{
	start_fake(FAKEBIRD_SILENT, 200);
	RUN_UNTIL(T.up, 5000, "the welcome");
	send_ok("show status");
	send_ok("show protocols");
	RUN_UNTIL(T.n_done == 2, 5000, "the timeout");
	cr_assert_eq(T.done[0].err, -ETIMEDOUT);
	cr_assert_eq(T.done[1].err, -ENOTCONN, "queued behind it, never sent");
	cr_assert_eq(fakebird_commands(fake), 1);
	cr_assert(strstr(T.why, "no reply to \"show status\" within 200 ms"), "%s", T.why);
	RUN_UNTIL(T.ups == 2, 5000, "the reconnect");
}

Test(bird_client, close_mid_reply_is_econnreset)
{
	start_fake(FAKEBIRD_CLOSE_MID, 2000);
	RUN_UNTIL(T.up, 5000, "the welcome");
	send_ok("show protocols");
	RUN_UNTIL(T.n_done == 1, 5000, "the reset");
	cr_assert_eq(T.done[0].err, -ECONNRESET);
	cr_assert(strstr(T.why, "closed the connection"), "%s", T.why);
}

Test(bird_client, reply_byte_by_byte)
{
	start_fake(FAKEBIRD_SLOW, 2000);
	send_ok("show protocols");
	send_ok("show protocols");
	RUN_UNTIL(T.n_done == 2, 5000, "two replies");
	for (int i = 0; i < 2; i++) {
		cr_assert_eq(T.done[i].err, 0);
		cr_assert_eq(T.done[i].n_rows, 2);
		cr_assert_eq(row(&T.done[i], "healthd_web_v4")->state, BIRD_PROTO_UP);
		cr_assert_eq(row(&T.done[i], "healthd_web_v6")->state, BIRD_PROTO_DOWN);
	}
	cr_assert_eq(T.ups, 1);
}

Test(bird_client, wrong_welcome)
{
	start_fake(FAKEBIRD_BAD_WELCOME, 2000);
	send_ok("show status");
	RUN_UNTIL(T.n_done == 1 && T.downs >= 1, 5000, "the refusal");
	cr_assert_eq(T.done[0].err, -ENOTCONN);
	cr_assert(strstr(T.why, "expected the welcome") && strstr(T.why, "9001 go away"),
		  "%s", T.why);
	cr_assert_eq(T.ups, 0);
}

static void close_from_callback(void *arg, int err, const struct bird_reply *r)
{
	struct ctx *t = arg;

	on_done(arg, err, r);
	bird_client_close(t->c);
	t->c = NULL;
}

Test(bird_client, close_inside_a_callback)
{
	start_fake(FAKEBIRD_SLOW, 2000);
	cr_assert_eq(bird_client_send(T.c, "show protocols", close_from_callback, &T), 0);
	send_ok("show protocols");
	RUN_UNTIL(T.n_done == 2, 5000, "the first reply");
	cr_assert_eq(T.done[0].err, 0);
	cr_assert_eq(T.done[1].err, -ECANCELED, "the second is cancelled inside close");
	fakebird_close(fake);
	fake = NULL;
	uv_close((uv_handle_t *)&T.deadline, NULL);
	uv_run(&T.loop, UV_RUN_DEFAULT);
	cr_assert_eq(T.n_done, 2);
}
