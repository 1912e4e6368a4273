/*
 * test_meshd — meshd's pieces on their own, where the integration test
 * (tests/integration/t_meshd.sh) cannot pin them down: the token buckets
 * with the clock passed in (limit.c), meshd.yaml and its errors (conf.c),
 * the inventory's lookups, overlay and replies (inv.c; the config reply
 * read back through a libmicrohttpd daemon of the test's own on
 * 127.0.0.1), the firewall's JSON against its nft text, the TLS pin
 * against openssl's, and `meshd -t` on the certificates of every
 * listener. Files go to a per-PID temp dir. Run from the repository root.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <gnutls/crypto.h>
#include <libgen.h>
#include <limits.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "meshd/meshd.h"
#include "mesh/render.h"
#include "tests/lib/testlib.h"

#define EXAMPLE "config/examples/mesh.yaml"
#define LAB "tests/mesh/lab.yaml.in"
#define KEY_LAX1 "LLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLA="
#define KEY_EWR1 "EEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEA="
#define KEY_MIA1 "MMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMA="
#define KEY_ORD1 "OOOOOOOOOOOOOOOOOOOOOOOOOOOOOOOOOOOOOOOOOOA="
#define KEY_ORD1_NEW "PPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPA="

static struct {
	char dir[96];
} T;

static void setup(void)
{
	static int n;

	snprintf(T.dir, sizeof(T.dir), "/tmp/meshd-unit-%d-%d", (int)getpid(), n++);
	cr_assert_eq(mkdir(T.dir, 0700), 0, "%s: %s", T.dir, strerror(errno));
}

static void teardown(void)
{
	char p[200];

	snprintf(p, sizeof(p), "rm -rf '%s'", T.dir);
	if (T.dir[0] && system(p) != 0)
		cr_log_warn("could not remove %s", T.dir);
}

/* ---- helpers ---- */

static struct sockaddr_storage sa(const char *ip)
{
	struct sockaddr_storage ss = { 0 };
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

