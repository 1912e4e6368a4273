/*
 * Tests of meshctl's renderers and of what surrounds them: every file of
 * every node of config/examples/mesh.yaml against golden files, checked by
 * the real tools (bird -p, nft -c inside unshare -n, healthd -t); a file a
 * tool refuses leaves the old tree in place; no private key or password
 * in any file; add-node's slot and never-used tunnel addresses; diff.
 * Run from the repository root, as root (nft -c and unshare -n need it).
 *
 * Golden files: tests/unit/golden/mesh/render/NODE holds all of NODE's
 * files, each after a "==> PATH <==" line. After an intended change,
 *     HEALTHD_UPDATE_GOLDEN=1 build/std/tests/test_mesh_render
 * and review the diff.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mesh/mesh.h"
#include "tests/lib/testlib.h"

#define EXAMPLE "config/examples/mesh.yaml"
#define LAB "tests/mesh/lab.yaml.in"
#define GOLDEN_DIR "tests/unit/golden/mesh/render"

TestSuite(mesh_render, .timeout = 60);

static struct mesh *load_file(const char *path)
{
	char err[512];
	struct mesh *m = mesh_load(path, err, sizeof(err));

	cr_assert_not_null(m, "%s", err);
	return m;
}

static struct mesh *load_str(const char *yaml)
{
	char err[512];
	struct mesh *m = mesh_load_string("t.yaml", yaml, strlen(yaml), err, sizeof(err));

	cr_assert_not_null(m, "%s", err);
	return m;
}

/* The lab's inventory with its placeholders filled: @LAB@ = dir, keys. */
static char *lab_yaml(const char *dir)
{
	char *in = testlib_read_file(LAB), *out;
	size_t cap;
	FILE *f;
	int k = 0;

	cr_assert_not_null(in);
	f = open_memstream(&out, &cap);
	for (const char *p = in; *p;) {
		if (!strncmp(p, "@LAB@", 5)) {
			fputs(dir, f);
			p += 5;
		} else if (!strncmp(p, "@KEY_", 5)) {
			const char *end = strchr(p + 5, '@');

			/* a key per node: 31 zero bytes and its number */
			fprintf(f, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA%cE=", "BCDEFGHI"[k++ % 8]);
			p = end + 1;
		} else {
			fputc(*p++, f);
		}
	}
	fclose(f);
	free(in);
	return out;
}

static void tools(struct mesh_tools *t)
{
	static char healthd[PATH_MAX + 16];
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	char *slash;

	cr_assert_gt(n, 0);
	exe[n] = '\0';
	slash = strrchr(exe, '/');
	*slash = '\0';
	/* build/std/tests/test_x -> build/std/healthd */
	snprintf(healthd, sizeof(healthd), "%s/../healthd", exe);
	mesh_tools_default(t, NULL);
	t->healthd = healthd;
	cr_assert(access(healthd, X_OK) == 0, "%s: build healthd first", healthd);
	cr_assert_not_null(t->bird, "bird is not installed (scripts/deps.sh test)");
	cr_assert_not_null(t->nft, "nft is not installed (scripts/deps.sh test)");
}

static char *all_files(const struct mesh_files *f)
{
	char *out;
	size_t len;
	FILE *s = open_memstream(&out, &len);

	for (size_t i = 0; i < f->n; i++) {
		fprintf(s, "==> %s <==\n", f->items[i].path);
		fwrite(f->items[i].data, 1, f->items[i].len, s);
	}
	fclose(s);
	return out;
}

static char tmpdir[128];

static void mktmp(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/healthd-meshrender-%d-XXXXXX", (int)getpid());
	cr_assert_not_null(mkdtemp(tmpdir));
}

static void rmtmp(void)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	cr_assert_eq(system(cmd), 0);
}

Test(mesh_render, example_matches_golden_files)
{
	struct mesh *m = load_file(EXAMPLE);
	const char *update = getenv("HEALTHD_UPDATE_GOLDEN");

	for (size_t i = 0; i < m->n_nodes; i++) {
		struct mesh_files f;
		char path[256], *got, *want;

		cr_assert_eq(mesh_render_node(m, &m->nodes[i], &f), 0);
		got = all_files(&f);
		snprintf(path, sizeof(path), GOLDEN_DIR "/%s", m->nodes[i].name);
		if (update && *update) {
			FILE *w;

			mkdir("tests/unit/golden/mesh/render", 0755);
			cr_assert_not_null(w = fopen(path, "w"));
			fputs(got, w);
			fclose(w);
		}
		want = testlib_read_file(path);
		cr_assert_not_null(want, "%s missing (HEALTHD_UPDATE_GOLDEN=1 writes it)", path);
		cr_assert_str_eq(got, want, "%s differs from what renders now", path);
		free(got);
		free(want);
		mesh_files_free(&f);
	}
	mesh_free(m);
}

