/*
 * bench/rusage.c — run a command, write its wall time and peak RSS.
 *
 *   rusage OUT CMD [ARG]...
 *
 * Forks CMD, reaps it with wait4 and writes "WALL_MS MAXRSS_KB STATUS CPU_MS"
 * to OUT (CPU_MS: user + system time of CMD and the children it reaped);
 * exits with CMD's exit status (128 + signal when it was killed).
 * bench/mesh.py compiles it into its run directory. Why not os.wait4 in
 * Python: at execve the kernel folds the old address space's high-water
 * mark into the process's ru_maxrss, so a child forked by the bench
 * starts with Python's 20-odd MB and every figure reads the same. Forked
 * from this small process, the floor is this process's own ~1 MB.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct timespec a, b;
	struct rusage ru;
	int status, rc;
	pid_t pid;
	FILE *f;

	if (argc < 3) {
		fprintf(stderr, "usage: rusage OUT CMD [ARG]...\n");
		return 2;
	}
	clock_gettime(CLOCK_MONOTONIC, &a);
	pid = fork();
	if (pid < 0) {
		perror("rusage: fork");
		return 2;
	}
	if (pid == 0) {
		execvp(argv[2], argv + 2);
		perror(argv[2]);
		_exit(127);
	}
	if (wait4(pid, &status, 0, &ru) < 0) {
		perror("rusage: wait4");
		return 2;
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	if (!(f = fopen(argv[1], "w"))) {
		perror(argv[1]);
		return 2;
	}
	fprintf(f, "%.3f %ld %d %.3f\n",
		(double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6,
		ru.ru_maxrss, rc,
		(double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
		(double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3);
	if (fclose(f)) {
		perror(argv[1]);
		return 2;
	}
	return rc;
}