	if (inet_pton(AF_INET, ip, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
	} else {
		cr_assert_eq(inet_pton(AF_INET6, ip, &s6->sin6_addr), 1, "%s", ip);
		s6->sin6_family = AF_INET6;
	}
	return ss;
}

/* DIR/name with text in it; its path into path. */
static void write_file(const char *name, const char *text, char *path, size_t len)
{
	FILE *f;

	snprintf(path, len, "%s/%s", T.dir, name);
	cr_assert_not_null(f = fopen(path, "w"), "%s: %s", path, strerror(errno));
	fputs(text, f);
	cr_assert_eq(fclose(f), 0);
}

static char *strf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *strf(const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	cr_assert_geq(vasprintf(&s, fmt, ap), 0);
	va_end(ap);
	return s;
}

static void sha256_hex(const void *data, size_t len, char out[65])
{
	unsigned char d[32];

	cr_assert_eq(gnutls_hash_fast(GNUTLS_DIG_SHA256, data, len, d), 0);
	for (int i = 0; i < 32; i++)
		sprintf(out + 2 * i, "%02x", d[i]);
}

/*
 * The lab's inventory as tests/integration/t_meshd.sh fills it: @LAB@ is
 * the run's dir, lax1, ewr1 and mia1 have keys and ord1 none (its key line
 * dropped); each line holding one of the NULL-ended strings dropped too.
 */
static char *lab_yaml(const char *drop, ...)
{
	static const char *const keys[][2] = {
		{ "@KEY_lax1@", KEY_LAX1 }, { "@KEY_ewr1@", KEY_EWR1 }, { "@KEY_mia1@", KEY_MIA1 },
	};
	char *in = testlib_read_file(LAB), *out, *line, *save = NULL;
	const char *drops[8] = { "@KEY_ord1@" };
	size_t n_drops = 1, cap;
	va_list ap;
	FILE *f;

	cr_assert_not_null(in, "%s: run from the repository root", LAB);
	va_start(ap, drop);
	for (const char *d = drop; d && n_drops < 8; d = va_arg(ap, const char *))
		drops[n_drops++] = d;
	va_end(ap);
	f = open_memstream(&out, &cap);
	for (line = strtok_r(in, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		bool skip = false;

		for (size_t i = 0; i < n_drops; i++)
			skip |= strstr(line, drops[i]) != NULL;
		if (skip)
			continue;
		for (const char *p = line; *p;) {
			size_t k;

			if (!strncmp(p, "@LAB@", 5)) {
				fputs(T.dir, f);
				p += 5;
				continue;
			}
			for (k = 0; k < 3 && strncmp(p, keys[k][0], strlen(keys[k][0])); k++)
				;
			if (k < 3) {
				fputs(keys[k][1], f);
				p += strlen(keys[k][0]);
			} else {
				fputc(*p++, f);
			}
		}
		fputc('\n', f);
	}
	fclose(f);
	free(in);
	return out;
}

static struct inv *load_inv(const char *path)
{
	char err[1024];
	struct inv *v = inv_load(path, NULL, err, sizeof(err));

	cr_assert_not_null(v, "%s", err);
	return v;
}

static struct inv *load_lab(void)
{
	char path[200], *y = lab_yaml(NULL);

	write_file("mesh.yaml", y, path, sizeof(path));
	free(y);
	return load_inv(path);
}

static const struct mesh_node *node(const struct inv *v, const char *name)
{
	const struct mesh_node *n = inv_node(v, name);

	cr_assert_not_null(n, "no node %s", name);
	return n;
}

/* ======================================================================
 * limit.c
 * ====================================================================== */

TestSuite(limiter, .timeout = 30);

static bool take(struct limiter *l, const char *ip, uint64_t now_ms, unsigned *retry)
{
	struct sockaddr_storage ss = sa(ip);
	unsigned r = 0;
	bool ok = limiter_take(l, &ss, now_ms, &r);

	if (retry)
		*retry = r;
	return ok;
}

/* How many of n requests from ip at now_ms are let through. */
static unsigned passed(struct limiter *l, const char *ip, uint64_t now_ms, unsigned n)
{
	unsigned ok = 0;

	for (unsigned i = 0; i < n; i++)
		ok += take(l, ip, now_ms, NULL);
	return ok;
}

Test(limiter, a_burst_passes_and_the_next_is_refused)
{
	struct limiter *l = limiter_new(10, 20, 1024);
	unsigned retry = 0;

	cr_assert_not_null(l);
	for (int i = 0; i < 20; i++)
		cr_assert(take(l, "192.0.2.1", 5000, NULL), "request %d of the burst refused", i + 1);
	cr_assert_not(take(l, "192.0.2.1", 5000, &retry));
	cr_assert_geq(retry, 1);
	cr_assert_eq(retry, 1, "at 10/s the next token is 100 ms away: Retry-After 1, not %u", retry);
	/* a refusal costs nothing and does not move the clock back */
	cr_assert_not(take(l, "192.0.2.1", 5000, &retry));
	cr_assert_eq(passed(l, "192.0.2.2", 5000, 25), 20, "another source has its own bucket");
	limiter_free(l);
}

Test(limiter, tokens_refill_at_rate_per_second_up_to_burst)
{
	struct limiter *l = limiter_new(10, 20, 1024);

	cr_assert_eq(passed(l, "192.0.2.1", 1000, 30), 20);
	cr_assert_not(take(l, "192.0.2.1", 1099, NULL), "0.99 tokens after 99 ms");
	cr_assert(take(l, "192.0.2.1", 1100, NULL), "one token after 100 ms");
	cr_assert_not(take(l, "192.0.2.1", 1100, NULL));
	/* a second later: rate tokens, no more */
	cr_assert_eq(passed(l, "192.0.2.1", 2100, 30), 10);
	/* an hour idle: burst tokens, not 36,000 */
	cr_assert_eq(passed(l, "192.0.2.1", 2100 + 3600 * 1000, 100), 20);
	limiter_free(l);
}

Test(limiter, retry_after_is_the_whole_seconds_until_the_next_token)
{
	/* at 1/s, an empty bucket has its next token in exactly 1 s */
	struct limiter *l = limiter_new(1, 1, 1024);
	unsigned retry = 0;

	cr_assert(take(l, "192.0.2.1", 0, NULL));
	cr_assert_not(take(l, "192.0.2.1", 0, &retry));
	cr_assert_eq(retry, 1, "Retry-After %u: one second is enough at 1/s", retry);
	cr_assert(take(l, "192.0.2.1", retry * 1000ull, NULL), "the token after Retry-After");
	/* half a token: still the next whole second */
	cr_assert_not(take(l, "192.0.2.1", 1500, &retry));
	cr_assert_eq(retry, 1);
	cr_assert(take(l, "192.0.2.1", 1500 + retry * 1000ull, NULL));
	limiter_free(l);

	/* at 3/s the wait is a third of a second: 1 */
	l = limiter_new(3, 2, 1024);
	cr_assert_eq(passed(l, "192.0.2.1", 0, 3), 2);
	cr_assert_not(take(l, "192.0.2.1", 0, &retry));
	cr_assert_eq(retry, 1);
	limiter_free(l);
}

Test(limiter, ipv6_counts_by_its_64)
{
	struct limiter *l = limiter_new(1, 5, 1024);

	cr_assert_eq(passed(l, "2001:db8:1:2::1", 0, 10), 5);
	/* the rest of the /64: the same bucket, however the host part is walked */
	cr_assert_not(take(l, "2001:db8:1:2::2", 0, NULL));
	cr_assert_not(take(l, "2001:db8:1:2:ffff:ffff:ffff:ffff", 0, NULL));
	cr_assert_not(take(l, "2001:db8:1:2:8000::", 0, NULL));
	/* the next /64, and one differing in the top bits: buckets of their own */
	cr_assert_eq(passed(l, "2001:db8:1:3::1", 0, 10), 5);
	cr_assert_eq(passed(l, "3001:db8:1:2::1", 0, 10), 5);
	limiter_free(l);
}

Test(limiter, ipv4_mapped_ipv6_is_the_ipv4_address)
{
	struct limiter *l = limiter_new(1, 5, 1024);

	cr_assert_eq(passed(l, "192.0.2.7", 0, 3), 3);
	cr_assert_eq(passed(l, "::ffff:192.0.2.7", 0, 10), 2, "::ffff:192.0.2.7 is 192.0.2.7");
	cr_assert_not(take(l, "192.0.2.7", 0, NULL));
	cr_assert_eq(passed(l, "::ffff:192.0.2.8", 0, 10), 5);
	cr_assert_not(take(l, "192.0.2.8", 0, NULL));
	/* the mapped /96 is not one IPv6 /64 of every IPv4 address */
	cr_assert_eq(passed(l, "::ffff:192.0.2.9", 0, 10), 5);
	limiter_free(l);
}

/*
 * The table is fixed (1,024 slots here): 100,000 distinct sources all get
 * their first request through, and a source pushed out by them comes back
 * with a full bucket. That is the cost of the bound, by design: the memory
 * stays the same whatever the number of sources, and what a source loses
 * by eviction is the memory of its own past requests, never a token of
 * anyone else's.
 */
Test(limiter, the_table_is_bounded_and_eviction_refills)
{
	struct limiter *l = limiter_new(1, 4, 1024);
	char ip[64];

	cr_assert_eq(passed(l, "198.51.100.1", 0, 10), 4);
	cr_assert_not(take(l, "198.51.100.1", 0, NULL));
	for (unsigned i = 0; i < 100000; i++) {
		if (i % 2)
			snprintf(ip, sizeof(ip), "10.%u.%u.%u", i >> 16, (i >> 8) & 255, i & 255);
		else
			snprintf(ip, sizeof(ip), "2001:db8:%x:%x::1", i >> 16, i & 0xffff);
		cr_assert(take(l, ip, 0, NULL), "source %u (%s) refused its first request", i, ip);
	}
	/* no time has passed: the four tokens are a new bucket, not a refill */
	cr_assert_eq(passed(l, "198.51.100.1", 0, 10), 4,
		     "198.51.100.1 was evicted by 100,000 others and starts over");
	limiter_free(l);
}

Test(limiter, below_the_bound_nothing_is_forgotten)
{
	struct limiter *l = limiter_new(1, 3, 1024);
	char ip[32];

	for (unsigned i = 0; i < 100; i++) {
		snprintf(ip, sizeof(ip), "10.0.%u.%u", i / 256, i % 256);
		cr_assert_eq(passed(l, ip, 0, 5), 3);
	}
	for (unsigned i = 0; i < 100; i++) {
		snprintf(ip, sizeof(ip), "10.0.%u.%u", i / 256, i % 256);
		cr_assert_not(take(l, ip, 0, NULL), "%s forgot its empty bucket", ip);
	}
	limiter_free(l);
}

/* One source at 10 requests a millisecond gets burst + rate x time; 1,000
 * others, asking all the while, each get their whole burst, whether they
 * hash next to it or anywhere else. */
Test(limiter, no_source_starves_another)
{
	struct limiter *l = limiter_new(10, 20, 1024);
	unsigned hog = 0, got[1000] = { 0 };
	char ip[32];

	for (uint64_t t = 0; t < 1000; t++) {
		hog += passed(l, "203.0.113.66", t, 10);
		for (unsigned k = 0; k < 20; k++) {
			unsigned o = (unsigned)(t % 50) * 20 + k;     /* each other one asks 20 times */

			snprintf(ip, sizeof(ip), "198.18.%u.%u", o / 256, o % 256);
			got[o] += take(l, ip, t, NULL);
		}
	}
	cr_assert_leq(hog, 20 + 10, "the hog got %u requests in one second", hog);
	cr_assert_geq(hog, 20 + 9);
	for (unsigned o = 0; o < 1000; o++)
		cr_assert_eq(got[o], 20, "source %u got %u of its 20", o, got[o]);
	limiter_free(l);
}

/* ======================================================================
 * conf.c
 * ====================================================================== */

TestSuite(meshd_conf, .init = setup, .fini = teardown, .timeout = 30);

static struct meshd_conf *conf_text(const char *text, char *path, size_t len, char *err,
				    size_t errlen)
{
	write_file("meshd.yaml", text, path, len);
	return meshd_conf_load(path, err, errlen);
}

Test(meshd_conf, a_full_file)
{
	char path[200], err[1024];
	char *text = strf("inventory: %s/mesh.yaml\n"
			  "state: %s/state/meshd.db\n"
			  "admin_socket: %s/admin.sock\n"
			  "listen:\n"
			  "  - {address: \"198.51.100.2:8443\", certificate: %s/cert.pem, key: %s/key.pem}\n"
			  "  - {address: \"[2001:db8::2]:8081\"}\n"
			  "limits: {rate: 50, burst: 100, max_body: 4096, per_source: 4}\n",
			  T.dir, T.dir, T.dir, T.dir, T.dir);
	struct meshd_conf *c = conf_text(text, path, sizeof(path), err, sizeof(err));
	char want[200];

	cr_assert_not_null(c, "%s", err);
	cr_assert_str_eq(c->path, path);
	snprintf(want, sizeof(want), "%s/mesh.yaml", T.dir);
	cr_assert_str_eq(c->inventory, want);
	snprintf(want, sizeof(want), "%s/state/meshd.db", T.dir);
	cr_assert_str_eq(c->state, want);
	snprintf(want, sizeof(want), "%s/admin.sock", T.dir);
	cr_assert_str_eq(c->admin_socket, want);
	cr_assert_eq(c->n_listen, 2);
	cr_assert_str_eq(c->listen[0].address, "198.51.100.2:8443");
	snprintf(want, sizeof(want), "%s/cert.pem", T.dir);
	cr_assert_str_eq(c->listen[0].certificate, want);
	snprintf(want, sizeof(want), "%s/key.pem", T.dir);
	cr_assert_str_eq(c->listen[0].key, want);
	cr_assert_str_eq(c->listen[1].address, "[2001:db8::2]:8081");
	cr_assert_null(c->listen[1].certificate);
	cr_assert_null(c->listen[1].key);
	cr_assert_eq(c->rate, 50);
	cr_assert_eq(c->burst, 100);
	cr_assert_eq(c->max_body, 4096);
	cr_assert_eq(c->per_source, 4);
	meshd_conf_free(c);
	free(text);
}

Test(meshd_conf, the_defaults)
{
	char path[200], err[1024];
	char *text = strf("inventory: /etc/healthd/mesh.yaml\nlisten: [{address: \"127.0.0.1:8081\"}]\n");
	struct meshd_conf *c = conf_text(text, path, sizeof(path), err, sizeof(err));

	cr_assert_not_null(c, "%s", err);
	cr_assert_str_eq(c->state, "/var/lib/meshd/meshd.db");
	cr_assert_str_eq(c->admin_socket, "/run/meshd/admin.sock");
	cr_assert_eq(c->rate, 10);
	cr_assert_eq(c->burst, 20);
	cr_assert_eq(c->max_body, 8192);
	cr_assert_eq(c->per_source, 16);
	cr_assert_eq(c->n_listen, 1);
	meshd_conf_free(c);
	free(text);

	/* limits given in part: the rest keep their defaults */
	text = strf("inventory: /m.yaml\nlisten: [{address: \"127.0.0.1:8081\"}]\nlimits: {burst: 7}\n");
	c = conf_text(text, path, sizeof(path), err, sizeof(err));
	cr_assert_not_null(c, "%s", err);
	cr_assert_eq(c->rate, 10);
	cr_assert_eq(c->burst, 7);
	cr_assert_eq(c->max_body, 8192);
	meshd_conf_free(c);
	free(text);
}

Test(meshd_conf, the_shipped_example)
{
	char err[1024];
	struct meshd_conf *c = meshd_conf_load("config/examples/meshd.yaml", err, sizeof(err));

	cr_assert_not_null(c, "config/examples/meshd.yaml: %s", err);
	cr_assert_str_eq(c->inventory, "/etc/healthd/mesh.yaml");
	cr_assert_str_eq(c->state, "/var/lib/meshd/meshd.db");
	cr_assert_str_eq(c->admin_socket, "/run/meshd/admin.sock");
	cr_assert_eq(c->n_listen, 2);
	cr_assert_str_eq(c->listen[0].address, "149.248.2.74:8443");
	cr_assert_str_eq(c->listen[0].certificate, "/etc/healthd/meshd/cert.pem");
	cr_assert_str_eq(c->listen[0].key, "/etc/healthd/meshd/key.pem");
	cr_assert_str_eq(c->listen[1].address, "10.10.10.1:8081");
	cr_assert_null(c->listen[1].certificate);
	cr_assert_eq(c->rate, 10);
	cr_assert_eq(c->burst, 20);
	cr_assert_eq(c->max_body, 8192);
	cr_assert_eq(c->per_source, 16);
	meshd_conf_free(c);
}

Test(meshd_conf, the_examples_plain_listener_is_on_the_tunnel)
{
	/* the example's plain HTTP listener is one meshd lets through */
	struct inv *v = load_inv(EXAMPLE);
	struct sockaddr_storage ss;
	socklen_t len;

	cr_assert_eq(http_parse_listen("10.10.10.1:8081", &ss, &len), 0);
	cr_assert(inv_plain_ok(v, &ss));
	cr_assert_eq(http_parse_listen("149.248.2.74:8443", &ss, &len), 0);
	cr_assert_not(inv_plain_ok(v, &ss), "the public listener needs its certificate");
	inv_free(v);
}

struct conf_case {
	const char *what, *text, *error;   /* error: after "PATH:" */
};

static const struct conf_case conf_errors[] = {
	{ "an unknown key",
	  "inventory: /m.yaml\nlisten: [{address: \"127.0.0.1:1\"}]\nlimts: {rate: 1}\n",
	  "3:1: limts: unknown key" },
	{ "an unknown key in a listener",
	  "inventory: /m.yaml\nlisten: [{address: \"127.0.0.1:1\", cert: /c.pem}]\n",
	  "2:35: listen[0].cert: unknown key" },
	{ "an unknown key in limits",
	  "inventory: /m.yaml\nlisten: [{address: \"127.0.0.1:1\"}]\nlimits: {rate: 5, bogus: 1}\n",
	  "3:19: limits.bogus: unknown key" },
	{ "a relative inventory",
	  "inventory: mesh.yaml\nlisten: [{address: \"127.0.0.1:1\"}]\n",
	  "1:12: inventory: 'mesh.yaml' is not an absolute file name (at most 160 characters, no blank, quote, backslash, % or /../)" },
	{ "a relative state",
	  "inventory: /m.yaml\nstate: var/meshd.db\nlisten: [{address: \"127.0.0.1:1\"}]\n",
	  "2:8: state: 'var/meshd.db' is not an absolute file name (at most 160 characters, no blank, quote, backslash, % or /../)" },
	{ "a relative certificate",
	  "inventory: /m.yaml\nlisten: [{address: \"127.0.0.1:1\", certificate: c.pem, key: /k.pem}]\n",
	  "2:48: listen[0].certificate: 'c.pem' is not an absolute file name (at most 160 characters, no blank, quote, backslash, % or /../)" },
	{ "a certificate without its key",
	  "inventory: /m.yaml\nlisten:\n  - {address: \"127.0.0.1:1\", certificate: /c.pem}\n",
	  "3:5: listen[0]: TLS needs both certificate and key" },
	{ "a key without its certificate",
	  "inventory: /m.yaml\nlisten:\n  - {address: \"127.0.0.1:1\"}\n  - {address: \"127.0.0.1:2\", key: /k.pem}\n",
	  "4:5: listen[1]: TLS needs both certificate and key" },
	{ "an address without a port",
	  "inventory: /m.yaml\nlisten: [{address: \"127.0.0.1\"}]\n",
	  "2:10: listen[0]: address \"127.0.0.1\": not IP:PORT or [IPv6]:PORT" },
	{ "a port out of range",
	  "inventory: /m.yaml\nlisten: [{address: \"127.0.0.1:80800\"}]\n",
	  "2:10: listen[0]: address \"127.0.0.1:80800\": not IP:PORT or [IPv6]:PORT" },
	{ "a name, not an address",
	  "inventory: /m.yaml\nlisten: [{address: \"localhost:8080\"}]\n",
	  "2:10: listen[0]: address \"localhost:8080\": not IP:PORT or [IPv6]:PORT" },
	{ "IPv6 without brackets",
	  "inventory: /m.yaml\nlisten: [{address: \"::1:8080\"}]\n",
	  "2:10: listen[0]: address \"::1:8080\": not IP:PORT or [IPv6]:PORT" },
	{ "a listener without an address",
	  "inventory: /m.yaml\nlisten: [{certificate: /c.pem, key: /k.pem}]\n",
	  "2:10: listen[0].address: missing required key" },
	{ "rate 0",
	  "inventory: /m.yaml\nlisten: [{address: \"127.0.0.1:1\"}]\nlimits: {rate: 0}\n",
	  "3:16: limits.rate: expected an integer from 1 to 100000, found '0'" },
	{ "burst 0",
	  "inventory: /m.yaml\nlisten: [{address: \"127.0.0.1:1\"}]\nlimits: {burst: 0}\n",
	  "3:17: limits.burst: expected an integer from 1 to 100000, found '0'" },
	{ "max_body too small",
	  "inventory: /m.yaml\nlisten: [{address: \"127.0.0.1:1\"}]\nlimits: {max_body: 255}\n",
	  "3:20: limits.max_body: expected an integer from 256 to 1048576, found '255'" },
	{ "max_body too large",
	  "inventory: /m.yaml\nlisten: [{address: \"127.0.0.1:1\"}]\nlimits: {max_body: 1048577}\n",
	  "3:20: limits.max_body: expected an integer from 256 to 1048576, found '1048577'" },
	{ "no inventory",
	  "state: /s.db\nlisten: [{address: \"127.0.0.1:1\"}]\n",
	  "1:1: inventory: missing required key" },
	{ "no listen",
	  "inventory: /m.yaml\n",
	  "1:1: listen: missing required key" },
	{ "an empty listen",
	  "inventory: /m.yaml\nlisten: []\n",
	  "2:9: listen: must not be empty" },
	{ "listen as a mapping",
	  "inventory: /m.yaml\nlisten: {address: \"127.0.0.1:1\"}\n",
	  "2:9: listen: expected a list, found a mapping" },
	{ "an empty file", "", "1:1: config: the file is empty" },
};

Test(meshd_conf, errors_name_file_line_column_and_key)
{
	for (size_t i = 0; i < sizeof(conf_errors) / sizeof(conf_errors[0]); i++) {
		const struct conf_case *k = &conf_errors[i];
		char path[200], err[1024], want[1400];
		struct meshd_conf *c = conf_text(k->text, path, sizeof(path), err, sizeof(err));

		cr_expect_null(c, "%s: accepted", k->what);
		meshd_conf_free(c);
		snprintf(want, sizeof(want), "%s:%s", path, k->error);
		cr_expect_str_eq(err, want, "%s: %s", k->what, err);
	}
}

Test(meshd_conf, a_missing_file_is_named)
{
	char path[200], err[1024], want[300];

	snprintf(path, sizeof(path), "%s/nosuch.yaml", T.dir);
	cr_assert_null(meshd_conf_load(path, err, sizeof(err)));
	snprintf(want, sizeof(want), "%s: No such file or directory", path);
	cr_assert_str_eq(err, want);
}

/* ======================================================================
 * inv.c: load and lookups
 * ====================================================================== */

TestSuite(inv, .init = setup, .fini = teardown, .timeout = 60);

Test(inv, loads_the_example_without_a_state)
{
	char *text = testlib_read_file(EXAMPLE), sum[65];
	time_t before = time(NULL);
	struct inv *v = load_inv(EXAMPLE);

	cr_assert_not_null(text);
	sha256_hex(text, strlen(text), sum);
	cr_assert_str_eq(v->sha256, sum, "the hash is of the file's bytes");
	cr_assert_eq(v->m->n_nodes, 4);
	cr_assert_eq(v->generation, 1);
	cr_assert_geq(v->loaded, before);
	cr_assert_leq(v->loaded, time(NULL));
	for (size_t i = 0; i < v->m->n_nodes; i++)
		cr_assert(inv_public_from_inventory(v, &v->m->nodes[i]));
	inv_free(v);
	free(text);
}

Test(inv, loads_the_lab)
{
	struct inv *v = load_lab();

	cr_assert_eq(v->m->n_nodes, 4);
	cr_assert_null(node(v, "ord1")->wireguard_public_key, "ord1 is not enrolled yet");
	cr_assert_str_eq(node(v, "lax1")->wireguard_public_key, KEY_LAX1);
	inv_free(v);
}

Test(inv, a_broken_inventory_is_refused_with_its_line)
{
	char path[200], err[1024], want[300];

	write_file("mesh.yaml", "mesh:\n  asn: 64496\n  nonsense: 1\n", path, sizeof(path));
	cr_assert_null(inv_load(path, NULL, err, sizeof(err)));
	snprintf(want, sizeof(want), "%s:3:", path);
	cr_assert(!strncmp(err, want, strlen(want)), "%s", err);
	snprintf(path, sizeof(path), "%s/nosuch.yaml", T.dir);
	cr_assert_null(inv_load(path, NULL, err, sizeof(err)));
	cr_assert(strstr(err, path), "%s", err);
}

/* The example with ord2 beside ord1 in region ord. */
static struct inv *two_in_ord(void)
{
	static const char extra[] =
		"  - name: ord2\n"
		"    region: ord\n"
		"    provider: aws                     # 192.30.120.11\n"
		"    upstream: vultr\n"
		"    public_ipv4: 198.51.100.10\n"
		"    tunnel_ipv4: 10.10.10.5\n"
		"    tunnel_ipv6: fd00:10:10::5\n"
		"    wireguard_public_key: \"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAU=\"\n";
	char *text = testlib_read_file(EXAMPLE), *at, *y, path[200];
	struct inv *v;

	cr_assert_not_null(text);
	cr_assert_not_null(at = strstr(text, "\nretired:"));
	y = strf("%.*s\n%s%s", (int)(at - text), text, extra, at + 1);
	write_file("mesh.yaml", y, path, sizeof(path));
	v = load_inv(path);
	free(y);
	free(text);
	cr_assert_eq(v->m->n_nodes, 5);
	return v;
}

Test(inv, node_by_region)
{
	struct inv *v = two_in_ord();
	bool many = true;

	cr_assert_eq(inv_node_by_region(v, "lax", &many), node(v, "lax1"));
	cr_assert_not(many);
	cr_assert_eq(inv_node_by_region(v, "mia", &many), node(v, "mia1"));
	cr_assert_not(many);
	cr_assert_null(inv_node_by_region(v, "ord", &many));
	cr_assert(many, "two nodes in ord: many");
	cr_assert_null(inv_node_by_region(v, "fra", &many));
	cr_assert_not(many, "an unknown region is not many");
	cr_assert_null(inv_node_by_region(v, "ord1", &many), "a node's name is not a region");
	cr_assert_not(many);
	inv_free(v);
}

Test(inv, node_by_public)
{
	struct inv *v = load_inv(EXAMPLE);

	cr_assert_eq(inv_node_by_public(v, "149.248.2.74"), node(v, "lax1"));
	cr_assert_eq(inv_node_by_public(v, "198.51.100.9"), node(v, "ord1"));
	cr_assert_eq(inv_node_by_public(v, "198.51.100.17"), node(v, "ewr1"));
	cr_assert_null(inv_node_by_public(v, "198.51.100.99"));
	cr_assert_null(inv_node_by_public(v, "10.10.10.1"), "a tunnel address is not a public one");
	cr_assert_null(inv_node_by_public(v, "192.30.120.1"), "nor is a slot");
	cr_assert_null(inv_node_by_public(v, "::ffff:149.248.2.74"));
	cr_assert_null(inv_node_by_public(v, "fd00:10:10::1"));
	cr_assert_null(inv_node_by_public(v, "149.248.2"));
	cr_assert_null(inv_node_by_public(v, ""));
	inv_free(v);
}

Test(inv, node_by_tunnel)
{
	struct inv *v = load_inv(EXAMPLE);
	struct sockaddr_storage ss;
	struct sockaddr_un *un = (struct sockaddr_un *)&ss;

	ss = sa("10.10.10.2");
	cr_assert_eq(inv_node_by_tunnel(v, &ss), node(v, "ord1"));
	ss = sa("fd00:10:10::3");
	cr_assert_eq(inv_node_by_tunnel(v, &ss), node(v, "mia1"));
	ss = sa("::ffff:10.10.10.4");
	cr_assert_eq(inv_node_by_tunnel(v, &ss), node(v, "ewr1"));
	ss = sa("fd00:10:10::1");
	cr_assert_eq(inv_node_by_tunnel(v, &ss), node(v, "lax1"));
	ss = sa("10.10.10.99");
	cr_assert_null(inv_node_by_tunnel(v, &ss), "in the prefix, but no node's");
	ss = sa("fd00:10:10::99");
	cr_assert_null(inv_node_by_tunnel(v, &ss));
	ss = sa("149.248.2.74");
	cr_assert_null(inv_node_by_tunnel(v, &ss), "lax1's public address is not its tunnel's");
	ss = sa("::10.10.10.2");
	cr_assert_null(inv_node_by_tunnel(v, &ss), "IPv4-compatible is not IPv4-mapped");
	memset(&ss, 0, sizeof(ss));
	un->sun_family = AF_UNIX;
	cr_assert_null(inv_node_by_tunnel(v, &ss));
	inv_free(v);
}

Test(inv, plain_http_only_on_loopback_or_the_tunnel)
{
	struct inv *v = load_inv(EXAMPLE);
	static const char *const yes[] = {
		"127.0.0.1", "127.1.2.3", "::1", "::ffff:127.0.0.1", "10.10.10.1", "10.10.10.254",
		"::ffff:10.10.10.9", "fd00:10:10::1", "fd00:10:10:ffff::1",
	};
	static const char *const no[] = {
		"149.248.2.74", "198.51.100.9", "192.30.120.10", "10.10.11.1", "10.10.9.255", "0.0.0.0",
		"::", "fd00:10:11::1", "2001:db8::1", "::2", "::ffff:149.248.2.74",
	};

	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		struct sockaddr_storage ss = sa(yes[i]);

		cr_assert(inv_plain_ok(v, &ss), "%s: plain HTTP refused", yes[i]);
	}
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
		struct sockaddr_storage ss = sa(no[i]);

		cr_assert_not(inv_plain_ok(v, &ss), "%s: plain HTTP allowed", no[i]);
	}
	inv_free(v);
}

