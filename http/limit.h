/*
 * http/limit.h — per-source token buckets, shared by meshd and the
 * looking glass: `rate` requests a second, up to `burst` at once, per
 * client address (an IPv6 client by its /64), in a fixed table whose
 * memory does not grow with the number of sources.
 */
#ifndef HEALTHD_HTTP_LIMIT_H
#define HEALTHD_HTTP_LIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct limiter;
struct limiter *limiter_new(double rate, double burst, size_t slots);
void limiter_free(struct limiter *l);
/* true: allowed (a token taken); false: *retry_s until the next one. */
bool limiter_take(struct limiter *l, const struct sockaddr_storage *peer, uint64_t now_ms,
		  unsigned *retry_s);

#endif
