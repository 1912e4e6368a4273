/*
 * http/server.h — the HTTP server both daemons stand on (healthd's
 * /health, /status, /metrics; meshd's API): libmicrohttpd in its epoll
 * mode with no thread of its own, driven from a libuv loop, each listen
 * address one MHD daemon on a socket bound here (so a bind error names the
 * address and errno), HTTPS through GnuTLS when the listener has a
 * certificate.
 *
 * What a hostile client can cost is bounded here, once, for every route:
 *   - a request must arrive whole and its reply be taken within
 *     HTTP_REQUEST_DEADLINE_MS of its connection's start (or of the previous
 *     response, on keep-alive), however slowly it trickles;
 *   - at HTTP_CONN_LIMIT a new connection is taken by dropping the oldest
 *     exchange; one address holds at most per_source connections;
 *   - a method outside the server's list is refused (405) before any body
 *     is read; a body longer than max_body is refused (413) without being
 *     kept: a Content-Length over the cap at once, a chunked one at its end;
 *   - headers and the request line fit in HTTP_CONN_MEMORY.
 * Dropping is shutdown(2) on the connection's socket, so MHD sees the
 * close on its next run and frees it itself.
 *
 * The handler is called once per request, with the body whole.
 */
#ifndef HEALTHD_HTTP_SERVER_H
#define HEALTHD_HTTP_SERVER_H

#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <uv.h>

#define HTTP_CONN_LIMIT 512u           /* all sources of one listener together */
#define HTTP_CONN_TIMEOUT_S 5u         /* inactivity */
#define HTTP_REQUEST_DEADLINE_MS 5000u /* a whole request */
#define HTTP_CONN_MEMORY (16 * 1024)   /* request line + headers must fit */

struct http_request {
	struct MHD_Connection *conn;
	const char *method, *url;
	const char *body;            /* NUL-terminated; "" without one */
	size_t body_len;
	struct sockaddr_storage peer;
	char peer_text[48];          /* "192.0.2.1", "2001:db8::1" */
	bool tls;                    /* it came over HTTPS */
	void *tag;                   /* the listener's, from http_listen */
	void **slot;                 /* the handler's own, kept across http_suspend */
};

typedef enum MHD_Result http_handler_fn(void *ctx, struct http_request *req);

struct http_listen {
	const char *addr;            /* "IP:PORT" or "[IP6]:PORT" */
	const char *what;            /* names the setting in errors: "http.listen" */
	unsigned per_source;         /* connections from one address */
	const char *tls_cert_pem;    /* both or neither: HTTPS */
	const char *tls_key_pem;
	void *tag;
};

struct http_server_opts {
	http_handler_fn *handler;
	void *ctx;
	const char *methods;         /* allowed, "GET, HEAD"; also the 405's Allow */
	size_t max_body;             /* 0: bodies are read and dropped */
	/* Optional. Called before MHD takes a connection: false refuses it
	 * (closed at once, nothing read). */
	bool (*accept)(void *ctx, const struct sockaddr *sa, socklen_t len);
	/* Handlers may http_suspend (MHD_ALLOW_SUSPEND_RESUME). */
	bool suspend;
	/* Frees what a handler left in *slot when its request ends. */
	void (*slot_free)(void *ctx, void *slot);
	/* "%00" in the path or a query value stays those three characters
	 * instead of ending the string there, so a handler that checks every
	 * character refuses it rather than seeing a shortened value. */
	bool keep_nul_escape;
};

struct http_server;

/* A server with no listener yet; NULL when out of memory. */
struct http_server *http_server_new(const struct http_server_opts *o);
/* Binds and starts one listener on loop; "WHAT ADDR: reason" into err. */
int http_server_listen(struct http_server *s, uv_loop_t *loop, const struct http_listen *l,
		       char *err, size_t errlen);
size_t http_server_listeners(const struct http_server *s);
/* Closes every listener; the server is freed when the last handle closed
 * (at once when it has none). */
void http_server_close(struct http_server *s);

/* For the fuzzer and unit tests: one daemon without a listening socket,
 * fed by MHD_add_connection and driven by MHD_run; freed at once. */
struct http_server *http_server_new_unbound(const struct http_server_opts *o,
					    struct MHD_Daemon **mhd);
void http_server_free_unbound(struct http_server *s);

/* ---- replies; each returns what MHD_queue_response returned ---- */

/* body is malloc'd and taken (freed on every path); NULL is out of memory. */
enum MHD_Result http_reply_owned(struct MHD_Connection *conn, unsigned code,
				 char *body, size_t len, const char *type);
/* A static or otherwise lasting text, not copied. */
enum MHD_Result http_reply_static(struct MHD_Connection *conn, unsigned code,
				  const char *text, const char *type);
/* j is taken (decref'd). Compact, with a final newline. */
enum MHD_Result http_reply_json(struct MHD_Connection *conn, unsigned code, json_t *j);
/* {"error": "..."} */
enum MHD_Result http_reply_error(struct MHD_Connection *conn, unsigned code,
				 const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* A text/plain response with no-store, for a server's shared replies. */
struct MHD_Response *http_text_response(const char *text);

/* The handler returns MHD_YES without a response after this; once
 * http_resume is called it is called again for the same request, with the
 * same *slot. Only with opts.suspend. */
void http_suspend(struct http_request *r);
void http_resume(struct MHD_Connection *conn);

/* A client as the per-source caps count it (connections here, token
 * buckets in limit.c): family, then the IPv4 address (also when written
 * ::ffff:a.b.c.d) or the IPv6 /64 (a host may hold a whole /64); zeros for
 * NULL or another family. */
#define HTTP_SOURCE_KEY 17
void http_source_key(const struct sockaddr *sa, uint8_t key[HTTP_SOURCE_KEY]);

/* The address of "IP:PORT" / "[IP6]:PORT" into sa; 0 or -EINVAL. */
int http_parse_listen(const char *addr, struct sockaddr_storage *sa, socklen_t *len);

#endif
