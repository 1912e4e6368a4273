/*
 * One WireGuard check probe against the running kernel, through the
 * project's checks engine: a `type: wireguard` check from the config
 * loader, started on a libuv loop, its result and per-peer status printed,
 * then compared with what the caller expects. It creates nothing itself;
 * the guest's init script sets the interfaces up (tests/kernel/init.sh).
 *
 *   wg_kernel_probe [-p [NAME=]KEY]... [-n MIN] [-r REASON] [-d TEXT]...
 *                   [-D TEXT]... [-c N] [-s PEER=STATE]... [-e PEER=ENDPOINT]...
 *                   [-S PEER] IFACE
 *
 * PEER is a peer's name or base64 key; ENDPOINT "-" means none. -S expects
 * that peer split across two or more messages of the netlink dump, counted
 * by reading what the socket receives. Exit 0 when every expectation holds,
 * 1 when one does not, 2 when the probe could not run.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include <linux/genetlink.h>
#include <linux/wireguard.h>
#include <netlink/genl/genl.h>
#include <netlink/netlink.h>

#include "checks/checks.h"
#include "config/config.h"

#define MAX_ARGS 16

struct expect {
	const char *peers[MAX_ARGS];
	size_t n_peers;
	const char *min_peers;
	const char *reason;
	const char *has[MAX_ARGS], *lacks[MAX_ARGS];
	size_t n_has, n_lacks;
	long count;                  /* -1: any */
	const char *state[MAX_ARGS], *endpoint[MAX_ARGS];
	size_t n_state, n_endpoint;
	const char *split;           /* the peer expected in several messages */
	const char *iface;
};

/* What the netlink socket received: device messages, and in how many of
 * them each peer key appeared. */
static struct {
	unsigned msgs;
	struct seen_key { uint8_t key[CHECK_WG_KEY_LEN]; unsigned msgs, last; } *keys;
	size_t n_keys;
} dump;

static int failures;

static void note_key(const uint8_t *key)
{
	struct seen_key *k;

	for (size_t i = 0; i < dump.n_keys; i++) {
		k = &dump.keys[i];
		if (memcmp(k->key, key, CHECK_WG_KEY_LEN) == 0) {
			if (k->last != dump.msgs)
				k->msgs++;
			k->last = dump.msgs;
			return;
		}
	}
	if (dump.n_keys >= CHECK_WG_MAX_PEERS)
		return;
	k = &dump.keys[dump.n_keys++];
	memcpy(k->key, key, CHECK_WG_KEY_LEN);
	k->msgs = 1;
	k->last = dump.msgs;
}

static void scan_message(struct nlmsghdr *h)
{
	struct nlattr *tb[WGDEVICE_A_MAX + 1], *nest, *pt[WGPEER_A_MAX + 1];
	int rem;

	/* Below GENL_ID_CTRL: DONE, ERROR; at it: the family reply. */
	if (h->nlmsg_type <= GENL_ID_CTRL)
		return;
	dump.msgs++;
	if (genlmsg_parse(h, 0, tb, WGDEVICE_A_MAX, NULL) < 0 || !tb[WGDEVICE_A_PEERS])
		return;
	nla_for_each_nested(nest, tb[WGDEVICE_A_PEERS], rem) {
		if (nla_parse_nested(pt, WGPEER_A_MAX, nest, NULL) == 0 &&
		    pt[WGPEER_A_PUBLIC_KEY] &&
		    nla_len(pt[WGPEER_A_PUBLIC_KEY]) == CHECK_WG_KEY_LEN)
			note_key(nla_data(pt[WGPEER_A_PUBLIC_KEY]));
	}
}

static int counting_recv(struct nl_sock *sk, struct sockaddr_nl *nla,
			 unsigned char **buf, struct ucred **creds)
{
	int n = nl_recv(sk, nla, buf, creds);
	int rem = n;

	for (struct nlmsghdr *h = (void *)*buf; n > 0 && nlmsg_ok(h, rem);
	     h = nlmsg_next(h, &rem))
		scan_message(h);
	return n;
}

static void socket_hook(struct nl_sock *sk, void *arg)
{
	struct nl_cb *cb = nl_socket_get_cb(sk);

	(void)arg;
	nl_cb_overwrite_recv(cb, counting_recv);
	nl_cb_put(cb);
}

/* ---- the probe ---- */

struct outcome {
	bool done;
	struct check_result r;
};

static void on_done(struct check *c, const struct check_result *r, void *arg)
{
	struct outcome *o = arg;

	(void)c;
	o->r = *r;
	o->done = true;
}

