/*
 * config/config.c — loads healthd.yaml with libyaml and validates it: the
 * top level and the services (checks are read by check_keys.c, through the
 * walker in yaml_walk.c), then load, free and comparison.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config/load.h"

static const char *const on_stop_names[] = { "keep", "drain", "withdraw", NULL };

/* ---- services ---- */

static int svc_name(struct cfg_ctx *c, yaml_node_t *v, void *obj,
		    const struct cfg_key *kk)
{
	struct cfg_service *s = obj;
	int rc = cfg_get_str(c, v, &s->name);

	(void)kk;
	if (rc)
		return rc;
	if (!cfg_name_valid(s->name))
		return cfg_fail(c, v, "'%s' is not a valid name ([a-z0-9_], 1 to %d characters)",
				s->name, CFG_NAME_MAX - 1);
	if (strlen(s->name) > CFG_SERVICE_NAME_MAX)
		return cfg_fail(c, v, "'%s' is longer than %d characters: BIRD's protocol "
				"healthd_%s_v4_degraded would pass its 63-character limit",
				s->name, CFG_SERVICE_NAME_MAX, s->name);
	for (size_t i = 0; i < c->svc_idx; i++)
		if (strcmp(c->cfg->services[i].name, s->name) == 0)
			return cfg_fail(c, v, "duplicate service name '%s' (first at line %u)",
					s->name, c->cfg->services[i].line);
	return 0;
}

/* A prefix may be announced by one service only, and only once. */
static int prefix_dup(struct cfg_ctx *c, yaml_node_t *v, const struct cfg_prefix *p)
{
	for (size_t i = 0; i <= c->svc_idx; i++) {
		const struct cfg_service *o = &c->cfg->services[i];

		for (size_t j = 0; j < o->n_prefixes; j++) {
			if (strcmp(o->prefixes[j].text, p->text) != 0)
				continue;
			if (o == c->svc)
				return cfg_fail(c, v, "duplicate prefix %s", p->text);
			return cfg_fail(c, v, "prefix %s is already announced by service %s",
					p->text, o->name);
		}
	}
	return 0;
}

static int svc_prefix(struct cfg_ctx *c, yaml_node_t *v, struct cfg_prefix *p)
{
	int rc = cfg_want_scalar(c, v, "a prefix");

	if (rc)
		return rc;
	rc = cfg_parse_prefix(cfg_sval(v), p);
	if (rc == -EDOM)
		return cfg_fail(c, v, "'%s' has host bits set (the prefix is %s)",
				cfg_sval(v), p->text);
	if (rc)
		return cfg_fail(c, v, "'%s' is not a prefix (ADDR/LEN, IPv4 or IPv6)",
				cfg_sval(v));
	if ((rc = prefix_dup(c, v, p)))
		return rc;
	if (p->len > (p->family == AF_INET ? 24 : 48))
		return cfg_warn(c, v, "prefix %s is longer than /%d; many upstreams filter it",
				p->text, p->family == AF_INET ? 24 : 48);
	return 0;
}

static int svc_prefixes(struct cfg_ctx *c, yaml_node_t *v, void *obj,
			const struct cfg_key *kk)
{
	struct cfg_service *s = obj;
	int rc = cfg_want_seq(c, v, true);

	(void)kk;
	if (rc)
		return rc;
	if (!(s->prefixes = calloc(CFG_SEQ_LEN(v), sizeof(*s->prefixes))))
		return cfg_fail(c, v, "out of memory");
	for (size_t i = 0; !rc && i < CFG_SEQ_LEN(v); i++) {
		size_t old = cfg_push_idx(c, i);

		rc = svc_prefix(c, CFG_SEQ_AT(c, v, i), &s->prefixes[i]);
		if (!rc)
			s->n_prefixes++;
		cfg_pop(c, old);
	}
	return rc;
}

