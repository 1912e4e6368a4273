"""DNS probes: N `type: dns` checks at 1 s against a local unbound.

unbound answers www.example.net from local data on a free port of
127.0.0.1; healthd asks it over UDP. CPU per probe is healthd's CPU time
over the window divided by the probes its counters report; lateness is the
scheduler's histogram over the same window.
"""
import os
import tempfile
import time

import engine
import procs


def _unbound_start(d, port):
    conf = os.path.join(d, "unbound.conf")
    with open(conf, "w") as f:
        f.write("\n".join([
            "server:", "  interface: 127.0.0.1", "  port: %d" % port, "  do-ip6: no",
            "  do-tcp: no", "  access-control: 127.0.0.0/8 allow",
            '  username: ""', '  chroot: ""', '  directory: "%s"' % d,
            '  pidfile: "%s/unbound.pid"' % d, "  use-syslog: no",
            '  logfile: "%s/unbound.log"' % d, "  num-threads: 1",
            '  module-config: "iterator"', '  local-zone: "example.net." static',
            '  local-data: "www.example.net. 300 IN A 192.0.2.1"',
            "remote-control:", "  control-enable: no", ""]))
    p = procs.start(["unbound", "-d", "-c", conf], os.path.join(d, "unbound.out"))
    procs.wait_until(10, "unbound listening", lambda: p.poll() is None and
                     "start of service" in open(os.path.join(d, "unbound.log")).read()
                     if os.path.exists(os.path.join(d, "unbound.log")) else False)
    return p


def _config(d, bird_sock, n, port):
    lines = ["node: bench", "bird:", "  socket: %s" % bird_sock,
             "  include: %s/healthd.conf" % d, "control:", "  socket: %s/healthd.sock" % d,
             "defaults:", "  interval: 1s", "  timeout: 1s", "  rise: 2", "  fall: 2",
             "services:", "  - name: dns", '    prefixes: ["192.0.2.53/32"]', "    checks:"]
    for c in range(n):
        lines += ["      - name: d%d" % c, "        type: dns", "        qname: www.example.net",
                  '        server: "127.0.0.1:%d"' % port, '        expect_answer: "192.0.2.1"']
    path = os.path.join(d, "healthd.yaml")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def run(ctx, quick, say, n=200):
    warmup, window = (2, 5) if quick else (5, 20)
    d = tempfile.mkdtemp(prefix="dns.", dir=ctx.tmp)
    port = procs.free_port()
    say("dns: %d checks at 1 s against a local unbound (%d s warm-up, %d s window)"
        % (n, warmup, window))
    ub = _unbound_start(d, port)
    bird, bsock = procs.bird_start(d)
    hd, sock = procs.healthd_start(ctx.build, d, _config(d, bsock, n, port))
    try:
        time.sleep(1 + warmup)
        sa = procs.status(ctx.build, sock)
        a = {"t": time.monotonic(), "cpu": procs.cpu_seconds(hd.pid)}
        time.sleep(window)
        b = {"t": time.monotonic(), "cpu": procs.cpu_seconds(hd.pid)}
        sb = procs.status(ctx.build, sock)
    finally:
        rc = procs.stop(hd)
        procs.stop(bird)
        procs.stop(ub)
    ok1, bad1 = engine.probe_totals(sa)
    ok2, bad2 = engine.probe_totals(sb)
    probes = ok2 - ok1
    cpu = b["cpu"][0] - a["cpu"][0]
    return {"checks": n, "window_s": round(b["t"] - a["t"], 2), "probes": probes,
            "probes_per_s": probes / (b["t"] - a["t"]), "probes_failed": bad2 - bad1,
            "cpu_s": cpu, "cpu_us_per_probe": cpu / probes * 1e6 if probes > 0 else None,
            "lateness": engine.hist_quantiles(engine.lateness_hist(sa), engine.lateness_hist(sb)),
            "exit": rc}


def line(f):
    if not f:
        return "dns: not measured"
    late = f.get("lateness") or {}
    return ("dns: %d checks, %.0f probes/s, %d failed, CPU %s us per probe, "
            "lateness p50 %s ms p99 %s ms" % (
                f["checks"], f["probes_per_s"], f["probes_failed"],
                "%.1f" % f["cpu_us_per_probe"] if f["cpu_us_per_probe"] else "-",
                late.get("p50", "-"), late.get("p99", "-")))


def markdown(f):
    if not f:
        return ["Not measured."]
    late = f.get("lateness") or {}
    return ["%d `type: dns` checks at 1 s asking a local unbound (UDP, local data) for an "
            "A record (bench/dns.py, `bench.py --only dns`); %.0f s window." % (
                f["checks"], f["window_s"]), "",
            "| probes/s | failed | CPU per probe | lateness p50 | lateness p99 |",
            "|---:|---:|---:|---:|---:|",
            "| %.0f | %d | %s µs | %s ms | %s ms |" % (
                f["probes_per_s"], f["probes_failed"],
                "%.1f" % f["cpu_us_per_probe"] if f["cpu_us_per_probe"] else "-",
                late.get("p50", "-"), late.get("p99", "-"))]
