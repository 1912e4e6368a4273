/*
 * mesh/stage.c — rendered files on disk: written and fsynced into a
 * staging directory, checked there by the real tools (bird -p, nft -c in a
 * network namespace of its own, healthd -t), then swapped in whole.
 *
 * The tools run with fork/exec, their output (stdout and stderr) kept for
 * the error. A missing tool is an error naming it, never a silent pass.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mesh/render.h"

/* ---- tools ---- */

static const char *in_path(const char *prog, char *buf, size_t len)
{
	const char *path = getenv("PATH");

	if (strchr(prog, '/'))
		return access(prog, X_OK) == 0 ? prog : NULL;
	for (const char *p = path ? path : "/usr/sbin:/usr/bin:/sbin:/bin"; *p;) {
		size_t n = strcspn(p, ":");

		if (n && (size_t)snprintf(buf, len, "%.*s/%s", (int)n, p, prog) < len &&
		    access(buf, X_OK) == 0)
			return buf;
		p += n + (p[n] == ':');
	}
	return NULL;
}

static const char *tool(const char *env, const char *prog, char *buf, size_t len)
{
	const char *e = getenv(env);

	if (e && !*e)
		return e;                 /* set empty: skip that check */
	return in_path(e ? e : prog, buf, len);
}

void mesh_tools_default(struct mesh_tools *t, const char *argv0)
{
	const char *slash = argv0 ? strrchr(argv0, '/') : NULL;
	size_t len = sizeof(t->found[0]);

	t->bird = tool("MESHCTL_BIRD", "bird", t->found[0], len);
	t->nft = tool("MESHCTL_NFT", "nft", t->found[1], len);
	t->unshare = tool("MESHCTL_UNSHARE", "unshare", t->found[2], len);
	t->healthd = getenv("MESHCTL_HEALTHD");
	if (!t->healthd && slash &&
		 (size_t)snprintf(t->found[3], len, "%.*s/healthd", (int)(slash - argv0), argv0) < len)
		t->healthd = access(t->found[3], X_OK) == 0 ? t->found[3] : NULL;
	if (!t->healthd && !getenv("MESHCTL_HEALTHD"))
		t->healthd = in_path("healthd", t->found[3], len);
}

/* argv[0] run to completion, its output into out. The exit status, or -1. */
static int run(char *const argv[], char *out, size_t outlen)
{
	int fds[2], status;
	size_t got = 0;
	pid_t pid;

	out[0] = '\0';
	if (pipe2(fds, O_CLOEXEC))
		return -1;
	if ((pid = fork()) < 0) {
		close(fds[0]);
		close(fds[1]);
		return -1;
	}
	if (pid == 0) {
		int null = open("/dev/null", O_RDONLY);

		dup2(null, 0);
		dup2(fds[1], 1);
		dup2(fds[1], 2);
		execv(argv[0], argv);
		fprintf(stderr, "%s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(fds[1]);
	for (;;) {
		char buf[1024];
		ssize_t r = read(fds[0], buf, sizeof(buf));

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		if (got + 1 < outlen) {
			size_t take = (size_t)r < outlen - 1 - got ? (size_t)r : outlen - 1 - got;

			memcpy(out + got, buf, take);
			got += take;
			out[got] = '\0';
		}
	}
	close(fds[0]);
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	while (got && (out[got - 1] == '\n' || out[got - 1] == ' '))
		out[--got] = '\0';
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* ---- writing ---- */

int mesh_mkdirs(const char *path, mode_t mode)
{
	char buf[4096];

	snprintf(buf, sizeof(buf), "%s", path);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, mode) && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, mode) && errno != EEXIST)
		return -errno;
	return 0;
}