/* ======================================================================
 * inv.c: the replies
 * ====================================================================== */

/* inv_config_reply's response, served by a daemon of the test's own: the
 * bytes the response carries, as meshd would send them. */
static enum MHD_Result serve(void *cls, struct MHD_Connection *c, const char *url,
			     const char *method, const char *version, const char *data,
			     size_t *len, void **ptr)
{
	static int called;
	struct inv *v = cls;
	const struct mesh_node *n = inv_node(v, url + 1);
	struct MHD_Response *r;

	(void)method;
	(void)version;
	(void)data;
	(void)len;
	if (!*ptr) {
		*ptr = &called;
		return MHD_YES;
	}
	if (!n || !(r = inv_config_reply(v, n)))
		return MHD_NO;
	return MHD_queue_response(c, MHD_HTTP_OK, r);   /* the cache's: not ours to destroy */
}

struct server {
	struct MHD_Daemon *d;
	uint16_t port;
};

static struct server serve_start(struct inv *v)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct server s = { 0 };

	s.d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL,
			       serve, v, MHD_OPTION_SOCK_ADDR, &a, MHD_OPTION_END);
	cr_assert_not_null(s.d, "cannot start a libmicrohttpd daemon on 127.0.0.1");
	s.port = MHD_get_daemon_info(s.d, MHD_DAEMON_INFO_BIND_PORT)->port;
	cr_assert_neq(s.port, 0);
	return s;
}