static int comm_set(struct cfg_ctx *c, yaml_node_t *v, void *obj,
		    const struct cfg_key *kk)
{
	struct cfg_communities *set = &((struct cfg_service *)obj)->communities[kk->off];
	int rc = cfg_want_seq(c, v, false);

	if (rc)
		return rc;
	free(set->items);
	set->n = 0;
	if (!(set->items = calloc(CFG_SEQ_LEN(v) + 1, sizeof(*set->items))))
		return cfg_fail(c, v, "out of memory");
	for (size_t i = 0; !rc && i < CFG_SEQ_LEN(v); i++) {
		yaml_node_t *n = CFG_SEQ_AT(c, v, i);
		struct cfg_community *cm = &set->items[set->n];
		size_t old = cfg_push_idx(c, i);

		if (!(rc = cfg_want_scalar(c, n, "a community")) &&
		    cfg_parse_community(cfg_sval(n), cm))
			rc = cfg_fail(c, n, "'%s' is not a community (\"A:B\", each 0 to 65535, or large \"A:B:C\", each 0 to 4294967295)",
				      cfg_sval(n));
		for (size_t j = 0; !rc && j < set->n; j++)
			if (!memcmp(&set->items[j], cm, sizeof(*cm)))
				rc = cfg_fail(c, n, "duplicate community '%s'", cfg_sval(n));
		set->n += !rc;
		cfg_pop(c, old);
	}
	return rc;
}

static const struct cfg_key comm_keys[] = {
	CFG_FN("up", comm_set, CFG_COMM_UP),
	CFG_FN("degraded", comm_set, CFG_COMM_DEGRADED),
	CFG_FN("draining", comm_set, CFG_COMM_DRAINING),
	{ 0 },
};

static int svc_communities(struct cfg_ctx *c, yaml_node_t *v, void *obj,
			   const struct cfg_key *kk)
{
	(void)kk;
	return cfg_walk_map(c, v, comm_keys, obj, NULL);
}

static int svc_on_stop(struct cfg_ctx *c, yaml_node_t *v, void *obj,
		       const struct cfg_key *kk)
{
	int i, rc = cfg_get_enum(c, v, on_stop_names, &i);

	(void)kk;
	if (!rc)
		((struct cfg_service *)obj)->on_stop = (enum cfg_on_stop)i;
	return rc;
}

static int svc_checks(struct cfg_ctx *c, yaml_node_t *v, void *obj,
		      const struct cfg_key *kk)
{
	struct cfg_service *s = obj;
	int rc = cfg_want_seq(c, v, true);

	(void)kk;
	if (rc)
		return rc;
	if (!(s->checks = calloc(CFG_SEQ_LEN(v), sizeof(*s->checks))))
		return cfg_fail(c, v, "out of memory");
	s->n_checks = CFG_SEQ_LEN(v);
	for (c->chk_idx = 0; !rc && c->chk_idx < s->n_checks; c->chk_idx++) {
		size_t old = cfg_push_idx(c, c->chk_idx);

		rc = cfg_load_check(c, CFG_SEQ_AT(c, v, c->chk_idx), &s->checks[c->chk_idx]);
		cfg_pop(c, old);
	}
	return rc;
}

static int svc_on_change(struct cfg_ctx *c, yaml_node_t *v, void *obj,
			 const struct cfg_key *kk)
{
	struct cfg_service *s = obj;

	(void)kk;
	return cfg_get_argv(c, v, &s->on_change, &s->n_on_change);
}

static const struct cfg_key dampening_keys[] = {
	CFG_DUR("half_life", struct cfg_dampening, half_life_ms, CFG_SEC(1), CFG_HOUR(24)),
	CFG_NUM("suppress", struct cfg_dampening, suppress),
	CFG_NUM("reuse", struct cfg_dampening, reuse),
	CFG_DUR("max_suppress", struct cfg_dampening, max_suppress_ms, 1, CFG_HOUR(24)),
	CFG_NUM("penalty", struct cfg_dampening, penalty),
	{ 0 },
};

/* Either side of reuse < suppress may be the one written, so the error
 * points at reuse when it is there, else at suppress. */
