/*
 * fuzz_bird_reply — the control-socket reply parser on arbitrary bytes,
 * fed in chunks whose sizes the input chooses, and every reply handed out
 * through bird_parse_protocols. Feeding the same bytes in one piece must
 * give the same replies: where the reads split the stream cannot matter.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bird-glue/bird.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct digest {
	unsigned long long sum;   /* of codes, lines and text bytes */
	size_t replies;
};

static void on_reply(void *arg, const struct bird_reply *r)
{
	struct digest *d = arg;
	struct bird_proto rows[8];
	size_t total = 0;
	int n;

	if (r->n_lines == 0 || r->text != r->lines[r->n_lines - 1].text ||
	    r->code != r->lines[r->n_lines - 1].code || r->code < 0 || r->code > 9999)
		abort();
	for (size_t i = 0; i < r->n_lines; i++) {
		size_t l = strlen(r->lines[i].text);

		if (l > BIRD_LINE_MAX)
			abort();
		d->sum = d->sum * 31 + (unsigned)r->lines[i].code + l;
	}
	d->replies++;
	n = bird_parse_protocols(r, rows, sizeof(rows) / sizeof(rows[0]), &total);
	if (n > 8 || (n >= 0 && (size_t)n > total))
		abort();
	for (int i = 0; i < n; i++)
		if (strnlen(rows[i].name, sizeof(rows[i].name)) == sizeof(rows[i].name) ||
		    strnlen(rows[i].info, sizeof(rows[i].info)) == sizeof(rows[i].info) ||
		    strnlen(rows[i].proto, sizeof(rows[i].proto)) == sizeof(rows[i].proto))
			abort();
}

static int feed_all(const uint8_t *data, size_t size, const uint8_t *splits,
		    size_t n_splits, struct digest *d)
{
	struct bird_parser *p = bird_parser_new();
	size_t off = 0, k = 0;
	int rc = 0;

	if (!p)
		abort();
	while (off < size && rc == 0) {
		size_t chunk = n_splits ? (size_t)splits[k++ % n_splits] + 1 : size;

		if (chunk > size - off)
			chunk = size - off;
		rc = bird_parser_feed(p, (const char *)data + off, chunk, on_reply, d);
		off += chunk;
	}
	if (rc < 0 && (rc != -EPROTO || !bird_parser_error(p)[0]))
		abort();
	/* a broken stream stays broken until reset */
	if (rc == -EPROTO && bird_parser_feed(p, "0000 \n", 6, on_reply, d) != -EPROTO)
		abort();
	bird_parser_reset(p);
	if (bird_parser_feed(p, "0001 BIRD 2.0.12 ready.\n", 24, on_reply, d) != 0)
		abort();
	bird_parser_free(p);
	return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct digest one = { 0 }, split = { 0 };
	size_t n_splits = size ? data[0] % 8 : 0;
	int rc1, rc2;

	if (size < 1 + n_splits)
		return 0;
	rc1 = feed_all(data + 1 + n_splits, size - 1 - n_splits, NULL, 0, &one);
	rc2 = feed_all(data + 1 + n_splits, size - 1 - n_splits, data + 1, n_splits, &split);
	if (rc1 != rc2 || one.sum != split.sum || one.replies != split.replies)
		abort();
	return 0;
}
