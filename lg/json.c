/*
 * lg/json.c — birdwatcher's JSON, as alice-lg reads it
 * (pkg/sources/birdwatcher/parsers.go, stream_decoder.go): the `api`
 * envelope and `ttl` on every reply; `status`; `protocols` as a map of
 * name to details with a `routes` count map; `routes` as an array.
 * Types follow what alice-lg decodes: counts and AS numbers are numbers,
 * local_pref, med and AS path elements strings, communities arrays of
 * numbers, extended communities arrays of strings. The shape is checked
 * by tests/unit/test_lg.c against tests/unit/fixtures/alice-lg/fields.json.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lg/lg.h"

static void rfc3339(char *out, size_t len, int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

json_t *lg_json_envelope(bool from_cache, int64_t cached_at_s, int64_t ttl_s)
{
	char at[32], ttl[32];

	rfc3339(at, sizeof(at), cached_at_s);
	rfc3339(ttl, sizeof(ttl), ttl_s);
	return json_pack("{s:{s:s, s:b, s:{s:{s:s, s:i, s:s}, s:I}}, s:s}",
			 "api", "Version", LG_VERSION, "result_from_cache", from_cache,
			 "cache_status", "cached_at", "date", at, "timezone_type", 3, "timezone", "UTC",
			 "orig_ttl", (json_int_t)(ttl_s - cached_at_s),
			 "ttl", ttl);
}

json_t *lg_json_status(const struct lg_status *s)
{
	return json_pack("{s:{s:s, s:s, s:s, s:s, s:s, s:s, s:s}}", "status",
			 "current_server", s->server_time, "last_reboot", s->last_reboot,
			 "last_reconfig", s->last_reconfig, "version", s->version,
			 "message", s->message, "router_id", s->router_id, "hostname", s->hostname);
}

static json_t *counts(long imported, long filtered, long exported, long preferred)
{
	return json_pack("{s:I, s:I, s:I, s:I}", "imported", (json_int_t)imported,
			 "filtered", (json_int_t)filtered, "exported", (json_int_t)exported,
			 "preferred", (json_int_t)preferred);
}

static json_t *protocol(const struct lg_protocol *p)
{
	json_t *chans = json_object();
	long im = 0, fi = 0, ex = 0, pr = 0;

	for (size_t i = 0; i < p->n_channels; i++) {
		const struct lg_channel *c = &p->channels[i];

		json_object_set_new(chans, c->name, json_pack("{s:o}", "routes_count",
			counts(c->imported, c->filtered, c->exported, c->preferred)));
		im += c->imported, fi += c->filtered, ex += c->exported, pr += c->preferred;
	}
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:s, s:s, s:o, s:o}",
			 "protocol", p->name, "bird_protocol", p->proto, "table", p->table,
			 "state", p->state, "state_changed", p->since, "connection", p->info,
			 "description", p->description, "bgp_state", p->bgp_state,
			 "neighbor_address", p->neighbor_address,
			 "neighbor_as", (json_int_t)p->neighbor_as, "neighbor_id", p->neighbor_id,
			 "last_error", p->last_error, "routes", counts(im, fi, ex, pr),
			 "channels", chans);
}

json_t *lg_json_protocols(const struct lg_protocols *ps, bool only_bgp)
{
	json_t *m = json_object();

	for (size_t i = 0; i < ps->n; i++)
		if (!only_bgp || !strcmp(ps->items[i].proto, "BGP"))
			json_object_set_new(m, ps->items[i].name, protocol(&ps->items[i]));
	return json_pack("{s:o}", "protocols", m);
}

json_t *lg_json_protocols_short(const struct lg_protocols *ps)
{
	json_t *m = json_object();

	for (size_t i = 0; i < ps->n; i++) {
		const struct lg_protocol *p = &ps->items[i];

		json_object_set_new(m, p->name, json_pack("{s:s, s:s, s:s, s:s, s:s}",
			"proto", p->proto, "table", p->table, "state", p->state,
			"since", p->since, "info", p->info));
	}
	return json_pack("{s:o}", "protocols", m);
}

static json_t *words(const char *s)
{
	json_t *a = json_array();
	const char *p = s;

	while (*p) {
		size_t n;

		while (*p == ' ')
			p++;
		n = strcspn(p, " ");
		if (n)
			json_array_append_new(a, json_stringn(p, n));
		p += n;
	}
	return a;
}

static json_t *bgp(const struct lg_route *r)
{
	json_t *comm = json_array(), *large = json_array(), *ext = json_array();
	json_t *b;

	for (size_t i = 0; i < r->n_comm; i++)
		json_array_append_new(comm, json_pack("[I, I]", (json_int_t)r->comm[i][0],
						      (json_int_t)r->comm[i][1]));
	for (size_t i = 0; i < r->n_large; i++)
		json_array_append_new(large, json_pack("[I, I, I]", (json_int_t)r->large[i][0],
						       (json_int_t)r->large[i][1], (json_int_t)r->large[i][2]));
	for (size_t i = 0; i < r->n_ext; i++)
		json_array_append_new(ext, json_pack("[s, s, s]", r->ext[i][0], r->ext[i][1],
						     r->ext[i][2]));
	b = json_pack("{s:s, s:o, s:s, s:s, s:s, s:o, s:o, s:o}",
		      "origin", r->origin, "as_path", words(r->as_path), "next_hop", r->next_hop,
		      "local_pref", r->local_pref, "med", r->med[0] ? r->med : "0",
		      "communities", comm, "large_communities", large, "ext_communities", ext);
	if (b && r->originator_id[0])
		json_object_set_new(b, "originator_id", json_string(r->originator_id));
	if (b && r->cluster_list[0])
		json_object_set_new(b, "cluster_list", words(r->cluster_list));
	return b;
}

json_t *lg_json_routes(const struct lg_routes *rs)
{
	json_t *a = json_array();

	for (size_t i = 0; i < rs->n; i++) {
		const struct lg_route *r = &rs->items[i];
		json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:b, s:i, s:o, s:s}",
				      "network", r->network, "gateway", r->gateway,
				      "interface", r->interface, "from_protocol", r->from_protocol,
				      "age", r->age, "learnt_from", r->learnt_from,
				      "primary", r->primary, "metric", r->metric,
				      "type", words(r->source), "route_type", r->type);

		if (o && r->bgp)
			json_object_set_new(o, "bgp", bgp(r));
		json_array_append_new(a, o);
	}
	return json_pack("{s:o}", "routes", a);
}

json_t *lg_json_count(const struct lg_count *c)
{
	return json_pack("{s:I, s:I, s:I, s:s}", "routes", (json_int_t)c->routes,
			 "networks", (json_int_t)c->networks, "tables", (json_int_t)c->tables,
			 "text", c->text);
}

json_t *lg_json_fleet(const struct lg_fleet *f, const struct lg_conf *c)
{
	json_t *svcs = json_array();

	for (size_t i = 0; i < c->n_services; i++) {
		const struct lg_service *s = &c->services[i];
		json_t *pfx = json_array(), *ann = json_array();

		for (size_t j = 0; j < s->prefixes.n; j++)
			json_array_append_new(pfx, json_string(s->prefixes.items[j].p.text));
		for (size_t j = 0; j < f->n; j++) {
			const struct lg_fleet_row *r = &f->rows[j];

			if (strcmp(r->service, s->name))
				continue;
			json_array_append_new(ann, json_pack("{s:s, s:s, s:s, s:s, s:s, s:b}",
				"node", r->node, "state", lg_fleet_state_str(r->state),
				"prefix", r->prefix, "via", r->via, "how", r->how,
				"primary", r->primary));
		}
		json_array_append_new(svcs, json_pack("{s:s, s:o, s:o}", "name", s->name,
						      "prefixes", pfx, "announcers", ann));
	}
	return json_pack("{s:s, s:o}", "node", c->node, "services", svcs);
}
