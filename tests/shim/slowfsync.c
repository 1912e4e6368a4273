/*
 * slowfsync.so — LD_PRELOAD fault injection: every fsync/fdatasync of the
 * process takes SLOWFSYNC_MS longer, as on a disk that stalls. Each stall
 * is noted in SLOWFSYNC_LOG ("start" and "end" lines), so a test can tell a
 * write was under way.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

int fsync(int fd);
int fdatasync(int fd);

static void note(const char *what, long ms)
{
	const char *path = getenv("SLOWFSYNC_LOG");
	int fd;

	if (!path || (fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644)) < 0)
		return;
	dprintf(fd, "%s %ld\n", what, ms);
	close(fd);
}

static void stall(void)
{
	const char *v = getenv("SLOWFSYNC_MS");
	long ms = v ? atol(v) : 0;
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	if (ms <= 0)
		return;
	note("start", ms);
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
	note("end", ms);
}

int fsync(int fd)
{
	static int (*real)(int);

	if (!real)
		real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
	stall();
	return real(fd);
}

int fdatasync(int fd)
{
	static int (*real)(int);

	if (!real)
		real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
	stall();
	return real(fd);
}
