/*
 * HTTP and HTTPS probes through libcurl. One easy handle per check, kept
 * across probes so a keep-alive connection is reused; curl still notices
 * a dead peer on reuse and reconnects, so a probe sees a dead server.
 * Details name the URL without its password (cfg_redact_url): they reach
 * the logs and the unauthenticated /status.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <curl/curl.h>

#include "checks/checks.h"

#ifndef HEALTHD_VERSION
#define HEALTHD_VERSION "0"
#endif

/* The most body kept for expect_body; a longer body is cut here. */
#define HTTP_BODY_MAX (64 * 1024)

struct http_check {
	struct check *c;
	CURL *easy;
	struct curl_slist *headers;
	struct curl_slist *connect_to;
	char *shown_url;         /* the URL for people: no password */
	char *body;              /* HTTP_BODY_MAX + 1, only with expect_body */
	size_t body_len;
	bool body_full;          /* the transfer was stopped at HTTP_BODY_MAX */
	bool in_multi;
	char errbuf[CURL_ERROR_SIZE];
};

static size_t on_body(char *data, size_t size, size_t nmemb, void *userp)
{
	struct http_check *h = userp;
	size_t n = size * nmemb, room;

	if (!h->body)
		return n;
	room = HTTP_BODY_MAX - h->body_len;
	if (n > room) {
		memcpy(h->body + h->body_len, data, room);
		h->body_len += room;
		h->body_full = true;
		return 0; /* enough: stop reading (CURLE_WRITE_ERROR) */
	}
	memcpy(h->body + h->body_len, data, n);
	h->body_len += n;
	return n;
}

static bool host_is_numeric(const char *host)
{
	unsigned char buf[16];
	char tmp[64];
	size_t len = strlen(host);

	if (len >= 2 && host[0] == '[' && host[len - 1] == ']') {
		if (len - 2 >= sizeof(tmp))
			return false;
		memcpy(tmp, host + 1, len - 2);
		tmp[len - 2] = '\0';
		return uv_inet_pton(AF_INET6, tmp, buf) == 0;
	}
	return uv_inet_pton(AF_INET, host, buf) == 0 ||
	       uv_inet_pton(AF_INET6, host, buf) == 0;
}

/* "URLHOST:URLPORT:host:port" so SNI and Host stay the URL's. Also says
 * whether the address curl connects to needs a name lookup. */
static int build_connect_to(struct http_check *h, bool *needs_dns)
{
	const struct cfg_check *cfg = h->c->cfg;
	char *host = NULL, *port = NULL, *line = NULL;
	CURLU *u = curl_url();
	int rc = -EINVAL;

	if (!u)
		return -ENOMEM;
	if (curl_url_set(u, CURLUPART_URL, cfg->url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK)
		goto out;
	*needs_dns = !host_is_numeric(host);
	if (cfg->connect_to) {
		char chost[64];
		const char *colon = strrchr(cfg->connect_to, ':');
		size_t hl = colon ? (size_t)(colon - cfg->connect_to) : 0;

		if (!colon || hl == 0 || hl >= sizeof(chost))
			goto out;
		memcpy(chost, cfg->connect_to, hl);
		chost[hl] = '\0';
		*needs_dns = !host_is_numeric(chost);
		rc = -ENOMEM;
		if (asprintf(&line, "%s:%s:%s", host, port, cfg->connect_to) < 0)
			goto out;
		h->connect_to = curl_slist_append(NULL, line);
		free(line);
		if (!h->connect_to)
			goto out;
	}
	rc = 0;
out:
	curl_free(host);
	curl_free(port);
	curl_url_cleanup(u);
	return rc;
}

static int build_headers(struct http_check *h)
{
	const struct cfg_check *cfg = h->c->cfg;

	for (size_t i = 0; i < cfg->n_headers; i++) {
		const struct cfg_header *hd = &cfg->headers[i];
		struct curl_slist *l;
		char *line;

		/* "Name;" is how curl sends a header with an empty value. */
		if (asprintf(&line, hd->value && *hd->value ? "%s: %s" : "%s;",
			     hd->name, hd->value) < 0)
			return -ENOMEM;
		l = curl_slist_append(h->headers, line);
		free(line);
		if (!l)
			return -ENOMEM;
		h->headers = l;
	}
	return 0;
}

static void set_options(struct http_check *h)
{
	const struct cfg_check *cfg = h->c->cfg;
	CURL *e = h->easy;
	long timeout = cfg->timeout_ms ? (long)cfg->timeout_ms : 1000;

	curl_easy_setopt(e, CURLOPT_URL, cfg->url);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	/* A health reply is small: a 4 KiB receive buffer instead of 16 KiB
	 * per handle keeps thousands of checks within a few MB. */
	curl_easy_setopt(e, CURLOPT_BUFFERSIZE, 4096L);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, timeout);
	curl_easy_setopt(e, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 0L);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "healthd/" HEALTHD_VERSION);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, h);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, h->errbuf);
	if (!cfg->tls_verify) {
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	if (h->headers)
		curl_easy_setopt(e, CURLOPT_HTTPHEADER, h->headers);
	if (h->connect_to)
		curl_easy_setopt(e, CURLOPT_CONNECT_TO, h->connect_to);
}

