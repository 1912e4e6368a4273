/*
 * The pure parts of the control protocol, shared by healthd and healthctl
 * and fuzzed: request lines, text checks, and the tolerant scan that finds
 * control.socket in a config file that may not parse as a whole.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "config/config.h"
#include "healthd/healthd.h"

static const struct {
	const char *word;
	enum ctl_cmd cmd;
} ctl_words[] = {
	{ "status", CTL_STATUS }, { "version", CTL_VERSION }, { "reload", CTL_RELOAD },
	{ "drain", CTL_DRAIN }, { "undrain", CTL_UNDRAIN }, { "check", CTL_CHECK },
};

/* Length of the UTF-8 sequence at p (at most n bytes), 0 when invalid:
 * no overlong forms, no surrogates, nothing above U+10FFFF. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
	size_t len = p[0] < 0x80 ? 1 : p[0] >= 0xc2 && p[0] <= 0xdf ? 2 :
		     p[0] >= 0xe0 && p[0] <= 0xef ? 3 : p[0] >= 0xf0 && p[0] <= 0xf4 ? 4 : 0;

	if (!len || len > n)
		return 0;
	for (size_t i = 1; i < len; i++)
		if ((p[i] & 0xc0) != 0x80)
			return 0;
	if ((p[0] == 0xe0 && p[1] < 0xa0) || (p[0] == 0xed && p[1] > 0x9f) ||
	    (p[0] == 0xf0 && p[1] < 0x90) || (p[0] == 0xf4 && p[1] > 0x8f))
		return 0;
	return len;
}

int ctl_text_check(const char *what, const char *s, size_t max, char *err, size_t errlen)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = strlen(s);

	if (!n) {
		snprintf(err, errlen, "%s is empty", what);
		return -EINVAL;
	}
	if (n > max) {
		snprintf(err, errlen, "%s too long (%zu bytes, at most %zu)", what, n, max);
		return -EINVAL;
	}
	for (size_t i = 0, len; i < n; i += len) {
		len = utf8_len(p + i, n - i);
		if (!len) {
			snprintf(err, errlen, "%s is not valid UTF-8 (byte %zu)", what, i + 1);
			return -EINVAL;
		}
		/* C0, DEL and C1 (U+0080..U+009F is 0xc2 0x80..0x9f) */
		if ((len == 1 && (p[i] < 0x20 || p[i] == 0x7f)) ||
		    (len == 2 && p[i] == 0xc2 && p[i + 1] < 0xa0)) {
			snprintf(err, errlen, "%s contains a control character (byte %zu)", what, i + 1);
			return -EINVAL;
		}
	}
	return 0;
}

/* The next blank-separated word, NUL-terminated in place; NULL at the end. */
static char *next_word(char **p)
{
	char *s = *p, *w;

	s += strspn(s, " \t");
	if (!*s) {
		*p = s;
		return NULL;
	}
	w = s;
	s += strcspn(s, " \t");
	if (*s)
		*s++ = '\0';
	*p = s;
	return w;
}

/* [DURATION] [force] [reason TEXT] after drain/undrain TARGET. */
static int drain_options(char *rest, struct ctl_request *req, char *err, size_t errlen)
{
	bool have_for = false;
	char *w;

	while ((w = next_word(&rest))) {
		if (!strcmp(w, "reason")) {
			char *end;

			rest += strspn(rest, " \t");
			end = rest + strlen(rest);
			while (end > rest && (end[-1] == ' ' || end[-1] == '\t'))
				*--end = '\0';
			if (!*rest) {
				snprintf(err, errlen, "reason needs a text");
				return -EINVAL;
			}
			if (ctl_text_check("reason", rest, SVC_REASON_MAX, err, errlen) < 0)
				return -EINVAL;
			req->reason = rest;
			return 0;
		}
		if (!strcmp(w, "force") && req->cmd == CTL_DRAIN && !req->force) {
			req->force = true;
			continue;
		}
		int rc = have_for || req->cmd == CTL_UNDRAIN ? -EINVAL
			 : cfg_parse_duration_max(w, CFG_DRAIN_MAX_MS, &req->for_ms);

		if (rc == -ERANGE) {
			char max[32];

			req->for_ms = 0;
			cfg_format_duration(max, sizeof(max), CFG_DRAIN_MAX_MS);
			snprintf(err, errlen, "drain duration '%.64s' is too long (at most %s)", w, max);
			return -EINVAL;
		}
		if (rc < 0) {
			req->for_ms = 0;
			snprintf(err, errlen, "bad duration '%.64s' (e.g. 30s, 5m; undrain takes none)", w);
			return -EINVAL;
		}
		have_for = true;
	}
	return 0;
}

