/*
 * fleet.c — the fleet guard's view: how many other nodes announce each
 * guarded service, as this node's BIRD sees them over iBGP.
 *
 * A connection of its own (a slow `show route` never queues ahead of a
 * withdrawal, and its timeout never drops sync's connection). Every
 * guard.interval, and whenever the daemon asks (a withdrawal to decide),
 * one round: `show status` (this node's router id), `show protocols all`
 * (the iBGP sessions and their neighbours' router ids), then `show route
 * PREFIX all` for each guarded prefix. A service's count is that of its
 * prefix with the fewest announcers. Router ids seen are remembered (an
 * hour after they were last seen) to rank this node among the fleet.
 *
 * A round that fails anywhere reports !ok with why; a round in which no
 * iBGP session is Established reports !visible: this node cannot see
 * the fleet, which is not the same as seeing it empty.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bird-glue/bird.h"

#define FORGET_MS (3600 * 1000)   /* a router id not seen this long leaves the ranking */
#define PEERS_MAX 256
#define PATHS_MAX 1024

struct fleet_prefix {
	char text[64];
	struct bird_announcers seen;
};

struct fleet_svc {
	char name[CFG_NAME_MAX];
	size_t *prefix;            /* indices into f->prefixes */
	size_t n_prefix;
	struct cfg_communities draining;
};

struct member {
	uint32_t id;
	uint64_t seen_ms;
};

struct bird_fleet {
	uv_loop_t *loop;
	char *socket;
	uint64_t timeout_ms;
	uint64_t interval_ms;
	struct bird_client *client;
	uv_timer_t timer;
	bird_fleet_cb cb;
	void *arg;
	bool closing;

	struct fleet_svc *svcs;
	size_t n_svcs;
	struct fleet_prefix *prefixes;
	size_t n_prefixes;

	/* the round in flight */
	unsigned gen;              /* a reconfig makes replies of older rounds stale */
	bool running, again;
	size_t step;               /* 0 status, 1 protocols, 2.. the prefixes */
	uint64_t asof_ms;
	uint32_t self;
	struct bird_bgp_peer *peers;
	size_t n_peers;
	bool visible;

	struct member members[BIRD_FLEET_MAX];
	size_t n_members;
};

struct fleet_cmd {
	struct bird_fleet *f;
	unsigned gen;
};

static void round_next(struct bird_fleet *f);

static void remember(struct bird_fleet *f, uint32_t id, uint64_t now)
{
	for (size_t i = 0; i < f->n_members; i++)
		if (f->members[i].id == id) {
			f->members[i].seen_ms = now;
			return;
		}
	if (f->n_members < BIRD_FLEET_MAX)
		f->members[f->n_members++] = (struct member){ id, now };
}

static void forget_old(struct bird_fleet *f, uint64_t now)
{
	size_t k = 0;

	for (size_t i = 0; i < f->n_members; i++)
		if (f->members[i].id == f->self || now - f->members[i].seen_ms < FORGET_MS)
			f->members[k++] = f->members[i];
	f->n_members = k;
}

static void report(struct bird_fleet *f, bool ok, const char *why)
{
	uint64_t now = uv_now(f->loop), asof = f->asof_ms;
	unsigned rank = 0, members = (unsigned)f->n_members;
	bool visible = ok && f->visible;

	/* cb may start the next round: everything is taken from this one first */
	if (ok) {
		remember(f, f->self, now);
		forget_old(f, now);
		for (size_t i = 0; i < f->n_members; i++)
			rank += f->members[i].id < f->self;
		members = (unsigned)f->n_members;
	}
	for (size_t i = 0; i < f->n_svcs && !f->closing; i++) {
		const struct fleet_svc *s = &f->svcs[i];
		struct bird_fleet_view v = { .ok = ok, .visible = visible, .asof_ms = asof,
					     .rank = rank, .members = members };
		bool first = true;

		if (!ok)
			snprintf(v.why, sizeof(v.why), "%s", why);
		else if (!visible)
			snprintf(v.why, sizeof(v.why), "no iBGP session established: the fleet is not in sight");
		for (size_t j = 0; ok && j < s->n_prefix; j++) {
			const struct bird_announcers *a = &f->prefixes[s->prefix[j]].seen;

			if (first || a->n_announcing < v.announcers)
				v.announcers = (unsigned)a->n_announcing;
			if (first || a->n_leaving > v.leaving)
				v.leaving = (unsigned)a->n_leaving;
			first = false;
		}
		f->cb(f->arg, s->name, &v);
	}
}

static void round_end(struct bird_fleet *f, bool ok, const char *why)
{
	f->running = false;
	free(f->peers);
	f->peers = NULL;
	f->n_peers = 0;
	report(f, ok, why);
	if (f->again && !f->closing) {
		f->again = false;
		bird_fleet_refresh(f);
	}
}