static int svc_dampening(struct cfg_ctx *c, yaml_node_t *v, void *obj,
			 const struct cfg_key *kk)
{
	struct cfg_dampening *d = &((struct cfg_service *)obj)->dampening;
	const char *key = "reuse";
	yaml_node_t *at;
	size_t old;
	int rc = cfg_walk_map(c, v, dampening_keys, d, NULL);

	(void)kk;
	if (rc || d->reuse < d->suppress)
		return rc;
	if (!(at = cfg_map_get(c, v, key)))
		at = cfg_map_get(c, v, key = "suppress");
	old = cfg_push_key(c, key);
	cfg_fail(c, at ? at : v, "reuse (%g) must be less than suppress (%g)",
		 d->reuse, d->suppress);
	cfg_pop(c, old);
	return -EINVAL;
}

static const struct cfg_key guard_keys[] = {
	CFG_UINT("min_announcers", struct cfg_guard, min_announcers, 0, 1000),
	CFG_DUR("step", struct cfg_guard, step_ms, 100, CFG_MIN(10)),
	CFG_DUR("interval", struct cfg_guard, interval_ms, 100, CFG_MIN(1)),
	{ 0 },
};

/* A node ranked r re-announces r steps after it saw the fleet empty: a
 * step must outlast the polls that show it the node ranked before it. */
static int svc_guard(struct cfg_ctx *c, yaml_node_t *v, void *obj,
		     const struct cfg_key *kk)
{
	(void)kk;
	return cfg_load_guard(c, v, &((struct cfg_service *)obj)->guard);
}

int cfg_load_guard(struct cfg_ctx *c, yaml_node_t *v, struct cfg_guard *g)
{
	const char *key = "step";
	char step[32], iv[32];
	yaml_node_t *at;
	size_t old;
	int rc = cfg_walk_map(c, v, guard_keys, g, NULL);

	if (rc || g->step_ms >= 3 * g->interval_ms)
		return rc;
	if (!(at = cfg_map_get(c, v, key)))
		at = cfg_map_get(c, v, key = "interval");
	cfg_format_duration(step, sizeof(step), g->step_ms);
	cfg_format_duration(iv, sizeof(iv), g->interval_ms);
	old = cfg_push_key(c, key);
	cfg_fail(c, at ? at : v, "step (%s) must be at least 3 times interval (%s)", step, iv);
	cfg_pop(c, old);
	return -EINVAL;
}

static const struct cfg_key service_keys[] = {
	CFG_FN("name", svc_name, 0),
	CFG_FN("prefixes", svc_prefixes, 0),
	CFG_FN("communities", svc_communities, 0),
	CFG_DUR("drain", struct cfg_service, drain_ms, 0, CFG_DRAIN_MAX_MS),
	CFG_DUR("hold_down", struct cfg_service, hold_down_ms, 0, CFG_HOUR(24)),
	CFG_FN("dampening", svc_dampening, 0),
	CFG_FN("guard", svc_guard, 0),
	CFG_STR("maintenance_file", struct cfg_service, maintenance_file),
	CFG_FN("on_stop", svc_on_stop, 0),
	CFG_FN("checks", svc_checks, 0),
	CFG_FN("on_change", svc_on_change, 0),
	CFG_DUR("on_change_timeout", struct cfg_service, on_change_timeout_ms, 10, CFG_HOUR(1)),
	{ 0 },
};

void cfg_service_defaults(struct cfg_service *s)
{
	s->drain_ms = 30000;
	s->hold_down_ms = 5000;
	s->dampening = (struct cfg_dampening){
		.half_life_ms = 60000, .suppress = 2500, .reuse = 1000,
		.penalty = 1000, .max_suppress_ms = 300000,
	};
	s->on_stop = CFG_ON_STOP_KEEP;
	s->on_change_timeout_ms = 10000;
	s->guard = (struct cfg_guard){
		.min_announcers = 1, .step_ms = 2000, .interval_ms = 500,
	};
}

