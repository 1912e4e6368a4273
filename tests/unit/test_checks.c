/*
 * checks/: HTTP and TCP probes against real servers on 127.0.0.1
 * (tests/lib/testhttp.py) and real sockets; the TCP timeout runs in a
 * network namespace of its own where 192.0.2.2 never answers.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <unistd.h>
#include <criterion/criterion.h>
#include <curl/curl.h>

#include "checks/checks.h"
#include "tests/lib/testlib.h"

static uv_loop_t loop;
static struct check_engine *eng;
static struct testproc procs[4];
static int n_procs;

struct waiter {
	int n;                  /* results so far */
	int ok;                 /* of which CHECK_OK */
	struct check_result r;  /* the last one */
};

static void on_done(struct check *c, const struct check_result *r, void *arg)
{
	struct waiter *w = arg;

	(void)c;
	w->n++;
	w->ok += r->reason == CHECK_OK;
	w->r = *r;
}

static void setup(void)
{
	cr_assert_eq(uv_loop_init(&loop), 0);
	cr_assert_eq(check_engine_new(&loop, &eng), 0);
}

static void teardown(void)
{
	for (int i = 0; i < n_procs; i++)
		testproc_stop(&procs[i]);
	n_procs = 0;
}

/* Close the engine, let every handle close, and demand a clean loop. */
static void finish(void)
{
	check_engine_close(eng);
	eng = NULL;
	uv_run(&loop, UV_RUN_DEFAULT);
	cr_assert_eq(uv_loop_close(&loop), 0, "handles left open on the loop");
}

static void run_until(const int *n, int want)
{
	while (*n < want && uv_run(&loop, UV_RUN_ONCE))
		;
	cr_assert_geq(*n, want, "loop ran dry with %d of %d results", *n, want);
}

/* Start testhttp.py with the given arguments (NULL-terminated). */
static struct testproc *server(uint16_t *port, ...)
{
	char *argv[16] = { "python3", NULL };
	char script[512], line[64];
	struct testproc *p;
	int argc = 2, rc;
	va_list ap;

	cr_assert_lt(n_procs, 4);
	cr_assert_eq(testproc_srcpath(script, sizeof(script),
				      "tests/lib/testhttp.py"), 0);
	argv[1] = script;
	va_start(ap, port);
	for (char *a; (a = va_arg(ap, char *)) && argc < 15;)
		argv[argc++] = a;
	va_end(ap);
	argv[argc] = NULL;
	p = &procs[n_procs++];
	cr_assert_eq(testproc_start(p, argv), 0);
	rc = testproc_read_line(p, line, sizeof(line), 15000);
	cr_assert_eq(rc, 0, "testhttp.py did not start: %s", strerror(-rc));
	*port = (uint16_t)atoi(line);
	cr_assert_gt(*port, 0);
	return p;
}

/* The next server event line beginning with prefix. */
static void expect_line(struct testproc *p, const char *prefix, char *line,
			size_t len)
{
	int rc = testproc_read_line(p, line, len, 5000);

	cr_assert_eq(rc, 0, "no line from the server: %s", strerror(-rc));
	cr_assert(strncmp(line, prefix, strlen(prefix)) == 0,
		  "expected \"%s...\", the server said \"%s\"", prefix, line);
}

/* A listening socket: the kernel completes handshakes without accept(). */
static int listener(int family, uint16_t *port)
{
	struct sockaddr_storage ss = { .ss_family = (sa_family_t)family };
	socklen_t sl = family == AF_INET ? sizeof(struct sockaddr_in) :
					   sizeof(struct sockaddr_in6);
	int fd = socket(family, SOCK_STREAM, 0);

	cr_assert_geq(fd, 0);
	if (family == AF_INET)
		((struct sockaddr_in *)&ss)->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	else
		((struct sockaddr_in6 *)&ss)->sin6_addr = in6addr_loopback;
	cr_assert_eq(bind(fd, (struct sockaddr *)&ss, sl), 0);
	cr_assert_eq(listen(fd, 16), 0);
	cr_assert_eq(getsockname(fd, (struct sockaddr *)&ss, &sl), 0);
	*port = ntohs(family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port :
					  ((struct sockaddr_in6 *)&ss)->sin6_port);
	return fd;
}

