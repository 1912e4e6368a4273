/*
 * lg/parse.c — BIRD 2's replies to the looking glass's commands, parsed
 * into structs (pure: no I/O). The reply is bird-glue's: lines with the
 * code of their block. What each block holds (tests/unit/fixtures/lg/,
 * captured from real BIRDs by tests/fixtures/capture-lg.sh):
 *
 *   1007  a route line: "NET  TYPE [PROTO SINCE [from ADDR]] [*] (PREF) [ORIGIN]",
 *         NET left out for the further paths of the same network; the
 *         "Table master4:" line; "\tvia ADDR on IF" / "\tdev IF"
 *   1008  "\tType: BGP univ"
 *   1012  "\tBGP.NAME: VALUE" attributes
 *   1002  a protocol row; 1006 its details (`show protocols all`)
 *   1000/1011  `show status`; 0014 the total of `show route count`
 *
 * Fields are split on whitespace and only ever copied into bounded
 * buffers; a line that does not fit its shape is skipped, never guessed.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lg/lg.h"

#define COPY(dst, src) ascii_copy((dst), sizeof(dst), (src))

/* Only printable ASCII is kept (the rest becomes '?'): what BIRD prints
 * is ASCII but for descriptions, and JSON wants valid UTF-8. */
static void ascii_copy(char *dst, size_t cap, const char *src)
{
	size_t i;

	for (i = 0; src[i] && i + 1 < cap; i++)
		dst[i] = (unsigned char)src[i] >= 0x20 && (unsigned char)src[i] < 0x7f ? src[i] : '?';
	dst[i] = '\0';
}

static const char *skip_ws(const char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	return s;
}

/* The next whitespace-separated word of *s into w; false at the end. */
static bool word(const char **s, char *w, size_t len)
{
	const char *p = skip_ws(*s), *e = p;

	while (*e && *e != ' ' && *e != '\t')
		e++;
	if (e == p)
		return false;
	char tmp[512];

	snprintf(tmp, sizeof(tmp), "%.*s", (int)(e - p), p);
	ascii_copy(w, len, tmp);
	*s = e;
	return true;
}

static bool is_date(const char *w)
{
	return strlen(w) == 10 && isdigit((unsigned char)w[0]) && w[4] == '-' && w[7] == '-';
}

/* ---- routes ---- */

static struct lg_route *new_route(struct lg_routes *rs)
{
	if (rs->n == rs->cap) {
		size_t cap = rs->cap ? rs->cap * 2 : 8;
		struct lg_route *r = realloc(rs->items, cap * sizeof(*r));

		if (!r)
			return NULL;
		rs->items = r;
		rs->cap = cap;
	}
	memset(&rs->items[rs->n], 0, sizeof(rs->items[0]));
	return &rs->items[rs->n++];
}

/* "203.0.113.0/24   unicast [ibgp_ord1_v4 2026-12-01 17:56:46 from 192.0.2.130] * (100) [i]" */
static int route_line(struct lg_routes *rs, const char *text, const char *last_net)
{
	const char *p = text, *open, *close;
	char w[128], inside[256];
	struct lg_route *r;

	if (!(open = strchr(text, '[')) || !(close = strchr(open, ']')))
		return 0;               /* not a route line */
	if (!(r = new_route(rs)))
		return -ENOMEM;
	if (*text != ' ' && *text != '\t') {
		word(&p, w, sizeof(w));
		COPY(r->network, w);
	} else {
		COPY(r->network, last_net);
	}
	if (word(&p, w, sizeof(w)) && p <= open)
		COPY(r->type, w);
	snprintf(inside, sizeof(inside), "%.*s", (int)(close - open - 1), open + 1);
	p = inside;
	if (word(&p, w, sizeof(w)))
		COPY(r->from_protocol, w);
	if (word(&p, w, sizeof(w))) {
		if (is_date(w)) {
			char t[16];

			if (word(&p, t, sizeof(t)))
				snprintf(r->age, sizeof(r->age), "%.10s %s", w, t);
			else
				COPY(r->age, w);
		} else {
			COPY(r->age, w);
		}
	}
	if (word(&p, w, sizeof(w)) && !strcmp(w, "from") && word(&p, w, sizeof(w)))
		COPY(r->learnt_from, w);
	p = close + 1;
	while (word(&p, w, sizeof(w))) {
		if (!strcmp(w, "*"))
			r->primary = true;
		else if (w[0] == '(' && isdigit((unsigned char)w[1]))
			r->metric = atoi(w + 1);
	}
	return 0;
}

