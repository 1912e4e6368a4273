/*
 * test_bird_render — the include file: golden text, atomic replacement,
 * and acceptance by the real BIRD (parse-only and a live configure).
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bird-glue/bird.h"
#include "tests/lib/testlib.h"

static struct cfg_prefix pfx(const char *text)
{
	struct cfg_prefix p = { 0 };
	char addr[64];
	const char *slash = strchr(text, '/');

	snprintf(addr, sizeof(addr), "%.*s", (int)(slash - text), text);
	p.family = strchr(addr, ':') ? AF_INET6 : AF_INET;
	cr_assert_eq(inet_pton(p.family, addr, p.addr), 1, "%s", text);
	p.len = (uint8_t)atoi(slash + 1);
	snprintf(p.text, sizeof(p.text), "%s", text);
	return p;
}

static struct cfg_prefix web_prefixes[2];
static struct cfg_community web_items[] = {
	{ .large = false, .v = { 27218, 100 } },
	{ .large = true, .v = { 27218, 1, 2 } },
};
static const struct cfg_communities web_comm = { web_items, 2 };

static void set_web(struct bird_static s[2], bool disabled,
		    const struct cfg_communities *comm)
{
	web_prefixes[0] = pfx("192.30.120.10/32");
	web_prefixes[1] = pfx("2620:71:4000::10/128");
	memset(s, 0, 2 * sizeof(*s));
	snprintf(s[0].name, sizeof(s[0].name), "healthd_web_v4");
	snprintf(s[1].name, sizeof(s[1].name), "healthd_web_v6");
	s[0].family = AF_INET;
	s[1].family = AF_INET6;
	for (int i = 0; i < 2; i++) {
		s[i].prefixes = web_prefixes;
		s[i].n_prefixes = 2;
		s[i].communities = comm;
		s[i].disabled = disabled;
	}
}

TestSuite(bird_render, .timeout = 30);

Test(bird_render, golden_disabled_with_communities)
{
	struct bird_static s[2];
	char *text;

	set_web(s, true, &web_comm);
	text = bird_render_text(s, 2, "lax1");
	cr_assert_str_eq(text,
		"# Managed by healthd (node lax1). Do not edit: rewritten on every change.\n"
		"\n"
		"protocol static healthd_web_v4 {\n"
		"\tdisabled yes;\n"
		"\tipv4;\n"
		"\troute 192.30.120.10/32 blackhole {\n"
		"\t\tbgp_community.add((27218,100));\n"
		"\t\tbgp_large_community.add((27218,1,2));\n"
		"\t};\n"
		"}\n"
		"\n"
		"protocol static healthd_web_v6 {\n"
		"\tdisabled yes;\n"
		"\tipv6;\n"
		"\troute 2620:71:4000::10/128 blackhole {\n"
		"\t\tbgp_community.add((27218,100));\n"
		"\t\tbgp_large_community.add((27218,1,2));\n"
		"\t};\n"
		"}\n");
	free(text);
}

Test(bird_render, golden_enabled_without_communities)
{
	struct cfg_prefix p[3] = { pfx("192.0.2.10/32"), pfx("2001:db8::10/128"),
				   pfx("198.51.100.0/24") };
	struct cfg_communities none = { NULL, 0 };
	struct bird_static s = {
		.name = "healthd_dns_v4", .family = AF_INET,
		.prefixes = p, .n_prefixes = 3, .communities = &none,
	};
	char *text = bird_render_text(&s, 1, "ams\n2");

	cr_assert_str_eq(text,
		"# Managed by healthd (node ams?2). Do not edit: rewritten on every change.\n"
		"\n"
		"protocol static healthd_dns_v4 {\n"
		"\tipv4;\n"
		"\troute 192.0.2.10/32 blackhole;\n"
		"\troute 198.51.100.0/24 blackhole;\n"
		"}\n");
	free(text);
	s.communities = NULL;
	text = bird_render_text(&s, 1, "ams\n2");
	cr_assert(strstr(text, "\troute 192.0.2.10/32 blackhole;\n"));
	free(text);
}

Test(bird_render, no_statics_is_just_the_header)
{
	char *text = bird_render_text(NULL, 0, NULL);

	cr_assert_str_eq(text, "# Managed by healthd. Do not edit: rewritten on every change.\n");
	free(text);
}

Test(bird_render, rejects_what_bird_would_not_parse)
{
	struct bird_static s[2];
	struct cfg_community big = { .large = false, .v = { 65536, 1 } };
	struct cfg_communities bad = { &big, 1 };

	set_web(s, false, &web_comm);
	snprintf(s[0].name, sizeof(s[0].name), "healthd web; }");
	errno = 0;
	cr_assert_null(bird_render_text(s, 2, "x"));
	cr_assert_eq(errno, EINVAL);
	set_web(s, false, &bad);
	cr_assert_null(bird_render_text(s, 2, "x"));
	set_web(s, false, NULL);
	s[1].family = AF_UNIX;
	cr_assert_null(bird_render_text(s, 2, "x"));
}

static char tmpdir[64];

static void mk_tmpdir(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/healthd-render-%ld", (long)getpid());
	cr_assert(mkdir(tmpdir, 0700) == 0 || errno == EEXIST);
}

static void rm_tmpdir(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	cr_assert_eq(system(cmd), 0);
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = calloc(1, 8192);

	cr_assert_not_null(f, "%s", path);
	cr_assert_gt(fread(buf, 1, 8191, f), 0);
	fclose(f);
	return buf;
}

Test(bird_render, write_replaces_the_file, .init = mk_tmpdir, .fini = rm_tmpdir)
{
	struct bird_static s[2];
	char path[128], tmp[160], err[256] = "", *got, *want;

	snprintf(path, sizeof(path), "%s/healthd.conf", tmpdir);
	snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
	set_web(s, false, &web_comm);
	cr_assert_eq(bird_render_write(path, s, 2, "lax1", err, sizeof(err)), 0, "%s", err);
	set_web(s, true, NULL);
	cr_assert_eq(bird_render_write(path, s, 2, "lax1", err, sizeof(err)), 0, "%s", err);
	got = slurp(path);
	want = bird_render_text(s, 2, "lax1");
	cr_assert_str_eq(got, want);
	cr_assert_neq(access(tmp, F_OK), 0, "no temp file is left behind");
	free(got);
	free(want);
}

/* bird.conf includes the file the operator's symlink points to: a write
 * keeps the symlink and replaces the file behind it (renaming over the
 * symlink left BIRD reading a file that never changed). */
