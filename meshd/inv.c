/*
 * The inventory as meshd serves it: mesh.yaml loaded by the strict loader,
 * its sha256, the enrolled nodes' keys and addresses laid over it, and
 * each node's config reply, rendered once per generation: the same bytes
 * `meshctl render` writes for an inventory that holds those keys.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config/load.h"
#include "healthd/healthd.h"
#include "meshd/meshd.h"
#include "meshd/state.h"
#include "mesh/render.h"

struct inv_cache {
	uint64_t generation;         /* 0: none */
	struct MHD_Response *config;
	bool public_given;           /* the inventory names its public_ipv4 */
	bool disabled;               /* disabled in the state: no access, no peer */
};

bool inv_node_disabled(const struct inv *v, const struct mesh_node *n)
{
	return v->cache[n - v->m->nodes].disabled;
}

bool inv_public_from_inventory(const struct inv *v, const struct mesh_node *n)
{
	return v->cache[n - v->m->nodes].public_given;
}


void meshd_sha256_hex(const void *data, size_t len, char out[65])
{
	unsigned char d[32];

	gnutls_hash_fast(GNUTLS_DIG_SHA256, data, len, d);
	for (int i = 0; i < 32; i++)
		sprintf(out + 2 * i, "%02x", d[i]);
	out[64] = '\0';
}

void inv_free(struct inv *v)
{
	if (!v)
		return;
	for (size_t i = 0; v->cache && v->m && i < v->m->n_nodes; i++)
		if (v->cache[i].config)
			MHD_destroy_response(v->cache[i].config);
	free(v->cache);
	mesh_free(v->m);
	free(v->src);
	free(v);
}

static void drop_caches(struct inv *v)
{
	v->generation++;
	for (size_t i = 0; i < v->m->n_nodes; i++)
		if (v->cache[i].config) {
			MHD_destroy_response(v->cache[i].config);   /* in flight: MHD keeps its ref */
			v->cache[i].config = NULL;
		}
}

int inv_overlay(struct inv *v, const char *node, const char *public_key,
		const char *external_ip)
{
	const struct mesh_node *found = mesh_node_find(v->m, node);
	struct mesh_node *n;
	struct mesh_addr was;
	bool replaced;
	int rc;

	if (!found)
		return -ENOENT;   /* enrolled once, gone from the inventory since */
	n = &v->m->nodes[found - v->m->nodes];
	/* an address the inventory does not give is the latest enrolment's: a
	 * node rebuilt elsewhere and enrolled again moves */
	was = n->public_ipv4;
	if (!v->cache[found - v->m->nodes].public_given)
		n->public_ipv4.family = 0;
	if ((rc = mesh_overlay_node(v->m, node, public_key, external_ip, &replaced))) {
		n->public_ipv4 = was;
		return rc;
	}
	if (replaced)
		log_warn("inventory: %s: the enrolled key replaces the inventory's wireguard_public_key",
			 node);
	drop_caches(v);
	return 0;
}

struct overlay_ctx {
	struct inv *v;
	int rc;
};

static int overlay_one(void *ctx, const struct mstate_node *sn)
{
	struct overlay_ctx *o = ctx;
	int rc;

	if (sn->disabled_at) {
		/* a disabled node keeps its addresses retired, not its place in
		 * the mesh: no peer has its key, no firewall lets it in, and it
		 * is refused by credential and by tunnel address alike */
		const struct mesh_node *f = mesh_node_find(o->v->m, sn->name);

		if (f) {
			struct mesh_node *n = &o->v->m->nodes[f - o->v->m->nodes];

			o->v->cache[f - o->v->m->nodes].disabled = true;
			free(n->wireguard_public_key);
			n->wireguard_public_key = NULL;
			n->public_ipv4.family = 0;
		}
		return 0;
	}
	rc = inv_overlay(o->v, sn->name, sn->public_key, sn->external_ip);
	if (rc == -ENOENT)
		log_warn("state: %s is enrolled but not in the inventory; it gets no peers", sn->name);
	else if (rc)
		o->rc = rc;
	return 0;
}

/* The inventory from its bytes, with the state laid over it. buf is taken. */
static struct inv *inv_from(const char *path, char *buf, size_t len, struct mstate *st,
			    char *err, size_t errlen)
{
	struct inv *v = calloc(1, sizeof(*v));
	struct overlay_ctx o = { v, 0 };

	if (!v) {
		free(buf);
		snprintf(err, errlen, "%s: out of memory", path);
		return NULL;
	}
	meshd_sha256_hex(buf, len, v->sha256);
	if (!(v->m = mesh_load_string(path, buf, len, err, errlen)))
		goto fail;
	for (size_t i = 0; i < v->m->n_warnings; i++)
		log_warn("%s", v->m->warnings[i]);
	if (!(v->cache = calloc(v->m->n_nodes + 1, sizeof(*v->cache)))) {
		snprintf(err, errlen, "%s: out of memory", path);
		goto fail;
	}
	v->loaded = time(NULL);
	for (size_t i = 0; i < v->m->n_nodes; i++)
		v->cache[i].public_given = v->m->nodes[i].public_ipv4.family != 0;
	if (st && mstate_nodes(st, overlay_one, &o, err, errlen) < 0)
		goto fail;
	if (o.rc) {
		snprintf(err, errlen, "%s: out of memory", path);
		goto fail;
	}
	v->generation = 1;
	v->src = buf;
	v->src_len = len;
	return v;
fail:
	free(buf);
	inv_free(v);
	return NULL;
}

