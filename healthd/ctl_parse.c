/*
 * The pure parts of the control protocol, shared by healthd and healthctl
 * and fuzzed: request lines and text checks.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* [DURATION] [reason TEXT] after drain/undrain TARGET. */
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
			snprintf(err, errlen, "usage: drain SERVICE|--all [DURATION] [reason TEXT]"
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