static void comm_pairs(struct lg_route *r, const char *v)
{
	/* "(64496,100) (65535,0)" */
	for (const char *p = strchr(v, '('); p && r->n_comm < LG_COMM_MAX; p = strchr(p + 1, '(')) {
		unsigned a, b;

		if (sscanf(p, "(%u,%u)", &a, &b) == 2 && a < 65536 && b < 65536) {
			r->comm[r->n_comm][0] = a;
			r->comm[r->n_comm][1] = b;
			r->n_comm++;
		}
	}
}

static void large_triples(struct lg_route *r, const char *v)
{
	/* "(64496, 1, 2) (64496, 3, 4)" */
	for (const char *p = strchr(v, '('); p && r->n_large < LG_COMM_MAX; p = strchr(p + 1, '(')) {
		unsigned a, b, c;

		if (sscanf(p, "(%u, %u, %u)", &a, &b, &c) == 3) {
			r->large[r->n_large][0] = a;
			r->large[r->n_large][1] = b;
			r->large[r->n_large][2] = c;
			r->n_large++;
		}
	}
}

static void ext_triples(struct lg_route *r, const char *v)
{
	/* "(rt, 64496, 7) (ro, 192.0.2.1, 3)" */
	for (const char *p = strchr(v, '('); p && r->n_ext < LG_COMM_MAX; p = strchr(p + 1, '(')) {
		char a[24], b[24], c[24];

		if (sscanf(p, "(%23[^,], %23[^,], %23[^)])", a, b, c) == 3) {
			COPY(r->ext[r->n_ext][0], a);
			COPY(r->ext[r->n_ext][1], b);
			COPY(r->ext[r->n_ext][2], c);
			r->n_ext++;
		}
	}
}

static void bgp_attr(struct lg_route *r, const char *text)
{
	const char *p = skip_ws(text), *colon;
	char name[48];

	if (strncmp(p, "BGP.", 4) || !(colon = strchr(p, ':')))
		return;
	snprintf(name, sizeof(name), "%.*s", (int)(colon - p - 4), p + 4);
	p = skip_ws(colon + 1);
	r->bgp = true;
	if (!strcmp(name, "origin"))
		COPY(r->origin, p);
	else if (!strcmp(name, "as_path"))
		COPY(r->as_path, p);
	else if (!strcmp(name, "next_hop"))
		COPY(r->next_hop, p);
	else if (!strcmp(name, "local_pref"))
		COPY(r->local_pref, p);
	else if (!strcmp(name, "med"))
		COPY(r->med, p);
	else if (!strcmp(name, "originator_id"))
		COPY(r->originator_id, p);
	else if (!strcmp(name, "cluster_list"))
		COPY(r->cluster_list, p);
	else if (!strcmp(name, "community"))
		comm_pairs(r, p);
	else if (!strcmp(name, "large_community"))
		large_triples(r, p);
	else if (!strcmp(name, "ext_community"))
		ext_triples(r, p);
}