/* GET /NODE over a fresh connection: the body (NUL-terminated). */
static char *fetch(const struct server *s, const char *name, size_t *len)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(s->port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct timeval tv = { 5, 0 };
	char req[200], *buf = malloc(1 << 16), *body, *out;
	size_t cap = 1 << 16, n = 0;
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	ssize_t r;

	cr_assert_geq(fd, 0);
	cr_assert_not_null(buf);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0, "%s", strerror(errno));
	snprintf(req, sizeof(req), "GET /%s HTTP/1.0\r\nHost: test\r\n\r\n", name);
	cr_assert_eq(write(fd, req, strlen(req)), (ssize_t)strlen(req));
	while ((r = read(fd, buf + n, cap - n - 1)) > 0)
		if ((n += (size_t)r) == cap - 1)
			cr_assert_not_null(buf = realloc(buf, cap *= 2));
	cr_assert_eq(r, 0, "reading the reply: %s", strerror(errno));
	close(fd);
	buf[n] = '\0';
	cr_assert(strstr(buf, " 200 ") && strstr(buf, " 200 ") < strstr(buf, "\r\n"), "%.200s", buf);
	cr_assert(strcasestr(buf, "\r\nContent-Type: application/json\r\n"), "%.400s", buf);
	cr_assert(strcasestr(buf, "\r\nCache-Control: no-store\r\n"), "%.400s", buf);
	cr_assert_not_null(body = strstr(buf, "\r\n\r\n"));
	body += 4;
	*len = n - (size_t)(body - buf);
	cr_assert_not_null(out = malloc(*len + 1));
	memcpy(out, body, *len + 1);
	free(buf);
	return out;
}

