/*
 * meshd's routes (meshd(8), MESH.md):
 *
 *   GET  /api/v1/nodes/{region|node}/config   node credential or its tunnel address
 *   GET  /api/v1/nodes/{node}/wireguard       node credential or its tunnel address
 *   GET  /api/v1/firewall/rules[?node=NAME]   node credential or its tunnel address
 *   POST /api/v1/nodes/discover               anyone: a lookup, nothing secret
 *   POST /api/v1/nodes/enroll                 a one-time token
 *   GET  /api/v1/status                       anyone: the API's own health
 *
 * Who is calling is decided by two things only: the bearer credential
 * issued at enrolment (compared by its hash) and the TCP source address of
 * the connection. No header a client sets, X-Forwarded-For included, is
 * read at all. Every request first takes a token from its source's bucket.
 */
#include <errno.h>
#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "healthd/healthd.h"
#include "meshd/meshd.h"
#include "meshd/state.h"

#define PFX "/api/v1/"

static enum MHD_Result fail(struct meshd *d, struct http_request *r, unsigned code,
			    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static enum MHD_Result fail(struct meshd *d, struct http_request *r, unsigned code,
			    const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	d->n.errors++;
	if (code == MHD_HTTP_UNAUTHORIZED || code == MHD_HTTP_FORBIDDEN)
		d->n.refused++;
	log_debug("%s %s %s: %u %s", r->peer_text, r->method, r->url, code, msg);
	return http_reply_json(r->conn, code, json_pack("{ss}", "error", msg));
}

/* The node a request speaks for: its credential's or its tunnel address's.
 * NULL with the reply's code and reason. */
static const struct mesh_node *caller(struct meshd *d, struct http_request *r,
				      unsigned *code, char *why, size_t whylen)
{
	const char *auth = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
						       MHD_HTTP_HEADER_AUTHORIZATION);
	const struct mesh_node *n;
	char name[128];

	if (auth) {
		if (strncasecmp(auth, "Bearer ", 7)) {
			*code = MHD_HTTP_UNAUTHORIZED;
			snprintf(why, whylen, "Authorization: only a Bearer credential is understood");
			return NULL;
		}
		auth += 7;
		while (*auth == ' ')
			auth++;
		char err[256];

		int rc = mstate_node_by_credential(d->st, auth, name, sizeof(name), err, sizeof(err));

		if (rc < 0 && rc != -ENOENT) {
			log_err("auth by credential: %s", err);
			*code = MHD_HTTP_SERVICE_UNAVAILABLE;
			snprintf(why, whylen, "the state cannot be read; retry");
			return NULL;
		}
		if (rc != 0) {
			*code = MHD_HTTP_UNAUTHORIZED;
			snprintf(why, whylen, "credential not recognised (or its node is disabled)");
			return NULL;
		}
		if (!(n = inv_node(d->inv, name))) {
			*code = MHD_HTTP_FORBIDDEN;
			snprintf(why, whylen, "%s is no longer in the inventory", name);
			return NULL;
		}
		return n;
	}
	if ((n = inv_node_by_tunnel(d->inv, &r->peer))) {
		struct mstate_node sn;
		char err[256];
		int rc = mstate_node_get(d->st, n->name, &sn, err, sizeof(err));

		/* a disabled node is refused here too, whatever view is served */
		if (inv_node_disabled(d->inv, n) || (rc == 0 && sn.disabled_at)) {
			*code = MHD_HTTP_FORBIDDEN;
			snprintf(why, whylen, "%s is disabled", n->name);
			return NULL;
		}
		if (rc < 0 && rc != -ENOENT) {
			log_err("auth by tunnel address: %s", err);
			*code = MHD_HTTP_SERVICE_UNAVAILABLE;
			snprintf(why, whylen, "the state cannot be read; retry");
			return NULL;
		}
		return n;
	}
	*code = MHD_HTTP_UNAUTHORIZED;
	snprintf(why, whylen, "a node credential (Authorization: Bearer) or a request from the "
		 "node's own tunnel address is needed");
	return NULL;
}

