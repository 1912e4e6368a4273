/*
 * mesh/meshctl.c — the operator's tool over the mesh inventory:
 *   meshctl check -c FILE          validate; 0 valid, 1 with the error
 *   meshctl plan -c FILE [--json]  the address plan
 *   meshctl render -c FILE [--node NAME] -o DIR
 *                                  every node's files into DIR/NODE/, each
 *                                  checked by the real tool, swapped in whole
 *   meshctl diff -c FILE --node NAME [--root DIR]
 *                                  what apply would change there; exit 1 if any
 *   meshctl apply -c FILE --node NAME [--timeout S] [--wait S]
 *                                  install on the node, timed configure, confirm
 *   meshctl add-node -c FILE --region R --provider P [--name N] [--upstream U]
 *                                  the entry of a new node, to paste
 *   meshctl token create NODE [--ttl 1h] [--replace] | token revoke ID | token list [--json]
 *   meshctl node list [--json] | node disable NODE
 *                                  enrolment, over meshd's admin socket
 *                                  (--socket PATH, $MESHD_ADMIN_SOCKET)
 *   meshctl cloud-init -c FILE NODE --token T --api URL --pin PIN [...]
 *                                  the node's first-boot user-data
 * Warnings go to stderr and are not fatal.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

#include "config/load.h"
#include "mesh/admin_client.h"
#include "mesh/mesh.h"

#define DEFAULT_INVENTORY "mesh.yaml"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: meshctl check [-c FILE]\n"
		"       meshctl plan [-c FILE] [--json]\n"
		"       meshctl render [-c FILE] [--node NAME] [--enrolled] -o DIR\n"
		"       meshctl diff [-c FILE] --node NAME [--root DIR] [--enrolled]\n"
		"       meshctl apply [-c FILE] --node NAME [--timeout S] [--wait S] [--enrolled]\n"
		"                     [--bird-socket PATH]\n"
		"       meshctl add-node [-c FILE] --region R --provider P [--name N] [--upstream U]\n"
		"       meshctl token create NODE [--ttl 1h] [--replace] [--socket PATH]\n"
		"       meshctl token revoke ID [--socket PATH]\n"
		"       meshctl token list [--json] [--socket PATH]\n"
		"       meshctl node list [--json] [--socket PATH]\n"
		"       meshctl node disable NODE [--socket PATH]\n"
		"       meshctl fleet --lg URL [--json]\n"
		"       meshctl cloud-init [-c FILE] NODE --token T|- --api URL --pin PIN\n"
		"                     [--metadata URL|none] [--package-name NAME |\n"
		"                      --package-url URL --package-sha256 HEX]\n"
		"FILE defaults to " DEFAULT_INVENTORY "; PATH to $" MESH_ADMIN_SOCKET_ENV
		" or " MESH_ADMIN_SOCKET ".\n");
}

static struct mesh *load(const char *path, bool rendering)
{
	char err[1024];
	struct mesh *m = mesh_load(path, err, sizeof(err));

	if (!m) {
		fprintf(stderr, "%s\n", err);
		return NULL;
	}
	for (size_t i = 0; i < m->n_warnings; i++)
		fprintf(stderr, "warning: %s\n", m->warnings[i]);
	if (rendering && !m->admin.n)
		fprintf(stderr, "warning: %s: mesh.admin is empty: the firewall opens SSH (22) to nobody\n", path);
	return m;
}

/* --enrolled: the keys and addresses of the nodes meshd enrolled, from
 * its admin socket (node_list), laid over the inventory as meshd lays
 * them, so that render, diff and apply write what meshd serves. */
