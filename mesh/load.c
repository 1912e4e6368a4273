/*
 * mesh/load.c — mesh.yaml into struct mesh through config/'s strict walker:
 * the key tables of MESH.md's inventory, load and free.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mesh/load.h"

/* ---- mesh: ---- */

static const struct cfg_key tunnel_keys[] = {
	{ "interface", mesh_key_ifname, CFG_K_FN, offsetof(struct mesh_tunnel, interface), 0, 0 },
	CFG_UINT("port", struct mesh_tunnel, port, 1, 65535),
	CFG_DUR("keepalive", struct mesh_tunnel, keepalive_ms, CFG_SEC(1), CFG_SEC(65535)),
	PREFIX("ipv4", struct mesh_tunnel, ipv4, AF_INET),
	PREFIX("ipv6", struct mesh_tunnel, ipv6, AF_INET6),
	{ 0 },
};

static int key_tunnel(struct cfg_ctx *c, yaml_node_t *v, void *obj,
		      const struct cfg_key *k)
{
	static const char *const req[] = { "ipv4", "ipv6", NULL };
	struct mesh_tunnel *t = (struct mesh_tunnel *)((char *)obj + k->off);
	int rc = cfg_walk_map(c, v, tunnel_keys, t, NULL);
	yaml_node_t *ka;

	if (!rc && t->keepalive_ms % 1000 && (ka = cfg_map_get(c, v, "keepalive"))) {
		size_t old = cfg_push_key(c, "keepalive");

		rc = cfg_fail(c, ka, "WireGuard's keepalive is whole seconds, found %s", cfg_sval(ka));
		cfg_pop(c, old);
		return rc;
	}
	return rc ? rc : mesh_require(c, v, req);
}

static const struct cfg_key lg_keys[] = {
	CFG_UINT("port", struct mesh, looking_glass_port, 1, 65535),
	{ 0 },
};

static int key_lg(struct cfg_ctx *c, yaml_node_t *v, void *obj,
		  const struct cfg_key *k)
{
	(void)k;
	return cfg_walk_map(c, v, lg_keys, obj, NULL);
}

static const struct cfg_key mesh_keys[] = {
	CFG_UINT("asn", struct mesh, asn, 1, 4294967295u),
	{ "blocks", mesh_key_prefixes, CFG_K_FN, offsetof(struct mesh, blocks), 0, 0 },
	{ "admin", mesh_key_prefixes, CFG_K_FN, offsetof(struct mesh, admin), 0, 0 },
	CFG_FN("tunnel", key_tunnel, offsetof(struct mesh, tunnel)),
	CFG_FN("looking_glass", key_lg, 0),
	{ 0 },
};

static int top_mesh(struct cfg_ctx *c, yaml_node_t *v, void *obj,
		    const struct cfg_key *k)
{
	static const char *const req[] = { "asn", "blocks", "tunnel", NULL };
	int rc = cfg_walk_map(c, v, mesh_keys, obj, NULL);

	(void)k;
	return rc ? rc : mesh_require(c, v, req);
}

/* ---- upstreams: and providers:, mappings keyed by name ---- */

static const struct cfg_key upstream_keys[] = {
	CFG_UINT("asn", struct mesh_upstream, asn, 1, 4294967295u),
	ADDR("neighbor_ipv4", struct mesh_upstream, neighbor_ipv4, AF_INET),
	ADDR("neighbor_ipv6", struct mesh_upstream, neighbor_ipv6, AF_INET6),
	CFG_UINT("multihop", struct mesh_upstream, multihop, 1, 255),
	{ "password_file", mesh_key_path, CFG_K_FN, offsetof(struct mesh_upstream, password_file), 0, 0 },
	{ 0 },
};

/* Each pair of mapping v through fn(name node, value node, index). */
static int each_pair(struct cfg_ctx *c, yaml_node_t *v, void *arr, size_t size,
		     int (*fn)(struct cfg_ctx *, yaml_node_t *, yaml_node_t *, void *))
{
	size_t n = (size_t)(v->data.mapping.pairs.top - v->data.mapping.pairs.start);
	int rc = 0;

	for (size_t i = 0; !rc && i < n; i++) {
		yaml_node_pair_t *p = &v->data.mapping.pairs.start[i];
		yaml_node_t *kn = cfg_node(c, p->key);
		size_t old = cfg_push_key(c, cfg_sval(kn));

		if (!cfg_name_valid(cfg_sval(kn)))
			rc = cfg_fail(c, kn, "'%s' is not a valid name", cfg_sval(kn));
		else
			rc = fn(c, kn, cfg_node(c, p->value), (char *)arr + i * size);
		cfg_pop(c, old);
	}
	return rc;
}

