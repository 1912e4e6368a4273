/*
 * test_control — the control socket's request parser (ctl_request_parse):
 * every command, its arguments, and the errors bad requests get. The
 * socket itself is exercised by the integration tests (t_healthctl,
 * t_fault_ctl_flood, t_ctl_hostile); ctl_socket_scan, the tolerant read of
 * control.socket that healthctl does, is tested here.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "healthd/healthd.h"

TestSuite(control, .timeout = 10);

/* drain ... force: past the fleet guard; in any place before the reason */
Test(control, drain_force)
{
	char line[80], err[256] = "";
	struct ctl_request req;

	snprintf(line, sizeof(line), "drain web 30s force reason a bad check everywhere");
	cr_assert_eq(ctl_request_parse(line, &req, err, sizeof(err)), 0, "%s", err);
	cr_assert(req.force);
	cr_assert_eq(req.for_ms, 30000);
	cr_assert_str_eq(req.reason, "a bad check everywhere");
	snprintf(line, sizeof(line), "drain --all force 5m");
	cr_assert_eq(ctl_request_parse(line, &req, err, sizeof(err)), 0, "%s", err);
	cr_assert(req.force && req.all);
	cr_assert_eq(req.for_ms, 300000);
	snprintf(line, sizeof(line), "drain web reason force");
	cr_assert_eq(ctl_request_parse(line, &req, err, sizeof(err)), 0, "%s", err);
	cr_assert_not(req.force, "a reason's words are the reason");
	cr_assert_str_eq(req.reason, "force");
	snprintf(line, sizeof(line), "drain web");
	cr_assert_eq(ctl_request_parse(line, &req, err, sizeof(err)), 0, "%s", err);
	cr_assert_not(req.force, "what older clients send");
}

struct good {
	char line[64];
	enum ctl_cmd cmd;
	char arg[32];           /* "" = none */
	uint64_t for_ms;
};

ParameterizedTestParameters(control, good)
{
	static struct good g[] = {
		{ "status", CTL_STATUS, "", 0 },
		{ "  status  ", CTL_STATUS, "", 0 },
		{ "version", CTL_VERSION, "", 0 },
		{ "reload", CTL_RELOAD, "", 0 },
		{ "drain web", CTL_DRAIN, "web", 0 },
		{ "drain\tweb\t90s", CTL_DRAIN, "web", 90000 },
		{ "drain web 5m", CTL_DRAIN, "web", 300000 },
		{ "drain web 168h", CTL_DRAIN, "web", 604800000 },
		{ "undrain web", CTL_UNDRAIN, "web", 0 },
		{ "check web/http", CTL_CHECK, "web/http", 0 },
		{ "check http", CTL_CHECK, "http", 0 },
	};
	return cr_make_param_array(struct good, g, sizeof(g) / sizeof(g[0]));
}

ParameterizedTest(struct good *g, control, good)
{
	char line[64], err[256] = "";
	struct ctl_request req;

	snprintf(line, sizeof(line), "%s", g->line);
	cr_assert_eq(ctl_request_parse(line, &req, err, sizeof(err)), 0, "%s: %s", g->line, err);
	cr_assert_eq(req.cmd, g->cmd, "%s", g->line);
	if (g->arg[0])
		cr_assert_str_eq(req.arg, g->arg, "%s", g->line);
	else
		cr_assert_null(req.arg, "%s", g->line);
	cr_assert_eq(req.for_ms, g->for_ms, "%s", g->line);
}

struct bad {
	char line[80];
	char error[64];         /* a part of the error */
};

