#!/usr/bin/env python3
"""make bench: measure healthd and write bench/results.md.

    bench.py [--build build/std] [--out bench/results.md] [--quick]

    bench.py --only control   (that part alone, merged into results.json/.md)
    bench.py --only mesh      (likewise: meshctl at scale, failover in the mesh lab)
    bench.py --only meshd     (likewise: meshd's API under wrk, HTTP and HTTPS)
    bench.py --only dns       (likewise: 200 dns checks against a local unbound)
    bench.py --only exec      (likewise: 200 exec checks of /bin/true at 1 s)

Parts: the probe engine at 100, 1,000 and 10,000 HTTP checks against a
local nginx; 200 exec checks of /bin/true (bench/execprobe.py); detection in the namespace lab; the HTTP endpoint under wrk;
/health from a fresh client under slowloris and after a burst; the
control-socket reply time while a client pipelines and never reads;
meshctl check and render over 1,000- and 300-node inventories, and
failover in the four-region mesh lab (bench/mesh.py); meshd's API under
wrk on loopback, and its rate limit at the defaults (bench/meshd.py).
Where a target is missed, a valgrind profile of the reason goes into the
results. Everything started is stopped by its PID, also on failure.
"""
import argparse
import datetime
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import control  # noqa: E402
import dns  # noqa: E402
import engine  # noqa: E402
import execprobe  # noqa: E402
import mesh  # noqa: E402
import meshd  # noqa: E402
import procs  # noqa: E402
import profiling  # noqa: E402
import report  # noqa: E402

SRC = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def say(msg):
    print("bench: " + msg, file=sys.stderr, flush=True)


def machine():
    model = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem_kb = int(f.readline().split()[1])

    def version(argv):
        try:
            r = subprocess.run(argv, capture_output=True, text=True, timeout=10)
            return (r.stdout + r.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.SubprocessError):
            return "unknown"
    with open("/proc/loadavg") as f:
        load = " ".join(f.read().split()[:3])
    return {
        "load": load,
        "nproc": os.cpu_count(),
        "cpu": model,
        "memory": "%.1f GiB" % (mem_kb / 1048576),
        "kernel": platform.release(),
        "os": version(["sh", "-c", ". /etc/os-release && echo $PRETTY_NAME"]),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "healthd": version(["git", "-C", SRC, "describe", "--always", "--dirty"]),
        "libcurl": version(["curl-config", "--version"]),
        "nginx": version(["nginx", "-v"]),
        "wrk": version(["wrk", "--version"]),
    }


def detection(ctx, runs):
    out = os.path.join(ctx.tmp, "detect.json")
    env = dict(os.environ, HEALTHD_BUILD=ctx.build)
    p = procs.start(["bash", os.path.join(SRC, "bench", "detect.sh"), out, str(runs)],
                    os.path.join(ctx.tmp, "detect.log"), env=env, start_new_session=False)
    rc = p.wait(timeout=300)
    procs.stop(p)
    if rc != 0:
        with open(os.path.join(ctx.tmp, "detect.log")) as f:
            sys.stderr.write(f.read()[-4000:])
        raise RuntimeError("detection run failed (exit %d)" % rc)
    with open(out) as f:
        d = json.load(f)

    def summary(v):
        v = sorted(v)
        return {"runs": len(v), "median": statistics.median(v),
                "p95": v[min(len(v) - 1, int(0.95 * len(v)))], "min": v[0], "max": v[-1],
                "all": v}
    return {"down": summary(d["down_ms"]), "up": summary(d["up_ms"])}


class Ctx:
    pass


def _part_control(ctx, a):
    ctx.nginx_port = procs.free_port()
    nginx = procs.nginx_start(os.path.join(ctx.tmp, "nginx"), ctx.nginx_port)
    say("control socket: healthctl status while a client pipelines and never reads")
    fig = control.control_reply(ctx, 50 if a.quick else 200, 2 if a.quick else 5)
    procs.stop(nginx)
    return fig, [report.control_line(fig)]


def _part_mesh(ctx, a):
    fig = mesh.run(ctx, a.quick, say)
    return fig, report.mesh_lines(fig)


def _part_meshd(ctx, a):
    fig = meshd.run(ctx, a.quick, say)
    return fig, report.meshd_lines(fig)


def _part_dns(ctx, a):
    fig = dns.run(ctx, a.quick, say)
    return fig, [dns.line(fig)]


EXEC_CHECKS = 200


def _part_exec(ctx, a):
    warmup, window = (2, 5) if a.quick else (5, 20)
    say("exec probes: %d checks of /bin/true at 1 s (%d s warm-up, %d s window)"
        % (EXEC_CHECKS, warmup, window))
    fig = execprobe.run(ctx, EXEC_CHECKS, warmup, window)
    return fig, [report.exec_line(fig)]


PARTS = {"control": _part_control, "dns": _part_dns, "exec": _part_exec, "mesh": _part_mesh,
         "meshd": _part_meshd}