static void http_free(struct http_check *h)
{
	if (!h)
		return;
	if (h->easy)
		curl_easy_cleanup(h->easy);
	curl_slist_free_all(h->headers);
	curl_slist_free_all(h->connect_to);
	free(h->shown_url);
	free(h->body);
	free(h);
}

static int http_init(struct check *c)
{
	const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
	struct http_check *h;
	bool needs_dns = false;
	int rc = -ENOMEM;

	if (!c->cfg->url)
		return -EINVAL;
	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->c = c;
	if (!(h->shown_url = malloc(strlen(c->cfg->url) + 4)))
		goto fail;
	cfg_redact_url(c->cfg->url, h->shown_url, strlen(c->cfg->url) + 4);
	rc = build_connect_to(h, &needs_dns);
	if (rc < 0)
		goto fail;
	/* Without AsynchDNS curl would resolve a name blocking the loop. */
	rc = -ENOTSUP;
	if (needs_dns && !(v->features & CURL_VERSION_ASYNCHDNS))
		goto fail;
	rc = build_headers(h);
	if (rc < 0)
		goto fail;
	rc = -ENOMEM;
	if (c->cfg->expect_body && !(h->body = malloc(HTTP_BODY_MAX + 1)))
		goto fail;
	if (!(h->easy = curl_easy_init()))
		goto fail;
	set_options(h);
	c->priv = h;
	return 0;
fail:
	http_free(h);
	return rc;
}

static enum check_reason reason_of(CURL *easy, CURLcode code)
{
	long os_errno = 0;

	switch (code) {
	case CURLE_COULDNT_CONNECT:
		curl_easy_getinfo(easy, CURLINFO_OS_ERRNO, &os_errno);
		if (os_errno == ECONNREFUSED)
			return CHECK_REFUSED;
		if (os_errno == ENETUNREACH || os_errno == EHOSTUNREACH)
			return CHECK_UNREACHABLE;
		if (os_errno == ETIMEDOUT)
			return CHECK_TIMEOUT;
		return CHECK_IO;
	case CURLE_OPERATION_TIMEDOUT:
		return CHECK_TIMEOUT;
	case CURLE_COULDNT_RESOLVE_HOST:
		return CHECK_DNS;
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_INVALIDCERTSTATUS:
	case CURLE_SSL_CRL_BADFILE:
	case CURLE_SSL_SHUTDOWN_FAILED:
	case CURLE_SSL_ENGINE_NOTFOUND:
	case CURLE_SSL_ENGINE_SETFAILED:
	case CURLE_SSL_ENGINE_INITFAILED:
	case CURLE_USE_SSL_FAILED:
		return CHECK_TLS;
	case CURLE_WEIRD_SERVER_REPLY:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
	case CURLE_UNSUPPORTED_PROTOCOL:
		return CHECK_PROTOCOL;
	case CURLE_URL_MALFORMAT:
	case CURLE_OUT_OF_MEMORY:
	case CURLE_FAILED_INIT:
		return CHECK_INTERNAL;
	default:
		return CHECK_IO;
	}
}

