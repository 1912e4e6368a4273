/*
 * import/cmd.c — a check command line as a healthd check. The command is
 * split as the tool split it: /bin/sh (ExaBGP), where only plain words and
 * at most one "| grep" are understood, or Python's shlex.split
 * (anycast-healthchecker, no shell: a '|' is a word). A curl call with options that all
 * have an http equivalent becomes an http check, a dig call to an
 * @ADDRESS a dns check; everything else stays a command run by /bin/sh.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "import/import.h"

#define WORDS_MAX 64

struct stage {
	char *argv[WORDS_MAX + 1];
	int argc;
};

struct pipeline {
	struct stage st[2];
	int n;
	char *buf;
};

static bool add_word(struct pipeline *p, char *w)
{
	struct stage *s = &p->st[p->n - 1];

	if (s->argc >= WORDS_MAX)
		return false;
	s->argv[s->argc++] = w;
	return true;
}

/* As /bin/sh (shell) or Python's shlex.split splits cmd. false: for sh,
 * something it would expand, redirect or run on its own; for both,
 * an unclosed quote. */
static bool split(const char *cmd, struct pipeline *p, bool shell, bool *unclosed)
{
	const char *c = cmd;
	char *o;

	memset(p, 0, sizeof(*p));
	p->n = 1;
	*unclosed = false;
	if (!(o = p->buf = malloc(strlen(cmd) + 1)))
		return false;
	for (;;) {
		while (*c == ' ' || *c == '\t' || (!shell && (*c == '\n' || *c == '\r')))
			c++;
		if (!*c)
			break;
		if (*c == '|' && shell) {
			if (!p->st[p->n - 1].argc || p->n == 2)
				return false;
			p->n++;
			c++;
			continue;
		}
		if ((*c == '#' || *c == '~') && shell)
			return false;
		char *w = o;

		while (*c && *c != ' ' && *c != '\t' && (*c != '|' || !shell) &&
		       (shell || (*c != '\n' && *c != '\r'))) {
			if (*c == '\'') {
				for (c++; *c && *c != '\''; )
					*o++ = *c++;
				if (!*c++)
					return !(*unclosed = true);
			} else if (*c == '"') {
				for (c++; *c && *c != '"'; ) {
					if ((*c == '$' || *c == '`') && shell)
						return false;
					if (*c == '\\' && c[1] && strchr("\"\\", c[1]))
						c++;
					*o++ = *c++;
				}
				if (!*c++)
					return !(*unclosed = true);
			} else if (*c == '\\') {
				if (!c[1])
					return !(*unclosed = true);
				if (c[1] == '\n' && shell)
					return false;
				c++;
				*o++ = *c++;
			} else if (shell && strchr(";&<>()$`*?[]{}\n\r", *c)) {
				return false;
			} else {
				*o++ = *c++;
			}
		}
		*o++ = '\0';
		if (!add_word(p, w))
			return false;
	}
	/* VAR=value cmd: an environment for the command */
	char *a0 = p->st[0].argv[0];
	return p->st[p->n - 1].argc && !(shell && a0 && strchr(a0, '=') &&
					  strchr(a0, '=') < (strchr(a0, '/') ? strchr(a0, '/') : a0 + strlen(a0)));
}

static const char *base(const char *path)
{
	const char *s = strrchr(path, '/');

	return s ? s + 1 : path;
}

/* "| grep [-q] [-s] [-F] [-x] PATTERN": the pattern, fixed says -F. */
static const char *grep_pattern(const struct stage *g, bool *fixed, bool *whole)
{
	const char *pat = NULL;

	*fixed = *whole = false;
	if (strcmp(base(g->argv[0]), "grep"))
		return NULL;
	for (int i = 1; i < g->argc; i++) {
		const char *a = g->argv[i];

		if (a[0] == '-' && a[1] && !pat) {
			for (const char *f = a + 1; *f; f++) {
				if (*f == 'F')
					*fixed = true;
				else if (*f == 'x')
					*whole = true;
				else if (*f != 'q' && *f != 's')
					return NULL;
			}
		} else if (!pat) {
			pat = a;
		} else {
			return NULL;
		}
	}
	return pat;
}

