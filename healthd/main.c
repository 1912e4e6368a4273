/*
 * healthd — keeps a node's anycast announcements honest.
 *
 *   healthd [-d] [-c FILE]     run in the foreground
 *   healthd -t [-v] [-c FILE]  check the config (and print it normalised)
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "healthd/healthd.h"

#define DEFAULT_CONFIG "/etc/healthd/healthd.yaml"

static void usage(FILE *f)
{
	fprintf(f, "usage: healthd [-d] [-c FILE]\n"
		   "       healthd -t [-v] [-c FILE]\n"
		   "  -c FILE  configuration (default " DEFAULT_CONFIG ")\n"
		   "  -t       check the configuration and exit (0 valid, 1 not)\n"
		   "  -v       with -t: print the normalised configuration\n"
		   "  -d       debug logging\n"
		   "  -V       print the version\n");
}

static int test_config(const char *path, bool print)
{
	char err[1024];
	struct config *cfg = cfg_load(path, err, sizeof(err));

	if (!cfg) {
		fprintf(stderr, "healthd: %s\n", err);
		return 1;
	}
	for (size_t i = 0; i < cfg->n_warnings; i++)
		fprintf(stderr, "healthd: warning: %s\n", cfg->warnings[i]);
	if (print)
		cfg_print(stdout, cfg);
	else
		fprintf(stderr, "healthd: %s: configuration OK\n", path);
	cfg_free(cfg);
	return 0;
}

static void close_walk(uv_handle_t *h, void *arg)
{
	(void)arg;
	if (!uv_is_closing(h))
		fprintf(stderr, "healthd: handle type %s still open at exit\n",
			uv_handle_type_name(h->type));
}

int main(int argc, char **argv)
{
	const char *path = DEFAULT_CONFIG;
	bool test = false, verbose = false, debug = false;
	char err[1024];
	int opt;

	while ((opt = getopt(argc, argv, "c:tvdVh")) != -1) {
		switch (opt) {
		case 'c': path = optarg; break;
		case 't': test = true; break;
		case 'v': verbose = true; break;
		case 'd': debug = true; break;
		case 'V': printf("healthd %s\n", HEALTHD_VERSION); return 0;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc) {
		usage(stderr);
		return 2;
	}
	if (test)
		return test_config(path, verbose);

	/* libuv writes with write(2): a peer that went away must not kill us. */
	signal(SIGPIPE, SIG_IGN);
	hd_log_init(debug, getenv("JOURNAL_STREAM") && getenv("INVOCATION_ID"));
	struct config *cfg = cfg_load(path, err, sizeof(err));
	if (!cfg) {
		log_err("%s", err);
		return 1;
	}
	for (size_t i = 0; i < cfg->n_warnings; i++)
		log_warn("%s", cfg->warnings[i]);
	/* Before hd_new, which unlinks the control socket and writes the
	 * include file: a second healthd must leave the first one's alone. */
	if (hd_lock_start(cfg, err, sizeof(err)) < 0) {
		log_err("%s", err);
		cfg_free(cfg);
		return 1;
	}

	uv_loop_t loop;
	struct hd *hd;

	uv_loop_init(&loop);
	if (hd_new(&loop, cfg, &hd) < 0) {
		uv_run(&loop, UV_RUN_DEFAULT);
		uv_loop_close(&loop);
		return 1;
	}
	log_notice("healthd %s started: node %s, %zu services, BIRD at %s", HEALTHD_VERSION,
		   cfg->node, cfg->n_services, cfg->bird.socket);
	uv_run(&loop, UV_RUN_DEFAULT);
	hd_free(hd);
	int rc = uv_loop_close(&loop);
	if (rc != 0) {
		uv_walk(&loop, close_walk, NULL);
		log_err("loop not closed cleanly: %s", uv_strerror(rc));
		return 1;
	}
	log_notice("stopped");
	return 0;
}