Test(mesh_render, same_inventory_same_bytes)
{
	struct mesh *a = load_file(EXAMPLE), *b = load_file(EXAMPLE);

	for (size_t i = 0; i < a->n_nodes; i++) {
		struct mesh_files fa, fb;
		char *sa, *sb;

		cr_assert_eq(mesh_render_node(a, &a->nodes[i], &fa), 0);
		cr_assert_eq(mesh_render_node(b, &b->nodes[i], &fb), 0);
		sa = all_files(&fa);
		sb = all_files(&fb);
		cr_assert_str_eq(sa, sb);
		free(sa);
		free(sb);
		mesh_files_free(&fa);
		mesh_files_free(&fb);
	}
	mesh_free(a);
	mesh_free(b);
}

/* bird -p, nft -c in unshare -n and healthd -t accept every node's files. */
Test(mesh_render, example_passes_the_real_tools)
{
	struct mesh *m = load_file(EXAMPLE);
	struct mesh_tools t;

	tools(&t);
	mktmp();
	for (size_t i = 0; i < m->n_nodes; i++) {
		struct mesh_files f;
		char err[4096], p[512];

		cr_assert_eq(mesh_render_node(m, &m->nodes[i], &f), 0);
		cr_assert_eq(mesh_render_tree(&f, tmpdir, &t, err, sizeof(err)), 0, "%s: %s",
			     m->nodes[i].name, err);
		snprintf(p, sizeof(p), "%s/%s/" MESH_BIRD_CONF, tmpdir, m->nodes[i].name);
		cr_assert(access(p, R_OK) == 0, "%s", p);
		mesh_files_free(&f);
	}
	rmtmp();
	mesh_free(m);
}

Test(mesh_render, lab_inventory_passes_the_real_tools)
{
	char *yaml;
	struct mesh *m;
	struct mesh_tools t;

	tools(&t);
	mktmp();
	yaml = lab_yaml(tmpdir);
	m = load_str(yaml);
	cr_assert_eq(m->n_warnings, 0, "%s", m->n_warnings ? m->warnings[0] : "");
	for (size_t i = 0; i < m->n_nodes; i++) {
		struct mesh_files f;
		char err[4096];

		cr_assert_eq(mesh_render_node(m, &m->nodes[i], &f), 0);
		cr_assert_eq(mesh_render_tree(&f, tmpdir, &t, err, sizeof(err)), 0, "%s: %s",
			     m->nodes[i].name, err);
		mesh_files_free(&f);
	}
	rmtmp();
	mesh_free(m);
	free(yaml);
}

/* One file a tool refuses: the error names it and the tool's words, and the
 * tree rendered before stays as it was. */
Test(mesh_render, refused_file_keeps_the_old_tree)
{
	static const enum mesh_tool which[] = { MESH_TOOL_BIRD, MESH_TOOL_NFT, MESH_TOOL_HEALTHD };
	static const char *const words[] = { "bird -p refused", "nft -c (in unshare -n) refused",
					     "healthd -t refused" };
	struct mesh *m = load_file(EXAMPLE);
	struct mesh_tools t;
	struct mesh_files f;
	char err[4096], path[512], *before, *after;

	tools(&t);
	mktmp();
	cr_assert_eq(mesh_render_node(m, &m->nodes[1], &f), 0);
	cr_assert_eq(mesh_render_tree(&f, tmpdir, &t, err, sizeof(err)), 0, "%s", err);
	snprintf(path, sizeof(path), "%s/ord1/" MESH_BIRD_CONF, tmpdir);
	before = testlib_read_file(path);
	for (size_t w = 0; w < 3; w++) {
		for (size_t i = 0; i < f.n; i++) {
			struct mesh_file *mf = &f.items[i];

			if (mf->tool != which[w])
				continue;
			mf->data = realloc(mf->data, mf->len + 32);
			memcpy(mf->data + mf->len, "\nnot [ valid here\n", 19);
			mf->len += 18;
			if (w == 0) {
				/* the tree's bird.conf changes too: the old one must stay */
				memcpy(mf->data, "# X", 3);
			}
		}
		cr_assert_neq(mesh_render_tree(&f, tmpdir, &t, err, sizeof(err)), 0);
		cr_assert(strstr(err, words[w]), "%s", err);
		after = testlib_read_file(path);
		cr_assert_str_eq(after, before, "the old tree was replaced");
		free(after);
		/* render the good ones again for the next tool */
		mesh_files_free(&f);
		cr_assert_eq(mesh_render_node(m, &m->nodes[1], &f), 0);
	}
	free(before);
	mesh_files_free(&f);
	rmtmp();
	mesh_free(m);
}

