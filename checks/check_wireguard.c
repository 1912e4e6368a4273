/*
 * WireGuard peer checks. A probe reads the interface's peers (UAPI socket
 * when DIR/IFACE.sock exists, else kernel netlink) and passes when at least
 * min_peers of the watched peers are alive: a handshake no older than
 * max_handshake_age and, when max_rx_idle is set, rx_bytes advancing
 * within it. rx_bytes is compared across probes, so the check remembers
 * every watched peer; that state is also what the status hook shows.
 *
 * Both backends report a handshake as wall-clock time. The age is measured
 * on the monotonic clock from when the reported time last changed, so a
 * step of the wall clock neither ages a live peer nor revives a dead one;
 * the wall clock is read only to place a handshake the check has not seen
 * change (the first reading of a peer).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <jansson.h>

#include "checks/checks.h"

/* What the check knows of one watched peer, as of the last good read. */
struct wg_peer_state {
	uint8_t key[CHECK_WG_KEY_LEN];
	char key_b64[45];
	const char *name;           /* from the config, or NULL */
	bool present;               /* in the last read */
	bool seen;                  /* rx_bytes below holds a reading */
	bool alive;
	char why[64];               /* "alive", "no handshake yet", ... */
	uint64_t rx_bytes, tx_bytes;
	uint64_t rx_moved_us;       /* when rx_bytes last advanced (or was first seen) */
	uint64_t read_us;           /* when the last reading was taken */
	bool hs_seen;               /* hs_sec/hs_nsec hold a reported handshake */
	int64_t hs_sec;             /* as reported: wall clock */
	uint32_t hs_nsec;
	int64_t hs_at_us;           /* that handshake on the monotonic clock */
	int64_t handshake_age_ms;   /* -1: never */
	uint64_t rx_idle_ms;
	char endpoint[64];
	uint16_t keepalive_s;
};

struct wg_check {
	struct check *c;
	struct wg_peer_state *peers;
	size_t n_peers, cap;
	bool listed;                /* peers come from the config */
	const char *backend;        /* of the last read: "uapi", "netlink" */
	char path[128];             /* the UAPI socket */
	struct check_wg_uapi *uapi; /* the read in flight, if any */
	struct check_wg_nl *nl;
	uv_timer_t timer;           /* the probe's deadline; also reports start errors */
	int start_err;
	char start_detail[160];
};

/* ---- the device (shared with the backends) ---- */

struct check_wg_peer *check_wg_device_peer(struct check_wg_device *d,
					   const uint8_t key[CHECK_WG_KEY_LEN])
{
	struct check_wg_peer *p;

	for (size_t i = 0; i < d->n_peers; i++)
		if (memcmp(d->peers[i].key, key, CHECK_WG_KEY_LEN) == 0)
			return &d->peers[i];
	if (d->n_peers >= CHECK_WG_MAX_PEERS)
		return NULL;
	if (d->n_peers == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 8;

		if (!(p = realloc(d->peers, cap * sizeof(*p))))
			return NULL;
		d->peers = p;
		d->cap = cap;
	}
	p = &d->peers[d->n_peers++];
	memset(p, 0, sizeof(*p));
	memcpy(p->key, key, CHECK_WG_KEY_LEN);
	return p;
}

void check_wg_device_clear(struct check_wg_device *d)
{
	free(d->peers);
	memset(d, 0, sizeof(*d));
}

/* ---- peer state ---- */

static void b64_encode(const uint8_t *in, size_t n, char *out)
{
	static const char tab[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t o = 0;

	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0) |
			     (i + 2 < n ? in[i + 2] : 0);

		out[o++] = tab[v >> 18 & 63];
		out[o++] = tab[v >> 12 & 63];
		out[o++] = i + 1 < n ? tab[v >> 6 & 63] : '=';
		out[o++] = i + 2 < n ? tab[v & 63] : '=';
	}
	out[o] = 0;
}

static struct wg_peer_state *state_find(struct wg_check *w, const uint8_t *key)
{
	for (size_t i = 0; i < w->n_peers; i++)
		if (memcmp(w->peers[i].key, key, CHECK_WG_KEY_LEN) == 0)
			return &w->peers[i];
	return NULL;
}