/* The caller must be the node named; NULL after the reply. */
static const struct mesh_node *authorised(struct meshd *d, struct http_request *r,
					  const struct mesh_node *want, enum MHD_Result *ret)
{
	const struct mesh_node *who;
	unsigned code;
	char why[200];

	if (!(who = caller(d, r, &code, why, sizeof(why)))) {
		*ret = fail(d, r, code, "%s", why);
		return NULL;
	}
	if (want && who != want) {
		*ret = fail(d, r, MHD_HTTP_FORBIDDEN, "%s's credential is not %s's", who->name, want->name);
		return NULL;
	}
	return who;
}

/* "/api/v1/nodes/X/what" -> X (into buf) and what */
static bool split_node_path(const char *url, char *x, size_t xlen, const char **what)
{
	const char *p = url + strlen(PFX "nodes/"), *slash = strchr(p, '/');
	size_t n;

	if (!slash || slash == p || strchr(slash + 1, '/'))
		return false;
	n = (size_t)(slash - p);
	if (n >= xlen)
		return false;
	memcpy(x, p, n);
	x[n] = '\0';
	*what = slash + 1;
	return true;
}

static enum MHD_Result node_get(struct meshd *d, struct http_request *r)
{
	char x[128];
	const char *what;
	const struct mesh_node *n;
	enum MHD_Result ret = MHD_NO;
	bool many = false;

	if (!split_node_path(r->url, x, sizeof(x), &what) ||
	    (strcmp(what, "config") && strcmp(what, "wireguard")))
		return fail(d, r, MHD_HTTP_NOT_FOUND, "%s: no such endpoint", r->url);
	n = inv_node(d->inv, x);
	if (!n && !strcmp(what, "config"))
		n = inv_node_by_region(d->inv, x, &many);
	if (!n) {
		/* who asks is checked first: an unknown name tells a stranger nothing */
		if (!authorised(d, r, NULL, &ret))
			return ret;
		if (many)
			return fail(d, r, MHD_HTTP_CONFLICT, "region %s has more than one node: ask by node name", x);
		return fail(d, r, MHD_HTTP_NOT_FOUND, "%s: no such node%s", x,
			    strcmp(what, "config") ? "" : " or region");
	}
	if (!authorised(d, r, n, &ret))
		return ret;
	if (!strcmp(what, "config")) {
		struct MHD_Response *resp = inv_config_reply(d->inv, n);

		if (!resp)
			return fail(d, r, MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot render %s's files", n->name);
		return MHD_queue_response(r->conn, MHD_HTTP_OK, resp);
	}
	return http_reply_json(r->conn, MHD_HTTP_OK, inv_wireguard_json(d->inv, n));
}

static enum MHD_Result firewall(struct meshd *d, struct http_request *r)
{
	const char *name = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "node");
	const struct mesh_node *want = NULL, *who;
	enum MHD_Result ret = MHD_NO;

	if (!(who = authorised(d, r, NULL, &ret)))
		return ret;
	if (name && !(want = inv_node(d->inv, name)))
		return fail(d, r, MHD_HTTP_NOT_FOUND, "%s: no such node", name);
	if (want && want != who)
		return fail(d, r, MHD_HTTP_FORBIDDEN, "%s's credential is not %s's", who->name, want->name);
	return http_reply_json(r->conn, MHD_HTTP_OK, inv_firewall_json(d->inv, who));
}

/* The body as a JSON object; NULL after a 400 naming what is wrong. */
static json_t *body_object(struct meshd *d, struct http_request *r, enum MHD_Result *ret)
{
	json_error_t e;
	json_t *j;

	if (!r->body_len) {
		*ret = fail(d, r, MHD_HTTP_BAD_REQUEST, "a JSON object is expected in the body");
		return NULL;
	}
	j = json_loadb(r->body, r->body_len, JSON_REJECT_DUPLICATES, &e);
	if (!j) {
		*ret = fail(d, r, MHD_HTTP_BAD_REQUEST, "bad JSON at line %d column %d: %s",
			    e.line, e.column, e.text);
		return NULL;
	}
	if (!json_is_object(j)) {
		json_decref(j);
		*ret = fail(d, r, MHD_HTTP_BAD_REQUEST, "a JSON object is expected in the body");
		return NULL;
	}
	return j;
}

