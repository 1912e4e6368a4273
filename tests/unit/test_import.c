/*
 * Tests of `healthctl import` (import/): the fixtures under
 * tests/unit/fixtures/import, written from the documented formats of
 * anycast-healthchecker (its README: [daemon], [DEFAULT], one section per
 * service) and ExaBGP's healthcheck (its options, one per line in the
 * .args files, and a --config file), against golden outputs; the outputs
 * that hold only http checks load with cfg_load; errors name FILE:LINE.
 * Run from the repository root.
 *
 * Golden files: tests/unit/golden/import/NAME.yaml. After an intended
 * change,
 *     HEALTHD_UPDATE_GOLDEN=1 build/std/tests/test_import
 * and review the diff.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config.h"
#include "import/import.h"
#include "tests/lib/testlib.h"

#define FIX "tests/unit/fixtures/import"
#define AHC FIX "/anycast-healthchecker"
#define GOLDEN_DIR "tests/unit/golden/import"

TestSuite(import, .timeout = 30);

/* ---- running the importers into a string ---- */

static int run_ahc(char **paths, int n, char **out, char *err, size_t errlen)
{
	size_t len;
	FILE *f = open_memstream(out, &len);
	int rc;

	cr_assert_not_null(f);
	rc = imp_anycast_healthchecker(f, paths, n, err, errlen);
	fclose(f);
	return rc;
}

static int run_exabgp(char **args, int n, char **out, char *err, size_t errlen)
{
	size_t len;
	FILE *f = open_memstream(out, &len);
	int rc;

	cr_assert_not_null(f);
	rc = imp_exabgp_healthcheck(f, args, n, err, errlen);
	fclose(f);
	return rc;
}

/* An .args file: one argument a line. */
static int read_args(const char *path, char **args, int max, char **text)
{
	int n = 0;

	*text = testlib_read_file(path);
	cr_assert_not_null(*text, "%s", path);
	for (char *save = NULL, *l = strtok_r(*text, "\n", &save); l && n < max;
	     l = strtok_r(NULL, "\n", &save))
		args[n++] = l;
	return n;
}

static char *exabgp_out(const char *args_file)
{
	char *args[64], *text, *out = NULL, err[512] = "";
	int n = read_args(args_file, args, 64, &text);

	cr_assert_eq(run_exabgp(args, n, &out, err, sizeof(err)), 0, "%s: %s", args_file, err);
	free(text);
	return out;
}

static char *ahc_out(const char *p1, const char *p2)
{
	char *paths[2] = { (char *)p1, (char *)p2 }, *out = NULL, err[512] = "";

	cr_assert_eq(run_ahc(paths, p2 ? 2 : 1, &out, err, sizeof(err)), 0, "%s", err);
	return out;
}

static void golden(const char *name, const char *got)
{
	const char *update = getenv("HEALTHD_UPDATE_GOLDEN");
	char path[256], *want;

	snprintf(path, sizeof(path), GOLDEN_DIR "/%s.yaml", name);
	if (update && *update) {
		FILE *w;

		mkdir(GOLDEN_DIR, 0755);
		cr_assert_not_null(w = fopen(path, "w"));
		fputs(got, w);
		fclose(w);
	}
	want = testlib_read_file(path);
	cr_assert_not_null(want, "%s missing (HEALTHD_UPDATE_GOLDEN=1 writes it)", path);
	cr_assert_str_eq(got, want, "%s differs from what imports now", path);
	free(want);
}

static void loads(const char *name, const char *yaml)
{
	char err[512];
	struct config *c = cfg_load_string(name, yaml, strlen(yaml), err, sizeof(err));

	cr_assert_not_null(c, "%s: %s\n%s", name, err, yaml);
	cfg_free(c);
}

static void has(const char *text, const char *want)
{
	cr_assert_not_null(strstr(text, want), "no '%s' in:\n%s", want, text);
}

/* ---- anycast-healthchecker ---- */

Test(import, ahc_fixture_matches_golden)
{
	char *out = ahc_out(AHC "/anycast-healthchecker.conf", AHC "/conf.d");

	golden("anycast-healthchecker", out);
	free(out);
}

