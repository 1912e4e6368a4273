/*
 * healthd — keeps a node's anycast announcements honest.
 *
 *   healthd [-d] [-c FILE]     run in the foreground
 *   healthd -t [-v] [-c FILE]  check the config (and print it normalised)
 *   healthd --withdraw-all [-c FILE]  disable every protocol healthd owns
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "bird-glue/bird.h"
#include "healthd/healthd.h"

#define DEFAULT_CONFIG "/etc/healthd/healthd.yaml"

static void usage(FILE *f)
{
	fprintf(f, "usage: healthd [-d] [-c FILE]\n"
		   "       healthd -t [-v] [-c FILE]\n"
		   "       healthd --withdraw-all [-c FILE]\n"
		   "  -c FILE  configuration (default " DEFAULT_CONFIG ")\n"
		   "  -t       check the configuration and exit (0 valid, 1 not)\n"
		   "  -v       with -t: print the normalised configuration\n"
		   "  -d       debug logging\n"
		   "  -V       print the version\n"
		   "  --withdraw-all  disable every healthd_* protocol, in BIRD and in the\n"
		   "           include file, and exit (0 done, 1 not everything done)\n");
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

static void withdraw_log(int level, const char *msg)
{
	hd_log(level, NULL, NULL, "withdraw-all: %s", msg);
}

/* When healthd is gone for good: nothing of ours stays announced. */
static int withdraw_all(const char *path)
{
	char err[1024];
	struct config *cfg = cfg_load(path, err, sizeof(err));
	int rc;

	if (!cfg) {
		log_err("%s", err);
		return 1;
	}
	/* A running healthd would announce again what this withdraws. */
	if (hd_lock_start(cfg, err, sizeof(err)) < 0) {
		log_err("withdraw-all: %s (to withdraw while it runs: healthctl drain --all)", err);
		cfg_free(cfg);
		return 1;
	}
	rc = bird_withdraw_all(cfg, 2 * cfg->bird.timeout_ms + 3000, withdraw_log, err,
			       sizeof(err));
	if (rc < 0)
		log_err("withdraw-all: %s", err);
	else
		log_notice("withdraw-all: done: %s", err);
	cfg_free(cfg);
	return rc < 0 ? 1 : 0;
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

	static const struct option longopts[] = {
		{ "withdraw-all", no_argument, NULL, 'W' },
		{ NULL, 0, NULL, 0 },
	};
	bool withdraw = false;

	while ((opt = getopt_long(argc, argv, "c:tvdVh", longopts, NULL)) != -1) {
		switch (opt) {
		case 'W': withdraw = true; break;
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
	if (withdraw) {
		signal(SIGPIPE, SIG_IGN);
		hd_log_init(debug, getenv("JOURNAL_STREAM") && getenv("INVOCATION_ID"));
		return withdraw_all(path);
	}

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