static int load_service(struct cfg_ctx *c, yaml_node_t *m, struct cfg_service *s)
{
	static const char *const required[] = { "name", "prefixes", "checks", NULL };
	struct cfg_communities *dr = &s->communities[CFG_COMM_DRAINING];
	int rc = cfg_want_map(c, m);

	s->line = (unsigned)m->start_mark.line + 1;
	s->col = (unsigned)m->start_mark.column + 1;
	cfg_service_defaults(s);
	if (!(dr->items = calloc(1, sizeof(*dr->items))))
		return cfg_fail(c, m, "out of memory");
	dr->items[0] = (struct cfg_community){ .v = { 65535, 0 } }; /* RFC 8326 */
	dr->n = 1;
	for (const char *const *r = required; !rc && *r; r++)
		if (!cfg_map_get(c, m, *r))
			rc = cfg_missing(c, m, *r, NULL);
	return rc ? rc : cfg_walk_map(c, m, service_keys, s, NULL);
}

static int load_services(struct cfg_ctx *c, yaml_node_t *v)
{
	struct config *cfg = c->cfg;
	size_t old = cfg_push_key(c, "services");
	int rc = cfg_want_seq(c, v, true);

	if (!rc && !(cfg->services = calloc(CFG_SEQ_LEN(v), sizeof(*cfg->services))))
		rc = cfg_fail(c, v, "out of memory");
	if (!rc)
		cfg->n_services = CFG_SEQ_LEN(v);
	for (c->svc_idx = 0; !rc && c->svc_idx < cfg->n_services; c->svc_idx++) {
		size_t o = cfg_push_idx(c, c->svc_idx);

		c->svc = &cfg->services[c->svc_idx];
		rc = load_service(c, CFG_SEQ_AT(c, v, c->svc_idx), c->svc);
		cfg_pop(c, o);
	}
	cfg_pop(c, old);
	return rc;
}

/* ---- top level ---- */

static int http_listen(struct cfg_ctx *c, yaml_node_t *v, void *obj,
		       const struct cfg_key *kk)
{
	struct config *cfg = obj;
	int rc = cfg_want_seq(c, v, false);

	(void)kk;
	if (rc)
		return rc;
	if (!(cfg->http.listen = calloc(CFG_SEQ_LEN(v) + 1, sizeof(char *))))
		return cfg_fail(c, v, "out of memory");
	for (size_t i = 0; !rc && i < CFG_SEQ_LEN(v); i++) {
		yaml_node_t *n = CFG_SEQ_AT(c, v, i);
		char host[64], **l = &cfg->http.listen[cfg->http.n_listen];
		uint16_t port;
		size_t old = cfg_push_idx(c, i);

		if (!(rc = cfg_get_str(c, n, l)))
			cfg->http.n_listen++;
		if (!rc && cfg_parse_hostport(*l, true, host, sizeof(host), &port))
			rc = cfg_fail(c, n, "'%s' is not ADDR:PORT (IPv4 or [IPv6], port 1 to 65535)",
				      *l);
		cfg_pop(c, old);
	}
	return rc;
}

/* healthd binds control.socket and connects to bird.socket: each must fit
 * sockaddr_un.sun_path with its NUL. */
static int unix_path(struct cfg_ctx *c, yaml_node_t *v, void *obj,
		     const struct cfg_key *kk)
{
	char **path = (char **)((char *)obj + kk->off);
	int rc = cfg_get_str(c, v, path);

	if (rc)
		return rc;
	if (strlen(*path) > CFG_UNIX_PATH_MAX)
		return cfg_fail(c, v, "'%s' is %zu bytes, longer than the %d a unix socket path may have",
				*path, strlen(*path), CFG_UNIX_PATH_MAX);
	return 0;
}

/* A unix path, or "" for none (what healthd -t -v prints when it is not set). */
static int unix_path_or_none(struct cfg_ctx *c, yaml_node_t *v, void *obj,
			     const struct cfg_key *kk)
{
	char **path = (char **)((char *)obj + kk->off);

	if (v->type == YAML_SCALAR_NODE && !*cfg_sval(v)) {
		free(*path);
		*path = strdup("");
		return *path ? 0 : cfg_fail(c, v, "out of memory");
	}
	return unix_path(c, v, obj, kk);
}

