/*
 * mesh/apply.c — `meshctl diff` and `meshctl apply` on a node.
 *
 * apply: render, check in a staging directory, put each file in place
 * (temporary name, fsync, rename), then BIRD:
 *     configure "bird.conf" timeout N     (0022 undo scheduled, 0003)
 *     every BGP session that was Established is Established again
 *     configure confirm                   (0018)
 * and only then nft -f, wg syncconf and healthctl reload. When the
 * sessions do not come back in time the confirm is never sent: BIRD goes
 * back to the old configuration by itself when the timeout ends, and the
 * old bird.conf is put back on disk so that a restart agrees with it.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bird-glue/bird.h"
#include "config/load.h"
#include "mesh/render.h"

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* The file, NUL-terminated, or NULL when it cannot be read (absent). */
static char *read_all(const char *path, size_t *len)
{
	char err[512], *buf;

	*len = 0;
	return cfg_read_file(path, &buf, len, err, sizeof(err)) ? NULL : buf;
}

/* DESTDIR-like: root + the file's path on the node. */
static void install_path(const char *root, const struct mesh_node *n, const char *rel,
			 char *buf, size_t len)
{
	char p[4096];

	mesh_node_path(n, rel, p, sizeof(p));
	if (!root || !strcmp(root, "/") || !root[0])
		snprintf(buf, len, "%s", p);
	else
		snprintf(buf, len, "%s%s", root, p);
}