struct inv *inv_load(const char *path, struct mstate *st, char *err, size_t errlen)
{
	char *buf;
	size_t len;

	if (cfg_read_file(path, &buf, &len, err, errlen))
		return NULL;
	return inv_from(path, buf, len, st, err, errlen);
}

struct inv *inv_rebuild(const struct inv *old, struct mstate *st, char *err, size_t errlen)
{
	char *buf = malloc(old->src_len + 1);

	if (!buf) {
		snprintf(err, errlen, "%s: out of memory", old->m->path);
		return NULL;
	}
	memcpy(buf, old->src, old->src_len);
	buf[old->src_len] = '\0';
	return inv_from(old->m->path, buf, old->src_len, st, err, errlen);
}

/* ---- lookups ---- */

const struct mesh_node *inv_node(const struct inv *v, const char *name)
{
	return mesh_node_find(v->m, name);
}

const struct mesh_node *inv_node_by_region(const struct inv *v, const char *region, bool *many)
{
	const struct mesh_node *found = NULL;

	*many = false;
	for (size_t i = 0; i < v->m->n_nodes; i++)
		if (!strcmp(v->m->nodes[i].region, region)) {
			if (found)
				*many = true;
			found = &v->m->nodes[i];
		}
	return *many ? NULL : found;
}

const struct mesh_node *inv_node_by_public(const struct inv *v, const char *ip)
{
	struct mesh_addr a;

	if (mesh_parse_addr(ip, &a) < 0)
		return NULL;
	for (size_t i = 0; i < v->m->n_nodes; i++) {
		const struct mesh_addr *p = &v->m->nodes[i].public_ipv4;

		if (p->family == a.family && !memcmp(p->addr, a.addr, a.family == AF_INET ? 4 : 16))
			return &v->m->nodes[i];
	}
	return NULL;
}

/* The address of ss, IPv4-mapped IPv6 as IPv4; its family or 0. */
static int addr_of(const struct sockaddr_storage *ss, uint8_t out[16])
{
	if (ss->ss_family == AF_INET) {
		memcpy(out, &((const struct sockaddr_in *)ss)->sin_addr, 4);
		return AF_INET;
	}
	if (ss->ss_family == AF_INET6) {
		const uint8_t *a = ((const struct sockaddr_in6 *)ss)->sin6_addr.s6_addr;
		static const uint8_t mapped[12] = { [10] = 0xff, [11] = 0xff };

		if (!memcmp(a, mapped, 12)) {
			memcpy(out, a + 12, 4);
			return AF_INET;
		}
		memcpy(out, a, 16);
		return AF_INET6;
	}
	return 0;
}

const struct mesh_node *inv_node_by_tunnel(const struct inv *v, const struct sockaddr_storage *ss)
{
	uint8_t a[16];
	int fam = addr_of(ss, a);

	for (size_t i = 0; fam && i < v->m->n_nodes; i++) {
		const struct mesh_node *n = &v->m->nodes[i];
		const struct mesh_addr *t = fam == AF_INET ? &n->tunnel_ipv4 : &n->tunnel_ipv6;

		if (t->family == fam && !memcmp(t->addr, a, fam == AF_INET ? 4 : 16))
			return n;
	}
	return NULL;
}

bool inv_plain_ok(const struct inv *v, const struct sockaddr_storage *ss)
{
	uint8_t a[16];
	int fam = addr_of(ss, a);
	static const uint8_t lo6[16] = { [15] = 1 };

	if (fam == AF_INET && a[0] == 127)
		return true;
	if (fam == AF_INET6 && !memcmp(a, lo6, 16))
		return true;
	if (fam == AF_INET && v->m->tunnel.ipv4.p.family)
		return mesh_prefix_contains(&v->m->tunnel.ipv4.p, AF_INET, a);
	if (fam == AF_INET6 && v->m->tunnel.ipv6.p.family)
		return mesh_prefix_contains(&v->m->tunnel.ipv6.p, AF_INET6, a);
	return false;
}

/* ---- replies ---- */

static const char *tool_name(enum mesh_tool t)
{
	switch (t) {
	case MESH_TOOL_BIRD: return "bird";
	case MESH_TOOL_NFT: return "nft";
	case MESH_TOOL_HEALTHD: return "healthd";
	default: return NULL;
	}
}