static const char *tool_of(enum mesh_tool t)
{
	return t == MESH_TOOL_BIRD ? "bird" : t == MESH_TOOL_NFT ? "nft" :
	       t == MESH_TOOL_HEALTHD ? "healthd" : NULL;
}

/* The config reply of n in body against mesh_render_node's files for n,
 * byte for byte, each with its sha256, mode and checking tool. */
static void check_config(const struct inv *v, const struct mesh_node *n, const char *body,
			 size_t len)
{
	json_error_t e;
	json_t *j = json_loadb(body, len, JSON_REJECT_DUPLICATES, &e), *files, *f;
	struct mesh_files mf;
	char sum[65], want[300];
	size_t i;

	cr_assert_not_null(j, "the reply is not JSON: %s at %d", e.text, e.column);
	cr_assert_eq(strlen(body), len, "a NUL in the reply");
	cr_assert_str_eq(json_string_value(json_object_get(j, "node")), n->name);
	cr_assert_str_eq(json_string_value(json_object_get(j, "region")), n->region);
	snprintf(want, sizeof(want), "sha256:%s", v->sha256);
	cr_assert_str_eq(json_string_value(json_object_get(j, "inventory")), want);
	cr_assert_str_eq(json_string_value(json_object_get(j, "interface")), mesh_node_ifname(v->m, n));
	snprintf(want, sizeof(want), "etc/wireguard/%s.key", mesh_node_ifname(v->m, n));
	cr_assert_str_eq(json_string_value(json_object_get(j, "private_key_file")), want);
	cr_assert(json_is_array(json_object_get(j, "secrets")));
	cr_assert_null(strstr(body, "PrivateKey ="), "no private key in the reply");

	cr_assert_eq(mesh_render_node(v->m, n, &mf), 0);
	files = json_object_get(j, "files");
	cr_assert_eq(json_array_size(files), mf.n, "%zu files, render has %zu",
		     json_array_size(files), mf.n);
	json_array_foreach(files, i, f) {
		const struct mesh_file *r = &mf.items[i];
		json_t *content = json_object_get(f, "content"), *check = json_object_get(f, "check");
		char mode[8];

		cr_assert_str_eq(json_string_value(json_object_get(f, "path")), r->path);
		cr_assert_eq(json_string_length(content), r->len, "%s: length", r->path);
		cr_assert_eq(memcmp(json_string_value(content), r->data, r->len), 0,
			     "%s: not mesh_render_node's bytes", r->path);
		sha256_hex(json_string_value(content), json_string_length(content), sum);
		cr_assert_str_eq(json_string_value(json_object_get(f, "sha256")), sum, "%s", r->path);
		snprintf(mode, sizeof(mode), "%04o", r->mode);
		cr_assert_str_eq(json_string_value(json_object_get(f, "mode")), mode, "%s", r->path);
		if (tool_of(r->tool))
			cr_assert_str_eq(json_string_value(check), tool_of(r->tool), "%s", r->path);
		else
			cr_assert(json_is_null(check), "%s: check", r->path);
	}
	mesh_files_free(&mf);
	json_decref(j);
}

Test(inv, the_config_reply_is_the_render_of_the_node)
{
	struct inv *v = load_lab();
	struct server s = serve_start(v);
	const char *names[] = { "lax1", "ord1", "ewr1", "mia1" };

	for (size_t i = 0; i < 4; i++) {
		size_t len;
		char *body = fetch(&s, names[i], &len);

		check_config(v, node(v, names[i]), body, len);
		free(body);
	}
	{
		size_t len;
		char *body = fetch(&s, "ord1", &len);
		json_t *j = json_loads(body, 0, NULL), *sec = json_object_get(j, "secrets");
		char want[200];

		snprintf(want, sizeof(want), "%s/secrets/transit_ord.password", T.dir);
		cr_assert_eq(json_array_size(sec), 1);
		cr_assert_str_eq(json_string_value(json_object_get(json_array_get(sec, 0), "path")), want);
		cr_assert_null(strstr(body, KEY_ORD1));
		json_decref(j);
		free(body);
	}
	MHD_stop_daemon(s.d);
	inv_free(v);
}