static bool regex_plain(const char *s)
{
	/* a '.' taken literally matches less than grep's, never more */
	return !strpbrk(s, "[]*^$\\+?(){}|");
}

/* ---- curl ---- */

struct curl_call {
	const char *url, *writeout, *connect_to_arg, *resolve, *why;
	const char *headers[WORDS_MAX];
	int n_headers;
	bool fail, insecure, location;
	uint64_t max_time_ms, connect_timeout_ms;
};

enum curl_opt { C_FLAG, C_FAIL, C_INSECURE, C_LOCATION, C_OUTPUT, C_WRITEOUT, C_MAXTIME,
	C_CONNTIMEOUT, C_HEADER, C_RESOLVE, C_CONNECTTO, C_URL };

static const struct curl_optdef {
	const char *lng;
	char shrt;
	bool arg;
	enum curl_opt what;
} curl_opts[] = {
	{ "--fail", 'f', false, C_FAIL }, { "--fail-with-body", 0, false, C_FAIL },
	{ "--silent", 's', false, C_FLAG }, { "--show-error", 'S', false, C_FLAG },
	{ "--verbose", 'v', false, C_FLAG }, { "--no-progress-meter", 0, false, C_FLAG },
	{ "--insecure", 'k', false, C_INSECURE }, { "--location", 'L', false, C_LOCATION },
	{ "--output", 'o', true, C_OUTPUT }, { "--write-out", 'w', true, C_WRITEOUT },
	{ "--max-time", 'm', true, C_MAXTIME }, { "--connect-timeout", 0, true, C_CONNTIMEOUT },
	{ "--header", 'H', true, C_HEADER }, { "--resolve", 0, true, C_RESOLVE },
	{ "--connect-to", 0, true, C_CONNECTTO }, { "--url", 0, true, C_URL },
};
#define N_CURL_OPTS (sizeof(curl_opts) / sizeof(curl_opts[0]))

static const struct curl_optdef *curl_find(const char *lng, char shrt)
{
	for (size_t i = 0; i < N_CURL_OPTS; i++)
		if (lng ? !strcmp(curl_opts[i].lng, lng) : curl_opts[i].shrt == shrt)
			return &curl_opts[i];
	return NULL;
}

static bool curl_apply(struct curl_call *cc, const struct curl_optdef *o, const char *arg)
{
	switch (o->what) {
	case C_FLAG: case C_OUTPUT: break;
	case C_FAIL: cc->fail = true; break;
	case C_INSECURE: cc->insecure = true; break;
	case C_LOCATION: cc->location = true; break;
	case C_WRITEOUT: cc->writeout = arg; break;
	case C_MAXTIME:
		if (!imp_seconds(arg, CFG_DURATION_MAX_MS, &cc->max_time_ms))
			return false;
		break;
	case C_CONNTIMEOUT:
		if (!imp_seconds(arg, CFG_DURATION_MAX_MS, &cc->connect_timeout_ms))
			return false;
		break;
	case C_HEADER: cc->headers[cc->n_headers++] = arg; break;
	case C_RESOLVE: cc->resolve = arg; break;
	case C_CONNECTTO: cc->connect_to_arg = arg; break;
	case C_URL:
		if (cc->url)
			return false;
		cc->url = arg;
		break;
	}
	return true;
}

static bool curl_parse(const struct stage *st, struct curl_call *cc)
{
	memset(cc, 0, sizeof(*cc));
	for (int i = 1; i < st->argc; i++) {
		const char *a = st->argv[i];
		const struct curl_optdef *o;

		if (!strncmp(a, "--", 2)) {
			if (!(o = curl_find(a, 0)) || (o->arg && i + 1 >= st->argc)) {
				cc->why = a;
				return false;
			}
			if (!curl_apply(cc, o, o->arg ? st->argv[++i] : NULL)) {
				cc->why = a;
				return false;
			}
		} else if (a[0] == '-' && a[1]) {
			for (const char *f = a + 1; *f; f++) {
				if (!(o = curl_find(NULL, *f))) {
					cc->why = a;
					return false;
				}
				const char *arg = NULL;

				if (o->arg) {
					arg = f[1] ? f + 1 : i + 1 < st->argc ? st->argv[++i] : NULL;
					if (!arg) {
						cc->why = a;
						return false;
					}
				}
				if (!curl_apply(cc, o, arg)) {
					cc->why = a;
					return false;
				}
				if (o->arg)
					break;
			}
		} else if (!cc->url) {
			cc->url = a;
		} else {
			cc->why = "a second URL";
			return false;
		}
	}
	if (!cc->url || (strncmp(cc->url, "http://", 7) && strncmp(cc->url, "https://", 8))) {
		cc->why = "no http:// or https:// URL";
		return false;
	}
	return true;
}