static int one_upstream(struct cfg_ctx *c, yaml_node_t *kn, yaml_node_t *v,
			void *obj)
{
	static const char *const req[] = { "asn", NULL };
	struct mesh_upstream *u = obj;
	int rc;

	if (!(u->name = strdup(cfg_sval(kn))))
		return cfg_fail(c, kn, "out of memory");
	if ((rc = cfg_walk_map(c, v, upstream_keys, u, NULL)))
		return rc;
	if ((rc = mesh_require(c, v, req)))
		return rc;
	if (!u->neighbor_ipv4.family && !u->neighbor_ipv6.family)
		return cfg_missing(c, v, "neighbor_ipv4", NULL);
	return 0;
}

static int one_provider(struct cfg_ctx *c, yaml_node_t *kn, yaml_node_t *v,
			void *obj)
{
	struct mesh_provider *p = obj;
	uint64_t u;
	int rc;

	if (!(p->name = strdup(cfg_sval(kn))))
		return cfg_fail(c, kn, "out of memory");
	if ((rc = cfg_get_uint(c, v, 0, 255, &u)))
		return rc;
	p->slot = (unsigned)u;
	mesh_mark_at(c, v, &p->at);
	return 0;
}

#define N_PAIRS(v) ((size_t)((v)->data.mapping.pairs.top - (v)->data.mapping.pairs.start))

static int top_upstreams(struct cfg_ctx *c, yaml_node_t *v, void *obj,
			 const struct cfg_key *k)
{
	struct mesh *m = obj;
	int rc = cfg_want_map(c, v);

	(void)k;
	if (rc || !N_PAIRS(v))
		return rc;
	if (!(m->upstreams = calloc(N_PAIRS(v), sizeof(*m->upstreams))))
		return cfg_fail(c, v, "out of memory");
	m->n_upstreams = N_PAIRS(v);
	return each_pair(c, v, m->upstreams, sizeof(*m->upstreams), one_upstream);
}

static int top_providers(struct cfg_ctx *c, yaml_node_t *v, void *obj,
			 const struct cfg_key *k)
{
	struct mesh *m = obj;
	int rc = cfg_want_map(c, v);

	(void)k;
	if (rc || !N_PAIRS(v))
		return rc ? rc : cfg_fail(c, v, "must not be empty");
	if (!(m->providers = calloc(N_PAIRS(v), sizeof(*m->providers))))
		return cfg_fail(c, v, "out of memory");
	m->n_providers = N_PAIRS(v);
	return each_pair(c, v, m->providers, sizeof(*m->providers), one_provider);
}

/* ---- services:, regions:, nodes:, lists of mappings ---- */

static int key_comm(struct cfg_ctx *c, yaml_node_t *v, void *obj,
		    const struct cfg_key *k)
{
	struct cfg_communities *set = &((struct mesh_service *)obj)->communities[k->off];
	int rc = cfg_want_seq(c, v, false);

	if (rc)
		return rc;
	if (!(set->items = calloc(CFG_SEQ_LEN(v) + 1, sizeof(*set->items))))
		return cfg_fail(c, v, "out of memory");
	for (size_t i = 0; !rc && i < CFG_SEQ_LEN(v); i++) {
		yaml_node_t *n = CFG_SEQ_AT(c, v, i);
		size_t old = cfg_push_idx(c, i);

		if (!(rc = cfg_want_scalar(c, n, "a community")) &&
		    cfg_parse_community(cfg_sval(n), &set->items[set->n]))
			rc = cfg_fail(c, n, "'%s' is not a community (\"A:B\" or \"A:B:C\")",
				      cfg_sval(n));
		set->n += !rc;
		cfg_pop(c, old);
	}
	return rc;
}

static const struct cfg_key comm_keys[] = {
	CFG_FN("up", key_comm, CFG_COMM_UP),
	CFG_FN("degraded", key_comm, CFG_COMM_DEGRADED),
	CFG_FN("draining", key_comm, CFG_COMM_DRAINING),
	{ 0 },
};

