/*
 * birdlab.c — start and stop a real BIRD for tests.
 *
 * Everything lives in /tmp/healthd-birdlab-PID-N; BIRD is this process's
 * child, dies with it (PR_SET_PDEATHSIG) and is stopped by its PID.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests/lib/testlib.h"

#ifndef BIRDLAB_BIRD
#define BIRDLAB_BIRD "/usr/sbin/bird"
#endif

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	int rc = 0;

	if (!f)
		return -errno;
	if (fputs(text, f) < 0)
		rc = -EIO;
	if (fclose(f) != 0 && rc == 0)
		rc = -errno;
	return rc;
}

int birdlab_write_include(struct birdlab *b, const char *text)
{
	return write_file(b->include, text);
}

int birdlab_init(struct birdlab *b, const char *body)
{
	static unsigned seq;
	char *conf = NULL;
	int rc;

	memset(b, 0, sizeof(*b));
	snprintf(b->dir, sizeof(b->dir), "/tmp/healthd-birdlab-%ld-%u", (long)getpid(), seq++);
	snprintf(b->conf, sizeof(b->conf), "%s/bird.conf", b->dir);
	snprintf(b->include, sizeof(b->include), "%s/healthd.conf", b->dir);
	snprintf(b->sock, sizeof(b->sock), "%s/bird.ctl", b->dir);
	snprintf(b->pidfile, sizeof(b->pidfile), "%s/bird.pid", b->dir);
	snprintf(b->log, sizeof(b->log), "%s/bird.log", b->dir);
	if (mkdir(b->dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	if (asprintf(&conf, "router id 198.51.100.1;\nlog \"%s\" all;\n"
		     "protocol device { }\n%s\ninclude \"%s\";\n",
		     b->log, body ? body : "", b->include) < 0)
		return -ENOMEM;
	rc = write_file(b->conf, conf);
	free(conf);
	if (rc == 0)
		rc = write_file(b->include, "");
	return rc;
}

static bool is_final(const char *l, size_t n)
{
	for (size_t i = 0; i < 4; i++)
		if (i >= n || l[i] < '0' || l[i] > '9')
			return false;
	return n == 4 || l[4] == ' ';
}

/* Connect, send cmd (if any) and read until its final line (the welcome's
 * when cmd is NULL), within the deadline. Returns the final code. */
static int talk(const char *sock, const char *cmd, char *out, size_t outlen,
		long long deadline)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t len = 0, scan = 0, last = 0, replies = 0, want = cmd ? 2 : 1;
	int fd, rc = -ETIMEDOUT;
	char *nl;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		rc = -errno;
		goto out;
	}
	if (cmd && (write(fd, cmd, strlen(cmd)) < 0 || write(fd, "\n", 1) < 0)) {
		rc = -errno;
		goto out;
	}
	while (replies < want && len + 1 < outlen && now_ms() < deadline) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (poll(&pfd, 1, (int)(deadline - now_ms())) <= 0)
			continue;
		n = read(fd, out + len, outlen - 1 - len);
		if (n <= 0) {
			rc = -ECONNRESET;
			goto out;
		}
		len += (size_t)n;
		while ((nl = memchr(out + scan, '\n', len - scan))) {
			if (is_final(out + scan, (size_t)(nl - out) - scan)) {
				replies++;
				last = scan;
			}
			scan = (size_t)(nl - out) + 1;
		}
	}
	out[len] = '\0';
	if (replies < want)
		goto out;
	rc = atoi(out + last);
	if (cmd && (nl = strchr(out, '\n')))    /* the caller wants no welcome */
		memmove(out, nl + 1, strlen(nl + 1) + 1);
out:
	close(fd);
	return rc;
}

int birdlab_cmd(struct birdlab *b, const char *cmd, char *out, size_t outlen)
{
	char buf[65536];

	if (!out) {
		out = buf;
		outlen = sizeof(buf);
	}
	return talk(b->sock, cmd, out, outlen, now_ms() + 5000);
}

static void child(struct birdlab *b)
{
	int fd = open(b->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (fd >= 0) {
		dup2(fd, 1);
		dup2(fd, 2);
	}
	execl(BIRDLAB_BIRD, "bird", "-f", "-c", b->conf, "-s", b->sock,
	      "-P", b->pidfile, (char *)NULL);
	_exit(127);
}

int birdlab_start(struct birdlab *b, unsigned timeout_ms)
{
	long long deadline = now_ms() + timeout_ms;
	char buf[256];
	pid_t pid;
	int status;

	if (b->pid)
		return -EBUSY;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0)
		child(b);
	b->pid = pid;
	while (now_ms() < deadline) {
		if (waitpid(pid, &status, WNOHANG) == pid) {
			b->pid = 0;
			return -ECHILD;
		}
		if (talk(b->sock, NULL, buf, sizeof(buf), deadline) == 1)
			return 0;
		poll(NULL, 0, 10);      /* BIRD still starting: poll again */
	}
	birdlab_stop(b, SIGKILL);
	return -ETIMEDOUT;
}

void birdlab_stop(struct birdlab *b, int sig)
{
	long long deadline = now_ms() + 5000;

	if (!b->pid)
		return;
	kill(b->pid, sig);
	while (waitpid(b->pid, NULL, WNOHANG) == 0) {
		if (now_ms() > deadline) {
			kill(b->pid, SIGKILL);
			waitpid(b->pid, NULL, 0);
			break;
		}
		poll(NULL, 0, 5);
	}
	b->pid = 0;
}

static void remove_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char path[512];

	while (d && (e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		unlink(path);
	}
	if (d)
		closedir(d);
	rmdir(dir);
}

void birdlab_destroy(struct birdlab *b)
{
	birdlab_stop(b, SIGTERM);
	if (b->dir[0])
		remove_dir(b->dir);
}