int ctl_request_parse(char *line, struct ctl_request *req, char *err, size_t errlen)
{
	char *rest = line, *cmd = next_word(&rest), *arg = next_word(&rest);
	size_t i, n = sizeof(ctl_words) / sizeof(ctl_words[0]);

	memset(req, 0, sizeof(*req));
	if (!cmd) {
		snprintf(err, errlen, "empty request");
		return -EINVAL;
	}
	for (i = 0; i < n && strcmp(cmd, ctl_words[i].word); i++)
		;
	if (i == n) {
		snprintf(err, errlen, "unknown command '%.64s' (status, drain, undrain, check, reload, version)", cmd);
		return -EINVAL;
	}
	req->cmd = ctl_words[i].cmd;
	req->arg = arg;
	if (req->cmd == CTL_DRAIN || req->cmd == CTL_UNDRAIN) {
		if (!arg) {
			snprintf(err, errlen, "usage: drain SERVICE|--all [DURATION] [force] [reason TEXT]"
				 " | undrain SERVICE|--all [reason TEXT]");
			return -EINVAL;
		}
		req->all = !strcmp(arg, "--all");
		return drain_options(rest, req, err, errlen);
	} else if (req->cmd == CTL_CHECK && !arg) {
		snprintf(err, errlen, "usage: check [SERVICE/]CHECK");
		return -EINVAL;
	}
	return 0;
}


/* ---- control.socket from a config that may not parse ---- */

/* A NUL cannot be in a path: such a value is not one. */
static int put_path(const char *s, size_t n, char *out, size_t outlen)
{
	if (n == 0 || memchr(s, '\0', n))
		return 0;
	if (n >= outlen)
		return -ENAMETOOLONG;
	memcpy(out, s, n);
	out[n] = '\0';
	return 1;
}

/* The YAML way: control → socket in the top mapping, whatever the style.
 * -EAGAIN when the text breaks before the key was seen. */
static int scan_events(const char *text, size_t len, char *out, size_t outlen)
{
	enum { MAP_KEY, MAP_VALUE, SEQ } kind[16];
	bool control[16] = { false };
	int depth = 0, rc = -EAGAIN, key_control = 0, key_socket = 0;
	yaml_parser_t p;
	yaml_event_t ev;

	if (!yaml_parser_initialize(&p))
		return -ENOMEM;
	yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
	while (rc == -EAGAIN && yaml_parser_parse(&p, &ev)) {
		yaml_event_type_t t = ev.type;
		int d = depth - 1;

		if (t == YAML_STREAM_END_EVENT || t == YAML_DOCUMENT_END_EVENT) {
			rc = 0;
		} else if (t == YAML_SCALAR_EVENT && d >= 0 && kind[d] == MAP_KEY) {
			const char *v = (const char *)ev.data.scalar.value;

			key_control = d == 0 && !strcmp(v, "control");
			key_socket = d == 1 && control[d] && !strcmp(v, "socket");
			kind[d] = MAP_VALUE;
		} else if (t == YAML_SCALAR_EVENT || t == YAML_ALIAS_EVENT) {
			if (t == YAML_SCALAR_EVENT && key_socket)
				rc = put_path((const char *)ev.data.scalar.value,
					      ev.data.scalar.length, out, outlen);
			if (d >= 0 && kind[d] == MAP_VALUE)
				kind[d] = MAP_KEY;
			key_control = key_socket = 0;
		} else if (t == YAML_MAPPING_START_EVENT || t == YAML_SEQUENCE_START_EVENT) {
			if (depth == (int)(sizeof(kind) / sizeof(kind[0]))) {
				rc = -EAGAIN;
				yaml_event_delete(&ev);
				break;
			}
			kind[depth] = t == YAML_MAPPING_START_EVENT ? MAP_KEY : SEQ;
			control[depth] = key_control && t == YAML_MAPPING_START_EVENT;
			depth++;
			key_control = key_socket = 0;
		} else if (t == YAML_MAPPING_END_EVENT || t == YAML_SEQUENCE_END_EVENT) {
			depth--;
			if (depth > 0 && kind[depth - 1] == MAP_VALUE)
				kind[depth - 1] = MAP_KEY;
		}
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&p);
	return rc;
}

