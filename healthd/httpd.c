/*
 * healthd's HTTP endpoints, on the server in http/server.c (which bounds
 * connections, deadlines and bodies for every route):
 *
 *   GET /health          200 + node state word, 503 when a service is withdrawn
 *   GET /health/SERVICE  200 + state word when announced, 503 when withdrawn
 *   GET /status          the status snapshot (JSON)
 *   GET /metrics         Prometheus text exposition
 *
 * Only GET and HEAD (405 otherwise, before a body is read); anything else
 * is 404.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config/config.h"

#include "healthd/internal.h"
#include "http/server.h"

struct httpd {
	struct hd *hd;
	struct http_server *srv;
	/* Shared, refcounted by MHD: /health answers without allocating. */
	struct MHD_Response *word[SVC_STATES];
	struct MHD_Response *not_found;
};

/* Worse states rank higher: the node's word is its worst service's. */
static const int state_rank[SVC_STATES] = {
	[SVC_UP] = 0, [SVC_DEGRADED] = 1, [SVC_DRAINING] = 2, [SVC_WITHDRAWN] = 3,
};

/* A service healthd calls announced whose protocol BIRD does not run is
 * not announced: 503, with what is missing. */
static bool not_running(const struct hd *hd, const struct svc *s, char *why, size_t len)
{
	char what[160];

	if (!svc_state_announced(s->state) || !hd->sync ||
	    bird_sync_announcing(hd->sync, s->cfg->name, what, sizeof(what)))
		return false;
	snprintf(why, len, "%s: %s: %s\n", svc_state_str(s->state), s->cfg->name, what);
	return true;
}

static enum MHD_Result serve_health(struct httpd *h, struct MHD_Connection *conn,
				    const char *service)
{
	struct hd *hd = h->hd;
	enum svc_state worst = SVC_WITHDRAWN;   /* no services: nothing announced */
	char why[256];

	if (service) {
		for (size_t i = 0; i < hd->n_svcs; i++)
			if (!strcmp(hd->svcs[i]->svc.cfg->name, service)) {
				enum svc_state st = hd->svcs[i]->svc.state;

				if (not_running(hd, &hd->svcs[i]->svc, why, sizeof(why)))
					return http_reply_owned(conn, MHD_HTTP_SERVICE_UNAVAILABLE,
							   strdup(why), strlen(why), "text/plain");
				return MHD_queue_response(conn, svc_state_announced(st) ?
							  MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE,
							  h->word[st]);
			}
		return MHD_queue_response(conn, MHD_HTTP_NOT_FOUND, h->not_found);
	}
	for (size_t i = 0; i < hd->n_svcs; i++) {
		enum svc_state st = hd->svcs[i]->svc.state;

		if (not_running(hd, &hd->svcs[i]->svc, why, sizeof(why)))
			return http_reply_owned(conn, MHD_HTTP_SERVICE_UNAVAILABLE, strdup(why),
					   strlen(why), "text/plain");
		if (i == 0 || state_rank[st] > state_rank[worst])
			worst = st;
	}
	return MHD_queue_response(conn, svc_state_announced(worst) ? MHD_HTTP_OK :
				  MHD_HTTP_SERVICE_UNAVAILABLE, h->word[worst]);
}

static enum MHD_Result serve_status(struct httpd *h, struct MHD_Connection *conn)
{
	json_t *snap = hd_status(h->hd);
	char *js = snap ? json_dumps(snap, JSON_INDENT(2)) : NULL;
	char *body = NULL;
	int n = -1;

	json_decref(snap);
	if (js)
		n = asprintf(&body, "%s\n", js);
	free(js);
	if (n < 0)
		return MHD_NO;
	return http_reply_owned(conn, MHD_HTTP_OK, body, (size_t)n, "application/json");
}

static enum MHD_Result serve_metrics(struct httpd *h, struct MHD_Connection *conn)
{
	size_t len = 0;
	char *body = hd_metrics(h->hd, &len);