static int on_status(struct bird_fleet *f, const struct bird_reply *r)
{
	return bird_parse_router_id(r, &f->self);
}

static int on_protocols(struct bird_fleet *f, const struct bird_reply *r)
{
	uint64_t now = uv_now(f->loop);
	int n;

	if (!(f->peers = calloc(PEERS_MAX, sizeof(*f->peers))))
		return -ENOMEM;
	n = bird_parse_bgp_peers(r, f->peers, PEERS_MAX, NULL);
	if (n < 0)
		return n;
	f->n_peers = (size_t)n;
	f->visible = false;
	for (size_t i = 0; i < f->n_peers; i++) {
		if (!f->peers[i].internal)
			continue;
		f->visible |= f->peers[i].established;
		if (f->peers[i].has_id)
			remember(f, f->peers[i].neighbor_id, now);
	}
	return 0;
}

static int on_route(struct bird_fleet *f, struct fleet_prefix *p, const struct bird_reply *r)
{
	struct bird_route *rt = malloc(PATHS_MAX * sizeof(*rt));
	const struct cfg_communities *draining = NULL;
	uint64_t now = uv_now(f->loop);
	int n;

	if (!rt)
		return -ENOMEM;
	n = bird_parse_routes(r, rt, PATHS_MAX, NULL);
	if (n < 0) {
		free(rt);
		return n;
	}
	/* a prefix belongs to one service only (config.c) */
	for (size_t i = 0; i < f->n_svcs && !draining; i++)
		for (size_t j = 0; j < f->svcs[i].n_prefix; j++)
			if (&f->prefixes[f->svcs[i].prefix[j]] == p)
				draining = &f->svcs[i].draining;
	bird_fleet_announcers(rt, (size_t)n, f->peers, f->n_peers, f->self, draining, &p->seen);
	free(rt);
	for (size_t i = 0; i < p->seen.n_announcing; i++)
		remember(f, p->seen.announcing[i], now);
	for (size_t i = 0; i < p->seen.n_leaving; i++)
		remember(f, p->seen.leaving[i], now);
	return 0;
}

static const char *step_cmd(const struct bird_fleet *f, size_t step, char *buf, size_t len)
{
	if (step == 0)
		return "show status";
	if (step == 1)
		return "show protocols all";
	snprintf(buf, len, "show route %s all", f->prefixes[step - 2].text);
	return buf;
}

static void on_reply(void *arg, int err, const struct bird_reply *r)
{
	struct fleet_cmd *c = arg;
	struct bird_fleet *f = c->f;
	bool stale = c->gen != f->gen;
	char why[256], cmd[96];
	int rc;

	free(c);
	if (err == -ECANCELED || f->closing)
		return;
	if (stale)
		return;             /* a reload began a new round, already queued */
	if (err < 0) {
		snprintf(why, sizeof(why), "BIRD did not answer \"%s\": %s",
			 step_cmd(f, f->step, cmd, sizeof(cmd)), strerror(-err));
		round_end(f, false, why);
		return;
	}
	rc = f->step == 0 ? on_status(f, r) :
	     f->step == 1 ? on_protocols(f, r) : on_route(f, &f->prefixes[f->step - 2], r);
	if (rc < 0) {
		snprintf(why, sizeof(why), "BIRD's reply to \"%s\" not usable (%04d %.60s)",
			 step_cmd(f, f->step, cmd, sizeof(cmd)), r->code, r->text);
		round_end(f, false, why);
		return;
	}
	f->step++;
	round_next(f);
}

static void round_next(struct bird_fleet *f)
{
	struct fleet_cmd *c;
	char cmd[96], why[256];
	int rc;

	if (f->step >= 2 + f->n_prefixes) {
		round_end(f, true, NULL);
		return;
	}
	if (!(c = malloc(sizeof(*c)))) {
		round_end(f, false, "out of memory");
		return;
	}
	c->f = f;
	c->gen = f->gen;
	rc = bird_client_send(f->client, step_cmd(f, f->step, cmd, sizeof(cmd)), on_reply, c);
	if (rc < 0) {
		free(c);
		snprintf(why, sizeof(why), "cannot ask BIRD: %s", strerror(-rc));
		round_end(f, false, why);
	}
}

void bird_fleet_refresh(struct bird_fleet *f)
{
	if (!f || f->closing || !f->n_svcs)
		return;
	if (f->running) {
		f->again = true;   /* the round in flight may have begun too early */
		return;
	}
	f->running = true;
	f->step = 0;
	f->asof_ms = uv_now(f->loop);
	round_next(f);
}

static void on_tick(uv_timer_t *t)
{
	struct bird_fleet *f = t->data;

	if (!f->running)
		bird_fleet_refresh(f);
}