Test(import, ahc_daemon_section)
{
	char *out = ahc_out(AHC "/anycast-healthchecker.conf", AHC "/conf.d");

	has(out, "bird:\n  # bird_conf held the prefix list; healthd writes its protocols there instead\n"
		 "  include: \"/var/lib/anycast-healthchecker/anycast-prefixes.conf\"\n");
	has(out, "  purge: true ");
	has(out, "  socket: \"/run/bird/bird.ctl\" ");
	has(out, "# not mapped: bird_reconfigure_cmd = sudo /usr/sbin/birdc -s /run/bird/bird.ctl"
		 " configure: healthd talks to BIRD's control socket");
	has(out, "# not mapped: dummy_ip_prefix = 10.189.200.255/32: ");
	has(out, "# not mapped: pidfile = ");
	has(out, "# not mapped: loglevel = debug: ");
	free(out);
}

Test(import, ahc_curl_becomes_http)
{
	char *out = ahc_out(AHC "/conf.d/10-www.conf", NULL);

	has(out, "  - name: www_example_net\n    prefixes: [\"192.0.2.10/32\"]\n");
	has(out, "        type: http\n        url: \"http://192.0.2.10/healthz\"\n"
		 "        expect_status: [200]\n");
	has(out, "        headers:\n          Host: \"www.example.net\"\n");
	has(out, "        interval: 2s\n        timeout: 1s\n        rise: 2\n        fall: 3\n"
		 "        on_fail: withdraw\n"); /* --max-time 1 is below check_timeout */
	free(out);
}

Test(import, ahc_dig_becomes_dns)
{
	char *out = ahc_out(AHC "/conf.d/20-dns.conf", NULL);

	has(out, "    prefixes: [\"192.0.2.53/32\"]\n"); /* no length: /32 */
	has(out, "        type: dns\n        qname: \"example.net\"\n        qtype: SOA\n"
		 "        server: \"192.0.2.53:53\"\n        expect_rcode: NOERROR\n");
	has(out, "        server: \"[2001:db8::53]:5353\"\n");
	has(out, "    prefixes: [\"2001:db8::53/128\"]\n");
	has(out, "# not mapped: ip_check_disabled = true: ");
	free(out);
}

Test(import, ahc_script_is_exec_without_shell)
{
	char *out = ahc_out(AHC "/conf.d/30-scripts.conf", NULL);

	has(out, "        type: exec\n        # check_cmd ran without a shell, split into words as here\n");
	has(out, "        command: [\"/usr/local/bin/check_app\", \"--port\", \"8080\", \"--expect\","
		 " \"ready\", \"|\", \"logger\"]\n");
	has(out, "        interval: 500ms\n");
	has(out, "    on_change: [\"/bin/sh\", \"-c\", \"case \\\"$HEALTHD_TO\\\" in up)"
		 " /usr/local/sbin/notify-bird --service 'app one' up;; withdrawn) /usr/local/sbin/notify-bird"
		 " --service 'app one' down;; esac\"]\n"
		 "    on_change_timeout: 5s\n");
	/* check_disabled defaults to true: the section that does not say false */
	has(out, "# not mapped: check_disabled = true: the service was never announced");
	has(out, "        on_fail: ignore                 # check_disabled = true, on_disabled = advertise\n");
	/* %% is configparser's % */
	has(out, "  - name: legacy\n");
	free(out);
}

Test(import, ahc_http_only_loads)
{
	char *out = ahc_out(AHC "/http-only", NULL);

	golden("anycast-healthchecker-http", out);
	loads("http-only", out);
	has(out, "        connect_to: \"192.0.2.10:443\"\n        tls_verify: false\n");
	has(out, "        interval: 3s\n"); /* from [DEFAULT] */
	free(out);
}

/* arrays, not pointers: Criterion copies parameters into another process */
struct bad { char file[128], want[256]; };


ParameterizedTestParameters(import, ahc_errors_name_file_and_line)
{
	static struct bad ahc_bad[] = {
		{ FIX "/errors/bad-line.conf", FIX "/errors/bad-line.conf:3: 'this line has no delimiter'"
		  " is not KEY = VALUE" },
		{ FIX "/errors/bad-percent.conf", FIX "/errors/bad-percent.conf:2: check_cmd: '%' must be"
		  " followed by" },
		{ FIX "/errors/bad-prefix.conf", FIX "/errors/bad-prefix.conf:4: ip_prefix: '192.0.2.1/33'" },
		{ FIX "/errors/unknown-option.conf", FIX "/errors/unknown-option.conf:1: 'cmd = true' stands"
		  " before any [section]" },
		{ FIX "/errors/none.conf", FIX "/errors/none.conf: No such file" },
	};

	return cr_make_param_array(struct bad, ahc_bad, sizeof(ahc_bad) / sizeof(ahc_bad[0]));
}

