/*
 * mesh/values.c — the typed values of the inventory (addresses, prefixes,
 * names, their lists) on config/'s walker, required keys, and the refusal
 * of anything that looks like a secret, wherever it is written.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mesh/load.h"
void mesh_mark_at(struct cfg_ctx *c, const yaml_node_t *n, struct mesh_mark *at)
{
	at->line = (unsigned)n->start_mark.line + 1;
	at->col = (unsigned)n->start_mark.column + 1;
	snprintf(at->path, sizeof(at->path), "%s", c->path[0] ? c->path : "mesh");
}

int mesh_require(struct cfg_ctx *c, yaml_node_t *m, const char *const *keys)
{
	for (; *keys; keys++)
		if (!cfg_map_get(c, m, *keys))
			return cfg_missing(c, m, *keys, NULL);
	return 0;
}

/* ---- secrets: refused wherever they are written ---- */

/* A key name folded to lower case without '_' and '-'. */
static const char *secret_reason(const char *key)
{
	static const struct { const char *name, *why; } secrets[] = {
		{ "privatekey", "a private key never leaves the machine that made it; the inventory holds public keys only" },
		{ "presharedkey", "a preshared key is a secret; the inventory holds public keys only" },
		{ "password", "a password does not belong in the inventory; give password_file, a path on the node" },
		{ "passwd", "a password does not belong in the inventory; give password_file, a path on the node" },
		{ "secret", "a secret does not belong in the inventory" },
	};
	char f[64];
	size_t n = 0;

	for (; *key && n < sizeof(f) - 1; key++)
		if (*key != '_' && *key != '-')
			f[n++] = (char)tolower((unsigned char)*key);
	f[n] = '\0';
	for (size_t i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++)
		if (strcmp(f, secrets[i].name) == 0)
			return secrets[i].why;
	return NULL;
}

int mesh_scan_secrets(struct cfg_ctx *c, yaml_node_t *n)
{
	int rc = 0;

	if (n->type == YAML_SEQUENCE_NODE) {
		for (size_t i = 0; !rc && i < CFG_SEQ_LEN(n); i++) {
			size_t old = cfg_push_idx(c, i);

			rc = mesh_scan_secrets(c, CFG_SEQ_AT(c, n, i));
			cfg_pop(c, old);
		}
	} else if (n->type == YAML_MAPPING_NODE) {
		for (yaml_node_pair_t *p = n->data.mapping.pairs.start;
		     !rc && p < n->data.mapping.pairs.top; p++) {
			yaml_node_t *k = cfg_node(c, p->key);
			const char *why;
			size_t old;

			if (k->type != YAML_SCALAR_NODE)
				continue;
			old = cfg_push_key(c, cfg_sval(k));
			if ((why = secret_reason(cfg_sval(k))))
				rc = cfg_fail(c, k, "refused: %s", why);
			else
				rc = mesh_scan_secrets(c, cfg_node(c, p->value));
			cfg_pop(c, old);
		}
	}
	return rc;
}

/* ---- typed values ---- */

int mesh_parse_addr(const char *s, struct mesh_addr *a)
{
	memset(a->addr, 0, sizeof(a->addr));
	a->family = strchr(s, ':') ? AF_INET6 : AF_INET;
	if (inet_pton(a->family, s, a->addr) != 1)
		return -EINVAL;
	inet_ntop(a->family, a->addr, a->text, sizeof(a->text));
	return 0;
}

static int get_addr(struct cfg_ctx *c, yaml_node_t *v, struct mesh_addr *a,
		    int family)
{
	int rc = cfg_want_scalar(c, v, "an address");

	if (rc)
		return rc;
	if (mesh_parse_addr(cfg_sval(v), a) ||
	    (family && a->family != family))
		return cfg_fail(c, v, "'%s' is not an %s address", cfg_sval(v),
				family == AF_INET ? "IPv4" : family == AF_INET6 ? "IPv6" : "IP");
	mesh_mark_at(c, v, &a->at);
	return 0;
}

static int get_prefix(struct cfg_ctx *c, yaml_node_t *v, struct mesh_prefix *p,
		      int family)
{
	int rc = cfg_want_scalar(c, v, "a prefix");

	if (rc)
		return rc;
	rc = cfg_parse_prefix(cfg_sval(v), &p->p);
	if (rc == -EDOM)
		return cfg_fail(c, v, "'%s' has host bits set (did you mean %s?)",
				cfg_sval(v), p->p.text);
	if (rc || (family && p->p.family != family))
		return cfg_fail(c, v, "'%s' is not an %s prefix", cfg_sval(v),
				family == AF_INET ? "IPv4" : family == AF_INET6 ? "IPv6" : "IP");
	mesh_mark_at(c, v, &p->at);
	return 0;
}

/* The key's argument is the field's offset, a family or 0 in min. */
int mesh_key_addr(struct cfg_ctx *c, yaml_node_t *v, void *obj,
		    const struct cfg_key *k)
{
	return get_addr(c, v, (struct mesh_addr *)((char *)obj + k->off),
			(int)k->min);
}

int mesh_key_prefix(struct cfg_ctx *c, yaml_node_t *v, void *obj,
		      const struct cfg_key *k)
{
	return get_prefix(c, v, (struct mesh_prefix *)((char *)obj + k->off),
			  (int)k->min);
}


