/*
 * lg/fleet.c — the fleet view: for each anycast service, every node that
 * announces it now and in which state, read from the routes of its
 * prefixes. With ADD-PATH on the iBGP sessions a node has one path per
 * announcer: the reflector every node's, a client its own, the
 * reflector's and (through it) the others'. Who announced a path:
 *
 *   healthd_*        this node (its own static protocol)
 *   originator_id    the node whose BIRD router id it is (reflected)
 *   ibgp_<node>_v4/6 that peer (the session it came over)
 *
 * The state is the service's community set the path carries, checked in
 * the order draining, degraded, up (MESH.md: the communities say it).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lg/lg.h"

const char *lg_fleet_state_str(enum lg_fleet_state s)
{
	switch (s) {
	case LG_FLEET_UP: return "up";
	case LG_FLEET_DEGRADED: return "degraded";
	case LG_FLEET_DRAINING: return "draining";
	default: return "unknown";
	}
}

static bool has(const struct lg_route *r, const struct cfg_community *c)
{
	if (c->large) {
		for (size_t i = 0; i < r->n_large; i++)
			if (r->large[i][0] == c->v[0] && r->large[i][1] == c->v[1] &&
			    r->large[i][2] == c->v[2])
				return true;
		return false;
	}
	for (size_t i = 0; i < r->n_comm; i++)
		if (r->comm[i][0] == c->v[0] && r->comm[i][1] == c->v[1])
			return true;
	return false;
}

/* every community of a non-empty set on the route */
static bool carries(const struct lg_route *r, const struct cfg_communities *set)
{
	if (!set->n)
		return false;
	for (size_t i = 0; i < set->n; i++)
		if (!has(r, &set->items[i]))
			return false;
	return true;
}

static enum lg_fleet_state state_of(const struct lg_service *s, const struct lg_route *r)
{
	if (carries(r, &s->communities[CFG_COMM_DRAINING]))
		return LG_FLEET_DRAINING;
	if (carries(r, &s->communities[CFG_COMM_DEGRADED]))
		return LG_FLEET_DEGRADED;
	if (carries(r, &s->communities[CFG_COMM_UP]) || !s->communities[CFG_COMM_UP].n)
		return LG_FLEET_UP;
	return LG_FLEET_UNKNOWN;
}

static const char *node_by_router_id(const struct lg_conf *c, const char *id)
{
	for (size_t i = 0; i < c->n_nodes; i++)
		if (!strcmp(c->nodes[i].router_id.text, id))
			return c->nodes[i].name;
	return NULL;
}

/* "ibgp_ord1_v4" -> "ord1" into out */
static bool ibgp_peer(const char *proto, char *out, size_t len)
{
	size_t n = strlen(proto);

	if (strncmp(proto, "ibgp_", 5) || n < 9 || proto[n - 3] != '_' || proto[n - 2] != 'v' ||
	    (proto[n - 1] != '4' && proto[n - 1] != '6'))
		return false;
	snprintf(out, len, "%.*s", (int)(n - 8), proto + 5);
	return true;
}

int lg_fleet_add(struct lg_fleet *f, const struct lg_conf *c, const struct lg_service *s,
		 const struct lg_routes *routes)
{
	for (size_t i = 0; i < routes->n; i++) {
		const struct lg_route *r = &routes->items[i];
		struct lg_fleet_row row = { .service = s->name, .primary = r->primary };
		const char *who;

		if (!strncmp(r->from_protocol, "healthd_", 8)) {
			snprintf(row.node, sizeof(row.node), "%s", c->node);
			snprintf(row.how, sizeof(row.how), "local");
		} else if (r->originator_id[0]) {
			who = node_by_router_id(c, r->originator_id);
			snprintf(row.node, sizeof(row.node), "%s", who ? who : r->originator_id);
			snprintf(row.how, sizeof(row.how), "reflected");
		} else if (ibgp_peer(r->from_protocol, row.node, sizeof(row.node))) {
			snprintf(row.how, sizeof(row.how), "peer");
		} else {
			continue;       /* not a mesh node's announcement */
		}
		snprintf(row.prefix, sizeof(row.prefix), "%s", r->network);
		snprintf(row.via, sizeof(row.via), "%s", r->from_protocol);
		row.state = state_of(s, r);
		if (f->n == f->cap) {
			size_t cap = f->cap ? f->cap * 2 : 16;
			struct lg_fleet_row *rows = realloc(f->rows, cap * sizeof(*rows));

			if (!rows)
				return -ENOMEM;
			f->rows = rows;
			f->cap = cap;
		}
		f->rows[f->n++] = row;
	}
	return 0;
}

static int row_cmp(const void *a, const void *b)
{
	const struct lg_fleet_row *x = a, *y = b;
	int d;

	if ((d = strcmp(x->service, y->service)) || (d = strcmp(x->node, y->node)) ||
	    (d = strcmp(x->prefix, y->prefix)))
		return d;
	return (int)y->primary - (int)x->primary;
}

void lg_fleet_finish(struct lg_fleet *f)
{
	size_t o = 0;

	if (!f->n)
		return;
	qsort(f->rows, f->n, sizeof(*f->rows), row_cmp);
	for (size_t i = 0; i < f->n; i++) {
		const struct lg_fleet_row *p = o ? &f->rows[o - 1] : NULL;

		if (p && !strcmp(p->service, f->rows[i].service) && !strcmp(p->node, f->rows[i].node) &&
		    !strcmp(p->prefix, f->rows[i].prefix))
			continue;       /* the same announcement over two paths */
		f->rows[o++] = f->rows[i];
	}
	f->n = o;
}

void lg_fleet_free(struct lg_fleet *f)
{
	free(f->rows);
	memset(f, 0, sizeof(*f));
}
