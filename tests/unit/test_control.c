/*
 * test_control — the control socket's request parser (ctl_request_parse):
 * every command, its arguments, and the errors bad requests get. The
 * socket itself is exercised by the integration tests (t_healthctl,
 * t_fault_ctl_flood).
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "healthd/healthd.h"

TestSuite(control, .timeout = 10);

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
