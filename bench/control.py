"""Control-socket reply time while a client pipelines and never reads.

One healthd with 100 HTTP checks (the same run as the probe engine's):
`healthctl status --json` from a fresh process, SAMPLES times, first with
the socket quiet, then while one client has sent 300,000 `status` lines
and reads none of the replies. The time is the healthctl process's wall
time (exec, connect, request, reply, JSON), so the quiet figure is the
floor. healthd's RSS before and after the pipelining client is given
beside it.
"""
import os
import socket
import statistics
import subprocess
import time

import engine
import procs

PIPELINED = 300000


def _quantile(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def _reply_times(build, sock, samples):
    times, failed = [], 0
    argv = [os.path.join(build, "healthctl"), "-T", "10s", "-s", sock, "status", "--json"]
    for _ in range(samples):
        t = time.monotonic()
        r = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           timeout=30)
        times.append((time.monotonic() - t) * 1000)
        failed += r.returncode != 0
    return {"samples": samples, "failed": failed, "p50_ms": _quantile(times, 0.50),
            "p99_ms": _quantile(times, 0.99), "max_ms": max(times),
            "mean_ms": statistics.mean(times)}


def _pipeline(sock, secs):
    """Sends PIPELINED status lines for up to SECS, reading nothing; the
    socket is returned open (closing it would end the pressure)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sock)
    s.setblocking(False)
    data, sent = b"status\n" * PIPELINED, 0
    until = time.monotonic() + secs
    while sent < len(data) and time.monotonic() < until:
        try:
            sent += s.send(data[sent:sent + 65536])
        except BlockingIOError:
            time.sleep(0.01)
    return s, sent // 7


def control_reply(ctx, samples, warmup):
    run = engine.Run(ctx, "control", 100)
    try:
        run.warm_up(warmup)
        quiet = _reply_times(ctx.build, run.sock, samples)
        rss0 = procs.memory_kb(run.hd.pid)["VmRSS"]
        s, sent = _pipeline(run.sock, 2)
        try:
            busy = _reply_times(ctx.build, run.sock, samples)
            rss1 = procs.memory_kb(run.hd.pid)["VmRSS"]
        finally:
            s.close()
    finally:
        run.close()
    return {"quiet": quiet, "pipelining": busy, "pipelined_sent": sent,
            "rss_kb_before": rss0, "rss_kb_during": rss1}
