/*
 * import/exabgp.c — the options of ExaBGP's healthcheck as healthd.yaml:
 * one service, its prefixes from --ip, one check from --cmd, the
 * --*-execute commands as its on_change hook. --config FILE is read as
 * healthcheck reads it: each line OPTION=VALUE (or OPTION) is --OPTION
 * VALUE, and those options come before the command line's.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "import/import.h"

#define ARGS_MAX 256
#define VALUES_MAX 32

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

enum kind { FLAG, VALUE, LIST, OPTIONAL };

/* why: NULL for options mapped below. */
static const struct opt {
	const char *lng, *shrt;
	enum kind kind;
	const char *why;
} opts[] = {
	{ "silent", "-s", FLAG, "healthd logs to stderr, which systemd sends to the journal" },
	{ "syslog-facility", "-sF", OPTIONAL, "healthd logs to stderr, which systemd sends to the journal" },
	{ "no-syslog", NULL, FLAG, "healthd logs to stderr, which systemd sends to the journal" },
	{ "debug", "-d", FLAG, "healthd's log level is set on its command line (healthd(8))" },
	{ "no-ack", "-a", FLAG, "healthd talks to BIRD, not to ExaBGP's API" },
	{ "sudo", NULL, FLAG, "healthd sets up no addresses" },
	{ "name", "-n", VALUE, NULL },
	{ "config", "-F", VALUE, NULL },
	{ "pid", "-p", VALUE, "healthd writes no pid file (systemd tracks it)" },
	{ "user", NULL, VALUE, NULL },
	{ "group", NULL, VALUE, "healthd's exec check takes a user; its group is that user's" },
	{ "interval", "-i", VALUE, NULL },
	{ "fast-interval", "-f", VALUE, "healthd checks at one interval; rise and fall count the checks" },
	{ "timeout", "-t", VALUE, NULL },
	{ "rise", NULL, VALUE, NULL },
	{ "fall", NULL, VALUE, NULL },
	{ "disable", NULL, VALUE, NULL },
	{ "command", "-c", VALUE, NULL },
	{ "cmd", NULL, VALUE, NULL },
	{ "next-hop", "-N", VALUE, "the next hop is BIRD's: set it in its protocol or export filter" },
	{ "ip", NULL, LIST, NULL },
	{ "ip-ifname", NULL, LIST, "healthd sets up no addresses on interfaces" },
	{ "local-preference", NULL, VALUE, "set it in BIRD's export filter for the healthd_* protocols" },
	{ "deaggregate-networks", NULL, FLAG, "healthd announces the prefixes as given: list the smaller ones" },
	{ "no-ip-setup", NULL, FLAG, "healthd sets up no addresses (what this asked for)" },
	{ "dynamic-ip-setup", NULL, FLAG, "healthd sets up no addresses" },
	{ "label", NULL, VALUE, "healthd sets up no addresses" },
	{ "label-exact-match", NULL, FLAG, "healthd sets up no addresses" },
	{ "start-ip", NULL, VALUE, "healthd sets no MED per address" },
	{ "up-metric", NULL, VALUE, "healthd sets no MED: set it in BIRD's export filter" },
	{ "down-metric", NULL, VALUE, "healthd withdraws or degrades (communities), it sets no MED" },
	{ "disabled-metric", NULL, VALUE, "healthd drains (communities), it sets no MED" },
	{ "increase", NULL, VALUE, "healthd sets no MED per address" },
	{ "community", NULL, VALUE, NULL },
	{ "extended-community", NULL, VALUE, "healthd's communities are standard or large" },
	{ "large-community", NULL, VALUE, NULL },
	{ "disabled-community", NULL, VALUE, NULL },
	{ "as-path", NULL, VALUE, "prepend in BIRD's export filter, or use a community of the upstream's" },
	{ "up-as-path", NULL, VALUE, "prepend in BIRD's export filter" },
	{ "down-as-path", NULL, VALUE, "a degraded community of the upstream's does this (communities.degraded)" },
	{ "disabled-as-path", NULL, VALUE, "prepend in BIRD's export filter" },
	{ "withdraw-on-down", NULL, FLAG, NULL },
	{ "path-id", NULL, VALUE, "BIRD's add-path setting decides path IDs" },
	{ "neighbor", NULL, LIST, "BIRD's export filter decides which neighbors get the routes" },
	{ "debounce", NULL, FLAG, "healthd tells BIRD about changes only" },
	{ "execute", NULL, LIST, NULL },
	{ "up-execute", NULL, LIST, NULL },
	{ "down-execute", NULL, LIST, NULL },
	{ "disabled-execute", NULL, LIST, NULL },
};
#define N_OPTS (sizeof(opts) / sizeof(opts[0]))