static json_t *config_json(const struct inv *v, const struct mesh_node *n)
{
	const struct mesh_upstream *u = n->upstream ? mesh_upstream_find(v->m, n->upstream) : NULL;
	struct mesh_files f;
	json_t *j, *files, *secrets;
	char key[300];

	if (mesh_render_node(v->m, n, &f) < 0)
		return NULL;
	snprintf(key, sizeof(key), "etc/wireguard/%s.key", mesh_node_ifname(v->m, n));
	j = json_pack("{ss ss ss+ ss ss}", "node", n->name, "region", n->region,
		      "inventory", "sha256:", v->sha256, "interface", mesh_node_ifname(v->m, n),
		      "private_key_file", key);
	files = json_array();
	secrets = json_array();
	if (!j || !files || !secrets)
		goto fail;
	json_object_set_new(j, "secrets", secrets);
	json_object_set_new(j, "files", files);
	if (u && u->password_file) {
		json_t *s = json_pack("{ss ss+}", "path", u->password_file, "what",
				      "BGP password of upstream ", u->name);

		if (!s || json_array_append_new(secrets, s))
			goto fail;
	}
	for (size_t i = 0; i < f.n; i++) {
		const struct mesh_file *mf = &f.items[i];
		const char *tool = tool_name(mf->tool);
		char sum[65], mode[8];
		json_t *e, *content = json_stringn(mf->data, mf->len);

		if (!content) {
			log_err("render %s: %s is not UTF-8 text", n->name, mf->path);
			goto fail;
		}
		meshd_sha256_hex(mf->data, mf->len, sum);
		snprintf(mode, sizeof(mode), "%04o", mf->mode);
		e = json_pack("{ss ss ss so so}", "path", mf->path, "mode", mode, "sha256", sum,
			      "check", tool ? json_string(tool) : json_null(), "content", content);
		if (!e || json_array_append_new(files, e))
			goto fail;
	}
	mesh_files_free(&f);
	return j;
fail:
	mesh_files_free(&f);
	json_decref(j);
	return NULL;
}

struct MHD_Response *inv_config_reply(struct inv *v, const struct mesh_node *n)
{
	size_t i = (size_t)(n - v->m->nodes);
	struct inv_cache *c = &v->cache[i];
	json_t *j;
	char *text;
	size_t len;

	if (c->config && c->generation == v->generation)
		return c->config;
	if (c->config) {
		MHD_destroy_response(c->config);
		c->config = NULL;
	}
	if (!(j = config_json(v, n)))
		return NULL;
	text = json_dumps(j, JSON_COMPACT | JSON_ENSURE_ASCII);
	json_decref(j);
	if (!text)
		return NULL;
	len = strlen(text);
	c->config = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
	if (!c->config) {
		free(text);
		return NULL;
	}
	MHD_add_response_header(c->config, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	MHD_add_response_header(c->config, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	c->generation = v->generation;
	return c->config;
}

static json_t *tunnel_ips(const struct mesh_node *o)
{
	json_t *a = json_array();

	if (!a)
		return NULL;
	json_array_append_new(a, json_sprintf("%s/32", o->tunnel_ipv4.text));
	if (o->tunnel_ipv6.family)
		json_array_append_new(a, json_sprintf("%s/128", o->tunnel_ipv6.text));
	return a;
}

json_t *inv_wireguard_json(const struct inv *v, const struct mesh_node *n)
{
	const struct mesh *m = v->m;
	unsigned keepalive = (unsigned)(m->tunnel.keepalive_ms / 1000);
	json_t *j = json_pack("{ss ss sI so so}", "node", n->name,
			      "interface", mesh_node_ifname(m, n), "listen_port", (json_int_t)m->tunnel.port,
			      "public_key", n->wireguard_public_key ? json_string(n->wireguard_public_key) : json_null(),
			      "addresses", tunnel_ips(n));
	json_t *peers = json_array(), *pending = json_array();

	if (!j || !peers || !pending) {
		json_decref(j);
		json_decref(peers);
		json_decref(pending);
		return NULL;
	}
	json_object_set_new(j, "peers", peers);
	json_object_set_new(j, "pending", pending);
	for (size_t i = 0; i < m->n_nodes; i++) {
		const struct mesh_node *o = &m->nodes[i];
		json_t *p;

		if (o == n)
			continue;
		if (!o->wireguard_public_key) {
			json_array_append_new(pending, json_string(o->name));
			continue;
		}
		p = json_pack("{ss ss so so sI}", "node", o->name, "public_key", o->wireguard_public_key,
			      "endpoint", o->public_ipv4.family ?
				      json_sprintf("%s:%u", o->public_ipv4.text, m->tunnel.port) : json_null(),
			      "allowed_ips", tunnel_ips(o), "persistent_keepalive", (json_int_t)keepalive);
		if (!p || json_array_append_new(peers, p)) {
			json_decref(j);
			return NULL;
		}
	}
	return j;
}

json_t *inv_firewall_json(const struct inv *v, const struct mesh_node *n)
{
	return mesh_firewall_json(v->m, n);
}