Test(bird_render, write_through_a_symlink_keeps_it, .init = mk_tmpdir, .fini = rm_tmpdir)
{
	struct bird_static s[2];
	char link[128], real[128], err[256] = "", *got, *want;
	struct stat st;

	snprintf(link, sizeof(link), "%s/healthd.conf", tmpdir);
	snprintf(real, sizeof(real), "%s/real.conf", tmpdir);
	cr_assert_eq(symlink("real.conf", link), 0);     /* relative, and dangling */
	set_web(s, true, &web_comm);
	cr_assert_eq(bird_render_write(link, s, 2, "lax1", err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(lstat(link, &st), 0);
	cr_assert(S_ISLNK(st.st_mode), "the symlink is still a symlink");
	got = slurp(real);
	want = bird_render_text(s, 2, "lax1");
	cr_assert_str_eq(got, want, "the file behind it holds the text");
	free(got);
	free(want);
}

Test(bird_render, failed_write_leaves_the_old_file, .init = mk_tmpdir, .fini = rm_tmpdir)
{
	struct bird_static s[2];
	char path[128], tmp[160], err[256] = "", *before, *after;

	snprintf(path, sizeof(path), "%s/healthd.conf", tmpdir);
	snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
	set_web(s, false, &web_comm);
	cr_assert_eq(bird_render_write(path, s, 2, "lax1", err, sizeof(err)), 0, "%s", err);
	before = slurp(path);
	/* a directory where the temp file goes: open() fails even for root */
	cr_assert_eq(mkdir(tmp, 0700), 0);
	set_web(s, true, NULL);
	cr_assert_eq(bird_render_write(path, s, 2, "lax1", err, sizeof(err)), -EISDIR);
	cr_assert(strstr(err, tmp) && strstr(err, "open") && strstr(err, strerror(EISDIR)),
		  "err: %s", err);
	after = slurp(path);
	cr_assert_str_eq(after, before);
	free(before);
	free(after);
}

Test(bird_render, write_into_a_missing_dir_names_the_path, .init = mk_tmpdir, .fini = rm_tmpdir)
{
	struct bird_static s[2];
	char path[160], file[128], err[256] = "";

	set_web(s, false, &web_comm);
	snprintf(path, sizeof(path), "%s/nosuchdir/healthd.conf", tmpdir);
	cr_assert_eq(bird_render_write(path, s, 2, "lax1", err, sizeof(err)), -ENOENT);
	cr_assert(strstr(err, path) && strstr(err, "open"), "err: %s", err);

	/* the "directory" is a regular file */
	snprintf(file, sizeof(file), "%s/plain", tmpdir);
	fclose(fopen(file, "w"));
	snprintf(path, sizeof(path), "%s/healthd.conf", file);
	cr_assert_eq(bird_render_write(path, s, 2, "lax1", err, sizeof(err)), -ENOTDIR);
	cr_assert(strstr(err, path), "err: %s", err);
}

/* ---- acceptance by the real BIRD ---- */

static struct birdlab lab;

static void lab_fini(void)
{
	birdlab_destroy(&lab);
}

static void parse_only(const char *conf)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "/usr/sbin/bird -p -c '%s' >/dev/null 2>&1", conf);
	cr_assert_eq(system(cmd), 0, "bird -p rejects %s", conf);
}

