/*
 * Tests of meshctl cloud-init (mesh/cloudinit.c): the user-data of the
 * example inventory's nodes against golden files, the same bytes every
 * time, the bootstrap carried byte for byte, the token in its file entry
 * and nowhere else, and the refusals: an unknown node, a bad URL, pin or
 * token, a package URL without its sha256, --metadata none without an
 * address to enrol with. `cloud-init schema` runs on the output in
 * tests/integration/t_cloudinit.sh. Run from the repository root.
 *
 * Golden files: tests/unit/golden/mesh/cloudinit/NAME.yaml, with the
 * script's lines replaced by one placeholder line (it is compared with
 * mesh/bootstrap.sh on its own). After an intended change,
 *     HEALTHD_UPDATE_GOLDEN=1 build/std/tests/test_mesh_cloudinit
 * and review the diff.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mesh/mesh.h"
#include "tests/lib/testlib.h"

#define EXAMPLE "config/examples/mesh.yaml"
#define GOLDEN_DIR "tests/unit/golden/mesh/cloudinit"
#define TOKEN "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define PIN "sha256//L6VGc1in/Hsfi/52+VvHTQdXalTJvvTALN+CE4UjMbA="
#define API "https://meshd.example.net:8443"
#define SCRIPT_LINE "    content: |\n"

TestSuite(mesh_cloudinit, .timeout = 30);

static struct mesh *example(void)
{
	char err[512];
	struct mesh *m = mesh_load(EXAMPLE, err, sizeof(err));

	cr_assert_not_null(m, "%s", err);
	return m;
}

/* The user-data, or NULL with the error in err. */
static char *render(const struct mesh *m, const char *node, const struct mesh_cloudinit_opts *o,
		    char *err, size_t errlen)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	int rc;

	cr_assert_not_null(f);
	err[0] = '\0';
	rc = mesh_cloudinit(f, m, node, o, err, errlen);
	cr_assert_eq(fclose(f), 0);
	if (rc) {
		cr_assert_eq(len, 0, "a refusal wrote %zu bytes", len);
		cr_assert_neq(err[0], '\0', "a refusal without a reason");
		free(out);
		return NULL;
	}
	return out;
}

static const struct mesh_cloudinit_opts base = { .token = TOKEN, .api = API, .pin = PIN };

/* The script's lines (after the bootstrap's "content: |") cut out: into
 * *script (caller frees), the rest returned with a placeholder. */
static char *split_script(const char *ud, char **script)
{
	const char *start = strstr(ud, "path: /usr/local/sbin/mesh-bootstrap\n"), *p, *end;
	char *rest;
	FILE *s;
	size_t n;

	cr_assert_not_null(start);
	p = strstr(start, SCRIPT_LINE);
	cr_assert_not_null(p);
	p += strlen(SCRIPT_LINE);
	s = open_memstream(script, &n);
	for (end = p; *end && (*end == '\n' || !strncmp(end, "      ", 6));) {
		const char *nl = strchr(end, '\n');

		cr_assert_not_null(nl);
		if (*end != '\n')
			fwrite(end + 6, 1, (size_t)(nl - end - 6), s);
		fputc('\n', s);
		end = nl + 1;
	}
	fclose(s);
	cr_assert(asprintf(&rest, "%.*s      <mesh/bootstrap.sh>\n%s", (int)(p - ud), ud, end) > 0);
	return rest;
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
	cr_assert_str_eq(got, want, "%s differs from what renders now", path);
	free(want);
}

Test(mesh_cloudinit, example_matches_golden_files)
{
	static const struct {
		const char *node, *name;
		struct mesh_cloudinit_opts o;
	} cases[] = {
		{ "ord1", "ord1", { TOKEN, API, PIN, NULL, NULL, NULL, NULL } },
		{ "lax1", "lax1-package-url", { TOKEN, "https://meshd.example.net/mesh", PIN,
			"none", NULL, "https://pkg.example.net/pool/healthd_1.2_amd64.deb",
			"5f0c2d4e8a1b3c6d7e9f0a1b2c3d4e5f60718293a4b5c6d7e8f9a0b1c2d3e4f5" } },
		{ "mia1", "mia1-package-name", { TOKEN, API, "L6VGc1in/Hsfi/52+VvHTQdXalTJvvTALN+CE4UjMbA=",
			"http://169.254.169.254/v1.json", "healthd-mesh", NULL, NULL } },
	};
	struct mesh *m = example();

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char err[512], *ud = render(m, cases[i].node, &cases[i].o, err, sizeof(err)), *script, *rest;

		cr_assert_not_null(ud, "%s: %s", cases[i].name, err);
		rest = split_script(ud, &script);
		golden(cases[i].name, rest);
		free(script);
		free(rest);
		free(ud);
	}
	mesh_free(m);
}

