/*
 * The kernel WireGuard backend: generic netlink through libnl-genl-3, on
 * the loop. A read resolves the "wireguard" family (CTRL_CMD_GETFAMILY),
 * then dumps WG_CMD_GET_DEVICE for the interface. The socket is
 * non-blocking and polled by a uv_poll_t; libnl parses what arrives.
 *
 * A dump may split the peer list over several messages, and one peer over
 * two (its allowed IPs go on in the next message, under the same public
 * key), so peers are merged by key. Peer nests are all of type 0.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/genetlink.h>
#include <linux/wireguard.h>
#include <netinet/in.h>
#include <netlink/genl/ctrl.h>
#include <netlink/genl/genl.h>
#include <netlink/netlink.h>

#include "checks/checks.h"

enum nl_phase { PH_FAMILY, PH_DUMP, PH_DONE };

struct check_wg_nl {
	uv_poll_t poll;
	bool poll_open;
	struct nl_sock *sk;
	struct nl_cb *cb;
	check_wg_cb done;
	void *arg;
	char ifname[16];
	enum nl_phase phase;
	int family;                 /* its id, once resolved */
	uint32_t seq;               /* of the request in flight */
	int err;                    /* set by a libnl callback: end with it */
	char detail[160];
	struct check_wg_device dev;
	bool over;
};

static void (*sock_hook)(struct nl_sock *sk, void *arg);
static void *sock_hook_arg;

void check_wg_nl_set_socket_hook(void (*hook)(struct nl_sock *sk, void *arg),
				 void *arg)
{
	sock_hook = hook;
	sock_hook_arg = arg;
}

static void nl_free(struct check_wg_nl *n)
{
	if (n->sk)
		nl_socket_free(n->sk);  /* closes the fd, now that nothing polls it */
	if (n->cb)
		nl_cb_put(n->cb);
	check_wg_device_clear(&n->dev);
	free(n);
}

static void on_closed(uv_handle_t *h)
{
	nl_free(h->data);
}

static void end(struct check_wg_nl *n)
{
	n->over = true;
	if (n->poll_open && !uv_is_closing((uv_handle_t *)&n->poll))
		uv_close((uv_handle_t *)&n->poll, on_closed);
}

