/*
 * checks/wg_netlink.c in-process. The kernel's wireguard family is not on
 * these machines, so replies built with libnl are served through libnl's
 * callback overrides: the socket hook puts one end of a SOCK_SEQPACKET
 * socketpair in place of the netlink socket's fd (so the loop's uv_poll
 * sees real readiness) and overrides send and recv; the fake "kernel"
 * answers each request it is sent with the datagrams of a scenario.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/genetlink.h>
#include <linux/wireguard.h>
#include <netlink/genl/ctrl.h>
#include <netlink/genl/genl.h>
#include <netlink/netlink.h>
#include <criterion/criterion.h>
#include <jansson.h>

#include "checks/checks.h"

#define FAMILY 0x1d

enum scenario {
	SC_DUMP,            /* family, then a dump of three peers over three datagrams */
	SC_NO_FAMILY,       /* CTRL_CMD_GETFAMILY answered with ENOENT */
	SC_NO_DEVICE,       /* the dump answered with ENODEV */
	SC_NOT_WG,          /* the dump answered with EOPNOTSUPP */
	SC_BAD_KEY,         /* a peer with a 31-byte key */
	SC_BAD_FAMILY,      /* a family reply without its id */
	SC_SILENT,          /* nothing ever */
};

static struct {
	enum scenario sc;
	int fd;             /* the kernel's end */
	unsigned requests;
	uint16_t dump_family;
	uint16_t dump_flags;
	uint8_t dump_cmd;
	char dump_ifname[16];
} k;

static uv_loop_t loop;

static const uint8_t KEY_A[32] = { 0xa0, [31] = 0xa1 };
static const uint8_t KEY_B[32] = { 0xb0, [31] = 0xb1 };
static const uint8_t KEY_C[32] = { 0xc0, [31] = 0xc1 };

static void kwrite(struct nl_msg *m)
{
	struct nlmsghdr *h = nlmsg_hdr(m);

	cr_assert_eq(write(k.fd, h, h->nlmsg_len), (ssize_t)h->nlmsg_len);
	nlmsg_free(m);
}

static void kerror(const struct nlmsghdr *req, int err)
{
	struct nl_msg *m = nlmsg_alloc_simple(NLMSG_ERROR, 0);
	struct nlmsgerr e = { .error = err, .msg = *req };

	nlmsg_append(m, &e, sizeof(e), NLMSG_ALIGNTO);
	nlmsg_hdr(m)->nlmsg_seq = req->nlmsg_seq;
	kwrite(m);
}

static struct nl_msg *kmsg(const struct nlmsghdr *req, int family, int flags, int cmd)
{
	struct nl_msg *m = nlmsg_alloc();

	cr_assert_not_null(genlmsg_put(m, 0, req->nlmsg_seq, family, 0, flags, (uint8_t)cmd, 1));
	return m;
}

static void peer(struct nl_msg *m, const uint8_t *key, int key_len, const struct sockaddr *ep,
		 size_t ep_len, int64_t hs_sec, uint64_t rx, bool allowed)
{
	struct nlattr *p = nla_nest_start(m, 0), *ips, *ip;

	nla_put(m, WGPEER_A_PUBLIC_KEY, key_len, key);
	if (ep)
		nla_put(m, WGPEER_A_ENDPOINT, (int)ep_len, ep);
	if (hs_sec >= 0) {
		int64_t ts[2] = { hs_sec, 5 };

		nla_put(m, WGPEER_A_LAST_HANDSHAKE_TIME, sizeof(ts), ts);
		nla_put_u64(m, WGPEER_A_RX_BYTES, rx);
		nla_put_u64(m, WGPEER_A_TX_BYTES, rx * 2);
		nla_put_u16(m, WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL, 1);
	}
	if (allowed) {
		uint8_t a[4] = { 203, 0, 113, 2 };

		ips = nla_nest_start(m, WGPEER_A_ALLOWEDIPS);
		ip = nla_nest_start(m, 0);
		nla_put_u16(m, WGALLOWEDIP_A_FAMILY, AF_INET);
		nla_put(m, WGALLOWEDIP_A_IPADDR, 4, a);
		nla_put_u8(m, WGALLOWEDIP_A_CIDR_MASK, 32);
		nla_nest_end(m, ip);
		nla_nest_end(m, ips);
	}
	nla_nest_end(m, p);
}