static const struct cfg_key bird_keys[] = {
	CFG_FN("socket", unix_path, offsetof(struct config, bird.socket)),
	CFG_STR("include", struct config, bird.include),
	CFG_DUR("timeout", struct config, bird.timeout_ms, 1, CFG_MIN(5)),
	CFG_DUR("reconcile", struct config, bird.reconcile_ms, 10, CFG_HOUR(1)),
	CFG_BOOL("purge", struct config, bird.purge),
	{ 0 },
};
static const struct cfg_key control_keys[] = {
	CFG_FN("socket", unix_path, offsetof(struct config, control.socket)),
	CFG_FN("readonly_socket", unix_path_or_none, offsetof(struct config, control.readonly_socket)),
	{ 0 },
};
static const struct cfg_key http_keys[] = {
	CFG_FN("listen", http_listen, 0),
	CFG_UINT("per_source_limit", struct config, http.per_source_limit, 1,
		 CFG_HTTP_PER_SOURCE_MAX),
	{ 0 },
};
static const struct cfg_key defaults_keys[] = {
	CFG_DUR("interval", struct config, defaults.interval_ms, 10, CFG_HOUR(24)),
	CFG_DUR("timeout", struct config, defaults.timeout_ms, 1, CFG_HOUR(1)),
	CFG_UINT("rise", struct config, defaults.rise, 1, 100),
	CFG_UINT("fall", struct config, defaults.fall, 1, 100),
	{ 0 },
};

/* A nested mapping whose table is in the key's arg. */
static int section(struct cfg_ctx *c, yaml_node_t *v, void *obj,
		   const struct cfg_key *kk)
{
	return cfg_walk_map(c, v, (const struct cfg_key *)kk->off, obj, NULL);
}

/* The read-only socket is a second socket: one path cannot be both. */
static int control_section(struct cfg_ctx *c, yaml_node_t *v, void *obj,
			   const struct cfg_key *kk)
{
	struct config *cfg = obj;
	int rc = cfg_walk_map(c, v, control_keys, obj, NULL);

	(void)kk;
	if (!rc && cfg->control.readonly_socket[0] &&
	    (!strcmp(cfg->control.readonly_socket, cfg->control.socket) ||
	     !strcmp(cfg->control.readonly_socket, cfg->bird.socket)))
		rc = cfg_fail(c, v, "readonly_socket '%s' is also control.socket or bird.socket",
			      cfg->control.readonly_socket);
	return rc;
}

static int top_services(struct cfg_ctx *c, yaml_node_t *v, void *obj,
			const struct cfg_key *kk)
{
	(void)obj, (void)kk;
	c->services = v; /* read last: checks inherit `defaults` */
	return 0;
}

static const struct cfg_key top_keys[] = {
	CFG_STR("node", struct config, node),
	CFG_STR("state_dir", struct config, state_dir),
	CFG_FN("bird", section, (size_t)bird_keys),
	CFG_FN("control", control_section, 0),
	CFG_FN("http", section, (size_t)http_keys),
	CFG_FN("defaults", section, (size_t)defaults_keys),
	CFG_FN("services", top_services, 0),
	{ 0 },
};

static int set_defaults(struct config *cfg, const char *name)
{
	char host[256] = "localhost";

	if (gethostname(host, sizeof(host) - 1) != 0)
		snprintf(host, sizeof(host), "localhost");
	cfg->path = strdup(name);
	cfg->node = strdup(host);
	cfg->bird.socket = strdup("/run/bird/bird.ctl");
	cfg->bird.include = strdup("/etc/bird/healthd.conf");
	cfg->bird.timeout_ms = 2000;
	cfg->bird.reconcile_ms = 5000;
	cfg->control.socket = strdup("/run/healthd/healthd.sock");
	cfg->control.readonly_socket = strdup(""); /* none */
	cfg->state_dir = strdup("/var/lib/healthd");
	cfg->http.per_source_limit = CFG_HTTP_PER_SOURCE_DEFAULT;
	/* timeout 0: not set; checks then take CFG_DEFAULT_TIMEOUT_MS or their
	 * interval, and the value is filled in once the file is read */
	cfg->defaults = (struct cfg_defaults){ 1000, 0, 2, 2 };
	if (!cfg->path || !cfg->node || !cfg->bird.socket ||
	    !cfg->bird.include || !cfg->control.socket || !cfg->control.readonly_socket ||
	    !cfg->state_dir)
		return -ENOMEM;
	return 0;
}