def only_part(ctx, a):
    """One part alone; the other figures come from the last full run's
    results.json, so results.md stays whole."""
    saved = os.path.splitext(a.out)[0] + ".json"
    with open(saved) as f:
        res = json.load(f)
    ctx.tmp = tempfile.mkdtemp(prefix="healthd-bench.%d." % os.getpid())
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    m = machine()
    try:
        fig, lines = PARTS[a.only](ctx, a)
    finally:
        procs.stop_all()
        shutil.rmtree(ctx.tmp, ignore_errors=True)
    fig["machine"] = m
    res[a.only] = fig
    tmp = saved + ".tmp"
    with open(tmp, "w") as f:
        json.dump(res, f, indent=1)
    os.replace(tmp, saved)
    with open(a.out + ".tmp", "w") as f:
        f.write(report.markdown(res))
    os.replace(a.out + ".tmp", a.out)
    for line in lines:
        print(line)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build/std")
    ap.add_argument("--out", default=os.path.join(SRC, "bench", "results.md"))
    ap.add_argument("--quick", action="store_true", help="short windows, for trying the bench")
    ap.add_argument("--render", metavar="JSON", help="only write the results from saved figures")
    ap.add_argument("--only-hostile", action="store_true",
                    help="only the hostile-client part; prints its figures")
    ap.add_argument("--only", choices=sorted(PARTS),
                    help="run one part, merged into the saved figures")
    a = ap.parse_args()
    if a.render:
        with open(a.render) as f:
            res = json.load(f)
        with open(a.out, "w") as f:
            f.write(report.markdown(res))
        print(report.summary(res))
        return
    ctx = Ctx()
    ctx.build = os.path.abspath(a.build)
    if a.only:
        return only_part(ctx, a)
    ctx.tmp = tempfile.mkdtemp(prefix="healthd-bench.%d." % os.getpid())
    warmup, window = (2, 5) if a.quick else (5, 20)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    t_start = time.monotonic()
    res = {"machine": machine(), "window_s": window, "warmup_s": warmup, "engine": []}
    try:
        ctx.nginx_port = procs.free_port()
        if a.only_hostile:   # no nginx: the checks fail, /health answers 503
            h = engine.http_hostile(ctx, 100, 10 if a.quick else 20)
            print(json.dumps(h, indent=1))
            say(report.hostile_line(h))
            return
        nginx = procs.nginx_start(os.path.join(ctx.tmp, "nginx"), ctx.nginx_port)
        for n in (100, 1000, 10000):
            say("probe engine, %d checks at 1 s (%d s warm-up, %d s window)" % (n, warmup, window))
            res["engine"].append(engine.probe_engine(ctx, n, warmup, window))
            say(report.engine_line(res["engine"][-1]))
        say("exec probes: %d checks of /bin/true at 1 s" % EXEC_CHECKS)
        res["exec"] = execprobe.run(ctx, EXEC_CHECKS, warmup, window)
        say(report.exec_line(res["exec"]))
        say("HTTP endpoint: wrk -t1 -c50 -d10s on /health, 1000 checks running")
        res["http"] = engine.http_endpoint(ctx, 1000, warmup, 5 if a.quick else 10)
        say(report.http_line(res["http"]))
        say("HTTP endpoint under hostile clients: 1,000 slowloris, a 2,000-connection burst")
        res["hostile"] = engine.http_hostile(ctx, 100, 10 if a.quick else 20)
        say(report.hostile_line(res["hostile"]))
        say("detection in the namespace lab (interval 100ms, fall 2)")
        res["detect"] = detection(ctx, 10 if a.quick else 20)
        say(report.detect_line(res["detect"]))
        say("control socket: healthctl status while a client pipelines and never reads")
        res["control"] = control.control_reply(ctx, 50 if a.quick else 200, warmup)
        say(report.control_line(res["control"]))
        res["dns"] = dns.run(ctx, a.quick, say)
        say(dns.line(res["dns"]))
        say("mesh: meshctl check and render at scale, failover in the mesh lab")
        res["mesh"] = mesh.run(ctx, a.quick, say)
        say("meshd: the API under wrk, HTTP and HTTPS on loopback; the rate limit")
        res["meshd"] = meshd.run(ctx, a.quick, say)
        if res["http"] is None:
            say("checking once more for the HTTP endpoint")
            res["http"] = engine.http_endpoint(ctx, 1000, warmup, 5 if a.quick else 10)
        res["profiles"] = profiling.for_misses(ctx, res, report.misses(res), say)
        procs.stop(nginx)
    finally:
        procs.stop_all()
        shutil.rmtree(ctx.tmp, ignore_errors=True)
    res["duration_s"] = time.monotonic() - t_start
    with open(os.path.splitext(a.out)[0] + ".json", "w") as f:
        json.dump(res, f, indent=1)
    with open(a.out, "w") as f:
        f.write(report.markdown(res))
    say("wrote %s in %.0f s" % (os.path.relpath(a.out), res["duration_s"]))
    print(report.summary(res))


if __name__ == "__main__":
    main()
