/*
 * meshd — the mesh's service-discovery and enrolment API (meshd(8)).
 *
 *   meshd [-c FILE] [-d]     run (FILE: /etc/healthd/meshd.yaml)
 *   meshd -t [-c FILE]       check meshd.yaml, the inventory, the state and
 *                            the certificates, print the TLS pin, exit
 *
 * SIGHUP reloads the inventory (a bad one keeps the old running, and says
 * why); SIGTERM and SIGINT stop.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "config/load.h"
#include "healthd/healthd.h"
#include "meshd/admin.h"
#include "meshd/meshd.h"
#include "meshd/state.h"

#define LIMITER_SLOTS 65536

static void usage(FILE *f)
{
	fprintf(f, "usage: meshd [-c FILE] [-d]\n"
		   "       meshd -t [-c FILE]\n"
		   "FILE defaults to " MESHD_CONF_DEFAULT ".\n");
}

/* ---- admin socket hooks ---- */

static bool node_known(void *ctx, const char *node, char *why, size_t whylen)
{
	struct meshd *d = ctx;

	if (inv_node(d->inv, node))
		return true;
	snprintf(why, whylen, "%s: no such node in the inventory %s", node, d->conf->inventory);
	return false;
}

static void admin_log(void *ctx, const char *line)
{
	(void)ctx;
	log_warn("admin: %s", line);
}

static void state_changed(void *ctx)
{
	struct meshd *d = ctx;
	char err[1024];

	/* a disabled node leaves the overlay: the same inventory, laid over
	 * afresh (not the file on disk, which may hold edits not reloaded) */
	struct inv *v = inv_rebuild(d->inv, d->st, err, sizeof(err));

	if (!v) {
		log_err("after an admin change: %s (the old view stays until it can be rebuilt)", err);
		return;
	}
	inv_free(d->inv);
	d->inv = v;
}

/* ---- listeners ---- */

struct pem {
	char *cert, *key;
};

static void pem_free(struct pem *p)
{
	free(p->cert);
	if (p->key) {
		explicit_bzero(p->key, strlen(p->key));
		free(p->key);
	}
	p->cert = p->key = NULL;
}

static int read_pem(const struct meshd_listen *l, struct pem *p, char *err, size_t errlen)
{
	struct stat st;
	size_t len;

	if (!l->certificate)
		return 0;
	if (cfg_read_file(l->certificate, &p->cert, &len, err, errlen) ||
	    cfg_read_file(l->key, &p->key, &len, err, errlen))
		return -1;
	if (stat(l->key, &st) == 0 && (st.st_mode & 0007)) {
		snprintf(err, errlen, "%s: the TLS key is readable by others (mode %04o): chmod o-rwx it",
			 l->key, (unsigned)(st.st_mode & 07777));
		return -1;
	}
	if (stat(l->key, &st) == 0 && (st.st_mode & 0070))
		log_warn("%s: the TLS key is readable by its group (mode %04o)", l->key,
			 (unsigned)(st.st_mode & 07777));
	return 0;
}

/* A TLS listener's certificate and key, as its start will take them; the
 * error names the listener and the file. */
static int check_tls(struct meshd *d, const struct meshd_listen *l, const struct pem *p,
		     char *err, size_t errlen)
{
	char pin[sizeof(d->pin)], why[512];

	if (meshd_tls_pin(p->cert, pin, sizeof(pin), why, sizeof(why)) < 0) {
		snprintf(err, errlen, "%s: listen %s: %s: %s", d->conf->path, l->address,
			 l->certificate, why);
		return -1;
	}
	if (meshd_tls_pair(p->cert, p->key, why, sizeof(why)) < 0) {
		snprintf(err, errlen, "%s: listen %s: key %s: %s", d->conf->path, l->address,
			 l->key, why);
		return -1;
	}
	if (!d->pin[0])
		memcpy(d->pin, pin, sizeof(pin));   /* the first listener's is printed */
	return 0;
}

/* Every listener's settings, before anything is bound: plain HTTP only on
 * loopback or a tunnel address; every certificate and key readable, PEM
 * and a pair. */
static int check_listeners(struct meshd *d, char *err, size_t errlen)
{
	for (size_t i = 0; i < d->conf->n_listen; i++) {
		const struct meshd_listen *l = &d->conf->listen[i];
		struct sockaddr_storage ss;
		socklen_t len;
		struct pem p = { 0 };
		int rc;

		http_parse_listen(l->address, &ss, &len);
		if (!l->certificate && !inv_plain_ok(d->inv, &ss)) {
			snprintf(err, errlen, "%s: listen %s: plain HTTP only on loopback or a mesh tunnel "
				 "address; give this listener a certificate and key", d->conf->path, l->address);
			return -1;
		}
		if (read_pem(l, &p, err, errlen) < 0)
			return -1;
		rc = p.cert ? check_tls(d, l, &p, err, errlen) : 0;
		pem_free(&p);
		if (rc < 0)
			return -1;
	}
	return 0;
}

