"""Probe engine and HTTP endpoint measurements.

One healthd per run, probing a local nginx; BIRD runs beside it with the
include file in the run's directory. Figures come from healthd itself
(probe counters, the scheduler's lateness histogram) and from /proc.
"""
import os
import re
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

import procs

STATUS_TIMEOUT_S = 30


def probe_totals(snap):
    ok = failed = 0
    for s in snap["services"]:
        for c in s["checks"]:
            ok += c["probes"]
            failed += c["probes_failed"]
    return ok, failed


def lateness_hist(snap):
    sched = snap.get("scheduler", {}).get("lateness_ms", {})
    return {int(b): int(n) for b, n in sched.get("histogram_us", [])}


def hist_quantiles(h1, h2):
    """p50, p99 and the highest bucket (ms) of the samples between two snapshots."""
    delta = sorted((b, h2.get(b, 0) - h1.get(b, 0)) for b in h2)
    delta = [(b, n) for b, n in delta if n > 0]
    total = sum(n for _, n in delta)
    if not total:
        return None

    def q(frac):
        rank, seen = int(frac * total), 0
        for b, n in delta:
            seen += n
            if seen > rank:
                return b / 1000.0
        return delta[-1][0] / 1000.0
    return {"p50": q(0.50), "p99": q(0.99), "max": delta[-1][0] / 1000.0,
            "samples": total}


class Run:
    """nginx is shared; BIRD and healthd belong to one run."""

    def __init__(self, ctx, name, n_checks, http_port=None, wrap=None):
        self.ctx, self.n = ctx, n_checks
        self.dir = tempfile.mkdtemp(prefix=name + ".", dir=ctx.tmp)
        self.bird, bsock = procs.bird_start(self.dir)
        url = "http://127.0.0.1:%d/health" % ctx.nginx_port
        cfg = procs.healthd_config(self.dir, bsock, n_checks, url, http_port)
        self.hd, self.sock = procs.healthd_start(ctx.build, self.dir, cfg, wrap)

    def snapshot(self, timeout=STATUS_TIMEOUT_S):
        """healthctl status --json, or None when it did not answer in time."""
        t = time.monotonic()
        try:
            snap = procs.status(self.ctx.build, self.sock, timeout)
        except (RuntimeError, ValueError, subprocess.TimeoutExpired):
            snap = None
        return {"snap": snap, "took_s": time.monotonic() - t}

    def counters(self):
        return {"t": time.monotonic(), "cpu": procs.cpu_seconds(self.hd.pid),
                "nginx": procs.nginx_counts(self.ctx.nginx_port)}

    def warm_up(self, secs):
        """The first probes are spread over one interval (1 s); then SECS more."""
        time.sleep(1 + secs)

    def close(self):
        rc = procs.stop(self.hd)
        procs.stop(self.bird)
        return rc


def window_figures(run, sa, a, b, sb):
    """Figures between counters A and B; SA and SB are the status snapshots
    taken just outside the window (their cost stays out of the CPU figure)."""
    secs = b["t"] - a["t"]
    probes = b["nginx"][1] - a["nginx"][1] - 1   # less the first counter request
    conns = b["nginx"][0] - a["nginx"][0] - 1
    stat_s = b["cpu"][0] - a["cpu"][0]
    sched_s = (b["cpu"][1] - a["cpu"][1]) if a["cpu"][1] is not None else None
    mem = procs.memory_kb(run.hd.pid)
    fig = {
        "checks": run.n,
        "window_s": round(secs, 2),
        "probes": probes,
        "probes_per_s": probes / secs,
        "connects_per_s": conns / secs,
        "cpu_s": stat_s,
        "cpu_us_per_probe": stat_s / probes * 1e6 if probes > 0 else None,
        "cpu_sched_us_per_probe": sched_s / probes * 1e6 if probes > 0 and sched_s else None,
        "cpu_share": stat_s / secs,
        "rss_kb": mem["VmRSS"],
        "hwm_kb": mem["VmHWM"],
        "anon_kb": mem["RssAnon"],
        "file_kb": mem["RssFile"],
        "status_s": max(sa["took_s"], sb["took_s"] if sb else 0),
        "probes_failed": None,
        "lateness": None,
    }
    if sa["snap"] and sb and sb["snap"]:
        fig["probes_failed"] = probe_totals(sb["snap"])[1] - probe_totals(sa["snap"])[1]
        fig["lateness"] = hist_quantiles(lateness_hist(sa["snap"]), lateness_hist(sb["snap"]))
    return fig