ParameterizedTest(struct bad *b, import, ahc_errors_name_file_and_line)
{
	char *paths[1] = { (char *)b->file }, *out = NULL, err[512] = "";

	cr_assert_eq(run_ahc(paths, 1, &out, err, sizeof(err)), -1);
	cr_assert_not_null(strstr(err, b->want), "got '%s', want '%s'", err, b->want);
	free(out);
}

Test(import, ini_duplicates_and_continuations)
{
	char path[] = "/tmp/test_import_XXXXXX", *paths[1] = { path }, *out = NULL, err[512];
	int fd = mkstemp(path);
	FILE *f = fdopen(fd, "w");

	fputs("[a]\ncheck_cmd = /bin/check\n  --long\ncheck_disabled: no\nip_prefix=192.0.2.1\n"
	      "[a]\n", f);
	fclose(f);
	cr_assert_eq(run_ahc(paths, 1, &out, err, sizeof(err)), -1);
	cr_assert_not_null(strstr(err, ":6: section [a] given twice in this file"), "%s", err);
	free(out);
	out = NULL;
	f = fopen(path, "w");
	fputs("[a]\ncheck_cmd = /bin/check\n  --long\ncheck_disabled: no\nip_prefix=192.0.2.1\n"
	      "IP_Version = 4\n", f);
	fclose(f);
	cr_assert_eq(run_ahc(paths, 1, &out, err, sizeof(err)), 0, "%s", err);
	has(out, "command: [\"/bin/check\", \"--long\"]");
	has(out, "# not mapped: ip_version = 4: the family follows from ip_prefix"); /* keys fold to lower case */
	has(out, "        on_fail: withdraw\n");
	cr_assert_null(strstr(out, "check_disabled"), "%s", out);
	free(out);
	unlink(path);
}

/* ---- ExaBGP healthcheck ---- */

Test(import, exabgp_option_sets_match_golden)
{
	static const char *const sets[] = { "http", "exec", "config-file", "short" };

	for (size_t i = 0; i < sizeof(sets) / sizeof(sets[0]); i++) {
		char path[256], name[64], *out;

		snprintf(path, sizeof(path), FIX "/exabgp/%s.args", sets[i]);
		snprintf(name, sizeof(name), "exabgp-%s", sets[i]);
		out = exabgp_out(path);
		golden(name, out);
		free(out);
	}
}

Test(import, exabgp_http_loads)
{
	char *out = exabgp_out(FIX "/exabgp/http.args");

	loads("exabgp-http", out);
	has(out, "    prefixes: [\"203.0.113.10/32\", \"2001:db8:10::/64\"]\n");
	has(out, "    communities:\n      up: [\"65000:10\"]\n");
	has(out, "    maintenance_file: \"/etc/healthd/maintenance.web\"");
	has(out, "        interval: 3s\n        timeout: 2s\n        rise: 2\n        fall: 2\n");
	has(out, "# without --withdraw-on-down healthcheck kept announcing");
	free(out);
}

Test(import, exabgp_hooks_and_unmapped)
{
	char *out = exabgp_out(FIX "/exabgp/exec.args");

	has(out, "        command: [\"/bin/sh\", \"-c\", \"/usr/lib/nagios/plugins/check_smtp -H 127.0.0.1\"]\n"
		 "        user: \"nobody\"");
	has(out, "    on_change: [\"/bin/sh\", \"-c\", \"case \\\"$HEALTHD_TO\\\" in up) export STATE=UP;"
		 " systemctl start postfix-announce;; withdrawn) export STATE=DOWN; echo \\\"mail is $STATE\\\""
		 " | mail -s down ops@example.net;; draining) export STATE=DISABLED; touch /run/mail.disabled;;"
		 " esac; logger state changed\"]\n");
	has(out, "      degraded: [\"65000:666\"]\n");
	has(out, "# not mapped: up-metric = 50: ");
	has(out, "# not mapped: local-preference = 200: ");
	has(out, "# not mapped: as-path = 65000 65000: ");
	has(out, "# not mapped: deaggregate-networks: ");
	has(out, "# not mapped: group = nogroup: ");
	cr_assert_null(strstr(out, "        on_fail:"), "%s", out);
	free(out);
}