/* ---- loading ---- */

/* A first pass over the events: syntax errors, anchors and extra
 * documents, none of which the document tree shows. */
static int scan_events(struct cfg_ctx *c, const char *yaml, size_t len)
{
	yaml_parser_t p;
	yaml_event_t ev;
	int rc = 0, docs = 0;

	if (!yaml_parser_initialize(&p))
		return cfg_fail_at(c, (yaml_mark_t){ 0 }, "yaml", "out of memory");
	yaml_parser_set_input_string(&p, (const unsigned char *)yaml, len);
	for (bool end = false; !end && !rc;) {
		if (!yaml_parser_parse(&p, &ev)) {
			if (p.error == YAML_READER_ERROR)
				rc = cfg_fail_at(c, (yaml_mark_t){ 0 }, "yaml", "%s at byte %zu",
						 p.problem, p.problem_offset);
			else if (p.context)
				rc = cfg_fail_at(c, p.problem_mark, "yaml", "%s (%s at line %zu)",
						 p.problem, p.context, p.context_mark.line + 1);
			else
				rc = cfg_fail_at(c, p.problem_mark, "yaml", "%s",
						 p.problem ? p.problem : "syntax error");
			break;
		}
		if (ev.type == YAML_ALIAS_EVENT ||
		    (ev.type == YAML_SCALAR_EVENT && ev.data.scalar.anchor) ||
		    (ev.type == YAML_SEQUENCE_START_EVENT && ev.data.sequence_start.anchor) ||
		    (ev.type == YAML_MAPPING_START_EVENT && ev.data.mapping_start.anchor))
			rc = cfg_fail_at(c, ev.start_mark, "yaml",
					 "anchors and aliases are not supported");
		else if (ev.type == YAML_DOCUMENT_START_EVENT && ++docs > 1)
			rc = cfg_fail_at(c, ev.start_mark, "yaml",
					 "only one YAML document is allowed");
		end = ev.type == YAML_STREAM_END_EVENT;
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&p);
	return rc;
}

int cfg_parse_doc(struct cfg_ctx *c, yaml_document_t *doc, const char *yaml,
		  size_t len, yaml_node_t **root)
{
	yaml_parser_t p;
	int rc;

	if ((rc = scan_events(c, yaml, len)))
		return rc;
	if (!yaml_parser_initialize(&p))
		return cfg_fail_at(c, (yaml_mark_t){ 0 }, "yaml", "out of memory");
	yaml_parser_set_input_string(&p, (const unsigned char *)yaml, len);
	if (yaml_parser_load(&p, doc))
		c->doc = doc;
	else /* the loader deleted what it had built */
		rc = cfg_fail_at(c, p.problem_mark, "yaml", "%s", p.problem ? p.problem : "cannot load");
	yaml_parser_delete(&p);
	if (rc)
		return rc;
	if (!(*root = yaml_document_get_root_node(c->doc)))
		return cfg_fail_at(c, (yaml_mark_t){ 0 }, "config", "the file is empty");
	return 0;
}

/* Sets c->doc once there is a document to delete. */
static int load_doc(struct cfg_ctx *c, yaml_document_t *doc, const char *yaml,
		    size_t len)
{
	yaml_node_t *root;
	int rc;

	if ((rc = cfg_parse_doc(c, doc, yaml, len, &root)))
		return rc;
	if ((rc = cfg_walk_map(c, root, top_keys, c->cfg, NULL)))
		return rc;
	if (!c->services)
		return cfg_missing(c, root, "services", NULL);
	return load_services(c, c->services);
}