/* A quoted or plain scalar at s (n bytes); plain ones end at a comment or,
 * in a flow map, at ',' or '}'. Backslash escapes other than \" and \\
 * are kept as written: a path has no use for them. */
static int line_value(const char *s, size_t n, bool flow, char *out, size_t outlen)
{
	size_t i = 0, o = 0;

	while (i < n && (s[i] == ' ' || s[i] == '\t'))
		i++;
	if (i < n && (s[i] == '"' || s[i] == '\'')) {
		char q = s[i++];

		for (; i < n; i++) {
			char ch = s[i];

			if (q == '"' && ch == '\\' && i + 1 < n && (s[i + 1] == '"' || s[i + 1] == '\\'))
				ch = s[++i];
			else if (q == '\'' && ch == '\'' && i + 1 < n && s[i + 1] == '\'')
				i++;
			else if (ch == q)
				return o ? 1 : 0;
			else if (ch == '\0')
				return 0;
			if (o + 1 >= outlen)
				return -ENAMETOOLONG;
			out[o++] = ch;
			out[o] = '\0';
		}
		return 0; /* unterminated: not a value to trust */
	}
	size_t b = i, e = i;

	for (; i < n; i++) {
		if ((s[i] == '#' && (i == b || s[i - 1] == ' ' || s[i - 1] == '\t')) ||
		    (flow && (s[i] == ',' || s[i] == '}')))
			break;
		if (s[i] != ' ' && s[i] != '\t')
			e = i + 1;
	}
	return put_path(s + b, e - b, out, outlen);
}

/* "socket" then optional blanks and ':' at s; the offset after ':', or 0. */
static size_t key_socket_at(const char *s, size_t n)
{
	size_t i = 0;

	if (n >= 8 && (s[0] == '"' || s[0] == '\'') && !memcmp(s + 1, "socket", 6) && s[7] == s[0])
		i = 8;
	else if (n >= 6 && !memcmp(s, "socket", 6))
		i = 6;
	else
		return 0;
	while (i < n && (s[i] == ' ' || s[i] == '\t'))
		i++;
	return i < n && s[i] == ':' ? i + 1 : 0;
}

/* The line way, for text libyaml gives up on: a "control:" line at column
 * 0, then either a flow map on it or indented "socket:" lines below. */
static int scan_lines(const char *text, size_t len, char *out, size_t outlen)
{
	bool in_block = false;

	for (size_t at = 0; at < len;) {
		const char *l = text + at, *nl = memchr(l, '\n', len - at);
		size_t n = nl ? (size_t)(nl - l) : len - at, i = 0, k;

		at += n + 1;
		if (n && l[n - 1] == '\r')
			n--;
		while (i < n && (l[i] == ' ' || l[i] == '\t'))
			i++;
		if (i == n || l[i] == '#')
			continue;
		if (i == 0) {
			in_block = false;
			if (n < 8 || memcmp(l, "control", 7))
				continue;
			for (i = 7; i < n && (l[i] == ' ' || l[i] == '\t'); i++)
				;
			if (i == n || l[i] != ':')
				continue;
			for (i++; i < n && (l[i] == ' ' || l[i] == '\t'); i++)
				;
			if (i == n || l[i] == '#') {
				in_block = true;
				continue;
			}
			if (l[i] != '{')
				continue;
			/* flow: control: { a: b, socket: /x } */
			for (i++; i < n; i++) {
				if ((k = key_socket_at(l + i, n - i)) &&
				    (l[i - 1] == '{' || l[i - 1] == ',' || l[i - 1] == ' ' || l[i - 1] == '\t'))
					return line_value(l + i + k, n - i - k, true, out, outlen);
			}
			continue;
		}
		if (in_block && (k = key_socket_at(l + i, n - i)))
			return line_value(l + i + k, n - i - k, false, out, outlen);
	}
	return 0;
}

int ctl_socket_scan(const char *text, size_t len, char *out, size_t outlen)
{
	int rc = scan_events(text, len, out, outlen);

	return rc == -EAGAIN ? scan_lines(text, len, out, outlen) : rc;
}