struct values {
	const char *v[VALUES_MAX];
	char where[VALUES_MAX][320];
	int n;
};

struct parsed {
	struct values val[N_OPTS];
	char *owned[ARGS_MAX];      /* words read from --config */
	int n_owned;
};

static int opt_index(const char *name)
{
	for (size_t i = 0; i < N_OPTS; i++)
		if (!strcmp(opts[i].lng, name))
			return (int)i;
	return -1;
}

/* An exact long name, else its unique prefix, as argparse takes it. */
static int opt_long(const char *name, size_t len)
{
	int found = -1;

	for (size_t i = 0; i < N_OPTS; i++) {
		if (strlen(opts[i].lng) == len && !strncmp(opts[i].lng, name, len))
			return (int)i;
		if (!strncmp(opts[i].lng, name, len))
			found = found == -1 ? (int)i : -2;
	}
	return found;
}

static int opt_short(const char *a, const char **attached)
{
	*attached = NULL;
	for (size_t i = 0; i < N_OPTS; i++)
		if (opts[i].shrt && !strcmp(opts[i].shrt, a))
			return (int)i;
	for (size_t i = 0; i < N_OPTS; i++)
		if (opts[i].shrt && strlen(opts[i].shrt) == 2 && !strncmp(opts[i].shrt, a, 2) &&
		    opts[i].kind != FLAG) {
			*attached = a + 2;
			return (int)i;
		}
	return -1;
}

static int set(struct parsed *p, int i, const char *v, const char *where, char *err, size_t errlen)
{
	struct values *vs = &p->val[i];

	if (!strcmp(opts[i].lng, "cmd"))
		vs = &p->val[opt_index("command")];
	if (opts[i].kind != LIST)
		vs->n = 0;
	if (vs->n >= VALUES_MAX)
		return fail(err, errlen, "%s: --%s given more than %d times", where, opts[i].lng,
			    VALUES_MAX);
	vs->v[vs->n] = v ? v : "";
	snprintf(vs->where[vs->n], sizeof(vs->where[0]), "%s", where);
	vs->n++;
	return 0;
}

/* One list of words, each with where it came from. */
static int parse_words(struct parsed *p, char **w, char **where, int n, char *err, size_t errlen)
{
	for (int i = 0; i < n; i++) {
		const char *a = w[i], *v = NULL;
		int o;

		if (!strncmp(a, "--", 2) && a[2]) {
			const char *eq = strchr(a, '=');

			o = opt_long(a + 2, eq ? (size_t)(eq - a - 2) : strlen(a + 2));
			if (o == -2)
				return fail(err, errlen, "%s: '%s' is ambiguous", where[i], a);
			v = eq ? eq + 1 : NULL;
		} else if (a[0] == '-' && a[1]) {
			o = opt_short(a, &v);
			if (v && !*v)
				v = NULL;
		} else {
			return fail(err, errlen, "%s: '%s' is not an option of ExaBGP's healthcheck",
				    where[i], a);
		}
		if (o < 0)
			return fail(err, errlen, "%s: unknown option '%s'", where[i], a);
		if (opts[o].kind == FLAG && v)
			return fail(err, errlen, "%s: --%s takes no value", where[i], opts[o].lng);
		if ((opts[o].kind == VALUE || opts[o].kind == LIST) && !v) {
			if (i + 1 >= n)
				return fail(err, errlen, "%s: --%s needs a value", where[i], opts[o].lng);
			v = w[++i];
		}
		if (opts[o].kind == OPTIONAL && !v && i + 1 < n && w[i + 1][0] != '-')
			v = w[++i];
		if (set(p, o, v, where[i], err, errlen) < 0)
			return -1;
	}
	return 0;
}

static char *trim(char *s)
{
	char *e = s + strlen(s);

	while (*s == ' ' || *s == '\t')
		s++;
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r'))
		*--e = '\0';
	return s;
}

