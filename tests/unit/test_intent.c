/* The state file's format: operator intent read back at start. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <jansson.h>
#include <string.h>

#include "healthd/healthd.h"

TestSuite(intent, .timeout = 10);

static json_t *parse(const char *text, char *err, size_t errlen)
{
	err[0] = '\0';
	return hd_intent_parse(text, strlen(text), err, errlen);
}

Test(intent, round_trip)
{
	struct svc_intent in = { .drained = true, .since_ms = 1764586000123, .until_ms = 1764589600123,
				 .uid = 1000 }, out;
	char err[256] = "";

	snprintf(in.user, sizeof(in.user), "alice");
	snprintf(in.reason, sizeof(in.reason), "kernel upgrade \"5.10\" \\ ü");
	json_t *o = svc_intent_json(&in);
	cr_assert_not_null(o);
	cr_assert_eq(svc_intent_from_json(o, &out, err, sizeof(err)), 0, "%s", err);
	json_decref(o);
	cr_assert(out.drained);
	cr_assert_eq(out.since_ms, in.since_ms);
	cr_assert_eq(out.until_ms, in.until_ms);
	cr_assert_eq(out.uid, 1000);
	cr_assert_str_eq(out.user, "alice");
	cr_assert_str_eq(out.reason, in.reason);
}

Test(intent, a_whole_file_parses)
{
	char err[256];
	json_t *doc = parse("{\"version\": 1, \"written_ms\": 5, \"services\": {"
			    "\"web\": {\"drained\": true, \"since_ms\": 1, \"until_ms\": 0,"
			    " \"uid\": -1, \"user\": \"\"}}}", err, sizeof(err));

	cr_assert_not_null(doc, "%s", err);
	json_decref(doc);
}

struct bad {
	char text[200];
	char error[64];
};

ParameterizedTestParameters(intent, corrupt)
{
	static struct bad b[] = {
		{ "", "line 1" },
		{ "{\"version\": 1, \"services\": {", "line 1" },
		{ "[]", "not a version 1 state file" },
		{ "{\"version\": 2, \"services\": {}}", "not a version 1 state file" },
		{ "{\"version\": 1}", "'services' is missing" },
		{ "{\"version\": 1, \"services\": {\"Web!\": {}}}", "service name 'Web!'" },
		{ "{\"version\": 1, \"services\": {\"web\": 3}}", "service web: not an object" },
		{ "{\"version\": 1, \"services\": {\"web\": {\"since_ms\": 1}}}", "'drained'" },
		{ "{\"version\": 1, \"services\": {\"web\": {\"drained\": true, \"since_ms\": -4,"
		  " \"until_ms\": 0, \"uid\": 0}}}", "'since_ms'" },
		{ "{\"version\": 1, \"services\": {\"web\": {\"drained\": true, \"since_ms\": 1,"
		  " \"until_ms\": 0, \"uid\": \"root\"}}}", "'uid'" },
		{ "{\"version\": 1, \"services\": {\"web\": {\"drained\": true, \"since_ms\": 1,"
		  " \"until_ms\": 0, \"uid\": 0, \"reason\": \"a\\nb\"}}}", "reason contains a control character" },
		{ "{\"version\": 1, \"services\": {\"web\": {\"drained\": true, \"since_ms\": 1,"
		  " \"until_ms\": 0, \"uid\": 0, \"user\": 7}}}", "'user' is not a string" },
	};
	return cr_make_param_array(struct bad, b, sizeof(b) / sizeof(b[0]));
}

ParameterizedTest(struct bad *b, intent, corrupt)
{
	char err[256];
	json_t *doc = parse(b->text, err, sizeof(err));

	cr_assert_null(doc, "'%s' parsed", b->text);
	cr_assert(strstr(err, b->error), "'%s': error '%s' lacks '%s'", b->text, err, b->error);
}

Test(intent, a_long_reason_in_the_file_is_refused)
{
	char text[1024], err[256];
	int n = snprintf(text, sizeof(text), "{\"version\": 1, \"services\": {\"web\": {\"drained\": true,"
			 " \"since_ms\": 1, \"until_ms\": 0, \"uid\": 0, \"reason\": \"");

	memset(text + n, 'x', SVC_REASON_MAX + 1);
	snprintf(text + n + SVC_REASON_MAX + 1, sizeof(text) - (size_t)n - SVC_REASON_MAX - 1, "\"}}}");
	cr_assert_null(parse(text, err, sizeof(err)));
	cr_assert(strstr(err, "reason too long"), "%s", err);
}

Test(intent, describe_names_who_until_and_why)
{
	struct svc_intent in = { .drained = true, .uid = 0, .until_ms = 0 };
	char buf[400];

	snprintf(in.user, sizeof(in.user), "root");
	snprintf(in.reason, sizeof(in.reason), "kernel upgrade");
	hd_intent_describe(&in, buf, sizeof(buf));
	cr_assert_str_eq(buf, "by root (uid 0), until undrain, reason: kernel upgrade");
	in.user[0] = '\0';
	in.uid = 1001;
	in.until_ms = 86400000;
	in.reason[0] = '\0';
	hd_intent_describe(&in, buf, sizeof(buf));
	cr_assert_str_eq(buf, "by uid 1001, until 1970-01-02T00:00:00Z");
	in.drained = false;
	hd_intent_describe(&in, buf, sizeof(buf));
	cr_assert_str_eq(buf, "by uid 1001");
}