ParameterizedTestParameters(control, bad)
{
	static struct bad b[] = {
		{ "", "empty request" },
		{ " \t ", "empty request" },
		{ "frobnicate", "unknown command 'frobnicate'" },
		{ "STATUS", "unknown command 'STATUS'" },
		{ "drain", "usage: drain SERVICE" },
		{ "undrain", "usage: drain SERVICE" },
		{ "drain web soon", "bad duration 'soon'" },
		{ "drain web 5x", "bad duration '5x'" },
		{ "undrain web 5s", "bad duration '5s'" },
		{ "drain web 169h", "drain duration '169h' is too long (at most 168h)" },
		{ "drain web 604800001ms", "drain duration '604800001ms' is too long" },
		{ "drain web 18446744073709551615ms", "drain duration '18446744073709551615ms' is too long" },
		{ "drain web 18446744073709551616ms", "drain duration '18446744073709551616ms' is too long" },
		{ "drain web 5124095576030h", "drain duration '5124095576030h' is too long" },
		{ "drain web 99999999999999999999x", "bad duration '99999999999999999999x'" },
		{ "drain web 5m 10m", "bad duration '10m'" },
		{ "drain web reason", "reason needs a text" },
		{ "drain web reason \t ", "reason needs a text" },
		{ "drain web reason a\x01" "b", "reason contains a control character (byte 2)" },
		{ "drain web reason a\x7f", "reason contains a control character" },
		{ "drain web reason \xc2\x85", "reason contains a control character" },
		{ "drain web reason \xff", "reason is not valid UTF-8 (byte 1)" },
		{ "drain web reason \xc3", "reason is not valid UTF-8" },
		{ "drain web reason \xed\xa0\x80", "reason is not valid UTF-8" },
		{ "drain web reason \xc0\xaf", "reason is not valid UTF-8" },
		{ "undrain --all 5s", "bad duration '5s'" },
		{ "undrain web force", "bad duration 'force'" },
		{ "drain web force force", "bad duration 'force'" },
		{ "check", "usage: check [SERVICE/]CHECK" },
	};
	return cr_make_param_array(struct bad, b, sizeof(b) / sizeof(b[0]));
}

ParameterizedTest(struct bad *b, control, bad)
{
	char line[80], err[256] = "";
	struct ctl_request req;

	snprintf(line, sizeof(line), "%s", b->line);
	cr_assert_eq(ctl_request_parse(line, &req, err, sizeof(err)), -EINVAL, "'%s'", b->line);
	cr_assert(strstr(err, b->error), "'%s': error '%s' lacks '%s'", b->line, err, b->error);
}

/* An unknown command of any length is quoted short, and never overflows. */
Test(control, long_unknown_command)
{
	char line[4096], err[128];
	struct ctl_request req;

	memset(line, 'x', sizeof(line) - 1);
	line[sizeof(line) - 1] = '\0';
	cr_assert_eq(ctl_request_parse(line, &req, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "unknown command 'xxxx"));
	cr_assert_lt(strlen(err), sizeof(err));
}

/* The error buffer may be smaller than any message. */
Test(control, tiny_error_buffer)
{
	char line[] = "drain web never", err[8];
	struct ctl_request req;

	cr_assert_eq(ctl_request_parse(line, &req, err, sizeof(err)), -EINVAL);
	cr_assert_eq(strlen(err), sizeof(err) - 1);
}

/* ---- drain options: --all, DURATION, reason TEXT ---- */