Test(mesh_cloudinit, same_inventory_same_bytes)
{
	struct mesh *a = example(), *b = example();
	char err[512], *x = render(a, "ewr1", &base, err, sizeof(err)), *y;

	cr_assert_not_null(x, "%s", err);
	y = render(b, "ewr1", &base, err, sizeof(err));
	cr_assert_not_null(y, "%s", err);
	cr_assert_str_eq(x, y);
	free(x);
	free(y);
	mesh_free(a);
	mesh_free(b);
}

/* What cloud-init writes to /usr/local/sbin/mesh-bootstrap is the file. */
Test(mesh_cloudinit, carries_the_bootstrap_byte_for_byte)
{
	struct mesh *m = example();
	char err[512], *ud = render(m, "ord1", &base, err, sizeof(err)), *script, *rest;
	char *file = testlib_read_file("mesh/bootstrap.sh");

	cr_assert_not_null(ud, "%s", err);
	cr_assert_not_null(file);
	rest = split_script(ud, &script);
	cr_assert_str_eq(script, file, "the embedded script is not mesh/bootstrap.sh (rebuild?)");
	cr_assert_eq(strlen(file), mesh_bootstrap_script_len);
	cr_assert(strstr(rest, "    permissions: \"0700\"\n" SCRIPT_LINE), "the bootstrap is not mode 0700");
	free(script);
	free(rest);
	free(file);
	free(ud);
	mesh_free(m);
}

/* The token is in the token file's entry and nowhere else; nothing else
 * that looks like a secret is there. */
Test(mesh_cloudinit, token_only_in_the_token_file)
{
	struct mesh *m = example();
	char err[512], *ud = render(m, "ord1", &base, err, sizeof(err)), *script, *rest, *hit;

	cr_assert_not_null(ud, "%s", err);
	rest = split_script(ud, &script);
	hit = strstr(rest, TOKEN);
	cr_assert_not_null(hit);
	cr_assert_null(strstr(hit + 1, TOKEN), "the token is there twice");
	cr_assert(strstr(rest, "  - path: /etc/healthd/mesh.token\n"
			       "    owner: \"root:root\"\n"
			       "    permissions: \"0600\"\n"
			       "    content: \"" TOKEN "\\n\"\n"), "no 0600 token file entry");
	cr_assert_null(strstr(script, TOKEN));
	cr_assert(strstr(rest, "--token-file, /etc/healthd/mesh.token"), "runcmd does not read the token file");
	cr_assert_null(strstr(rest, "--token,"), "the token on a command line");
	cr_assert_null(strstr(rest, "PrivateKey"));
	cr_assert_null(strstr(rest, "password \""));
	cr_assert(strstr(rest, "--pin, \"" PIN "\""), "the pin is not passed as given");
	free(script);
	free(rest);
	free(ud);
	mesh_free(m);
}

/* Pins given bare or with sha256//, one or several, reach the bootstrap
 * in curl's form. */
Test(mesh_cloudinit, pins_in_curls_form)
{
	struct mesh *m = example();
	struct mesh_cloudinit_opts o = base;
	char err[512], *ud;

	o.pin = "L6VGc1in/Hsfi/52+VvHTQdXalTJvvTALN+CE4UjMbA=;sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
	ud = render(m, "ord1", &o, err, sizeof(err));
	cr_assert_not_null(ud, "%s", err);
	cr_assert(strstr(ud, "--pin, \"" PIN ";sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\""),
		  "%s", strstr(ud, "--pin"));
	free(ud);
	mesh_free(m);
}

Test(mesh_cloudinit, unknown_node_is_an_error)
{
	struct mesh *m = example();
	char err[512];

	cr_assert_null(render(m, "nope1", &base, err, sizeof(err)));
	cr_assert(strstr(err, "no node named 'nope1'"), "%s", err);
	cr_assert(strstr(err, EXAMPLE), "the inventory is not named: %s", err);
	mesh_free(m);
}

static void refused(const struct mesh_cloudinit_opts *o, const char *want)
{
	struct mesh *m = example();
	char err[512];

	cr_assert_null(render(m, "ord1", o, err, sizeof(err)), "accepted; want '%s'", want);
	cr_assert(strstr(err, want), "'%s' not in: %s", want, err);
	mesh_free(m);
}

Test(mesh_cloudinit, bad_api_refused)
{
	static const char *const bad[] = {
		"http://meshd.example.net", "meshd.example.net", "https://", "https://:8443",
		"https://meshd.example.net:0", "https://meshd.example.net:70000",
		"https://user:pw@meshd.example.net", "https://meshd.example.net/x?y=1",
		"https://meshd.example.net/a b", "https://meshd..example.net", "https://-x.example",
		"https://meshd.example.net/../x", "https://meshd.example.net\"",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct mesh_cloudinit_opts o = base;

		o.api = bad[i];
		refused(&o, "--api '");
		refused(&o, "is not https://HOST[:PORT][/PREFIX]");
	}
}

