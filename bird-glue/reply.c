/*
 * reply.c — incremental parser of BIRD's control-socket replies.
 *
 * Bytes may arrive split anywhere; a line is only looked at once its '\n'
 * is in. Lines are classified by their first bytes alone (see bird.h).
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bird-glue/bird.h"

struct bird_parser {
	char line[BIRD_LINE_MAX + 2];   /* room for the '\r' and a NUL */
	size_t len;
	int block;                      /* code of the open "NNNN-" block, -1 if none */
	bool broken;                    /* -EPROTO seen; only reset clears it */
	struct bird_line *lines;
	size_t n_lines, cap;
	char err[192];
};

struct bird_parser *bird_parser_new(void)
{
	struct bird_parser *p = calloc(1, sizeof(*p));

	if (p)
		p->block = -1;
	return p;
}

static void free_lines(struct bird_line *lines, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(lines[i].text);
	free(lines);
}

void bird_parser_reset(struct bird_parser *p)
{
	free_lines(p->lines, p->n_lines);
	p->lines = NULL;
	p->n_lines = p->cap = 0;
	p->len = 0;
	p->block = -1;
	p->broken = false;
	p->err[0] = '\0';
}

void bird_parser_free(struct bird_parser *p)
{
	if (!p)
		return;
	bird_parser_reset(p);
	free(p);
}

const char *bird_parser_error(const struct bird_parser *p)
{
	return p->err[0] ? p->err : "no error";
}

/* Quote at most 40 bytes of what the peer sent, escaping the unprintable. */
static void quote(char *dst, size_t cap, const char *s, size_t n)
{
	size_t o = 0;

	for (size_t i = 0; i < n && i < 40 && o + 5 < cap; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (isprint(ch) && ch != '"' && ch != '\\')
			dst[o++] = (char)ch;
		else
			o += (size_t)snprintf(dst + o, cap - o, "\\x%02x", ch);
	}
	if (n > 40 && o + 4 < cap)
		o += (size_t)snprintf(dst + o, cap - o, "...");
	dst[o] = '\0';
}

static int proto_error(struct bird_parser *p, const char *what)
{
	char q[180];

	quote(q, sizeof(q), p->line, p->len);
	snprintf(p->err, sizeof(p->err), "%s in \"%s\"", what, q);
	free_lines(p->lines, p->n_lines);
	p->lines = NULL;
	p->n_lines = p->cap = 0;
	p->len = 0;
	p->block = -1;
	p->broken = true;
	return -EPROTO;
}

static int add_line(struct bird_parser *p, int code, const char *text)
{
	if (p->n_lines == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 8;
		struct bird_line *l = realloc(p->lines, cap * sizeof(*l));

		if (!l)
			return -ENOMEM;
		p->lines = l;
		p->cap = cap;
	}
	p->lines[p->n_lines].text = strdup(text);
	if (!p->lines[p->n_lines].text)
		return -ENOMEM;
	p->lines[p->n_lines++].code = code;
	return 0;
}

/* Hand the finished reply to cb; the parser is ready for the next one
 * before cb runs, so cb may even reset the parser. */
static void emit(struct bird_parser *p,
		 void (*cb)(void *arg, const struct bird_reply *r), void *arg)
{
	struct bird_reply r = {
		.code = p->lines[p->n_lines - 1].code,
		.text = p->lines[p->n_lines - 1].text,
		.lines = p->lines,
		.n_lines = p->n_lines,
	};

	p->lines = NULL;
	p->n_lines = p->cap = 0;
	p->block = -1;
	cb(arg, &r);
	free_lines(r.lines, r.n_lines);
}

static int take_line(struct bird_parser *p,
		     void (*cb)(void *arg, const struct bird_reply *r), void *arg)
{
	char *l = p->line;
	size_t n = p->len;
	int code, rc;

	if (n && l[n - 1] == '\r')
		n--;
	l[n] = '\0';
	if (n == 0)
		return proto_error(p, "empty line");
	if (l[0] == '+')
		return 0;               /* asynchronous log line (echo) */
	if (l[0] == ' ') {
		if (p->block < 0)
			return proto_error(p, "continuation outside a block");
		return add_line(p, p->block, l + 1);
	}
	for (int i = 0; i < 4; i++)
		if (i >= (int)n || !isdigit((unsigned char)l[i]))
			return proto_error(p, "no four-digit code");
	code = (l[0] - '0') * 1000 + (l[1] - '0') * 100 + (l[2] - '0') * 10 + (l[3] - '0');
	if (n > 4 && l[4] == '-') {
		p->block = code;
		return add_line(p, code, l + 5);
	}
	if (n > 4 && l[4] != ' ')
		return proto_error(p, "code followed by neither ' ' nor '-'");
	rc = add_line(p, code, n > 4 ? l + 5 : "");
	if (rc < 0)
		return rc;
	emit(p, cb, arg);
	return 0;
}