/* A port that was listened on and then closed: nothing is there now. */
static uint16_t closed_port(void)
{
	uint16_t port;

	close(listener(AF_INET, &port));
	return port;
}

static struct cfg_check http_cfg(const char *url, uint64_t timeout_ms)
{
	return (struct cfg_check){ .name = "probe", .type = "http",
		.url = (char *)url, .timeout_ms = timeout_ms, .tls_verify = true };
}

static struct cfg_check tcp_cfg(const char *host, uint16_t port,
				uint64_t timeout_ms)
{
	return (struct cfg_check){ .name = "probe", .type = "tcp",
		.host = (char *)host, .port = port, .timeout_ms = timeout_ms };
}

/* One probe of cfg; the result lands in w. */
static void probe_once(const struct cfg_check *cfg, struct waiter *w)
{
	struct check *c;

	cr_assert_eq(check_new(eng, cfg, on_done, w, &c), 0);
	cr_assert_eq(check_start(c), 0);
	cr_assert_eq(w->n, 0, "reported from inside check_start()");
	run_until(&w->n, 1);
	check_destroy(c);
}

static char url[256];

static const char *local_url(const char *scheme, uint16_t port,
			     const char *path)
{
	snprintf(url, sizeof(url), "%s://127.0.0.1:%u%s", scheme, port, path);
	return url;
}

TestSuite(checks, .init = setup, .fini = teardown, .timeout = 60);

/* The registry, the reason table, and what bad settings and this libcurl
 * (it must resolve names without blocking the loop) lead to. */
Test(checks, registry_reasons_and_setup)
{
	const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
	struct cfg_check gopher = http_cfg("http://127.0.0.1/", 1000);
	struct cfg_check nourl = http_cfg(NULL, 1000);
	struct cfg_check noport = tcp_cfg("127.0.0.1", 0, 1000);
	const char *const *t = check_types();
	struct check *c;
	int seen = 0;

	cr_assert_eq(check_ops_find("http"), &check_http_ops);
	cr_assert_eq(check_ops_find("tcp"), &check_tcp_ops);
	cr_assert_null(check_ops_find("gopher"));
	for (; *t; t++)
		seen |= (strcmp(*t, "http") == 0) | (strcmp(*t, "tcp") == 0) << 1;
	cr_assert_eq(seen, 3);
	for (int i = 0; i < CHECK_REASONS; i++) {
		cr_assert_str_neq(check_reason_str(i), "unknown", "reason %d", i);
		for (int j = 0; j < i; j++)
			cr_assert_str_neq(check_reason_str(i), check_reason_str(j));
	}
	cr_assert_str_eq(check_reason_str(CHECK_REASONS), "unknown");
	gopher.type = "gopher";
	cr_assert_eq(check_new(eng, &gopher, on_done, NULL, &c), -ENOENT);
	cr_assert_eq(check_new(eng, &nourl, on_done, NULL, &c), -EINVAL);
	cr_assert_eq(check_new(eng, &noport, on_done, NULL, &c), -EINVAL);
	cr_assert(v->features & CURL_VERSION_ASYNCHDNS,
		  "libcurl %s lacks AsynchDNS", v->version);
	finish();
}

/* One probe carries the configured headers and the user agent; a second
 * check of the same server goes through curl's resolver for a name. */
