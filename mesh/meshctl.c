/*
 * mesh/meshctl.c — the operator's tool over the mesh inventory:
 *   meshctl check -c FILE          validate; 0 valid, 1 with the error
 *   meshctl plan -c FILE [--json]  the address plan
 *   meshctl render -c FILE [--node NAME] -o DIR
 *                                  every node's files into DIR/NODE/, each
 *                                  checked by the real tool, swapped in whole
 * Warnings go to stderr and are not fatal.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mesh/mesh.h"

#define DEFAULT_INVENTORY "mesh.yaml"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: meshctl check [-c FILE]\n"
		"       meshctl plan [-c FILE] [--json]\n"
		"       meshctl render [-c FILE] [--node NAME] -o DIR\n"
		"FILE defaults to " DEFAULT_INVENTORY ".\n");
}

static struct mesh *load(const char *path)
{
	char err[1024];
	struct mesh *m = mesh_load(path, err, sizeof(err));

	if (!m) {
		fprintf(stderr, "%s\n", err);
		return NULL;
	}
	for (size_t i = 0; i < m->n_warnings; i++)
		fprintf(stderr, "warning: %s\n", m->warnings[i]);
	return m;
}

static int cmd_plan(struct mesh *m, bool json)
{
	struct mesh_plan p;
	int rc;

	if (mesh_plan_build(m, &p)) {
		fprintf(stderr, "meshctl: out of memory\n");
		return 1;
	}
	if (json)
		rc = mesh_plan_json(stdout, &p);
	else {
		mesh_plan_text(stdout, &p);
		rc = 0;
	}
	mesh_plan_free(&p);
	if (rc)
		fprintf(stderr, "meshctl: out of memory\n");
	return rc ? 1 : 0;
}

static int cmd_render(struct mesh *m, const char *node, const char *dir,
		      const char *argv0)
{
	struct mesh_tools t;
	size_t done = 0;

	mesh_tools_default(&t, argv0);
	if (node && !mesh_node_find(m, node)) {
		fprintf(stderr, "meshctl: %s: no node named '%s'\n", m->path, node);
		return 1;
	}
	for (size_t i = 0; i < m->n_nodes; i++) {
		const struct mesh_node *n = &m->nodes[i];
		struct mesh_files f;
		char err[4096];

		if (node && strcmp(node, n->name))
			continue;
		if (mesh_render_node(m, n, &f)) {
			fprintf(stderr, "meshctl: out of memory\n");
			return 1;
		}
		if (mesh_render_tree(&f, dir, &t, err, sizeof(err))) {
			fprintf(stderr, "meshctl: %s: %s\n", n->name, err);
			mesh_files_free(&f);
			return 1;
		}
		printf("%s/%s: %zu files\n", dir, n->name, f.n);
		mesh_files_free(&f);
		done++;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "json", no_argument, NULL, 'j' },
		{ "node", required_argument, NULL, 'n' },
		{ "output", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *path = DEFAULT_INVENTORY, *cmd, *node = NULL, *out = NULL;
	bool json = false;
	struct mesh *m;
	int o, rc;

	if (argc < 2 || argv[1][0] == '-') {
		if (argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
			usage(stdout);
			return 0;
		}
		usage(stderr);
		return 2;
	}
	cmd = argv[1];
	optind = 2;
	while ((o = getopt_long(argc, argv, "c:n:o:h", opts, NULL)) != -1) {
		switch (o) {
		case 'c':
			path = optarg;
			break;
		case 'j':
			json = true;
			break;
		case 'n':
			node = optarg;
			break;
		case 'o':
			out = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc || (strcmp(cmd, "check") && strcmp(cmd, "plan") &&
			       strcmp(cmd, "render"))) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(cmd, "render") && !out) {
		fprintf(stderr, "meshctl: render needs -o DIR\n");
		return 2;
	}
	if (json && strcmp(cmd, "plan")) {
		fprintf(stderr, "meshctl: --json is an option of plan\n");
		return 2;
	}
	if (!(m = load(path)))
		return 1;
	if (strcmp(cmd, "plan") == 0)
		rc = cmd_plan(m, json);
	else if (strcmp(cmd, "render") == 0)
		rc = cmd_render(m, node, out, argv[0]);
	else
		rc = 0;
	if (!rc && strcmp(cmd, "check") == 0)
		printf("%s: valid\n", path);
	mesh_free(m);
	return rc;
}
