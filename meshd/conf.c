/*
 * meshd.yaml, read by config/'s strict walker: unknown keys, wrong types
 * and values out of range are errors naming FILE:LINE:COL.
 *
 *   inventory: /etc/healthd/mesh.yaml
 *   state: /var/lib/meshd/meshd.db
 *   admin_socket: /run/meshd/admin.sock
 *   listen:
 *     - {address: "198.51.100.2:8443", certificate: /etc/meshd/cert.pem, key: /etc/meshd/key.pem}
 *     - {address: "192.0.2.129:8081"}          # plain: loopback or tunnel only
 *   limits: {rate: 10, burst: 20, max_body: 8192, per_source: 16}
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/load.h"
#include "meshd/meshd.h"
#include "mesh/load.h"

#define PATHKEY(n, f) { n, mesh_key_path, CFG_K_FN, offsetof(struct meshd_conf, f), 0, 0 }
#define LPATHKEY(n, f) { n, mesh_key_path, CFG_K_FN, offsetof(struct meshd_listen, f), 0, 0 }

static const struct cfg_key listen_keys[] = {
	CFG_STR("address", struct meshd_listen, address),
	LPATHKEY("certificate", certificate),
	LPATHKEY("key", key),
	{ 0 },
};

static int key_listen(struct cfg_ctx *c, yaml_node_t *v, void *obj, const struct cfg_key *k)
{
	static const char *const req[] = { "address", NULL };
	struct meshd_conf *conf = obj;
	int rc = cfg_want_seq(c, v, true);

	(void)k;
	if (rc)
		return rc;
	if (!(conf->listen = calloc(CFG_SEQ_LEN(v), sizeof(*conf->listen))))
		return cfg_fail(c, v, "out of memory");
	for (size_t i = 0; !rc && i < CFG_SEQ_LEN(v); i++) {
		yaml_node_t *e = CFG_SEQ_AT(c, v, i);
		struct meshd_listen *l = &conf->listen[i];
		size_t old = cfg_push_idx(c, i);
		struct sockaddr_storage ss;
		socklen_t len;

		conf->n_listen++;
		if (!(rc = cfg_walk_map(c, e, listen_keys, l, NULL)))
			rc = mesh_require(c, e, req);
		if (!rc && http_parse_listen(l->address, &ss, &len) < 0)
			rc = cfg_fail(c, e, "address \"%s\": not IP:PORT or [IPv6]:PORT", l->address);
		if (!rc && !l->certificate != !l->key)
			rc = cfg_fail(c, e, "TLS needs both certificate and key");
		cfg_pop(c, old);
	}
	return rc;
}

static const struct cfg_key limit_keys[] = {
	CFG_UINT("rate", struct meshd_conf, rate, 1, 100000),
	CFG_UINT("burst", struct meshd_conf, burst, 1, 100000),
	CFG_UINT("max_body", struct meshd_conf, max_body, 256, 1 << 20),
	CFG_UINT("per_source", struct meshd_conf, per_source, 1, CFG_HTTP_PER_SOURCE_MAX),
	{ 0 },
};

static int key_limits(struct cfg_ctx *c, yaml_node_t *v, void *obj, const struct cfg_key *k)
{
	(void)k;
	return cfg_walk_map(c, v, limit_keys, obj, NULL);
}

static const struct cfg_key top_keys[] = {
	PATHKEY("inventory", inventory),
	PATHKEY("state", state),
	PATHKEY("admin_socket", admin_socket),
	CFG_FN("listen", key_listen, 0),
	CFG_FN("limits", key_limits, 0),
	{ 0 },
};

void meshd_conf_free(struct meshd_conf *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n_listen; i++) {
		free(c->listen[i].address);
		free(c->listen[i].certificate);
		free(c->listen[i].key);
	}
	free(c->listen);
	free(c->inventory);
	free(c->state);
	free(c->admin_socket);
	free(c->path);
	free(c);
}

static int set_default(char **field, const char *value)
{
	if (*field)
		return 0;
	return (*field = strdup(value)) ? 0 : -ENOMEM;
}

struct meshd_conf *meshd_conf_load(const char *path, char *err, size_t errlen)
{
	static const char *const req[] = { "inventory", "listen", NULL };
	struct meshd_conf *conf = calloc(1, sizeof(*conf));
	struct config *scratch = calloc(1, sizeof(*scratch));   /* the walker's warnings */
	struct cfg_ctx c = { .file = path, .err = err, .errlen = errlen, .cfg = scratch };
	yaml_document_t doc;
	yaml_node_t *root;
	char *buf = NULL;
	size_t len;
	int rc = -ENOMEM;

	if (errlen)
		err[0] = '\0';
	if (!conf || !scratch || !(conf->path = strdup(path))) {
		snprintf(err, errlen, "%s: out of memory", path);
		goto fail;
	}
	conf->rate = 10;
	conf->burst = 20;
	conf->max_body = 8192;
	conf->per_source = 16;
	if ((rc = cfg_read_file(path, &buf, &len, err, errlen)))
		goto fail;
	rc = cfg_parse_doc(&c, &doc, buf, len, &root);
	if (!rc && !(rc = cfg_walk_map(&c, root, top_keys, conf, NULL)))
		rc = mesh_require(&c, root, req);
	if (c.doc)
		yaml_document_delete(&doc);
	if (rc)
		goto fail;
	if (set_default(&conf->state, "/var/lib/meshd/meshd.db") ||
	    set_default(&conf->admin_socket, "/run/meshd/admin.sock")) {
		snprintf(err, errlen, "%s: out of memory", path);
		goto fail;
	}
	free(buf);
	cfg_free(scratch);
	return conf;
fail:
	free(buf);
	cfg_free(scratch);
	meshd_conf_free(conf);
	return NULL;
}