/* No file holds a private key or a password; the password's file is only
 * named, in an include. */
Test(mesh_render, no_secret_in_any_file)
{
	struct mesh *m = load_file(EXAMPLE);

	for (size_t i = 0; i < m->n_nodes; i++) {
		struct mesh_files f;
		char *all;

		cr_assert_eq(mesh_render_node(m, &m->nodes[i], &f), 0);
		all = all_files(&f);
		cr_assert_null(strstr(all, "PrivateKey ="), "%s", m->nodes[i].name);
		cr_assert_null(strstr(all, "PrivateKey="), "%s", m->nodes[i].name);
		cr_assert_null(strstr(all, "\tpassword "), "%s", m->nodes[i].name);
		cr_assert_not_null(strstr(all, "include \"/etc/bird/vultr.password\";"));
		cr_assert_not_null(strstr(all, "PrivateKeyFile = /etc/wireguard/wg0.key"));
		free(all);
		mesh_files_free(&f);
	}
	mesh_free(m);
}

/* The reflector has a session per client with rr client; a client only
 * to the reflector; every session ADD-PATH and BFD; export only healthd's. */
Test(mesh_render, bgp_sessions_follow_the_reflection_plan)
{
	struct mesh *m = load_file(EXAMPLE);
	struct mesh_files f;
	const struct mesh_file *bc;
	const char *s;
	int n = 0;

	cr_assert_eq(mesh_render_node(m, mesh_node_find(m, "lax1"), &f), 0);
	bc = mesh_files_find(&f, MESH_BIRD_CONF);
	for (s = bc->data; (s = strstr(s, "\trr client;")); s++)
		n++;
	cr_assert_eq(n, 6, "3 clients x 2 families, got %d", n);
	cr_assert_not_null(strstr(bc->data, "protocol bgp ibgp_ord1_v4"));
	cr_assert_not_null(strstr(bc->data, "protocol bgp ibgp_ewr1_v6"));
	mesh_files_free(&f);

	cr_assert_eq(mesh_render_node(m, mesh_node_find(m, "ord1"), &f), 0);
	bc = mesh_files_find(&f, MESH_BIRD_CONF);
	cr_assert_null(strstr(bc->data, "rr client"));
	cr_assert_not_null(strstr(bc->data, "protocol bgp ibgp_lax1_v4"));
	cr_assert_null(strstr(bc->data, "ibgp_ewr1"), "clients do not peer with clients");
	for (n = 0, s = bc->data; (s = strstr(s, "add paths on;")); s++)
		n++;
	cr_assert_eq(n, 2);
	for (n = 0, s = bc->data; (s = strstr(s, "bfd on;")); s++)
		n++;
	cr_assert_eq(n, 2);
	cr_assert_not_null(strstr(bc->data, "export filter mesh_to_upstream_v4;"));
	cr_assert_not_null(strstr(bc->data, "import none;"));
	mesh_files_free(&f);
	mesh_free(m);
}

/* ---- add-node ---- */

#define INV "mesh:\n  asn: 64496\n  blocks: [\"192.0.2.0/24\"]\n" \
	"  tunnel: {ipv4: 198.51.100.0/29, ipv6: \"2001:db8:10::/48\"}\n" \
	"upstreams:\n  t: {asn: 64497, neighbor_ipv4: 203.0.113.1}\n" \
	"providers: {a: 1, future: 2, b: 3}\n" \
	"regions:\n  - {name: lax, subnet: 192.0.2.0/29}\n  - {name: ord, subnet: 192.0.2.8/29}\n" \
	"nodes:\n" \
	"  - {name: lax1, region: lax, provider: a, upstream: t, route_reflector: true, tunnel_ipv4: 198.51.100.1}\n" \
	"  - {name: ord1, region: ord, provider: a, upstream: t, tunnel_ipv4: 198.51.100.3}\n"

static char *add(const char *yaml, const char *region, const char *provider, int *rc,
		 char *err, size_t errlen)
{
	struct mesh *m = load_str(yaml);
	char *out = NULL;
	size_t len;
	FILE *f = open_memstream(&out, &len);

	*rc = mesh_add_node(m, yaml, strlen(yaml), region, provider, NULL, NULL, f, err, errlen);
	fclose(f);
	mesh_free(m);
	return out;
}