/* Three datagrams: A and the first half of B; the rest of B (its allowed
 * IPs, under its key again) and C; NLMSG_DONE. */
static void kdump(const struct nlmsghdr *req)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(51820) };
	struct sockaddr_in6 b = { .sin6_family = AF_INET6, .sin6_port = htons(51821) };
	struct nl_msg *m = kmsg(req, FAMILY, NLM_F_MULTI, WG_CMD_GET_DEVICE);
	struct nlattr *peers;

	inet_pton(AF_INET, "198.51.100.2", &a.sin_addr);
	inet_pton(AF_INET6, "2001:db8::2", &b.sin6_addr);
	nla_put_u32(m, WGDEVICE_A_IFINDEX, 7);
	nla_put_string(m, WGDEVICE_A_IFNAME, "wg0");
	nla_put_u16(m, WGDEVICE_A_LISTEN_PORT, 51820);
	peers = nla_nest_start(m, WGDEVICE_A_PEERS);
	peer(m, KEY_A, 32, (struct sockaddr *)&a, sizeof(a), 1700000000, 100, true);
	peer(m, KEY_B, 32, (struct sockaddr *)&b, sizeof(b), 1700000001, 5, true);
	nla_nest_end(m, peers);
	kwrite(m);
	m = kmsg(req, FAMILY, NLM_F_MULTI, WG_CMD_GET_DEVICE);
	nla_put_string(m, WGDEVICE_A_IFNAME, "wg0");
	peers = nla_nest_start(m, WGDEVICE_A_PEERS);
	peer(m, KEY_B, 32, NULL, 0, -1, 0, true);
	peer(m, KEY_C, k.sc == SC_BAD_KEY ? 31 : 32, NULL, 0, 0, 0, false);
	nla_nest_end(m, peers);
	kwrite(m);
	m = nlmsg_alloc_simple(NLMSG_DONE, NLM_F_MULTI);
	nlmsg_hdr(m)->nlmsg_seq = req->nlmsg_seq;
	nlmsg_append(m, &(int){ 0 }, sizeof(int), NLMSG_ALIGNTO);
	kwrite(m);
}

static void kfamily(const struct nlmsghdr *req)
{
	struct nl_msg *m;

	if (k.sc == SC_NO_FAMILY) {
		kerror(req, -ENOENT);
		return;
	}
	/* A stale message first: another sequence number, to be ignored. */
	m = kmsg(req, GENL_ID_CTRL, 0, CTRL_CMD_NEWFAMILY);
	nlmsg_hdr(m)->nlmsg_seq = req->nlmsg_seq + 100;
	nla_put_u16(m, CTRL_ATTR_FAMILY_ID, 0x77);
	kwrite(m);
	m = kmsg(req, GENL_ID_CTRL, 0, CTRL_CMD_NEWFAMILY);
	nla_put_string(m, CTRL_ATTR_FAMILY_NAME, WG_GENL_NAME);
	if (k.sc != SC_BAD_FAMILY)
		nla_put_u16(m, CTRL_ATTR_FAMILY_ID, FAMILY);
	kwrite(m);
}

/* The request as the kernel would read it, then the scenario's answer. */
static int fake_send(struct nl_sock *sk, struct nl_msg *msg)
{
	struct nlmsghdr *h = nlmsg_hdr(msg);
	struct nlattr *tb[WGDEVICE_A_MAX + 1];

	(void)sk;
	k.requests++;
	if (k.sc == SC_SILENT)
		return (int)h->nlmsg_len;
	if (h->nlmsg_type == GENL_ID_CTRL) {
		kfamily(h);
		return (int)h->nlmsg_len;
	}
	k.dump_family = h->nlmsg_type;
	k.dump_flags = h->nlmsg_flags;
	k.dump_cmd = ((struct genlmsghdr *)nlmsg_data(h))->cmd;
	cr_assert_eq(genlmsg_parse(h, 0, tb, WGDEVICE_A_MAX, NULL), 0);
	if (tb[WGDEVICE_A_IFNAME])
		snprintf(k.dump_ifname, sizeof(k.dump_ifname), "%s", nla_get_string(tb[WGDEVICE_A_IFNAME]));
	if (k.sc == SC_NO_DEVICE || k.sc == SC_NOT_WG)
		kerror(h, k.sc == SC_NO_DEVICE ? -ENODEV : -EOPNOTSUPP);
	else
		kdump(h);
	return (int)h->nlmsg_len;
}