int lg_parse_routes(const struct bird_reply *rep, struct lg_routes *rs)
{
	char last_net[64] = "";

	memset(rs, 0, sizeof(*rs));
	if (rep->code == 8001)
		return 0;               /* Network not found */
	if (!bird_code_ok(rep->code))
		return -EPROTO;
	for (size_t i = 0; i < rep->n_lines; i++) {
		const struct bird_line *l = &rep->lines[i];
		struct lg_route *cur = rs->n ? &rs->items[rs->n - 1] : NULL;
		const char *t = l->text, *s = skip_ws(t);
		char w[64];

		if (l->code == 1007) {
			if (!strncmp(t, "Table ", 6)) {
				if (!rs->table[0]) {
					COPY(rs->table, t + 6);
					rs->table[strcspn(rs->table, ":")] = '\0';
				}
				continue;
			}
			if (*t == '\t' && cur) {
				const char *p = s;

				if (word(&p, w, sizeof(w)) && !strcmp(w, "via") && !cur->gateway[0]) {
					word(&p, cur->gateway, sizeof(cur->gateway));
					if (word(&p, w, sizeof(w)) && !strcmp(w, "on"))
						word(&p, cur->interface, sizeof(cur->interface));
				} else if (!strcmp(w, "dev") && !cur->interface[0]) {
					word(&p, cur->interface, sizeof(cur->interface));
				}
				continue;
			}
			if (route_line(rs, t, last_net) < 0) {
				lg_routes_free(rs);
				return -ENOMEM;
			}
			if (rs->n)
				COPY(last_net, rs->items[rs->n - 1].network);
		} else if (l->code == 1008 && cur && !strncmp(s, "Type:", 5)) {
			COPY(cur->source, skip_ws(s + 5));
		} else if (l->code == 1012 && cur) {
			bgp_attr(cur, t);
		}
	}
	return 0;
}

void lg_routes_free(struct lg_routes *rs)
{
	free(rs->items);
	memset(rs, 0, sizeof(*rs));
}

/* ---- protocols ---- */

static struct lg_protocol *new_proto(struct lg_protocols *ps)
{
	if (ps->n == ps->cap) {
		size_t cap = ps->cap ? ps->cap * 2 : 16;
		struct lg_protocol *p = realloc(ps->items, cap * sizeof(*p));

		if (!p)
			return NULL;
		ps->items = p;
		ps->cap = cap;
	}
	memset(&ps->items[ps->n], 0, sizeof(ps->items[0]));
	return &ps->items[ps->n++];
}

/* "ibgp_ord1_v4 BGP        ---        up     2026-12-01 17:56:46  Established" */
static int proto_row(struct lg_protocols *ps, const char *text)
{
	struct lg_protocol *p = new_proto(ps);
	const char *s = text;
	char w[64];

	if (!p)
		return -ENOMEM;
	word(&s, p->name, sizeof(p->name));
	word(&s, p->proto, sizeof(p->proto));
	word(&s, p->table, sizeof(p->table));
	word(&s, p->state, sizeof(p->state));
	if (word(&s, w, sizeof(w))) {
		const char *keep = s;
		char t[16];

		if (is_date(w) && word(&s, t, sizeof(t))) {
			snprintf(p->since, sizeof(p->since), "%.10s %s", w, t);
		} else {
			COPY(p->since, w);
			s = keep;
		}
	}
	s = skip_ws(s);
	COPY(p->info, s);
	for (size_t n = strlen(p->info); n && p->info[n - 1] == ' '; n--)
		p->info[n - 1] = '\0';
	return 0;
}

/* "Routes:         1 imported, 0 filtered, 2 exported, 0 preferred" */
static void channel_routes(struct lg_channel *ch, const char *v)
{
	const char *p = v;
	char num[24], what[24];

	while (word(&p, num, sizeof(num)) && word(&p, what, sizeof(what))) {
		long n = strtol(num, NULL, 10);
		size_t wl = strcspn(what, ",");

		what[wl] = '\0';
		if (!strcmp(what, "imported"))
			ch->imported = n;
		else if (!strcmp(what, "filtered"))
			ch->filtered = n;
		else if (!strcmp(what, "exported"))
			ch->exported = n;
		else if (!strcmp(what, "preferred"))
			ch->preferred = n;
	}
}