Test(checks, http_ok)
{
	struct waiter w = { 0 }, named = { 0 };
	struct cfg_header hdrs[] = {
		{ .name = "X-Probe", .value = "abc" },
		{ .name = "Authorization", .value = "Bearer t0ken" },
	};
	struct testproc *p;
	struct check *c;
	char line[1024], u[128];
	uint16_t port;

	p = server(&port, NULL);
	struct cfg_check cfg = http_cfg(local_url("http", port, "/healthz"), 2000);
	cfg.headers = hdrs;
	cfg.n_headers = 2;
	cr_assert_eq(check_new(eng, &cfg, on_done, &w, &c), 0);
	cr_assert_eq(check_start(c), 0);
	cr_assert_eq(check_start(c), -EBUSY);
	run_until(&w.n, 1);
	cr_assert_eq(w.r.reason, CHECK_OK, "%s", w.r.detail);
	cr_assert_eq(w.r.http_status, 200);
	cr_assert_gt(w.r.latency_us, 0);
	cr_assert_not(c->running);
	check_destroy(c);
	expect_line(p, "conn 1", line, sizeof(line));
	expect_line(p, "req conn=1 sni=- path=/healthz", line, sizeof(line));
	cr_assert(strstr(line, "|X-Probe: abc"), "%s", line);
	cr_assert(strstr(line, "|Authorization: Bearer t0ken"), "%s", line);
	cr_assert(strstr(line, "|User-Agent: healthd/"), "%s", line);

	snprintf(u, sizeof(u), "http://localhost:%u/", port);
	struct cfg_check byname = http_cfg(u, 5000);
	probe_once(&byname, &named);
	cr_assert_eq(named.r.reason, CHECK_OK, "%s", named.r.detail);
	finish();
}

/* Status against expect_status, then body against expect_body. */
Test(checks, http_status_and_body)
{
	struct waiter bad = { 0 }, good = { 0 }, found = { 0 }, lacking = { 0 };
	int want[] = { 200, 204 };
	uint16_t port;

	server(&port, NULL);
	struct cfg_check cfg = http_cfg(local_url("http", port, "/status/503"), 2000);
	probe_once(&cfg, &bad);
	cr_assert_eq(bad.r.reason, CHECK_STATUS);
	cr_assert_eq(bad.r.http_status, 503);
	cr_assert(strstr(bad.r.detail, "status 503 (expected 200)"), "%s",
		  bad.r.detail);
	cr_assert(strstr(bad.r.detail, url), "names the URL: %s", bad.r.detail);

	struct cfg_check list = http_cfg(local_url("http", port, "/status/204"), 2000);
	list.expect_status = want;
	list.n_expect_status = 2;
	probe_once(&list, &good);
	cr_assert_eq(good.r.reason, CHECK_OK, "%s", good.r.detail);
	cr_assert_eq(good.r.http_status, 204);

	struct cfg_check body = http_cfg(local_url("http", port, "/"), 2000);
	body.expect_body = "ok conn=";
	probe_once(&body, &found);
	cr_assert_eq(found.r.reason, CHECK_OK, "%s", found.r.detail);
	body.expect_body = "degraded";
	probe_once(&body, &lacking);
	cr_assert_eq(lacking.r.reason, CHECK_BODY);
	cr_assert(strstr(lacking.r.detail, "\"degraded\""), "%s", lacking.r.detail);
	finish();
}

/* Only the first 64 KiB are kept and searched. */
Test(checks, http_body_is_cut_at_64k)
{
	struct waiter late = { 0 }, early = { 0 };
	uint16_t port;

	server(&port, "--pad", "200000", "--body", "needle", NULL);
	struct cfg_check cfg = http_cfg(local_url("http", port, "/"), 5000);
	cfg.expect_body = "needle";
	probe_once(&cfg, &late);
	cr_assert_eq(late.r.reason, CHECK_BODY, "%s", late.r.detail);
	cr_assert(strstr(late.r.detail, "64 KiB"), "%s", late.r.detail);
	cfg.expect_body = "xxxxxxxx";
	probe_once(&cfg, &early);
	cr_assert_eq(early.r.reason, CHECK_OK, "%s", early.r.detail);
	finish();
}