int mesh_write_all(int fd, const char *data, size_t len)
{
	for (size_t off = 0; off < len;) {
		ssize_t w = write(fd, data + off, len - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		off += (size_t)w;
	}
	return 0;
}

static int write_file(const char *path, const char *data, size_t len, unsigned mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	int rc;

	if (fd < 0)
		return -errno;
	if ((rc = mesh_write_all(fd, data, len))) {
		close(fd);
		return rc;
	}
	/* no fsync per file: the tree is made durable with one syncfs()
	 * before it is swapped in (mesh_swap_tree) */
	if (fchmod(fd, mode)) {
		int e = -errno;

		close(fd);
		return e;
	}
	return close(fd) ? -errno : 0;
}

int mesh_files_write(const struct mesh_files *f, const char *dir, char *err, size_t errlen)
{
	char path[4096];
	int rc;

	for (size_t i = 0; i < f->n; i++) {
		const struct mesh_file *mf = &f->items[i];
		char *slash;

		snprintf(path, sizeof(path), "%s/%s", dir, mf->path);
		slash = strrchr(path, '/');
		*slash = '\0';
		if ((rc = mesh_mkdirs(path, 0755))) {
			snprintf(err, errlen, "%s: %s", path, strerror(-rc));
			return -1;
		}
		*slash = '/';
		if ((rc = write_file(path, mf->data, mf->len, mf->mode))) {
			snprintf(err, errlen, "%s: %s", path, strerror(-rc));
			return -1;
		}
	}
	return 0;
}

/* ---- checking ---- */

static bool is_password_file(const struct mesh *m, const char *path)
{
	for (size_t i = 0; i < m->n_upstreams; i++)
		if (m->upstreams[i].password_file && strcmp(m->upstreams[i].password_file, path) == 0)
			return true;
	return false;
}

/*
 * bird.conf as BIRD would read it here: each `include "X";` whose X does
 * not exist on this machine (healthd's file, the node's password) points
 * at a stand-in in stubs instead. Written to stubs/bird.conf.
 */
static int bird_with_stubs(const struct mesh *m, const struct mesh_file *mf,
			   const char *stubs, char *out, size_t outlen,
			   char *err, size_t errlen)
{
	char *copy = strndup(mf->data, mf->len), *line, *save = NULL;
	FILE *f;
	int n = 0, rc = 0;

	snprintf(out, outlen, "%s/bird.conf", stubs);
	if (!copy || !(f = fopen(out, "we"))) {
		free(copy);
		snprintf(err, errlen, "%s: %s", out, strerror(errno ? errno : ENOMEM));
		return -1;
	}
	for (line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char inc[4096], stub[4200];
		size_t len;

		if (strncmp(line, "include \"", 9) != 0 || (len = strlen(line)) < 12 ||
		    strcmp(line + len - 2, "\";") != 0) {
			fprintf(f, "%s\n", line);
			continue;
		}
		snprintf(inc, sizeof(inc), "%.*s", (int)(len - 11), line + 9);
		if (access(inc, R_OK) == 0) {
			fprintf(f, "%s\n", line);
			continue;
		}
		snprintf(stub, sizeof(stub), "%s/include%d", stubs, n++);
		if (write_file(stub, is_password_file(m, inc) ? "password \"stand-in\";\n" : "",
			       is_password_file(m, inc) ? 21 : 0, 0600)) {
			rc = -1;
			snprintf(err, errlen, "%s: %s", stub, strerror(errno));
			break;
		}
		fprintf(f, "include \"%s\";\t# stand-in for %s\n", stub, inc);
	}
	free(copy);
	if (fclose(f) && !rc) {
		snprintf(err, errlen, "%s: %s", out, strerror(errno));
		rc = -1;
	}
	return rc;
}

static int check_one(const struct mesh_files *f, const struct mesh_file *mf,
		     const char *dir, const struct mesh_tools *t, const char *stubs,
		     char *err, size_t errlen)
{
	char path[4096], conf[4200], out[2048];
	const char *what;
	int st;

	snprintf(path, sizeof(path), "%s/%s", dir, mf->path);
	switch (mf->tool) {
	case MESH_TOOL_BIRD: {
		char *argv[] = { (char *)t->bird, "-p", "-c", path, NULL };

		what = "bird -p";
		if (!t->bird)
			goto missing;
		if (!*t->bird)
			return 0;
		if (stubs) {
			if (bird_with_stubs(f->mesh, mf, stubs, conf, sizeof(conf), err, errlen))
				return -1;
			argv[3] = conf;
		}
		st = run(argv, out, sizeof(out));
		break;
	}
	case MESH_TOOL_NFT: {
		char *argv[] = { (char *)t->unshare, "-n", (char *)t->nft, "-c", "-f", path, NULL };

		what = "nft -c (in unshare -n)";
		if (t->nft && !*t->nft)
			return 0;
		if (!t->nft || !t->unshare || !*t->unshare)
			goto missing;
		st = run(argv, out, sizeof(out));
		break;
	}
	case MESH_TOOL_HEALTHD: {
		char *argv[] = { (char *)t->healthd, "-t", "-c", path, NULL };

		what = "healthd -t";
		if (!t->healthd)
			goto missing;
		if (!*t->healthd)
			return 0;
		st = run(argv, out, sizeof(out));
		break;
	}
	default:
		return 0;
	}
	if (st == 0)
		return 0;
	snprintf(err, errlen, "%s: %s refused it (exit %d): %s", mf->path, what, st,
		 out[0] ? out : "no output");
	return -1;
missing:
	snprintf(err, errlen, "%s: cannot check it: %s is not installed (set MESHCTL_%s= to skip this check)",
		 mf->path, what, mf->tool == MESH_TOOL_BIRD ? "BIRD" :
		 mf->tool == MESH_TOOL_NFT ? "NFT" : "HEALTHD");
	return -1;
}

/* Remove a tree without following a symbolic link anywhere in it. */
static void rm_rf(const char *path)
{
	struct stat st;
	struct dirent *e;
	DIR *d;
	int fd;

	if (lstat(path, &st) != 0)
		return;
	if (!S_ISDIR(st.st_mode)) {
		unlink(path);
		return;
	}
	if ((fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0 ||
	    !(d = fdopendir(fd))) {
		if (fd >= 0)
			close(fd);
		return;
	}
	while ((e = readdir(d))) {
		char sub[PATH_MAX + 256];

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
		rm_rf(sub);
	}
	closedir(d);
	rmdir(path);
}

int mesh_files_validate(const struct mesh_files *f, const char *dir,
			const struct mesh_tools *t, const char *stubs,
			char *err, size_t errlen)
{
	for (size_t i = 0; i < f->n; i++)
		if (check_one(f, &f->items[i], dir, t, stubs, err, errlen))
			return -1;
	return 0;
}

static int fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc;

	if (fd < 0)
		return -errno;
	rc = fsync(fd) ? -errno : 0;
	close(fd);
	return rc;
}

int mesh_stage_tree(const struct mesh_files *f, const char *dir,
		    const struct mesh_tools *t, char *stage, size_t stagelen,
		    char *err, size_t errlen)
{
	char stubs[PATH_MAX + 80], abs[PATH_MAX];
	int rc;

	if ((rc = mesh_mkdirs(dir, 0755))) {
		snprintf(err, errlen, "%s: %s", dir, strerror(-rc));
		return -1;
	}
	/* BIRD reads an include relative to the including file: stand-ins
	 * are named by absolute paths */
	if (!realpath(dir, abs)) {
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		return -1;
	}
	if (strlen(abs) + 80 > PATH_MAX || stagelen < strlen(abs) + 80) {
		snprintf(err, errlen, "%s: path too long", abs);
		return -1;
	}
	snprintf(stage, stagelen, "%s/.%.48s.XXXXXX", abs, f->node->name);
	snprintf(stubs, sizeof(stubs), "%s/.%.48s.stubs.XXXXXX", abs, f->node->name);
	if (!mkdtemp(stage)) {
		snprintf(err, errlen, "%s: %s", stage, strerror(errno));
		return -1;
	}
	if (!mkdtemp(stubs)) {
		snprintf(err, errlen, "%s: %s", stubs, strerror(errno));
		rmdir(stage);
		return -1;
	}
	chmod(stage, 0755);
	rc = mesh_files_write(f, stage, err, errlen);
	if (!rc)
		rc = mesh_files_validate(f, stage, t, stubs, err, errlen);
	rm_rf(stubs);
	if (rc) {
		rm_rf(stage);
		return -1;
	}
	return 0;
}

void mesh_stage_drop(const char *stage)
{
	rm_rf(stage);
}

int mesh_stage_sync(const char *stage, char *err, size_t errlen)
{
	int fd = open(stage, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0 || syncfs(fd)) {
		snprintf(err, errlen, "%s: %s", stage, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

int mesh_swap_tree(const char *stage, const char *name, char *err, size_t errlen)
{
	char dir[PATH_MAX], target[PATH_MAX + 80];
	struct stat st;
	char *slash;

	snprintf(dir, sizeof(dir), "%s", stage);
	if (!(slash = strrchr(dir, '/')))
		return -1;
	*slash = '\0';
	snprintf(target, sizeof(target), "%s/%.48s", dir, name);
	/* only a directory is replaced: never what a link points to */
	if (lstat(target, &st) == 0 && !S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "%s is not a directory (a link?): not replaced", target);
		rm_rf(stage);
		return -1;
	}
	/* The old tree and the new one trade places in one step. */
	if (renameat2(AT_FDCWD, stage, AT_FDCWD, target, RENAME_EXCHANGE) == 0) {
		rm_rf(stage);
	} else if (errno == ENOENT) {
		if (rename(stage, target)) {
			snprintf(err, errlen, "%s: %s", target, strerror(errno));
			rm_rf(stage);
			return -1;
		}
	} else {
		snprintf(err, errlen, "%s: %s", target, strerror(errno));
		rm_rf(stage);
		return -1;
	}
	return fsync_dir(dir) ? -1 : 0;
}

int mesh_render_tree(const struct mesh_files *f, const char *dir,
		     const struct mesh_tools *t, char *err, size_t errlen)
{
	char stage[PATH_MAX + 80];

	if (mesh_stage_tree(f, dir, t, stage, sizeof(stage), err, errlen))
		return -1;
	if (mesh_stage_sync(stage, err, errlen)) {
		mesh_stage_drop(stage);
		return -1;
	}
	return mesh_swap_tree(stage, f->node->name, err, errlen);
}