/* A string member (required); NULL after a 400. */
static const char *member(struct meshd *d, struct http_request *r, json_t *j, const char *key,
			  size_t maxlen, enum MHD_Result *ret)
{
	json_t *v = json_object_get(j, key);

	if (!v || !json_is_string(v)) {
		*ret = fail(d, r, MHD_HTTP_BAD_REQUEST, "\"%s\": a string is required", key);
		return NULL;
	}
	if (json_string_length(v) == 0 || json_string_length(v) > maxlen ||
	    strlen(json_string_value(v)) != json_string_length(v)) {
		*ret = fail(d, r, MHD_HTTP_BAD_REQUEST, "\"%s\": empty, too long or holding a NUL", key);
		return NULL;
	}
	return json_string_value(v);
}

static bool ipv4_text(const char *s)
{
	struct mesh_addr a;

	return mesh_parse_addr(s, &a) == 0 && a.family == AF_INET;
}

static enum MHD_Result discover(struct meshd *d, struct http_request *r)
{
	enum MHD_Result ret = MHD_NO;
	json_t *j = body_object(d, r, &ret);
	const char *ip;
	const struct mesh_node *n;

	if (!j)
		return ret;
	if (!(ip = member(d, r, j, "external_ip", 64, &ret))) {
		json_decref(j);
		return ret;
	}
	if (!ipv4_text(ip)) {
		ret = fail(d, r, MHD_HTTP_BAD_REQUEST, "\"external_ip\": not an IPv4 address");
	} else if (!(n = inv_node_by_public(d->inv, ip))) {
		ret = fail(d, r, MHD_HTTP_NOT_FOUND, "%s: no node has this address", ip);
	} else {
		ret = http_reply_json(r->conn, MHD_HTTP_OK,
				      json_pack("{ss ss sb}", "node", n->name, "region", n->region,
						"enrolled", n->wireguard_public_key != NULL));
	}
	json_decref(j);
	return ret;
}

/* 503 with Retry-After: the state could not be read or written (locked
 * by another process, say); nothing changed. */
static enum MHD_Result state_unavailable(struct meshd *d, struct http_request *r)
{
	static const char body[] = "{\"error\":\"the state is busy or unreadable; nothing changed, retry\"}\n";
	struct MHD_Response *resp = MHD_create_response_from_buffer(sizeof(body) - 1, (void *)body,
								    MHD_RESPMEM_PERSISTENT);
	enum MHD_Result ret;

	d->n.errors++;
	if (!resp)
		return MHD_NO;
	MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, "1");
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	ret = MHD_queue_response(r->conn, MHD_HTTP_SERVICE_UNAVAILABLE, resp);
	MHD_destroy_response(resp);
	return ret;
}

static const char *refusal_text(enum mstate_refusal why)
{
	switch (why) {
	case MSTATE_TOKEN_UNKNOWN: return "token refused: unknown";
	case MSTATE_TOKEN_EXPIRED: return "token refused: expired";
	case MSTATE_TOKEN_REDEEMED: return "token refused: already redeemed";
	case MSTATE_TOKEN_OTHER_NODE: return "token refused: it is for another node";
	case MSTATE_KEY_TAKEN: return "public key already belongs to another node";
	case MSTATE_ADDRESS_TAKEN: return "tunnel address already held by another node";
	case MSTATE_NODE_DISABLED: return "node is disabled";
	default: return "refused";
	}
}

static unsigned refusal_code(enum mstate_refusal why)
{
	return why == MSTATE_KEY_TAKEN || why == MSTATE_ADDRESS_TAKEN ? MHD_HTTP_CONFLICT
								       : MHD_HTTP_FORBIDDEN;
}

