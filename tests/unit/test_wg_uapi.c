/*
 * checks/wg_uapi.c and check_wireguard.c over the UAPI backend: the parser
 * on replies captured from wireguard-go (tests/unit/fixtures/wg/) and on
 * hostile input; the client and the whole check against UAPI servers on
 * a unix socket in a per-PID temp dir (well-behaved, silent, closing
 * early, stale), and the fall-back to the kernel when no socket exists.
 * Run from the repository root.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <criterion/criterion.h>
#include <jansson.h>

#include "checks/checks.h"

#define FIX "tests/unit/fixtures/wg/"

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = malloc(65536);

	cr_assert_not_null(f, "%s: %s (run from the repository root)", path, strerror(errno));
	*len = fread(buf, 1, 65536, f);
	fclose(f);
	return buf;
}

static int parse_str(const char *s, struct check_wg_device *d, char *err, size_t errlen)
{
	return check_wg_uapi_parse(s, strlen(s), d, err, errlen);
}

TestSuite(wg_uapi, .timeout = 30);

/* ---- the parser on real replies ---- */

/* A fixture, parsed: it must be accepted. */
static void parse_fixture(const char *name, struct check_wg_device *d)
{
	char err[160], path[128];
	size_t len;
	char *buf;

	snprintf(path, sizeof(path), FIX "%s", name);
	buf = slurp(path, &len);
	cr_assert_eq(check_wg_uapi_parse(buf, len, d, err, sizeof(err)), 0, "%s: %s", name, err);
	free(buf);
}

Test(wg_uapi, one_peer_capture)
{
	struct check_wg_device d = { 0 };
	const struct check_wg_peer *p;
	const struct sockaddr_in *in;

	parse_fixture("one-peer.txt", &d);
	cr_assert_eq(d.n_peers, 1);
	p = &d.peers[0];
	cr_assert_eq(p->key[0], 0x13);
	cr_assert_eq(p->key[31], 0x3c);
	in = (const struct sockaddr_in *)&p->endpoint;
	cr_assert_eq(in->sin_family, AF_INET);
	cr_assert_eq(ntohs(in->sin_port), 51820);
	cr_assert_eq(ntohl(in->sin_addr.s_addr), 0xc6336402u, "198.51.100.2");
	cr_assert_eq(p->handshake_sec, 1795540877);
	cr_assert_eq(p->handshake_nsec, 721085205u);
	cr_assert_eq(p->tx_bytes, 528);
	cr_assert_eq(p->rx_bytes, 404);
	cr_assert_eq(p->keepalive_s, 1);
	check_wg_device_clear(&d);
}

Test(wg_uapi, two_peers_capture)
{
	struct check_wg_device d = { 0 };
	const struct sockaddr_in6 *in6;

	parse_fixture("two-peers.txt", &d);
	cr_assert_eq(d.n_peers, 2);
	cr_assert_eq(d.peers[1].key[0], 0xbe);
	in6 = (const struct sockaddr_in6 *)&d.peers[1].endpoint;
	cr_assert_eq(in6->sin6_family, AF_INET6);
	cr_assert_eq(in6->sin6_addr.s6_addr[15], 0x99);
	cr_assert_eq(d.peers[1].handshake_sec, 0, "never");
	cr_assert_eq(d.peers[1].rx_bytes, 0);
	cr_assert_eq(d.peers[0].rx_bytes, 404, "the first peer keeps its values");
	check_wg_device_clear(&d);
}

Test(wg_uapi, empty_device_and_errno)
{
	struct check_wg_device d = { 0 };
	char err[160], *buf;
	size_t len;

	parse_fixture("empty.txt", &d);
	cr_assert_eq(d.n_peers, 0);
	buf = slurp(FIX "errno-22.txt", &len);
	cr_assert_eq(check_wg_uapi_parse(buf, len, &d, err, sizeof(err)), -EREMOTEIO);
	cr_assert_str_eq(err, "UAPI get failed: errno=-22");
	check_wg_device_clear(&d);
	free(buf);
}