Test(import, exabgp_config_file_then_command_line)
{
	char *out = exabgp_out(FIX "/exabgp/config-file.args");

	has(out, "  - name: resolver\n    prefixes: [\"192.0.2.53/32\", \"2001:db8::53/128\"]\n");
	has(out, "      up: [\"65000:53\", \"65000:100\", \"65000:0:53\"]\n");
	has(out, "        type: dns\n        qname: \"resolver.example.net\"\n        qtype: A\n"
		 "        server: \"127.0.0.1:53\"\n");
	has(out, "        expect_answer: \"192.0.2\"\n");
	has(out, "        interval: 1s\n"); /* the command line's --interval 1 wins */
	has(out, "        on_fail: withdraw               # --withdraw-on-down\n");
	has(out, "# not mapped: fast-interval = 1: ");
	free(out);
}

/* Short options, values attached with '=', long names cut to a unique
 * prefix: argparse takes all three. */
Test(import, exabgp_short_and_abbreviated_options)
{
	char *out = exabgp_out(FIX "/exabgp/short.args");

	has(out, "  - name: ns\n    prefixes: [\"192.0.2.53/32\"]\n    communities:\n"
		 "      up: [\"65000:1:2\"]\n"); /* --large-comm */
	has(out, "        qtype: NS\n        server: \"192.0.2.53:53\"\n");
	has(out, "        interval: 2s\n        timeout: 1s\n        rise: 3\n        fall: 3\n"
		 "        on_fail: withdraw "); /* -i, -t, --withdraw */
	has(out, "# not mapped: syslog-facility = local0: "); /* -sF takes a value */
	has(out, "# not mapped: pid = /run/healthcheck.pid: ");
	free(out);

	char *amb[] = { "--ip", "192.0.2.1", "--d" }, err[512];

	out = NULL;
	cr_assert_eq(run_exabgp(amb, 3, &out, err, sizeof(err)), -1);
	cr_assert_str_eq(err, "argument 3: '--d' is ambiguous");
	free(out);
}

Test(import, exabgp_errors_name_where)
{
	char *args[64], *text, *out = NULL, err[512] = "";
	int n = read_args(FIX "/errors/unknown-option.args", args, 64, &text);

	cr_assert_eq(run_exabgp(args, n, &out, err, sizeof(err)), -1);
	cr_assert_str_eq(err, "argument 5: unknown option '--bogus'");
	free(out);
	free(text);

	char *a2[] = { "-F", FIX "/errors/unknown-option.conf" };
	out = NULL;
	cr_assert_eq(run_exabgp(a2, 2, &out, err, sizeof(err)), -1);
	cr_assert_str_eq(err, FIX "/errors/unknown-option.conf:3: unknown option '--not-an-option'");
	free(out);

	char *a3[] = { "--cmd", "true", "--ip", "192.0.2.1/24" };
	out = NULL;
	cr_assert_eq(run_exabgp(a3, 4, &out, err, sizeof(err)), -1);
	cr_assert_not_null(strstr(err, "argument 4: --ip '192.0.2.1/24' is not a network"), "%s", err);
	free(out);

	char *a4[] = { "--cmd", "true", "--ip", "192.0.2.1", "--interval", "0" };
	out = NULL;
	cr_assert_eq(run_exabgp(a4, 6, &out, err, sizeof(err)), -1);
	cr_assert_not_null(strstr(err, "argument 6: --interval '0'"), "%s", err);
	free(out);

	char *a5[] = { "--ip", "192.0.2.1", "--rise" };
	out = NULL;
	cr_assert_eq(run_exabgp(a5, 3, &out, err, sizeof(err)), -1);
	cr_assert_str_eq(err, "argument 3: --rise needs a value");
	free(out);
}

/* ---- commands ---- */

struct cmd_case { char cmd[160]; bool shell; char type[8], want[160]; };