static char *config_text(const struct expect *x)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return NULL;
	fprintf(f, "node: guest\nservices:\n  - name: mesh\n    prefixes: [\"192.0.2.0/24\"]\n"
		"    checks:\n      - name: wg\n        type: wireguard\n"
		"        interface: \"%s\"\n        interval: 5s\n        timeout: 5s\n", x->iface);
	if (x->min_peers)
		fprintf(f, "        min_peers: %s\n", x->min_peers);
	if (x->n_peers)
		fprintf(f, "        peers:\n");
	for (size_t i = 0; i < x->n_peers; i++) {
		const char *eq = strchr(x->peers[i], '=');

		/* NAME=KEY; a bare key ends in '=' too, at its 44th character. */
		if (eq && eq[1])
			fprintf(f, "          - %.*s: \"%s\"\n", (int)(eq - x->peers[i]),
				x->peers[i], eq + 1);
		else
			fprintf(f, "          - \"%s\"\n", x->peers[i]);
	}
	fclose(f);
	return buf;
}

/* Run one probe of cfg's check; its status object into *status. */
static int probe(const struct cfg_check *cfg, struct outcome *o, json_t **status)
{
	uv_loop_t loop;
	struct check_engine *eng = NULL;
	struct check *c = NULL;
	int rc;

	if ((rc = uv_loop_init(&loop)) < 0)
		return rc;
	if ((rc = check_engine_new(&loop, &eng)) < 0)
		goto fail;
	if ((rc = check_new(eng, cfg, on_done, o, &c)) < 0 || (rc = check_start(c)) < 0)
		goto fail;
	while (!o->done && uv_run(&loop, UV_RUN_ONCE))
		;
	*status = json_object();
	check_status(c, *status);
	if (!o->done)
		rc = -EDEADLK;
fail:
	if (c)
		check_destroy(c);
	if (eng)
		check_engine_close(eng);
	uv_run(&loop, UV_RUN_DEFAULT);
	if (uv_loop_close(&loop) != 0) {
		printf("not ok: handles left open on the loop\n");
		failures++;
	}
	return rc;
}

/* ---- expectations ---- */