static struct wg_peer_state *state_add(struct wg_check *w, const uint8_t *key,
				       const char *name)
{
	struct wg_peer_state *s;

	if (w->n_peers == w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 8;

		if (!(s = realloc(w->peers, cap * sizeof(*s))))
			return NULL;
		w->peers = s;
		w->cap = cap;
	}
	s = &w->peers[w->n_peers++];
	memset(s, 0, sizeof(*s));
	memcpy(s->key, key, CHECK_WG_KEY_LEN);
	b64_encode(key, CHECK_WG_KEY_LEN, s->key_b64);
	s->name = name;
	s->handshake_age_ms = -1;
	snprintf(s->why, sizeof(s->why), "no reading yet");
	return s;
}

static void format_endpoint(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN];

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)ss;

		inet_ntop(AF_INET, &in->sin_addr, a, sizeof(a));
		snprintf(buf, len, "%s:%u", a, ntohs(in->sin_port));
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)ss;

		inet_ntop(AF_INET6, &in6->sin6_addr, a, sizeof(a));
		snprintf(buf, len, "[%s]:%u", a, ntohs(in6->sin6_port));
	} else {
		buf[0] = 0;
	}
}

/* Place a handshake reported as wall-clock time on the monotonic clock. A
 * handshake seen to change happened after the previous reading, whatever
 * the wall clock says; only a first sighting trusts the wall clock. */
static void handshake_update(struct wg_peer_state *s, const struct check_wg_peer *p,
			     bool had_reading, uint64_t now_us, const struct timespec *wall)
{
	int64_t age_us;

	if (p->handshake_sec == 0) {
		s->hs_seen = false;
		s->handshake_age_ms = -1;
		return;
	}
	if (!s->hs_seen || p->handshake_sec != s->hs_sec || p->handshake_nsec != s->hs_nsec) {
		age_us = ((int64_t)wall->tv_sec - p->handshake_sec) * 1000000 +
			 ((int64_t)wall->tv_nsec - (int64_t)p->handshake_nsec) / 1000;
		if (age_us < 0)
			age_us = 0;
		if (had_reading && age_us > (int64_t)(now_us - s->read_us))
			age_us = (int64_t)(now_us - s->read_us);
		s->hs_at_us = (int64_t)now_us - age_us;
		s->hs_sec = p->handshake_sec;
		s->hs_nsec = p->handshake_nsec;
		s->hs_seen = true;
	}
	s->handshake_age_ms = ((int64_t)now_us - s->hs_at_us) / 1000;
}

/* Take one reading of a peer into its state. */
static void state_update(struct wg_peer_state *s, const struct check_wg_peer *p,
			 uint64_t now_us, const struct timespec *wall)
{
	bool had_reading = s->seen;

	s->present = true;
	if (!s->seen || p->rx_bytes != s->rx_bytes)
		s->rx_moved_us = now_us;
	s->seen = true;
	s->rx_bytes = p->rx_bytes;
	s->tx_bytes = p->tx_bytes;
	s->rx_idle_ms = (now_us - s->rx_moved_us) / 1000;
	s->keepalive_s = p->keepalive_s;
	format_endpoint(&p->endpoint, s->endpoint, sizeof(s->endpoint));
	handshake_update(s, p, had_reading, now_us, wall);
	s->read_us = now_us;
}

static void state_judge(struct wg_peer_state *s, const struct cfg_check *cfg)
{
	s->alive = false;
	if (!s->present)
		snprintf(s->why, sizeof(s->why), "not on the interface");
	else if (s->handshake_age_ms < 0)
		snprintf(s->why, sizeof(s->why), "no handshake yet");
	else if ((uint64_t)s->handshake_age_ms > cfg->max_handshake_age_ms)
		snprintf(s->why, sizeof(s->why), "last handshake %" PRId64 "s ago",
			 s->handshake_age_ms / 1000);
	else if (cfg->max_rx_idle_ms && s->rx_idle_ms > cfg->max_rx_idle_ms)
		snprintf(s->why, sizeof(s->why), "nothing received for %.1fs",
			 s->rx_idle_ms / 1000.0);
	else {
		s->alive = true;
		snprintf(s->why, sizeof(s->why), "alive");
	}
}

/* Fold a read into the peer states; without a list, peers that left the
 * interface are forgotten. */