Test(inv, an_overlay_bumps_the_generation_and_replaces_the_replies)
{
	struct inv *v = load_lab();
	struct server s = serve_start(v);
	const struct mesh_node *lax1 = node(v, "lax1"), *ord1 = node(v, "ord1");
	struct MHD_Response *r1;
	char *before, *again, *after, *ord_after;
	size_t lb, la, lo, l2;

	cr_assert_eq(v->generation, 1);
	before = fetch(&s, "lax1", &lb);
	cr_assert_not_null(r1 = inv_config_reply(v, lax1));
	cr_assert_eq(inv_config_reply(v, lax1), r1, "cached within a generation");
	again = fetch(&s, "lax1", &l2);
	cr_assert(l2 == lb && !memcmp(before, again, lb), "the same generation, the same bytes");
	cr_assert_null(strstr(before, KEY_ORD1));

	cr_assert_eq(inv_overlay(v, "ord1", KEY_ORD1, "198.51.100.6"), 0);
	cr_assert_eq(v->generation, 2);
	cr_assert_str_eq(ord1->wireguard_public_key, KEY_ORD1);
	after = fetch(&s, "lax1", &la);
	cr_assert(la != lb || memcmp(before, after, la), "lax1's reply was not rendered again");
	cr_assert_not_null(strstr(after, KEY_ORD1), "lax1's files lack ord1's key");
	check_config(v, lax1, after, la);
	ord_after = fetch(&s, "ord1", &lo);
	check_config(v, ord1, ord_after, lo);

	/* an overlay of a node the inventory lacks changes nothing */
	cr_assert_eq(inv_overlay(v, "fra1", KEY_ORD1_NEW, "198.51.100.70"), -ENOENT);
	cr_assert_eq(v->generation, 2);
	cr_assert_eq(inv_overlay(v, "ord1", "not-a-key", "198.51.100.6"), -EINVAL);
	cr_assert_eq(v->generation, 2);
	cr_assert_str_eq(ord1->wireguard_public_key, KEY_ORD1);
	free(before);
	free(again);
	free(after);
	free(ord_after);
	MHD_stop_daemon(s.d);
	inv_free(v);
}

static json_t *peer(json_t *wg, const char *name)
{
	size_t i;
	json_t *p;

	json_array_foreach(json_object_get(wg, "peers"), i, p)
		if (!strcmp(json_string_value(json_object_get(p, "node")), name))
			return p;
	return NULL;
}

static bool pending(json_t *wg, const char *name)
{
	size_t i;
	json_t *p;

	json_array_foreach(json_object_get(wg, "pending"), i, p)
		if (!strcmp(json_string_value(p), name))
			return true;
	return false;
}

Test(inv, wireguard_pending_then_a_peer)
{
	struct inv *v = load_lab();
	const char *others[] = { "lax1", "ewr1", "mia1" };
	json_t *wg, *p, *ips;

	for (size_t i = 0; i < 3; i++) {
		wg = inv_wireguard_json(v, node(v, others[i]));
		cr_assert_not_null(wg);
		cr_assert(pending(wg, "ord1"), "%s: ord1 not pending", others[i]);
		cr_assert_null(peer(wg, "ord1"));
		cr_assert_eq(json_array_size(json_object_get(wg, "peers")), 2);
		json_decref(wg);
	}
	wg = inv_wireguard_json(v, node(v, "ord1"));
	cr_assert(json_is_null(json_object_get(wg, "public_key")));
	cr_assert_eq(json_array_size(json_object_get(wg, "peers")), 3, "ord1 knows its peers already");
	json_decref(wg);

	cr_assert_eq(inv_overlay(v, "ord1", KEY_ORD1, "198.51.100.6"), 0);
	for (size_t i = 0; i < 3; i++) {
		wg = inv_wireguard_json(v, node(v, others[i]));
		cr_assert_not(pending(wg, "ord1"));
		cr_assert_eq(json_array_size(json_object_get(wg, "pending")), 0);
		cr_assert_not_null(p = peer(wg, "ord1"), "%s lacks the enrolled ord1", others[i]);
		cr_assert_str_eq(json_string_value(json_object_get(p, "public_key")), KEY_ORD1);
		cr_assert_str_eq(json_string_value(json_object_get(p, "endpoint")), "198.51.100.6:51820");
		ips = json_object_get(p, "allowed_ips");
		cr_assert_eq(json_array_size(ips), 2);
		cr_assert_str_eq(json_string_value(json_array_get(ips, 0)), "192.0.2.130/32");
		cr_assert_str_eq(json_string_value(json_array_get(ips, 1)), "2001:db8:10::2/128");
		cr_assert_eq(json_integer_value(json_object_get(p, "persistent_keepalive")), 1);
		json_decref(wg);
	}
	wg = inv_wireguard_json(v, node(v, "ord1"));
	cr_assert_str_eq(json_string_value(json_object_get(wg, "public_key")), KEY_ORD1);
	cr_assert_str_eq(json_string_value(json_object_get(wg, "interface")), "wg-ord1");
	cr_assert_eq(json_integer_value(json_object_get(wg, "listen_port")), 51820);
	cr_assert_null(peer(wg, "ord1"), "a node is not its own peer");
	json_decref(wg);
	inv_free(v);
}

/* The members of set name in the firewall JSON, joined by ", ". */
static char *set_text(json_t *fw, const char *name)
{
	json_t *s = json_object_get(json_object_get(fw, "sets"), name), *e;
	char *out;
	size_t cap, i;
	FILE *f = open_memstream(&out, &cap);

	cr_assert(json_is_array(s), "no set %s", name);
	json_array_foreach(s, i, e)
		fprintf(f, "%s%s", i ? ", " : "", json_string_value(e));
	fclose(f);
	return out;
}

/* A node whose inventory gives no public address takes the address of its
 * latest enrolment: a machine rebuilt elsewhere and enrolled again is
 * reached at its new address, by every peer and through every firewall. */
Test(inv, a_reenrolment_moves_a_bare_nodes_address)
{
	char path[200], *y = lab_yaml("public_ipv4: 198.51.100.6", NULL), *s;
	struct inv *v;
	json_t *wg, *fw;

	write_file("mesh.yaml", y, path, sizeof(path));
	free(y);
	v = load_inv(path);
	cr_assert_eq(node(v, "ord1")->public_ipv4.family, 0, "ord1 is bare");
	cr_assert_not(inv_public_from_inventory(v, node(v, "ord1")));

	cr_assert_eq(inv_overlay(v, "ord1", KEY_ORD1, "198.51.100.60"), 0);
	wg = inv_wireguard_json(v, node(v, "lax1"));
	cr_assert_str_eq(json_string_value(json_object_get(peer(wg, "ord1"), "endpoint")),
			 "198.51.100.60:51820");
	json_decref(wg);
	cr_assert_eq(inv_node_by_public(v, "198.51.100.60"), node(v, "ord1"));

	/* rebuilt, with a new key, at a new address */
	cr_assert_eq(inv_overlay(v, "ord1", KEY_ORD1_NEW, "198.51.100.61"), 0);
	cr_assert_not(inv_public_from_inventory(v, node(v, "ord1")));
	wg = inv_wireguard_json(v, node(v, "lax1"));
	cr_assert_str_eq(json_string_value(json_object_get(peer(wg, "ord1"), "public_key")), KEY_ORD1_NEW);
	cr_assert_str_eq(json_string_value(json_object_get(peer(wg, "ord1"), "endpoint")),
			 "198.51.100.61:51820", "lax1 still reaches the old ord1");
	json_decref(wg);
	cr_assert_eq(inv_node_by_public(v, "198.51.100.61"), node(v, "ord1"));
	cr_assert_null(inv_node_by_public(v, "198.51.100.60"));
	fw = inv_firewall_json(v, node(v, "lax1"));
	s = set_text(fw, "mesh_nodes_v4");
	cr_assert_str_eq(s, "198.51.100.61, 198.51.100.10, 198.51.100.14");
	free(s);
	json_decref(fw);

	/* a failed overlay leaves the address as it was */
	cr_assert_eq(inv_overlay(v, "ord1", "not-a-key", "198.51.100.62"), -EINVAL);
	cr_assert_str_eq(node(v, "ord1")->public_ipv4.text, "198.51.100.61");
	/* where the inventory names the address, an enrolment does not move it */
	cr_assert_eq(inv_overlay(v, "lax1", KEY_LAX1, "198.51.100.99"), 0);
	cr_assert_str_eq(node(v, "lax1")->public_ipv4.text, "198.51.100.2");
	inv_free(v);
}

/* ---- the firewall ---- */