Test(control, drain_all_duration_and_reason)
{
	char line[] = "drain --all 90s reason kernel upgrade, ticket #42  ", err[256] = "";
	struct ctl_request req;

	cr_assert_eq(ctl_request_parse(line, &req, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(req.cmd, CTL_DRAIN);
	cr_assert(req.all);
	cr_assert_str_eq(req.arg, "--all");
	cr_assert_eq(req.for_ms, 90000);
	cr_assert_str_eq(req.reason, "kernel upgrade, ticket #42", "trailing blanks dropped");
}

Test(control, reason_without_duration_and_utf8)
{
	char line[] = "drain web reason Wartung \xc3\xbc \"quoted\" \\ {}", err[256] = "";
	struct ctl_request req;

	cr_assert_eq(ctl_request_parse(line, &req, err, sizeof(err)), 0, "%s", err);
	cr_assert_not(req.all);
	cr_assert_str_eq(req.arg, "web");
	cr_assert_eq(req.for_ms, 0);
	cr_assert_str_eq(req.reason, "Wartung \xc3\xbc \"quoted\" \\ {}");
}

Test(control, undrain_takes_a_reason)
{
	char line[] = "undrain web reason done", err[256] = "";
	struct ctl_request req;

	cr_assert_eq(ctl_request_parse(line, &req, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(req.cmd, CTL_UNDRAIN);
	cr_assert_str_eq(req.reason, "done");
}

Test(control, reason_length_is_capped)
{
	char line[512], err[256] = "";
	struct ctl_request req;
	int n = snprintf(line, sizeof(line), "drain web reason ");

	memset(line + n, 'r', SVC_REASON_MAX);
	line[n + SVC_REASON_MAX] = '\0';
	cr_assert_eq(ctl_request_parse(line, &req, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(strlen(req.reason), SVC_REASON_MAX);
	n = snprintf(line, sizeof(line), "drain web reason ");
	memset(line + n, 'r', SVC_REASON_MAX + 1);
	line[n + SVC_REASON_MAX + 1] = '\0';
	cr_assert_eq(ctl_request_parse(line, &req, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "reason too long (201 bytes, at most 200)"), "%s", err);
}

/* ---- ctl_socket_scan: control.socket from a config that may not parse ---- */

struct scan_case {
	char text[192];
	int rc;
	char path[48];
};

ParameterizedTestParameters(control, socket_scan)
{
	static struct scan_case s[] = {
		/* files that parse */
		{ "control:\n  socket: /run/a.sock\n", 1, "/run/a.sock" },
		{ "node: x\ncontrol:\n  # the socket\n  socket: \"/run/q b.sock\"  # quoted\nbird: {}\n", 1, "/run/q b.sock" },
		{ "control: { socket: /x/flow.sock }\n", 1, "/x/flow.sock" },
		{ "control: {socket: '/x/it''s.sock'}\n", 1, "/x/it's.sock" },
		{ "bird:\n  socket: /run/bird.ctl\nservices: []\n", 0, "" },
		{ "services:\n  - control:\n      socket: /not/top\n", 0, "" },
		{ "", 0, "" },
		/* files that do not: the key is still found */
		{ "node: [oops\ncontrol:\n  socket: /run/after-error.sock\n", 1, "/run/after-error.sock" },
		{ "node: [oops\ncontrol: { socket: \"/r/f.sock\", other: 1 }\n", 1, "/r/f.sock" },
		{ "node: [oops\r\ncontrol:\r\n  socket: /r/crlf.sock\r\n", 1, "/r/crlf.sock" },
		{ "control:\n  socket: /run/before.sock\nservices:\n  - name: [unclosed\n", 1, "/run/before.sock" },
		{ "node: [oops\ncontrol:\n  other: 1\n  socket: /r/plain.sock # note\n", 1, "/r/plain.sock" },
		{ "node: [oops\nbird:\n  socket: /r/bird.ctl\n", 0, "" },
		{ "node: [oops\ncontrol:\n  socket: \"/r/unterminated\n", 0, "" },
		{ "node: [oops\ncontrol:\nbird:\n  socket: /r/bird.ctl\n", 0, "" },
	};
	return cr_make_param_array(struct scan_case, s, sizeof(s) / sizeof(s[0]));
}

ParameterizedTest(struct scan_case *s, control, socket_scan)
{
	char path[108] = "";
	int rc = ctl_socket_scan(s->text, strlen(s->text), path, sizeof(path));

	cr_assert_eq(rc, s->rc, "%s: rc %d, path '%s'", s->text, rc, path);
	if (rc == 1)
		cr_assert_str_eq(path, s->path, "%s", s->text);
}

Test(control, socket_scan_path_too_long)
{
	char text[256], path[16];

	snprintf(text, sizeof(text), "control:\n  socket: /a/path/longer/than/sixteen\n");
	cr_assert_eq(ctl_socket_scan(text, strlen(text), path, sizeof(path)), -ENAMETOOLONG);
	snprintf(text, sizeof(text), "x: [\ncontrol:\n  socket: /a/path/longer/than/sixteen\n");
	cr_assert_eq(ctl_socket_scan(text, strlen(text), path, sizeof(path)), -ENAMETOOLONG);
}

Test(control, socket_scan_nul_is_no_path)
{
	static const char text[] = "x: [\ncontrol:\n  socket: \0/after/nul\n";
	char path[64];

	cr_assert_eq(ctl_socket_scan(text, sizeof(text) - 1, path, sizeof(path)), 0);
}