static bool status_expected(const struct cfg_check *cfg, long status)
{
	if (cfg->n_expect_status == 0)
		return status == 200;
	for (size_t i = 0; i < cfg->n_expect_status; i++)
		if (cfg->expect_status[i] == status)
			return true;
	return false;
}

static void format_expected(const struct cfg_check *cfg, char *buf, size_t len)
{
	size_t off = 0;

	if (cfg->n_expect_status == 0) {
		snprintf(buf, len, "200");
		return;
	}
	buf[0] = '\0';
	for (size_t i = 0; i < cfg->n_expect_status && off < len; i++)
		off += (size_t)snprintf(buf + off, len - off, "%s%d",
					i ? ", " : "", cfg->expect_status[i]);
}

static void report_failure(struct http_check *h, CURLcode code)
{
	struct check *c = h->c;
	const char *url = h->shown_url;
	const char *err = h->errbuf[0] ? h->errbuf : curl_easy_strerror(code);
	enum check_reason r = reason_of(h->easy, code);

	switch (r) {
	case CHECK_REFUSED:
		check_report(c, r, 0, "connect to %s refused", url);
		break;
	case CHECK_TIMEOUT:
		check_report(c, r, 0, "no answer from %s within %llums", url,
			     (unsigned long long)c->cfg->timeout_ms);
		break;
	default:
		check_report(c, r, 0, "%s: %s", url, err);
		break;
	}
}

static void on_done(void *easy, int curlcode, void *arg)
{
	struct http_check *h = arg;
	struct check *c = h->c;
	const struct cfg_check *cfg = c->cfg;
	CURLcode code = (CURLcode)curlcode;
	long status = 0;
	char expected[64];

	h->in_multi = false;
	if (code == CURLE_WRITE_ERROR && h->body_full)
		code = CURLE_OK; /* stopped reading on purpose */
	if (code != CURLE_OK) {
		report_failure(h, code);
		return;
	}
	curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
	if (!status_expected(cfg, status)) {
		format_expected(cfg, expected, sizeof(expected));
		check_report(c, CHECK_STATUS, (int)status,
			     "status %ld (expected %s) from %s", status, expected,
			     h->shown_url);
		return;
	}
	if (h->body && !memmem(h->body, h->body_len, cfg->expect_body,
			       strlen(cfg->expect_body))) {
		check_report(c, CHECK_BODY, (int)status,
			     "body of %s lacks \"%s\"%s", h->shown_url, cfg->expect_body,
			     h->body_full ? " in its first 64 KiB" : "");
		return;
	}
	check_report(c, CHECK_OK, (int)status, "status %ld from %s", status,
		     h->shown_url);
}

static int http_start(struct check *c)
{
	struct http_check *h = c->priv;
	int rc;

	h->body_len = 0;
	h->body_full = false;
	h->errbuf[0] = '\0';
	rc = check_curl_add(c->engine, h->easy, on_done, h);
	if (rc < 0)
		return rc;
	h->in_multi = true;
	return 0;
}

static void http_cancel(struct check *c)
{
	struct http_check *h = c->priv;

	if (h && h->in_multi) {
		check_curl_remove(c->engine, h->easy);
		h->in_multi = false;
	}
}

static void http_destroy(struct check *c)
{
	http_cancel(c);
	http_free(c->priv);
	c->priv = NULL;
	check_freed(c);
}

const struct check_ops check_http_ops = {
	.type = "http",
	.init = http_init,
	.start = http_start,
	.cancel = http_cancel,
	.destroy = http_destroy,
};