static int read_config(struct parsed *p, const char *path, char **w, char **where, int *n,
		       char *err, size_t errlen)
{
	FILE *f = fopen(path, "re");
	char *line = NULL;
	size_t cap = 0;
	unsigned lineno = 0;
	int rc = 0;

	if (!f)
		return fail(err, errlen, "%s: %s", path, strerror(errno));
	while (!rc && getline(&line, &cap, f) >= 0) {
		char *t = trim(line), *eq, *word = NULL, *loc = NULL;

		lineno++;
		if (!*t || *t == '#')
			continue;
		eq = strchr(t, '=');
		if (eq)
			*eq = '\0';
		for (int part = 0; part < (eq ? 2 : 1) && !rc; part++) {
			if (*n + 1 >= ARGS_MAX || p->n_owned + 2 >= ARGS_MAX) {
				rc = fail(err, errlen, "%s:%u: more than %d options", path, lineno, ARGS_MAX);
				break;
			}
			if ((part ? asprintf(&word, "%s", trim(eq + 1)) :
			     asprintf(&word, "--%s", trim(t))) < 0 ||
			    asprintf(&loc, "%s:%u", path, lineno) < 0) {
				rc = fail(err, errlen, "out of memory");
				break;
			}
			p->owned[p->n_owned++] = word;
			p->owned[p->n_owned++] = loc;
			w[*n] = word;
			where[(*n)++] = loc;
		}
	}
	free(line);
	fclose(f);
	return rc;
}

static const char *last(const struct parsed *p, const char *name)
{
	const struct values *v = &p->val[opt_index(name)];

	return v->n ? v->v[v->n - 1] : NULL;
}

static const char *last_where(const struct parsed *p, const char *name)
{
	const struct values *v = &p->val[opt_index(name)];

	return v->n ? v->where[v->n - 1] : "";
}

/* Space-separated communities of --community and --large-community. */
static void communities(FILE *f, const char *key, const char *const *lists, int n, FILE *notes)
{
	bool any = false;

	for (int l = 0; l < n; l++) {
		char *copy = lists[l] ? strdup(lists[l]) : NULL, *save = NULL;

		for (char *c = copy ? strtok_r(copy, " \t[]", &save) : NULL; c;
		     c = strtok_r(NULL, " \t[]", &save)) {
			struct cfg_community cm;

			if (cfg_parse_community(c, &cm) < 0) {
				imp_not_mapped(notes, 2, key, c, "not a community A:B or A:B:C");
				continue;
			}
			if (any)
				fprintf(f, ", \"%s\"", c);
			else
				fprintf(f, "      %s: [\"%s\"", key, c);
			any = true;
		}
		free(copy);
	}
	if (any)
		fputs("]\n", f);
}

static void state_cmds(FILE *f, const char *state, const char *exa, const struct values *v,
		       const struct values *all)
{
	if (!v->n && !all->n)
		return;
	fprintf(f, " %s) export STATE=%s", state, exa);
	for (int i = 0; i < v->n; i++)
		fprintf(f, "; %s", v->v[i]);
	fputs(";;", f);
}

/* --up-execute, --down-execute, --disabled-execute, --execute as one
 * on_change: the commands of the state healthd moves to, STATE set as
 * healthcheck set it. */
static void hook(FILE *keys, const struct parsed *p)
{
	const struct values *up = &p->val[opt_index("up-execute")],
		*down = &p->val[opt_index("down-execute")],
		*dis = &p->val[opt_index("disabled-execute")],
		*all = &p->val[opt_index("execute")];
	char *script = NULL;
	size_t len = 0;
	FILE *f;

	if (!up->n && !down->n && !dis->n && !all->n)
		return;
	if (!(f = open_memstream(&script, &len)))
		return;
	fputs("case \"$HEALTHD_TO\" in", f);
	state_cmds(f, "up", "UP", up, all);
	state_cmds(f, "withdrawn", "DOWN", down, all);
	state_cmds(f, "draining", "DISABLED", dis, all);
	fputs(" esac", f);
	for (int i = 0; i < all->n; i++)
		fprintf(f, "; %s", all->v[i]);
	fclose(f);
	fputs("    # the --*-execute commands of the state healthd moves to\n"
	      "    on_change: [\"/bin/sh\", \"-c\", ", keys);
	imp_yaml_str(keys, script);
	fputs("]\n", keys);
	free(script);
}

