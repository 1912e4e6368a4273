/*
 * mesh/admin_client.h — meshctl's side of meshd's admin socket (the
 * protocol is in meshd/admin.h): one request, one reply line, blocking
 * with a deadline; and the text tables of token_list and node_list.
 *
 *   admin_client.c   the call, the ttl parser, the tables
 */
#ifndef HEALTHD_MESH_ADMIN_CLIENT_H
#define HEALTHD_MESH_ADMIN_CLIENT_H

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>

#define MESH_ADMIN_SOCKET "/run/meshd/admin.sock"
#define MESH_ADMIN_SOCKET_ENV "MESHD_ADMIN_SOCKET"
#define MESH_ADMIN_TIMEOUT_MS 10000
#define MESH_ADMIN_REPLY_MAX (64u << 20)

/* opt when given, else $MESHD_ADMIN_SOCKET when set and not empty, else
 * MESH_ADMIN_SOCKET. */
const char *mesh_admin_socket(const char *opt);

/*
 * req as one line to the socket at path, and the reply line parsed: the
 * reply object (the caller decrefs it), {"ok":false,...} included. NULL
 * with err when there is none: "PATH: cannot connect: No such file or
 * directory (is meshd running?)", "PATH: no reply within 10 s",
 * "PATH: bad reply: ...". The whole exchange takes at most timeout_ms.
 */
json_t *mesh_admin_call(const char *path, json_t *req, unsigned timeout_ms, char *err,
			size_t errlen);

/* "90", "90s", "15m", "1h", "7d": seconds into *secs. -EINVAL with err
 * "--ttl: 'X' is not a duration (90s, 15m, 1h, 7d)" otherwise (no unit
 * other than these, nothing after it); -ERANGE outside the ttl meshd
 * takes, MSTATE_TTL_MIN .. MSTATE_TTL_MAX, in meshd's words: "ttl 59 s is
 * outside 60 s .. 30 days". */
int mesh_admin_parse_ttl(const char *s, int64_t *secs, char *err, size_t errlen);

/* The tables of `meshctl token list` (ID NODE STATE CREATED EXPIRES
 * REDEEMED BY) and `meshctl node list`, from the arrays the replies hold;
 * a missing or null value is "-". */
void mesh_admin_tokens_text(FILE *out, json_t *tokens);
void mesh_admin_nodes_text(FILE *out, json_t *nodes);

#endif