/* Every cut of a real reply short of its end is refused, never read. */
Test(wg_uapi, every_truncation_refused)
{
	size_t len;
	char *buf = slurp(FIX "two-peers.txt", &len), err[160];

	for (size_t n = 0; n + 1 < len; n++) {
		struct check_wg_device d = { 0 };

		cr_assert_eq(check_wg_uapi_parse(buf, n, &d, err, sizeof(err)), -EPROTO,
			     "cut at %zu accepted", n);
		cr_assert(strstr(err, "UAPI reply line"), "cut at %zu: %s", n, err);
		check_wg_device_clear(&d);
	}
	free(buf);
}

/* ---- hostile input ---- */

#define K1 "13480f5d02a1af93b413f926a8ce47293b0cedaa7fbe19945b5478825bba413c"

Test(wg_uapi, hostile_replies)
{
	static const struct { const char *in, *want; } cases[] = {
		{ "errno=0\n", "line 2: the reply ends without a blank line" },
		{ "listen_port=1\n\n", "line 2: the reply ends without errno=" },
		{ "hello\nerrno=0\n\n", "line 1: 'hello' is not KEY=VALUE" },
		{ "=1\nerrno=0\n\n", "line 1: '=1' is not KEY=VALUE" },
		{ "public_key=xyz\nerrno=0\n\n", "line 1: public_key 'xyz' is not 64 hex digits" },
		{ "public_key=" K1 "0\nerrno=0\n\n", "line 1: public_key" },
		{ "public_key=13480F5D02A1AF93B413F926A8CE47293B0CEDAA7FBE19945B5478825BBA413C\nerrno=0\n\n", "line 1: public_key" },
		{ "public_key=" K1 "\nrx_bytes=-1\nerrno=0\n\n", "line 2: rx_bytes '-1' is not a number" },
		{ "public_key=" K1 "\nrx_bytes=99999999999999999999999\nerrno=0\n\n", "line 2: rx_bytes '99999999999999999999999' is not a number" },
		{ "public_key=" K1 "\ntx_bytes=12x\nerrno=0\n\n", "line 2: tx_bytes '12x' is not a number" },
		{ "public_key=" K1 "\npersistent_keepalive_interval=70000\nerrno=0\n\n", "line 2: persistent_keepalive_interval 70000 is out of range" },
		{ "public_key=" K1 "\nlast_handshake_time_nsec=1000000000\nerrno=0\n\n", "line 2: last_handshake_time_nsec 1000000000 is out of range" },
		{ "public_key=" K1 "\nendpoint=nowhere\nerrno=0\n\n", "line 2: endpoint 'nowhere' is not ADDR:PORT" },
		{ "public_key=" K1 "\nendpoint=[2001:db8::1:51820\nerrno=0\n\n", "line 2: endpoint" },
		{ "public_key=" K1 "\nendpoint=198.51.100.2:70000\nerrno=0\n\n", "line 2: endpoint" },
		{ "public_key=" K1 "\npublic_key=" K1 "\nerrno=0\n\n", "line 2: peer 13480f5d02a1af93... is listed twice" },
		{ "errno=0\nlisten_port=1\n\n", "line 2: 'listen_port=1' after errno=" },
		{ "errno=zero\n\n", "line 1: errno 'zero' is not a number" },
		{ "errno=\n\n", "line 1: errno '' is not a number" },
		{ "a=\x01\x02\nerrno=0\n\n", NULL },   /* control bytes in a value of an unknown key: ignored */
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct check_wg_device d = { 0 };
		char err[160] = "";
		int rc = parse_str(cases[i].in, &d, err, sizeof(err));

		if (!cases[i].want) {
			cr_assert_eq(rc, 0, "case %zu: %s", i, err);
		} else {
			char want[200];

			snprintf(want, sizeof(want), "UAPI reply line %s", cases[i].want + 5);
			cr_assert_eq(rc, -EPROTO, "case %zu accepted", i);
			cr_assert(strncmp(err, want, strlen(want)) == 0,
				  "case %zu:\n  got    %s\n  wanted %s", i, err, want);
		}
		check_wg_device_clear(&d);
	}
}

