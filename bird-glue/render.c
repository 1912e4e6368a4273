/*
 * render.c — the include file healthd owns, and its atomic write.
 *
 * Every route carries its own attribute block, so that a community change
 * followed by `configure` re-sends only the routes whose block changed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bird-glue/bird.h"

/* BIRD symbol characters only: the name goes into the config unquoted. */
static bool valid_name(const char *name)
{
	if (!name[0] || strlen(name) >= sizeof(((struct bird_static *)0)->name))
		return false;
	if (!((name[0] >= 'a' && name[0] <= 'z') || (name[0] >= 'A' && name[0] <= 'Z') || name[0] == '_'))
		return false;
	for (const char *c = name; *c; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
		      (*c >= '0' && *c <= '9') || *c == '_'))
			return false;
	return true;
}

static bool valid_community(const struct cfg_community *c)
{
	return c->large || (c->v[0] <= 0xffff && c->v[1] <= 0xffff);
}

static void put_route(FILE *f, const struct cfg_prefix *p,
		      const struct cfg_communities *comm)
{
	char addr[INET6_ADDRSTRLEN];

	inet_ntop(p->family, p->addr, addr, sizeof(addr));
	if (!comm || comm->n == 0) {
		fprintf(f, "\troute %s/%u blackhole;\n", addr, p->len);
		return;
	}
	fprintf(f, "\troute %s/%u blackhole {\n", addr, p->len);
	for (size_t i = 0; i < comm->n; i++) {
		const struct cfg_community *c = &comm->items[i];

		if (c->large)
			fprintf(f, "\t\tbgp_large_community.add((%u,%u,%u));\n",
				c->v[0], c->v[1], c->v[2]);
		else
			fprintf(f, "\t\tbgp_community.add((%u,%u));\n", c->v[0], c->v[1]);
	}
	fprintf(f, "\t};\n");
}

static int put_static(FILE *f, const struct bird_static *s)
{
	if (!valid_name(s->name) || (s->family != AF_INET && s->family != AF_INET6))
		return -EINVAL;
	for (size_t i = 0; s->communities && i < s->communities->n; i++)
		if (!valid_community(&s->communities->items[i]))
			return -EINVAL;
	fprintf(f, "\nprotocol static %s {\n", s->name);
	if (s->state)
		fprintf(f, "\t# healthd-state: %s\n", s->state);
	if (s->disabled)
		fprintf(f, "\tdisabled yes;\n");
	fprintf(f, "\t%s;\n", s->family == AF_INET ? "ipv4" : "ipv6");
	for (size_t i = 0; i < s->n_prefixes; i++) {
		const struct cfg_prefix *p = &s->prefixes[i];
		unsigned max = s->family == AF_INET ? 32 : 128;

		if (p->family != s->family)
			continue;
		if (p->len > max)
			return -EINVAL;
		put_route(f, p, s->communities);
	}
	fprintf(f, "}\n");
	return 0;
}

/* The node name lands in a comment: keep it on one printable line. */
static void put_header(FILE *f, const char *node)
{
	fprintf(f, "# Managed by healthd");
	if (node && node[0]) {
		fprintf(f, " (node ");
		for (const char *c = node; *c; c++)
			fputc(*c >= 0x20 && *c < 0x7f ? *c : '?', f);
		fprintf(f, ")");
	}
	fprintf(f, ". Do not edit: rewritten on every change.\n");
}

/* The text, or NULL with errno set (EINVAL: a name, family or community
 * BIRD would not accept). */
char *bird_render_text(const struct bird_static *s, size_t n, const char *node)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	int rc = 0;

	if (!f)
		return NULL;
	put_header(f, node);
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = put_static(f, &s[i]);
	if (fclose(f) != 0 && rc == 0)
		rc = -ENOMEM;
	if (rc < 0) {
		free(text);
		errno = -rc;
		return NULL;
	}
	return text;
}

static int write_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t w = write(fd, buf, len);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		buf += w;
		len -= (size_t)w;
	}
	return 0;
}

static int fsync_dir(const char *path)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	int fd, rc = 0;

	if (!slash)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == path)
		snprintf(dir, sizeof(dir), "/");
	else
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

int bird_write_atomic(const char *path, const char *text, char *err, size_t errlen)
{
	char tmp[PATH_MAX], target[PATH_MAX];
	const char *call;
	int fd = -1, rc;
	struct stat st;

	/* The operator's symlink stays: renaming over it would leave BIRD
	 * reading the file it points to while we write another. */
	if (lstat(path, &st) == 0 && S_ISLNK(st.st_mode)) {
		char link[PATH_MAX];
		ssize_t n = readlink(path, link, sizeof(link) - 1);
		const char *slash = strrchr(path, '/');

		if (n < 0 || (size_t)n >= sizeof(link) - 1) {
			rc = n < 0 ? -errno : -ENAMETOOLONG;
			snprintf(err, errlen, "%s: a symlink that cannot be read: %s", path,
				 strerror(-rc));
			return rc;
		}
		link[n] = '\0';
		/* a relative target is relative to the link's directory */
		if (link[0] == '/' || !slash)
			rc = snprintf(target, sizeof(target), "%s", link);
		else
			rc = snprintf(target, sizeof(target), "%.*s/%s", (int)(slash - path), path, link);
		if (rc < 0 || (size_t)rc >= sizeof(target)) {
			snprintf(err, errlen, "%s: symlink target too long", path);
			return -ENAMETOOLONG;
		}
		path = target;
	}

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) >= sizeof(tmp)) {
		snprintf(err, errlen, "%s: path too long", path);
		return -ENAMETOOLONG;
	}
	call = "open";
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		goto fail_errno;
	call = "write";
	if ((rc = write_all(fd, text, strlen(text))) < 0)
		goto fail;
	call = "fsync";
	if (fsync(fd) < 0)
		goto fail_errno;
	call = "close";
	rc = close(fd);
	fd = -1;
	if (rc < 0)
		goto fail_errno;
	call = "rename";
	if (rename(tmp, path) < 0)
		goto fail_errno;
	/* PATH is in place; only its durability across a crash is at stake */
	if ((rc = fsync_dir(path)) < 0) {
		snprintf(err, errlen, "%s: fsync of its directory: %s", path, strerror(-rc));
		return rc;
	}
	return 0;

fail_errno:
	rc = -errno;
fail:
	if (!strcmp(call, "rename"))
		snprintf(err, errlen, "%s: rename from %s: %s", path, tmp, strerror(-rc));
	else
		snprintf(err, errlen, "%s: %s: %s", tmp, call, strerror(-rc));
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	return rc;
}

int bird_render_write(const char *path, const struct bird_static *s, size_t n,
		      const char *node, char *err, size_t errlen)
{
	char *text = bird_render_text(s, n, node);
	int rc;

	if (!text) {
		rc = -errno;
		snprintf(err, errlen, "%s: render: %s (a name, family or community BIRD rejects)",
			 path, strerror(-rc));
		return rc;
	}
	rc = bird_write_atomic(path, text, err, errlen);
	free(text);
	return rc;
}
