/*
 * fuzz_import — healthctl import on arbitrary files: the bytes as an
 * anycast-healthchecker INI file, then as ExaBGP healthcheck's --config
 * file. Whatever they hold, the importer either refuses them with a
 * message or prints YAML that libyaml reads: a value or comment may never
 * break out of its line (cfg_load may still refuse a key this healthd
 * lacks, but never for the YAML itself).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config/config.h"
#include "import/import.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void yaml_must_read(const char *out, size_t len)
{
	char err[1024];
	struct config *c = cfg_load_string("import", out, len, err, sizeof(err));

	if (c)
		cfg_free(c);
	else if (strstr(err, ": yaml: "))
		abort(); /* the importer printed text YAML cannot read */
}

static void run(int (*imp)(FILE *, char **, int, char *, size_t), char **args, int n)
{
	char *out = NULL, err[1024];
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);

	if (!f)
		return;
	int rc = imp(f, args, n, err, sizeof(err));

	fclose(f);
	if (rc == 0)
		yaml_must_read(out, len);
	else if (!err[0])
		abort(); /* a refusal says why */
	free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[64], *ahc[1] = { path }, *exa[2] = { "--config", path };
	int fd = memfd_create("import", MFD_CLOEXEC);

	if (fd < 0)
		return 0;
	if (write(fd, data, size) == (ssize_t)size) {
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		run(imp_anycast_healthchecker, ahc, 1);
		run(imp_exabgp_healthcheck, exa, 2);
	}
	close(fd);
	return 0;
}
