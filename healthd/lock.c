/*
 * One healthd per control socket (and read-only socket) and per include
 * file: an flock(2) on
 * PATH.lock beside each, taken before either is touched (ctl_server_new
 * unlinks a stale socket, bird-glue rewrites the include file) and held
 * until the process exits. The holder writes its pid into the file, so the
 * next one can name it. Lock files are never removed: removing one would
 * let two processes lock two different files of one name.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "healthd/healthd.h"

struct hd_lock {
	char *target;       /* the socket or file guarded */
	char *path;         /* target.lock */
	int fd;
};

static struct hd_lock ctl_lock = { .fd = -1 }, inc_lock = { .fd = -1 }, ro_lock = { .fd = -1 };

/* The pid a holder wrote, or "unknown" (it may not have written it yet). */
static void holder_pid(int fd, char *buf, size_t len)
{
	ssize_t n = pread(fd, buf, len - 1, 0);

	buf[n > 0 ? n : 0] = '\0';
	buf[strspn(buf, "0123456789")] = '\0';
	if (!buf[0])
		snprintf(buf, len, "unknown");
}

/* what: "control socket", "include file"; tail ends the busy message. */
static int lock_take(struct hd_lock *l, const char *target, const char *what,
		     const char *tail, char *err, size_t errlen)
{
	char pid[32];
	int fd, rc;

	l->fd = -1;
	l->target = strdup(target);
	if (!l->target || asprintf(&l->path, "%s.lock", target) < 0) {
		free(l->target);
		l->target = l->path = NULL;
		snprintf(err, errlen, "lock for %s: out of memory", target);
		return -ENOMEM;
	}
	fd = open(l->path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "lock file %s (for the %s): %s", l->path, what,
			 strerror(errno));
		goto fail;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		rc = -errno;
		if (errno == EWOULDBLOCK) {
			holder_pid(fd, pid, sizeof(pid));
			snprintf(err, errlen, "another healthd (pid %s) holds %s: it uses the %s %s; %s",
				 pid, l->path, what, target, tail);
			rc = -EBUSY;
		} else {
			snprintf(err, errlen, "lock file %s: %s", l->path, strerror(errno));
		}
		close(fd);
		goto fail;
	}
	int n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) < 0 || pwrite(fd, pid, (size_t)n, 0) != n)
		log_warn("lock file %s: cannot write the pid: %s", l->path, strerror(errno));
	l->fd = fd;
	return 0;
fail:
	free(l->target);
	free(l->path);
	l->target = l->path = NULL;
	return rc;
}

static void lock_drop(struct hd_lock *l)
{
	if (l->fd >= 0)
		close(l->fd);
	free(l->target);
	free(l->path);
	*l = (struct hd_lock){ .fd = -1 };
}

int hd_lock_start(const struct config *cfg, char *err, size_t errlen)
{
	int rc = lock_take(&ctl_lock, cfg->control.socket, "control socket",
			   "not starting", err, errlen);

	/* The same path for both would lock against itself. */
	if (rc < 0)
		return rc;
	if (strcmp(cfg->bird.include, cfg->control.socket) != 0) {
		rc = lock_take(&inc_lock, cfg->bird.include, "include file", "not starting",
			       err, errlen);
		if (rc < 0) {
			lock_drop(&ctl_lock);
			return rc;
		}
	}
	/* config/ makes it differ from control.socket */
	if (cfg->control.readonly_socket[0] && strcmp(cfg->control.readonly_socket, cfg->bird.include)) {
		rc = lock_take(&ro_lock, cfg->control.readonly_socket, "read-only control socket",
			       "not starting", err, errlen);
		if (rc < 0) {
			lock_drop(&inc_lock);
			lock_drop(&ctl_lock);
		}
	}
	return rc;
}

int hd_lock_include(const char *include, char *err, size_t errlen)
{
	struct hd_lock l;
	int rc;

	if (!inc_lock.target || !strcmp(include, inc_lock.target) ||
	    (ctl_lock.target && !strcmp(include, ctl_lock.target)))
		return 0;
	rc = lock_take(&l, include, "include file", "bird.include not changed", err,
		       errlen);
	if (rc < 0)
		return rc;
	lock_drop(&inc_lock);
	inc_lock = l;
	return 0;
}