static int overlay_enrolled(struct mesh *m, const char *sock)
{
	json_t *req = json_pack("{ss}", "op", "node_list"), *rep, *nodes, *e;
	char err[1024];
	size_t i, n = 0;

	if (!req) {
		fprintf(stderr, "meshctl: out of memory\n");
		return 1;
	}
	rep = mesh_admin_call(sock, req, MESH_ADMIN_TIMEOUT_MS, err, sizeof(err));
	json_decref(req);
	if (!rep) {
		fprintf(stderr, "meshctl: --enrolled: %s\n", err);
		return 1;
	}
	if (!json_is_true(json_object_get(rep, "ok")) ||
	    !json_is_array(nodes = json_object_get(rep, "nodes"))) {
		const char *why = json_string_value(json_object_get(rep, "error"));

		fprintf(stderr, "meshctl: --enrolled: %s: %s\n", sock, why ? why : "an unexpected reply");
		json_decref(rep);
		return 1;
	}
	json_array_foreach(nodes, i, e) {
		const char *name = json_string_value(json_object_get(e, "name"));
		const char *key = json_string_value(json_object_get(e, "public_key"));
		const char *ip = json_string_value(json_object_get(e, "external_ip"));
		bool replaced;
		int rc;

		if (!name || !key || !json_is_null(json_object_get(e, "disabled")))
			continue;   /* a disabled node keeps its addresses, not its place */
		rc = mesh_overlay_node(m, name, key, ip, &replaced);
		if (rc == -ENOENT) {
			fprintf(stderr, "warning: %s is enrolled but not in %s\n", name, m->path);
			continue;
		}
		if (rc) {
			fprintf(stderr, "meshctl: --enrolled: %s: %s\n", name,
				rc == -EINVAL ? "meshd holds no valid key for it" : strerror(-rc));
			json_decref(rep);
			return 1;
		}
		if (replaced)
			fprintf(stderr, "warning: %s: the enrolled key replaces the inventory's\n", name);
		n++;
	}
	fprintf(stderr, "meshctl: %zu enrolled node%s from %s\n", n, n == 1 ? "" : "s", sock);
	json_decref(rep);
	return 0;
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

/* Every node staged and checked first; only then is each swapped in, so a
 * node that a tool refuses leaves every tree as it was. */
static int cmd_render(struct mesh *m, const char *node, const char *dir,
		      const char *argv0)
{
	struct mesh_tools t;
	char (*stages)[PATH_MAX + 80] = calloc(m->n_nodes + 1, sizeof(*stages));
	size_t *counts = calloc(m->n_nodes + 1, sizeof(*counts));
	char err[4096];
	int rc = 0;

	mesh_tools_default(&t, argv0);
	if (!stages || !counts) {
		fprintf(stderr, "meshctl: out of memory\n");
		rc = 1;
		goto out;
	}
	if (node && !mesh_node_find(m, node)) {
		fprintf(stderr, "meshctl: %s: no node named '%s'\n", m->path, node);
		rc = 1;
		goto out;
	}
	for (size_t i = 0; !rc && i < m->n_nodes; i++) {
		const struct mesh_node *n = &m->nodes[i];
		struct mesh_files f;

		if (node && strcmp(node, n->name))
			continue;
		if (mesh_render_node(m, n, &f)) {
			fprintf(stderr, "meshctl: out of memory\n");
			rc = 1;
			break;
		}
		if (mesh_stage_tree(&f, dir, &t, stages[i], sizeof(stages[i]), err, sizeof(err))) {
			fprintf(stderr, "meshctl: %s: %s; no tree changed\n", n->name, err);
			stages[i][0] = '\0';
			rc = 1;
		}
		counts[i] = f.n;
		mesh_files_free(&f);
	}
	for (size_t i = 0; !rc && i < m->n_nodes; i++)
		if (stages[i][0] && mesh_stage_sync(stages[i], err, sizeof(err))) {
			fprintf(stderr, "meshctl: %s; no tree changed\n", err);
			rc = 1;
		}
		else if (stages[i][0])
			break;          /* one syncfs covers the file system */
	for (size_t i = 0; i < m->n_nodes; i++) {
		if (!stages[i][0])
			continue;
		if (rc) {
			mesh_stage_drop(stages[i]);
		} else if (mesh_swap_tree(stages[i], m->nodes[i].name, err, sizeof(err))) {
			fprintf(stderr, "meshctl: %s: %s\n", m->nodes[i].name, err);
			rc = 1;
		} else {
			printf("%s/%s: %zu files\n", dir, m->nodes[i].name, counts[i]);
		}
	}
out:
	free(stages);
	free(counts);
	return rc;
}

static int cmd_node(struct mesh *m, const char *cmd, const char *node,
		    struct mesh_apply_opts *ao, const char *argv0)
{
	const struct mesh_node *n = mesh_node_find(m, node);
	struct mesh_tools t;
	struct mesh_files f;
	char hctl[4096];
	const char *slash = strrchr(argv0, '/');
	int rc;

	if (!n) {
		fprintf(stderr, "meshctl: %s: no node named '%s'\n", m->path, node);
		return 1;
	}
	if (mesh_render_node(m, n, &f)) {
		fprintf(stderr, "meshctl: out of memory\n");
		return 1;
	}
	if (strcmp(cmd, "diff") == 0) {
		rc = mesh_diff(&f, ao->root, stdout);
		if (rc < 0)
			fprintf(stderr, "meshctl: diff: %s\n", strerror(errno));
		rc = rc < 0 ? 2 : rc;
	} else {
		mesh_tools_default(&t, argv0);
		if (slash) {
			snprintf(hctl, sizeof(hctl), "%.*s/healthctl", (int)(slash - argv0), argv0);
			ao->healthctl = access(hctl, X_OK) == 0 ? hctl : "healthctl";
		} else {
			ao->healthctl = "healthctl";
		}
		ao->tools = &t;
		rc = mesh_apply(&f, ao, stdout);
	}
	mesh_files_free(&f);
	return rc;
}

/* The token from stdin (--token -): `meshctl token create` piped in keeps
 * it off the command line. */
static int read_token(char *buf, size_t len)
{
	if (!fgets(buf, (int)len, stdin)) {
		fprintf(stderr, "meshctl: --token -: nothing on standard input\n");
		return -1;
	}
	buf[strcspn(buf, "\r\n")] = '\0';
	return 0;
}

static int cmd_cloud_init(struct mesh *m, const char *node, struct mesh_cloudinit_opts *o)
{
	char err[1024], *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	int rc;

	if (!f) {
		fprintf(stderr, "meshctl: out of memory\n");
		return 1;
	}
	rc = mesh_cloudinit(f, m, node, o, err, sizeof(err));
	if (fclose(f) && !rc) {
		snprintf(err, sizeof(err), "out of memory");
		rc = -1;
	}
	if (rc) {
		fprintf(stderr, "meshctl: cloud-init: %s\n", err);
		free(out);
		return 1;
	}
	if (len > 64 * 1024)
		fprintf(stderr, "warning: the user-data is %zu bytes; Vultr takes at most 64 KiB\n", len);
	rc = fwrite(out, 1, len, stdout) == len && fflush(stdout) == 0 ? 0 : 1;
	if (rc)
		fprintf(stderr, "meshctl: cloud-init: writing: %s\n", strerror(errno));
	free(out);
	return rc;
}

static int cmd_add_node(struct mesh *m, const char *path, const char *region,
			const char *provider, const char *name, const char *upstream)
{
	char err[1024], *buf;
	size_t len;
	int rc;

	if (cfg_read_file(path, &buf, &len, err, sizeof(err))) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	rc = mesh_add_node(m, buf, len, region, provider, name, upstream, stdout, err, sizeof(err));
	if (rc)
		fprintf(stderr, "meshctl: add-node: %s\n", err);
	free(buf);
	return rc ? 1 : 0;
}

/* ---- token, node: meshd's admin socket ---- */

/* One request; the reply when it says ok, else NULL with the error told. */
static json_t *admin_call(const char *sock, json_t *req)
{
	char err[1024];
	json_t *reply = req ? mesh_admin_call(sock, req, MESH_ADMIN_TIMEOUT_MS, err, sizeof(err))
			    : NULL;

	if (!req)
		snprintf(err, sizeof(err), "out of memory");
	json_decref(req);
	if (!reply) {
		fprintf(stderr, "meshctl: %s\n", err);
		return NULL;
	}
	if (!json_is_true(json_object_get(reply, "ok"))) {
		const char *e = json_string_value(json_object_get(reply, "error"));

		fprintf(stderr, "meshctl: %s\n", e ? e : "meshd refused the request");
		json_decref(reply);
		return NULL;
	}
	return reply;
}

static int admin_token_create(const char *sock, const char *node, int64_t ttl, bool replace)
{
	json_t *req = json_pack("{s:s,s:s,s:I}", "op", "token_create", "node", node,
				"ttl", (json_int_t)ttl);
	json_t *r;

	/* "replace" only when asked: a meshd that predates it takes the rest */
	if (req && replace && json_object_set_new(req, "replace", json_true())) {
		json_decref(req);
		req = NULL;
	}
	r = admin_call(sock, req);
	const char *tok = r ? json_string_value(json_object_get(r, "token")) : NULL;

	if (r && !tok)
		fprintf(stderr, "meshctl: meshd's reply has no token\n");
	if (!tok) {
		json_decref(r);
		return 1;
	}
	printf("%s\n", tok);
	fflush(stdout);
	fprintf(stderr, "token %lld for %s, expires %s\n",
		(long long)json_integer_value(json_object_get(r, "id")),
		json_string_value(json_object_get(r, "node")) ?: node,
		json_string_value(json_object_get(r, "expires")) ?: "?");
	json_decref(r);
	return 0;
}

/* token list, node list: the table, or the reply without "ok". */
static int admin_list(const char *sock, const char *op, const char *key, bool json)
{
	json_t *r = admin_call(sock, json_pack("{s:s}", "op", op)), *rows;

	if (!r)
		return 1;
	rows = json_object_get(r, key);
	if (!json_is_array(rows)) {
		fprintf(stderr, "meshctl: meshd's reply has no \"%s\"\n", key);
		json_decref(r);
		return 1;
	}
	if (json) {
		json_object_del(r, "ok");
		json_dumpf(r, stdout, JSON_INDENT(2));
		putchar('\n');
	} else if (!strcmp(key, "tokens")) {
		mesh_admin_tokens_text(stdout, rows);
	} else {
		mesh_admin_nodes_text(stdout, rows);
	}
	json_decref(r);
	return 0;
}

static int admin_token_revoke(const char *sock, const char *arg)
{
	char *end;
	long long id = strtoll(arg, &end, 10);
	json_t *r;

	if (!*arg || *end || id <= 0) {
		fprintf(stderr, "meshctl: token revoke: '%s' is not a token's number (meshctl token list)\n",
			arg);
		return 2;
	}
	if (!(r = admin_call(sock, json_pack("{s:s,s:I}", "op", "token_revoke", "id", (json_int_t)id))))
		return 1;
	printf("token %lld for %s: revoked\n", id,
	       json_string_value(json_object_get(r, "node")) ?: "?");
	json_decref(r);
	return 0;
}

static int admin_node_disable(const char *sock, const char *node)
{
	json_t *r = admin_call(sock, json_pack("{s:s,s:s}", "op", "node_disable", "node", node));

	if (!r)
		return 1;
	json_decref(r);
	printf("%s: disabled\n", node);
	return 0;
}

/* meshctl token|node SUBCOMMAND [NODE] [options]: argv[1] and argv[2]. */
static int cmd_admin(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "ttl", required_argument, NULL, 't' },
		{ "replace", no_argument, NULL, 'r' },
		{ "socket", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *what = argv[1], *sub = argc > 2 ? argv[2] : "", *ttl_arg = NULL;
	const char *sock = NULL, *node = NULL;
	char err[256];
	bool json = false, replace = false, create, list, disable, revoke;
	int64_t ttl = 3600;
	int o;

	create = !strcmp(what, "token") && !strcmp(sub, "create");
	revoke = !strcmp(what, "token") && !strcmp(sub, "revoke");
	disable = !strcmp(what, "node") && !strcmp(sub, "disable");
	list = !strcmp(sub, "list");
	if (!strcmp(sub, "-h") || !strcmp(sub, "--help")) {
		usage(stdout);
		return 0;
	}
	if (!create && !revoke && !disable && !list) {
		fprintf(stderr, *sub ? "meshctl: %s: unknown subcommand '%s' (%s)\n"
			: "meshctl: %s needs a subcommand%s (%s)\n", what, sub,
			!strcmp(what, "token") ? "create, revoke, list" : "list, disable");
		return 2;
	}
	optind = 3;
	while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (o) {
		case 't':
			ttl_arg = optarg;
			break;
		case 'r':
			replace = true;
			break;
		case 's':
			sock = optarg;
			break;
		case 'j':
			json = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if ((create || disable || revoke) && optind + 1 == argc)
		node = argv[optind++];
	if (optind != argc || ((create || disable || revoke) && !node)) {
		fprintf(stderr, "meshctl: usage: meshctl %s %s%s\n", what, sub,
			revoke ? " ID" : create || disable ? " NODE" : "");
		return 2;
	}
	if (replace && !create) {
		fprintf(stderr, "meshctl: --replace is an option of token create\n");
		return 2;
	}
	if (ttl_arg && !create) {
		fprintf(stderr, "meshctl: --ttl is an option of token create\n");
		return 2;
	}
	if (ttl_arg && mesh_admin_parse_ttl(ttl_arg, &ttl, err, sizeof(err))) {
		fprintf(stderr, "meshctl: %s\n", err);
		return 2;
	}
	if (json && !list) {
		fprintf(stderr, "meshctl: --json is an option of token list and node list\n");
		return 2;
	}
	sock = mesh_admin_socket(sock);
	if (create)
		return admin_token_create(sock, node, ttl, replace);
	if (revoke)
		return admin_token_revoke(sock, node);
	if (disable)
		return admin_node_disable(sock, node);
	return admin_list(sock, !strcmp(what, "token") ? "token_list" : "node_list",
			  !strcmp(what, "token") ? "tokens" : "nodes", json);
}

enum {
	OPT_TOKEN = 256, OPT_API, OPT_PIN, OPT_METADATA, OPT_PACKAGE_NAME, OPT_PACKAGE_URL,
	OPT_PACKAGE_SHA256,
};

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "json", no_argument, NULL, 'j' },
		{ "node", required_argument, NULL, 'n' },
		{ "output", required_argument, NULL, 'o' },
		{ "root", required_argument, NULL, 'r' },
		{ "timeout", required_argument, NULL, 'T' },
		{ "wait", required_argument, NULL, 'W' },
		{ "bird-socket", required_argument, NULL, 'B' },
		{ "region", required_argument, NULL, 'R' },
		{ "provider", required_argument, NULL, 'P' },
		{ "name", required_argument, NULL, 'N' },
		{ "upstream", required_argument, NULL, 'U' },
		{ "enrolled", no_argument, NULL, 'E' },
		{ "socket", required_argument, NULL, 'S' },
		{ "token", required_argument, NULL, OPT_TOKEN },
		{ "api", required_argument, NULL, OPT_API },
		{ "pin", required_argument, NULL, OPT_PIN },
		{ "metadata", required_argument, NULL, OPT_METADATA },
		{ "package-name", required_argument, NULL, OPT_PACKAGE_NAME },
		{ "package-url", required_argument, NULL, OPT_PACKAGE_URL },
		{ "package", required_argument, NULL, OPT_PACKAGE_URL },  /* meshd's spec's name */
		{ "package-sha256", required_argument, NULL, OPT_PACKAGE_SHA256 },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *path = DEFAULT_INVENTORY, *cmd, *node = NULL, *out = NULL, *sock = NULL;
	bool enrolled = false;
	const char *root = "/", *bird_socket = NULL, *region = NULL, *provider = NULL;
	const char *name = NULL, *upstream = NULL;
	unsigned timeout_s = 60, wait_s = 30;
	bool json = false, ci_opt = false;
	struct mesh_cloudinit_opts ci = { 0 };
	char token[128];
	struct mesh *m;
	int o, rc;

	signal(SIGPIPE, SIG_IGN);    /* a tool that exits early is an error, not our end */
	if (argc < 2 || argv[1][0] == '-') {
		if (argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
			usage(stdout);
			return 0;
		}
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "token") || !strcmp(argv[1], "node"))
		return cmd_admin(argc, argv);
	if (!strcmp(argv[1], "fleet"))
		return mesh_fleet_cmd(argc, argv);
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
		case 'r':
			root = optarg;
			break;
		case 'T':
		case 'W': {
			char *end;
			unsigned long v = strtoul(optarg, &end, 10);

			if (*end || v < 1 || v > 3600) {
				fprintf(stderr, "meshctl: --%s: '%s' is not a number of seconds (1-3600)\n",
					o == 'T' ? "timeout" : "wait", optarg);
				return 2;
			}
			*(o == 'T' ? &timeout_s : &wait_s) = (unsigned)v;
			break;
		}
		case 'B':
			bird_socket = optarg;
			break;
		case 'R':
			region = optarg;
			break;
		case 'P':
			provider = optarg;
			break;
		case 'N':
			name = optarg;
			break;
		case 'U':
			upstream = optarg;
			break;
		case 'E':
			enrolled = true;
			break;
		case 'S':
			sock = optarg;
			break;
		case OPT_TOKEN:
			ci.token = optarg;
			ci_opt = true;
			break;
		case OPT_API:
			ci.api = optarg;
			ci_opt = true;
			break;
		case OPT_PIN:
			ci.pin = optarg;
			ci_opt = true;
			break;
		case OPT_METADATA:
			ci.metadata = optarg;
			ci_opt = true;
			break;
		case OPT_PACKAGE_NAME:
			ci.package_name = optarg;
			ci_opt = true;
			break;
		case OPT_PACKAGE_URL:
			ci.package_url = optarg;
			ci_opt = true;
			break;
		case OPT_PACKAGE_SHA256:
			ci.package_sha256 = optarg;
			ci_opt = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	/* cloud-init takes its node as an operand (or --node) */
	if (!strcmp(cmd, "cloud-init") && optind + 1 == argc && !node)
		node = argv[optind++];
	if (optind != argc || (strcmp(cmd, "check") && strcmp(cmd, "plan") &&
			       strcmp(cmd, "render") && strcmp(cmd, "diff") &&
			       strcmp(cmd, "apply") && strcmp(cmd, "add-node") &&
			       strcmp(cmd, "cloud-init"))) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(cmd, "cloud-init")) {
		if (!node || !ci.token || !ci.api || !ci.pin) {
			fprintf(stderr, "meshctl: cloud-init needs NODE, --token, --api and --pin\n");
			return 2;
		}
		if (!strcmp(ci.token, "-")) {
			if (read_token(token, sizeof(token)))
				return 2;
			ci.token = token;
		}
	} else if (ci_opt) {
		fprintf(stderr, "meshctl: --token, --api, --pin, --metadata and --package-* are options of cloud-init\n");
		return 2;
	}
	if ((!strcmp(cmd, "diff") || !strcmp(cmd, "apply")) && !node) {
		fprintf(stderr, "meshctl: %s needs --node NAME\n", cmd);
		return 2;
	}
	if (!strcmp(cmd, "apply") && wait_s + 5 > timeout_s) {
		fprintf(stderr, "meshctl: --wait (%u s) must end at least 5 s before --timeout (%u s): "
			"the confirm must reach BIRD before its undo\n", wait_s, timeout_s);
		return 2;
	}
	if (!strcmp(cmd, "apply") && strcmp(root, "/")) {
		fprintf(stderr, "meshctl: apply works where the node's files live (nodes[].root); --root is for diff\n");
		return 2;
	}
	if (!strcmp(cmd, "add-node") && (!region || !provider)) {
		fprintf(stderr, "meshctl: add-node needs --region and --provider\n");
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
	if (enrolled && strcmp(cmd, "render") && strcmp(cmd, "diff") && strcmp(cmd, "apply")) {
		fprintf(stderr, "meshctl: --enrolled is an option of render, diff and apply\n");
		return 2;
	}
	if (!(m = load(path, !strcmp(cmd, "render") || !strcmp(cmd, "apply"))))
		return 1;
	if (enrolled && overlay_enrolled(m, mesh_admin_socket(sock))) {
		mesh_free(m);
		return 1;
	}
	if (strcmp(cmd, "plan") == 0)
		rc = cmd_plan(m, json);
	else if (strcmp(cmd, "render") == 0)
		rc = cmd_render(m, node, out, argv[0]);
	else if (strcmp(cmd, "diff") == 0 || strcmp(cmd, "apply") == 0) {
		struct mesh_apply_opts ao = { root, bird_socket, NULL, NULL, timeout_s, wait_s };

		rc = cmd_node(m, cmd, node, &ao, argv[0]);
	} else if (strcmp(cmd, "add-node") == 0)
		rc = cmd_add_node(m, path, region, provider, name, upstream);
	else if (strcmp(cmd, "cloud-init") == 0)
		rc = cmd_cloud_init(m, node, &ci);
	else
		rc = 0;
	if (!rc && strcmp(cmd, "check") == 0)
		printf("%s: valid\n", path);
	mesh_free(m);
	return rc;
}