static enum MHD_Result enroll_refused(struct meshd *d, struct http_request *r, const char *node,
				      unsigned code, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

static enum MHD_Result enroll_refused(struct meshd *d, struct http_request *r, const char *node,
				      unsigned code, const char *fmt, ...)
{
	char msg[300];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	char err[256];

	if (mstate_audit(d->st, time(NULL), "refused", node, r->peer_text, msg, err, sizeof(err)) < 0)
		log_err("audit: %s", err);
	log_warn("enroll from %s refused%s%s: %s", r->peer_text, node ? " for " : "", node ? node : "", msg);
	return fail(d, r, code, "%s", msg);
}

static enum MHD_Result enroll(struct meshd *d, struct http_request *r)
{
	enum MHD_Result ret = MHD_NO;
	json_t *j = body_object(d, r, &ret);
	const char *token, *key, *ip;
	const struct mesh_node *n;
	enum mstate_refusal why = MSTATE_OK;
	char node[128], cred[65], err[256];
	struct mstate_enroll_req req;
	time_t now = time(NULL);
	bool retry = false;

	if (!j)
		return ret;
	if (!(token = member(d, r, j, "token", 128, &ret)) ||
	    !(key = member(d, r, j, "public_key", 64, &ret)) ||
	    !(ip = member(d, r, j, "external_ip", 64, &ret)))
		goto out;
	/* Refusals before a known token are counted and logged at debug
	 * only: anyone can send them, and the audit log is never pruned. */
	if (!mesh_wg_key_valid(key)) {
		ret = fail(d, r, MHD_HTTP_BAD_REQUEST,
			   "\"public_key\": not a WireGuard public key (44 characters of base64)");
		goto out;
	}
	if (!ipv4_text(ip)) {
		ret = fail(d, r, MHD_HTTP_BAD_REQUEST, "\"external_ip\": not an IPv4 address");
		goto out;
	}
	node[0] = '\0';
	if (mstate_token_node(d->st, token, now, node, sizeof(node), &why, err, sizeof(err)) < 0) {
		log_err("enroll: %s", err);
		ret = state_unavailable(d, r);
		goto out;
	}
	if (why == MSTATE_TOKEN_UNKNOWN || !node[0]) {
		ret = fail(d, r, MHD_HTTP_FORBIDDEN, "%s", refusal_text(why));
		goto out;
	}
	/* a spent token may be a retry of an enrolment whose reply was lost:
	 * mstate_enroll_ex decides (same node, same key, within 10 minutes) */
	if (why != MSTATE_OK && why != MSTATE_TOKEN_REDEEMED) {
		ret = enroll_refused(d, r, node, refusal_code(why), "%s", refusal_text(why));
		goto out;
	}
	if (!(n = inv_node(d->inv, node))) {
		ret = enroll_refused(d, r, node, MHD_HTTP_FORBIDDEN,
				     "token refused: it is for %s, which the inventory no longer has", node);
		goto out;
	}
	if (inv_public_from_inventory(d->inv, n) && strcmp(n->public_ipv4.text, ip)) {
		ret = enroll_refused(d, r, node, MHD_HTTP_FORBIDDEN,
				     "external_ip %s is not %s's public_ipv4 %s", ip, node, n->public_ipv4.text);
		goto out;
	}
	/* where the inventory names the node's address, the enrolment must
	 * come from it: a token alone, copied off a machine, is not enough */
	if (inv_public_from_inventory(d->inv, n) && strcmp(n->public_ipv4.text, r->peer_text)) {
		ret = enroll_refused(d, r, node, MHD_HTTP_FORBIDDEN,
				     "the request comes from %s, not from %s's public_ipv4 %s",
				     r->peer_text, node, n->public_ipv4.text);
		goto out;
	}
	for (size_t i = 0; i < d->inv->m->n_nodes; i++) {
		const struct mesh_node *o = &d->inv->m->nodes[i];

		if (o != n && o->wireguard_public_key && !strcmp(o->wireguard_public_key, key)) {
			ret = enroll_refused(d, r, node, MHD_HTTP_CONFLICT,
					     "public key already belongs to node %s", o->name);
			goto out;
		}
		if (o != n && o->public_ipv4.family && !strcmp(o->public_ipv4.text, ip)) {
			ret = enroll_refused(d, r, node, MHD_HTTP_CONFLICT,
					     "external_ip %s is already node %s's address", ip, o->name);
			goto out;
		}
	}
	memset(&req, 0, sizeof(req));
	req.token = token;
	req.node = n->name;
	req.public_key = key;
	req.external_ip = ip;
	req.tunnel_ipv4 = n->tunnel_ipv4.family ? n->tunnel_ipv4.text : NULL;
	req.tunnel_ipv6 = n->tunnel_ipv6.family ? n->tunnel_ipv6.text : NULL;
	req.source = r->peer_text;
	if (mstate_enroll_ex(d->st, &req, now, cred, &why, &retry, err, sizeof(err)) < 0) {
		log_err("enroll of %s: %s", node, err);
		ret = state_unavailable(d, r);   /* nothing was committed: the token stands */
		goto out;
	}
	if (why != MSTATE_OK) {
		/* mstate_enroll wrote the audit row itself */
		log_warn("enroll from %s refused for %s: %s", r->peer_text, node, err);
		ret = fail(d, r, refusal_code(why), "%s", err);
		goto out;
	}
	/* committed: from here on the token is spent, whatever happens to us */
	d->n.enrolled++;
	if (inv_overlay(d->inv, n->name, key, ip) < 0)
		log_err("enroll of %s: out of memory laying its key over the inventory", n->name);
	log_notice("enrolled %s (region %s) from %s, public key %s%s", n->name, n->region,
		   r->peer_text, key, retry ? " (a retry: its credential is new)" : "");
	ret = http_reply_json(r->conn, MHD_HTTP_OK,
			      json_pack("{ss ss ss so so sb}", "node", n->name, "region", n->region,
					"credential", cred,
					"config", json_sprintf(PFX "nodes/%s/config", n->name),
					"wireguard", json_sprintf(PFX "nodes/%s/wireguard", n->name),
					"retry", retry));
	explicit_bzero(cred, sizeof(cred));
out:
	json_decref(j);
	return ret;
}

static enum MHD_Result status(struct meshd *d, struct http_request *r)
{
	char loaded[32];
	struct tm tm;
	char err[256];
	int64_t enrolled = mstate_enrolled_count(d->st, err, sizeof(err));

	if (enrolled < 0)
		log_err("status: %s", err);

	gmtime_r(&d->inv->loaded, &tm);
	strftime(loaded, sizeof(loaded), "%Y-%m-%dT%H:%M:%SZ", &tm);
	return http_reply_json(r->conn, MHD_HTTP_OK,
		json_pack("{ss s{ss+ sI ss} so sI sI sI sI sI}",
			  "version", HEALTHD_VERSION,
			  "inventory", "sha256", "sha256:", d->inv->sha256,
			  "nodes", (json_int_t)d->inv->m->n_nodes, "loaded", loaded,
			  "enrolled", enrolled < 0 ? json_null() : json_integer(enrolled),
			  "requests", (json_int_t)d->n.requests,
			  "errors", (json_int_t)d->n.errors,
			  "refused", (json_int_t)d->n.refused,
			  "rate_limited", (json_int_t)d->n.rate_limited,
			  "uptime_s", (json_int_t)(time(NULL) - d->started)));
}

enum MHD_Result meshd_route(void *ctx, struct http_request *r)
{
	struct meshd *d = ctx;
	bool get = !strcmp(r->method, "GET") || !strcmp(r->method, "HEAD");
	unsigned retry;

	d->n.requests++;
	if (!limiter_take(d->lim, &r->peer, uv_now(d->loop), &retry)) {
		struct MHD_Response *resp;
		char secs[16];
		enum MHD_Result ret;
		static const char body[] = "{\"error\":\"too many requests from this address\"}\n";

		d->n.rate_limited++;
		d->n.errors++;
		resp = MHD_create_response_from_buffer(sizeof(body) - 1, (void *)body,
						       MHD_RESPMEM_PERSISTENT);
		if (!resp)
			return MHD_NO;
		snprintf(secs, sizeof(secs), "%u", retry);
		MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, secs);
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
		ret = MHD_queue_response(r->conn, MHD_HTTP_TOO_MANY_REQUESTS, resp);
		MHD_destroy_response(resp);
		return ret;
	}
	if (!strncmp(r->url, PFX "nodes/", strlen(PFX "nodes/"))) {
		const char *rest = r->url + strlen(PFX "nodes/");

		if (!strcmp(rest, "discover") || !strcmp(rest, "enroll")) {
			if (strcmp(r->method, "POST"))
				return fail(d, r, MHD_HTTP_METHOD_NOT_ALLOWED, "%s: POST only", r->url);
			return rest[0] == 'd' ? discover(d, r) : enroll(d, r);
		}
		if (!get)
			return fail(d, r, MHD_HTTP_METHOD_NOT_ALLOWED, "%s: GET only", r->url);
		return node_get(d, r);
	}
	if (!strcmp(r->url, PFX "firewall/rules")) {
		if (!get)
			return fail(d, r, MHD_HTTP_METHOD_NOT_ALLOWED, "%s: GET only", r->url);
		return firewall(d, r);
	}
	if (!strcmp(r->url, PFX "status")) {
		if (!get)
			return fail(d, r, MHD_HTTP_METHOD_NOT_ALLOWED, "%s: GET only", r->url);
		return status(d, r);
	}
	return fail(d, r, MHD_HTTP_NOT_FOUND, "no such endpoint");
}