int mesh_key_prefixes(struct cfg_ctx *c, yaml_node_t *v, void *obj,
			const struct cfg_key *k)
{
	struct mesh_prefixes *l = (struct mesh_prefixes *)((char *)obj + k->off);
	int rc = cfg_want_seq(c, v, true);

	if (rc)
		return rc;
	if (!(l->items = calloc(CFG_SEQ_LEN(v), sizeof(*l->items))))
		return cfg_fail(c, v, "out of memory");
	for (size_t i = 0; !rc && i < CFG_SEQ_LEN(v); i++) {
		size_t old = cfg_push_idx(c, i);

		rc = get_prefix(c, CFG_SEQ_AT(c, v, i), &l->items[i], 0);
		l->n += !rc;
		cfg_pop(c, old);
	}
	return rc;
}

int mesh_key_addrs(struct cfg_ctx *c, yaml_node_t *v, void *obj,
		     const struct cfg_key *k)
{
	struct mesh_addrs *l = (struct mesh_addrs *)((char *)obj + k->off);
	int rc = cfg_want_seq(c, v, k->min != 0);

	if (rc || !CFG_SEQ_LEN(v))
		return rc;
	if (!(l->items = calloc(CFG_SEQ_LEN(v), sizeof(*l->items))))
		return cfg_fail(c, v, "out of memory");
	for (size_t i = 0; !rc && i < CFG_SEQ_LEN(v); i++) {
		size_t old = cfg_push_idx(c, i);

		rc = get_addr(c, CFG_SEQ_AT(c, v, i), &l->items[i], 0);
		l->n += !rc;
		cfg_pop(c, old);
	}
	return rc;
}

/* A name: letters, digits, '-', '_' and '.'. */
int mesh_key_name(struct cfg_ctx *c, yaml_node_t *v, void *obj,
		    const struct cfg_key *k)
{
	char **out = (char **)((char *)obj + k->off);
	int rc = cfg_get_str(c, v, out);

	if (!rc && !cfg_name_valid(*out))
		rc = cfg_fail(c, v, "'%s' is not a valid name", *out);
	return rc;
}

bool mesh_ifname_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 15 || !strcmp(s, ".") || !strcmp(s, ".."))
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '_' || *s == '.' || *s == '-'))
			return false;
	return true;
}

/* A Linux interface name: 1-15 characters, no '/', no blank. */
int mesh_key_ifname(struct cfg_ctx *c, yaml_node_t *v, void *obj,
			 const struct cfg_key *k)
{
	char **dst = (char **)((char *)obj + k->off);
	int rc = cfg_get_str(c, v, dst);

	if (rc)
		return rc;
	if (!mesh_ifname_valid(*dst))
		return cfg_fail(c, v, "'%s' is not an interface name (1-15 of [A-Za-z0-9_.-])", *dst);
	/* anycast0 and its 50-anycast.* files are the dummy interface's */
	if (!strcmp(*dst, "lo") || !strcmp(*dst, "anycast") || !strcmp(*dst, "anycast0"))
		return cfg_fail(c, v, "'%s' is taken (lo, and anycast0 for the anycast addresses)", *dst);
	return 0;
}

static bool path_ok(const char *s, bool dir)
{
	size_t n = strlen(s);
	bool bad = s[0] != '/' || n > 160 || strstr(s, "/../") ||
		   (n >= 3 && !strcmp(s + n - 3, "/..")) || (!dir && s[n - 1] == '/');

	for (const unsigned char *p = (const unsigned char *)s; !bad && *p; p++)
		bad = *p <= ' ' || *p == 0x7f || *p == '"' || *p == '\\' || *p == '%';
	return !bad;
}

/* An absolute file name, written into bird.conf's include "...". */
int mesh_key_path(struct cfg_ctx *c, yaml_node_t *v, void *obj,
		  const struct cfg_key *k)
{
	char **dst = (char **)((char *)obj + k->off);
	int rc = cfg_get_str(c, v, dst);

	if (!rc && !path_ok(*dst, false))
		return cfg_fail(c, v, "'%s' is not an absolute file name (at most 160 characters, no blank, quote, backslash, %% or /../)", *dst);
	return rc;
}

/* An absolute directory; the rendered files go under it. */
int mesh_key_root(struct cfg_ctx *c, yaml_node_t *v, void *obj,
		    const struct cfg_key *k)
{
	char **dst = (char **)((char *)obj + k->off);
	int rc = cfg_get_str(c, v, dst);

	if (rc)
		return rc;
	if (!path_ok(*dst, true))
		return cfg_fail(c, v, "'%s' is not an absolute directory (at most 160 characters, no blank, quote, backslash, %% or /../)", *dst);
	return 0;
}


/* ---- enrolment ---- */

int mesh_overlay_node(struct mesh *m, const char *node, const char *public_key,
		      const char *external_ip, bool *key_replaced)
{
	struct mesh_node *n = (struct mesh_node *)mesh_node_find(m, node);
	char *key;

	*key_replaced = false;
	if (!n)
		return -ENOENT;
	if (!mesh_wg_key_valid(public_key))
		return -EINVAL;
	if (n->wireguard_public_key && !strcmp(n->wireguard_public_key, public_key))
		key = NULL;
	else if (!(key = strdup(public_key)))
		return -ENOMEM;
	if (key) {
		*key_replaced = n->wireguard_public_key != NULL;
		free(n->wireguard_public_key);
		n->wireguard_public_key = key;
	}
	if (!n->public_ipv4.family && external_ip && *external_ip) {
		struct mesh_addr a = { 0 };

		if (mesh_parse_addr(external_ip, &a) == 0 && a.family == AF_INET) {
			a.at = n->at;
			n->public_ipv4 = a;
		}
	}
	return 0;
}
