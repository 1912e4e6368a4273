/*
 * routes.c — pure parsers of what the fleet guard asks BIRD (fleet.c):
 * the paths of one prefix (`show route PREFIX all`), the BGP sessions
 * (`show protocols all`), the router id (`show status`), and who the
 * paths of a prefix say announces it.
 *
 * Only codes and the attribute names BIRD prints decide: a path begins
 * with a 1007 line that names its protocol in brackets ("[ibgp_lax1_v4
 * 2026-12-01 17:56:26 from 198.51.100.1]"), its attributes follow as
 * 1008/1012 lines ("\tType: BGP univ", "\tBGP.originator_id: ...",
 * "\tBGP.community: (64496,100) (65535,0)"). 8001 "Network not found" is
 * a prefix with no path at all: an answer, not an error.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bird-glue/bird.h"

static const char *skip_blanks(const char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	return s;
}

/* "a.b.c.d" at s (up to a blank or the end) into *id. */
static int parse_id(const char *s, uint32_t *id)
{
	char buf[20];
	size_t n = strcspn(s, " \t");
	struct in_addr a;

	if (!n || n >= sizeof(buf))
		return -EPROTO;
	memcpy(buf, s, n);
	buf[n] = '\0';
	if (inet_pton(AF_INET, buf, &a) != 1)
		return -EPROTO;
	*id = ntohl(a.s_addr);
	return 0;
}

/* The text after "NAME:" when line (blanks skipped) starts with it. */
static const char *attr(const char *line, const char *name)
{
	size_t n = strlen(name);

	line = skip_blanks(line);
	if (strncmp(line, name, n) || line[n] != ':')
		return NULL;
	return skip_blanks(line + n + 1);
}

/* "(64496,100) (65535,0)" or large "(64496, 1, 2)". */
static int parse_communities(const char *s, bool large, struct bird_route *rt)
{
	while (*(s = skip_blanks(s))) {
		unsigned long v[3];
		int n = 0;
		char *end;

		if (*s++ != '(')
			return -EPROTO;
		for (; n < 3; n++) {
			v[n] = strtoul(skip_blanks(s), &end, 10);
			if (end == skip_blanks(s))
				return -EPROTO;
			s = skip_blanks(end);
			if (*s == ')')
				break;
			if (*s++ != ',')
				return -EPROTO;
		}
		if (*s++ != ')' || n != (large ? 2 : 1))
			return -EPROTO;
		if (rt->n_communities < BIRD_ROUTE_COMMUNITIES) {
			struct cfg_community *c = &rt->communities[rt->n_communities++];

			memset(c, 0, sizeof(*c));
			c->large = large;
			for (int i = 0; i <= n; i++)
				c->v[i] = (uint32_t)v[i];
		}
	}
	return 0;
}

static int route_attr(struct bird_route *rt, const char *text)
{
	const char *v;

	if ((v = attr(text, "Type")))
		rt->bgp = !strncmp(v, "BGP", 3) && (v[3] == ' ' || !v[3]);
	else if ((v = attr(text, "BGP.originator_id"))) {
		if (parse_id(v, &rt->originator) < 0)
			return -EPROTO;
		rt->has_originator = true;
	} else if ((v = attr(text, "BGP.community")))
		return parse_communities(v, false, rt);
	else if ((v = attr(text, "BGP.large_community")))
		return parse_communities(v, true, rt);
	return 0;
}

/* A 1007 line that opens a path: its protocol is the first word in the
 * first brackets. "Table master4:" and "\tvia ..." open none. */
static bool path_line(const char *text, struct bird_route *rt)
{
	const char *b = strchr(text, '[');
	size_t n;

	if (!b || !strncmp(skip_blanks(text), "Table ", 6))
		return false;
	b++;
	n = strcspn(b, " ]");
	if (!n || n >= sizeof(rt->proto))
		return false;
	memset(rt, 0, sizeof(*rt));
	memcpy(rt->proto, b, n);
	return true;
}

int bird_parse_routes(const struct bird_reply *r, struct bird_route *out, size_t max,
		      size_t *total)
{
	struct bird_route cur;
	size_t n = 0, all = 0;
	bool open = false;

	if (total)
		*total = 0;
	if (r->code == 8001)
		return 0;               /* "Network not found" */
	if (!bird_code_ok(r->code))
		return -EINVAL;
	for (size_t i = 0; i < r->n_lines; i++) {
		const struct bird_line *l = &r->lines[i];
		struct bird_route next;

		if (l->code == 1007 && path_line(l->text, &next)) {
			if (open && n < max)
				out[n++] = cur;
			all += open;
			cur = next;
			open = true;
		} else if ((l->code == 1008 || l->code == 1012) && open) {
			if (route_attr(&cur, l->text) < 0)
				return -EPROTO;
		}
	}
	if (open) {
		if (n < max)
			out[n++] = cur;
		all++;
	}
	if (total)
		*total = all;
	return (int)n;
}

