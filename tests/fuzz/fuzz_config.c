/*
 * fuzz_config — cfg_load_string on arbitrary bytes. An accepted config is
 * printed, and the printed form must load again and print the same: the
 * normalised config (healthd -t -v) is stable.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *print(const struct config *cfg, size_t *len)
{
	char *buf = NULL;
	FILE *f = open_memstream(&buf, len);

	if (!f)
		abort();
	cfg_print(f, cfg);
	fclose(f);
	return buf;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[1024], err2[1024];
	struct config *cfg, *again;
	char *text, *text2;
	size_t len, len2;

	cfg = cfg_load_string("fuzz.yaml", (const char *)data, size, err, sizeof(err));
	if (!cfg) {
		/* every refusal says what and where */
		if (!err[0])
			abort();
		return 0;
	}
	text = print(cfg, &len);
	again = cfg_load_string("printed.yaml", text, len, err2, sizeof(err2));
	if (!again) {
		fprintf(stderr, "the printed config does not load: %s\n---\n%s---\n", err2, text);
		abort();
	}
	text2 = print(again, &len2);
	if (len != len2 || memcmp(text, text2, len)) {
		fprintf(stderr, "printing is not stable:\n---\n%s---\n%s---\n", text, text2);
		abort();
	}
	free(text);
	free(text2);
	cfg_free(again);
	cfg_free(cfg);
	return 0;
}
