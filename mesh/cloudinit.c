/*
 * mesh/cloudinit.c — a new node's cloud-init user-data (#cloud-config):
 * the packages, the bootstrap (mesh/bootstrap.sh, built into meshctl) and
 * the one-time enrolment token as files, and runcmd running the bootstrap
 * with --token-file, so that the token is on no command line.
 *
 * The token is the only secret in the output: one-time and expiring, it is
 * worth nothing once redeemed. No private key (the node makes its own) and
 * no password (the node's password_file is put there by hand) is ever in
 * it. Deterministic: the same inventory and options give the same bytes.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "mesh/render.h"

#define TOKEN_FILE "/etc/healthd/mesh.token"
#define BOOTSTRAP_PATH "/usr/local/sbin/mesh-bootstrap"
#define PACKAGE_DEB "/var/cache/healthd-mesh.deb"

/* What the bootstrap needs besides healthd, sorted. */
static const char *const packages[] = {
	"bird2", "ca-certificates", "curl", "nftables", "python3", "wireguard-tools",
};

static bool all_of(const char *s, size_t n, const char *set)
{
	for (size_t i = 0; i < n; i++)
		if (!s[i] || !(isalnum((unsigned char)s[i]) || strchr(set, s[i])))
			return false;
	return true;
}

static bool hex64(const char *s)
{
	if (strlen(s) != 64)
		return false;
	for (const char *p = s; *p; p++)
		if (!isdigit((unsigned char)*p) && !(*p >= 'a' && *p <= 'f'))
			return false;
	return true;
}

/* HOST[:PORT] then an optional /PATH, after the scheme. */
static bool url_rest_valid(const char *s, bool path_query)
{
	size_t h = strcspn(s, ":/");

	if (s[0] == '[') {
		const char *close = strchr(s, ']');

		if (!close || close == s + 1 || !all_of(s + 1, (size_t)(close - s - 1), ":."))
			return false;
		h = (size_t)(close - s + 1);
	} else if (!h || !all_of(s, h, ".-") || s[0] == '.' || s[0] == '-' || strstr(s, "..")) {
		return false;
	}
	s += h;
	if (*s == ':') {
		size_t d = strspn(s + 1, "0123456789");
		unsigned long port = 0;

		if (d < 1 || d > 5)
			return false;
		sscanf(s + 1, "%5lu", &port);
		if (port < 1 || port > 65535)
			return false;
		s += 1 + d;
	}
	if (!*s)
		return true;
	return *s == '/' && all_of(s, strlen(s), path_query ? "._~/-?=&%+" : "._~/-");
}

int mesh_cloudinit_check_api(const char *url, char *err, size_t errlen)
{
	if (strncmp(url, "https://", 8) || strlen(url) > 200 || !url_rest_valid(url + 8, false)) {
		snprintf(err, errlen, "--api '%.200s' is not https://HOST[:PORT][/PREFIX] (https only: "
			 "the node checks meshd's key against the pin on every request)", url);
		return -1;
	}
	return 0;
}

/* One pin: sha256//BASE64 or the bare BASE64 of a sha256 (32 bytes: 43
 * characters, the last one carrying 4 zero bits, and '='). */
static bool pin_one_valid(const char *p, size_t n)
{
	if (n > 8 && strncmp(p, "sha256//", 8) == 0) {
		p += 8;
		n -= 8;
	}
	return n == 44 && p[43] == '=' && all_of(p, 42, "+/") && strchr("AEIMQUYcgkosw048", p[42]);
}

int mesh_cloudinit_check_pin(const char *pin, char *err, size_t errlen)
{
	const char *p = pin;

	do {
		size_t n = strcspn(p, ";");

		if (!pin_one_valid(p, n)) {
			snprintf(err, errlen, "--pin '%.*s' is not sha256//BASE64 (or the bare BASE64) of "
				 "meshd's public key: 44 base64 characters ending in '=' (meshd logs it at start)",
				 (int)(n < 80 ? n : 80), p);
			return -1;
		}
		p += n;
	} while (*p++ == ';');
	return 0;
}

int mesh_cloudinit_check_token(const char *token, char *err, size_t errlen)
{
	if (!hex64(token)) {
		snprintf(err, errlen, "--token is not 64 lowercase hex characters (meshctl token create prints one)");
		return -1;
	}
	return 0;
}