static int prefixes(struct imp_svc *s, const struct parsed *p, char *err, size_t errlen)
{
	const struct values *ips = &p->val[opt_index("ip")];

	if (!ips->n)
		return fail(err, errlen, "no --ip: nothing to announce");
	for (int i = 0; i < ips->n; i++) {
		struct cfg_prefix pf;
		char text[80];

		snprintf(text, sizeof(text), "%s%s", ips->v[i], strchr(ips->v[i], '/') ? "" :
			 strchr(ips->v[i], ':') ? "/128" : "/32");
		if (cfg_parse_prefix(text, &pf) < 0 || s->n_prefixes >= IMP_PREFIXES_MAX)
			return fail(err, errlen, "%s: --ip '%s' is not a network (ADDRESS[/LENGTH],"
				    " host bits zero)", ips->where[i], ips->v[i]);
		if (!(s->prefixes[s->n_prefixes++] = strdup(pf.text)))
			return fail(err, errlen, "out of memory");
	}
	return 0;
}

struct timing {
	uint64_t interval_ms, timeout_ms;   /* healthcheck's defaults: 5s, 5s */
	unsigned long rise, fall;           /* 3, 3 */
};

static int timing(struct timing *t, const struct parsed *p, char *err, size_t errlen)
{
	const char *v;
	char *end;

	*t = (struct timing){ 5000, 5000, 3, 3 };
#define NUM(key, ok, why) \
	if ((v = last(p, key)) && !(ok)) \
		return fail(err, errlen, "%s: --%s '%s': " why, last_where(p, key), key, v);
	NUM("interval", imp_seconds(v, 24ULL * 3600000, &t->interval_ms) && t->interval_ms >= 10,
	    "not a number of seconds from 0.01 to 86400 (0, check once and exit, has no equivalent)")
	NUM("timeout", imp_seconds(v, 3600000, &t->timeout_ms),
	    "not a number of seconds from 1 to 3600 (0, no timeout, has no equivalent)")
	NUM("rise", (t->rise = strtoul(v, &end, 10)) >= 1 && t->rise <= 100 && !*end,
	    "not a number from 1 to 100")
	NUM("fall", (t->fall = strtoul(v, &end, 10)) >= 1 && t->fall <= 100 && !*end,
	    "not a number from 1 to 100")
#undef NUM
	return 0;
}

/* communities: up from --community and --large-community; degraded (a
 * failed service stayed announced) and draining (--disable) from
 * --disabled-community. */
static int communities_block(struct imp_svc *s, const struct parsed *p, bool wod)
{
	const char *up[2] = { last(p, "community"), last(p, "large-community") };
	const char *dis[1] = { last(p, "disabled-community") };
	char *cbuf = NULL;
	size_t clen = 0;
	FILE *cf = open_memstream(&cbuf, &clen);

	if (!cf)
		return -1;
	communities(cf, "up", up, 2, s->notes);
	if (!wod)
		communities(cf, "degraded", dis, 1, s->notes);
	if (last(p, "disable"))
		communities(cf, "draining", dis, 1, s->notes);
	else if (dis[0] && wod)
		imp_not_mapped(s->notes, 2, "disabled-community", dis[0],
			       "with --withdraw-on-down and no --disable it was never announced");
	fclose(cf);
	if (clen)
		fprintf(s->keys, "    communities:\n%s", cbuf);
	free(cbuf);
	return 0;
}

