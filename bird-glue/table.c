/*
 * table.c — the protocols healthd owns, keyed by name, and the include
 * file that states them.
 *
 * Per service and family: healthd_<service>_v4 carries the prefixes with
 * the `up` communities; a state with communities of its own gets its own
 * protocol beside it (healthd_<service>_v4_degraded, ..._draining), so a
 * change of state is an `enable` of one and a `disable` of the other,
 * never a `configure`.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "bird-glue/table.h"

static const char *const variant_suffix[CFG_COMM_SETS] = {
	[CFG_COMM_UP] = "",
	[CFG_COMM_DEGRADED] = "_degraded",
	[CFG_COMM_DRAINING] = "_draining",
};

static const char *const variant_word[CFG_COMM_SETS] = {
	[CFG_COMM_UP] = "up",
	[CFG_COMM_DEGRADED] = "degraded",
	[CFG_COMM_DRAINING] = "draining",
};

const char *bstate_str(enum bstate b)
{
	switch (b) {
	case B_UNKNOWN: return "unknown";
	case B_MISSING: return "missing";
	case B_DOWN: return "down";
	case B_UP: return "up";
	}
	return "invalid";
}

static int by_proto_name(const void *a, const void *b)
{
	return strcmp(((const struct sync_proto *)a)->name, ((const struct sync_proto *)b)->name);
}

static int by_svc_name(const void *a, const void *b)
{
	return strcmp(((const struct sync_svc *)a)->name, ((const struct sync_svc *)b)->name);
}

struct sync_proto *table_proto(const struct sync_table *t, const char *name)
{
	struct sync_proto key;

	if (!t->n_protos || snprintf(key.name, sizeof(key.name), "%s", name) >= (int)sizeof(key.name))
		return NULL;
	return bsearch(&key, t->protos, t->n_protos, sizeof(key), by_proto_name);
}

struct sync_svc *table_svc(const struct sync_table *t, const char *name)
{
	struct sync_svc key;

	if (!t->n_svcs || snprintf(key.name, sizeof(key.name), "%s", name) >= (int)sizeof(key.name))
		return NULL;
	return bsearch(&key, t->svcs, t->n_svcs, sizeof(key), by_svc_name);
}

struct sync_proto *table_wanted(const struct sync_table *t, const struct sync_svc *v, int f)
{
	int i = v->proto[f][v->variant];

	if (i < 0)
		i = v->proto[f][CFG_COMM_UP];
	return i < 0 ? NULL : &t->protos[i];
}

void table_update_wants(struct sync_table *t)
{
	for (size_t i = 0; i < t->n_protos; i++)
		t->protos[i].want = false;
	for (size_t i = 0; i < t->n_svcs; i++) {
		struct sync_svc *v = &t->svcs[i];

		for (int f = 0; f < 2 && v->announce; f++) {
			struct sync_proto *p = table_wanted(t, v, f);

			if (p)
				p->want = true;
		}
	}
}

static bool same_prefixes(const struct sync_proto *a, const struct sync_proto *b)
{
	return a->family == b->family &&
	       cfg_prefixes_equal(a->prefixes, a->n_prefixes, b->prefixes, b->n_prefixes);
}

/* The leaving protocol, if any, that is up with exactly P's prefixes. */
static const struct sync_proto *predecessor_up(const struct sync_table *t,
					       const struct sync_proto *p)
{
	for (size_t i = 0; i < t->n_protos; i++) {
		const struct sync_proto *q = &t->protos[i];

		if (q->leaving && q->bird == B_UP && same_prefixes(p, q))
			return q;
	}
	return NULL;
}

bool table_holding(const struct sync_table *t, const struct sync_proto *p)
{
	if (p->want || p->bird != B_UP || !p->n_prefixes)
		return false;
	if (!p->leaving) {
		/* the state it announced until the new one's protocol is up */
		const struct sync_svc *v = table_svc(t, p->svc);
		const struct sync_proto *w = v && v->announce ?
			table_wanted(t, v, p->family == AF_INET6) : NULL;

		return w && w != p && w->bird != B_UP;
	}
	for (size_t i = 0; i < t->n_protos; i++) {
		const struct sync_proto *q = &t->protos[i];

		if (!q->leaving && q->want && q->bird != B_UP && same_prefixes(p, q))
			return true;
	}
	return false;
}

bool table_family_up(const struct sync_table *t, const struct sync_svc *v, int f)
{
	const struct sync_proto *w = table_wanted(t, v, f);

	for (int k = 0; k < CFG_COMM_SETS; k++)
		if (v->proto[f][k] >= 0 && t->protos[v->proto[f][k]].bird == B_UP)
			return true;
	/* a renamed service's prefixes, still announced under the old name */
	return w && predecessor_up(t, w);
}