static int check_opts(const struct mesh *m, const struct mesh_node *n,
		      const struct mesh_cloudinit_opts *o, char *err, size_t errlen)
{
	const char *md = o->metadata;

	if (!o->token || !o->api || !o->pin) {
		snprintf(err, errlen, "cloud-init needs --token, --api and --pin");
		return -1;
	}
	if (mesh_cloudinit_check_token(o->token, err, errlen) ||
	    mesh_cloudinit_check_api(o->api, err, errlen) ||
	    mesh_cloudinit_check_pin(o->pin, err, errlen))
		return -1;
	if (md && strcmp(md, "none") &&
	    (strlen(md) > 200 ||
	     !((!strncmp(md, "http://", 7) && url_rest_valid(md + 7, true)) ||
	       (!strncmp(md, "https://", 8) && url_rest_valid(md + 8, true))))) {
		snprintf(err, errlen, "--metadata '%.200s' is neither a http(s) URL nor 'none'", md);
		return -1;
	}
	if (md && !strcmp(md, "none") && !n->public_ipv4.family) {
		snprintf(err, errlen, "%s: %s has no public_ipv4: with --metadata none the node enrols "
			 "with that address, so the inventory must name it", m->path, n->name);
		return -1;
	}
	if (o->package_url && o->package_name) {
		snprintf(err, errlen, "--package-url and --package-name: give one");
		return -1;
	}
	if (o->package_url &&
	    (strlen(o->package_url) > 300 ||
	     !((!strncmp(o->package_url, "https://", 8) && url_rest_valid(o->package_url + 8, true)) ||
	       (!strncmp(o->package_url, "http://", 7) && url_rest_valid(o->package_url + 7, true))))) {
		snprintf(err, errlen, "--package-url '%.200s' is not a http(s) URL", o->package_url);
		return -1;
	}
	if (o->package_url && (!o->package_sha256 || !hex64(o->package_sha256))) {
		snprintf(err, errlen, "--package-url needs --package-sha256 HEX (64 lowercase hex characters, as sha256sum prints): "
			 "the node installs the .deb only if its sha256 matches");
		return -1;
	}
	if (o->package_sha256 && !o->package_url) {
		snprintf(err, errlen, "--package-sha256 goes with --package-url");
		return -1;
	}
	if (o->package_name &&
	    (strlen(o->package_name) < 2 || strlen(o->package_name) > 64 ||
	     !islower((unsigned char)o->package_name[0]) ||
	     !all_of(o->package_name, strlen(o->package_name), "+.-"))) {
		snprintf(err, errlen, "--package-name '%.64s' is not a Debian package name", o->package_name);
		return -1;
	}
	return 0;
}

/* The bootstrap is printable ASCII, tabs and newlines only: it goes into a
 * YAML literal block as it is. */
static int script_ok(char *err, size_t errlen)
{
	for (size_t i = 0; i < mesh_bootstrap_script_len; i++) {
		unsigned char c = (unsigned char)mesh_bootstrap_script[i];

		if (c != '\t' && c != '\n' && (c < 0x20 || c > 0x7e)) {
			snprintf(err, errlen, "internal: the bootstrap has byte 0x%02x at offset %zu", c, i);
			return -1;
		}
	}
	if (!mesh_bootstrap_script_len || mesh_bootstrap_script[mesh_bootstrap_script_len - 1] != '\n') {
		snprintf(err, errlen, "internal: the bootstrap does not end in a newline");
		return -1;
	}
	return 0;
}

/* Every value printed as a YAML scalar was checked above to hold no quote,
 * backslash or blank; quoted still, so that ':' or '#' mean nothing. */
static void quoted(FILE *f, const char *s)
{
	fprintf(f, "\"%s\"", s);
}

static const char *base_name(const char *path)
{
	const char *s = strrchr(path, '/');

	return s ? s + 1 : path;
}

static void put_header(FILE *f, const struct mesh *m, const struct mesh_node *n,
		       const struct mesh_cloudinit_opts *o)
{
	const struct mesh_upstream *u = mesh_upstream_find(m, n->upstream);

	fprintf(f, "#cloud-config\n"
		"# %s (region %s) joins the mesh; rendered by meshctl cloud-init from %s.\n"
		"# The packages, then the bootstrap (meshctl(8), BOOTSTRAP): the node makes\n"
		"# its own WireGuard key, enrols with meshd at %s,\n"
		"# fetches, verifies and validates its files and starts BIRD, WireGuard and\n"
		"# healthd. Log: /var/log/mesh-bootstrap.log.\n"
		"# The one secret in here is the enrolment token (one-time, expiring).\n",
		n->name, n->region, base_name(m->path), o->api);
	if (u && u->password_file)
		fprintf(f, "# The BGP password is not: put %s on the node\n"
			"# yourself (then run the bootstrap again if it stopped at step secrets).\n",
			u->password_file);
}

