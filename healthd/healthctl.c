/*
 * healthctl — talk to a running healthd over its control socket.
 *
 * Exit codes: 0 done; 1 healthd not reachable (no socket, permission
 * denied, no reply within -T, reply too large); 2 usage; 3 healthd refused
 * the request (its message is printed); 4 `check`: the probe failed;
 * 5 `import`: the input could not be read or has an error (FILE:LINE).
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <grp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "config/config.h"
#include "healthd/healthd.h"
#include "import/import.h"

#define DEFAULT_CONFIG "/etc/healthd/healthd.yaml"
#define DEFAULT_SOCKET "/run/healthd/healthd.sock"
#define DEFAULT_TIMEOUT_MS 5000
/* The biggest status healthd makes (thousands of services, each check with
 * its detail) is a few MB; 64 MB is ten times that and still a bound. */
#define REPLY_MAX (64 << 20)
#define CONFIG_MAX (4 << 20)    /* of the config read to find the socket */

static uint64_t timeout_ms = DEFAULT_TIMEOUT_MS;
static char timeout_str[32] = "5s";

enum { EX_OK, EX_UNREACHABLE, EX_USAGE_, EX_REFUSED, EX_CHECK_FAILED, EX_IMPORT };

static void usage(FILE *f)
{
	fprintf(f,
		"usage: healthctl [-c CONFIG | -s SOCKET] [-T TIMEOUT] COMMAND\n"
		"  status [--json] [--watch [SECONDS]]  services, checks and why\n"
		"  drain SERVICE|--all [--for DURATION] [--reason TEXT] [--force]\n"
		"                                       announce with the draining communities, then withdraw;\n"
		"                                       kept across restarts of healthd; refused (exit 3) when\n"
		"                                       it would leave fewer than guard.min_announcers, unless --force\n"
		"  undrain SERVICE|--all [--reason TEXT]  end a drain\n"
		"  check [SERVICE/]CHECK                probe now and print the result\n"
		"  reload                               load the config again (errors are printed)\n"
		"  version\n"
		"  import anycast-healthchecker FILE|DIR...  print the equivalent healthd.yaml\n"
		"  import exabgp-healthcheck ARGS...        (of ExaBGP's healthcheck; --config FILE too)\n"
		"  -T TIMEOUT: give up on a reply after this long (default 5s)\n"
		"exit: 0 ok, 1 healthd not reachable or no reply, 2 usage, 3 request refused,"
		" 4 probe failed, 5 import input refused\n");
}

static int dir_stat(const char *path, struct stat *st)
{
	char dir[4096];
	char *slash;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (!slash)
		return stat(".", st);
	slash[slash == dir] = '\0';
	return stat(dir, st);
}

/* What connect(2) said, for people: not running, or which group to join. */
static void connect_failed(const char *path, int e)
{
	struct stat st;
	struct group *g;

	if (e == ENOENT) {
		fprintf(stderr, "healthctl: cannot reach healthd at %s: no such socket"
			" (is healthd running?)\n", path);
	} else if (e == ECONNREFUSED) {
		fprintf(stderr, "healthctl: cannot reach healthd at %s: nothing listens there"
			" (healthd is not running)\n", path);
	} else if (e == EACCES || e == EPERM) {
		/* a socket in a directory we may not enter: the directory's group */
		g = stat(path, &st) == 0 || dir_stat(path, &st) == 0 ? getgrgid(st.st_gid) : NULL;
		if (g)
			fprintf(stderr, "healthctl: cannot reach healthd at %s: permission denied"
				" (join group '%s', the socket's group, or run as root)\n", path, g->gr_name);
		else
			fprintf(stderr, "healthctl: cannot reach healthd at %s: permission denied"
				" (join the socket's group or run as root)\n", path);
	} else if (e == EAGAIN || e == EINPROGRESS || e == ETIMEDOUT) {
		fprintf(stderr, "healthctl: cannot reach healthd at %s: timed out after %s"
			" (its queue of connections is full)\n", path, timeout_str);
	} else {
		fprintf(stderr, "healthctl: cannot reach healthd at %s: %s (is healthd running?)\n",
			path, strerror(e));
	}
}

