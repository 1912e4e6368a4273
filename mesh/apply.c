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
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bird-glue/bird.h"
#include "mesh/render.h"

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static char *read_all(const char *path, size_t *len)
{
	FILE *f = fopen(path, "re");
	char *buf = NULL;
	size_t cap = 0, n = 0;

	*len = 0;
	if (!f)
		return NULL;
	for (;;) {
		if (n + 4096 + 1 > cap) {
			char *nb = realloc(buf, cap = (cap ? cap * 2 : 8192));

			if (!nb) {
				free(buf);
				fclose(f);
				return NULL;
			}
			buf = nb;
		}
		size_t r = fread(buf + n, 1, cap - n - 1, f);

		n += r;
		if (r == 0)
			break;
	}
	fclose(f);
	buf[n] = '\0';
	*len = n;
	return buf;
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

struct bconn {
	int fd;
	struct bird_parser *p;
	struct bird_reply last;      /* copied: code and text */
	char text[1024];
	char *body;                  /* the whole reply's text, for show protocols */
	bool done;
	struct bird_proto rows[256];
	int n_rows;
	bool want_rows;
};

static void on_reply(void *arg, const struct bird_reply *r)
{
	struct bconn *b = arg;

	b->done = true;
	b->last.code = r->code;
	snprintf(b->text, sizeof(b->text), "%s", r->text ? r->text : "");
	if (b->want_rows) {
		int n = bird_parse_protocols(r, b->rows, 256, NULL);

		b->n_rows = n < 0 ? 0 : n;
	}
}

static int b_wait(struct bconn *b, int timeout_ms)
{
	uint64_t end = now_ms() + (uint64_t)timeout_ms;

	b->done = false;
	while (!b->done) {
		struct pollfd pfd = { .fd = b->fd, .events = POLLIN };
		uint64_t t = now_ms();
		char buf[4096];
		ssize_t r;

		if (t >= end)
			return -ETIMEDOUT;
		if (poll(&pfd, 1, (int)(end - t)) <= 0)
			continue;
		if ((r = read(b->fd, buf, sizeof(buf))) <= 0)
			return -ECONNRESET;
		if (bird_parser_feed(b->p, buf, (size_t)r, on_reply, b) < 0)
			return -EPROTO;
	}
	return 0;
}

static int b_open(struct bconn *b, const char *sock)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	memset(b, 0, sizeof(*b));
	if (strlen(sock) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, sock);
	if ((b->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return -errno;
	if (connect(b->fd, (struct sockaddr *)&sa, sizeof(sa))) {
		int e = -errno;

		close(b->fd);
		return e;
	}
	if (!(b->p = bird_parser_new())) {
		close(b->fd);
		return -ENOMEM;
	}
	return b_wait(b, 5000);   /* 0001 welcome */
}

static void b_close(struct bconn *b)
{
	if (b->p)
		bird_parser_free(b->p);
	if (b->fd >= 0)
		close(b->fd);
}

static int b_cmd(struct bconn *b, const char *cmd, bool rows, int timeout_ms)
{
	size_t n = strlen(cmd);
	char line[4200];

	snprintf(line, sizeof(line), "%s\n", cmd);
	b->want_rows = rows;
	if (write(b->fd, line, n + 1) != (ssize_t)(n + 1))
		return -errno;
	return b_wait(b, timeout_ms);
}

/* BGP sessions Established now. */
static int established(struct bconn *b, char names[][72], int max)
{
	int n = 0;

	if (b_cmd(b, "show protocols", true, 5000) || b->last.code != 0)
		return -1;
	for (int i = 0; i < b->n_rows && n < max; i++)
		if (!strcmp(b->rows[i].proto, "BGP") && !strncmp(b->rows[i].info, "Established", 11))
			snprintf(names[n++], 72, "%s", b->rows[i].name);
	return n;
}

/* Every name in want Established (or no longer a protocol). */
static bool all_back(struct bconn *b, char want[][72], int n_want, char *missing, size_t len)
{
	if (b_cmd(b, "show protocols", true, 5000) || b->last.code != 0) {
		snprintf(missing, len, "show protocols failed");
		return false;
	}
	missing[0] = '\0';
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

static int put_file(const char *path, const char *data, size_t len, unsigned mode)
{
	char tmp[4200], dir[4096];
	int fd;
	size_t off = 0;

	snprintf(dir, sizeof(dir), "%s", path);
	for (char *p = dir + 1; *p; p++)
		if (*p == '/') {
			*p = '\0';
			mkdir(dir, 0755);
			*p = '/';
		}
	snprintf(tmp, sizeof(tmp), "%s.meshctl-new", path);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)) < 0)
		return -errno;
	while (off < len) {
		ssize_t w = write(fd, data + off, len - off);

		if (w < 0) {
			int e = -errno;

			close(fd);
			unlink(tmp);
			return e;
		}
		off += (size_t)w;
	}
	if (fchmod(fd, mode) || fsync(fd) || close(fd) || rename(tmp, path)) {
		int e = -errno;

		unlink(tmp);
		return e;
	}
	return 0;
}