static void put_packages(FILE *f, const struct mesh_cloudinit_opts *o)
{
	const char *healthd = o->package_url ? NULL : o->package_name ? o->package_name : "healthd";
	bool put = !healthd;

	fputs("package_update: true\npackages:\n", f);
	for (size_t i = 0; i < sizeof(packages) / sizeof(packages[0]); i++) {
		if (!put && strcmp(healthd, packages[i]) < 0) {
			fprintf(f, "  - %s\n", healthd);
			put = true;
		}
		fprintf(f, "  - %s\n", packages[i]);
	}
	if (!put)
		fprintf(f, "  - %s\n", healthd);
}

static void put_files(FILE *f, const struct mesh_cloudinit_opts *o)
{
	const char *p = mesh_bootstrap_script, *end = p + mesh_bootstrap_script_len;

	fprintf(f, "write_files:\n"
		"  - path: %s\n"
		"    owner: \"root:root\"\n"
		"    permissions: \"0600\"\n"
		"    content: \"%s\\n\"\n", TOKEN_FILE, o->token);
	fprintf(f, "  - path: %s\n"
		"    owner: \"root:root\"\n"
		"    permissions: \"0700\"\n"
		"    content: |\n", BOOTSTRAP_PATH);
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = (size_t)(nl - p);

		if (len)
			fprintf(f, "      %.*s\n", (int)len, p);
		else
			fputc('\n', f);
		p = nl + 1;
	}
}

/* The pins in curl's form, sha256//BASE64[;...], however they were given. */
static void put_pins(FILE *f, const char *pin)
{
	const char *p = pin;
	bool first = true;

	do {
		size_t n = strcspn(p, ";");

		if (!strncmp(p, "sha256//", 8)) {
			p += 8;
			n -= 8;
		}
		fprintf(f, "%ssha256//%.*s", first ? "" : ";", (int)n, p);
		first = false;
		p += n;
	} while (*p++ == ';');
}

static void put_runcmd(FILE *f, const struct mesh_node *n, const struct mesh_cloudinit_opts *o)
{
	fputs("runcmd:\n", f);
	if (o->package_url)
		/* one item: a failed download or a wrong sha256 installs nothing
		 * (the bootstrap then stops at step tools: no healthd) */
		fprintf(f, "  - [sh, -ec, 'curl --fail --silent --show-error --location --retry 5 "
			"--output \"$3\" \"$1\"; echo \"$2  $3\" | sha256sum --check --strict; "
			"DEBIAN_FRONTEND=noninteractive apt-get install -y \"$3\"', "
			"mesh-package, \"%s\", \"%s\", %s]\n",
			o->package_url, o->package_sha256, PACKAGE_DEB);
	fprintf(f, "  - [%s, --api, ", BOOTSTRAP_PATH);
	quoted(f, o->api);
	fputs(", --token-file, " TOKEN_FILE ", --pin, \"", f);
	put_pins(f, o->pin);
	fputc('"', f);
	if (o->metadata) {
		fputs(", --metadata, ", f);
		quoted(f, o->metadata);
	}
	if (o->metadata && !strcmp(o->metadata, "none")) {
		fputs(", --external-ip, ", f);
		quoted(f, n->public_ipv4.text);
	}
	fputs("]\n", f);
}

int mesh_cloudinit(FILE *f, const struct mesh *m, const char *node,
		   const struct mesh_cloudinit_opts *o, char *err, size_t errlen)
{
	const struct mesh_node *n = mesh_node_find(m, node);

	if (!n) {
		snprintf(err, errlen, "%s: no node named '%s'", m->path, node);
		return -1;
	}
	if (check_opts(m, n, o, err, errlen) || script_ok(err, errlen))
		return -1;
	put_header(f, m, n, o);
	put_packages(f, o);
	put_files(f, o);
	put_runcmd(f, n, o);
	if (ferror(f)) {
		snprintf(err, errlen, "writing the user-data: %s", strerror(errno ? errno : EIO));
		return -1;
	}
	return 0;
}