/* No reply at all, and a body too slow to finish: both end at the
 * check's timeout, told by the callback. */
Test(checks, http_times_out)
{
	struct waiter hang = { 0 }, slow = { 0 };
	uint16_t p1, p2;

	server(&p1, "--mode", "hang", NULL);
	server(&p2, "--mode", "slow", "--body", "0123456789abcdef", NULL);
	struct cfg_check c1 = http_cfg(local_url("http", p1, "/"), 300);
	probe_once(&c1, &hang);
	cr_assert_eq(hang.r.reason, CHECK_TIMEOUT, "%s", hang.r.detail);
	cr_assert_geq(hang.r.latency_us, 300 * 1000);
	/* Bounded by the check's timeout, not by some default of curl's. */
	cr_assert_lt(hang.r.latency_us, 3 * 1000 * 1000);
	struct cfg_check c2 = http_cfg(local_url("http", p2, "/"), 300);
	probe_once(&c2, &slow);
	cr_assert_eq(slow.r.reason, CHECK_TIMEOUT, "%s", slow.r.detail);
	cr_assert_geq(slow.r.latency_us, 300 * 1000);
	finish();
}

/* Refused (a port bound, then closed) and closed without a reply. */
Test(checks, http_refused_and_closed)
{
	struct waiter refused = { 0 }, closed = { 0 };
	uint16_t port;

	struct cfg_check cfg = http_cfg(local_url("http", closed_port(), "/"), 2000);
	probe_once(&cfg, &refused);
	cr_assert_eq(refused.r.reason, CHECK_REFUSED, "%s", refused.r.detail);
	cr_assert(strstr(refused.r.detail, url), "%s", refused.r.detail);
	server(&port, "--mode", "close", NULL);
	struct cfg_check cl = http_cfg(local_url("http", port, "/"), 2000);
	probe_once(&cl, &closed);
	cr_assert_eq(closed.r.reason, CHECK_IO, "%s", closed.r.detail);
	finish();
}

/* A password in the URL goes on the wire but never into a detail, which
 * reaches the logs and /status: refused, bad status, and passed. */
Test(checks, http_detail_hides_the_password)
{
	struct waiter refused = { 0 }, bad = { 0 }, ok = { 0 };
	char u[128], want[128], line[1024];
	struct testproc *p;
	uint16_t port = closed_port();

	snprintf(u, sizeof(u), "http://probe:s3cr3t@127.0.0.1:%u/healthz", port);
	struct cfg_check cfg = http_cfg(u, 2000);
	probe_once(&cfg, &refused);
	cr_assert_eq(refused.r.reason, CHECK_REFUSED, "%s", refused.r.detail);
	snprintf(want, sizeof(want), "connect to http://probe:***@127.0.0.1:%u/healthz refused",
		 port);
	cr_assert_str_eq(refused.r.detail, want);
	p = server(&port, NULL);
	snprintf(u, sizeof(u), "http://probe:s3cr3t@127.0.0.1:%u/healthz", port);
	struct cfg_check good = http_cfg(u, 2000);
	probe_once(&good, &ok);
	cr_assert_eq(ok.r.reason, CHECK_OK, "%s", ok.r.detail);
	cr_assert_null(strstr(ok.r.detail, "s3cr3t"), "%s", ok.r.detail);
	cr_assert(strstr(ok.r.detail, "probe:***@"), "%s", ok.r.detail);
	expect_line(p, "conn 1", line, sizeof(line));
	expect_line(p, "req conn=1", line, sizeof(line));
	/* base64("probe:s3cr3t") */
	cr_assert(strstr(line, "|Authorization: Basic cHJvYmU6czNjcjN0"), "%s", line);
	snprintf(u, sizeof(u), "http://probe:s3cr3t@127.0.0.1:%u/missing", port);
	struct cfg_check missing = http_cfg(u, 2000);
	missing.expect_status = (int[]){ 204 };
	missing.n_expect_status = 1;
	probe_once(&missing, &bad);
	cr_assert_eq(bad.r.reason, CHECK_STATUS, "%s", bad.r.detail);
	cr_assert_null(strstr(bad.r.detail, "s3cr3t"), "%s", bad.r.detail);
	finish();
}

