/*
 * mesh/render_healthd.c — a node's healthd.yaml: the inventory's services
 * (announce → prefixes, their communities and checks) and a WireGuard
 * check of the tunnel, printed by config/'s normaliser so that the file is
 * every key spelt out, in a fixed order, and loads back as it was built.
 *
 * The struct config here borrows the inventory's strings and checks; only
 * the arrays made here are freed.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mesh/render.h"

/* Every other enrolled node, named; at least one must answer. */
static void wg_check(const struct mesh *m, const struct mesh_node *n,
		     struct cfg_check *k, struct cfg_wg_peer *peers, size_t n_peers,
		     char *uapi)
{
	uint64_t idle = 3 * m->tunnel.keepalive_ms;

	memset(k, 0, sizeof(*k));
	k->name = "mesh";
	k->type = "wireguard";
	k->interval_ms = 1000;
	k->timeout_ms = 1000;
	k->rise = 2;
	k->fall = 2;
	k->on_fail = CFG_ON_FAIL_DEGRADE;
	k->interface = (char *)mesh_node_ifname(m, n);
	k->peers = peers;
	k->n_peers = n_peers;
	k->min_peers = 1;
	k->max_handshake_age_ms = 180000;
	k->max_rx_idle_ms = idle < 5000 ? 5000 : idle;
	k->uapi_dir = uapi;
}

int mesh_render_healthd(FILE *f, const struct mesh *m, const struct mesh_node *n)
{
	char sock[512], inc[512], ctl[512], state[512];
	char *listen[] = { "127.0.0.1:9110" };
	char uapi[] = "/var/run/wireguard";
	struct config cfg = { 0 };
	struct cfg_service *svc = calloc(m->n_services + 1, sizeof(*svc));
	struct cfg_wg_peer *peers = calloc(m->n_nodes + 1, sizeof(*peers));
	size_t n_peers = 0;
	int rc = 0;

	if (!svc || !peers) {
		rc = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < m->n_nodes; i++) {
		const struct mesh_node *o = &m->nodes[i];

		if (o == n || !o->wireguard_public_key)
			continue;
		peers[n_peers].name = o->name;
		snprintf(peers[n_peers].key, sizeof(peers[n_peers].key), "%s", o->wireguard_public_key);
		n_peers++;
	}
	mesh_node_path(n, MESH_BIRD_SOCKET, sock, sizeof(sock));
	mesh_node_path(n, MESH_HEALTHD_INCLUDE, inc, sizeof(inc));
	mesh_node_path(n, MESH_HEALTHD_SOCKET, ctl, sizeof(ctl));
	mesh_node_path(n, "var/lib/healthd", state, sizeof(state));
	cfg.node = n->name;
	cfg.state_dir = state;
	cfg.bird.socket = sock;
	cfg.bird.include = inc;
	cfg.bird.timeout_ms = 2000;
	cfg.bird.reconcile_ms = 5000;
	cfg.control.socket = ctl;
	cfg.control.readonly_socket = "";
	cfg.http.listen = listen;
	cfg.http.n_listen = 1;
	cfg.http.per_source_limit = CFG_HTTP_PER_SOURCE_DEFAULT;
	cfg.defaults = m->checks->defaults;
	if (!cfg.defaults.timeout_ms)
		cfg.defaults.timeout_ms = CFG_DEFAULT_TIMEOUT_MS;
	cfg.services = svc;
	cfg.n_services = m->n_services;
	for (size_t i = 0; rc == 0 && i < m->n_services; i++) {
		const struct mesh_service *ms = &m->services[i];
		const struct cfg_service *cs = &m->checks->services[i];
		struct cfg_service *s = &svc[i];

		s->name = ms->name;
		cfg_service_defaults(s);
		if (ms->has_guard)
			s->guard = ms->guard;
		memcpy(s->communities, ms->communities, sizeof(s->communities));
		s->prefixes = calloc(ms->announce.n + 1, sizeof(*s->prefixes));
		s->checks = calloc(cs->n_checks + 1, sizeof(*s->checks));
		if (!s->prefixes || !s->checks) {
			rc = -ENOMEM;
			break;
		}
		for (size_t j = 0; j < ms->announce.n; j++)
			s->prefixes[s->n_prefixes++] = ms->announce.items[j].p;
		for (size_t j = 0; j < cs->n_checks; j++)
			s->checks[s->n_checks++] = cs->checks[j];
		if (n_peers)
			wg_check(m, n, &s->checks[s->n_checks++], peers, n_peers, uapi);
	}
	if (rc == 0) {
		fprintf(f, "# healthd on %s, rendered by meshctl from the mesh inventory: every\n"
			"# key spelt out. Do not edit here: change the inventory, then\n"
			"# `meshctl apply`. Check with `healthd -t -c` on this file.\n", n->name);
		cfg_print(f, &cfg);
	}
out:
	for (size_t i = 0; svc && i < m->n_services; i++) {
		free(svc[i].prefixes);
		free(svc[i].checks);
	}
	free(svc);
	free(peers);
	return rc;
}