/* The lines of chain input's text that accept, each without its tabs. */
static size_t accept_lines(const char *nft, char lines[][400], size_t max)
{
	const char *p = strstr(nft, "\tchain input {\n");
	size_t n = 0;

	cr_assert_not_null(p, "no chain input");
	for (p = strchr(p, '\n') + 1; *p && strncmp(p, "\t}", 2); p = strchr(p, '\n') + 1) {
		const char *end = strchr(p, '\n');

		while (*p == '\t')
			p++;
		if (end - p > 7 && !strncmp(end - 7, " accept", 7) && *p != '#') {
			cr_assert_lt(n, max);
			snprintf(lines[n++], 400, "%.*s", (int)(end - p), p);
		}
	}
	return n;
}

static void check_firewall(const struct inv *v, const struct mesh_node *n)
{
	json_t *fw = inv_firewall_json(v, n), *rules, *r;
	char lines[64][400], *text;
	size_t len, n_lines, i;
	FILE *f;

	cr_assert_not_null(fw);
	cr_assert_str_eq(json_string_value(json_object_get(fw, "node")), n->name);
	cr_assert_str_eq(json_string_value(json_object_get(fw, "policy")), "drop");
	cr_assert_str_eq(json_string_value(json_object_get(fw, "table")), "inet healthd_mesh");

	/* the text is mesh_render_nft's, the file meshctl writes */
	cr_assert_not_null(f = open_memstream(&text, &len));
	cr_assert_eq(mesh_render_nft(f, v->m, n), 0);
	cr_assert_eq(fclose(f), 0);
	cr_assert_eq(json_string_length(json_object_get(fw, "nftables")), len);
	cr_assert_str_eq(json_string_value(json_object_get(fw, "nftables")), text);

	/* one rule per accept line of the chain, in order; the first line,
	 * established and related traffic, is "established" */
	n_lines = accept_lines(text, lines, 64);
	cr_assert_str_eq(lines[0], "ct state established,related accept");
	cr_assert_str_eq(json_string_value(json_object_get(fw, "established")),
			 "accept (ct state established,related)");
	rules = json_object_get(fw, "rules");
	cr_assert_eq(json_array_size(rules), n_lines - 1,
		     "%s: %zu rules in the JSON, %zu accept lines after the established one",
		     n->name, json_array_size(rules), n_lines - 1);
	json_array_foreach(rules, i, r) {
		const char *line = lines[i + 1];
		const char *saddr = json_string_value(json_object_get(r, "saddr"));
		const char *daddr = json_string_value(json_object_get(r, "daddr"));
		const char *iif = json_string_value(json_object_get(r, "iif"));
		const char *proto = json_string_value(json_object_get(r, "proto"));
		const char *fam = json_string_value(json_object_get(r, "family"));
		json_t *ports = json_object_get(r, "dport"), *p, *types;
		char want[200];
		size_t k;

		cr_assert_str_eq(json_string_value(json_object_get(r, "action")), "accept");
		cr_assert(json_is_string(json_object_get(r, "comment")));
		cr_assert(!strcmp(fam, "ip") || !strcmp(fam, "ip6") || !strcmp(fam, "inet"), "%s", fam);
		/* every set a rule names is in "sets" */
		for (int side = 0; side < 2; side++) {
			const char *a = side ? daddr : saddr;

			cr_assert_not_null(a);
			if (!strcmp(a, "any"))
				continue;
			if (!strncmp(a, "!= ", 3))
				a += 3;
			cr_assert_eq(a[0], '@', "%s", a);
			cr_assert(json_is_array(json_object_get(json_object_get(fw, "sets"), a + 1)),
				  "rule %zu names set %s, not in sets", i, a);
			snprintf(want, sizeof(want), "%s %s %s", fam, side ? "daddr" : "saddr",
				 side ? daddr : saddr);
			cr_assert(strstr(line, want), "rule %zu: '%s' not in '%s'", i, want, line);
		}
		if (iif) {
			snprintf(want, sizeof(want), "\"%s\"", iif);
			cr_assert(strstr(line, want), "rule %zu: iif %s not in '%s'", i, iif, line);
		}
		cr_assert(json_is_array(ports), "rule %zu: dport", i);
		if (json_array_size(ports)) {
			snprintf(want, sizeof(want), "%s dport ", proto);
			cr_assert(strstr(line, want), "rule %zu: '%s' not in '%s'", i, want, line);
		}
		json_array_foreach(ports, k, p) {
			snprintf(want, sizeof(want), "%lld", (long long)json_integer_value(p));
			cr_assert(strstr(line, want), "rule %zu: port %s not in '%s'", i, want, line);
		}
		if ((types = json_object_get(r, "icmp_type"))) {
			json_array_foreach(types, k, p)
				cr_assert(strstr(line, json_string_value(p)), "rule %zu: %s not in '%s'", i,
					  json_string_value(p), line);
			snprintf(want, sizeof(want), "%s type {", proto);
			cr_assert(!strncmp(line, want, strlen(want)), "rule %zu: '%s'", i, line);
		}
	}
	/* and every set of the text is in "sets", with its elements */
	for (const char *p = text; (p = strstr(p, "\tset ")); p++) {
		char name[64], *elems, *members;
		const char *el, *close;

		cr_assert_eq(sscanf(p, "\tset %63s {", name), 1);
		members = set_text(fw, name);
		el = strstr(p, "elements = { ");
		close = strstr(p, "\t}\n");
		if (el && el < close) {
			el += strlen("elements = { ");
			elems = strf("%.*s", (int)(strstr(el, " }") - el), el);
		} else {
			elems = strf("%s", "");
		}
		cr_assert_str_eq(members, elems, "set %s", name);
		free(elems);
		free(members);
	}
	free(text);
	json_decref(fw);
}

Test(inv, the_firewall_json_is_the_nft_text)
{
	struct inv *v = load_lab();

	for (size_t i = 0; i < v->m->n_nodes; i++)
		check_firewall(v, &v->m->nodes[i]);
	inv_free(v);
	v = load_inv(EXAMPLE);
	for (size_t i = 0; i < v->m->n_nodes; i++)
		check_firewall(v, &v->m->nodes[i]);
	inv_free(v);
}

Test(inv, the_firewall_opens_wireguard_to_an_enrolled_node)
{
	char path[200], *y = lab_yaml("public_ipv4: 198.51.100.6", NULL), *s;
	struct inv *v;
	json_t *fw;

	write_file("mesh.yaml", y, path, sizeof(path));
	free(y);
	v = load_inv(path);
	fw = inv_firewall_json(v, node(v, "lax1"));
	s = set_text(fw, "mesh_nodes_v4");
	cr_assert_str_eq(s, "198.51.100.10, 198.51.100.14", "ord1 has no address yet");
	free(s);
	json_decref(fw);
	cr_assert_eq(inv_overlay(v, "ord1", KEY_ORD1, "198.51.100.6"), 0);
	fw = inv_firewall_json(v, node(v, "lax1"));
	s = set_text(fw, "mesh_nodes_v4");
	cr_assert_str_eq(s, "198.51.100.6, 198.51.100.10, 198.51.100.14");
	free(s);
	json_decref(fw);
	check_firewall(v, node(v, "lax1"));
	check_firewall(v, node(v, "ord1"));
	inv_free(v);
}

/* ======================================================================
 * api.c: the TLS pin; main.c: meshd -t on the certificates
 * ====================================================================== */

TestSuite(tls, .init = setup, .fini = teardown, .timeout = 60);

/* A self-signed certificate and its key (openssl req), as NAME.crt and
 * NAME.key in the dir; ALG is the -newkey argument and its options. */
static void make_cert(const char *name, const char *alg)
{
	char *cmd = strf("cd '%s' && openssl req -x509 -newkey %s -nodes -days 2 -subj /CN=%s "
			 "-keyout %s.key -out %s.crt 2>/dev/null && chmod 600 %s.key",
			 T.dir, alg, name, name, name, name);

	cr_assert_eq(system(cmd), 0, "openssl req failed: %s", cmd);
	free(cmd);
}