/* A self-signed certificate fails verification; without verification it
 * passes, and connect_to dials the local address while the public name
 * goes out as SNI and Host. */
Test(checks, https)
{
	struct waiter strict = { 0 }, lax = { 0 }, w = { 0 };
	struct testproc *p;
	char u[128], via[64], host[96], line[1024];
	uint16_t port;

	p = server(&port, "--tls", NULL);
	struct cfg_check local = http_cfg(local_url("https", port, "/"), 3000);
	probe_once(&local, &strict);
	cr_assert_eq(strict.r.reason, CHECK_TLS, "%s", strict.r.detail);
	local.tls_verify = false;
	probe_once(&local, &lax);
	cr_assert_eq(lax.r.reason, CHECK_OK, "%s", lax.r.detail);
	snprintf(u, sizeof(u), "https://www.example.net:%u/healthz", port);
	snprintf(via, sizeof(via), "127.0.0.1:%u", port);
	snprintf(host, sizeof(host), "host=www.example.net:%u sni=www.example.net",
		 port);
	struct cfg_check cfg = http_cfg(u, 3000);
	cfg.connect_to = via;
	cfg.tls_verify = false;
	cfg.expect_body = host;
	probe_once(&cfg, &w);
	cr_assert_eq(w.r.reason, CHECK_OK, "%s", w.r.detail);
	do /* skip the lines of the first two probes */
		expect_line(p, "", line, sizeof(line));
	while (!strstr(line, "path=/healthz"));
	cr_assert(strstr(line, " sni=www.example.net "), "%s", line);
	snprintf(host, sizeof(host), "Host: www.example.net:%u", port);
	cr_assert(strstr(line, host), "%s", line);
	finish();
}

/* Three probes, one TCP connection; then the server dies and the next
 * probe on the kept connection still finds out. */
Test(checks, http_keepalive_and_dead_server)
{
	struct waiter w = { 0 };
	struct testproc *p;
	struct check *c;
	char line[1024];
	uint16_t port;

	p = server(&port, NULL);
	struct cfg_check cfg = http_cfg(local_url("http", port, "/ka"), 2000);
	cfg.expect_body = "ok conn=1 ";
	cr_assert_eq(check_new(eng, &cfg, on_done, &w, &c), 0);
	for (int i = 1; i <= 3; i++) {
		cr_assert_eq(check_start(c), 0);
		run_until(&w.n, i);
		cr_assert_eq(w.r.reason, CHECK_OK, "probe %d: %s", i, w.r.detail);
	}
	expect_line(p, "conn 1", line, sizeof(line));
	for (int i = 0; i < 3; i++)
		expect_line(p, "req conn=1 ", line, sizeof(line));
	testproc_stop(p);
	cr_assert_eq(check_start(c), 0);
	run_until(&w.n, 4);
	cr_assert_eq(w.r.reason, CHECK_REFUSED, "%s", w.r.detail);
	check_destroy(c);
	finish();
}

Test(checks, http_many_at_once)
{
	enum { N = 200 };
	static struct check *cs[N];
	struct waiter w = { 0 };
	uint16_t port;

	server(&port, "--quiet", NULL);
	struct cfg_check cfg = http_cfg(local_url("http", port, "/"), 20000);
	for (int i = 0; i < N; i++) {
		cr_assert_eq(check_new(eng, &cfg, on_done, &w, &cs[i]), 0);
		cr_assert_eq(check_start(cs[i]), 0);
	}
	run_until(&w.n, N);
	cr_assert_eq(w.ok, N, "last failure: %s", w.r.detail);
	for (int i = 0; i < N; i++)
		check_destroy(cs[i]);
	finish();
}