def measure(run, window, during=None):
    """Status, counters, WINDOW seconds (or DURING()), counters, status."""
    sa = run.snapshot()
    a = run.counters()
    if during:
        during()
    else:
        time.sleep(window)
    b = run.counters()
    # A loop too busy to answer in time would not answer the second either.
    sb = run.snapshot() if sa["snap"] else None
    return window_figures(run, sa, a, b, sb)


def probe_engine(ctx, n, warmup, window):
    run = Run(ctx, "engine-%d" % n, n)
    try:
        run.warm_up(warmup)
        fig = measure(run, window)
    finally:
        rc = run.close()
    fig["exit"] = rc
    return fig


# ---- HTTP endpoint ----

def http_get_status(port, path="/health"):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=2) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


UNIT = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def parse_wrk(text):
    out = {}
    m = re.search(r"Requests/sec:\s*([\d.]+)", text)
    out["rps"] = float(m.group(1)) if m else None
    for pct in ("50", "90", "99"):
        m = re.search(r"^\s*%s(?:\.000)?%%\s+([\d.]+)(us|ms|s)\s*$" % pct, text, re.M)
        out["p" + pct + "_ms"] = float(m.group(1)) * UNIT[m.group(2)] if m else None
    m = re.search(r"(\d+) requests in", text)
    out["requests"] = int(m.group(1)) if m else None
    m = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", text)
    out["non_2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors:.*", text)
    out["socket_errors"] = m.group(0) if m else None
    return out


def http_endpoint(ctx, n, warmup, secs):
    """wrk -t1 -c50 on /health while N checks run; None when nothing serves it."""
    port = procs.free_port()
    run = Run(ctx, "http", n, http_port=port)
    try:
        try:
            code = procs.wait_until(5, "/health to answer",
                                    lambda: http_get_status(port), step=0.2)
        except RuntimeError:
            return None
        run.warm_up(warmup)
        code = http_get_status(port)
        wrk_log = os.path.join(run.dir, "wrk.out")

        def load():
            w = procs.start(["wrk", "-t1", "-c50", "-d%ds" % secs, "--latency",
                             "http://127.0.0.1:%d/health" % port], wrk_log)
            w.wait(timeout=secs + 30)
            procs.stop(w)
        during = measure(run, secs, load)
        with open(wrk_log) as f:
            text = f.read()
        fig = parse_wrk(text)
        fig["status_code"] = code
        fig["wrk_output"] = text
        fig["during"] = during
    finally:
        rc = run.close()
    fig["exit"] = rc
    return fig


# ---- HTTP endpoint under hostile clients ----

HOSTILE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                       "tests", "integration", "httphostile.py")
PROBES_RE = re.compile(r"probes (\d+)/(\d+) p50 ([\d.]+) ms p99 ([\d.]+) ms max ([\d.]+) ms")


def parse_probes(text):
    m = PROBES_RE.search(text)
    if not m:
        return None
    return {"answered": int(m.group(1)), "sent": int(m.group(2)), "p50_ms": float(m.group(3)),
            "p99_ms": float(m.group(4)), "max_ms": float(m.group(5))}


def http_hostile(ctx, n, slow_secs):
    """/health from a fresh client (127.0.0.1) during 1,000 slowloris
    connections from 127.0.0.2-21 (50 each, under http.per_source_limit),
    and after 2,000 connections that send "GET /hea" and close."""
    port = procs.free_port()
    run = Run(ctx, "hostile", n, http_port=port)
    fig = {}
    try:
        try:
            procs.wait_until(5, "/health to answer", lambda: http_get_status(port), step=0.2)
        except RuntimeError:
            return None
        srcs = ",".join("127.0.0.%d" % i for i in range(2, 22))
        for name, argv, limit in (
                ("slowloris", ["slowloris", "--n", "1000", "--from", srcs,
                               "--secs", str(slow_secs)], slow_secs + 60),
                ("burst", ["burst", "--n", "2000", "--from", "127.0.0.2",
                           "--after", "500"], 90)):
            log = os.path.join(run.dir, name + ".out")
            p = procs.start(["python3", HOSTILE] + argv[:1] + ["127.0.0.1", str(port)] +
                            argv[1:] + ["--probe-from", "127.0.0.1"], log)
            p.wait(timeout=limit)
            procs.stop(p)
            with open(log) as f:
                text = f.read()
            fig[name] = parse_probes(text)
            fig[name + "_output"] = text.strip()
            m = re.search(r"recovered (\d+) ms", text)
            if m:
                fig["recovered_ms"] = int(m.group(1))
    finally:
        fig["exit"] = run.close()
    return fig
