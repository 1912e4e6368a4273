/*
 * meshd/admin.h — the admin socket: a unix stream socket on meshd's loop
 * for `meshctl token` and `meshctl node` (spec: meshd-api.md, "Admin
 * socket").
 *
 *   admin.c   listener, connections, the five ops
 *
 * One JSON object on one line per connection, one JSON line back, then
 * the connection is closed:
 *   {"op":"token_create","node":"ord1","ttl":3600[,"replace":true]}
 *                      -> {"ok":true,"id":3,"node":"ord1","token":"<64 hex>","expires":"…Z"}
 *                         (an enrolled node only with "replace": true)
 *   {"op":"token_revoke","id":3} -> {"ok":true,"id":3,"node":"ord1"}
 *   {"op":"token_list"}   -> {"ok":true,"tokens":[…]}   (mstate_token_list)
 *   {"op":"node_list"}    -> {"ok":true,"nodes":[…]}    (mstate_node_list)
 *   {"op":"node_disable","node":"ord1"} -> {"ok":true}
 *   anything wrong        -> {"ok":false,"error":"<why>"}
 *
 * Who may talk: the socket is created mode 0600 (under a umask, so there
 * is no moment when it is wider), and a peer whose SO_PEERCRED uid is
 * neither 0 nor meshd's own is answered with an error and closed. How
 * hostile clients are bounded: a request line is at most ADMIN_LINE_MAX
 * bytes; a connection gets deadline_ms for its request and again for
 * taking its reply; at most ADMIN_CLIENTS_MAX connections at once: one
 * more closes the oldest that has not sent a whole request yet (logged),
 * so idle clients cannot lock meshctl out. A token whose reply could not
 * be written is logged with its number, to be revoked.
 */
#ifndef HEALTHD_MESHD_ADMIN_H
#define HEALTHD_MESHD_ADMIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "mesh/admin_client.h"
#include "meshd/state.h"

#define ADMIN_SOCKET_DEFAULT MESH_ADMIN_SOCKET     /* meshctl's default */
#define ADMIN_LINE_MAX 4096             /* a request line, its newline included */
#define ADMIN_DEADLINE_MS 2000
#define ADMIN_CLIENTS_MAX 16
#define ADMIN_TTL_DEFAULT 3600          /* token_create without "ttl" */

struct admin;

/* meshd's side; every hook may be NULL. */
struct admin_hooks {
	void *ctx;
	/* Does the current inventory have this node? false refuses
	 * token_create with why (default "NODE: no such node in the
	 * inventory"). NULL: every node is known. */
	bool (*node_known)(void *ctx, const char *node, char *why, size_t whylen);
	/* After a change of the state that meshd serves (node_disable). */
	void (*changed)(void *ctx);
	/* Unix seconds; NULL: time(NULL). */
	int64_t (*now)(void *ctx);
	/* A line for meshd's log: a refused peer, a dropped connection. */
	void (*log)(void *ctx, const char *line);
	unsigned deadline_ms;           /* 0: ADMIN_DEADLINE_MS */
};

/*
 * Listen on path. A socket file left there is replaced only when nobody
 * listens on it; anything else at path is refused. 0, or a negative errno
 * (libuv's for bind/listen) with err naming the path.
 */
int admin_start(uv_loop_t *loop, const char *path, struct mstate *st,
		const struct admin_hooks *hooks, struct admin **out, char *err, size_t errlen);
/* Close the listener and every connection and remove the socket file;
 * memory goes in the close callbacks (run the loop). */
void admin_close(struct admin *a);

#endif