Test(mesh_cloudinit, good_api_and_pin_forms)
{
	static const char *const apis[] = {
		"https://meshd.example.net", "https://meshd.example.net:8443/", "https://192.0.2.7:8443",
		"https://[2001:db8::7]:8443/meshd", "https://meshd/api-prefix/v",
	};
	static const char *const pins[] = {
		PIN, "L6VGc1in/Hsfi/52+VvHTQdXalTJvvTALN+CE4UjMbA=",
		PIN ";sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
	};
	char err[256];

	for (size_t i = 0; i < sizeof(apis) / sizeof(apis[0]); i++)
		cr_assert_eq(mesh_cloudinit_check_api(apis[i], err, sizeof(err)), 0, "%s: %s", apis[i], err);
	for (size_t i = 0; i < sizeof(pins) / sizeof(pins[0]); i++)
		cr_assert_eq(mesh_cloudinit_check_pin(pins[i], err, sizeof(err)), 0, "%s: %s", pins[i], err);
}

Test(mesh_cloudinit, bad_pin_refused)
{
	static const char *const bad[] = {
		"", "sha256//", "sha256//short=", "L6VGc1in/Hsfi/52+VvHTQdXalTJvvTALN+CE4UjMbA",
		"L6VGc1in/Hsfi/52+VvHTQdXalTJvvTALN+CE4UjMbAA", "sha1//L6VGc1in/Hsfi/52+VvHTQdXalTJvvTALN+CE4UjMbA=",
		"L6VGc1in/Hsfi/52+VvHTQdXalTJvvTALN+CE4UjMbB=", "L6VGc1in/Hsfi/52+VvHTQdXalTJvvTALN+CE4Uj-bA=",
		PIN ";", PIN ";nope", "/etc/meshd/pin.der",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct mesh_cloudinit_opts o = base;

		o.pin = bad[i];
		refused(&o, "is not sha256//BASE64");
	}
}

Test(mesh_cloudinit, bad_token_refused)
{
	static const char *const bad[] = {
		"", "0123", TOKEN "0", "0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef",
		"g123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct mesh_cloudinit_opts o = base;

		o.token = bad[i];
		refused(&o, "--token is not 64 lowercase hex characters");
	}
}

Test(mesh_cloudinit, package_options_refused)
{
	struct mesh_cloudinit_opts o = base;

	o.package_url = "https://pkg.example.net/healthd.deb";
	refused(&o, "--package-url needs --package-sha256");
	o.package_sha256 = "abc";
	refused(&o, "--package-url needs --package-sha256");
	o.package_sha256 = "0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef";
	refused(&o, "64 lowercase hex characters, as sha256sum prints");
	o.package_sha256 = TOKEN;
	o.package_name = "healthd";
	refused(&o, "--package-url and --package-name: give one");
	o = base;
	o.package_sha256 = TOKEN;
	refused(&o, "--package-sha256 goes with --package-url");
	o = base;
	o.package_url = "ftp://pkg.example.net/healthd.deb";
	o.package_sha256 = TOKEN;
	refused(&o, "is not a http(s) URL");
	o = base;
	o.package_name = "Healthd;rm";
	refused(&o, "is not a Debian package name");
	o = base;
	o.metadata = "file:///etc/passwd";
	refused(&o, "--metadata 'file:///etc/passwd' is neither a http(s) URL nor 'none'");
}

/* --metadata none: the node enrols with its public_ipv4, which the
 * inventory must then name. */
Test(mesh_cloudinit, metadata_none_needs_the_public_address)
{
	char *yaml = testlib_read_file(EXAMPLE), *line, *ud, err[512];
	struct mesh *m;
	struct mesh_cloudinit_opts o = base;

	cr_assert_not_null(yaml);
	line = strstr(yaml, "    public_ipv4: 198.51.100.9");
	cr_assert_not_null(line);
	memset(line, ' ', (size_t)(strchr(line, '\n') - line));
	m = mesh_load_string("mesh.yaml", yaml, strlen(yaml), err, sizeof(err));
	cr_assert_not_null(m, "%s", err);
	o.metadata = "none";
	cr_assert_null(render(m, "ord1", &o, err, sizeof(err)));
	cr_assert(strstr(err, "ord1 has no public_ipv4"), "%s", err);
	o.metadata = NULL;             /* the metadata gives the address */
	ud = render(m, "ord1", &o, err, sizeof(err));
	cr_assert_not_null(ud, "%s", err);
	free(ud);
	mesh_free(m);
	free(yaml);
}