static int states_update(struct wg_check *w, const struct check_wg_device *dev)
{
	uint64_t now = check_now_us();
	struct timespec wall;
	size_t j = 0;

	check_wall_now(&wall);
	for (size_t i = 0; i < w->n_peers; i++)
		w->peers[i].present = false;
	for (size_t i = 0; i < dev->n_peers; i++) {
		struct wg_peer_state *s = state_find(w, dev->peers[i].key);

		if (!s && !w->listed && !(s = state_add(w, dev->peers[i].key, NULL)))
			return -ENOMEM;
		if (s)
			state_update(s, &dev->peers[i], now, &wall);
	}
	for (size_t i = 0; i < w->n_peers; i++) {
		struct wg_peer_state *s = &w->peers[i];

		if (!s->present)
			s->seen = s->hs_seen = false;   /* a peer put back starts afresh */
		if (!s->present && !w->listed)
			continue;
		state_judge(s, w->c->cfg);
		w->peers[j++] = *s;
	}
	w->n_peers = j;
	return 0;
}

/* ---- the probe ---- */

static uint64_t timeout_ms(const struct check *c)
{
	return c->cfg->timeout_ms ? c->cfg->timeout_ms : 1000;
}

static void read_end(struct wg_check *w)
{
	check_wg_uapi_cancel(w->uapi);
	check_wg_nl_cancel(w->nl);
	w->uapi = NULL;
	w->nl = NULL;
	uv_timer_stop(&w->timer);
}

static enum check_reason reason_of(int err)
{
	switch (err) {
	case -ECONNREFUSED:
		return CHECK_REFUSED;
	case -EPROTO:
		return CHECK_PROTOCOL;
	case -ENODEV:
	case -EPFNOSUPPORT:
		return CHECK_UNREACHABLE;
	case -ENOMEM:
		return CHECK_INTERNAL;
	default:
		return CHECK_IO;
	}
}

static void report_peers(struct wg_check *w)
{
	const struct cfg_check *cfg = w->c->cfg;
	size_t alive = 0, need, len;
	char dead[128] = "";

	for (size_t i = 0; i < w->n_peers; i++) {
		const struct wg_peer_state *s = &w->peers[i];

		alive += s->alive;
		len = strlen(dead);
		if (!s->alive && len + 8 < sizeof(dead))
			snprintf(dead + len, sizeof(dead) - len, "%s%s %s", len ? "; " : "",
				 s->name ? s->name : s->key_b64, s->why);
	}
	need = cfg->min_peers ? cfg->min_peers : w->n_peers;
	if (w->n_peers == 0)
		check_report(w->c, CHECK_UNREACHABLE, 0, "%s has no peers", cfg->interface);
	else if (alive >= need)
		check_report(w->c, CHECK_OK, 0, "%zu of %zu peers alive on %s", alive,
			     w->n_peers, cfg->interface);
	else
		check_report(w->c, CHECK_UNREACHABLE, 0, "%zu of %zu peers alive, need %zu: %s",
			     alive, w->n_peers, need, dead);
}

static void on_read(void *arg, int err, const char *detail,
		    const struct check_wg_device *dev);

static void read_netlink(struct wg_check *w)
{
	int rc = check_wg_nl_get(check_engine_loop(w->c->engine), w->c->cfg->interface,
				 on_read, w, &w->nl);

	w->backend = "netlink";
	if (rc < 0) {
		read_end(w);
		check_report(w->c, CHECK_INTERNAL, 0, "netlink socket: %s", strerror(-rc));
	}
}

static void on_read(void *arg, int err, const char *detail,
		    const struct check_wg_device *dev)
{
	struct wg_check *w = arg;

	w->uapi = NULL;
	w->nl = NULL;
	if (err == -ENOENT && !strcmp(w->backend, "uapi")) {
		read_netlink(w);
		return;
	}
	read_end(w);
	if (err) {
		check_report(w->c, reason_of(err), 0, "%s", detail);
		return;
	}
	if (states_update(w, dev) < 0) {
		check_report(w->c, CHECK_INTERNAL, 0, "out of memory");
		return;
	}
	report_peers(w);
}

static void on_timer(uv_timer_t *t)
{
	struct wg_check *w = t->data;
	struct check *c = w->c;
	uint64_t want = timeout_ms(c) * 1000, took = check_now_us() - c->started_us;

	if (!c->running)
		return;
	if (w->start_err) {
		read_end(w);
		check_report(c, CHECK_INTERNAL, 0, "%s", w->start_detail);
		return;
	}
	/* The loop's clock may lag the probe's start: never end early. */
	if (took < want) {
		uv_timer_start(t, on_timer, (want - took + 999) / 1000, 0);
		return;
	}
	read_end(w);
	check_report(c, CHECK_TIMEOUT, 0, "no reply from %s within %llums",
		     strcmp(w->backend, "uapi") ? "netlink" : w->path,
		     (unsigned long long)timeout_ms(c));
}