static int start_listeners(struct meshd *d, char *err, size_t errlen)
{
	struct http_server_opts o = {
		.handler = meshd_route, .ctx = d, .methods = "GET, HEAD, POST",
		.max_body = d->conf->max_body,
	};

	if (!(d->http = http_server_new(&o))) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < d->conf->n_listen; i++) {
		const struct meshd_listen *l = &d->conf->listen[i];
		struct pem p = { 0 };
		struct http_listen hl = {
			.addr = l->address, .what = "listen", .per_source = (unsigned)d->conf->per_source,
		};
		int rc;

		if (read_pem(l, &p, err, errlen) < 0)
			return -1;
		hl.tls_cert_pem = p.cert;
		hl.tls_key_pem = p.key;
		rc = http_server_listen(d->http, d->loop, &hl, err, errlen);
		pem_free(&p);
		if (rc < 0)
			return -1;
		log_info("listening on %s (%s)", l->address, l->certificate ? "HTTPS" : "plain HTTP");
	}
	return 0;
}

/* ---- signals ---- */

static uv_signal_t sig_term, sig_int, sig_hup;

static void on_stop(uv_signal_t *s, int signum)
{
	struct meshd *d = s->data;

	log_notice("signal %d: stopping", signum);
	sd_notify(0, "STOPPING=1");
	http_server_close(d->http);
	d->http = NULL;
	admin_close(d->admin);
	d->admin = NULL;
	uv_close((uv_handle_t *)&sig_term, NULL);
	uv_close((uv_handle_t *)&sig_int, NULL);
	uv_close((uv_handle_t *)&sig_hup, NULL);
}

static void on_hup(uv_signal_t *s, int signum)
{
	struct meshd *d = s->data;
	char err[4096];

	(void)signum;
	sd_notify(0, "RELOADING=1");
	if (meshd_reload(d, err, sizeof(err)) < 0)
		log_err("reload refused, the old inventory stays: %s", err);
	else
		log_notice("inventory reloaded: %zu nodes, sha256:%s", d->inv->m->n_nodes, d->inv->sha256);
	sd_notify(0, "READY=1");
}

static int state_dir(const char *path, char *err, size_t errlen)
{
	char dir[4096], *slash;

	snprintf(dir, sizeof(dir), "%s", path);
	if (!(slash = strrchr(dir, '/')) || slash == dir)
		return 0;
	*slash = '\0';
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		snprintf(err, errlen, "state: %.3000s: %s", dir, strerror(errno));
		return -1;
	}
	return 0;
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
	const char *conf_path = MESHD_CONF_DEFAULT;
	bool test = false, debug = false;
	struct meshd d = { 0 };
	char err[4096];
	int c, rc = 1;

	while ((c = getopt_long(argc, argv, "c:tdh", longopts, NULL)) != -1) {
		switch (c) {
		case 'c': conf_path = optarg; break;
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
	if (!(d.conf = meshd_conf_load(conf_path, err, sizeof(err)))) {
		fprintf(stderr, "meshd: %s\n", err);
		return 1;
	}
	if (state_dir(d.conf->state, err, sizeof(err)) < 0 ||
	    mstate_open(d.conf->state, &d.st, err, sizeof(err)) < 0 ||
	    !(d.inv = inv_load(d.conf->inventory, d.st, err, sizeof(err))) ||
	    check_listeners(&d, err, sizeof(err)) < 0) {
		fprintf(stderr, "meshd: %s\n", err);
		goto out;
	}
	if (mstate_warning(d.st))
		log_warn("%s", mstate_warning(d.st));
	if (test) {
		printf("meshd: %s: ok; inventory %s: %zu nodes, sha256:%s\n", conf_path,
		       d.conf->inventory, d.inv->m->n_nodes, d.inv->sha256);
		if (d.pin[0])
			printf("meshd: TLS pin %s\n", d.pin);
		rc = 0;
		goto out;
	}
	d.loop = uv_default_loop();
	d.started = time(NULL);
	if (!(d.lim = limiter_new((double)d.conf->rate, (double)d.conf->burst, LIMITER_SLOTS))) {
		fprintf(stderr, "meshd: out of memory\n");
		goto out;
	}
	{
		struct admin_hooks hooks = { .ctx = &d, .node_known = node_known,
					    .changed = state_changed, .log = admin_log };

		if (admin_start(d.loop, d.conf->admin_socket, d.st, &hooks, &d.admin, err, sizeof(err)) < 0) {
			fprintf(stderr, "meshd: %s\n", err);
			goto out;
		}
	}
	if (start_listeners(&d, err, sizeof(err)) < 0) {
		fprintf(stderr, "meshd: %s\n", err);
		goto out;
	}
	if (d.pin[0])
		log_info("TLS pin %s (meshctl cloud-init --pin)", d.pin);
	log_notice("ready: inventory %s, %zu nodes, sha256:%s", d.conf->inventory,
		   d.inv->m->n_nodes, d.inv->sha256);
	uv_signal_init(d.loop, &sig_term);
	uv_signal_init(d.loop, &sig_int);
	uv_signal_init(d.loop, &sig_hup);
	sig_term.data = sig_int.data = sig_hup.data = &d;
	uv_signal_start(&sig_term, on_stop, SIGTERM);
	uv_signal_start(&sig_int, on_stop, SIGINT);
	uv_signal_start(&sig_hup, on_hup, SIGHUP);
	sd_notify(0, "READY=1");
	uv_run(d.loop, UV_RUN_DEFAULT);
	rc = 0;
out:
	if (d.http)
		http_server_close(d.http);
	if (d.admin)
		admin_close(d.admin);
	if (d.loop) {
		uv_run(d.loop, UV_RUN_NOWAIT);
		uv_loop_close(d.loop);
	}
	limiter_free(d.lim);
	inv_free(d.inv);
	mstate_close(d.st);
	meshd_conf_free(d.conf);
	return rc;
}