Test(wg_uapi, nul_long_line_and_too_many_peers)
{
	struct check_wg_device d = { 0 };
	char err[160], nul[] = "a=b\0c\nerrno=0\n\n", *big;
	size_t n = 0, cap = (CHECK_WG_MAX_PEERS + 2) * 80;

	cr_assert_eq(check_wg_uapi_parse(nul, sizeof(nul) - 1, &d, err, sizeof(err)), -EPROTO);
	cr_assert_str_eq(err, "UAPI reply line 1: a NUL byte");
	big = malloc(cap);
	memset(big, 'a', 600);
	memcpy(big + 600, "=1\nerrno=0\n\n", 12);
	cr_assert_eq(check_wg_uapi_parse(big, 612, &d, err, sizeof(err)), -EPROTO);
	cr_assert_str_eq(err, "UAPI reply line 1: longer than 511 bytes");
	for (unsigned i = 0; i <= CHECK_WG_MAX_PEERS; i++)
		n += (size_t)snprintf(big + n, cap - n, "public_key=%064x\n", i);
	n += (size_t)snprintf(big + n, cap - n, "errno=0\n\n");
	cr_assert_eq(check_wg_uapi_parse(big, n, &d, err, sizeof(err)), -EPROTO);
	cr_assert(strstr(err, "more than 4096 peers"), "%s", err);
	check_wg_device_clear(&d);
	free(big);
}

/* Random bytes and random mutations of a real reply: refused or read,
 * never a crash (the sanitizer build watches the memory). */
Test(wg_uapi, random_input)
{
	size_t len;
	char *real = slurp(FIX "two-peers.txt", &len), buf[1024], err[160];
	unsigned seed = 12345;

	for (int i = 0; i < 20000; i++) {
		struct check_wg_device d = { 0 };
		size_t n;

		if (i % 2) {
			n = len;
			memcpy(buf, real, len);
			for (int j = 0; j < 1 + i % 7; j++)
				buf[rand_r(&seed) % len] = (char)(rand_r(&seed) % 256);
		} else {
			n = (size_t)rand_r(&seed) % sizeof(buf);
			for (size_t j = 0; j < n; j++)
				buf[j] = "ab=\n0\x01_k"[rand_r(&seed) % 8];
		}
		(void)check_wg_uapi_parse(buf, n, &d, err, sizeof(err));
		check_wg_device_clear(&d);
	}
	free(real);
}

/* ---- the client and the check against UAPI servers ---- */

enum srv_mode { SRV_REPLY, SRV_CHUNKED, SRV_SILENT, SRV_CLOSE_MID, SRV_GARBAGE };

struct srv {
	uv_pipe_t listen;
	enum srv_mode mode;
	char reply[4096];
	unsigned gets;
};

struct conn {
	uv_pipe_t pipe;
	struct srv *srv;
	char req[64];
	size_t len;
	uv_write_t w[2];
};

static uv_loop_t loop;
static struct srv srv;
static char dir[64];

static void conn_closed(uv_handle_t *h)
{
	free(h->data);
}

static void conn_alloc(uv_handle_t *h, size_t want, uv_buf_t *b)
{
	struct conn *c = h->data;

	(void)want;
	*b = uv_buf_init(c->req + c->len, (unsigned)(sizeof(c->req) - c->len));
}

static void conn_write(struct conn *c, int i, const char *s, size_t n)
{
	uv_buf_t b = uv_buf_init((char *)s, (unsigned)n);

	uv_write(&c->w[i], (uv_stream_t *)&c->pipe, &b, 1, NULL);
}

static void conn_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
	struct conn *c = s->data;
	size_t rl = strlen(c->srv->reply);

	(void)b;
	if (n < 0 || c->len + (size_t)n >= sizeof(c->req)) {
		if (!uv_is_closing((uv_handle_t *)s))
			uv_close((uv_handle_t *)s, conn_closed);
		return;
	}
	c->len += (size_t)n;
	if (!memmem(c->req, c->len, "get=1\n\n", 7))
		return;
	c->srv->gets++;
	c->len = 0;
	switch (c->srv->mode) {
	case SRV_REPLY:
		conn_write(c, 0, c->srv->reply, rl);
		break;
	case SRV_CHUNKED:       /* two writes, and the connection stays open */
		conn_write(c, 0, c->srv->reply, rl / 2);
		conn_write(c, 1, c->srv->reply + rl / 2, rl - rl / 2);
		break;
	case SRV_CLOSE_MID:
		conn_write(c, 0, c->srv->reply, rl / 2);
		uv_close((uv_handle_t *)s, conn_closed);
		break;
	case SRV_GARBAGE:
		conn_write(c, 0, "hello, world\n\n", 14);
		break;
	case SRV_SILENT:
		break;
	}
}