Test(checks, tcp_ok_and_refused)
{
	struct waiter w4 = { 0 }, w6 = { 0 }, wn = { 0 }, wr = { 0 };
	char want[64];
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai;
	uint16_t p4, p6, pn;
	int fd4 = listener(AF_INET, &p4), fd6 = listener(AF_INET6, &p6), fdn;

	struct cfg_check c4 = tcp_cfg("127.0.0.1", p4, 2000);
	probe_once(&c4, &w4);
	cr_assert_eq(w4.r.reason, CHECK_OK, "%s", w4.r.detail);
	cr_assert_gt(w4.r.latency_us, 0);
	struct cfg_check c6 = tcp_cfg("::1", p6, 2000);
	probe_once(&c6, &w6);
	cr_assert_eq(w6.r.reason, CHECK_OK, "%s", w6.r.detail);
	cr_assert(strstr(w6.r.detail, "[::1]:"), "%s", w6.r.detail);
	/* A name goes through uv_getaddrinfo; listen where it points first. */
	cr_assert_eq(getaddrinfo("localhost", NULL, &hints, &ai), 0);
	fdn = listener(ai->ai_family, &pn);
	freeaddrinfo(ai);
	struct cfg_check cn = tcp_cfg("localhost", pn, 5000);
	probe_once(&cn, &wn);
	cr_assert_eq(wn.r.reason, CHECK_OK, "%s", wn.r.detail);
	struct cfg_check cr = tcp_cfg("127.0.0.1", closed_port(), 2000);
	probe_once(&cr, &wr);
	cr_assert_eq(wr.r.reason, CHECK_REFUSED, "%s", wr.r.detail);
	snprintf(want, sizeof(want), "127.0.0.1:%u refused", cr.port);
	cr_assert(strstr(wr.r.detail, want), "%s", wr.r.detail);
	close(fd4);
	close(fd6);
	close(fdn);
	finish();
}

/* A mount namespace of this test process only, where /etc/hosts is HOSTS
 * (bind-mounted over it; the real file is untouched). */
static void private_hosts(const char *hosts)
{
	char path[64];
	FILE *f;

	if (unshare(CLONE_NEWNS) < 0)
		cr_skip_test("unshare(CLONE_NEWNS): %s", strerror(errno));
	cr_assert_eq(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL), 0, "%s",
		     strerror(errno));
	snprintf(path, sizeof(path), "/tmp/healthd-hosts.%d", (int)getpid());
	cr_assert_not_null(f = fopen(path, "w"));
	fputs(hosts, f);
	fclose(f);
	cr_assert_eq(mount(path, "/etc/hosts", NULL, MS_BIND, NULL), 0, "%s",
		     strerror(errno));
	unlink(path);
}

/* localhost is ::1 first, the service listens on 127.0.0.1 only: the
 * probe goes on to the next address and says which one answered. */
