/*
 * http/limit.c — per-source token buckets: `rate` requests a second, up to `burst` at
 * once, per client address (an IPv6 client by its /64, so one host cannot
 * walk its own prefix to get fresh buckets). A fixed table: a source that
 * finds its probe window full takes the slot idle the longest, so the
 * memory is bounded whatever the number of sources, and an address that
 * is evicted comes back with a full bucket (the cost of the bound).
 */
#include <math.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "http/limit.h"

#define PROBE 8

struct slot {
	uint8_t key[17];             /* family, then 16 bytes */
	bool used;
	double tokens;
	uint64_t last_ms;
};

struct limiter {
	double rate, burst;
	size_t n;                    /* a power of two */
	struct slot *slots;
};

struct limiter *limiter_new(double rate, double burst, size_t slots)
{
	struct limiter *l = calloc(1, sizeof(*l));
	size_t n = 1;

	while (n < slots)
		n <<= 1;
	if (!l || !(l->slots = calloc(n, sizeof(*l->slots)))) {
		free(l);
		return NULL;
	}
	l->rate = rate;
	l->burst = burst;
	l->n = n;
	return l;
}

void limiter_free(struct limiter *l)
{
	if (!l)
		return;
	free(l->slots);
	free(l);
}

static void key_of(const struct sockaddr_storage *ss, uint8_t key[17])
{
	memset(key, 0, 17);
	key[0] = (uint8_t)ss->ss_family;
	if (ss->ss_family == AF_INET) {
		memcpy(key + 1, &((const struct sockaddr_in *)ss)->sin_addr, 4);
	} else if (ss->ss_family == AF_INET6) {
		const uint8_t *a = ((const struct sockaddr_in6 *)ss)->sin6_addr.s6_addr;
		static const uint8_t mapped[12] = { [10] = 0xff, [11] = 0xff };

		if (!memcmp(a, mapped, 12)) {   /* ::ffff:a.b.c.d is a.b.c.d */
			key[0] = AF_INET;
			memcpy(key + 1, a + 12, 4);
		} else {
			memcpy(key + 1, a, 8);      /* the /64 */
		}
	}
}

static size_t hash(const uint8_t *k)
{
	uint64_t h = 1469598103934665603ull;   /* FNV-1a */

	for (int i = 0; i < 17; i++)
		h = (h ^ k[i]) * 1099511628211ull;
	return (size_t)h;
}

bool limiter_take(struct limiter *l, const struct sockaddr_storage *peer, uint64_t now_ms,
		  unsigned *retry_s)
{
	uint8_t key[17];
	struct slot *s = NULL, *victim = NULL;
	size_t h;

	key_of(peer, key);
	h = hash(key);
	for (size_t i = 0; i < PROBE; i++) {
		struct slot *c = &l->slots[(h + i) & (l->n - 1)];

		if (c->used && !memcmp(c->key, key, sizeof(key))) {
			s = c;
			break;
		}
		if (!victim || !c->used || (victim->used && c->last_ms < victim->last_ms))
			if (!victim || victim->used)
				victim = c;
	}
	if (!s) {
		s = victim;
		memcpy(s->key, key, sizeof(key));
		s->used = true;
		s->tokens = l->burst;
		s->last_ms = now_ms;
	}
	if (now_ms > s->last_ms) {
		s->tokens += (double)(now_ms - s->last_ms) * l->rate / 1000.0;
		if (s->tokens > l->burst)
			s->tokens = l->burst;
	}
	s->last_ms = now_ms;
	if (s->tokens >= 1.0) {
		s->tokens -= 1.0;
		return true;
	}
	/* whole seconds, rounded up: 0 < 1 - tokens, so at least 1 */
	*retry_s = (unsigned)ceil((1.0 - s->tokens) / l->rate);
	return false;
}