static void on_conn(uv_stream_t *l, int status)
{
	struct conn *c = calloc(1, sizeof(*c));

	cr_assert_eq(status, 0);
	c->srv = l->data;
	uv_pipe_init(&loop, &c->pipe, 0);
	c->pipe.data = c;
	cr_assert_eq(uv_accept(l, (uv_stream_t *)&c->pipe), 0);
	uv_read_start((uv_stream_t *)&c->pipe, conn_alloc, conn_read);
}

static void sock_path(char *buf, size_t len, const char *iface)
{
	snprintf(buf, len, "%s/%s.sock", dir, iface);
}

static void srv_start(const char *iface, enum srv_mode mode)
{
	char path[128];

	sock_path(path, sizeof(path), iface);
	srv.mode = mode;
	cr_assert_eq(uv_pipe_init(&loop, &srv.listen, 0), 0);
	srv.listen.data = &srv;
	cr_assert_eq(uv_pipe_bind(&srv.listen, path), 0);
	cr_assert_eq(uv_listen((uv_stream_t *)&srv.listen, 8, on_conn), 0);
}

static void close_walk(uv_handle_t *h, void *arg)
{
	(void)arg;
	if (!uv_is_closing(h))
		uv_close(h, h->data && h != (uv_handle_t *)&srv.listen ? conn_closed : NULL);
}

static void setup(void)
{
	memset(&srv, 0, sizeof(srv));
	snprintf(dir, sizeof(dir), "/tmp/healthd-wg-%d", (int)getpid());
	mkdir(dir, 0700);
	cr_assert_eq(uv_loop_init(&loop), 0);
}