static void proto_free(struct sync_proto *p)
{
	free(p->prefixes);
	free(p->comms);
}

void table_free(struct sync_table *t)
{
	for (size_t i = 0; i < t->n_protos; i++)
		proto_free(&t->protos[i]);
	free(t->protos);
	free(t->svcs);
	memset(t, 0, sizeof(*t));
}

/* The communities a state's protocol carries: up, plus the state's own. */
static int proto_fill(struct sync_proto *p, const struct cfg_service *c, int fam, int variant)
{
	const struct cfg_communities *up = &c->communities[CFG_COMM_UP];
	const struct cfg_communities *own = &c->communities[variant];
	size_t n = up->n + (variant != CFG_COMM_UP ? own->n : 0);

	snprintf(p->name, sizeof(p->name), "healthd_%s_v%c%s", c->name,
		 fam == AF_INET ? '4' : '6', variant_suffix[variant]);
	snprintf(p->svc, sizeof(p->svc), "%s", c->name);
	p->family = fam;
	p->variant = variant;
	p->bird = B_UNKNOWN;
	p->prefixes = calloc(c->n_prefixes ? c->n_prefixes : 1, sizeof(*p->prefixes));
	p->comms = calloc(n ? n : 1, sizeof(*p->comms));
	if (!p->prefixes || !p->comms)
		return -ENOMEM;
	for (size_t i = 0; i < c->n_prefixes; i++)
		if (c->prefixes[i].family == fam)
			p->prefixes[p->n_prefixes++] = c->prefixes[i];
	for (size_t i = 0; i < up->n; i++)
		p->comms[p->n_comms++] = up->items[i];
	for (size_t i = 0; variant != CFG_COMM_UP && i < own->n; i++)
		p->comms[p->n_comms++] = own->items[i];
	return 0;
}

static int variant_of(const char *word)
{
	for (int v = 0; v < CFG_COMM_SETS; v++)
		if (!strcmp(word, variant_word[v]))
			return v;
	return CFG_COMM_UP;
}

/* How many protocols cfg has: per service and family, up plus each state
 * with communities of its own. */
static size_t count_protos(const struct config *cfg)
{
	size_t n = 0;

	for (size_t i = 0; i < cfg->n_services; i++) {
		const struct cfg_service *c = &cfg->services[i];
		size_t states = 1 + (c->communities[CFG_COMM_DEGRADED].n > 0) +
				(c->communities[CFG_COMM_DRAINING].n > 0);
		bool fam[2] = { false, false };

		for (size_t k = 0; k < c->n_prefixes; k++)
			fam[c->prefixes[k].family == AF_INET6] = true;
		n += states * (fam[0] + fam[1]);
	}
	return n;
}

static int build_protos(struct sync_table *t, const struct config *cfg)
{
	for (size_t i = 0; i < cfg->n_services; i++) {
		const struct cfg_service *c = &cfg->services[i];

		for (int f = 0; f < 2; f++) {
			int fam = f == 0 ? AF_INET : AF_INET6;
			bool used = false;

			for (size_t k = 0; k < c->n_prefixes; k++)
				used |= c->prefixes[k].family == fam;
			for (int v = 0; used && v < CFG_COMM_SETS; v++) {
				if (v != CFG_COMM_UP && !c->communities[v].n)
					continue;
				if (proto_fill(&t->protos[t->n_protos++], c, fam, v) < 0)
					return -ENOMEM;
			}
		}
	}
	return 0;
}

/* Services in name order; their protocols found by name. */
static void index_svcs(struct sync_table *t)
{
	qsort(t->protos, t->n_protos, sizeof(*t->protos), by_proto_name);
	qsort(t->svcs, t->n_svcs, sizeof(*t->svcs), by_svc_name);
	for (size_t i = 0; i < t->n_svcs; i++)
		memset(t->svcs[i].proto, 0xff, sizeof(t->svcs[i].proto));
	for (size_t i = 0; i < t->n_protos; i++) {
		struct sync_proto *p = &t->protos[i];
		struct sync_svc *v = p->leaving ? NULL : table_svc(t, p->svc);

		if (v)
			v->proto[p->family == AF_INET6][p->variant] = (int)i;
	}
}