ParameterizedTestParameters(import, check_commands)
{
	static struct cmd_case cmds[] = {
		{ "curl -fsS -o /dev/null -w '%{http_code}' http://127.0.0.1/ | grep -q 204", true, "http",
		  "expect_status: [204]" },
		{ "curl -s http://127.0.0.1/ | grep -qF OK", true, "http", "expect_body: \"OK\"" },
		{ "curl -f --connect-to www.example.net:443:127.0.0.1:8443 https://www.example.net/", true,
		  "http", "connect_to: \"127.0.0.1:8443\"" },
		{ "curl -X POST http://127.0.0.1/", true, "exec", "curl's -X has no http check equivalent" },
		{ "curl -f http://127.0.0.1/ && echo ok", true, "exec", "\"/bin/sh\", \"-c\"" },
		{ "curl -f \"http://$HOST/\"", true, "exec", "so does this command" },
		{ "dig example.net", true, "exec", "no @ADDRESS" },
		{ "dig @127.0.0.1 example.net | grep -q 'status: NOERROR'", true, "dns",
		  "expect_rcode: \"NOERROR\"" },
		{ "dig @127.0.0.1 +tcp example.net MX", true, "dns",
		  "# not mapped: dig option = +tcp: the dns check has no such setting" },
		{ "curl -sf http://127.0.0.1/ | grep -q OK", false, "exec",
		  "curl's a second URL has no http check equivalent" },
		{ "dig @127.0.0.1 example.net +short | grep -q 192.0.2.1", false, "exec",
		  "'|' is a word passed to the program" },
		{ "/usr/bin/check --flag \"two words\" it\\'s", false, "exec",
		  "[\"/usr/bin/check\", \"--flag\", \"two words\", \"it's\"]" },
	};

	return cr_make_param_array(struct cmd_case, cmds, sizeof(cmds) / sizeof(cmds[0]));
}

ParameterizedTest(struct cmd_case *c, import, check_commands)
{
	struct imp_svc s;
	uint64_t timeout = 2000;

	cr_assert_eq(imp_svc_init(&s), 0);
	cr_assert_eq(imp_check_from_cmd(&s, "cmd", c->cmd, c->shell, &timeout), 0);
	fflush(s.check);
	cr_assert_str_eq(s.check_type, c->type, "%s:\n%s", c->cmd, s.check_buf);
	cr_assert_not_null(strstr(s.check_buf, c->want), "%s: no '%s' in\n%s", c->cmd, c->want,
			   s.check_buf);
	imp_svc_free(&s);
}

Test(import, unclosed_quote_without_shell_is_an_error)
{
	struct imp_svc s;
	uint64_t timeout = 2000;

	cr_assert_eq(imp_svc_init(&s), 0);
	cr_assert_eq(imp_check_from_cmd(&s, "cmd", "/bin/check 'open", false, &timeout), -1);
	imp_svc_free(&s);
}

/* What another tool's file may hold that YAML would misread: line breaks
 * of its own (\r, NEL, LS), control characters, bytes that are not UTF-8. */
Test(import, hostile_text_stays_in_its_scalar_or_comment)
{
	char path[] = "/tmp/test_import_XXXXXX", *paths[1] = { path }, *out = NULL, err[512];
	int fd = mkstemp(path);
	FILE *f = fdopen(fd, "w");

	fputs("[DEFAULT]\nnote = a\rservices: []\x01\xc2\x85x\n"
	      "[web\xe2\x80\xa8services: {}]\ncheck_disabled = false\nip_prefix = 192.0.2.1\n"
	      "check_cmd = curl -f -H 'X-A: \xe2\x80\xa9\xff' http://127.0.0.1/\n"
	      "unknown\xff = \x7f\xff\xbe\xbe\xc2\x88\xef\xbf\xbe\n", f);
	fclose(f);
	cr_assert_eq(run_ahc(paths, 1, &out, err, sizeof(err)), 0, "%s", err);
	loads("hostile", out);
	has(out, "X-A: \"\\u2029\\xff\"");
	cr_assert_null(strpbrk(out, "\r\x01\x7f\xff"), "%s", out);
	cr_assert_null(strstr(out, "\xc2\x85"), "%s", out);
	cr_assert_null(strstr(out, "\xe2\x80\xa8"), "%s", out);
	cr_assert_null(strstr(out, "\xc2\x88"), "%s", out);
	cr_assert_null(strstr(out, "\xef\xbf\xbe"), "%s", out);
	free(out);
	unlink(path);
}

Test(import, service_names)
{
	char buf[CFG_SERVICE_NAME_MAX + 1];

	imp_service_name("foo6.bar.com", buf, sizeof(buf));
	cr_assert_str_eq(buf, "foo6_bar_com");
	imp_service_name("--Web--", buf, sizeof(buf));
	cr_assert_str_eq(buf, "web");
	imp_service_name("...", buf, sizeof(buf));
	cr_assert_str_eq(buf, "service");
	imp_service_name("a-very-long-service-name-that-does-not-fit-in-bird", buf, sizeof(buf));
	cr_assert_leq(strlen(buf), CFG_SERVICE_NAME_MAX);
	cr_assert_str_eq(buf, "a_very_long_service_name_that_does_not_fit");
}
