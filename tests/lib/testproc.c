/*
 * A helper process for tests: started with its stdout on a pipe, read line
 * by line with a deadline, stopped by its PID.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests/lib/testlib.h"

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int testproc_start(struct testproc *p, char *const argv[])
{
	int fds[2];
	pid_t parent = getpid();

	memset(p, 0, sizeof(*p));
	p->out = -1;
	if (pipe2(fds, O_CLOEXEC) < 0)
		return -errno;
	p->pid = fork();
	if (p->pid < 0) {
		int err = -errno;

		close(fds[0]);
		close(fds[1]);
		p->pid = 0;
		return err;
	}
	if (p->pid == 0) {
		/* Never outlive the test, even when it crashes. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		dup2(fds[1], STDOUT_FILENO);
		execvp(argv[0], argv);
		_exit(127);
	}
	close(fds[1]);
	p->out = fds[0];
	return 0;
}

static int take_line(struct testproc *p, char *line, size_t len)
{
	char *nl = memchr(p->buf, '\n', p->len);
	size_t n;

	if (!nl)
		return -EAGAIN;
	n = (size_t)(nl - p->buf);
	if (n >= len)
		return -ENOSPC;
	memcpy(line, p->buf, n);
	line[n] = '\0';
	p->len -= n + 1;
	memmove(p->buf, nl + 1, p->len);
	return 0;
}

int testproc_read_line(struct testproc *p, char *line, size_t len,
		       unsigned timeout_ms)
{
	long long deadline = now_ms() + timeout_ms;

	for (;;) {
		int rc = take_line(p, line, len);
		struct pollfd pfd = { .fd = p->out, .events = POLLIN };
		long long left = deadline - now_ms();
		ssize_t n;

		if (rc != -EAGAIN)
			return rc;
		if (p->len == sizeof(p->buf))
			return -ENOSPC;
		/* Poll even when the deadline is over: 0 means "what is there". */
		rc = poll(&pfd, 1, left > 0 ? (int)left : 0);
		if (rc < 0 && errno != EINTR)
			return -errno;
		if (rc == 0)
			return -ETIMEDOUT;
		if (rc < 0)
			continue;
		n = read(p->out, p->buf + p->len, sizeof(p->buf) - p->len);
		if (n < 0 && errno != EINTR)
			return -errno;
		if (n == 0)
			return -EPIPE;
		if (n > 0)
			p->len += (size_t)n;
	}
}

/* Wait for the child to exit, at most timeout_ms; true when it did. */
static bool wait_exit(pid_t pid, unsigned timeout_ms)
{
	int fd = (int)syscall(SYS_pidfd_open, pid, 0);
	struct pollfd pfd;

	if (fd < 0)
		return false;
	pfd.fd = fd;
	pfd.events = POLLIN;
	while (poll(&pfd, 1, (int)timeout_ms) < 0 && errno == EINTR)
		;
	close(fd);
	return waitpid(pid, NULL, WNOHANG) == pid;
}

void testproc_stop(struct testproc *p)
{
	if (p->pid > 0) {
		kill(p->pid, SIGTERM);
		if (!wait_exit(p->pid, 5000)) {
			kill(p->pid, SIGKILL);
			waitpid(p->pid, NULL, 0);
		}
		p->pid = 0;
	}
	if (p->out >= 0)
		close(p->out);
	p->out = -1;
	p->len = 0;
}

int testproc_srcpath(char *buf, size_t len, const char *rel)
{
	const char *env = getenv("HEALTHD_SRC");
	char exe[4096];
	ssize_t n;
	char *b;

	if (env && *env) {
		if ((size_t)snprintf(buf, len, "%s/%s", env, rel) >= len)
			return -ENAMETOOLONG;
		return 0;
	}
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n < 0)
		return -errno;
	exe[n] = '\0';
	b = strstr(exe, "/build/");
	if (!b)
		return -ENOENT;
	*b = '\0';
	if ((size_t)snprintf(buf, len, "%s/%s", exe, rel) >= len)
		return -ENAMETOOLONG;
	return 0;
}