int table_build(struct sync_table *out, const struct sync_table *old,
		const struct config *cfg, const char *text, bool *file_lacks)
{
	struct sync_table t = { 0 };
	size_t n_new = count_protos(cfg), n_leaving = 0;

	*file_lacks = false;
	for (size_t i = 0; i < old->n_protos; i++)
		n_leaving += old->protos[i].bird != B_MISSING;
	t.protos = calloc(n_new + n_leaving + 1, sizeof(*t.protos));
	t.svcs = calloc(cfg->n_services + 1, sizeof(*t.svcs));
	if (!t.protos || !t.svcs || build_protos(&t, cfg) < 0)
		goto fail;
	for (size_t i = 0; i < cfg->n_services; i++) {
		struct sync_svc *v = &t.svcs[t.n_svcs++];
		const struct sync_svc *was = table_svc(old, cfg->services[i].name);

		snprintf(v->name, sizeof(v->name), "%s", cfg->services[i].name);
		if (was) {
			v->announce = was->announce;
			v->variant = was->variant;
			memcpy(v->state, was->state, sizeof(v->state));
			continue;
		}
		/* Until told otherwise, want what the file says. */
		if (!table_state_in(text, v->name, v->state, sizeof(v->state))) {
			snprintf(v->state, sizeof(v->state), "withdrawn");
			*file_lacks = true;
		}
		v->announce = strcmp(v->state, "withdrawn") != 0;
		v->variant = variant_of(v->state);
	}
	/* What BIRD told of a protocol carries over to its new version. */
	for (size_t i = 0; i < t.n_protos; i++) {
		const struct sync_proto *was = table_proto(old, t.protos[i].name);

		if (was) {
			t.protos[i].bird = was->bird;
			t.protos[i].bo = was->bo;
		}
	}
	qsort(t.protos, t.n_protos, sizeof(*t.protos), by_proto_name);
	for (size_t i = 0; i < old->n_protos; i++) {
		const struct sync_proto *p = &old->protos[i];
		struct sync_proto *q;

		if (p->bird == B_MISSING || bsearch(p, t.protos, n_new, sizeof(*p), by_proto_name))
			continue;
		q = &t.protos[t.n_protos++];
		*q = *p;
		q->leaving = true;
		q->prefixes = malloc((p->n_prefixes + 1) * sizeof(*p->prefixes));
		q->comms = malloc((p->n_comms + 1) * sizeof(*p->comms));
		if (!q->prefixes || !q->comms)
			goto fail;
		memcpy(q->prefixes, p->prefixes, p->n_prefixes * sizeof(*p->prefixes));
		memcpy(q->comms, p->comms, p->n_comms * sizeof(*p->comms));
	}
	index_svcs(&t);
	table_update_wants(&t);
	*out = t;
	return 0;
fail:
	table_free(&t);
	return -ENOMEM;
}

int table_seed_leaving(struct sync_table *t, const char *text)
{
	static const char head[] = "protocol static healthd_";
	size_t extra = 0;

	for (int pass = 0; pass < 2; pass++) {
		for (const char *p = strstr(text, head); p; p = strstr(p + 1, head)) {
			char name[BIRD_PROTO_NAME_MAX];
			size_t len = strcspn(p + 16, " {\n");
			struct sync_proto *q;

			if ((p != text && p[-1] != '\n') || len >= sizeof(name))
				continue;
			memcpy(name, p + 16, len);
			name[len] = '\0';
			if (table_proto(t, name))
				continue;
			if (pass == 0) {
				extra++;
				continue;
			}
			q = &t->protos[t->n_protos++];
			memset(q, 0, sizeof(*q));
			memcpy(q->name, name, len + 1);
			q->family = strstr(name, "_v6") ? AF_INET6 : AF_INET;
			q->leaving = true;
			q->bird = B_UNKNOWN;
		}
		if (pass == 0) {
			struct sync_proto *n;

			if (!extra)
				return 0;
			n = realloc(t->protos, (t->n_protos + extra + 1) * sizeof(*n));
			if (!n)
				return -ENOMEM;
			t->protos = n;
		}
	}
	index_svcs(t);
	return 0;
}

void table_drop_gone(struct sync_table *t)
{
	size_t n = 0;
	bool dropped = false;

	for (size_t i = 0; i < t->n_protos; i++) {
		if (t->protos[i].leaving && t->protos[i].bird == B_MISSING) {
			proto_free(&t->protos[i]);
			dropped = true;
			continue;
		}
		t->protos[n++] = t->protos[i];
	}
	t->n_protos = n;
	if (dropped)
		index_svcs(t);
}

/* ---- the include file ---- */