static void accepted_live(const char *body)
{
	struct bird_static s[2];
	struct cfg_community drain_item = { .large = false, .v = { 65535, 0 } };
	struct cfg_communities drain = { &drain_item, 1 };
	char err[256], out[8192];

	cr_assert_eq(birdlab_init(&lab, body), 0);
	set_web(s, true, &web_comm);
	cr_assert_eq(bird_render_write(lab.include, s, 2, "lab", err, sizeof(err)), 0, "%s", err);
	parse_only(lab.conf);
	cr_assert_eq(birdlab_start(&lab, 10000), 0, "BIRD did not start, see %s", lab.log);

	cr_assert_eq(birdlab_cmd(&lab, "show protocols \"healthd_*\"", out, sizeof(out)), 0);
	cr_assert(strstr(out, "healthd_web_v4") && strstr(out, "down"), "%s", out);

	/* announce, then change only the communities: configure takes both */
	set_web(s, false, &web_comm);
	cr_assert_eq(bird_render_write(lab.include, s, 2, "lab", err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(birdlab_cmd(&lab, "configure", out, sizeof(out)), 3, "%s", out);
	cr_assert_eq(birdlab_cmd(&lab, "show route for 192.30.120.10/32 all", out, sizeof(out)), 0);
	cr_assert(strstr(out, "(27218,100)") && strstr(out, "(27218, 1, 2)"), "%s", out);

	set_web(s, false, &drain);
	cr_assert_eq(bird_render_write(lab.include, s, 2, "lab", err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(birdlab_cmd(&lab, "configure", out, sizeof(out)), 3, "%s", out);
	cr_assert_eq(birdlab_cmd(&lab, "show route for 2620:71:4000::10/128 all", out, sizeof(out)), 0);
	cr_assert(strstr(out, "(65535,0)") && !strstr(out, "27218"), "%s", out);
}

Test(bird_render, bird_accepts_it_without_bgp, .fini = lab_fini)
{
	accepted_live("protocol static other4 { ipv4; route 192.0.2.1/32 blackhole; }\n");
}

Test(bird_render, bird_accepts_it_with_bgp, .fini = lab_fini)
{
	accepted_live("protocol bgp upstream4 {\n"
		      "\tlocal 127.0.0.1 as 65001;\n"
		      "\tneighbor 127.0.0.2 as 65002;\n"
		      "\tpassive yes;\n"
		      "\tipv4 { import none; export where proto ~ \"healthd_*\"; };\n"
		      "}\n");
}