int mesh_apply(const struct mesh_files *f, const struct mesh_apply_opts *o, FILE *out)
{
	const struct mesh *m = f->mesh;
	const struct mesh_node *n = f->node;
	char stage[] = "/tmp/meshctl-apply.XXXXXX", stubs[4200], err[4096];
	char conf[4096], inc[4096], sock[4096];
	char before[64][72], missing[1024];
	struct { char *path, *old; size_t len; bool existed; } saved[16];
	size_t n_saved = 0;
	int n_before = 0, rc = 1, changed = 0;
	bool timed = false;               /* a configure ... timeout is pending */
	struct bconn b = { .fd = -1 };

	if (!mkdtemp(stage)) {
		fprintf(stderr, "meshctl: %s: %s\n", stage, strerror(errno));
		return 1;
	}
	snprintf(stubs, sizeof(stubs), "%s/.stubs", stage);
	mkdir(stubs, 0700);
	if (mesh_files_write(f, stage, err, sizeof(err)) ||
	    mesh_files_validate(f, stage, o->tools, stubs, err, sizeof(err))) {
		fprintf(stderr, "meshctl: %s: nothing changed: %s\n", n->name, err);
		goto out_free;
	}
	fprintf(out, "%s: %zu files rendered and checked\n", n->name, f->n);

	install_path(o->root, n, MESH_BIRD_CONF, conf, sizeof(conf));
	install_path(o->root, n, MESH_HEALTHD_INCLUDE, inc, sizeof(inc));
	if (o->bird_socket)
		snprintf(sock, sizeof(sock), "%s", o->bird_socket);
	else
		install_path(o->root, n, MESH_BIRD_SOCKET, sock, sizeof(sock));

	for (size_t i = 0; i < f->n; i++) {
		const struct mesh_file *mf = &f->items[i];
		char path[4096], *cur;
		size_t len;
		int e;

		install_path(o->root, n, mf->path, path, sizeof(path));
		cur = read_all(path, &len);
		if (cur && len == mf->len && !memcmp(cur, mf->data, len)) {
			free(cur);
			continue;
		}
		if (n_saved < sizeof(saved) / sizeof(saved[0])) {
			saved[n_saved].path = strdup(path);
			saved[n_saved].old = cur;
			saved[n_saved].len = len;
			saved[n_saved].existed = cur != NULL;
			n_saved++;
		} else {
			free(cur);
		}
		if ((e = put_file(path, mf->data, mf->len, mf->mode))) {
			fprintf(stderr, "meshctl: %s: %s\n", path, strerror(-e));
			goto restore;
		}
		fprintf(out, "  changed %s\n", path);
		changed++;
	}
	if (access(inc, F_OK) != 0 && put_file(inc, "", 0, 0644) == 0)
		fprintf(out, "  created %s (empty, until healthd writes it)\n", inc);
	if (!changed)
		fprintf(out, "  no file changed\n");

	if (b_open(&b, sock) != 0) {
		fprintf(out, "BIRD: not running at %s; it reads %s when it starts\n", sock, conf);
	} else {
		char cmd[4200];
		uint64_t end;
		int k;

		n_before = established(&b, before, 64);
		if (n_before < 0) {
			fprintf(stderr, "meshctl: BIRD: show protocols failed: %s\n", b.text);
			goto restore;
		}
		snprintf(cmd, sizeof(cmd), "configure \"%s\" timeout %u", conf, o->timeout_s);
		k = b_cmd(&b, cmd, false, 30000);
		if (k || !bird_code_ok(b.last.code)) {
			fprintf(stderr, "meshctl: BIRD refused the new configuration (%d %s); the old one stays\n",
				b.last.code, k ? strerror(-k) : b.text);
			goto restore;
		}
		timed = true;
		fprintf(out, "BIRD: configure timeout %u s: %s; waiting for %d BGP session%s\n",
			o->timeout_s, b.text, n_before, n_before == 1 ? "" : "s");
		end = now_ms() + (uint64_t)o->wait_s * 1000;
		/* a restarted session passes through Idle/Connect first: ask until
		 * all are back or the wait is over */
		while (!all_back(&b, before, n_before, missing, sizeof(missing))) {
			struct timespec ts = { 0, 200 * 1000000 };

			if (now_ms() >= end) {
				fprintf(stderr, "meshctl: BGP sessions not back within %u s: %s; not confirmed\n",
					o->wait_s, missing);
				goto restore;
			}
			nanosleep(&ts, NULL);
		}
		if ((k = b_cmd(&b, "configure confirm", false, 10000)) || !bird_code_ok(b.last.code)) {
			fprintf(stderr, "meshctl: BIRD: configure confirm failed (%d %s)\n", b.last.code,
				k ? strerror(-k) : b.text);
			goto restore;
		}
		timed = false;
		fprintf(out, "BIRD: sessions back; %s\n", b.text);
	}

	{
		char nft[4096], wgf[4096], rel[300], ctl[4096];
		const char *ifname = mesh_node_ifname(m, n);
		char sys[300];

		install_path(o->root, n, MESH_NFT_CONF, nft, sizeof(nft));
		if (o->tools->nft && *o->tools->nft) {
			char *argv[] = { (char *)o->tools->nft, "-f", nft, NULL };

			if (run_quiet(argv, true) != 0) {
				fprintf(stderr, "meshctl: nft -f %s failed\n", nft);
				goto out_free;
			}
			fprintf(out, "nftables: table inet healthd_mesh loaded\n");
		}
		snprintf(rel, sizeof(rel), "etc/wireguard/%s.conf", ifname);
		install_path(o->root, n, rel, wgf, sizeof(wgf));
		snprintf(sys, sizeof(sys), "/sys/class/net/%s", ifname);
		if (access(sys, F_OK) == 0) {
			char key[4096];

			snprintf(rel, sizeof(rel), "etc/wireguard/%s.key", ifname);
			install_path(o->root, n, rel, key, sizeof(key));
			if (wg_sync(ifname, wgf, key, out) != 0)
				goto out_free;
		} else {
			fprintf(out, "WireGuard: no interface %s here yet\n", ifname);
		}
		install_path(o->root, n, MESH_HEALTHD_SOCKET, ctl, sizeof(ctl));
		if (access(ctl, F_OK) == 0 && o->healthctl) {
			char *argv[] = { (char *)o->healthctl, "-s", ctl, "reload", NULL };

			if (run_quiet(argv, false) != 0) {
				fprintf(stderr, "meshctl: healthctl reload failed\n");
				goto out_free;
			}
			fprintf(out, "healthd: reloaded\n");
		} else {
			fprintf(out, "healthd: not running; it reads its file when it starts\n");
		}
	}
	rc = 0;
	goto out_free;
restore:
	/* Back as it was, on disk and then in BIRD. BIRD's own undo would
	 * return to the configuration it parsed last, whose include file may
	 * say healthd's protocols are disabled where healthd has enabled them
	 * since: a plain configure of the restored files keeps them as
	 * healthd has them now, and ends the pending undo. */
	for (size_t i = 0; i < n_saved; i++) {
		if (!saved[i].path)
			continue;
		if (saved[i].existed ? put_file(saved[i].path, saved[i].old, saved[i].len, 0644) == 0
				     : unlink(saved[i].path) == 0)
			fprintf(stderr, "meshctl: %s %s\n", saved[i].path,
				saved[i].existed ? "restored" : "removed");
	}
	if (timed) {
		char cmd[4200];
		int k;

		snprintf(cmd, sizeof(cmd), "configure \"%s\"", conf);
		k = b_cmd(&b, cmd, false, 30000);
		if (!k && bird_code_ok(b.last.code))
			fprintf(stderr, "meshctl: BIRD: back on the old configuration (%s)\n", b.text);
		else
			fprintf(stderr, "meshctl: BIRD did not take the old files back (%d %s): "
				"it returns to its old configuration by itself when the %u s timeout ends\n",
				b.last.code, k ? strerror(-k) : b.text, o->timeout_s);
	}
out_free:
	for (size_t i = 0; i < n_saved; i++) {
		free(saved[i].path);
		free(saved[i].old);
	}
	b_close(&b);
	{
		char *argv[] = { "rm", "-rf", stage, NULL };

		run_quiet(argv, false);
	}
	return rc;
}