char *table_render(const struct sync_table *t, const char *node)
{
	struct bird_static *st = calloc(t->n_protos + 1, sizeof(*st));
	struct cfg_communities *comms = calloc(t->n_protos + 1, sizeof(*comms));
	size_t n = 0;
	char *text = NULL;

	if (!st || !comms)
		goto out;
	for (size_t i = 0; i < t->n_protos; i++) {
		const struct sync_proto *p = &t->protos[i];
		const struct sync_svc *v = p->leaving ? NULL : table_svc(t, p->svc);

		/* A leaving protocol is dropped once BIRD no longer runs it; one
		 * known only from the file at start (its routes unknown) at once,
		 * after it was disabled. */
		if (p->leaving && ((p->bird != B_UP && p->bird != B_UNKNOWN) || !p->n_prefixes))
			continue;
		comms[n].items = p->comms;
		comms[n].n = p->n_comms;
		snprintf(st[n].name, sizeof(st[n].name), "%s", p->name);
		st[n].family = p->family;
		st[n].prefixes = p->prefixes;
		st[n].n_prefixes = p->n_prefixes;
		st[n].communities = &comms[n];
		st[n].disabled = !p->want && !table_holding(t, p);
		st[n].state = v ? v->state : "withdrawn";
		n++;
	}
	text = bird_render_text(st, n, node);
out:
	free(st);
	free(comms);
	return text;
}

char *table_restate(const struct sync_table *t, const char *text)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	const char *p = text;

	if (!f)
		return NULL;
	while (*p) {
		const char *nl = strchr(p, '\n');
		size_t l = nl ? (size_t)(nl - p) + 1 : strlen(p);

		if (!memmem(p, l, "disabled yes;", 13) && !memmem(p, l, "# healthd-state:", 16))
			fwrite(p, 1, l, f);
		if (l > 16 && !strncmp(p, "protocol static ", 16)) {
			char name[BIRD_PROTO_NAME_MAX];
			const char *s = p + 16;
			size_t nl2 = strcspn(s, " {\n");
			const struct sync_proto *q = NULL;
			const struct sync_svc *v = NULL;

			if (nl2 < sizeof(name)) {
				memcpy(name, s, nl2);
				name[nl2] = '\0';
				q = table_proto(t, name);
			}
			if (q && !q->leaving)
				v = table_svc(t, q->svc);
			fprintf(f, "\t# healthd-state: %s\n%s", v ? v->state : "withdrawn",
				q && (q->want || table_holding(t, q)) ? "" : "\tdisabled yes;\n");
		}
		p += l;
	}
	fclose(f);
	return out;
}

/* Lines that `disable`/`enable` already took care of. */
static bool runtime_only(const char *line, size_t len)
{
	return memmem(line, len, "disabled yes;", 13) || memmem(line, len, "# healthd-state:", 16) ||
	       (len && line[0] == '#');
}

static const char *next_line(const char *p, size_t *len)
{
	while (*p) {
		const char *nl = strchr(p, '\n');
		size_t l = nl ? (size_t)(nl - p) : strlen(p);

		if (!runtime_only(p, l)) {
			*len = l;
			return p;
		}
		p += l + (nl ? 1 : 0);
	}
	*len = 0;
	return p;
}

bool table_same_config(const char *a, const char *b)
{
	if (!a || !b)
		return false;
	for (;;) {
		size_t la, lb;

		a = next_line(a, &la);
		b = next_line(b, &lb);
		if (!*a || !*b)
			return !*a && !*b;
		if (la != lb || memcmp(a, b, la))
			return false;
		a += la + (a[la] ? 1 : 0);
		b += lb + (b[lb] ? 1 : 0);
	}
}

int table_read_file(const char *path, char **out)
{
	FILE *f = fopen(path, "re"), *m;
	char chunk[4096];
	size_t n, len = 0;

	*out = NULL;
	if (!f) {
		if (errno != ENOENT)
			return -errno;
		*out = strdup("");
		return *out ? 0 : -ENOMEM;
	}
	m = open_memstream(out, &len);
	while (m && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		fwrite(chunk, 1, n, m);
	if (m)
		fclose(m);
	fclose(f);
	return *out ? 0 : -ENOMEM;
}

int table_state_in(const char *text, const char *service, char *state, size_t len)
{
	char head[160];

	for (int fam = 4; fam <= 6; fam += 2) {
		snprintf(head, sizeof(head), "protocol static healthd_%s_v%d ", service, fam);
		const char *p = strstr(text, head);
		if (!p)
			continue;
		const char *end = strstr(p + 1, "\nprotocol ");
		const char *st = strstr(p, "# healthd-state: ");
		if (!st || (end && st > end))
			continue;
		st += strlen("# healthd-state: ");
		snprintf(state, len, "%.*s", (int)strcspn(st, " \t\r\n"), st);
		return 1;
	}
	return 0;
}