static int key_comms(struct cfg_ctx *c, yaml_node_t *v, void *obj,
		     const struct cfg_key *k)
{
	(void)k;
	return cfg_walk_map(c, v, comm_keys, obj, NULL);
}

/*
 * The inventory is in git and in every node's healthd.yaml: a check's
 * password or token does not belong there (and the rendered file would
 * carry it redacted, failing the check on every node). "mesh" is the
 * tunnel check meshctl adds.
 */
static int no_credentials(struct cfg_ctx *c, yaml_node_t *n, const struct cfg_check *k)
{
	const char *sep;

	if (strcmp(k->name, "mesh") == 0)
		return cfg_fail(c, n, "check name 'mesh' is taken: meshctl adds the tunnel's WireGuard check under it");
	if (k->url && (sep = strstr(k->url, "://"))) {
		size_t host = strcspn(sep + 3, "/?#");

		if (memchr(sep + 3, '@', host))
			return cfg_fail(c, n, "refused: the url of check %s carries a user or password; "
					"the inventory holds no credential (give the check none, or keep it in healthd.yaml on the node)",
					k->name);
	}
	for (size_t i = 0; i < k->n_headers; i++)
		if (cfg_header_redacted(k, k->headers[i].name))
			return cfg_fail(c, n, "refused: header %s of check %s is a credential; "
					"the inventory holds none (keep it in healthd.yaml on the node)",
					k->headers[i].name, k->name);
	return 0;
}

/* Read as healthd.yaml's checks are, into the service of the same index
 * in c->cfg (freed with it). */
static int key_checks(struct cfg_ctx *c, yaml_node_t *v, void *obj,
		      const struct cfg_key *k)
{
	struct mesh_service *ms = obj;
	struct cfg_service *s = c->svc;
	int rc = cfg_want_seq(c, v, true);

	(void)k;
	if (rc)
		return rc;
	if (!(s->checks = calloc(CFG_SEQ_LEN(v), sizeof(*s->checks))))
		return cfg_fail(c, v, "out of memory");
	s->n_checks = ms->n_checks = CFG_SEQ_LEN(v);
	for (c->chk_idx = 0; !rc && c->chk_idx < s->n_checks; c->chk_idx++) {
		size_t old = cfg_push_idx(c, c->chk_idx);

		rc = cfg_load_check(c, CFG_SEQ_AT(c, v, c->chk_idx), &s->checks[c->chk_idx]);
		if (!rc)
			rc = no_credentials(c, CFG_SEQ_AT(c, v, c->chk_idx), &s->checks[c->chk_idx]);
		cfg_pop(c, old);
	}
	return rc;
}

/* The fleet guard of healthd.yaml, for every node's healthd. */
static int key_guard(struct cfg_ctx *c, yaml_node_t *v, void *obj,
		     const struct cfg_key *k)
{
	struct mesh_service *ms = obj;
	struct cfg_service d = { 0 };

	(void)k;
	cfg_service_defaults(&d);
	ms->guard = d.guard;
	ms->has_guard = true;
	return cfg_load_guard(c, v, &ms->guard);
}

static const struct cfg_key service_keys[] = {
	NAME("name", struct mesh_service, name),
	{ "addresses", mesh_key_addrs, CFG_K_FN, offsetof(struct mesh_service, addresses), 1, 0 },
	{ "announce", mesh_key_prefixes, CFG_K_FN, offsetof(struct mesh_service, announce), 0, 0 },
	CFG_FN("communities", key_comms, 0),
	CFG_FN("checks", key_checks, 0),
	CFG_FN("guard", key_guard, 0),
	{ 0 },
};

static const struct cfg_key region_keys[] = {
	NAME("name", struct mesh_region, name),
	PREFIX("subnet", struct mesh_region, subnet, AF_INET),
	{ 0 },
};

static int key_key(struct cfg_ctx *c, yaml_node_t *v, void *obj,
		   const struct cfg_key *k)
{
	struct mesh_node *n = obj;
	int rc = cfg_get_str(c, v, &n->wireguard_public_key);

	(void)k;
	mesh_mark_at(c, v, &n->key_at);
	if (!rc && !mesh_wg_key_valid(n->wireguard_public_key))
		rc = cfg_fail(c, v, "'%s' is not a WireGuard public key (32 bytes in base64, 44 characters)",
			      n->wireguard_public_key);
	return rc;
}

