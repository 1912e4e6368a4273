#!/usr/bin/env python3
"""Detection time in the namespace lab, as the upstream BGP speaker sees it.

    detect.py --ns NS --sock UPSTREAM_BIRD_CTL --prefix P --dir WWW
              --port PORT --webserver PY --runs N --out FILE.json

Each run starts the node's web service and times how long until the
upstream has the route, then stops it and times how long until the route
is gone. The upstream's table is read over its BIRD control socket every
5 ms on one connection; a reply is judged by its codes (1007 = route
lines, 8001 = network not found). The web service is started and stopped
by its PID.
"""
import argparse
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time

POLL_S = 0.005


class Bird:
    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.connect(path)
        self.buf = b""
        self._reply()  # 0001 welcome

    def _reply(self):
        """Lines up to the one whose code ends a reply (NNNN followed by a space)."""
        lines = []
        while True:
            while b"\n" not in self.buf:
                chunk = self.s.recv(65536)
                if not chunk:
                    raise RuntimeError("BIRD closed the control socket")
                self.buf += chunk
            line, self.buf = self.buf.split(b"\n", 1)
            lines.append(line)
            if len(line) >= 5 and line[:4].isdigit() and line[4:5] == b" ":
                return lines

    def has_route(self, prefix):
        self.s.sendall(b"show route " + prefix.encode() + b"\n")
        lines = self._reply()
        codes = {ln[:4] for ln in lines if ln[:4].isdigit()}
        if b"1007" in codes:
            return True
        if b"8001" in codes or codes == {b"0000"}:
            return False
        raise RuntimeError("unexpected BIRD reply: %r" % lines)


def wait_route(bird, prefix, present, t0, limit_s):
    """Seconds from T0 until the upstream's view of PREFIX is PRESENT."""
    deadline = t0 + limit_s
    while True:
        now = time.monotonic()
        if bird.has_route(prefix) == present:
            return now - t0
        if now > deadline:
            raise RuntimeError("route %s still %s after %ss" %
                               (prefix, "absent" if present else "present", limit_s))
        time.sleep(POLL_S)


def web_start(a):
    """Start the web service in the node's namespace; the time it listens."""
    p = subprocess.Popen(["ip", "netns", "exec", a.ns, sys.executable, a.webserver,
                          "--port", str(a.port), "--dir", a.dir],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         stdin=subprocess.DEVNULL)
    line = p.stdout.readline()
    t = time.monotonic()
    if not line.startswith(b"ready"):
        web_stop(p)
        raise RuntimeError("web service did not start: %r" % line)
    return p, t


def web_stop(p):
    try:
        os.kill(p.pid, signal.SIGTERM)
        p.wait(timeout=5)
    except subprocess.TimeoutExpired:
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
    except ProcessLookupError:
        pass
    p.stdout.close()


def main():
    ap = argparse.ArgumentParser()
    for k in ("ns", "sock", "prefix", "dir", "webserver", "out"):
        ap.add_argument("--" + k, required=True)
    ap.add_argument("--port", type=int, default=8080)
    ap.add_argument("--runs", type=int, default=20)
    a = ap.parse_args()
    bird = Bird(a.sock)
    ups, downs, web = [], [], None
    try:
        for i in range(a.runs):
            # A random pause so the start/stop falls anywhere in the probe period.
            time.sleep(0.2 + random.random() * 0.2)
            web, t0 = web_start(a)
            ups.append(wait_route(bird, a.prefix, True, t0, 10))
            time.sleep(0.2 + random.random() * 0.2)
            t0 = time.monotonic()
            web_stop(web)
            web = None
            downs.append(wait_route(bird, a.prefix, False, t0, 10))
            print("  run %2d: withdrawn after %6.1f ms, back after %6.1f ms" %
                  (i + 1, downs[-1] * 1e3, ups[-1] * 1e3), file=sys.stderr)
    finally:
        if web:
            web_stop(web)
    with open(a.out, "w") as f:
        json.dump({"down_ms": [d * 1e3 for d in downs], "up_ms": [u * 1e3 for u in ups]}, f)


if __name__ == "__main__":
    main()
