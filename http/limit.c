/*
 * http/limit.c — per-source token buckets: `rate` requests a second, up to `burst` at
 * once, per client address (an IPv6 client by its /64, so one host cannot
 * walk its own prefix to get fresh buckets). A fixed table: a source that
 * finds its probe window full takes the slot idle the longest, so the
 * memory is bounded whatever the number of sources.
 *
 * The slot of a source is chosen by a keyed hash (HMAC-SHA256 with a key
 * drawn at start), so nobody can pick addresses that crowd one probe
 * window and evict each other into fresh buckets. An evicted source that
 * comes back starts with a full bucket: the cost of the bound, paid only
 * when more sources than slots are active at once, as with more
 * addresses than a per-source limit can tell apart.
 */
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <math.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "http/limit.h"
#include "http/server.h"

#define PROBE 8

struct slot {
	uint8_t key[HTTP_SOURCE_KEY]; /* http_source_key() */
	bool used;
	double tokens;
	uint64_t last_ms;
};

struct limiter {
	double rate, burst;
	size_t n;                    /* a power of two */
	struct slot *slots;
	uint8_t key[16];             /* the hash's, drawn at start */
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
	if (gnutls_rnd(GNUTLS_RND_NONCE, l->key, sizeof(l->key)) < 0) {
		free(l->slots);
		free(l);
		return NULL;
	}
	return l;
}

void limiter_free(struct limiter *l)
{
	if (!l)
		return;
	free(l->slots);
	free(l);
}

static size_t hash(const struct limiter *l, const uint8_t *k)
{
	uint8_t d[32];
	uint64_t h;

	if (gnutls_hmac_fast(GNUTLS_MAC_SHA256, l->key, sizeof(l->key), k, HTTP_SOURCE_KEY, d) < 0)
		memset(d, 0, sizeof(d));   /* cannot happen with a built-in MAC */
	memcpy(&h, d, sizeof(h));
	return (size_t)h;
}

bool limiter_take(struct limiter *l, const struct sockaddr_storage *peer, uint64_t now_ms,
		  unsigned *retry_s)
{
	uint8_t key[HTTP_SOURCE_KEY];
	struct slot *s = NULL, *victim = NULL;
	size_t h;

	http_source_key((const struct sockaddr *)peer, key);
	h = hash(l, key);
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
		s->tokens = l->burst;
		memcpy(s->key, key, sizeof(key));
		s->used = true;
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