static int run_quiet(char *const argv[], bool show)
{
	pid_t pid = fork();
	int st;

	if (pid < 0)
		return -1;
	if (pid == 0) {
		if (!show) {
			int null = open("/dev/null", O_WRONLY);

			dup2(null, 1);
		}
		execvp(argv[0], argv);
		fprintf(stderr, "meshctl: %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* ---- diff ---- */

int mesh_diff(const struct mesh_files *f, const char *root, FILE *out)
{
	char tmp[] = "/tmp/meshctl-diff.XXXXXX";
	int changed = 0;

	if (!mkdtemp(tmp))
		return -1;
	for (size_t i = 0; i < f->n; i++) {
		const struct mesh_file *mf = &f->items[i];
		char path[4096], newp[4200], la[4200], lb[4200];
		size_t len;
		char *old = (install_path(root, f->node, mf->path, path, sizeof(path)),
			     read_all(path, &len));

		if (old && len == mf->len && memcmp(old, mf->data, len) == 0) {
			free(old);
			continue;
		}
		if (old && (strstr(old, "PrivateKey") || strstr(old, "PRIVATE KEY"))) {
			explicit_bzero(old, len);
			free(old);
			changed = 1;
			fprintf(out, "%s: holds a private key, not shown (apply never overwrites it)\n", path);
			continue;
		}
		free(old);
		changed = 1;
		snprintf(newp, sizeof(newp), "%s/new", tmp);
		FILE *w = fopen(newp, "we");

		if (!w || fwrite(mf->data, 1, mf->len, w) != mf->len) {
			if (w)
				fclose(w);
			unlink(newp);
			rmdir(tmp);
			return -1;
		}
		fclose(w);
		snprintf(la, sizeof(la), "%s (on the node)", path);
		snprintf(lb, sizeof(lb), "%s (rendered)", path);
		fflush(out);
		{
			char *argv[] = { "diff", "-u", "--label", la, "--label", lb,
					 access(path, R_OK) == 0 ? path : "/dev/null", newp, NULL };

			run_quiet(argv, true);
		}
		unlink(newp);
	}
	rmdir(tmp);
	return changed;
}

/* ---- BIRD, blocking ---- */

#define MAX_ROWS 4096

struct bconn {
	int fd;                      /* -1: closed, or broken by a timeout */
	struct bird_parser *p;
	int code;                    /* the last reply's */
	char text[1024];
	bool done;
	struct bird_proto *rows;
	int n_rows;
	bool want_rows;
};

static void on_reply(void *arg, const struct bird_reply *r)
{
	struct bconn *b = arg;

	b->done = true;
	b->code = r->code;
	snprintf(b->text, sizeof(b->text), "%s", r->text ? r->text : "");
	if (b->want_rows && b->rows) {
		int n = bird_parse_protocols(r, b->rows, MAX_ROWS, NULL);

		b->n_rows = n < 0 ? 0 : n;
	}
}

static void b_close(struct bconn *b)
{
	if (b->p)
		bird_parser_free(b->p);
	b->p = NULL;
	if (b->fd >= 0)
		close(b->fd);
	b->fd = -1;
}

/* A reply that does not come in time breaks the connection: a late one
 * must never be read as the answer to the next command. */
static int b_wait(struct bconn *b, int timeout_ms)
{
	uint64_t end = now_ms() + (uint64_t)timeout_ms;

	b->done = false;
	while (!b->done) {
		struct pollfd pfd = { .fd = b->fd, .events = POLLIN };
		uint64_t t = now_ms();
		char buf[4096];
		ssize_t r;

		if (t >= end) {
			b_close(b);
			return -ETIMEDOUT;
		}
		if (poll(&pfd, 1, (int)(end - t)) <= 0)
			continue;
		if ((r = read(b->fd, buf, sizeof(buf))) <= 0 ||
		    bird_parser_feed(b->p, buf, (size_t)r, on_reply, b) < 0) {
			b_close(b);
			return r <= 0 ? -ECONNRESET : -EPROTO;
		}
	}
	return 0;
}

/* 0, -ENOENT/-ECONNREFUSED (BIRD is not running), or another -errno. */
static int b_open(struct bconn *b, const char *sock)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int e;

	b->fd = -1;
	b->p = NULL;
	if (strlen(sock) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, sock);
	if ((b->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return -errno;
	if (connect(b->fd, (struct sockaddr *)&sa, sizeof(sa))) {
		e = -errno;
		b_close(b);
		return e;
	}
	if (!(b->p = bird_parser_new())) {
		b_close(b);
		return -ENOMEM;
	}
	if ((e = b_wait(b, 5000)))   /* 0001 welcome */
		return e;
	return b->code == 1 ? 0 : -EPROTO;
}

static int b_cmd(struct bconn *b, const char *cmd, bool rows, int timeout_ms)
{
	size_t n = strlen(cmd);
	char line[4200];

	if (b->fd < 0)
		return -ENOTCONN;
	snprintf(line, sizeof(line), "%s\n", cmd);
	b->want_rows = rows;
	b->n_rows = 0;
	if (write(b->fd, line, n + 1) != (ssize_t)(n + 1)) {
		b_close(b);
		return -EIO;
	}
	return b_wait(b, timeout_ms);
}

/* The BGP sessions Established now, names into a new array. */
static int established(struct bconn *b, char (**names)[72])
{
	int n = 0, k;

	if ((k = b_cmd(b, "show protocols", true, 5000)) || b->code != 0)
		return -1;
	if (!(*names = calloc((size_t)b->n_rows + 1, sizeof(**names))))
		return -1;
	for (int i = 0; i < b->n_rows; i++)
		if (!strcmp(b->rows[i].proto, "BGP") && !strncmp(b->rows[i].info, "Established", 11))
			snprintf((*names)[n++], 72, "%s", b->rows[i].name);
	return n;
}

/* Every name in want Established again (or no longer a protocol). */
static bool all_back(struct bconn *b, char (*want)[72], int n_want, char *missing, size_t len)
{
	missing[0] = '\0';
	if (b_cmd(b, "show protocols", true, 5000) || b->code != 0) {
		snprintf(missing, len, "show protocols failed");
		return false;
	}
	for (int i = 0; i < n_want; i++) {
		bool seen = false, up = false;

		for (int j = 0; j < b->n_rows; j++)
			if (!strcmp(b->rows[j].name, want[i])) {
				seen = true;
				up = !strncmp(b->rows[j].info, "Established", 11);
			}
		if (seen && !up) {
			size_t l = strlen(missing);

			if (l + 80 < len)
				snprintf(missing + l, len - l, "%s%.71s", l ? ", " : "", want[i]);
		}
	}
	return missing[0] == '\0';
}

/* ---- WireGuard ---- */

/*
 * `wg syncconf` takes a whole configuration: one without a PrivateKey
 * clears the device's key, and every session with it. So the rendered
 * file goes to wg through a pipe with the node's own key put in: read here
 * on the node, never written elsewhere, wiped after.
 */
static int wg_sync(const char *ifname, const char *conf, const char *keyfile, FILE *out)
{
	size_t clen = 0, klen = 0;
	char *body = read_all(conf, &clen), *key = read_all(keyfile, &klen);
	const char *rest;
	int fds[2], st = -1;
	pid_t pid;

	if (!key || !body) {
		fprintf(out, "WireGuard: %s left as it is: %s cannot be read\n", ifname,
			!key ? keyfile : conf);
		free(body);
		if (key)
			explicit_bzero(key, klen);
		free(key);
		return 0;
	}
	while (klen && (key[klen - 1] == '\n' || key[klen - 1] == ' '))
		key[--klen] = '\0';
	rest = strstr(body, "[Interface]\n");
	if (!rest || pipe2(fds, O_CLOEXEC)) {
		fprintf(stderr, "meshctl: %s: no [Interface] section\n", conf);
		goto out;
	}
	rest += strlen("[Interface]\n");
	if ((pid = fork()) == 0) {
		dup2(fds[0], 0);
		execlp("wg", "wg", "syncconf", ifname, "/dev/stdin", (char *)NULL);
		fprintf(stderr, "meshctl: wg: %s\n", strerror(errno));
		_exit(127);
	}
	close(fds[0]);
	if (pid > 0) {
		FILE *w = fdopen(fds[1], "w");

		if (w) {
			fprintf(w, "[Interface]\nPrivateKey = %s\n%s", key, rest);
			fclose(w);
		} else {
			close(fds[1]);
		}
		while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
			;
		st = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
	} else {
		close(fds[1]);
	}
	if (st == 0)
		fprintf(out, "WireGuard: %s in sync\n", ifname);
	else
		fprintf(stderr, "meshctl: wg syncconf %s failed\n", ifname);
out:
	explicit_bzero(key, klen);
	free(key);
	free(body);
	return st == 0 ? 0 : -1;
}

/* ---- apply ---- */

/* A private key in a file meshctl would replace (a wg-quick file, say). */
static bool holds_private_key(const char *data)
{
	return data && (strstr(data, "PrivateKey =") || strstr(data, "PrivateKey=") ||
			strstr(data, "PRIVATE KEY"));
}

/*
 * data into path by a temporary name, fsync and rename; an existing file
 * keeps its mode and owner. staged: leave it at path.meshctl-new.
 */
static int put_file(const char *path, const char *data, size_t len, unsigned mode, bool staged)
{
	char tmp[4200], dir[4096], *slash;
	struct stat st;
	bool had = stat(path, &st) == 0;
	int fd, e;

	snprintf(dir, sizeof(dir), "%s", path);
	if ((slash = strrchr(dir, '/')) && slash != dir) {
		*slash = '\0';
		mesh_mkdirs(dir, 0755);
	}
	if (had)
		mode = st.st_mode & 07777;
	snprintf(tmp, sizeof(tmp), "%s.meshctl-new", path);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600)) < 0)
		return -errno;
	if ((e = mesh_write_all(fd, data, len))) {
		close(fd);
		unlink(tmp);
		return e;
	}
	if ((had && fchown(fd, st.st_uid, st.st_gid)) || fchmod(fd, mode) || fsync(fd) ||
	    close(fd) || (!staged && rename(tmp, path))) {
		e = -errno;
		unlink(tmp);
		return e;
	}
	return 0;
}

static int run_step(const char *what, char *const argv[], FILE *out)
{
	if (run_quiet(argv, true) != 0) {
		fprintf(stderr, "meshctl: %s failed\n", what);
		return -1;
	}
	fprintf(out, "%s\n", what);
	return 0;
}

/*
 * BIRD first, on a staged copy: configure "bird.conf.meshctl-new" timeout
 * N, the sessions, configure confirm, and only then is the copy renamed
 * over bird.conf. If meshctl dies in between, BIRD undoes it by itself and
 * the disk still holds the old file, so both agree. Returns 0, or 1 with
 * nothing changed.
 */
static int apply_bird(const struct mesh_file *mf, const char *conf, const char *sock,
		      const struct mesh_apply_opts *o, FILE *out)
{
	char staged[4200], cmd[4300], missing[1024], (*before)[72] = NULL;
	struct bconn b = { .fd = -1 };
	uint64_t end;
	int n_before, k, rc = 1;

	snprintf(staged, sizeof(staged), "%s.meshctl-new", conf);
	if (!(b.rows = calloc(MAX_ROWS, sizeof(*b.rows)))) {
		fprintf(stderr, "meshctl: out of memory\n");
		return 1;
	}
	if ((k = b_open(&b, sock)) != 0) {
		free(b.rows);
		if (k != -ENOENT && k != -ECONNREFUSED) {
			fprintf(stderr, "meshctl: BIRD at %s: %s; nothing changed\n", sock, strerror(-k));
			return 1;
		}
		if ((k = put_file(conf, mf->data, mf->len, mf->mode, false))) {
			fprintf(stderr, "meshctl: %s: %s\n", conf, strerror(-k));
			return 1;
		}
		fprintf(out, "BIRD: not running at %s; it reads %s when it starts\n", sock, conf);
		return 0;
	}
	if ((n_before = established(&b, &before)) < 0) {
		fprintf(stderr, "meshctl: BIRD: show protocols failed: %s; nothing changed\n", b.text);
		goto out;
	}
	if ((k = put_file(conf, mf->data, mf->len, mf->mode, true))) {
		fprintf(stderr, "meshctl: %s: %s; nothing changed\n", staged, strerror(-k));
		goto out;
	}
	end = now_ms() + (uint64_t)o->wait_s * 1000;
	snprintf(cmd, sizeof(cmd), "configure \"%s\" timeout %u", staged, o->timeout_s);
	k = b_cmd(&b, cmd, false, 30000);
	if (k || !bird_code_ok(b.code)) {
		fprintf(stderr, "meshctl: BIRD refused the new configuration (%s); it runs the old one, nothing changed\n",
			k ? strerror(-k) : b.text);
		unlink(staged);
		goto out;
	}
	fprintf(out, "BIRD: configure timeout %u s: %s; waiting for %d BGP session%s\n",
		o->timeout_s, b.text, n_before, n_before == 1 ? "" : "s");
	/* a restarted session passes through Idle and Connect first */
	while (!all_back(&b, before, n_before, missing, sizeof(missing))) {
		struct timespec ts = { 0, 200 * 1000000 };

		if (now_ms() >= end || b.fd < 0) {
			fprintf(stderr, "meshctl: BGP sessions not back within %u s: %s; not confirmed\n",
				o->wait_s, missing);
			goto undo;
		}
		nanosleep(&ts, NULL);
	}
	/* 0018 only: 0019 "Nothing to do" means BIRD's undo came first */
	if ((k = b_cmd(&b, "configure confirm", false, 10000)) || b.code != 18) {
		fprintf(stderr, "meshctl: BIRD: configure confirm answered %s\n",
			k ? strerror(-k) : b.text);
		goto undo;
	}
	if (rename(staged, conf)) {
		fprintf(stderr, "meshctl: %s: %s (BIRD runs the new configuration; apply again)\n",
			conf, strerror(errno));
		goto out;
	}
	fprintf(out, "BIRD: sessions back; %s; %s in place\n", b.text, conf);
	rc = 0;
	goto out;
undo:
	/*
	 * The old file, configured now: that ends the pending undo. BIRD's own
	 * undo would return to the configuration it parsed last, whose copy of
	 * healthd's include may still say disabled where healthd has enabled
	 * its protocols since; a configure reads the include as it is now.
	 */
	unlink(staged);
	snprintf(cmd, sizeof(cmd), "configure \"%s\"", conf);
	if (b.fd < 0 && b_open(&b, sock) != 0)
		k = -ENOTCONN;
	else
		k = b_cmd(&b, cmd, false, 30000);
	if (!k && bird_code_ok(b.code))
		fprintf(stderr, "meshctl: BIRD: back on the old configuration (%s); nothing changed\n", b.text);
	else
		fprintf(stderr, "meshctl: BIRD did not take the old file back (%s): it returns to it by "
			"itself when the %u s timeout ends\n", k ? strerror(-k) : b.text, o->timeout_s);
out:
	free(before);
	free(b.rows);
	b_close(&b);
	return rc;
}

int mesh_apply(const struct mesh_files *f, const struct mesh_apply_opts *o, FILE *out)
{
	const struct mesh *m = f->mesh;
	const struct mesh_node *n = f->node;
	const char *ifname = mesh_node_ifname(m, n);
	char stage[PATH_MAX + 80] = "", err[4096];
	char conf[4096], inc[4096], sock[4096], lock[4096], path[4096], rel[300];
	const struct mesh_file *bird = mesh_files_find(f, MESH_BIRD_CONF);
	int rc = 1, lfd = -1;

	/* one apply at a time on a node */
	mesh_node_path(n, "run/meshctl.lock", lock, sizeof(lock));
	put_file(lock, "", 0, 0600, false);
	if ((lfd = open(lock, O_RDWR | O_CLOEXEC | O_NOFOLLOW)) < 0 || flock(lfd, LOCK_EX | LOCK_NB)) {
		fprintf(stderr, "meshctl: %s: %s\n", lock,
			errno == EWOULDBLOCK ? "another meshctl apply runs on this node" : strerror(errno));
		if (lfd >= 0)
			close(lfd);
		return 1;
	}
	if (mesh_stage_tree(f, "/tmp", o->tools, stage, sizeof(stage), err, sizeof(err))) {
		fprintf(stderr, "meshctl: %s: nothing changed: %s\n", n->name, err);
		stage[0] = '\0';
		goto out;
	}
	fprintf(out, "%s: %zu files rendered and checked\n", n->name, f->n);
	/* never overwrite a node's secret */
	for (size_t i = 0; i < f->n; i++) {
		size_t len;
		char *cur;

		mesh_node_path(n, f->items[i].path, path, sizeof(path));
		cur = read_all(path, &len);
		if (holds_private_key(cur)) {
			fprintf(stderr, "meshctl: %s holds a private key: meshctl never overwrites it. "
				"Move the key to etc/wireguard/%s.key under the node's root, remove it "
				"from this file, then apply again; nothing changed\n", path, ifname);
			if (cur)
				explicit_bzero(cur, len);
			free(cur);
			goto out;
		}
		free(cur);
	}

	mesh_node_path(n, MESH_BIRD_CONF, conf, sizeof(conf));
	mesh_node_path(n, MESH_HEALTHD_INCLUDE, inc, sizeof(inc));
	if (o->bird_socket)
		snprintf(sock, sizeof(sock), "%s", o->bird_socket);
	else
		mesh_node_path(n, MESH_BIRD_SOCKET, sock, sizeof(sock));
	if (access(inc, F_OK) != 0 && put_file(inc, "", 0, 0644, false) == 0)
		fprintf(out, "  created %s (empty, until healthd writes it)\n", inc);
	if (apply_bird(bird, conf, sock, o, out))
		goto out;

	/* BIRD runs the new configuration: now the rest, each file in place */
	for (size_t i = 0; i < f->n; i++) {
		const struct mesh_file *mf = &f->items[i];
		size_t len;
		char *cur;
		int e;

		if (mf == bird)
			continue;
		mesh_node_path(n, mf->path, path, sizeof(path));
		cur = read_all(path, &len);
		if (cur && len == mf->len && !memcmp(cur, mf->data, len)) {
			free(cur);
			continue;
		}
		free(cur);
		if ((e = put_file(path, mf->data, mf->len, mf->mode, false))) {
			fprintf(stderr, "meshctl: %s: %s (BIRD runs the new configuration; apply again)\n",
				path, strerror(-e));
			goto out;
		}
		fprintf(out, "  changed %s\n", path);
	}
	mesh_node_path(n, MESH_NFT_CONF, path, sizeof(path));
	if (o->tools->nft && *o->tools->nft) {
		char *argv[] = { (char *)o->tools->nft, "-f", path, NULL };

		if (run_step("nftables: table inet healthd_mesh loaded", argv, out))
			goto after;
	} else {
		fprintf(out, "nftables: not loaded (MESHCTL_NFT is empty)\n");
	}
	snprintf(rel, sizeof(rel), "/sys/class/net/%s", ifname);
	if (access(rel, F_OK) == 0) {
		char wgf[4096], key[4096];

		snprintf(rel, sizeof(rel), "etc/wireguard/%s.conf", ifname);
		mesh_node_path(n, rel, wgf, sizeof(wgf));
		snprintf(rel, sizeof(rel), "etc/wireguard/%s.key", ifname);
		mesh_node_path(n, rel, key, sizeof(key));
		if (wg_sync(ifname, wgf, key, out) != 0)
			goto after;
	} else {
		fprintf(out, "WireGuard: no interface %s here yet\n", ifname);
	}
	mesh_node_path(n, MESH_HEALTHD_SOCKET, path, sizeof(path));
	if (access(path, F_OK) == 0 && o->healthctl) {
		char *argv[] = { (char *)o->healthctl, "-s", path, "reload", NULL };

		if (run_quiet(argv, false) != 0) {
			fprintf(stderr, "meshctl: healthctl reload failed\n");
			goto after;
		}
		fprintf(out, "healthd: reloaded\n");
	} else {
		fprintf(out, "healthd: not running; it reads its file when it starts\n");
	}
	rc = 0;
	goto out;
after:
	fprintf(stderr, "meshctl: BIRD and the files are new; the step above is not done: fix it, then apply again\n");
out:
	if (stage[0])
		mesh_stage_drop(stage);
	close(lfd);
	return rc;
}