static int key_marked_name(struct cfg_ctx *c, yaml_node_t *v, void *obj,
			   const struct cfg_key *k)
{
	struct mesh_node *n = obj;
	int rc = mesh_key_name(c, v, obj, k);

	if (k->off == offsetof(struct mesh_node, provider))
		mesh_mark_at(c, v, &n->provider_at);
	else
		mesh_mark_at(c, v, &n->reflector_at);
	return rc;
}

static const struct cfg_key node_keys[] = {
	NAME("name", struct mesh_node, name),
	NAME("region", struct mesh_node, region),
	{ "provider", key_marked_name, CFG_K_FN, offsetof(struct mesh_node, provider), 0, 0 },
	NAME("upstream", struct mesh_node, upstream),
	CFG_BOOL("route_reflector", struct mesh_node, route_reflector),
	{ "reflector", key_marked_name, CFG_K_FN, offsetof(struct mesh_node, reflector), 0, 0 },
	ADDR("public_ipv4", struct mesh_node, public_ipv4, AF_INET),
	ADDR("tunnel_ipv4", struct mesh_node, tunnel_ipv4, AF_INET),
	ADDR("tunnel_ipv6", struct mesh_node, tunnel_ipv6, AF_INET6),
	CFG_FN("wireguard_public_key", key_key, 0),
	{ "tunnel_interface", mesh_key_ifname, CFG_K_FN, offsetof(struct mesh_node, tunnel_interface), 0, 0 },
	{ "root", mesh_key_root, CFG_K_FN, offsetof(struct mesh_node, root), 0, 0 },
	{ 0 },
};

struct list {
	const struct cfg_key *keys;
	const char *const *req;
	size_t size, arr_off, n_off;
	size_t at_off;               /* of the element's struct mesh_mark */
};

static const char *const service_req[] = { "name", "addresses", "announce", NULL };
static const char *const region_req[] = { "name", "subnet", NULL };
static const char *const node_req[] = { "name", "region", "provider", "tunnel_ipv4", NULL };

