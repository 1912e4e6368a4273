/*
 * lg/conf.c — meshlg.yaml, read by config/'s strict walker (unknown keys,
 * wrong types, values out of range: errors naming FILE:LINE:COL). meshctl
 * renders it per node (etc/healthd/meshlg.yaml):
 *
 *   node: lax1
 *   listen: ["192.0.2.129:8080", "[2001:db8:10::1]:8080"]   # the tunnel addresses
 *   allow: ["192.0.2.128/26", "2001:db8:10::/48"]           # who may ask: the tunnel
 *   bird: {socket: /run/bird/bird.ctl}
 *   limits: {timeout: 2s, cache: 500ms, rate: 20, burst: 40, concurrency: 32,
 *            per_source: 8, reply_max: 4194304}
 *   services:                                               # for the fleet view
 *     - name: web
 *       prefixes: ["203.0.113.0/24", "2001:db8:100::/48"]
 *       communities: {up: ["64496:100"], degraded: ["64496:300"], draining: ["65535:0"]}
 *   nodes:
 *     - {name: lax1, router_id: 203.0.113.1}
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/load.h"
#include "http/server.h"
#include "lg/lg.h"
#include "mesh/load.h"

static int key_listen(struct cfg_ctx *c, yaml_node_t *v, void *obj, const struct cfg_key *k)
{
	struct lg_conf *conf = obj;
	int rc = cfg_want_seq(c, v, true);

	(void)k;
	if (rc)
		return rc;
	if (!(conf->listen = calloc(CFG_SEQ_LEN(v), sizeof(*conf->listen))))
		return cfg_fail(c, v, "out of memory");
	for (size_t i = 0; !rc && i < CFG_SEQ_LEN(v); i++) {
		yaml_node_t *e = CFG_SEQ_AT(c, v, i);
		size_t old = cfg_push_idx(c, i);
		struct sockaddr_storage ss;
		socklen_t len;

		if (!(rc = cfg_get_str(c, e, &conf->listen[i]))) {
			conf->n_listen++;
			if (http_parse_listen(conf->listen[i], &ss, &len) < 0)
				rc = cfg_fail(c, e, "\"%s\": not IP:PORT or [IPv6]:PORT", conf->listen[i]);
		}
		cfg_pop(c, old);
	}
	return rc;
}

static const struct cfg_key bird_keys[] = {
	{ "socket", mesh_key_path, CFG_K_FN, offsetof(struct lg_conf, bird_socket), 0, 0 },
	{ 0 },
};

static const struct cfg_key limit_keys[] = {
	CFG_DUR("timeout", struct lg_conf, timeout_ms, 100, CFG_SEC(4)),
	CFG_DUR("cache", struct lg_conf, cache_ms, 0, CFG_SEC(60)),
	CFG_UINT("rate", struct lg_conf, rate, 1, 100000),
	CFG_UINT("burst", struct lg_conf, burst, 1, 100000),
	CFG_UINT("concurrency", struct lg_conf, concurrency, 1, 4096),
	CFG_UINT("per_source", struct lg_conf, per_source, 1, CFG_HTTP_PER_SOURCE_MAX),
	CFG_UINT("reply_max", struct lg_conf, reply_max, 4096, 1u << 30),
	{ 0 },
};

static int key_bird(struct cfg_ctx *c, yaml_node_t *v, void *obj, const struct cfg_key *k)
{
	(void)k;
	return cfg_walk_map(c, v, bird_keys, obj, NULL);
}

static int key_limits(struct cfg_ctx *c, yaml_node_t *v, void *obj, const struct cfg_key *k)
{
	(void)k;
	return cfg_walk_map(c, v, limit_keys, obj, NULL);
}

static int key_comm(struct cfg_ctx *c, yaml_node_t *v, void *obj, const struct cfg_key *k)
{
	struct cfg_communities *set = &((struct lg_service *)obj)->communities[k->off];
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
			rc = cfg_fail(c, n, "'%s' is not a community (\"A:B\" or \"A:B:C\")", cfg_sval(n));
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

static int key_comms(struct cfg_ctx *c, yaml_node_t *v, void *obj, const struct cfg_key *k)
{
	(void)k;
	return cfg_walk_map(c, v, comm_keys, obj, NULL);
}

static const struct cfg_key service_keys[] = {
	NAME("name", struct lg_service, name),
	{ "prefixes", mesh_key_prefixes, CFG_K_FN, offsetof(struct lg_service, prefixes), 0, 0 },
	CFG_FN("communities", key_comms, 0),
	{ 0 },
};

static const struct cfg_key node_keys[] = {
	NAME("name", struct lg_node, name),
	ADDR("router_id", struct lg_node, router_id, AF_INET),
	{ 0 },
};

/* A list of mappings, each walked with tab into an element of size sz. */
static int each(struct cfg_ctx *c, yaml_node_t *v, void **arr, size_t *n, size_t sz,
		const struct cfg_key *tab, const char *const *req)
{
	int rc = cfg_want_seq(c, v, false);

	if (rc)
		return rc;
	if (!(*arr = calloc(CFG_SEQ_LEN(v) + 1, sz)))
		return cfg_fail(c, v, "out of memory");
	for (size_t i = 0; !rc && i < CFG_SEQ_LEN(v); i++) {
		yaml_node_t *e = CFG_SEQ_AT(c, v, i);
		size_t old = cfg_push_idx(c, i);

		(*n)++;
		if (!(rc = cfg_walk_map(c, e, tab, (char *)*arr + i * sz, NULL)))
			rc = mesh_require(c, e, req);
		cfg_pop(c, old);
	}
	return rc;
}