	return http_reply_owned(conn, MHD_HTTP_OK, body, len,
			   "text/plain; version=0.0.4; charset=utf-8");
}

static enum MHD_Result on_request(void *ctx, struct http_request *r)
{
	struct httpd *h = ctx;

	if (!strcmp(r->url, "/health"))
		return serve_health(h, r->conn, NULL);
	if (!strncmp(r->url, "/health/", 8))
		return serve_health(h, r->conn, r->url + 8);
	if (!strcmp(r->url, "/status"))
		return serve_status(h, r->conn);
	if (!strcmp(r->url, "/metrics"))
		return serve_metrics(h, r->conn);
	return MHD_queue_response(r->conn, MHD_HTTP_NOT_FOUND, h->not_found);
}

static void httpd_free(struct httpd *h)
{
	for (int i = 0; i < SVC_STATES; i++)
		if (h->word[i])
			MHD_destroy_response(h->word[i]);
	if (h->not_found)
		MHD_destroy_response(h->not_found);
	free(h);
}

/* The replies /health shares (refcounted by MHD), and the server. */
static struct httpd *httpd_alloc(struct hd *hd)
{
	static const char *const words[SVC_STATES] = {
		[SVC_WITHDRAWN] = "withdrawn\n", [SVC_UP] = "up\n",
		[SVC_DEGRADED] = "degraded\n", [SVC_DRAINING] = "draining\n",
	};
	struct httpd *h = calloc(1, sizeof(*h));

	if (!h)
		return NULL;
	h->hd = hd;
	for (int i = 0; i < SVC_STATES; i++)
		if (!(h->word[i] = http_text_response(words[i])))
			goto fail;
	if (!(h->not_found = http_text_response("not found\n")))
		goto fail;
	return h;
fail:
	httpd_free(h);
	return NULL;
}

static const struct http_server_opts server_opts = {
	.handler = on_request,
	.methods = "GET, HEAD",
	.max_body = 0,   /* a GET body means nothing here */
};

int httpd_new(struct hd *hd, uv_loop_t *loop, const struct config *cfg,
	      struct httpd **out, char *err, size_t errlen)
{
	struct http_server_opts o = server_opts;
	struct httpd *h;
	int rc;

	*out = NULL;
	snprintf(err, errlen, "http: out of memory");
	if (cfg->http.n_listen == 0)
		return 0;
	if (!(h = httpd_alloc(hd)))
		return -ENOMEM;
	o.ctx = h;
	if (!(h->srv = http_server_new(&o))) {
		httpd_free(h);
		return -ENOMEM;
	}
	for (size_t i = 0; i < cfg->http.n_listen; i++) {
		struct http_listen l = {
			.addr = cfg->http.listen[i], .what = "http.listen",
			.per_source = cfg->http.per_source_limit,
		};

		if ((rc = http_server_listen(h->srv, loop, &l, err, errlen)) < 0) {
			httpd_close(h);
			return rc;
		}
		log_info("http: listening on %s", cfg->http.listen[i]);
	}
	*out = h;
	return 0;
}

/* No request reaches h once the listeners' handles are closing; what MHD
 * has queued holds its own references to the shared replies. */
void httpd_close(struct httpd *h)
{
	if (!h)
		return;
	http_server_close(h->srv);
	httpd_free(h);
}

int httpd_new_unbound(struct hd *hd, struct httpd **out, struct MHD_Daemon **mhd)
{
	struct http_server_opts o = server_opts;
	struct httpd *h = httpd_alloc(hd);

	*out = NULL;
	if (!h)
		return -ENOMEM;
	o.ctx = h;
	if (!(h->srv = http_server_new_unbound(&o, mhd))) {
		httpd_free(h);
		return -ENOMEM;
	}
	*out = h;
	return 0;
}

void httpd_free_unbound(struct httpd *h)
{
	if (!h)
		return;
	http_server_free_unbound(h->srv);
	httpd_free(h);
}
