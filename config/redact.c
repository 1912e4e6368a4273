/*
 * config/redact.c — the one place that decides what of a check's settings
 * is a secret. Every surface that shows a URL or a header (probe details,
 * and through them status, /status and the logs; `healthd -t -v`) goes
 * through these, and the real values still go on the wire.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "config/config.h"

/* The user info of scheme://userinfo@host/...: the authority ends at the
 * first '/', '?' or '#' (RFC 3986), its user info at the last '@' in it.
 * user:password keeps the user; a user alone (often a token) goes whole. */
const char *cfg_redact_url(const char *url, char *buf, size_t len)
{
	const char *auth = strstr(url, "://"), *end, *at = NULL, *colon;

	if (auth) {
		auth += 3;
		end = auth + strcspn(auth, "/?#");
		for (const char *p = auth; p < end; p++)
			if (*p == '@')
				at = p;
	}
	colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
	if (!at)
		snprintf(buf, len, "%s", url);
	else if (!colon)        /* a user alone is often a token: all of it */
		snprintf(buf, len, "%.*s" CFG_REDACTED "%s", (int)(auth - url), url, at);
	else
		snprintf(buf, len, "%.*s" CFG_REDACTED "%s", (int)(colon + 1 - url), url, at);
	return buf;
}

bool cfg_header_redacted(const struct cfg_check *k, const char *name)
{
	for (size_t i = 0; i < k->n_redact_headers; i++)
		if (strcasecmp(k->redact_headers[i], name) == 0)
			return true;
	return false;
}