static int key_services(struct cfg_ctx *c, yaml_node_t *v, void *obj, const struct cfg_key *k)
{
	static const char *const req[] = { "name", "prefixes", NULL };
	struct lg_conf *conf = obj;

	(void)k;
	return each(c, v, (void **)&conf->services, &conf->n_services, sizeof(*conf->services),
		    service_keys, req);
}

static int key_nodes(struct cfg_ctx *c, yaml_node_t *v, void *obj, const struct cfg_key *k)
{
	static const char *const req[] = { "name", "router_id", NULL };
	struct lg_conf *conf = obj;

	(void)k;
	return each(c, v, (void **)&conf->nodes, &conf->n_nodes, sizeof(*conf->nodes),
		    node_keys, req);
}

static const struct cfg_key top_keys[] = {
	NAME("node", struct lg_conf, node),
	CFG_FN("listen", key_listen, 0),
	{ "allow", mesh_key_prefixes, CFG_K_FN, offsetof(struct lg_conf, allow), 0, 0 },
	CFG_FN("bird", key_bird, 0),
	CFG_FN("limits", key_limits, 0),
	CFG_FN("services", key_services, 0),
	CFG_FN("nodes", key_nodes, 0),
	{ 0 },
};

void lg_conf_free(struct lg_conf *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n_listen; i++)
		free(c->listen[i]);
	free(c->listen);
	free(c->allow.items);
	for (size_t i = 0; i < c->n_services; i++) {
		free(c->services[i].name);
		free(c->services[i].prefixes.items);
		for (int j = 0; j < CFG_COMM_SETS; j++)
			free(c->services[i].communities[j].items);
	}
	free(c->services);
	for (size_t i = 0; i < c->n_nodes; i++)
		free(c->nodes[i].name);
	free(c->nodes);
	free(c->node);
	free(c->bird_socket);
	free(c->path);
	free(c);
}

struct lg_conf *lg_conf_load_string(const char *name, const char *yaml, size_t len,
				    char *err, size_t errlen)
{
	static const char *const req[] = { "node", "listen", "allow", NULL };
	struct lg_conf *conf = calloc(1, sizeof(*conf));
	struct config *scratch = calloc(1, sizeof(*scratch));   /* the walker's warnings */
	struct cfg_ctx c = { .file = name, .err = err, .errlen = errlen, .cfg = scratch };
	yaml_document_t doc;
	yaml_node_t *root;
	int rc;

	if (errlen)
		err[0] = '\0';
	if (!conf || !scratch || !(conf->path = strdup(name))) {
		snprintf(err, errlen, "%s: out of memory", name);
		goto fail;
	}
	conf->timeout_ms = 2000;
	conf->cache_ms = 500;
	conf->rate = 20;
	conf->burst = 40;
	conf->concurrency = 32;
	conf->per_source = 8;
	conf->reply_max = 4u << 20;
	rc = cfg_parse_doc(&c, &doc, yaml, len, &root);
	if (!rc && !(rc = cfg_walk_map(&c, root, top_keys, conf, NULL)))
		rc = mesh_require(&c, root, req);
	if (c.doc)
		yaml_document_delete(&doc);
	if (rc)
		goto fail;
	if (!conf->bird_socket && !(conf->bird_socket = strdup("/run/bird/bird.ctl"))) {
		snprintf(err, errlen, "%s: out of memory", name);
		goto fail;
	}
	cfg_free(scratch);
	return conf;
fail:
	cfg_free(scratch);
	lg_conf_free(conf);
	return NULL;
}

struct lg_conf *lg_conf_load(const char *path, char *err, size_t errlen)
{
	struct lg_conf *conf;
	char *buf = NULL;
	size_t len;

	if (cfg_read_file(path, &buf, &len, err, errlen))
		return NULL;
	conf = lg_conf_load_string(path, buf, len, err, errlen);
	free(buf);
	return conf;
}

bool lg_conf_allowed(const struct lg_conf *c, const struct sockaddr_storage *ss)
{
	uint8_t a[16];
	int family = ss->ss_family;

	if (family == AF_INET) {
		memcpy(a, &((const struct sockaddr_in *)ss)->sin_addr, 4);
	} else if (family == AF_INET6) {
		const uint8_t *b = ((const struct sockaddr_in6 *)ss)->sin6_addr.s6_addr;
		static const uint8_t mapped[12] = { [10] = 0xff, [11] = 0xff };

		if (!memcmp(b, mapped, 12)) {
			family = AF_INET;
			memcpy(a, b + 12, 4);
		} else {
			memcpy(a, b, 16);
		}
	} else {
		return false;
	}
	for (size_t i = 0; i < c->allow.n; i++)
		if (mesh_prefix_contains(&c->allow.items[i].p, family, a))
			return true;
	return false;
}