Test(mesh_render, add_node_takes_the_slot_and_a_never_used_address)
{
	char err[512], *out, *yaml;
	int rc;

	out = add(INV "retired: [198.51.100.2]\n", "ord", "b", &rc, err, sizeof(err));
	cr_assert_eq(rc, 0, "%s", err);
	cr_assert_not_null(strstr(out, "name: ord2\n"), "%s", out);
	cr_assert_not_null(strstr(out, "= 192.0.2.11\n"), "%s", out);
	/* .1 and .3 are nodes', .2 is retired */
	cr_assert_not_null(strstr(out, "tunnel_ipv4: 198.51.100.4\n"), "%s", out);
	cr_assert_not_null(strstr(out, "tunnel_ipv6: 2001:db8:10::4\n"), "%s", out);
	/* pasted at the end of nodes:, the inventory loads */
	yaml = malloc(strlen(INV) + strlen(out) + 1);
	strcpy(yaml, INV);
	strcat(yaml, out);
	mesh_free(load_str(yaml));
	free(yaml);
	free(out);
}

Test(mesh_render, add_node_refuses_a_taken_slot_and_a_full_range)
{
	char err[512], *out;
	int rc;

	out = add(INV, "ord", "a", &rc, err, sizeof(err));
	cr_assert_neq(rc, 0);
	cr_assert(strstr(err, "192.0.2.9 is node ord1's"), "%s", err);
	free(out);
	/* /29: hosts .1-.6; .1 and .3 used, the rest retired */
	out = add(INV "retired: [198.51.100.2, 198.51.100.4, 198.51.100.5, 198.51.100.6]\n",
		  "ord", "b", &rc, err, sizeof(err));
	cr_assert_neq(rc, 0);
	cr_assert(strstr(err, "no address left that was never used"), "%s", err);
	free(out);
	out = add(INV, "sfo", "b", &rc, err, sizeof(err));
	cr_assert_neq(rc, 0);
	cr_assert(strstr(err, "no region named 'sfo'"), "%s", err);
	free(out);
}

/* ---- diff ---- */

Test(mesh_render, diff_shows_only_what_changed)
{
	struct mesh *m = load_file(EXAMPLE);
	struct mesh_tools t;
	struct mesh_files f;
	char err[4096], root[256], conf[512], *out;
	size_t len;
	FILE *s;

	tools(&t);
	mktmp();
	cr_assert_eq(mesh_render_node(m, &m->nodes[1], &f), 0);
	cr_assert_eq(mesh_render_tree(&f, tmpdir, &t, err, sizeof(err)), 0, "%s", err);
	snprintf(root, sizeof(root), "%s/ord1", tmpdir);
	s = open_memstream(&out, &len);
	cr_assert_eq(mesh_diff(&f, root, s), 0);
	fclose(s);
	free(out);

	snprintf(conf, sizeof(conf), "%s/" MESH_BIRD_CONF, root);
	s = fopen(conf, "a");
	fputs("# an operator's edit\n", s);
	fclose(s);
	cr_assert_eq(mesh_diff(&f, root, stdout), 1);
	rmtmp();
	mesh_files_free(&f);
	mesh_free(m);
}

/* DIR/NODE that is a symbolic link is refused; what it points to stays. */
Test(mesh_render, link_in_place_of_a_tree_is_refused)
{
	struct mesh *m = load_file(EXAMPLE);
	struct mesh_tools t;
	struct mesh_files f;
	char err[4096], victim[256], link[256], keep[300], stray[300];
	FILE *w;

	tools(&t);
	mktmp();
	snprintf(victim, sizeof(victim), "%s/victim", tmpdir);
	snprintf(keep, sizeof(keep), "%s/keep", victim);
	snprintf(link, sizeof(link), "%s/ord1", tmpdir);
	cr_assert_eq(mkdir(victim, 0755), 0);
	cr_assert_not_null(w = fopen(keep, "w"));
	fclose(w);
	cr_assert_eq(symlink(victim, link), 0);
	cr_assert_eq(mesh_render_node(m, mesh_node_find(m, "ord1"), &f), 0);
	cr_assert_neq(mesh_render_tree(&f, tmpdir, &t, err, sizeof(err)), 0);
	cr_assert(strstr(err, "is not a directory (a link?): not replaced"), "%s", err);
	cr_assert(access(keep, F_OK) == 0, "the link's target was emptied");
	/* and no staging directory is left behind */
	snprintf(stray, sizeof(stray), "ls -A '%s' | grep -q '^\\.ord1'", tmpdir);
	cr_assert_neq(system(stray), 0, "a staging directory was left in %s", tmpdir);
	mesh_files_free(&f);
	rmtmp();
	mesh_free(m);
}