static int wg_start(struct check *c)
{
	struct wg_check *w = c->priv;
	int rc;

	w->start_err = 0;
	w->backend = "uapi";
	rc = uv_timer_start(&w->timer, on_timer, timeout_ms(c), 0);
	if (rc < 0)
		return rc;
	/* ENOENT comes back through on_read, which then asks the kernel. */
	rc = check_wg_uapi_get(check_engine_loop(c->engine), w->path, on_read, w, &w->uapi);
	if (rc < 0) {
		/* Reported from the loop, never from inside check_start(). */
		w->start_err = rc;
		snprintf(w->start_detail, sizeof(w->start_detail), "UAPI %.100s: %s", w->path,
			 strerror(-rc));
		uv_timer_start(&w->timer, on_timer, 0, 0);
	}
	return 0;
}

static void wg_cancel(struct check *c)
{
	struct wg_check *w = c->priv;

	if (w)
		read_end(w);
}

static void on_timer_closed(uv_handle_t *h)
{
	struct wg_check *w = h->data;
	struct check *c = w->c;

	free(w->peers);
	free(w);
	check_freed(c);
}

static void wg_destroy(struct check *c)
{
	struct wg_check *w = c->priv;

	read_end(w);
	c->priv = NULL;
	uv_close((uv_handle_t *)&w->timer, on_timer_closed);
}

static int wg_init(struct check *c)
{
	const struct cfg_check *cfg = c->cfg;
	struct wg_check *w;

	if (!cfg->interface || !*cfg->interface || !cfg->uapi_dir)
		return -EINVAL;
	if (!(w = calloc(1, sizeof(*w))))
		return -ENOMEM;
	w->c = c;
	w->backend = "uapi";
	if ((size_t)snprintf(w->path, sizeof(w->path), "%s/%s.sock", cfg->uapi_dir,
			     cfg->interface) >= sizeof(w->path))
		goto fail;
	w->listed = cfg->n_peers > 0;
	for (size_t i = 0; i < cfg->n_peers; i++)
		if (!state_add(w, cfg->peers[i].raw, cfg->peers[i].name))
			goto fail;
	uv_timer_init(check_engine_loop(c->engine), &w->timer);
	w->timer.data = w;
	c->priv = w;
	return 0;
fail:
	free(w->peers);
	free(w);
	return -EINVAL;
}

/* ---- status ---- */

static void wg_status(const struct check *c, json_t *obj)
{
	const struct wg_check *w = c->priv;
	json_t *arr;

	if (!w)
		return;
	arr = json_array();
	json_object_set_new(obj, "interface", json_string(c->cfg->interface));
	json_object_set_new(obj, "backend", json_string(w->backend));
	for (size_t i = 0; i < w->n_peers; i++) {
		const struct wg_peer_state *s = &w->peers[i];
		json_t *p = json_object();

		if (s->name)
			json_object_set_new(p, "name", json_string(s->name));
		json_object_set_new(p, "key", json_string(s->key_b64));
		json_object_set_new(p, "state", json_string(s->why));
		json_object_set_new(p, "alive", json_boolean(s->alive));
		json_object_set_new(p, "handshake_age_s", s->handshake_age_ms < 0 || !s->present
				    ? json_null() : json_real(s->handshake_age_ms / 1000.0));
		json_object_set_new(p, "rx_idle_s", s->present
				    ? json_real(s->rx_idle_ms / 1000.0) : json_null());
		json_object_set_new(p, "endpoint", *s->endpoint && s->present
				    ? json_string(s->endpoint) : json_null());
		json_object_set_new(p, "rx_bytes", json_integer((json_int_t)s->rx_bytes));
		json_object_set_new(p, "tx_bytes", json_integer((json_int_t)s->tx_bytes));
		json_array_append_new(arr, p);
	}
	json_object_set_new(obj, "peers", arr);
}

const struct check_ops check_wireguard_ops = {
	.type = "wireguard",
	.init = wg_init,
	.start = wg_start,
	.cancel = wg_cancel,
	.destroy = wg_destroy,
	.status = wg_status,
};
