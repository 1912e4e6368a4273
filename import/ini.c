/*
 * import/ini.c — the INI files anycast-healthchecker reads, parsed the way
 * Python's configparser (its defaults: strict, '=' or ':', full-line '#'
 * and ';' comments, indented continuation lines, %-interpolation) does.
 *
 * Written here rather than taken from a library: Debian's INI parsers
 * (libinih, libiniparser, GLib's GKeyFile) each differ from configparser
 * on continuation lines, ':' as delimiter, [DEFAULT] or interpolation,
 * and none reports the line of a key once read, which every message needs.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "import/import.h"

#define INTERP_DEPTH 10 /* configparser's MAX_INTERPOLATION_DEPTH */

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

static char *trim(char *s)
{
	char *e = s + strlen(s);

	while (isspace((unsigned char)*s))
		s++;
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

static struct imp_ini_key *key_find(struct imp_ini_section *s, const char *name)
{
	for (size_t i = 0; i < s->n_keys; i++)
		if (!strcmp(s->keys[i].name, name))
			return &s->keys[i];
	return NULL;
}

static struct imp_ini_section *section_get(struct imp_ini *ini, const char *name,
					   const char *where)
{
	struct imp_ini_section *s, *ns;

	if (!strcmp(name, "DEFAULT"))
		return &ini->defaults;
	for (size_t i = 0; i < ini->n_sections; i++)
		if (!strcmp(ini->sections[i].name, name))
			return &ini->sections[i];
	ns = realloc(ini->sections, (ini->n_sections + 1) * sizeof(*ns));
	if (!ns)
		return NULL;
	ini->sections = ns;
	s = &ns[ini->n_sections];
	memset(s, 0, sizeof(*s));
	if (!(s->name = strdup(name)))
		return NULL;
	snprintf(s->where, sizeof(s->where), "%s", where);
	ini->n_sections++;
	return s;
}

/* key = value in s; a key already there from an earlier file is replaced. */
static struct imp_ini_key *key_set(struct imp_ini_section *s, const char *name,
				   const char *value, const char *where)
{
	struct imp_ini_key *k = key_find(s, name), *nk;
	char *v = strdup(value);

	if (!v)
		return NULL;
	if (!k) {
		if (!(nk = realloc(s->keys, (s->n_keys + 1) * sizeof(*nk)))) {
			free(v);
			return NULL;
		}
		s->keys = nk;
		k = &nk[s->n_keys];
		if (!(k->name = strdup(name))) {
			free(v);
			return NULL;
		}
		s->n_keys++;
	} else {
		free(k->value);
	}
	k->value = v;
	snprintf(k->where, sizeof(k->where), "%s", where);
	return k;
}

static int append_line(struct imp_ini_key *k, const char *line)
{
	size_t a = strlen(k->value), b = strlen(line);
	char *v = realloc(k->value, a + b + 2);

	if (!v)
		return -1;
	v[a] = '\n';
	memcpy(v + a + 1, line, b + 1);
	k->value = v;
	return 0;
}

/* Names seen in this file: configparser refuses a section or a key twice
 * in one file (strict), but lets a later file add to a section. */
struct seen {
	char **names;
	size_t n;
};

static bool seen_add(struct seen *sn, const char *section, const char *key)
{
	char *s;

	if (asprintf(&s, "%s\n%s", section, key ? key : "") < 0)
		return false;
	for (size_t i = 0; i < sn->n; i++)
		if (!strcmp(sn->names[i], s)) {
			free(s);
			return false;
		}
	char **nn = realloc(sn->names, (sn->n + 1) * sizeof(char *));
	if (!nn) {
		free(s);
		return false;
	}
	sn->names = nn;
	sn->names[sn->n++] = s;
	return true;
}

static void seen_free(struct seen *sn)
{
	for (size_t i = 0; i < sn->n; i++)
		free(sn->names[i]);
	free(sn->names);
}

int imp_ini_read(struct imp_ini *ini, const char *path, char *err, size_t errlen)
{
	struct imp_ini_section *cur = NULL;
	struct imp_ini_key *last = NULL;
	struct seen sn = { 0 };
	size_t last_indent = 0, cap = 0;
	char *line = NULL, where[320];
	unsigned lineno = 0;
	ssize_t n;
	int rc = -1;
	FILE *f = fopen(path, "re");

	if (!f)
		return fail(err, errlen, "%s: %s", path, strerror(errno));
	while ((n = getline(&line, &cap, f)) >= 0) {
		size_t indent = strspn(line, " \t");
		bool nul = memchr(line, '\0', (size_t)n) != NULL;
		char *t = trim(line);

		lineno++;
		snprintf(where, sizeof(where), "%s:%u", path, lineno);
		if (nul) {
			fail(err, errlen, "%s: a NUL byte", where);
			goto out;
		}
		if (!*t || *t == '#' || *t == ';')
			continue;
		if (last && indent > last_indent) {
			if (append_line(last, t) < 0)
				goto nomem;
			continue;
		}
		last = NULL;
		if (*t == '[') {
			size_t len = strlen(t);

			if (len < 3 || t[len - 1] != ']') {
				fail(err, errlen, "%s: '%s' is not a section header ([NAME])", where, t);
				goto out;
			}
			t[len - 1] = '\0';
			if (!seen_add(&sn, t + 1, NULL)) {
				fail(err, errlen, "%s: section [%s] given twice in this file", where, t + 1);
				goto out;
			}
			if (!(cur = section_get(ini, t + 1, where)))
				goto nomem;
			continue;
		}
		size_t d = strcspn(t, "=:");

		if (!t[d]) {
			fail(err, errlen, "%s: '%s' is not KEY = VALUE", where, t);
			goto out;
		}
		if (!cur) {
			fail(err, errlen, "%s: '%s' stands before any [section]", where, t);
			goto out;
		}
		t[d] = '\0';
		char *name = trim(t), *value = trim(t + d + 1);

		if (!*name) {
			fail(err, errlen, "%s: a value without a key", where);
			goto out;
		}
		for (char *p = name; *p; p++)
			*p = (char)tolower((unsigned char)*p);
		if (!seen_add(&sn, cur->name ? cur->name : "DEFAULT", name)) {
			fail(err, errlen, "%s: key '%s' given twice in [%s]", where, name,
			     cur->name ? cur->name : "DEFAULT");
			goto out;
		}
		if (!(last = key_set(cur, name, value, where)))
			goto nomem;
		last_indent = indent;
	}
	rc = 0;
	goto out;
nomem:
	fail(err, errlen, "%s: out of memory", path);
out:
	seen_free(&sn);
	free(line);
	fclose(f);
	return rc;
}

static void section_free(struct imp_ini_section *s)
{
	for (size_t i = 0; i < s->n_keys; i++) {
		free(s->keys[i].name);
		free(s->keys[i].value);
	}
	free(s->keys);
	free(s->name);
}

void imp_ini_free(struct imp_ini *ini)
{
	for (size_t i = 0; i < ini->n_sections; i++)
		section_free(&ini->sections[i]);
	free(ini->sections);
	section_free(&ini->defaults);
	memset(ini, 0, sizeof(*ini));
}

const struct imp_ini_key *imp_ini_get(const struct imp_ini *ini,
				      const struct imp_ini_section *s, const char *name)
{
	const struct imp_ini_key *k = s ? key_find((struct imp_ini_section *)s, name) : NULL;

	return k ? k : key_find((struct imp_ini_section *)&ini->defaults, name);
}

static int interp(const struct imp_ini *ini, const struct imp_ini_section *s,
		  const struct imp_ini_key *k, FILE *out, int depth, char *err, size_t errlen)
{
	if (depth > INTERP_DEPTH)
		return fail(err, errlen, "%s: %s: %%(...)s nested more than %d deep",
			    k->where, k->name, INTERP_DEPTH);
	for (const char *p = k->value; *p; p++) {
		if (*p != '%') {
			fputc(*p, out);
			continue;
		}
		if (p[1] == '%') {
			fputc('%', out);
			p++;
			continue;
		}
		const char *e = p[1] == '(' ? strstr(p, ")s") : NULL;

		if (!e)
			return fail(err, errlen, "%s: %s: '%%' must be followed by '%%' or"
				    " '(NAME)s' (write %%%% for a %%)", k->where, k->name);
		char name[128];
		size_t len = (size_t)(e - p - 2);

		snprintf(name, sizeof(name), "%.*s", (int)len, p + 2);
		for (char *q = name; *q; q++)
			*q = (char)tolower((unsigned char)*q);
		const struct imp_ini_key *r = imp_ini_get(ini, s, name);

		if (!r)
			return fail(err, errlen, "%s: %s: %%(%s)s names no key of this section"
				    " or [DEFAULT]", k->where, k->name, name);
		if (interp(ini, s, r, out, depth + 1, err, errlen) < 0)
			return -1;
		p = e + 1;
	}
	return 0;
}

char *imp_ini_value(const struct imp_ini *ini, const struct imp_ini_section *s,
		    const struct imp_ini_key *k, char *err, size_t errlen)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&buf, &len);

	if (!out) {
		fail(err, errlen, "%s: out of memory", k->where);
		return NULL;
	}
	int rc = interp(ini, s, k, out, 0, err, errlen);

	fclose(out);
	if (rc < 0) {
		free(buf);
		return NULL;
	}
	return buf;
}