static void free_table(struct bird_fleet *f)
{
	for (size_t i = 0; i < f->n_svcs; i++) {
		free(f->svcs[i].prefix);
		free(f->svcs[i].draining.items);
	}
	free(f->svcs);
	free(f->prefixes);
	f->svcs = NULL;
	f->prefixes = NULL;
	f->n_svcs = f->n_prefixes = 0;
}

/* The guarded services, their prefixes and draining communities. */
static int build_table(struct bird_fleet *f, const struct config *cfg)
{
	uint64_t interval = 0;
	size_t np = 0;

	free_table(f);
	for (size_t i = 0; i < cfg->n_services; i++)
		np += cfg->services[i].n_prefixes;
	f->svcs = calloc(cfg->n_services + 1, sizeof(*f->svcs));
	f->prefixes = calloc(np + 1, sizeof(*f->prefixes));
	if (!f->svcs || !f->prefixes)
		goto fail;
	for (size_t i = 0; i < cfg->n_services; i++) {
		const struct cfg_service *cs = &cfg->services[i];
		const struct cfg_communities *d = &cs->communities[CFG_COMM_DRAINING];
		struct fleet_svc *s = &f->svcs[f->n_svcs];

		if (!cs->guard.min_announcers)
			continue;
		f->n_svcs++;
		snprintf(s->name, sizeof(s->name), "%s", cs->name);
		s->prefix = calloc(cs->n_prefixes + 1, sizeof(*s->prefix));
		s->draining.items = calloc(d->n + 1, sizeof(*d->items));
		if (!s->prefix || !s->draining.items)
			goto fail;
		memcpy(s->draining.items, d->items, d->n * sizeof(*d->items));
		s->draining.n = d->n;
		for (size_t j = 0; j < cs->n_prefixes; j++) {
			snprintf(f->prefixes[f->n_prefixes].text, sizeof(f->prefixes[0].text), "%s",
				 cs->prefixes[j].text);
			s->prefix[s->n_prefix++] = f->n_prefixes++;
		}
		if (!interval || cs->guard.interval_ms < interval)
			interval = cs->guard.interval_ms;
	}
	f->interval_ms = interval;
	return 0;
fail:
	free_table(f);
	return -ENOMEM;
}

static int settings(struct bird_fleet *f, const struct config *cfg, bool *new_socket)
{
	char *sock = strdup(cfg->bird.socket);

	if (!sock)
		return -ENOMEM;
	*new_socket = !f->socket || strcmp(f->socket, sock);
	free(f->socket);
	f->socket = sock;
	f->timeout_ms = cfg->bird.timeout_ms;
	return build_table(f, cfg);
}

static void start(struct bird_fleet *f, bool new_socket)
{
	if (new_socket || !f->n_svcs) {
		bird_client_close(f->client);   /* its commands end with -ECANCELED */
		f->client = NULL;
		f->running = false;
	}
	uv_timer_stop(&f->timer);
	if (!f->n_svcs)
		return;             /* nothing guarded: BIRD is not asked anything */
	if (!f->client && bird_client_new(f->loop, f->socket, f->timeout_ms, NULL, NULL,
					  &f->client) < 0)
		return;
	uv_timer_start(&f->timer, on_tick, f->interval_ms, f->interval_ms);
}

int bird_fleet_new(uv_loop_t *loop, const struct config *cfg, bird_fleet_cb cb, void *arg,
		   struct bird_fleet **out)
{
	struct bird_fleet *f = calloc(1, sizeof(*f));
	bool new_socket;

	if (!f)
		return -ENOMEM;
	f->loop = loop;
	f->cb = cb;
	f->arg = arg;
	if (settings(f, cfg, &new_socket) < 0) {
		free(f->socket);
		free(f);
		return -ENOMEM;
	}
	uv_timer_init(loop, &f->timer);
	f->timer.data = f;
	start(f, true);
	*out = f;
	return 0;
}

void bird_fleet_reconfig(struct bird_fleet *f, const struct config *cfg)
{
	bool new_socket = false;

	f->gen++;
	f->running = false;     /* replies of the old round are stale */
	f->again = false;
	free(f->peers);
	f->peers = NULL;
	f->n_peers = 0;
	if (settings(f, cfg, &new_socket) < 0)
		new_socket = true;  /* out of memory: the table is empty, nothing is asked */
	start(f, new_socket);
	bird_fleet_refresh(f);
}

static void on_closed(uv_handle_t *h)
{
	struct bird_fleet *f = h->data;

	free_table(f);
	free(f->peers);
	free(f->socket);
	free(f);
}

void bird_fleet_close(struct bird_fleet *f)
{
	if (!f)
		return;
	f->closing = true;
	bird_client_close(f->client);
	f->client = NULL;
	uv_close((uv_handle_t *)&f->timer, on_closed);
}
