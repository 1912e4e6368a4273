/*
 * meshlg — the looking glass of a mesh node (meshlg(8)).
 *
 *   meshlg [-c FILE] [-d]     run (FILE: /etc/healthd/meshlg.yaml)
 *   meshlg -t [-c FILE]       check the file, print what it would serve, exit
 *
 * SIGTERM and SIGINT stop. It runs no shell and opens BIRD's control
 * socket for itself; healthd's socket is never touched.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <systemd/sd-daemon.h>

#include "healthd/healthd.h"
#include "lg/lg.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: meshlg [-c FILE] [-d]\n"
		   "       meshlg -t [-c FILE]\n"
		   "FILE defaults to " LG_CONF_DEFAULT ".\n");
}

static uv_signal_t sig_term, sig_int;

static void on_stop(uv_signal_t *s, int signum)
{
	struct lg *lg = s->data;

	log_notice("signal %d: stopping", signum);
	sd_notify(0, "STOPPING=1");
	lg_stop(lg);
	uv_close((uv_handle_t *)&sig_term, NULL);
	uv_close((uv_handle_t *)&sig_int, NULL);
}

static void print_conf(const struct lg_conf *c)
{
	printf("meshlg: %s: ok; node %s, BIRD %s\n", c->path, c->node, c->bird_socket);
	for (size_t i = 0; i < c->n_listen; i++)
		printf("  listen %s\n", c->listen[i]);
	for (size_t i = 0; i < c->allow.n; i++)
		printf("  allow  %s\n", c->allow.items[i].p.text);
	for (size_t i = 0; i < c->n_services; i++) {
		printf("  fleet  %s:", c->services[i].name);
		for (size_t j = 0; j < c->services[i].prefixes.n; j++)
			printf(" %s", c->services[i].prefixes.items[j].p.text);
		printf("\n");
	}
	printf("  nodes  %zu; limits: timeout %llu ms, cache %llu ms, %llu/s burst %llu per source, "
	       "%llu waiting at most, replies up to %llu bytes\n", c->n_nodes,
	       (unsigned long long)c->timeout_ms, (unsigned long long)c->cache_ms,
	       (unsigned long long)c->rate, (unsigned long long)c->burst,
	       (unsigned long long)c->concurrency, (unsigned long long)c->reply_max);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "test", no_argument, NULL, 't' },
		{ "debug", no_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *path = LG_CONF_DEFAULT;
	bool test = false, debug = false;
	struct lg_conf *conf;
	struct lg *lg = NULL;
	uv_loop_t *loop;
	char err[4096];
	int c;

	while ((c = getopt_long(argc, argv, "c:tdh", longopts, NULL)) != -1) {
		switch (c) {
		case 'c': path = optarg; break;
		case 't': test = true; break;
		case 'd': debug = true; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	hd_log_init(debug, true);
	signal(SIGPIPE, SIG_IGN);
	if (!(conf = lg_conf_load(path, err, sizeof(err)))) {
		fprintf(stderr, "meshlg: %s\n", err);
		return 1;
	}
	if (test) {
		print_conf(conf);
		lg_conf_free(conf);
		return 0;
	}
	loop = uv_default_loop();
	if (lg_start(loop, conf, &lg, err, sizeof(err)) < 0) {
		fprintf(stderr, "meshlg: %s\n", err);
		lg_conf_free(conf);
		return 1;
	}
	uv_signal_init(loop, &sig_term);
	uv_signal_init(loop, &sig_int);
	sig_term.data = sig_int.data = lg;
	uv_signal_start(&sig_term, on_stop, SIGTERM);
	uv_signal_start(&sig_int, on_stop, SIGINT);
	log_notice("ready: node %s, BIRD %s", conf->node, conf->bird_socket);
	sd_notify(0, "READY=1");
	uv_run(loop, UV_RUN_DEFAULT);
	lg_free(lg);
	uv_run(loop, UV_RUN_NOWAIT);
	uv_loop_close(loop);
	lg_conf_free(conf);
	return 0;
}
