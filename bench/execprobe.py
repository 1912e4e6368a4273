"""Exec probes: N exec checks of /bin/true at 1 s (bench.py --only exec).

healthd's own CPU per probe (utime+stime over the probes it ran) is the
cost of spawning, reading and reaping; the children's (cutime+cstime,
/bin/true itself, reaped by healthd) is shown beside it. Lateness is the
probe timers' (the scheduler's histogram), which spawning on the loop
could delay. Probes come from healthd's counters.
"""
import os
import tempfile
import time

import engine
import procs


def config(d, bird_sock, n):
    lines = ["node: bench", "bird:", "  socket: %s" % bird_sock,
             "  include: %s/healthd.conf" % d, "  timeout: 2s", "  reconcile: 5s",
             "control:", "  socket: %s/healthd.sock" % d,
             "defaults:", "  interval: 1s", "  timeout: 1s", "  rise: 2", "  fall: 2",
             "services:", "  - name: bench0", '    prefixes: ["192.0.2.10/32"]',
             "    checks:"]
    for c in range(n):
        lines += ["      - name: c%d" % c, "        type: exec",
                  '        command: ["/bin/true"]']
    path = os.path.join(d, "healthd.yaml")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def cpu(pid):
    """(own utime+stime, reaped children's cutime+cstime), seconds."""
    with open("/proc/%d/stat" % pid) as f:
        x = f.read().rsplit(")", 1)[1].split()
    return ((int(x[11]) + int(x[12])) / procs.CLK_TCK,
            (int(x[13]) + int(x[14])) / procs.CLK_TCK)


def run(ctx, n, warmup, window):
    d = tempfile.mkdtemp(prefix="exec-%d." % n, dir=ctx.tmp)
    bird, bsock = procs.bird_start(d)
    hd, sock = procs.healthd_start(ctx.build, d, config(d, bsock, n))
    try:
        time.sleep(1 + warmup)
        sa = procs.status(ctx.build, sock, engine.STATUS_TIMEOUT_S)
        t0, c0 = time.monotonic(), cpu(hd.pid)
        time.sleep(window)
        t1, c1 = time.monotonic(), cpu(hd.pid)
        sb = procs.status(ctx.build, sock, engine.STATUS_TIMEOUT_S)
        mem = procs.memory_kb(hd.pid)
    finally:
        rc = procs.stop(hd)
        procs.stop(bird)
    (ok0, bad0), (ok1, bad1) = engine.probe_totals(sa), engine.probe_totals(sb)
    probes = ok1 - ok0
    own, kids = c1[0] - c0[0], c1[1] - c0[1]
    return {
        "checks": n, "window_s": round(t1 - t0, 2), "probes": probes,
        "probes_per_s": probes / (t1 - t0), "probes_failed": bad1 - bad0,
        "cpu_s": own, "cpu_us_per_probe": own / probes * 1e6 if probes else None,
        "children_cpu_us_per_probe": kids / probes * 1e6 if probes else None,
        "cpu_share": own / (t1 - t0), "rss_kb": mem["VmRSS"], "hwm_kb": mem["VmHWM"],
        "lateness": engine.hist_quantiles(engine.lateness_hist(sa), engine.lateness_hist(sb)),
        "exit": rc,
    }