/* HOST:PORT:ADDR (--resolve) or HOST:PORT:CHOST:CPORT (--connect-to) as
 * healthd's connect_to "ADDR:PORT". */
static bool connect_to(const struct curl_call *cc, char *buf, size_t len)
{
	const char *a = cc->resolve ? cc->resolve : cc->connect_to_arg;
	const char *c1 = strchr(a, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
	char host[256];
	uint16_t port;

	if (!c2)
		return false;
	if (cc->resolve) {
		const char *addr = c2 + 1;
		int plen = (int)(c2 - c1 - 1);

		if (*addr == '[' || !strchr(addr, ':'))
			snprintf(buf, len, "%s:%.*s", addr, plen, c1 + 1);
		else
			snprintf(buf, len, "[%s]:%.*s", addr, plen, c1 + 1);
	} else {
		snprintf(buf, len, "%s", c2 + 1);
	}
	return cfg_parse_hostport(buf, false, host, sizeof(host), &port) == 0;
}

static bool header_split(const char *h, char *name, size_t nlen, const char **value)
{
	const char *colon = strchr(h, ':');
	size_t n = colon ? (size_t)(colon - h) : 0;

	if (!n || n >= nlen || strspn(h, "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz"
				     "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != n)
		return false;
	memcpy(name, h, n);
	name[n] = '\0';
	for (*value = colon + 1; **value == ' ' || **value == '\t'; (*value)++)
		;
	return **value != '\0';
}

static bool as_http(struct imp_svc *s, const struct pipeline *p, uint64_t *timeout_ms,
		    const char **why)
{
	struct curl_call cc;
	const char *pat = NULL, *hv;
	bool fixed = false, whole = false, status_grep = false;
	char ct[300], hn[128];

	if (!curl_parse(&p->st[0], &cc)) {
		*why = cc.why;
		return false;
	}
	if (p->n == 2) {
		if (!(pat = grep_pattern(&p->st[1], &fixed, &whole))) {
			*why = "its | grep";
			return false;
		}
		status_grep = cc.writeout && !strcmp(cc.writeout, "%{http_code}");
		if (status_grep ? !(strlen(pat) == 3 && strspn(pat, "0123456789") == 3) :
		    (cc.writeout || whole || (!fixed && !regex_plain(pat)))) {
			*why = "its | grep";
			return false;
		}
	}
	if ((cc.resolve || cc.connect_to_arg) && !connect_to(&cc, ct, sizeof(ct))) {
		*why = cc.resolve ? "--resolve" : "--connect-to";
		return false;
	}
	for (int i = 0; i < cc.n_headers; i++)
		if (!header_split(cc.headers[i], hn, sizeof(hn), &hv)) {
			*why = "a -H that is not NAME: VALUE";
			return false;
		}
	s->check_type = "http";
	fputs("        url: ", s->check);
	imp_yaml_str(s->check, cc.url);
	if (status_grep) {
		fprintf(s->check, "\n        expect_status: [%s]\n", pat);
	} else {
		fputs("\n        expect_status: [200]\n", s->check);
		fputs(cc.fail ? "        # curl --fail passed any status below 400: list the others this service answers\n" :
		      "        # curl without --fail passed any HTTP answer: list the statuses this service answers\n",
		      s->check);
	}
	if (pat && !status_grep) {
		fputs("        expect_body: ", s->check);
		imp_yaml_str(s->check, pat);
		fputc('\n', s->check);
	}
	if (cc.resolve || cc.connect_to_arg)
		fprintf(s->check, "        connect_to: \"%s\"\n", ct);
	if (cc.insecure)
		fputs("        tls_verify: false\n", s->check);
	if (cc.n_headers) {
		fputs("        headers:\n", s->check);
		for (int i = 0; i < cc.n_headers; i++) {
			header_split(cc.headers[i], hn, sizeof(hn), &hv);
			/* a token may start with a YAML indicator (!, &, *, %, |, ...) */
			fprintf(s->check, isalnum((unsigned char)hn[0]) ? "          %s: " :
				"          \"%s\": ", hn);
			imp_yaml_str(s->check, hv);
			fputc('\n', s->check);
		}
	}
	if (cc.location)
		imp_not_mapped(s->check, 8, "curl --location", NULL,
			       "healthd follows no redirect: a redirect is the status it sees");
	if (cc.max_time_ms && cc.max_time_ms < *timeout_ms)
		*timeout_ms = cc.max_time_ms;
	if (cc.connect_timeout_ms)
		imp_not_mapped(s->check, 8, "curl --connect-timeout", NULL,
			       "healthd's timeout covers the connection and the answer");
	return true;
}

/* ---- dig ---- */

static const char *const qtypes[] = { "A", "AAAA", "CAA", "CNAME", "DNSKEY", "DS", "HTTPS",
	"MX", "NAPTR", "NS", "PTR", "SOA", "SRV", "SSHFP", "SVCB", "TLSA", "TXT", NULL };

static const char *qtype_of(const char *s)
{
	for (const char *const *t = qtypes; *t; t++)
		if (!strcasecmp(*t, s))
			return *t;
	return NULL;
}

static bool as_dns(struct imp_svc *s, const struct pipeline *p, uint64_t *timeout_ms,
		   const char **why)
{
	const struct stage *st = &p->st[0];
	const char *server = NULL, *name = NULL, *qtype = NULL, *port = "53", *pat = NULL, *rcode = NULL;
	bool is_short = false, fixed, whole;
	unsigned char addr[16];
	uint64_t ms = 0;
	FILE *notes = s->check;

	for (int i = 1; i < st->argc; i++) {
		const char *a = st->argv[i];

		if (a[0] == '@' && !server) {
			server = a + 1;
		} else if (!strcmp(a, "-p") && i + 1 < st->argc) {
			port = st->argv[++i];
		} else if (!strcmp(a, "-t") && i + 1 < st->argc && qtype_of(st->argv[i + 1])) {
			qtype = qtype_of(st->argv[++i]);
		} else if (!strcmp(a, "-q") && i + 1 < st->argc) {
			name = st->argv[++i];
		} else if (!strcmp(a, "-4") || !strcmp(a, "-6") || !strcasecmp(a, "IN")) {
			continue;
		} else if (!strcmp(a, "+short")) {
			is_short = true;
		} else if (!strncmp(a, "+time=", 6)) {
			if (!imp_seconds(a + 6, CFG_DURATION_MAX_MS, &ms)) {
				*why = a;
				return false;
			}
		} else if (!strcmp(a, "+noall") || !strcmp(a, "+answer") || !strcmp(a, "+nocomments")) {
			continue;
		} else if (a[0] == '+') {
			imp_not_mapped(notes, 8, "dig option", a, "the dns check has no such setting");
		} else if (a[0] == '-') {
			*why = a;
			return false;
		} else if (!qtype && qtype_of(a)) {
			qtype = qtype_of(a);
		} else if (!name) {
			name = a;
		} else {
			*why = a;
			return false;
		}
	}
	if (!server || (inet_pton(AF_INET, server, addr) != 1 && inet_pton(AF_INET6, server, addr) != 1)) {
		*why = "no @ADDRESS: dig asked the resolvers of /etc/resolv.conf";
		return false;
	}
	if (!name || strspn(port, "0123456789") != strlen(port) || atoi(port) < 1 || atoi(port) > 65535) {
		*why = !name ? "no name" : "-p";
		return false;
	}
	if (p->n == 2) {
		pat = grep_pattern(&p->st[1], &fixed, &whole);
		if (pat && !strncmp(pat, "status: ", 8) && !is_short)
			rcode = pat + 8;
		else if (!pat || !is_short || whole || (!fixed && !regex_plain(pat))) {
			*why = "its | grep";
			return false;
		}
	}
	s->check_type = "dns";
	fputs("        qname: ", s->check);
	imp_yaml_str(s->check, name);
	fprintf(s->check, "\n        qtype: %s\n", qtype ? qtype : "A");
	fprintf(s->check, strchr(server, ':') ? "        server: \"[%s]:%s\"\n" :
		"        server: \"%s:%s\"\n", server, port);
	if (rcode) {
		fputs("        expect_rcode: ", s->check);
		imp_yaml_str(s->check, rcode);
		fputc('\n', s->check);
	} else {
		fputs("        expect_rcode: NOERROR\n", s->check);
		fputs("        # dig exited 0 on any answer, even SERVFAIL or NXDOMAIN\n", s->check);
	}
	if (pat && !rcode) {
		fputs("        expect_answer: ", s->check);
		imp_yaml_str(s->check, pat);
		fputc('\n', s->check);
	}
	if (ms && ms < *timeout_ms)
		*timeout_ms = ms;
	return true;
}

/* Recognise cmd as a call of tool; what it writes goes to s->check only
 * when it is recognised. */
static bool try_as(struct imp_svc *s, const struct pipeline *p, uint64_t *timeout_ms,
		   const char **why,
		   bool (*as)(struct imp_svc *, const struct pipeline *, uint64_t *, const char **))
{
	FILE *orig = s->check;
	char *buf = NULL;
	size_t len = 0;
	bool ok;

	if (!(s->check = open_memstream(&buf, &len))) {
		s->check = orig;
		return false;
	}
	ok = as(s, p, timeout_ms, why);
	fclose(s->check);
	s->check = orig;
	if (ok)
		fwrite(buf, 1, len, s->check);
	free(buf);
	return ok;
}

int imp_check_from_cmd(struct imp_svc *s, const char *what, const char *cmd, bool shell,
		       uint64_t *timeout_ms)
{
	struct pipeline p;
	const char *why = NULL, *tool = NULL;
	bool ok = false, unclosed;

	if (split(cmd, &p, shell, &unclosed) && p.st[0].argc) {
		tool = base(p.st[0].argv[0]);
		if (!strcmp(tool, "curl"))
			ok = try_as(s, &p, timeout_ms, &why, as_http);
		else if (!strcmp(tool, "dig"))
			ok = try_as(s, &p, timeout_ms, &why, as_dns);
		else
			tool = NULL;
	} else if (!shell) {
		free(p.buf);
		return -1;
	}
	if (!ok) {
		s->check_type = "exec";
		if (tool && why) {
			fprintf(s->check, "        # kept as a command: %s's ", tool);
			imp_comment_text(s->check, why);
			fprintf(s->check, " has no %s check equivalent\n",
				!strcmp(tool, "curl") ? "http" : "dns");
		}
		if (shell) {
			fprintf(s->check, "        # %s ran through a shell; so does this command\n", what);
			fputs("        command: [\"/bin/sh\", \"-c\", ", s->check);
			imp_yaml_str(s->check, cmd);
		} else {
			fprintf(s->check, "        # %s ran without a shell, split into words as here\n", what);
			for (int i = 1; i < p.st[0].argc; i++)
				if (strchr("|&;<>", p.st[0].argv[i][0])) {
					fputs("        # '", s->check);
					imp_comment_text(s->check, p.st[0].argv[i]);
					fputs("' is a word passed to the program, as it was: no shell saw it\n",
					      s->check);
					break;
				}
			fputs("        command: [", s->check);
			for (int i = 0; i < p.st[0].argc; i++) {
				fputs(i ? ", " : "", s->check);
				imp_yaml_str(s->check, p.st[0].argv[i]);
			}
		}
		fputs("]\n", s->check);
	}
	free(p.buf);
	return 0;
}

int imp_sh_words(FILE *f, const char *cmd)
{
	struct pipeline p;
	bool unclosed;

	if (!split(cmd, &p, false, &unclosed)) {
		free(p.buf);
		return -1;
	}
	for (int i = 0; i < p.st[0].argc; i++) {
		const char *w = p.st[0].argv[i];

		fputs(i ? " " : "", f);
		if (*w && strspn(w, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
				 "0123456789_./:=@%+,-") == strlen(w)) {
			fputs(w, f);
			continue;
		}
		fputc('\'', f);
		for (; *w; w++)
			fputs(*w == '\'' ? "'\\''" : (char[]){ *w, 0 }, f);
		fputc('\'', f);
	}
	free(p.buf);
	return 0;
}