static int ctl_connect(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = (time_t)(timeout_ms / 1000),
			      .tv_usec = (suseconds_t)(timeout_ms % 1000) * 1000 };
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "healthctl: socket path too long: %s\n", path);
		return -1;
	}
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		connect_failed(path, errno);
		return -1;
	}
	/* a unix connect waits for room in the listen queue up to SO_SNDTIMEO */
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		connect_failed(path, errno);
		close(fd);
		return -1;
	}
	return fd;
}

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Read until a newline, within the deadline and REPLY_MAX bytes; the line
 * (malloc'ed, NUL-terminated) or NULL after a message. */
static char *read_reply(int fd, const char *sock, uint64_t deadline)
{
	char *buf = NULL;
	size_t len = 0, cap = 0;

	for (;;) {
		uint64_t now = mono_ms();
		struct pollfd pfd = { .fd = fd, .events = POLLIN };

		if (now >= deadline) {
			fprintf(stderr, "healthctl: healthd at %s did not answer: timed out after %s\n",
				sock, timeout_str);
			goto fail;
		}
		int rc = poll(&pfd, 1, (int)(deadline - now));

		if (rc < 0 && errno == EINTR)
			continue;
		if (rc == 0)
			continue; /* the deadline check above says so */
		if (len + 4096 > cap) {
			if (cap >= REPLY_MAX) {
				fprintf(stderr, "healthctl: reply from %s too large (more than %d MB), gave up\n",
					sock, REPLY_MAX >> 20);
				goto fail;
			}
			size_t ncap = cap ? cap * 2 : 65536;
			char *nb = realloc(buf, ncap > REPLY_MAX ? REPLY_MAX : ncap);

			if (!nb) {
				fprintf(stderr, "healthctl: out of memory reading the reply from %s\n", sock);
				goto fail;
			}
			buf = nb;
			cap = ncap > REPLY_MAX ? REPLY_MAX : ncap;
		}
		ssize_t n = read(fd, buf + len, cap - len - 1);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			fprintf(stderr, "healthctl: %s closed the connection without a reply\n", sock);
			goto fail;
		}
		if (memchr(buf + len, '\n', (size_t)n)) {
			len += (size_t)n;
			buf[len] = '\0';
			return buf;
		}
		len += (size_t)n;
	}
fail:
	free(buf);
	return NULL;
}

/* Send one request, read one reply line; returns the code or -1. */
static int request(const char *sock, const char *line, json_t **body)
{
	uint64_t deadline = mono_ms() + timeout_ms;
	char *buf = NULL;
	int fd = ctl_connect(sock), code = -1;

	*body = NULL;
	if (fd < 0)
		return -1;
	if (asprintf(&buf, "%s\n", line) < 0) {
		buf = NULL;
		goto out;
	}
	/* healthd may refuse and close before reading (too many clients):
	 * no SIGPIPE, and its reply is still read below. The line is short,
	 * so the socket buffer takes it whole. */
	if (send(fd, buf, strlen(buf), MSG_NOSIGNAL | MSG_DONTWAIT) < 0 && errno != EPIPE &&
	    errno != ECONNRESET) {
		fprintf(stderr, "healthctl: writing to %s: %s\n", sock, strerror(errno));
		goto out;
	}
	free(buf);
	if (!(buf = read_reply(fd, sock, deadline)))
		goto out;
	json_error_t je;
	char *sp = strchr(buf, ' ');
	if (!sp || sscanf(buf, "%d", &code) != 1 ||
	    !(*body = json_loads(sp + 1, JSON_DISABLE_EOF_CHECK, &je))) {
		fprintf(stderr, "healthctl: unreadable reply from %s: %.80s\n", sock, buf);
		code = -1;
	}
out:
	free(buf);
	close(fd);
	return code;
}

/* -s, else control.socket from the config read tolerantly (a file half
 * edited during an incident still names its socket), else the default. */
static const char *socket_path(const char *sock, const char *cfgpath)
{
	static char path[4096];
	char *text = NULL;
	size_t len = 0;
	FILE *f;
	int rc;

	if (sock)
		return sock;
	f = fopen(cfgpath ? cfgpath : DEFAULT_CONFIG, "re");
	if (!f) {
		if (cfgpath) {
			fprintf(stderr, "healthctl: %s: %s\n", cfgpath, strerror(errno));
			return NULL;
		}
		return DEFAULT_SOCKET;
	}
	text = malloc(CONFIG_MAX);
	if (text)
		len = fread(text, 1, CONFIG_MAX, f);
	fclose(f);
	rc = text ? ctl_socket_scan(text, len, path, sizeof(path)) : -ENOMEM;
	free(text);
	if (rc < 0) {
		fprintf(stderr, "healthctl: %s: control.socket: %s\n",
			cfgpath ? cfgpath : DEFAULT_CONFIG, strerror(-rc));
		return NULL;
	}
	return rc ? path : DEFAULT_SOCKET;
}