/* ---- TLS pin ---- */

int meshd_tls_pin(const char *cert_pem, char *out, size_t outlen, char *err, size_t errlen)
{
	gnutls_x509_crt_t crt = NULL;
	gnutls_pubkey_t pub = NULL;
	gnutls_datum_t in = { (unsigned char *)cert_pem, (unsigned)strlen(cert_pem) }, der = { 0 }, b64 = { 0 };
	unsigned char sum[32];
	gnutls_datum_t sd = { sum, sizeof(sum) };
	int rc = -1, e;

	if ((e = gnutls_x509_crt_init(&crt)) < 0 ||
	    (e = gnutls_x509_crt_import(crt, &in, GNUTLS_X509_FMT_PEM)) < 0 ||
	    (e = gnutls_pubkey_init(&pub)) < 0 ||
	    (e = gnutls_pubkey_import_x509(pub, crt, 0)) < 0 ||
	    (e = gnutls_pubkey_export2(pub, GNUTLS_X509_FMT_DER, &der)) < 0 ||
	    (e = gnutls_hash_fast(GNUTLS_DIG_SHA256, der.data, der.size, sum)) < 0 ||
	    (e = gnutls_base64_encode2(&sd, &b64)) < 0) {
		snprintf(err, errlen, "certificate: %s", gnutls_strerror(e));
		goto out;
	}
	snprintf(out, outlen, "sha256//%.*s", (int)b64.size, (const char *)b64.data);
	rc = 0;
out:
	gnutls_free(der.data);
	gnutls_free(b64.data);
	if (pub)
		gnutls_pubkey_deinit(pub);
	if (crt)
		gnutls_x509_crt_deinit(crt);
	return rc;
}

int meshd_tls_pair(const char *cert_pem, const char *key_pem, char *err, size_t errlen)
{
	gnutls_certificate_credentials_t cred;
	gnutls_datum_t c = { (unsigned char *)cert_pem, (unsigned)strlen(cert_pem) };
	gnutls_datum_t k = { (unsigned char *)key_pem, (unsigned)strlen(key_pem) };
	int e;

	if ((e = gnutls_certificate_allocate_credentials(&cred)) < 0) {
		snprintf(err, errlen, "%s", gnutls_strerror(e));
		return -1;
	}
	/* GnuTLS refuses a key that is not the certificate's here, as MHD's
	 * start would */
	e = gnutls_certificate_set_x509_key_mem2(cred, &c, &k, GNUTLS_X509_FMT_PEM, NULL, 0);
	gnutls_certificate_free_credentials(cred);
	if (e < 0) {
		snprintf(err, errlen, "%s", gnutls_strerror(e));
		return -1;
	}
	return 0;
}

int meshd_reload(struct meshd *d, char *err, size_t errlen)
{
	struct inv *v = inv_load(d->conf->inventory, d->st, err, errlen);

	if (!v)
		return -1;
	inv_free(d->inv);
	d->inv = v;
	return 0;
}