/* What openssl makes of the certificate's public key: curl's pin. */
static void openssl_pin(const char *name, char *out, size_t len)
{
	char *cmd = strf("cd '%s' && openssl x509 -in %s.crt -pubkey -noout | openssl pkey -pubin "
			 "-outform der | openssl dgst -sha256 -binary | base64 > %s.pin",
			 T.dir, name, name);
	char path[200], *pin;

	cr_assert_eq(system(cmd), 0, "%s", cmd);
	free(cmd);
	snprintf(path, sizeof(path), "%s/%s.pin", T.dir, name);
	cr_assert_not_null(pin = testlib_read_file(path));
	pin[strcspn(pin, "\n")] = '\0';
	snprintf(out, len, "sha256//%s", pin);
	free(pin);
}

static char *read_in_dir(const char *name)
{
	char path[200], *s;

	snprintf(path, sizeof(path), "%s/%s", T.dir, name);
	cr_assert_not_null(s = testlib_read_file(path), "%s", path);
	return s;
}

static void pin_is_openssls(const char *name, const char *alg)
{
	char want[100], got[80], err[512], file[64], *pem;

	make_cert(name, alg);
	openssl_pin(name, want, sizeof(want));
	snprintf(file, sizeof(file), "%s.crt", name);
	pem = read_in_dir(file);
	cr_assert_eq(meshd_tls_pin(pem, got, sizeof(got), err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(got, want, "%s", alg);
	free(pem);
}

Test(tls, the_pin_is_openssls_ec)
{
	pin_is_openssls("ec", "ec -pkeyopt ec_paramgen_curve:P-256");
}

Test(tls, the_pin_is_openssls_rsa)
{
	pin_is_openssls("rsa", "rsa:2048");
}

Test(tls, the_pin_is_openssls_ed25519)
{
	pin_is_openssls("ed", "ed25519");
}

Test(tls, a_pin_of_what_is_not_a_certificate)
{
	static const char *const bad[] = {
		"", "garbage\n", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
	};
	char got[80], err[512], *key;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		cr_assert_lt(meshd_tls_pin(bad[i], got, sizeof(got), err, sizeof(err)), 0, "'%s'", bad[i]);
		cr_assert(!strncmp(err, "certificate: ", 13) && strlen(err) > 13,
			  "the error names the certificate: '%s'", err);
	}
	make_cert("k", "ec -pkeyopt ec_paramgen_curve:P-256");
	key = read_in_dir("k.key");
	cr_assert_lt(meshd_tls_pin(key, got, sizeof(got), err, sizeof(err)), 0, "a key is no certificate");
	cr_assert(!strncmp(err, "certificate: ", 13), "%s", err);
	free(key);
}

Test(tls, a_key_pair_is_checked)
{
	char err[512], *c1, *k1, *k2;

	make_cert("a", "ec -pkeyopt ec_paramgen_curve:P-256");
	make_cert("b", "ec -pkeyopt ec_paramgen_curve:P-256");
	c1 = read_in_dir("a.crt");
	k1 = read_in_dir("a.key");
	k2 = read_in_dir("b.key");
	cr_assert_eq(meshd_tls_pair(c1, k1, err, sizeof(err)), 0, "%s", err);
	cr_assert_lt(meshd_tls_pair(c1, k2, err, sizeof(err)), 0, "another certificate's key");
	cr_assert(strstr(err, "match"), "%s", err);
	cr_assert_lt(meshd_tls_pair(c1, "garbage\n", err, sizeof(err)), 0);
	cr_assert_lt(meshd_tls_pair(c1, c1, err, sizeof(err)), 0, "a certificate is no key");
	free(c1);
	free(k1);
	free(k2);
}

/* ---- meshd -t ---- */

/* BUILD/meshd -t -c conf: its exit status, its stdout and stderr in out. */
static int meshd_t(const char *conf, char *out, size_t len)
{
	char exe[PATH_MAX], bin[PATH_MAX + 16], log[200];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	int st;
	pid_t pid;
	FILE *f;

	cr_assert_gt(n, 0);
	exe[n] = '\0';
	snprintf(bin, sizeof(bin), "%s/meshd", dirname(dirname(exe)));
	cr_assert_eq(access(bin, X_OK), 0, "%s: build meshd first", bin);
	snprintf(log, sizeof(log), "%s/meshd.out", T.dir);
	cr_assert_geq(pid = fork(), 0);
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);

		if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
			_exit(126);
		execl(bin, bin, "-t", "-c", conf, (char *)NULL);
		_exit(127);
	}
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert(WIFEXITED(st), "meshd -t: status 0x%x", st);
	cr_assert_not_null(f = fopen(log, "r"));
	out[fread(out, 1, len - 1, f)] = '\0';
	fclose(f);
	return WEXITSTATUS(st);
}

/* meshd.yaml over the example inventory with the two listeners given. */
static void t_conf(char *path, size_t len, const char *listen0, const char *listen1)
{
	char cwd[PATH_MAX], *y;

	cr_assert_not_null(getcwd(cwd, sizeof(cwd)));
	y = strf("inventory: %s/%s\nstate: %s/state/meshd.db\nadmin_socket: %s/admin.sock\n"
		 "listen:\n  - %s\n  - %s\n", cwd, EXAMPLE, T.dir, T.dir, listen0, listen1);
	write_file("meshd.yaml", y, path, len);
	free(y);
}

static char *tls_listener(const char *addr, const char *cert, const char *key)
{
	return strf("{address: \"%s\", certificate: %s/%s, key: %s/%s}", addr, T.dir, cert, T.dir, key);
}

Test(tls, meshd_t_checks_every_listeners_certificate_and_key)
{
	char conf[200], out[8192], pin[100], want[1024], junk[200];
	char *good1, *good2, *bad_cert, *other_key, *bad_key;

	make_cert("a", "ec -pkeyopt ec_paramgen_curve:P-256");
	make_cert("b", "ec -pkeyopt ec_paramgen_curve:P-256");
	write_file("junk.pem", "garbage\n", junk, sizeof(junk));
	chmod(junk, 0600);
	openssl_pin("a", pin, sizeof(pin));
	good1 = tls_listener("127.0.0.1:8443", "a.crt", "a.key");
	good2 = tls_listener("127.0.0.1:8444", "b.crt", "b.key");
	bad_cert = tls_listener("127.0.0.1:8444", "junk.pem", "b.key");
	other_key = tls_listener("127.0.0.1:8444", "b.crt", "a.key");
	bad_key = tls_listener("127.0.0.1:8444", "b.crt", "junk.pem");

	t_conf(conf, sizeof(conf), good1, good2);
	cr_assert_eq(meshd_t(conf, out, sizeof(out)), 0, "%s", out);
	snprintf(want, sizeof(want), "meshd: TLS pin %s\n", pin);
	cr_assert(strstr(out, want), "the first listener's pin, openssl's: %s", out);

	/* the second listener's certificate is not PEM */
	t_conf(conf, sizeof(conf), good1, bad_cert);
	cr_assert_eq(meshd_t(conf, out, sizeof(out)), 1, "a broken certificate passed -t: %s", out);
	snprintf(want, sizeof(want), "meshd: %s: listen 127.0.0.1:8444: %s: certificate: ", conf, junk);
	cr_assert(!strncmp(out, want, strlen(want)), "the error names the file: %s", out);

	/* a key that is another certificate's */
	t_conf(conf, sizeof(conf), good1, other_key);
	cr_assert_eq(meshd_t(conf, out, sizeof(out)), 1, "a key not the certificate's passed -t: %s", out);
	snprintf(want, sizeof(want), "meshd: %s: listen 127.0.0.1:8444: key %s/a.key: ", conf, T.dir);
	cr_assert(!strncmp(out, want, strlen(want)), "the error names the key: %s", out);

	/* a key that is not PEM */
	t_conf(conf, sizeof(conf), good1, bad_key);
	cr_assert_eq(meshd_t(conf, out, sizeof(out)), 1, "a broken key passed -t: %s", out);
	snprintf(want, sizeof(want), "meshd: %s: listen 127.0.0.1:8444: key %s: ", conf, junk);
	cr_assert(!strncmp(out, want, strlen(want)), "the error names the key: %s", out);

	/* the same on the first listener */
	t_conf(conf, sizeof(conf), other_key, good1);
	cr_assert_eq(meshd_t(conf, out, sizeof(out)), 1, "%s", out);
	free(good1);
	free(good2);
	free(bad_cert);
	free(other_key);
	free(bad_key);
}