/* Set by callbacks inside nl_recvmsgs; acted on once it has returned. */
static int fail(struct check_wg_nl *n, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(struct check_wg_nl *n, int err, const char *fmt, ...)
{
	va_list ap;

	if (!n->err) {
		n->err = err;
		va_start(ap, fmt);
		vsnprintf(n->detail, sizeof(n->detail), fmt, ap);
		va_end(ap);
	}
	return NL_STOP;
}

/* Each socket is used for one read: anything not answering our request is
 * dropped. */
static int on_seq_check(struct nl_msg *msg, void *arg)
{
	struct check_wg_nl *n = arg;

	return nlmsg_hdr(msg)->nlmsg_seq == n->seq ? NL_OK : NL_SKIP;
}

static int on_error(struct sockaddr_nl *nla, struct nlmsgerr *e, void *arg)
{
	struct check_wg_nl *n = arg;
	int err = e->error < 0 ? e->error : -EPROTO;

	(void)nla;
	if (n->phase == PH_FAMILY && err == -ENOENT)
		return fail(n, -EPFNOSUPPORT, "no interface %s: no UAPI socket, and the kernel has no wireguard netlink family (module not loaded)",
			    n->ifname);
	if (n->phase == PH_DUMP && err == -ENODEV)
		return fail(n, -ENODEV, "no interface %s (no UAPI socket, and the kernel has no such device)",
			    n->ifname);
	if (n->phase == PH_DUMP && err == -EOPNOTSUPP)
		return fail(n, -ENODEV, "%s is not a WireGuard interface", n->ifname);
	return fail(n, err, "netlink %s for %s: %s",
		    n->phase == PH_FAMILY ? "CTRL_CMD_GETFAMILY" : "WG_CMD_GET_DEVICE",
		    n->ifname, strerror(-err));
}

static int family_reply(struct check_wg_nl *n, struct nl_msg *msg)
{
	struct nlattr *tb[CTRL_ATTR_MAX + 1];

	if (genlmsg_parse(nlmsg_hdr(msg), 0, tb, CTRL_ATTR_MAX, NULL) < 0 ||
	    !tb[CTRL_ATTR_FAMILY_ID] || nla_len(tb[CTRL_ATTR_FAMILY_ID]) != 2)
		return fail(n, -EPROTO, "netlink: malformed CTRL_CMD_GETFAMILY reply");
	n->family = nla_get_u16(tb[CTRL_ATTR_FAMILY_ID]);
	n->phase = PH_DUMP;
	return NL_STOP;   /* the dump request goes out once libnl has returned */
}

static bool endpoint_ok(const struct nlattr *a)
{
	const struct sockaddr *sa = nla_data(a);
	int len = nla_len(a);

	if (len < (int)sizeof(sa->sa_family))
		return false;
	if (sa->sa_family == AF_INET)
		return len >= (int)sizeof(struct sockaddr_in);
	if (sa->sa_family == AF_INET6)
		return len >= (int)sizeof(struct sockaddr_in6);
	return false;
}

static int nl_err(char *err, size_t errlen, int rc, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int nl_err(char *err, size_t errlen, int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return rc;
}

/* One nest of WGDEVICE_A_PEERS; only the attributes present are set. */
static int peer_nest(struct check_wg_device *dev, struct nlattr *nest,
		     char *err, size_t errlen)
{
	struct nlattr *tb[WGPEER_A_MAX + 1];
	struct check_wg_peer *p;
	struct nlattr *a;

	if (nla_parse_nested(tb, WGPEER_A_MAX, nest, NULL) < 0 ||
	    !tb[WGPEER_A_PUBLIC_KEY] || nla_len(tb[WGPEER_A_PUBLIC_KEY]) != CHECK_WG_KEY_LEN)
		return nl_err(err, errlen, -EPROTO, "netlink: a peer without a 32-byte public key");
	if (!(p = check_wg_device_peer(dev, nla_data(tb[WGPEER_A_PUBLIC_KEY]))))
		return nl_err(err, errlen, -ENOMEM, "netlink: more than %d peers, or out of memory",
			      CHECK_WG_MAX_PEERS);
	if ((a = tb[WGPEER_A_ENDPOINT])) {
		if (!endpoint_ok(a))
			return nl_err(err, errlen, -EPROTO,
				      "netlink: a peer endpoint is not a sockaddr_in/in6");
		memset(&p->endpoint, 0, sizeof(p->endpoint));
		memcpy(&p->endpoint, nla_data(a),
		       ((const struct sockaddr *)nla_data(a))->sa_family == AF_INET
		       ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6));
	}
	if ((a = tb[WGPEER_A_LAST_HANDSHAKE_TIME])) {
		int64_t ts[2];

		if (nla_len(a) != (int)sizeof(ts))
			return nl_err(err, errlen, -EPROTO, "netlink: a handshake time of %d bytes",
				      nla_len(a));
		memcpy(ts, nla_data(a), sizeof(ts));
		p->handshake_sec = ts[0];
		p->handshake_nsec = ts[1] >= 0 && ts[1] < 1000000000 ? (uint32_t)ts[1] : 0;
	}
	if ((a = tb[WGPEER_A_RX_BYTES]) && nla_len(a) == 8)
		p->rx_bytes = nla_get_u64(a);
	if ((a = tb[WGPEER_A_TX_BYTES]) && nla_len(a) == 8)
		p->tx_bytes = nla_get_u64(a);
	if ((a = tb[WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL]) && nla_len(a) == 2)
		p->keepalive_s = nla_get_u16(a);
	return 0;
}

int check_wg_nl_parse(const void *msg, size_t len, struct check_wg_device *dev,
		      char *err, size_t errlen)
{
	/* libnl trusts nlmsg_len: it must lie within what was received */
	struct nlmsghdr *nlh = (struct nlmsghdr *)msg;
	struct nlattr *tb[WGDEVICE_A_MAX + 1], *nest;
	int rem, rc;

	if (len < sizeof(*nlh) || nlh->nlmsg_len < sizeof(*nlh) || nlh->nlmsg_len > len ||
	    genlmsg_parse(nlh, 0, tb, WGDEVICE_A_MAX, NULL) < 0)
		return nl_err(err, errlen, -EPROTO, "netlink: malformed WG_CMD_GET_DEVICE reply");
	if (!tb[WGDEVICE_A_PEERS])
		return 0;
	nla_for_each_nested(nest, tb[WGDEVICE_A_PEERS], rem) {
		if ((rc = peer_nest(dev, nest, err, errlen)) < 0)
			return rc;
	}
	return 0;
}

static int device_reply(struct check_wg_nl *n, struct nl_msg *msg)
{
	struct nlmsghdr *nlh = nlmsg_hdr(msg);
	char detail[sizeof(n->detail)];
	int rc = check_wg_nl_parse(nlh, nlh->nlmsg_len, &n->dev, detail, sizeof(detail));

	return rc < 0 ? fail(n, rc, "%s", detail) : NL_OK;
}

static int on_valid(struct nl_msg *msg, void *arg)
{
	struct check_wg_nl *n = arg;

	if (n->phase == PH_FAMILY)
		return family_reply(n, msg);
	if (n->phase == PH_DUMP)
		return device_reply(n, msg);
	return NL_SKIP;
}

static int on_finish(struct nl_msg *msg, void *arg)
{
	struct check_wg_nl *n = arg;

	(void)msg;
	if (n->phase != PH_DUMP)
		return fail(n, -EPROTO, "netlink: NLMSG_DONE where a family reply was due");
	n->phase = PH_DONE;
	return NL_STOP;
}

/* The request of the current phase. 0 or a libnl error. */
static int send_request(struct check_wg_nl *n)
{
	struct nl_msg *msg = nlmsg_alloc();
	int rc = -NLE_NOMEM;

	if (!msg)
		return rc;
	if (n->phase == PH_FAMILY) {
		if (!genlmsg_put(msg, NL_AUTO_PORT, NL_AUTO_SEQ, GENL_ID_CTRL, 0, 0,
				 CTRL_CMD_GETFAMILY, 1) ||
		    nla_put_string(msg, CTRL_ATTR_FAMILY_NAME, WG_GENL_NAME) < 0)
			goto out;
	} else {
		if (!genlmsg_put(msg, NL_AUTO_PORT, NL_AUTO_SEQ, n->family, 0, NLM_F_DUMP,
				 WG_CMD_GET_DEVICE, WG_GENL_VERSION) ||
		    nla_put_string(msg, WGDEVICE_A_IFNAME, n->ifname) < 0)
			goto out;
	}
	rc = nl_send_auto(n->sk, msg);
	n->seq = nlmsg_hdr(msg)->nlmsg_seq;
out:
	nlmsg_free(msg);
	return rc < 0 ? rc : 0;
}

static void finish(struct check_wg_nl *n, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void finish(struct check_wg_nl *n, int err, const char *fmt, ...)
{
	char detail[160];
	va_list ap;

	if (n->over)
		return;
	end(n);
	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	n->done(n->arg, err, detail, err ? NULL : &n->dev);
}

static void on_readable(uv_poll_t *h, int status, int events)
{
	struct check_wg_nl *n = h->data;
	enum nl_phase before = n->phase;
	int rc;

	(void)events;
	if (n->over)
		return;
	if (status < 0) {
		finish(n, status, "netlink socket: %s", uv_strerror(status));
		return;
	}
	rc = nl_recvmsgs(n->sk, n->cb);
	if (n->err)
		finish(n, n->err, "%s", n->detail);
	else if (rc < 0)
		finish(n, -EPROTO, "netlink: %s", nl_geterror(rc));
	else if (n->phase == PH_DONE)
		finish(n, 0, "netlink %s", n->ifname);
	else if (n->phase != before && (rc = send_request(n)) < 0)
		finish(n, -EIO, "netlink: sending WG_CMD_GET_DEVICE: %s", nl_geterror(rc));
}

static int nl_setup(struct check_wg_nl *n)
{
	if (!(n->cb = nl_cb_alloc(NL_CB_DEFAULT)) || !(n->sk = nl_socket_alloc_cb(n->cb)))
		return -NLE_NOMEM;
	nl_cb_set(n->cb, NL_CB_SEQ_CHECK, NL_CB_CUSTOM, on_seq_check, n);
	nl_cb_set(n->cb, NL_CB_VALID, NL_CB_CUSTOM, on_valid, n);
	nl_cb_set(n->cb, NL_CB_FINISH, NL_CB_CUSTOM, on_finish, n);
	nl_cb_err(n->cb, NL_CB_CUSTOM, on_error, n);
	nl_socket_disable_auto_ack(n->sk);
	return nl_connect(n->sk, NETLINK_GENERIC);
}

int check_wg_nl_get(uv_loop_t *loop, const char *ifname, check_wg_cb cb,
		    void *arg, struct check_wg_nl **out)
{
	struct check_wg_nl *n;
	int rc;

	*out = NULL;
	if (strlen(ifname) >= sizeof(n->ifname))
		return -ENAMETOOLONG;
	if (!(n = calloc(1, sizeof(*n))))
		return -ENOMEM;
	n->done = cb;
	n->arg = arg;
	snprintf(n->ifname, sizeof(n->ifname), "%s", ifname);
	rc = nl_setup(n);
	if (rc < 0)
		goto fail;
	if (sock_hook)
		sock_hook(n->sk, sock_hook_arg);
	if ((rc = nl_socket_set_nonblocking(n->sk)) < 0 || (rc = send_request(n)) < 0)
		goto fail;
	if ((rc = uv_poll_init_socket(loop, &n->poll, nl_socket_get_fd(n->sk))) < 0) {
		nl_free(n);
		return rc;
	}
	n->poll_open = true;
	n->poll.data = n;
	if ((rc = uv_poll_start(&n->poll, UV_READABLE, on_readable)) < 0) {
		end(n);
		return rc;
	}
	*out = n;
	return 0;
fail:
	nl_free(n);
	return rc == -NLE_NOMEM ? -ENOMEM : -EIO;
}

void check_wg_nl_cancel(struct check_wg_nl *n)
{
	if (n)
		end(n);
}