struct config *cfg_load_string(const char *name, const char *yaml, size_t len,
			       char *err, size_t errlen)
{
	yaml_document_t doc;
	struct cfg_ctx c = { .file = name, .err = err, .errlen = errlen };
	int rc;

	if (errlen)
		err[0] = '\0';
	if (!(c.cfg = calloc(1, sizeof(*c.cfg))) || set_defaults(c.cfg, name)) {
		snprintf(err, errlen, "%s: out of memory", name);
		goto fail;
	}
	rc = load_doc(&c, &doc, yaml, len);
	if (c.doc)
		yaml_document_delete(&doc);
	if (rc)
		goto fail;
	if (!c.cfg->defaults.timeout_ms)
		c.cfg->defaults.timeout_ms = CFG_DEFAULT_TIMEOUT_MS;
	return c.cfg;
fail:
	cfg_free(c.cfg);
	return NULL;
}

int cfg_read_file(const char *path, char **out, size_t *outlen, char *err,
		  size_t errlen)
{
	char *buf = NULL;
	size_t len = 0, cap = 0, n;
	int rc = 0;
	FILE *f = fopen(path, "r");

	if (!f) {
		rc = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(-rc));
		return rc;
	}
	do {
		if (len + 1 >= cap) {   /* room for the NUL below */
			char *nb = realloc(buf, (cap = cap ? cap * 2 : 8192));

			if (!nb) {
				snprintf(err, errlen, "%s: out of memory", path);
				rc = -ENOMEM;
				goto out;
			}
			buf = nb;
		}
		len += n = fread(buf + len, 1, cap - len, f);
	} while (n > 0);
	if (ferror(f)) {
		snprintf(err, errlen, "%s: read error", path);
		rc = -EIO;
	}
out:
	fclose(f);
	if (rc) {
		free(buf);
		return rc;
	}
	buf[len] = '\0';
	*out = buf;
	*outlen = len;
	return 0;
}

struct config *cfg_load(const char *path, char *err, size_t errlen)
{
	struct config *cfg;
	char *buf;
	size_t len;

	if (cfg_read_file(path, &buf, &len, err, errlen))
		return NULL;
	cfg = cfg_load_string(path, buf, len, err, errlen);
	free(buf);
	return cfg;
}

/* ---- the rest of the API ---- */

static void check_free(struct cfg_check *k)
{
	free(k->name);
	free(k->type);
	free(k->url);
	free(k->expect_status);
	free(k->expect_body);
	free(k->connect_to);
	for (size_t i = 0; i < k->n_headers; i++) {
		free(k->headers[i].name);
		free(k->headers[i].value);
	}
	free(k->headers);
	for (size_t i = 0; i < k->n_redact_headers; i++)
		free(k->redact_headers[i]);
	free(k->redact_headers);
	free(k->host);
	free(k->qname);
	free(k->server);
	free(k->expect_answer);
	free(k->interface);
	for (size_t i = 0; i < k->n_peers; i++)
		free(k->peers[i].name);
	free(k->peers);
	free(k->uapi_dir);
	cfg_argv_free(k->command, k->n_command);
	for (size_t i = 0; i < k->n_env; i++) {
		free(k->env[i].name);
		free(k->env[i].value);
	}
	free(k->env);
	free(k->working_directory);
	free(k->user);
}