static int fake_recv(struct nl_sock *sk, struct sockaddr_nl *nla, unsigned char **buf,
		     struct ucred **creds)
{
	unsigned char tmp[16384];
	ssize_t n = recv(nl_socket_get_fd(sk), tmp, sizeof(tmp), MSG_DONTWAIT);

	(void)creds;
	if (n <= 0)
		return n < 0 && errno != EAGAIN ? -NLE_FAILURE : 0;
	memset(nla, 0, sizeof(*nla));
	nla->nl_family = AF_NETLINK;
	*buf = malloc((size_t)n);
	memcpy(*buf, tmp, (size_t)n);
	return (int)n;
}

static void hook(struct nl_sock *sk, void *arg)
{
	struct nl_cb *cb = nl_socket_get_cb(sk);
	int sv[2];

	(void)arg;
	cr_assert_eq(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
	cr_assert_geq(dup2(sv[0], nl_socket_get_fd(sk)), 0);
	close(sv[0]);
	if (k.fd >= 0)
		close(k.fd);
	k.fd = sv[1];
	nl_cb_overwrite_send(cb, fake_send);
	nl_cb_overwrite_recv(cb, fake_recv);
	nl_cb_put(cb);
}

static void setup(void)
{
	memset(&k, 0, sizeof(k));
	k.fd = -1;
	cr_assert_eq(uv_loop_init(&loop), 0);
	check_wg_nl_set_socket_hook(hook, NULL);
}

static void teardown(void)
{
	check_wg_nl_set_socket_hook(NULL, NULL);
	if (k.fd >= 0)
		close(k.fd);
	uv_run(&loop, UV_RUN_DEFAULT);
	cr_assert_eq(uv_loop_close(&loop), 0, "handles left open on the loop");
}

TestSuite(wg_netlink, .init = setup, .fini = teardown, .timeout = 30);

struct got {
	int n, err;
	char detail[160];
	struct check_wg_device dev;
};

static void on_got(void *arg, int err, const char *detail, const struct check_wg_device *dev)
{
	struct got *g = arg;

	g->n++;
	g->err = err;
	snprintf(g->detail, sizeof(g->detail), "%s", detail);
	if (dev) {
		for (size_t i = 0; i < dev->n_peers; i++)
			*check_wg_device_peer(&g->dev, dev->peers[i].key) = dev->peers[i];
	}
}

static void get(enum scenario sc, struct got *g)
{
	struct check_wg_nl *n;

	k.sc = sc;
	cr_assert_eq(check_wg_nl_get(&loop, "wg0", on_got, g, &n), 0);
	cr_assert_eq(g->n, 0, "never a callback from inside the call");
	while (g->n == 0 && uv_run(&loop, UV_RUN_ONCE))
		;
	cr_assert_eq(g->n, 1);
}

Test(wg_netlink, multipart_dump_merged_by_key)
{
	struct got g = { 0 };
	const struct check_wg_peer *p;

	get(SC_DUMP, &g);
	cr_assert_eq(g.err, 0, "%s", g.detail);
	cr_assert_eq(k.requests, 2);
	cr_assert_eq(k.dump_family, FAMILY, "the dump goes to the resolved family");
	cr_assert(k.dump_flags & NLM_F_DUMP);
	cr_assert_eq(k.dump_cmd, WG_CMD_GET_DEVICE);
	cr_assert_str_eq(k.dump_ifname, "wg0");
	cr_assert_eq(g.dev.n_peers, 3, "B's second half merges into B");
	p = &g.dev.peers[0];
	cr_assert_eq(memcmp(p->key, KEY_A, 32), 0);
	cr_assert_eq(p->endpoint.ss_family, AF_INET);
	cr_assert_eq(p->handshake_sec, 1700000000);
	cr_assert_eq(p->handshake_nsec, 5);
	cr_assert_eq(p->rx_bytes, 100);
	cr_assert_eq(p->tx_bytes, 200);
	cr_assert_eq(p->keepalive_s, 1);
	p = &g.dev.peers[1];
	cr_assert_eq(memcmp(p->key, KEY_B, 32), 0);
	cr_assert_eq(p->endpoint.ss_family, AF_INET6, "the continuation keeps B's endpoint");
	cr_assert_eq(p->rx_bytes, 5);
	cr_assert_eq(p->handshake_sec, 1700000001);
	p = &g.dev.peers[2];
	cr_assert_eq(memcmp(p->key, KEY_C, 32), 0);
	cr_assert_eq(p->handshake_sec, 0, "never");
	check_wg_device_clear(&g.dev);
}

Test(wg_netlink, family_absent)
{
	struct got g = { 0 };

	get(SC_NO_FAMILY, &g);
	cr_assert_eq(g.err, -EPFNOSUPPORT);
	cr_assert_eq(k.requests, 1, "no dump without a family");
	cr_assert(strstr(g.detail, "no wireguard netlink family (module not loaded)"), "%s", g.detail);
}

Test(wg_netlink, error_replies)
{
	struct got g = { 0 };

	get(SC_NO_DEVICE, &g);
	cr_assert_eq(g.err, -ENODEV);
	cr_assert(strstr(g.detail, "no interface wg0"), "%s", g.detail);
	memset(&g, 0, sizeof(g));
	get(SC_NOT_WG, &g);
	cr_assert_eq(g.err, -ENODEV);
	cr_assert_str_eq(g.detail, "wg0 is not a WireGuard interface");
}

Test(wg_netlink, malformed_replies)
{
	struct got g = { 0 };

	get(SC_BAD_KEY, &g);
	cr_assert_eq(g.err, -EPROTO);
	cr_assert_str_eq(g.detail, "netlink: a peer without a 32-byte public key");
	memset(&g, 0, sizeof(g));
	get(SC_BAD_FAMILY, &g);
	cr_assert_eq(g.err, -EPROTO);
	cr_assert_str_eq(g.detail, "netlink: malformed CTRL_CMD_GETFAMILY reply");
}

Test(wg_netlink, cancel_while_silent)
{
	struct got g = { 0 };
	struct check_wg_nl *n;

	k.sc = SC_SILENT;
	cr_assert_eq(check_wg_nl_get(&loop, "wg0", on_got, &g, &n), 0);
	uv_run(&loop, UV_RUN_NOWAIT);
	check_wg_nl_cancel(n);
	uv_run(&loop, UV_RUN_DEFAULT);
	cr_assert_eq(g.n, 0);
}

/* ---- the check over netlink: no UAPI socket in its dir ---- */

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

Test(wg_netlink, check_reads_the_kernel)
{
	struct cfg_wg_peer peers[2] = { { .name = "ord" }, { .name = "fra" } };
	struct cfg_check cfg = { .name = "mesh", .type = "wireguard", .interface = "wg0",
		.uapi_dir = "/nonexistent", .timeout_ms = 1000, .peers = peers, .n_peers = 2,
		.max_handshake_age_ms = 180000 };
	struct check_engine *eng;
	struct waiter w = { 0 };
	struct check *c;
	json_t *st = json_object(), *arr;

	memcpy(peers[0].raw, KEY_A, 32);
	memcpy(peers[1].raw, KEY_C, 32);
	k.sc = SC_DUMP;
	cr_assert_eq(check_engine_new(&loop, &eng), 0);
	cr_assert_eq(check_new(eng, &cfg, on_done, &w, &c), 0);
	cr_assert_eq(check_start(c), 0);
	while (w.n == 0 && uv_run(&loop, UV_RUN_ONCE))
		;
	/* A's handshake (2023) is far older than 180 s; C never had one. */
	cr_assert_eq(w.r.reason, CHECK_UNREACHABLE, "%s", w.r.detail);
	cr_assert(strstr(w.r.detail, "0 of 2 peers alive, need 2: ord last handshake"), "%s",
		  w.r.detail);
	cr_assert(strstr(w.r.detail, "fra no handshake yet"), "%s", w.r.detail);
	check_status(c, st);
	cr_assert_str_eq(json_string_value(json_object_get(st, "backend")), "netlink");
	arr = json_object_get(st, "peers");
	cr_assert_eq(json_array_size(arr), 2);
	cr_assert_str_eq(json_string_value(json_object_get(json_array_get(arr, 0), "endpoint")),
			 "198.51.100.2:51820");
	cr_assert(json_is_null(json_object_get(json_array_get(arr, 1), "handshake_age_s")));
	json_decref(st);
	check_destroy(c);
	check_engine_close(eng);
}
