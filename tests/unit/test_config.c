/*
 * Tests of config/: the loader's errors (exact FILE:LINE:COL: KEY), its
 * defaults and warnings, the value parsers, and the printer against golden
 * files. Run from the repository root.
 *
 * Golden files: tests/unit/golden/config/NAME.yaml is loaded and printed;
 * the output must equal NAME.out. After an intended change of the printed
 * form, regenerate them with
 *     HEALTHD_UPDATE_GOLDEN=1 build/std/tests/test_config
 * and review the diff.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config/config.h"

#define GOLDEN_DIR "tests/unit/golden/config"
#define EXAMPLES_DIR "config/examples"

TestSuite(config, .timeout = 20);

static struct config *load(const char *yaml)
{
	char err[512];
	struct config *cfg = cfg_load_string("t.yaml", yaml, strlen(yaml), err,
					     sizeof(err));

	cr_assert_not_null(cfg, "unexpected error: %s", err);
	return cfg;
}

static char *print_str(const struct config *cfg)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	cr_assert_not_null(f);
	cfg_print(f, cfg);
	fclose(f);
	return buf;
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf;
	long n;

	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = calloc(1, (size_t)n + 1);
	cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	return buf;
}

static bool has_suffix(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n > m && strcmp(s + n - m, suffix) == 0;
}

/* print → load → print gives the same text, and the same checks. */
static void assert_round_trip(const struct config *cfg, const char *what)
{
	char err[512];
	char *a = print_str(cfg);
	struct config *again = cfg_load_string("printed", a, strlen(a), err, sizeof(err));

	cr_assert_not_null(again, "%s: printed config does not load: %s\n%s", what, err, a);
	char *b = print_str(again);
	cr_assert_str_eq(a, b, "%s: print is not stable", what);
	cr_assert_eq(again->n_services, cfg->n_services);
	for (size_t i = 0; i < cfg->n_services; i++) {
		cr_assert_eq(again->services[i].n_checks, cfg->services[i].n_checks);
		for (size_t j = 0; j < cfg->services[i].n_checks; j++)
			cr_assert(cfg_check_equal(&cfg->services[i].checks[j],
						  &again->services[i].checks[j]),
				  "%s: check %zu.%zu differs after a round trip", what, i, j);
	}
	free(a);
	free(b);
	cfg_free(again);
}

static int each_yaml(const char *dir, void (*fn)(const char *path))
{
	struct dirent **ents;
	int n = scandir(dir, &ents, NULL, alphasort), count = 0;

	cr_assert_geq(n, 0, "%s: %s (run from the repository root)", dir, strerror(errno));
	for (int i = 0; i < n; i++) {
		char path[512];

		if (has_suffix(ents[i]->d_name, ".yaml")) {
			snprintf(path, sizeof(path), "%s/%s", dir, ents[i]->d_name);
			fn(path);
			count++;
		}
		free(ents[i]);
	}
	free(ents);
	return count;
}

static void golden_one(const char *path)
{
	char err[512], out_path[512];
	struct config *cfg = cfg_load(path, err, sizeof(err));

	cr_assert_not_null(cfg, "%s", err);
	snprintf(out_path, sizeof(out_path), "%.*s.out", (int)(strlen(path) - 5), path);
	char *got = print_str(cfg);
	const char *update = getenv("HEALTHD_UPDATE_GOLDEN");
	if (update && strcmp(update, "1") == 0) {
		FILE *f = fopen(out_path, "w");

		cr_assert_not_null(f, "%s: %s", out_path, strerror(errno));
		fputs(got, f);
		fclose(f);
	}
	char *want = slurp(out_path);
	cr_assert_not_null(want, "%s missing (HEALTHD_UPDATE_GOLDEN=1 writes it)", out_path);
	cr_assert_str_eq(got, want, "%s: printed config differs from %s:\n%s", path,
			 out_path, got);
	assert_round_trip(cfg, path);
	free(got);
	free(want);
	cfg_free(cfg);
}

Test(config, golden_files)
{
	cr_assert_geq(each_yaml(GOLDEN_DIR, golden_one), 3);
}

static void example_one(const char *path)
{
	char err[512];
	struct config *cfg = cfg_load(path, err, sizeof(err));

	cr_assert_not_null(cfg, "shipped example does not load: %s", err);
	cr_assert_geq(cfg->n_services, 1);
	assert_round_trip(cfg, path);
	cfg_free(cfg);
}

Test(config, shipped_examples_load)
{
	cr_assert_geq(each_yaml(EXAMPLES_DIR, example_one), 1);
}

Test(config, example_is_the_documented_node)
{
	char err[512];
	struct config *cfg = cfg_load(EXAMPLES_DIR "/healthd.yaml", err, sizeof(err));

	cr_assert_not_null(cfg, "%s", err);
	cr_assert_str_eq(cfg->node, "lax1");
	const struct cfg_service *web = cfg_service_find(cfg, "web");
	cr_assert_not_null(web);
	cr_assert_null(cfg_service_find(cfg, "mail"));
	cr_assert_eq(web->n_prefixes, 2);
	cr_assert_str_eq(web->prefixes[0].text, "192.30.120.10/32");
	cr_assert_str_eq(web->prefixes[1].text, "2620:71:4000::10/128");
	cr_assert_eq(web->prefixes[1].family, AF_INET6);
	cr_assert_eq(web->n_checks, 3);
	cr_assert_str_eq(web->checks[1].connect_to, "127.0.0.1:443");
	cr_assert_str_eq(web->checks[2].type, "tcp");
	cr_assert_eq(web->checks[2].port, 443);
	cr_assert_eq(web->checks[2].on_fail, CFG_ON_FAIL_DEGRADE);
	cr_assert_eq(cfg->n_warnings, 2, "a /32 and a /128 each draw a warning");
	cfg_free(cfg);
}
