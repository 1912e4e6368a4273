/*
 * mesh/render.c — the files of one node, in memory: which files, under
 * which names, checked by which tool. The contents come from
 * render_bird.c, render_net.c, render_healthd.c and render_lg.c. Deterministic: the
 * same inventory gives the same bytes (golden files in tests/unit).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mesh/render.h"

const char *mesh_node_ifname(const struct mesh *m, const struct mesh_node *n)
{
	return n->tunnel_interface ? n->tunnel_interface : m->tunnel.interface;
}

void mesh_node_path(const struct mesh_node *n, const char *rel, char *buf, size_t len)
{
	const char *root = n->root ? n->root : "/";
	size_t rl = strlen(root);

	while (rl > 1 && root[rl - 1] == '/')
		rl--;
	if (rl == 1)
		snprintf(buf, len, "/%s", rel);
	else
		snprintf(buf, len, "%.*s/%s", (int)rl, root, rel);
}

const struct mesh_upstream *mesh_upstream_find(const struct mesh *m, const char *name)
{
	for (size_t i = 0; name && i < m->n_upstreams; i++)
		if (strcmp(m->upstreams[i].name, name) == 0)
			return &m->upstreams[i];
	return NULL;
}

/* Reflectors peer with their clients and with each other; a client with
 * its reflector, or with every reflector when it names none. */
int mesh_bgp_peers(const struct mesh *m, const struct mesh_node *n,
		   struct mesh_bgp_peer **out, size_t *n_out)
{
	struct mesh_bgp_peer *p = calloc(m->n_nodes + 1, sizeof(*p));

	*n_out = 0;
	if (!(*out = p))
		return -ENOMEM;
	for (size_t i = 0; i < m->n_nodes; i++) {
		const struct mesh_node *o = &m->nodes[i];
		struct mesh_bgp_peer e = { .node = o };

		if (o == n)
			continue;
		if (n->route_reflector && o->route_reflector)
			;       /* reflectors: full mesh among themselves */
		else if (n->route_reflector)
			e.rr_client = !o->reflector || strcmp(o->reflector, n->name) == 0;
		else if (o->route_reflector)
			e.reflector = !n->reflector || strcmp(n->reflector, o->name) == 0;
		if (n->route_reflector && o->route_reflector)
			p[(*n_out)++] = e;
		else if (e.rr_client || e.reflector)
			p[(*n_out)++] = e;
	}
	return 0;
}

/* %s in a name is the tunnel interface. */
static const struct {
	const char *name;
	mesh_render_fn *fn;
	enum mesh_tool tool;
} files[] = {
	{ MESH_BIRD_CONF, mesh_render_bird, MESH_TOOL_BIRD },
	{ "etc/wireguard/%s.conf", mesh_render_wg, MESH_TOOL_NONE },
	{ "etc/systemd/network/50-%s.netdev", mesh_render_wg_netdev, MESH_TOOL_NONE },
	{ "etc/systemd/network/50-%s.network", mesh_render_wg_network, MESH_TOOL_NONE },
	{ "etc/systemd/network/50-anycast.netdev", mesh_render_anycast_netdev, MESH_TOOL_NONE },
	{ "etc/systemd/network/50-anycast.network", mesh_render_anycast_network, MESH_TOOL_NONE },
	{ MESH_NFT_CONF, mesh_render_nft, MESH_TOOL_NFT },
	{ MESH_HEALTHD_CONF, mesh_render_healthd, MESH_TOOL_HEALTHD },
	{ MESH_LG_CONF, mesh_render_lg, MESH_TOOL_NONE },
};

#define N_FILES (sizeof(files) / sizeof(files[0]))

int mesh_render_node(const struct mesh *m, const struct mesh_node *n,
		     struct mesh_files *out)
{
	int rc = 0;

	memset(out, 0, sizeof(*out));
	out->mesh = m;
	out->node = n;
	if (!(out->items = calloc(N_FILES, sizeof(*out->items))))
		return -ENOMEM;
	for (size_t i = 0; !rc && i < N_FILES; i++) {
		struct mesh_file *mf = &out->items[i];
		char name[256];
		FILE *f;

		snprintf(name, sizeof(name), files[i].name, mesh_node_ifname(m, n));
		mf->mode = 0644;
		mf->tool = files[i].tool;
		if (!(mf->path = strdup(name)) || !(f = open_memstream(&mf->data, &mf->len))) {
			rc = -ENOMEM;
			break;
		}
		out->n++;
		rc = files[i].fn(f, m, n);
		if (fclose(f) || !mf->data)
			rc = -ENOMEM;
	}
	if (rc)
		mesh_files_free(out);
	return rc;
}

void mesh_files_free(struct mesh_files *f)
{
	for (size_t i = 0; f->items && i < f->n; i++) {
		free(f->items[i].path);
		free(f->items[i].data);
	}
	free(f->items);
	f->items = NULL;
	f->n = 0;
}

const struct mesh_file *mesh_files_find(const struct mesh_files *f, const char *path)
{
	for (size_t i = 0; i < f->n; i++)
		if (strcmp(f->items[i].path, path) == 0)
			return &f->items[i];
	return NULL;
}