#define LIST(T, keys, req, arr) { keys, req, sizeof(T), offsetof(struct mesh, arr), \
	offsetof(struct mesh, n_##arr), offsetof(T, at) }

static const struct list lists[] = {
	LIST(struct mesh_service, service_keys, service_req, services),
	LIST(struct mesh_region, region_keys, region_req, regions),
	LIST(struct mesh_node, node_keys, node_req, nodes),
};

static int key_list(struct cfg_ctx *c, yaml_node_t *v, void *obj,
		    const struct cfg_key *k)
{
	const struct list *l = &lists[k->off];
	void **arr = (void **)((char *)obj + l->arr_off);
	size_t *n = (size_t *)((char *)obj + l->n_off);
	int rc = cfg_want_seq(c, v, l->keys != service_keys);

	if (rc || !CFG_SEQ_LEN(v))
		return rc;
	if (!(*arr = calloc(CFG_SEQ_LEN(v), l->size)))
		return cfg_fail(c, v, "out of memory");
	for (size_t i = 0; !rc && i < CFG_SEQ_LEN(v); i++) {
		yaml_node_t *e = CFG_SEQ_AT(c, v, i);
		char *el = (char *)*arr + i * l->size;
		size_t old = cfg_push_idx(c, i);

		(*n)++;
		mesh_mark_at(c, e, (struct mesh_mark *)(el + l->at_off));
		c->svc = i < c->cfg->n_services ? &c->cfg->services[i] : NULL;
		if (!(rc = cfg_walk_map(c, e, l->keys, el, NULL)))
			rc = mesh_require(c, e, l->req);
		cfg_pop(c, old);
	}
	return rc;
}

/* Services first: their checks need a cfg_service each. */
static int top_services(struct cfg_ctx *c, yaml_node_t *v, void *obj,
			const struct cfg_key *k)
{
	if (v->type == YAML_SEQUENCE_NODE && CFG_SEQ_LEN(v)) {
		c->cfg->services = calloc(CFG_SEQ_LEN(v), sizeof(*c->cfg->services));
		if (!c->cfg->services)
			return cfg_fail(c, v, "out of memory");
		c->cfg->n_services = CFG_SEQ_LEN(v);
	}
	return key_list(c, v, obj, k);
}

static const struct cfg_key top_keys[] = {
	CFG_FN("mesh", top_mesh, 0),
	CFG_FN("upstreams", top_upstreams, 0),
	CFG_FN("providers", top_providers, 0),
	CFG_FN("services", top_services, 0),
	CFG_FN("regions", key_list, 1),
	CFG_FN("nodes", key_list, 2),
	{ "retired", mesh_key_addrs, CFG_K_FN, offsetof(struct mesh, retired), 0, 0 },
	{ 0 },
};

/* ---- load and free ---- */

static int load_doc(struct cfg_ctx *c, struct mesh *m, const char *yaml, size_t len,
		    yaml_document_t *doc)
{
	static const char *const req[] = { "mesh", "providers", "regions", "nodes", NULL };
	yaml_node_t *root;
	int rc;

	if ((rc = cfg_parse_doc(c, doc, yaml, len, &root)))
		return rc;
	if ((rc = mesh_scan_secrets(c, root)))
		return rc;
	if ((rc = cfg_walk_map(c, root, top_keys, m, NULL)))
		return rc;
	return mesh_require(c, root, req);
}

struct mesh *mesh_load_string(const char *name, const char *yaml, size_t len,
			      char *err, size_t errlen)
{
	yaml_document_t doc;
	struct cfg_ctx c = { .file = name, .err = err, .errlen = errlen };
	struct mesh *m = calloc(1, sizeof(*m));
	int rc;

	if (errlen)
		err[0] = '\0';
	if (!m || !(m->path = strdup(name)) || !(m->checks = calloc(1, sizeof(*m->checks)))) {
		snprintf(err, errlen, "%s: out of memory", name);
		goto fail;
	}
	m->checks->defaults = (struct cfg_defaults){ 1000, 0, 2, 2 };   /* timeout 0: as healthd.yaml */
	m->tunnel.port = 51820;
	m->tunnel.keepalive_ms = CFG_SEC(1);
	m->looking_glass_port = 8080;
	c.cfg = m->checks;
	rc = load_doc(&c, m, yaml, len, &doc);
	if (c.doc)
		yaml_document_delete(&doc);
	m->warnings = m->checks->warnings;
	m->n_warnings = m->checks->n_warnings;
	m->checks->warnings = NULL;
	m->checks->n_warnings = 0;
	if (!rc && !m->tunnel.interface && !(m->tunnel.interface = strdup("wg0")))
		rc = cfg_fail_at(&c, (yaml_mark_t){ 0 }, "mesh", "out of memory");
	if (rc || mesh_check(m, err, errlen))
		goto fail;
	return m;
fail:
	mesh_free(m);
	return NULL;
}

struct mesh *mesh_load(const char *path, char *err, size_t errlen)
{
	struct mesh *m;
	char *buf;
	size_t len;

	if (cfg_read_file(path, &buf, &len, err, errlen))
		return NULL;
	m = mesh_load_string(path, buf, len, err, errlen);
	free(buf);
	return m;
}

void mesh_free(struct mesh *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->n_upstreams; i++) {
		free(m->upstreams[i].name);
		free(m->upstreams[i].password_file);
	}
	for (size_t i = 0; i < m->n_providers; i++)
		free(m->providers[i].name);
	for (size_t i = 0; i < m->n_services; i++) {
		struct mesh_service *s = &m->services[i];

		free(s->name);
		free(s->addresses.items);
		free(s->announce.items);
		for (int j = 0; j < CFG_COMM_SETS; j++)
			free(s->communities[j].items);
	}
	for (size_t i = 0; i < m->n_regions; i++)
		free(m->regions[i].name);
	for (size_t i = 0; i < m->n_nodes; i++) {
		struct mesh_node *n = &m->nodes[i];

		free(n->name);
		free(n->region);
		free(n->provider);
		free(n->upstream);
		free(n->reflector);
		free(n->wireguard_public_key);
		free(n->tunnel_interface);
		free(n->root);
	}
	for (size_t i = 0; i < m->n_warnings; i++)
		free(m->warnings[i]);
	free(m->warnings);
	free(m->upstreams);
	free(m->providers);
	free(m->services);
	free(m->regions);
	free(m->nodes);
	free(m->retired.items);
	free(m->blocks.items);
	free(m->admin.items);
	free(m->tunnel.interface);
	cfg_free(m->checks);
	free(m->path);
	free(m);
}