static int print_error(json_t *body)
{
	const char *e = json_string_value(json_object_get(body, "error"));

	fprintf(stderr, "healthctl: %s\n", e ? e : "request refused");
	return EX_REFUSED;
}

static int cmd_status(const char *sock, bool json, double watch)
{
	for (;;) {
		json_t *body;
		int code = request(sock, "status", &body);

		if (code < 0)
			return EX_UNREACHABLE;
		if (code != 200) {
			int rc = print_error(body);
			json_decref(body);
			return rc;
		}
		if (watch > 0 && isatty(1))
			printf("\033[H\033[2J");
		if (json) {
			char *s = json_dumps(body, JSON_INDENT(2));
			printf("%s\n", s);
			free(s);
		} else {
			char *s = hd_status_text(body);
			fputs(s ? s : "", stdout);
			free(s);
		}
		json_decref(body);
		fflush(stdout);
		if (watch <= 0)
			return EX_OK;
		usleep((useconds_t)(watch * 1e6));
	}
}

static int simple(const char *sock, const char *line, bool is_check)
{
	json_t *body;
	int code = request(sock, line, &body), rc = EX_OK;

	if (code < 0)
		return EX_UNREACHABLE;
	if (code != 200) {
		rc = print_error(body);
	} else if (is_check) {
		bool ok = json_is_true(json_object_get(body, "ok"));

		printf("%s/%s: %s, %s (%.1f ms)\n",
		       json_string_value(json_object_get(body, "service")),
		       json_string_value(json_object_get(body, "check")),
		       json_string_value(json_object_get(body, "result")),
		       json_string_value(json_object_get(body, "detail")),
		       json_real_value(json_object_get(body, "latency_ms")));
		rc = ok ? EX_OK : EX_CHECK_FAILED;
	} else {
		const char *v = json_string_value(json_object_get(body, "version"));

		if (v)
			printf("healthd %s (healthctl %s)\n", v, HEALTHD_VERSION);
		else
			printf("ok\n");
	}
	json_decref(body);
	return rc;
}

/* drain|undrain (SERVICE | --all) [--for DURATION] [--reason TEXT], the
 * options in any order, into the request line "CMD TARGET [DURATION]
 * [reason TEXT]". 0, or EX_USAGE_ after a message. */
static int drain_line(const char *cmd, char **args, int nargs, char *line, size_t len)
{
	const char *target = NULL, *dur = NULL, *reason = NULL;
	bool drain = !strcmp(cmd, "drain"), force = false;
	char err[128];
	uint64_t ms;

	for (int i = 0; i < nargs; i++) {
		const char *a = args[i];

		if (!strcmp(a, "--for") && drain) {
			if (i + 1 >= nargs || dur) {
				fprintf(stderr, "healthctl: %s\n", dur ? "--for given twice" : "--for needs a duration (e.g. 30s, 5m)");
				return EX_USAGE_;
			}
			dur = args[++i];
			int rc = cfg_parse_duration_max(dur, CFG_DRAIN_MAX_MS, &ms);

			if (rc == -ERANGE) {
				char max[32];

				cfg_format_duration(max, sizeof(max), CFG_DRAIN_MAX_MS);
				fprintf(stderr, "healthctl: drain --for '%s': too long (at most %s)\n",
					dur, max);
				return EX_USAGE_;
			}
			if (rc < 0) {
				fprintf(stderr, "healthctl: drain --for '%s': not a duration (e.g. 30s, 5m)\n", dur);
				return EX_USAGE_;
			}
		} else if (!strcmp(a, "--force") && drain && !force) {
			force = true;
		} else if (!strcmp(a, "--reason")) {
			if (i + 1 >= nargs || reason) {
				fprintf(stderr, "healthctl: %s\n", reason ? "--reason given twice" : "--reason needs a text");
				return EX_USAGE_;
			}
			reason = args[++i];
			if (ctl_text_check("reason", reason, SVC_REASON_MAX, err, sizeof(err)) < 0) {
				fprintf(stderr, "healthctl: %s\n", err);
				return EX_USAGE_;
			}
		} else if (!target && (!strcmp(a, "--all") || a[0] != '-')) {
			target = a;
		} else {
			fprintf(stderr, "healthctl: %s: unexpected '%s'\n", cmd, a);
			usage(stderr);
			return EX_USAGE_;
		}
	}
	if (!target) {
		fprintf(stderr, "healthctl: %s needs a SERVICE or --all\n", cmd);
		usage(stderr);
		return EX_USAGE_;
	}
	/* the server answers "no service" for names it lacks; a blank would
	 * split the request line */
	if (strpbrk(target, " \t") || ctl_text_check("service", target, 64, err, sizeof(err)) < 0) {
		fprintf(stderr, "healthctl: '%s' is not a service name ([a-z0-9_])\n", target);
		return EX_USAGE_;
	}
	snprintf(line, len, "%s %s%s%s%s%s%s", cmd, target, dur ? " " : "", dur ? dur : "",
		 force ? " force" : "", reason ? " reason " : "", reason ? reason : "");
	return 0;
}