static void proto_detail(struct lg_protocol *p, const char *text)
{
	const char *s = skip_ws(text), *colon = strchr(s, ':');
	char key[48];

	if (!strncmp(s, "Channel ", 8)) {
		if (p->n_channels < sizeof(p->channels) / sizeof(p->channels[0]))
			COPY(p->channels[p->n_channels++].name, skip_ws(s + 8));
		return;
	}
	if (!colon || colon - s >= (long)sizeof(key))
		return;
	snprintf(key, sizeof(key), "%.*s", (int)(colon - s), s);
	s = skip_ws(colon + 1);
	if (!strcmp(key, "Description"))
		COPY(p->description, s);
	else if (!strcmp(key, "BGP state"))
		COPY(p->bgp_state, s);
	else if (!strcmp(key, "Neighbor address"))
		COPY(p->neighbor_address, s);
	else if (!strcmp(key, "Neighbor AS"))
		p->neighbor_as = strtol(s, NULL, 10);
	else if (!strcmp(key, "Neighbor ID"))
		COPY(p->neighbor_id, s);
	else if (!strcmp(key, "Last error"))
		COPY(p->last_error, s);
	else if (!strcmp(key, "Routes") && p->n_channels)
		channel_routes(&p->channels[p->n_channels - 1], s);
}

int lg_parse_protocols(const struct bird_reply *r, struct lg_protocols *ps)
{
	memset(ps, 0, sizeof(*ps));
	if (r->code == 8003)
		return 0;               /* No protocols match */
	if (!bird_code_ok(r->code))
		return -EPROTO;
	for (size_t i = 0; i < r->n_lines; i++) {
		const struct bird_line *l = &r->lines[i];

		if (l->code == 1002 && l->text[0] && l->text[0] != ' ') {
			if (proto_row(ps, l->text) < 0) {
				lg_protocols_free(ps);
				return -ENOMEM;
			}
		} else if (l->code == 1006 && ps->n) {
			proto_detail(&ps->items[ps->n - 1], l->text);
		}
	}
	return 0;
}

void lg_protocols_free(struct lg_protocols *ps)
{
	free(ps->items);
	memset(ps, 0, sizeof(*ps));
}

const struct lg_protocol *lg_protocols_find(const struct lg_protocols *ps, const char *name)
{
	for (size_t i = 0; i < ps->n; i++)
		if (!strcmp(ps->items[i].name, name))
			return &ps->items[i];
	return NULL;
}

/* ---- status, count ---- */

static bool after(const char *s, const char *prefix, char *out, size_t len)
{
	size_t n = strlen(prefix);

	if (strncmp(s, prefix, n))
		return false;
	ascii_copy(out, len, s + n);
	return true;
}

int lg_parse_status(const struct bird_reply *r, struct lg_status *st)
{
	memset(st, 0, sizeof(*st));
	if (!bird_code_ok(r->code))
		return -EPROTO;
	COPY(st->message, r->text);
	for (size_t i = 0; i < r->n_lines; i++) {
		const char *t = r->lines[i].text;

		if (r->lines[i].code == 1000)
			after(t, "BIRD ", st->version, sizeof(st->version));
		else if (!after(t, "Router ID is ", st->router_id, sizeof(st->router_id)) &&
			 !after(t, "Hostname is ", st->hostname, sizeof(st->hostname)) &&
			 !after(t, "Current server time is ", st->server_time, sizeof(st->server_time)) &&
			 !after(t, "Last reboot on ", st->last_reboot, sizeof(st->last_reboot)))
			after(t, "Last reconfiguration on ", st->last_reconfig, sizeof(st->last_reconfig));
	}
	return 0;
}

int lg_parse_count(const struct bird_reply *r, struct lg_count *c)
{
	size_t o = 0;

	memset(c, 0, sizeof(*c));
	if (!bird_code_ok(r->code))
		return -EPROTO;
	for (size_t i = 0; i < r->n_lines; i++) {
		const char *t = skip_ws(r->lines[i].text);

		char clean[256];

		COPY(clean, t);
		if (o < sizeof(c->text))
			o += (size_t)snprintf(c->text + o, sizeof(c->text) - o, "%s\n", clean);
		if (r->lines[i].code == 14)
			sscanf(t, "Total: %ld of %*d routes for %ld networks in %ld tables",
			       &c->routes, &c->networks, &c->tables);
	}
	if (o >= sizeof(c->text))
		c->text[sizeof(c->text) - 1] = '\0';
	return 0;
}