/* ---- show protocols all ---- */

static void peer_attr(struct bird_bgp_peer *p, const char *text, unsigned long *local,
		      unsigned long *remote)
{
	const char *v;

	if ((v = attr(text, "BGP state")))
		p->established = !strncmp(v, "Established", 11);
	else if ((v = attr(text, "Neighbor AS")))
		*remote = strtoul(v, NULL, 10);
	else if ((v = attr(text, "Local AS")))
		*local = strtoul(v, NULL, 10);
	else if ((v = attr(text, "Neighbor ID")))
		p->has_id = parse_id(v, &p->neighbor_id) == 0;
}

int bird_parse_bgp_peers(const struct bird_reply *r, struct bird_bgp_peer *out, size_t max,
			 size_t *total)
{
	struct bird_proto row;
	struct bird_bgp_peer cur;
	unsigned long local = 0, remote = 0;
	size_t n = 0, all = 0;
	bool open = false, heading = false;

	if (total)
		*total = 0;
	if (r->code == 8003)
		return 0;
	if (!bird_code_ok(r->code))
		return -EINVAL;
	for (size_t i = 0; i <= r->n_lines; i++) {
		const struct bird_line *l = i < r->n_lines ? &r->lines[i] : NULL;

		if (l && l->code == 2002)
			heading = true;
		if ((!l || l->code == 1002) && open) {
			cur.internal = local && local == remote;
			if (n < max)
				out[n++] = cur;
			all++;
			open = false;
		}
		if (!l)
			break;
		if (l->code == 1002) {
			int k = bird_parse_protocols(&(struct bird_reply){
				.code = 0, .lines = (struct bird_line[]){ { 2002, "" }, *l }, .n_lines = 2,
			}, &row, 1, NULL);

			if (k != 1)
				return -EPROTO;
			if (strcmp(row.proto, "BGP"))
				continue;
			memset(&cur, 0, sizeof(cur));
			snprintf(cur.name, sizeof(cur.name), "%s", row.name);
			local = remote = 0;
			open = true;
		} else if (l->code == 1006 && open) {
			peer_attr(&cur, l->text, &local, &remote);
		}
	}
	if (!heading)
		return -EPROTO;
	if (total)
		*total = all;
	return (int)n;
}

int bird_parse_router_id(const struct bird_reply *r, uint32_t *id)
{
	static const char word[] = "Router ID is ";

	if (!bird_code_ok(r->code))
		return -EINVAL;
	for (size_t i = 0; i < r->n_lines; i++)
		if (r->lines[i].code == 1011 && !strncmp(r->lines[i].text, word, sizeof(word) - 1))
			return parse_id(r->lines[i].text + sizeof(word) - 1, id);
	return -EPROTO;
}

/* ---- who announces ---- */

static bool has_community(const struct bird_route *rt, const struct cfg_communities *set)
{
	for (size_t i = 0; set && i < set->n; i++)
		for (size_t j = 0; j < rt->n_communities; j++)
			if (rt->communities[j].large == set->items[i].large &&
			    !memcmp(rt->communities[j].v, set->items[i].v, sizeof(set->items[i].v)))
				return true;
	return false;
}

static void add_id(uint32_t *ids, size_t *n, size_t max, uint32_t id)
{
	for (size_t i = 0; i < *n; i++)
		if (ids[i] == id)
			return;
	if (*n < max)
		ids[(*n)++] = id;
}

static void drop_id(uint32_t *ids, size_t *n, uint32_t id)
{
	for (size_t i = 0; i < *n; i++)
		if (ids[i] == id) {
			ids[i] = ids[--*n];
			return;
		}
}

void bird_fleet_announcers(const struct bird_route *routes, size_t n,
			   const struct bird_bgp_peer *peers, size_t n_peers, uint32_t self,
			   const struct cfg_communities *draining, struct bird_announcers *out)
{
	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < n; i++) {
		const struct bird_route *rt = &routes[i];
		const struct bird_bgp_peer *p = NULL;
		uint32_t id;

		for (size_t k = 0; k < n_peers && !p; k++)
			if (!strcmp(peers[k].name, rt->proto))
				p = &peers[k];
		/* the node's own static routes and anything not from iBGP are
		 * not another node of the fleet */
		if (!rt->bgp || !p || !p->internal)
			continue;
		if (rt->has_originator)
			id = rt->originator;
		else if (p->has_id)
			id = p->neighbor_id;
		else
			continue;
		if (id == self)
			continue;
		if (has_community(rt, draining))
			add_id(out->leaving, &out->n_leaving, BIRD_FLEET_MAX, id);
		else
			add_id(out->announcing, &out->n_announcing, BIRD_FLEET_MAX, id);
	}
	/* a node with a path that stays is not leaving */
	for (size_t i = 0; i < out->n_announcing; i++)
		drop_id(out->leaving, &out->n_leaving, out->announcing[i]);
}