int bird_parser_feed(struct bird_parser *p, const char *buf, size_t len,
		     void (*cb)(void *arg, const struct bird_reply *r), void *arg)
{
	int rc;

	if (p->broken)
		return -EPROTO;
	for (size_t i = 0; i < len; i++) {
		char ch = buf[i];

		if (ch == '\n') {
			rc = take_line(p, cb, arg);
			p->len = 0;
			if (rc < 0)
				return rc;
			continue;
		}
		if (ch == '\0') {
			/* quote the NUL and what follows, not only the bytes before it */
			for (size_t j = i; j < len && j < i + 16 && p->len < BIRD_LINE_MAX; j++)
				p->line[p->len++] = buf[j];
			return proto_error(p, "NUL byte");
		}
		/* one spare byte so that "...\r\n" of a full-length line fits */
		if (p->len >= BIRD_LINE_MAX + (ch == '\r' ? 1 : 0))
			return proto_error(p, "line longer than BIRD_LINE_MAX");
		p->line[p->len++] = ch;
	}
	return 0;
}

/* ---- show protocols ---- */

struct span {
	const char *s;
	size_t n;
};

static size_t split(const char *text, struct span *tok, size_t max)
{
	size_t n = 0;
	const char *s = text;

	while (n < max) {
		while (*s == ' ' || *s == '\t')
			s++;
		if (!*s)
			break;
		tok[n].s = s;
		while (*s && *s != ' ' && *s != '\t')
			s++;
		tok[n].n = (size_t)(s - tok[n].s);
		n++;
	}
	return n;
}

static void copy_span(char *dst, size_t cap, const char *s, size_t n)
{
	if (n >= cap)
		n = cap - 1;
	memcpy(dst, s, n);
	dst[n] = '\0';
}

static enum bird_proto_state state_of(const struct span *t)
{
	static const struct {
		const char *word;
		enum bird_proto_state state;
	} words[] = {
		{ "up", BIRD_PROTO_UP }, { "down", BIRD_PROTO_DOWN },
		{ "start", BIRD_PROTO_START }, { "stop", BIRD_PROTO_STOP },
	};

	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (strlen(words[i].word) == t->n && !memcmp(words[i].word, t->s, t->n))
			return words[i].state;
	return BIRD_PROTO_OTHER;
}

/* "Name Proto Table State Since Info": Since is "DATE TIME" in the
 * default time format, a single word in others; Info is the rest. */
static int parse_row(const char *text, struct bird_proto *row)
{
	struct span t[6];
	size_t n = split(text, t, 6), since = 1;
	const char *info;

	if (n < 5)
		return -EPROTO;
	if (n == 6 && memchr(t[4].s, '-', t[4].n) && memchr(t[5].s, ':', t[5].n))
		since = 2;
	memset(row, 0, sizeof(*row));
	copy_span(row->name, sizeof(row->name), t[0].s, t[0].n);
	copy_span(row->proto, sizeof(row->proto), t[1].s, t[1].n);
	row->state = state_of(&t[3]);
	info = t[4 + since - 1].s + t[4 + since - 1].n;
	while (*info == ' ' || *info == '\t')
		info++;
	size_t len = strlen(info);
	while (len && (info[len - 1] == ' ' || info[len - 1] == '\t'))
		len--;
	copy_span(row->info, sizeof(row->info), info, len);
	return 0;
}

int bird_parse_protocols(const struct bird_reply *r, struct bird_proto *out,
			 size_t max, size_t *total)
{
	size_t n = 0, all = 0;
	bool heading = false;
	struct bird_proto row;

	if (total)
		*total = 0;
	if (r->code == 8003)
		return 0;               /* "No protocols match" */
	if (!bird_code_ok(r->code))
		return -EINVAL;
	for (size_t i = 0; i < r->n_lines; i++) {
		if (r->lines[i].code == 2002)
			heading = true;
		if (r->lines[i].code != 1002)
			continue;
		if (parse_row(r->lines[i].text, &row) < 0)
			return -EPROTO;
		if (n < max)
			out[n++] = row;
		all++;
	}
	if (!heading)
		return -EPROTO;
	if (total)
		*total = all;
	return (int)n;
}