Test(checks, tcp_tries_every_address)
{
	struct waiter ok = { 0 }, bad = { 0 };
	struct sockaddr_in6 six = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai;
	char want[128];
	uint16_t port;
	int fd4, fd6;

	private_hosts("::1 localhost\n127.0.0.1 localhost\n");
	cr_assert_eq(getaddrinfo("localhost", NULL, &hints, &ai), 0);
	cr_assert_eq(ai->ai_family, AF_INET6, "localhost is not ::1 first here");
	freeaddrinfo(ai);
	fd4 = listener(AF_INET, &port);
	/* [::1]:port bound but not listening: refused for sure. */
	fd6 = socket(AF_INET6, SOCK_STREAM, 0);
	six.sin6_port = htons(port);
	cr_assert_eq(bind(fd6, (struct sockaddr *)&six, sizeof(six)), 0, "%s", strerror(errno));
	struct cfg_check cfg = tcp_cfg("localhost", port, 5000);
	probe_once(&cfg, &ok);
	cr_assert_eq(ok.r.reason, CHECK_OK, "%s", ok.r.detail);
	snprintf(want, sizeof(want), "connected to 127.0.0.1:%u (after [::1]:%u refused)",
		 port, port);
	cr_assert_str_eq(ok.r.detail, want);
	close(fd4);
	probe_once(&cfg, &bad);
	cr_assert_eq(bad.r.reason, CHECK_REFUSED, "%s", bad.r.detail);
	snprintf(want, sizeof(want),
		 "connect to localhost:%u failed: [::1]:%u refused, 127.0.0.1:%u refused",
		 port, port, port);
	cr_assert_str_eq(bad.r.detail, want);
	close(fd6);
	finish();
}

/* A namespace of this test process only: 192.0.2.0/24 on a veth whose peer
 * drops everything (a permanent neighbour entry, so no ARP failure), and
 * no route at all to 198.51.100.0/24. It goes away with the process. */
static void blackhole_netns(void)
{
	if (unshare(CLONE_NEWNET) < 0)
		cr_skip_test("unshare(CLONE_NEWNET): %s", strerror(errno));
	int rc = system("ip link set lo up && "
			"ip link add hd0 type veth peer name hd1 && "
			"ip addr add 192.0.2.1/24 dev hd0 && "
			"ip link set hd1 up && ip link set hd0 up && "
			"ip neigh replace 192.0.2.2 lladdr 02:00:00:00:00:02 "
			"dev hd0 nud permanent");
	if (rc != 0)
		cr_skip_test("cannot build the test namespace (veth missing?)");
}

Test(checks, tcp_timeout_and_unreachable)
{
	struct waiter slow = { 0 }, nowhere = { 0 }, h = { 0 };

	blackhole_netns();
	struct cfg_check cfg = tcp_cfg("192.0.2.2", 80, 300);
	probe_once(&cfg, &slow);
	cr_assert_eq(slow.r.reason, CHECK_TIMEOUT, "%s", slow.r.detail);
	cr_assert_geq(slow.r.latency_us, 300 * 1000);
	cr_assert_lt(slow.r.latency_us, 3 * 1000 * 1000);

	/* connect() fails at once; still reported from the loop. */
	struct cfg_check far = tcp_cfg("198.51.100.1", 80, 300);
	probe_once(&far, &nowhere);
	cr_assert_eq(nowhere.r.reason, CHECK_UNREACHABLE, "%s", nowhere.r.detail);

	/* curl's connect timeout is the check's timeout too. */
	struct cfg_check web = http_cfg("http://192.0.2.2/", 300);
	probe_once(&web, &h);
	cr_assert_eq(h.r.reason, CHECK_TIMEOUT, "%s", h.r.detail);
	cr_assert_geq(h.r.latency_us, 300 * 1000);
	finish();
}

/* Cancel or destroy the checks once the server has the request. */
struct in_flight {
	uv_poll_t poll;
	struct testproc *proc;
	struct check *http, *tcp;
	void (*stop)(struct check *c);   /* check_cancel or check_destroy */
	bool seen;
};

static void on_server_line(uv_poll_t *h, int status, int events)
{
	struct in_flight *f = h->data;
	char line[1024];

	(void)status;
	(void)events;
	while (testproc_read_line(f->proc, line, sizeof(line), 0) == 0) {
		if (strncmp(line, "req ", 4) != 0 || f->seen)
			continue;
		f->seen = true;
		cr_assert(f->http->running);
		cr_assert(f->tcp->running);
		f->stop(f->http);
		f->stop(f->tcp);
		uv_close((uv_handle_t *)&f->poll, NULL);
		return;
	}
}