void cfg_free(struct config *cfg)
{
	if (!cfg)
		return;
	for (size_t i = 0; i < cfg->n_services; i++) {
		struct cfg_service *s = &cfg->services[i];

		for (size_t j = 0; j < s->n_checks; j++)
			check_free(&s->checks[j]);
		for (int j = 0; j < CFG_COMM_SETS; j++)
			free(s->communities[j].items);
		free(s->checks);
		free(s->prefixes);
		free(s->name);
		free(s->maintenance_file);
		cfg_argv_free(s->on_change, s->n_on_change);
	}
	free(cfg->services);
	for (size_t i = 0; i < cfg->http.n_listen; i++)
		free(cfg->http.listen[i]);
	for (size_t i = 0; i < cfg->n_warnings; i++)
		free(cfg->warnings[i]);
	free(cfg->http.listen);
	free(cfg->warnings);
	free(cfg->path);
	free(cfg->node);
	free(cfg->bird.socket);
	free(cfg->bird.include);
	free(cfg->control.socket);
	free(cfg->control.readonly_socket);
	free(cfg->state_dir);
	free(cfg);
}

static bool str_eq(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

bool cfg_check_equal(const struct cfg_check *a, const struct cfg_check *b)
{
	if (!str_eq(a->name, b->name) || !str_eq(a->type, b->type) ||
	    a->interval_ms != b->interval_ms || a->timeout_ms != b->timeout_ms ||
	    a->rise != b->rise || a->fall != b->fall || a->on_fail != b->on_fail ||
	    !str_eq(a->url, b->url) || !str_eq(a->expect_body, b->expect_body) ||
	    !str_eq(a->connect_to, b->connect_to) ||
	    a->tls_verify != b->tls_verify || !str_eq(a->host, b->host) ||
	    a->port != b->port || !str_eq(a->qname, b->qname) || a->qtype != b->qtype ||
	    !str_eq(a->server, b->server) || a->expect_rcode != b->expect_rcode ||
	    !str_eq(a->expect_answer, b->expect_answer) || a->n_expect_status != b->n_expect_status ||
	    a->n_headers != b->n_headers || a->n_redact_headers != b->n_redact_headers ||
	    !str_eq(a->interface, b->interface) ||
	    a->n_peers != b->n_peers || a->min_peers != b->min_peers ||
	    a->max_handshake_age_ms != b->max_handshake_age_ms ||
	    a->max_rx_idle_ms != b->max_rx_idle_ms || !str_eq(a->uapi_dir, b->uapi_dir) ||
	    a->n_command != b->n_command || a->n_env != b->n_env ||
	    !str_eq(a->working_directory, b->working_directory) || !str_eq(a->user, b->user))
		return false;
	for (size_t i = 0; i < a->n_command; i++)
		if (!str_eq(a->command[i], b->command[i]))
			return false;
	for (size_t i = 0; i < a->n_env; i++)
		if (!str_eq(a->env[i].name, b->env[i].name) ||
		    !str_eq(a->env[i].value, b->env[i].value))
			return false;
	for (size_t i = 0; i < a->n_peers; i++)
		if (!str_eq(a->peers[i].name, b->peers[i].name) ||
		    memcmp(a->peers[i].raw, b->peers[i].raw, sizeof(a->peers[i].raw)))
			return false;
	for (size_t i = 0; i < a->n_expect_status; i++)
		if (a->expect_status[i] != b->expect_status[i])
			return false;
	for (size_t i = 0; i < a->n_headers; i++)
		if (!str_eq(a->headers[i].name, b->headers[i].name) ||
		    !str_eq(a->headers[i].value, b->headers[i].value))
			return false;
	for (size_t i = 0; i < a->n_redact_headers; i++)
		if (strcasecmp(a->redact_headers[i], b->redact_headers[i]))
			return false;
	return true;
}

const struct cfg_service *cfg_service_find(const struct config *cfg,
					   const char *name)
{
	for (size_t i = 0; i < cfg->n_services; i++)
		if (strcmp(cfg->services[i].name, name) == 0)
			return &cfg->services[i];
	return NULL;
}

bool cfg_prefixes_equal(const struct cfg_prefix *a, size_t na,
			const struct cfg_prefix *b, size_t nb)
{
	if (na != nb)
		return false;
	for (size_t i = 0; i < na; i++) {
		bool found = false;

		for (size_t j = 0; j < nb && !found; j++)
			found = !strcmp(a[i].text, b[j].text);
		if (!found)
			return false;
	}
	return true;
}