static int service(FILE *out, const struct parsed *p, char *err, size_t errlen)
{
	const char *name = last(p, "name"), *cmd = last(p, "command"), *v;
	bool wod = last(p, "withdraw-on-down") != NULL;
	struct timing t;
	struct imp_svc s;
	int rc = -1;

	if (imp_svc_init(&s) < 0)
		return fail(err, errlen, "out of memory");
	imp_service_name(name ? name : "healthcheck", s.name, sizeof(s.name));
	if (prefixes(&s, p, err, errlen) < 0 || timing(&t, p, err, errlen) < 0)
		goto out;
	/* what has no equivalent, in the order of the option table */
	for (size_t i = 0; i < N_OPTS; i++)
		for (int j = 0; opts[i].why && j < p->val[i].n; j++)
			imp_not_mapped(s.notes, 2, opts[i].lng, p->val[i].v[j][0] ? p->val[i].v[j] : NULL,
				       opts[i].why);
	if (!wod)
		fputs("  # without --withdraw-on-down healthcheck kept announcing a failed service"
		      " with a higher MED;\n  # healthd withdraws it (on_fail: degrade announces"
		      " it with communities.degraded instead)\n", s.notes);
	if (communities_block(&s, p, wod) < 0) {
		fail(err, errlen, "out of memory");
		goto out;
	}
	if ((v = last(p, "disable"))) {
		fputs("    maintenance_file: ", s.keys);
		imp_yaml_str(s.keys, v);
		fputs("   # --disable: present = drain, then withdraw\n", s.keys);
	}
	hook(s.keys, p);
	if (cmd) {
		imp_check_from_cmd(&s, "--cmd", cmd, true, &t.timeout_ms);
	} else {
		s.check_type = "exec";
		fputs("        # no --cmd: healthcheck counted the service as up\n"
		      "        command: [\"/bin/true\"]\n", s.check);
	}
	if ((v = last(p, "user"))) {
		if (!strcmp(s.check_type, "exec")) {
			fputs("        user: ", s.check);
			imp_yaml_str(s.check, v);
			fputs("                  # --user\n", s.check);
		} else {
			imp_not_mapped(s.notes, 2, "user", v, "healthd's http and dns checks run no command");
		}
	}
	imp_interval_timeout(s.check, t.interval_ms, t.timeout_ms, "--timeout", "--interval");
	fprintf(s.check, "        rise: %lu\n        fall: %lu\n", t.rise, t.fall);
	if (wod)
		fputs("        on_fail: withdraw               # --withdraw-on-down\n", s.check);
	fputs("services:\n", out);
	imp_svc_write(out, &s);
	rc = 0;
out:
	imp_svc_free(&s);
	return rc;
}

int imp_exabgp_healthcheck(FILE *out, char **args, int n, char *err, size_t errlen)
{
	struct parsed *p = calloc(1, sizeof(*p));
	char **w = calloc(ARGS_MAX, sizeof(char *)), **where = calloc(ARGS_MAX, sizeof(char *));
	char (*argwhere)[32] = calloc((size_t)n + 1, sizeof(*argwhere));
	int nw = 0, rc = -1;

	if (!p || !w || !where || !argwhere) {
		fail(err, errlen, "out of memory");
		goto out;
	}
	if (n >= ARGS_MAX) {
		fail(err, errlen, "more than %d arguments", ARGS_MAX);
		goto out;
	}
	for (int i = 0; i < n; i++)
		snprintf(argwhere[i], sizeof(argwhere[i]), "argument %d", i + 1);
	{
		char *aw[ARGS_MAX];

		for (int i = 0; i < n; i++)
			aw[i] = argwhere[i];
		if (parse_words(p, args, aw, n, err, errlen) < 0)
			goto out;
		const char *cfg = last(p, "config");

		if (cfg) {
			char *cfgcopy = strdup(cfg);

			memset(p->val, 0, sizeof(p->val));
			rc = cfgcopy ? read_config(p, cfgcopy, w, where, &nw, err, errlen) : -1;
			free(cfgcopy);
			if (rc < 0)
				goto out;
			rc = -1;
			if (parse_words(p, w, where, nw, err, errlen) < 0 ||
			    parse_words(p, args, aw, n, err, errlen) < 0)
				goto out;
		}
	}
	fputs("# healthd.yaml from ExaBGP healthcheck's options", out);
	for (int i = 0; i < n; i++) {
		bool q = !*args[i] || strpbrk(args[i], " \t\"'$|;&<>()*?");

		char *word = NULL;
		size_t wl = 0;
		FILE *wf = open_memstream(&word, &wl);

		if (!wf)
			continue;
		fputs(q ? " '" : " ", wf);
		for (const char *c = args[i]; *c; c++)
			if (*c == '\'' && q)
				fputs("'\\''", wf);
			else
				fputc(*c, wf);
		if (q)
			fputc('\'', wf);
		fclose(wf);
		imp_comment_text(out, word);
		free(word);
	}
	fputs("\n# Validate with `healthd -t -c FILE` before use.\n", out);
	rc = service(out, p, err, errlen);
out:
	if (p)
		for (int i = 0; i < p->n_owned; i++)
			free(p->owned[i]);
	free(p);
	free(w);
	free(where);
	free(argwhere);
	return rc;
}
