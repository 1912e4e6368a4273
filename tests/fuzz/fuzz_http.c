/*
 * fuzz_http — bytes from a client through a real libmicrohttpd daemon
 * started as httpd.c starts it (httpd_new_unbound: no listening socket),
 * to the real /health, /status and /metrics handlers over a daemon state
 * of two services. The input goes down one end of a socketpair handed to
 * MHD_add_connection; MHD runs a bounded number of times. A reply, if
 * any, starts with "HTTP/1.x NNN ".
 */
#include <ctype.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <microhttpd.h>

#include "healthd/internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define RUNS 32

static const char yaml[] =
	"node: fuzz\n"
	"services:\n"
	"  - name: dns\n"
	"    prefixes: [\"192.0.2.53/32\"]\n"
	"    checks:\n"
	"      - {name: port53, type: tcp, host: 127.0.0.1, port: 53}\n"
	"  - name: web\n"
	"    prefixes: [\"198.51.100.80/32\", \"2001:db8::80/128\"]\n"
	"    checks:\n"
	"      - {name: port80, type: tcp, host: 127.0.0.1, port: 80}\n";

static uv_loop_t loop;
static struct hd hd;
static struct MHD_Daemon *mhd;

/* The daemon's state, as daemon.c builds it, minus probes and BIRD. */
static void setup(void)
{
	struct httpd *h;
	char err[256];

	signal(SIGPIPE, SIG_IGN);
	hd_log_init(false, false);
	if (uv_loop_init(&loop) < 0 ||
	    !(hd.cfg = cfg_load_string("fuzz.yaml", yaml, sizeof(yaml) - 1, err, sizeof(err))))
		abort();
	hd.loop = &loop;
	hd.started_wall = time(NULL);
	hd.svcs = calloc(hd.cfg->n_services, sizeof(*hd.svcs));
	for (size_t i = 0; hd.svcs && i < hd.cfg->n_services; i++) {
		struct hd_service *hs = calloc(1, sizeof(*hs));

		if (!hs || svc_init(&hs->svc, &hd.cfg->services[i], 0) < 0 ||
		    !(hs->probes = calloc(hs->svc.n_checks + 1, sizeof(*hs->probes))))
			abort();
		hs->hd = &hd;
		hs->svc.state = i == 0 ? SVC_UP : SVC_WITHDRAWN;
		hd.svcs[hd.n_svcs++] = hs;
	}
	if (!hd.svcs || httpd_new_unbound(&hd, &h, &mhd) < 0)
		abort();
}

/* "HTTP/1.x NNN " */
static bool status_line_ok(const char *r, size_t n)
{
	return n >= 13 && !memcmp(r, "HTTP/1.", 7) && isdigit((unsigned char)r[7]) &&
	       r[8] == ' ' && isdigit((unsigned char)r[9]) && isdigit((unsigned char)r[10]) &&
	       isdigit((unsigned char)r[11]) && r[12] == ' ';
}

/* Runs MHD until the reply stops growing or the connection closes. */
static size_t exchange(int fd, char *reply, size_t cap)
{
	size_t len = 0;
	int quiet = 0;

	for (int i = 0; i < RUNS; i++) {
		ssize_t n;

		MHD_run(mhd);
		n = recv(fd, reply + len, cap - len, MSG_DONTWAIT);
		if (n == 0)
			break;
		if (n > 0) {
			len += (size_t)n;
			quiet = 0;
			if (len == cap)
				break;
		} else if (len && ++quiet >= 2) {
			break;   /* answered; a kept-alive connection says no more */
		}
	}
	return len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char reply[256 * 1024];
	struct sockaddr_in peer = { .sin_family = AF_INET, .sin_port = htons(40000),
				    .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	const union MHD_DaemonInfo *info;
	size_t len, off = 0;
	int sv[2];

	if (!mhd)
		setup();
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
		abort();
	if (MHD_add_connection(mhd, sv[0], (struct sockaddr *)&peer, sizeof(peer)) != MHD_YES)
		abort();   /* MHD closed sv[0]: connections are leaking */
	while (off < size) {
		ssize_t n = send(sv[1], data + off, size - off, MSG_NOSIGNAL);

		if (n <= 0)
			break;   /* what does not fit in the socket buffer is not sent */
		off += (size_t)n;
	}
	len = exchange(sv[1], reply, sizeof(reply));
	if (len && !status_line_ok(reply, len))
		abort();
	close(sv[1]);
	/* MHD sees the close and frees the connection */
	for (int i = 0; i < RUNS; i++) {
		MHD_run(mhd);
		info = MHD_get_daemon_info(mhd, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
		if (info && info->num_connections == 0)
			break;
	}
	return 0;
}