static void teardown(void)
{
	char cmd[128];

	check_set_clock(NULL);
	uv_walk(&loop, close_walk, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	cr_assert_eq(uv_loop_close(&loop), 0, "handles left open on the loop");
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	cr_assert_eq(system(cmd), 0);
}

TestSuite(wg_uapi_client, .init = setup, .fini = teardown, .timeout = 30);

struct got {
	int n, err;
	char detail[160];
	size_t n_peers;
	uint64_t rx0;
};

static void on_got(void *arg, int err, const char *detail, const struct check_wg_device *dev)
{
	struct got *g = arg;

	g->n++;
	g->err = err;
	snprintf(g->detail, sizeof(g->detail), "%s", detail);
	if (dev) {
		g->n_peers = dev->n_peers;
		g->rx0 = dev->n_peers ? dev->peers[0].rx_bytes : 0;
	}
}

static void get(const char *iface, struct got *g)
{
	struct check_wg_uapi *u;
	char path[128];

	sock_path(path, sizeof(path), iface);
	cr_assert_eq(check_wg_uapi_get(&loop, path, on_got, g, &u), 0);
	cr_assert_eq(g->n, 0, "never a callback from inside the call");
	while (g->n == 0 && uv_run(&loop, UV_RUN_ONCE))
		;
	cr_assert_eq(g->n, 1);
}

Test(wg_uapi_client, reply_read_to_the_blank_line)
{
	size_t len;
	char *buf = slurp(FIX "two-peers.txt", &len);
	struct got g = { 0 };

	memcpy(srv.reply, buf, len);
	srv_start("wg0", SRV_CHUNKED);
	get("wg0", &g);
	cr_assert_eq(g.err, 0, "%s", g.detail);
	cr_assert_eq(g.n_peers, 2);
	cr_assert_eq(g.rx0, 404);
	free(buf);
}

Test(wg_uapi_client, failures_named)
{
	struct got g = { 0 };
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	get("absent", &g);
	cr_assert_eq(g.err, -ENOENT);
	/* A socket file nobody listens on: what wireguard-go leaves when killed. */
	sock_path(sa.sun_path, sizeof(sa.sun_path), "stale");
	cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
	memset(&g, 0, sizeof(g));
	get("stale", &g);
	cr_assert_eq(g.err, -ECONNREFUSED);
	cr_assert(strstr(g.detail, "stale socket"), "%s", g.detail);
	strcpy(srv.reply, "listen_port=1\nerrno=0\n\n");
	srv_start("mid", SRV_CLOSE_MID);
	memset(&g, 0, sizeof(g));
	get("mid", &g);
	cr_assert_eq(g.err, -EPROTO);
	cr_assert(strstr(g.detail, "connection closed after"), "%s", g.detail);
	srv.mode = SRV_GARBAGE;
	memset(&g, 0, sizeof(g));
	get("mid", &g);
	cr_assert_eq(g.err, -EPROTO);
	cr_assert(strstr(g.detail, "'hello, world' is not KEY=VALUE"), "%s", g.detail);
}

/* ---- the whole check ---- */

static struct check_engine *eng;

struct waiter {
	int n;
	struct check_result r;
};

static void on_done(struct check *c, const struct check_result *r, void *arg)
{
	struct waiter *w = arg;

	(void)c;
	w->n++;
	w->r = *r;
}

static struct check *wg_check(struct cfg_check *k, const char *iface, struct waiter *w)
{
	struct check *c;

	k->name = "mesh";
	k->type = "wireguard";
	k->interface = (char *)iface;
	k->uapi_dir = dir;
	k->timeout_ms = 300;
	k->max_handshake_age_ms = 180000;
	if (!eng)
		cr_assert_eq(check_engine_new(&loop, &eng), 0);
	cr_assert_eq(check_new(eng, k, on_done, w, &c), 0);
	return c;
}

static void probe(struct check *c, struct waiter *w)
{
	int before = w->n;

	cr_assert_eq(check_start(c), 0);
	cr_assert_eq(w->n, before, "never a result from inside check_start");
	while (w->n == before && uv_run(&loop, UV_RUN_ONCE))
		;
	cr_assert_eq(w->n, before + 1);
}

static void done_with(struct check *c)
{
	check_destroy(c);
	check_engine_close(eng);
	eng = NULL;
}

/* A reply like wireguard-go's, with a handshake age_s seconds ago. */
static void fresh_reply(int age_s, unsigned rx)
{
	snprintf(srv.reply, sizeof(srv.reply),
		 "private_key=%064d\nlisten_port=51820\npublic_key=" K1 "\n"
		 "endpoint=198.51.100.2:51820\nlast_handshake_time_sec=%lld\n"
		 "last_handshake_time_nsec=0\ntx_bytes=528\nrx_bytes=%u\n"
		 "persistent_keepalive_interval=1\nallowed_ip=203.0.113.2/32\nerrno=0\n\n",
		 0, (long long)time(NULL) - age_s, rx);
}

/* K1 as bytes, as the config holds it. */
static void key_raw(uint8_t raw[32])
{
	for (int i = 0; i < 32; i++)
		raw[i] = (uint8_t)strtoul((char[]){ K1[2 * i], K1[2 * i + 1], 0 }, NULL, 16);
}

Test(wg_uapi_client, check_alive_then_rx_idle)
{
	struct cfg_wg_peer peer = { .name = "ord" };
	struct cfg_check k = { .peers = &peer, .n_peers = 1, .max_rx_idle_ms = 150 };
	struct waiter w = { 0 };
	struct check *c;
	uint64_t deadline = check_now_us() + 5000000;
	json_t *st = json_object(), *p;

	key_raw(peer.raw);
	c = wg_check(&k, "wga", &w);
	fresh_reply(5, 404);
	srv_start("wga", SRV_REPLY);
	probe(c, &w);
	cr_assert_eq(w.r.reason, CHECK_OK, "%s", w.r.detail);
	cr_assert_str_eq(w.r.detail, "1 of 1 peers alive on wga");
	check_status(c, st);
	p = json_array_get(json_object_get(st, "peers"), 0);
	cr_assert_str_eq(json_string_value(json_object_get(p, "name")), "ord");
	cr_assert_str_eq(json_string_value(json_object_get(p, "key")),
			 "E0gPXQKhr5O0E/kmqM5HKTsM7ap/vhmUW1R4glu6QTw=");
	cr_assert_str_eq(json_string_value(json_object_get(p, "endpoint")), "198.51.100.2:51820");
	cr_assert(json_is_true(json_object_get(p, "alive")));
	cr_assert_str_eq(json_string_value(json_object_get(st, "backend")), "uapi");
	json_decref(st);
	/* rx_bytes stands still: once max_rx_idle has passed, the peer is dead. */
	while (w.r.reason == CHECK_OK && check_now_us() < deadline)
		probe(c, &w);
	cr_assert_eq(w.r.reason, CHECK_UNREACHABLE, "%s", w.r.detail);
	cr_assert(strstr(w.r.detail, "0 of 1 peers alive, need 1: ord nothing received for"),
		  "%s", w.r.detail);
	fresh_reply(5, 500);
	probe(c, &w);
	cr_assert_eq(w.r.reason, CHECK_OK, "rx moved again: %s", w.r.detail);
	done_with(c);
}

Test(wg_uapi_client, check_peer_states)
{
	struct cfg_wg_peer peers[2] = { { .name = "ord" }, { .name = "fra" } };
	struct cfg_check k = { .peers = peers, .n_peers = 2, .min_peers = 1 };
	struct waiter w = { 0 };
	struct check *c;

	key_raw(peers[0].raw);
	peers[1].raw[0] = 1;
	c = wg_check(&k, "wgb", &w);
	fresh_reply(200, 1);
	srv_start("wgb", SRV_REPLY);
	probe(c, &w);
	cr_assert_eq(w.r.reason, CHECK_UNREACHABLE);
	/* the reply was made a moment ago: a second may tick in between */
	cr_assert(!strcmp(w.r.detail, "0 of 2 peers alive, need 1: ord last handshake 200s ago; "
			  "fra not on the interface") ||
		  !strcmp(w.r.detail, "0 of 2 peers alive, need 1: ord last handshake 201s ago; "
			  "fra not on the interface"), "%s", w.r.detail);
	fresh_reply(10, 1);
	probe(c, &w);
	cr_assert_eq(w.r.reason, CHECK_OK, "min_peers 1: %s", w.r.detail);
	cr_assert_str_eq(w.r.detail, "1 of 2 peers alive on wgb");
	done_with(c);
}

Test(wg_uapi_client, check_failures)
{
	struct cfg_check k = { 0 };
	struct waiter w = { 0 };
	struct check *c = wg_check(&k, "wgc", &w);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	/* No socket: the kernel is asked, and has no such interface here. */
	probe(c, &w);
	cr_assert_eq(w.r.reason, CHECK_UNREACHABLE, "%s", w.r.detail);
	cr_assert(strncmp(w.r.detail, "no interface wgc", 16) == 0, "%s", w.r.detail);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	sock_path(sa.sun_path, sizeof(sa.sun_path), "wgc");
	cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
	probe(c, &w);
	cr_assert_eq(w.r.reason, CHECK_REFUSED, "%s", w.r.detail);
	unlink(sa.sun_path);
	srv_start("wgc", SRV_SILENT);
	probe(c, &w);
	cr_assert_eq(w.r.reason, CHECK_TIMEOUT, "%s", w.r.detail);
	cr_assert_geq(w.r.latency_us, 300000);
	srv.mode = SRV_GARBAGE;
	probe(c, &w);
	cr_assert_eq(w.r.reason, CHECK_PROTOCOL, "%s", w.r.detail);
	strcpy(srv.reply, "listen_port=1\nerrno=0\n\n");
	srv.mode = SRV_REPLY;
	probe(c, &w);
	cr_assert_eq(w.r.reason, CHECK_UNREACHABLE);
	cr_assert_str_eq(w.r.detail, "wgc has no peers");
	done_with(c);
}

/* ---- clocks: the wall clock steps, the monotonic one only advances ---- */

static struct timespec fake_wall;
static uint64_t fake_mono_us;

static void wall_fake(struct timespec *ts)
{
	*ts = fake_wall;
}

static uint64_t mono_fake(void)
{
	return fake_mono_us;
}

static void fake_clocks(void)
{
	static const struct check_clock fake = { mono_fake, wall_fake };

	fake_wall.tv_sec = 1700000000;
	fake_mono_us = 1000000000;
	check_set_clock(&fake);
}

/* A reply whose one peer (K1) last shook hands at wall-clock second hs. */
static void reply_at(long long hs, unsigned rx)
{
	snprintf(srv.reply, sizeof(srv.reply),
		 "listen_port=51820\npublic_key=" K1 "\nlast_handshake_time_sec=%lld\n"
		 "last_handshake_time_nsec=0\nrx_bytes=%u\nerrno=0\n\n", hs, rx);
}

Test(wg_uapi_client, wall_clock_steps_change_no_verdict)
{
	struct cfg_wg_peer peer = { .name = "ord" };
	struct cfg_check k = { .peers = &peer, .n_peers = 1 };
	struct waiter w = { 0 };
	struct check *c;

	key_raw(peer.raw);
	fake_clocks();
	c = wg_check(&k, "wge", &w);
	reply_at(fake_wall.tv_sec - 5, 1);
	srv_start("wge", SRV_REPLY);
	probe(c, &w);
	cr_assert_eq(w.r.reason, CHECK_OK, "%s", w.r.detail);
	/* Forward by more than max_handshake_age (180s): the handshake is as
	 * old as it was. */
	fake_wall.tv_sec += 3600;
	fake_mono_us += 1000000;
	probe(c, &w);
	cr_assert_eq(w.r.reason, CHECK_OK, "wall clock +1h: %s", w.r.detail);
	fake_wall.tv_sec -= 3 * 3600;
	fake_mono_us += 1000000;
	probe(c, &w);
	cr_assert_eq(w.r.reason, CHECK_OK, "wall clock -3h: %s", w.r.detail);
	/* No new handshake: 175s more of monotonic time still pass... */
	fake_mono_us += 170000000;
	probe(c, &w);
	cr_assert_eq(w.r.reason, CHECK_OK, "177s of 180s: %s", w.r.detail);
	/* ...and past max_handshake_age it is down, whatever the wall clock. */
	fake_mono_us += 4000000;
	probe(c, &w);
	cr_assert_eq(w.r.reason, CHECK_UNREACHABLE, "%s", w.r.detail);
	cr_assert_str_eq(w.r.detail, "0 of 1 peers alive, need 1: ord last handshake 181s ago");
	/* A new handshake is no older than the previous reading, even when its
	 * wall-clock time is from before the step back. */
	reply_at(fake_wall.tv_sec - 7200, 2);
	fake_mono_us += 1000000;
	probe(c, &w);
	cr_assert_eq(w.r.reason, CHECK_OK, "new handshake: %s", w.r.detail);
	done_with(c);
}

Test(wg_uapi_client, dead_peer_stays_dead_across_a_step_back)
{
	struct cfg_wg_peer peer = { .name = "ord" };
	struct cfg_check k = { .peers = &peer, .n_peers = 1 };
	struct waiter w = { 0 };
	struct check *c;

	key_raw(peer.raw);
	fake_clocks();
	c = wg_check(&k, "wgf", &w);
	/* First sighting: the wall clock says how old the handshake is. */
	reply_at(fake_wall.tv_sec - 200, 1);
	srv_start("wgf", SRV_REPLY);
	probe(c, &w);
	cr_assert_eq(w.r.reason, CHECK_UNREACHABLE, "%s", w.r.detail);
	cr_assert_str_eq(w.r.detail, "0 of 1 peers alive, need 1: ord last handshake 200s ago");
	fake_wall.tv_sec -= 3600;
	fake_mono_us += 1000000;
	probe(c, &w);
	cr_assert_eq(w.r.reason, CHECK_UNREACHABLE, "wall clock -1h: %s", w.r.detail);
	cr_assert_str_eq(w.r.detail, "0 of 1 peers alive, need 1: ord last handshake 201s ago");
	fake_wall.tv_sec += 7200;
	fake_mono_us += 1000000;
	probe(c, &w);
	cr_assert_str_eq(w.r.detail, "0 of 1 peers alive, need 1: ord last handshake 202s ago");
	/* A handshake from the future of the wall clock is fresh, not negative. */
	reply_at(fake_wall.tv_sec + 600, 2);
	fake_mono_us += 1000000;
	probe(c, &w);
	cr_assert_eq(w.r.reason, CHECK_OK, "%s", w.r.detail);
	done_with(c);
}

/* Destroyed with a read in flight: no callback, nothing left on the loop. */
Test(wg_uapi_client, destroy_mid_probe)
{
	struct cfg_check k = { 0 };
	struct waiter w = { 0 };
	struct check *c = wg_check(&k, "wgd", &w);

	srv_start("wgd", SRV_SILENT);
	cr_assert_eq(check_start(c), 0);
	uv_run(&loop, UV_RUN_NOWAIT);
	done_with(c);
	uv_run(&loop, UV_RUN_NOWAIT);
	cr_assert_eq(w.n, 0);
}