static void verdict(bool ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void verdict(bool ok, const char *fmt, ...)
{
	va_list ap;

	printf("%s: ", ok ? "ok" : "not ok");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	failures += !ok;
}

static json_t *find_peer(json_t *peers, const char *who, size_t len)
{
	size_t i;
	json_t *p;

	json_array_foreach(peers, i, p) {
		const char *name = json_string_value(json_object_get(p, "name"));
		const char *key = json_string_value(json_object_get(p, "key"));

		if ((name && strlen(name) == len && !strncmp(name, who, len)) ||
		    (key && strlen(key) == len && !strncmp(key, who, len)))
			return p;
	}
	return NULL;
}

/* PEER=VALUE against the peer's field; "-" wants null. The key itself
 * ends in '=', so the value starts after the last '='. */
static void expect_field(json_t *peers, const char *arg, const char *field)
{
	const char *eq = strrchr(arg, '=');
	int len = eq ? (int)(eq - arg) : (int)strlen(arg);
	json_t *p = eq ? find_peer(peers, arg, (size_t)len) : NULL;
	json_t *v = p ? json_object_get(p, field) : NULL;
	const char *got = json_is_string(v) ? json_string_value(v) : v ? "-" : "(absent)";

	if (!p)
		verdict(false, "peer %.*s is not in the status", len, arg);
	else
		verdict(!strcmp(got, eq + 1), "peer %.*s %s \"%s\" (want \"%s\")", len, arg,
			field, got, eq + 1);
}

static void b64_encode(const uint8_t in[CHECK_WG_KEY_LEN], char out[45])
{
	static const char tab[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t o = 0;

	for (size_t i = 0; i < CHECK_WG_KEY_LEN; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 |
			     (i + 1 < CHECK_WG_KEY_LEN ? (uint32_t)in[i + 1] << 8 : 0) |
			     (i + 2 < CHECK_WG_KEY_LEN ? in[i + 2] : 0);

		out[o++] = tab[v >> 18 & 63];
		out[o++] = tab[v >> 12 & 63];
		out[o++] = i + 1 < CHECK_WG_KEY_LEN ? tab[v >> 6 & 63] : '=';
		out[o++] = i + 2 < CHECK_WG_KEY_LEN ? tab[v & 63] : '=';
	}
	out[o] = 0;
}

/* The peer came in more than one dump message, and the check shows it
 * once (merged by key). */
static void expect_split(json_t *peers, const char *who)
{
	json_t *p = find_peer(peers, who, strlen(who));
	const char *key = p ? json_string_value(json_object_get(p, "key")) : NULL;
	unsigned msgs = 0;
	char b64[45];

	for (size_t i = 0; key && i < dump.n_keys; i++) {
		b64_encode(dump.keys[i].key, b64);
		if (!strcmp(b64, key))
			msgs = dump.keys[i].msgs;
	}
	verdict(p && msgs > 1, "peer %s came in %u of the dump's %u messages", who, msgs,
		dump.msgs);
}

static void check_expectations(const struct expect *x, const struct outcome *o,
			       json_t *status)
{
	json_t *peers = json_object_get(status, "peers");
	const char *backend = json_string_value(json_object_get(status, "backend"));
	const char *reason = check_reason_str(o->r.reason);

	verdict(backend && !strcmp(backend, "netlink"), "backend %s",
		backend ? backend : "(none)");
	if (x->reason)
		verdict(!strcmp(reason, x->reason), "reason %s (want %s)", reason, x->reason);
	for (size_t i = 0; i < x->n_has; i++)
		verdict(strstr(o->r.detail, x->has[i]), "detail has \"%s\"", x->has[i]);
	for (size_t i = 0; i < x->n_lacks; i++)
		verdict(!strstr(o->r.detail, x->lacks[i]), "detail lacks \"%s\"", x->lacks[i]);
	if (x->count >= 0)
		verdict((long)json_array_size(peers) == x->count, "%zu peers in the status (want %ld)",
			json_array_size(peers), x->count);
	for (size_t i = 0; i < x->n_state; i++)
		expect_field(peers, x->state[i], "state");
	for (size_t i = 0; i < x->n_endpoint; i++)
		expect_field(peers, x->endpoint[i], "endpoint");
	if (x->split)
		expect_split(peers, x->split);
}

/* ---- main ---- */

static bool add_arg(const char **list, size_t *n, const char *v)
{
	if (*n >= MAX_ARGS)
		return false;
	list[(*n)++] = v;
	return true;
}

static int parse_args(int argc, char **argv, struct expect *x)
{
	int opt;
	bool ok = true;

	x->count = -1;
	while ((opt = getopt(argc, argv, "p:n:r:d:D:c:s:e:S:")) != -1) {
		switch (opt) {
		case 'p': ok &= add_arg(x->peers, &x->n_peers, optarg); break;
		case 'n': x->min_peers = optarg; break;
		case 'r': x->reason = optarg; break;
		case 'd': ok &= add_arg(x->has, &x->n_has, optarg); break;
		case 'D': ok &= add_arg(x->lacks, &x->n_lacks, optarg); break;
		case 'c': x->count = strtol(optarg, NULL, 10); break;
		case 's': ok &= add_arg(x->state, &x->n_state, optarg); break;
		case 'e': ok &= add_arg(x->endpoint, &x->n_endpoint, optarg); break;
		case 'S': x->split = optarg; break;
		default: return -EINVAL;
		}
	}
	if (!ok || optind != argc - 1)
		return -EINVAL;
	x->iface = argv[optind];
	return 0;
}

static void print_status(json_t *status)
{
	size_t n = json_array_size(json_object_get(status, "peers"));
	char *s;

	/* A few hundred peers would flood a serial console. */
	if (n > 8) {
		printf("status: %zu peers (not shown)\n", n);
		return;
	}
	s = json_dumps(status, JSON_COMPACT | JSON_SORT_KEYS);
	printf("status: %s\n", s ? s : "(out of memory)");
	free(s);
}

int main(int argc, char **argv)
{
	struct expect x = { 0 };
	struct outcome o = { 0 };
	struct config *cfg = NULL;
	json_t *status = NULL;
	char err[256], *yaml = NULL;
	int rc = 2;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (parse_args(argc, argv, &x) < 0) {
		fprintf(stderr, "usage: %s [-p [NAME=]KEY]... [-n MIN] [-r REASON] [-d TEXT]... "
			"[-D TEXT]... [-c N] [-s PEER=STATE]... [-e PEER=ENDPOINT]... [-S PEER] IFACE\n",
			argv[0]);
		return 2;
	}
	if (!(dump.keys = calloc(CHECK_WG_MAX_PEERS, sizeof(*dump.keys))) ||
	    !(yaml = config_text(&x)))
		goto out;
	if (!(cfg = cfg_load_string("probe.yaml", yaml, strlen(yaml), err, sizeof(err)))) {
		fprintf(stderr, "config: %s\n", err);
		goto out;
	}
	check_wg_nl_set_socket_hook(socket_hook, NULL);
	if ((rc = probe(&cfg->services[0].checks[0], &o, &status)) < 0) {
		fprintf(stderr, "probe %s: %s\n", x.iface, strerror(-rc));
		rc = 2;
		goto out;
	}
	printf("probe %s: %s: %s (%llu us)\n", x.iface, check_reason_str(o.r.reason),
	       o.r.detail, (unsigned long long)o.r.latency_us);
	print_status(status);
	if (dump.msgs)
		printf("dump: %u device messages\n", dump.msgs);
	check_expectations(&x, &o, status);
	rc = failures ? 1 : 0;
out:
	json_decref(status);
	cfg_free(cfg);
	free(yaml);
	free(dump.keys);
	return rc;
}