static void abort_in_flight(void (*stop)(struct check *c))
{
	struct waiter w = { 0 };
	struct in_flight f = { .stop = stop };
	uint16_t port;

	f.proc = server(&port, "--mode", "hang", NULL);
	struct cfg_check hc = http_cfg(local_url("http", port, "/"), 2000);
	struct cfg_check tc = tcp_cfg("192.0.2.2", 80, 2000);
	cr_assert_eq(check_new(eng, &hc, on_done, &w, &f.http), 0);
	cr_assert_eq(check_new(eng, &tc, on_done, &w, &f.tcp), 0);
	cr_assert_eq(uv_poll_init(&loop, &f.poll, f.proc->out), 0);
	f.poll.data = &f;
	cr_assert_eq(uv_poll_start(&f.poll, UV_READABLE, on_server_line), 0);
	cr_assert_eq(check_start(f.http), 0);
	cr_assert_eq(check_start(f.tcp), 0);
	/* Runs until nothing is left: both probes' timeouts would have passed. */
	uv_run(&loop, UV_RUN_DEFAULT);
	cr_assert(f.seen, "the server never got the request");
	cr_assert_eq(w.n, 0, "a cancelled probe reported: %s", w.r.detail);
	if (stop == check_cancel) {
		cr_assert_not(f.http->running);
		check_destroy(f.http);
		check_destroy(f.tcp);
	}
	finish();
}

Test(checks, cancel_in_flight)
{
	blackhole_netns();
	abort_in_flight(check_cancel);
}

Test(checks, destroy_in_flight)
{
	blackhole_netns();
	abort_in_flight(check_destroy);
}

/* The done callback may start the next probe or destroy its own check. */
static void restart_then_destroy(struct check *c, const struct check_result *r,
				 void *arg)
{
	struct waiter *w = arg;

	on_done(c, r, arg);
	if (w->n < 3)
		cr_assert_eq(check_start(c), 0);
	else
		check_destroy(c);
}

Test(checks, callback_restarts_and_destroys)
{
	struct waiter w = { 0 }, hw = { 0 };
	struct check *c, *h;
	struct cfg_check cfg = tcp_cfg("127.0.0.1", closed_port(), 1000);
	struct cfg_check hc = http_cfg(local_url("http", closed_port(), "/"), 1000);

	cr_assert_eq(check_new(eng, &cfg, restart_then_destroy, &w, &c), 0);
	cr_assert_eq(check_new(eng, &hc, restart_then_destroy, &hw, &h), 0);
	cr_assert_eq(check_start(c), 0);
	cr_assert_eq(check_start(h), 0);
	run_until(&w.n, 3);
	run_until(&hw.n, 3);
	cr_assert_eq(w.r.reason, CHECK_REFUSED);
	cr_assert_eq(hw.r.reason, CHECK_REFUSED);
	finish();
}

/* A detail is JSON text: bytes that are not UTF-8 (a character cut by the
 * length limit, a server's Latin-1) become '?', valid text stays. */
Test(checks, detail_is_always_utf8)
{
	char cut[] = "caf\xc3";                 /* the limit cut a 2-byte character */
	char latin1[] = "caf\xe9 ok";
	char good[] = "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80";
	char bad[] = "\xc0\xaf \xed\xa0\x80 \xf4\x90\x80\x80";   /* overlong, surrogate, > U+10FFFF */

	check_detail_clean(cut);
	cr_assert_str_eq(cut, "caf?");
	check_detail_clean(latin1);
	cr_assert_str_eq(latin1, "caf? ok");
	check_detail_clean(good);
	cr_assert_str_eq(good, "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
	check_detail_clean(bad);
	cr_assert_str_eq(bad, "?? ??? ????");
	for (char *t[] = { cut, latin1, good, bad }, **p = t; p < t + 4; p++) {
		json_t *j = json_string(*p);

		cr_assert_not_null(j, "jansson takes %s", *p);
		json_decref(j);
	}
}
