/*
 * import/emit.c — the YAML that `healthctl import` prints: one service at a
 * time, with the notes on what did not carry over above it.
 */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "import/import.h"

int imp_svc_init(struct imp_svc *s)
{
	memset(s, 0, sizeof(*s));
	s->notes = open_memstream(&s->notes_buf, &s->notes_len);
	s->keys = open_memstream(&s->keys_buf, &s->keys_len);
	s->check = open_memstream(&s->check_buf, &s->check_len);
	if (!s->notes || !s->keys || !s->check) {
		imp_svc_free(s);
		return -1;
	}
	return 0;
}

void imp_svc_free(struct imp_svc *s)
{
	if (s->notes)
		fclose(s->notes);
	if (s->keys)
		fclose(s->keys);
	if (s->check)
		fclose(s->check);
	free(s->notes_buf);
	free(s->keys_buf);
	free(s->check_buf);
	for (size_t i = 0; i < s->n_prefixes; i++)
		free(s->prefixes[i]);
	memset(s, 0, sizeof(*s));
}

void imp_svc_write(FILE *out, struct imp_svc *s)
{
	fflush(s->notes);
	fflush(s->keys);
	fflush(s->check);
	fputs(s->notes_buf, out);
	fprintf(out, "  - name: %s\n    prefixes: [", s->name);
	for (size_t i = 0; i < s->n_prefixes; i++)
		fprintf(out, "%s\"%s\"", i ? ", " : "", s->prefixes[i]);
	fputs("]\n", out);
	fputs(s->keys_buf, out);
	fprintf(out, "    checks:\n      - name: %s\n        type: %s\n", s->check_type,
		s->check_type);
	fputs(s->check_buf, out);
}

/* The length of the UTF-8 sequence at s and its code point; 0 when it is
 * not one (overlong, a surrogate, cut short). */
static size_t utf8(const unsigned char *s, uint32_t *cp)
{
	size_t n = s[0] >= 0xf5 ? 0 : s[0] >= 0xf0 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc2 ? 2 : 0;
	uint32_t v = n ? s[0] & (0x3f >> (n - 1)) : 0;

	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		v = v << 6 | (s[i] & 0x3f);
	}
	if ((n == 3 && v < 0x800) || (n == 4 && (v < 0x10000 || v > 0x10ffff)) ||
	    (v >= 0xd800 && v <= 0xdfff))
		return 0;
	*cp = v;
	return n;
}

/* A code point above 0x7f that may stand raw in YAML: not a C1 control
 * (libyaml refuses them), not a line break of its own (NEL, LS, PS), not
 * a byte-order mark or a non-character. */
static bool yaml_raw(uint32_t cp)
{
	return cp >= 0xa0 && cp != 0x2028 && cp != 0x2029 && cp != 0xfeff && cp != 0xfffe &&
	       cp != 0xffff;
}

void imp_yaml_str(FILE *f, const char *str)
{
	const unsigned char *s = (const unsigned char *)str;
	uint32_t cp;
	size_t n;

	fputc('"', f);
	while (*s) {
		unsigned char c = *s;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c == '\n')
			fputs("\\n", f);
		else if (c == '\t')
			fputs("\\t", f);
		else if (c < 0x20 || c == 0x7f)
			fprintf(f, "\\x%02x", c);
		else if (c < 0x80)
			fputc(c, f);
		else if ((n = utf8(s, &cp)) && yaml_raw(cp)) {
			fwrite(s, 1, n, f);
			s += n;
			continue;
		} else if (n) {
			if (cp < 0x100)
				fprintf(f, "\\x%02x", (unsigned)cp);
			else
				fprintf(f, "\\u%04x", (unsigned)cp);
			s += n;
			continue;
		} else {
			/* not UTF-8, which YAML must be: the byte as the character it
			 * would be in Latin-1 */
			fprintf(f, "\\x%02x", c);
		}
		s++;
	}
	fputc('"', f);
}

void imp_comment_text(FILE *f, const char *str)
{
	const unsigned char *s = (const unsigned char *)str;
	uint32_t cp;
	size_t n;

	while (*s) {
		if (*s >= 0x20 && *s < 0x7f) {
			fputc(*s++, f);
		} else if (*s >= 0x80 && (n = utf8(s, &cp)) && yaml_raw(cp)) {
			fwrite(s, 1, n, f);
			s += n;
		} else {
			fputc(*s == '\n' || *s == '\t' ? ' ' : '?', f);
			s += *s >= 0x80 && (n = utf8(s, &cp)) ? n : 1;
		}
	}
}

void imp_service_name(const char *from, char *buf, size_t len)
{
	size_t n = 0, max = len - 1 < CFG_SERVICE_NAME_MAX ? len - 1 : CFG_SERVICE_NAME_MAX;

	for (; *from && n < max; from++) {
		unsigned char c = (unsigned char)tolower((unsigned char)*from);

		if (!isalnum(c) || c > 0x7f)
			c = '_';
		if (c == '_' && (n == 0 || buf[n - 1] == '_'))
			continue;
		buf[n++] = (char)c;
	}
	while (n && buf[n - 1] == '_')
		n--;
	buf[n] = '\0';
	if (!n)
		snprintf(buf, len, "service");
}

void imp_not_mapped(FILE *f, int indent, const char *key, const char *value,
		    const char *why)
{
	fprintf(f, "%*s# not mapped: ", indent, "");
	imp_comment_text(f, key);
	if (value) {
		fputs(" = ", f);
		imp_comment_text(f, value);
	}
	fprintf(f, ": %s\n", why);
}

bool imp_seconds(const char *s, uint64_t max_ms, uint64_t *ms)
{
	char *end;
	double v = strtod(s, &end);

	if (end == s || *end || !isfinite(v) || v <= 0 || v * 1000 > (double)max_ms)
		return false;
	*ms = (uint64_t)llround(v * 1000);
	return *ms > 0;
}

void imp_duration(FILE *f, const char *key, int indent, uint64_t ms)
{
	char buf[32];

	cfg_format_duration(buf, sizeof(buf), ms);
	fprintf(f, "%*s%s: %s\n", indent, "", key, buf);
}

void imp_interval_timeout(FILE *f, uint64_t interval_ms, uint64_t timeout_ms,
			  const char *timeout_key, const char *interval_key)
{
	imp_duration(f, "interval", 8, interval_ms);
	if (timeout_ms > interval_ms) {
		/* healthd runs one probe of a check at a time, within its
		 * interval: a longer timeout is refused at load */
		fprintf(f, "        # %s %llu ms was longer than %s: healthd's timeout must fit in the interval\n",
			timeout_key, (unsigned long long)timeout_ms, interval_key);
		timeout_ms = interval_ms;
	}
	imp_duration(f, "timeout", 8, timeout_ms);
}