/* Needs no healthd: reads the other tool's files, prints YAML on stdout. */
static int cmd_import(char **args, int nargs)
{
	char err[1024];
	int rc;

	if (nargs >= 2 && !strcmp(args[0], "anycast-healthchecker"))
		rc = imp_anycast_healthchecker(stdout, args + 1, nargs - 1, err, sizeof(err));
	else if (nargs >= 1 && !strcmp(args[0], "exabgp-healthcheck"))
		rc = imp_exabgp_healthcheck(stdout, args + 1, nargs - 1, err, sizeof(err));
	else {
		usage(stderr);
		return EX_USAGE_;
	}
	if (rc < 0) {
		fprintf(stderr, "healthctl: import %s: %s\n", args[0], err);
		return EX_IMPORT;
	}
	return EX_OK;
}

int main(int argc, char **argv)
{
	const char *sock = NULL, *cfgpath = NULL;
	char line[1024];
	int opt;

	while ((opt = getopt(argc, argv, "+c:s:T:h")) != -1) {
		switch (opt) {
		case 'c': cfgpath = optarg; break;
		case 's': sock = optarg; break;
		case 'T':
			if (cfg_parse_duration_max(optarg, 3600000, &timeout_ms) < 0 || !timeout_ms) {
				fprintf(stderr, "healthctl: -T '%s': not a duration from 1ms to 1h"
					" (e.g. 500ms, 5s)\n", optarg);
				return EX_USAGE_;
			}
			cfg_format_duration(timeout_str, sizeof(timeout_str), timeout_ms);
			break;
		case 'h': usage(stdout); return EX_OK;
		default: usage(stderr); return EX_USAGE_;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return EX_USAGE_;
	}
	const char *cmd = argv[optind];
	char **args = argv + optind + 1;
	int nargs = argc - optind - 1;

	if (!strcmp(cmd, "import"))
		return cmd_import(args, nargs);
	/* one request is one line: an argument must not start another */
	for (int i = optind; i < argc; i++)
		if (strpbrk(argv[i], "\r\n")) {
			fprintf(stderr, "healthctl: an argument may not contain a line break\n");
			return EX_USAGE_;
		}

	if (!strcmp(cmd, "version") && nargs == 0) {
		const char *p = socket_path(sock, cfgpath);
		if (!p || simple(p, "version", false) != EX_OK)
			printf("healthctl %s\n", HEALTHD_VERSION);
		return EX_OK;
	}
	const char *path = socket_path(sock, cfgpath);
	if (!path)
		return EX_UNREACHABLE;
	if (!strcmp(cmd, "status")) {
		bool json = false;
		double watch = 0;

		for (int i = 0; i < nargs; i++) {
			if (!strcmp(args[i], "--json")) {
				json = true;
			} else if (!strcmp(args[i], "--watch")) {
				watch = 1;
				if (i + 1 < nargs && atof(args[i + 1]) > 0)
					watch = atof(args[++i]);
			} else {
				usage(stderr);
				return EX_USAGE_;
			}
		}
		return cmd_status(path, json, watch);
	}
	if (!strcmp(cmd, "drain") || !strcmp(cmd, "undrain")) {
		int rc = drain_line(cmd, args, nargs, line, sizeof(line));

		return rc ? rc : simple(path, line, false);
	}
	if (!strcmp(cmd, "check") && nargs == 1) {
		snprintf(line, sizeof(line), "check %s", args[0]);
		return simple(path, line, true);
	}
	if (!strcmp(cmd, "reload") && nargs == 0)
		return simple(path, "reload", false);
	usage(stderr);
	return EX_USAGE_;
}
