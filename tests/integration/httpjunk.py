#!/usr/bin/env python3
"""Hostile HTTP clients for healthd's HTTP server.

  httpjunk.py malformed HOST PORT
      sends each malformed request on its own connection and prints
      "NAME: RESULT" (the status code, or "closed"); exits 1 if any got
      anything but a 4xx or a closed connection.
  httpjunk.py hostile HOST PORT [--slow N] [--slow-secs S] [--junk N]
      opens N slowloris connections (one header byte a second for S
      seconds), then sends N junk requests from 16 workers; prints "ready"
      once both are under way, then a summary line.
"""
import argparse
import asyncio
import os
import socket
import sys
import time

BIG = 100 * 1024

MALFORMED = [
    ("garbage", os.urandom(512) + b"\r\n\r\n"),
    ("nul-bytes", b"\x00" * 64 + b"\r\n\r\n"),
    ("header-100k", b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * BIG + b"\r\n\r\n"),
    ("many-headers", b"GET /health HTTP/1.1\r\nHost: x\r\n" + b"X-A: b\r\n" * 8000 + b"\r\n"),
    ("post", b"POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"),
    ("put", b"PUT /status HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"),
    ("delete", b"DELETE /health HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("path-20k", b"GET /" + b"p" * 20000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("path-dotdot", b"GET /../../../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("path-health-dotdot", b"GET /health/../status/%00 HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("path-star", b"GET * HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("path-unicode", "GET /health/\u00e9\u2603 HTTP/1.1\r\nHost: x\r\n\r\n".encode()),
    ("bad-version", b"GET /nosuch HTTP/1.x\r\nHost: x\r\n\r\n"),
    ("no-host-11", b"GET /nosuch HTTP/1.1\r\n\r\n"),
    ("bad-content-length", b"GET /nosuch HTTP/1.1\r\nHost: x\r\nContent-Length: -7\r\n\r\n"),
    # half a request and FIN: held until the connection timeout, then closed
    ("half-then-fin", b"GET /hea"),
    ("chunked-junk", b"GET /nosuch HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"),
]

JUNK = [
    os.urandom(200) + b"\r\n\r\n",
    b"POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
    b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /health HTTP/1.1\r\nHost: x\r\nX: " + b"b" * 20000 + b"\r\n\r\n",
    b"GET /nosuch HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /health HTTP/9.9\r\n\r\n",
    b"GET /metrics HTTP/1.0\r\n\r\n",
    b"GET /status HTTP/1.0\r\n\r\n",
]


def result_of(data):
    if not data:
        return "closed"
    parts = data.split(b" ", 2)
    if len(parts) >= 2 and parts[0].startswith(b"HTTP/") and parts[1].isdigit():
        return parts[1].decode()
    return "junk-reply"


def one_malformed(host, port, payload):
    s = socket.create_connection((host, port), timeout=8)
    try:
        try:
            s.sendall(payload)
            if not payload.endswith(b"\r\n\r\n"):
                s.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass   # the server may close before reading it all
        try:
            return result_of(s.recv(4096))
        except (ConnectionResetError, socket.timeout):
            return "closed"
    finally:
        s.close()


def malformed(a):
    bad = 0
    for name, payload in MALFORMED:
        r = one_malformed(a.host, a.port, payload)
        ok = r == "closed" or (r.isdigit() and 400 <= int(r) < 500)
        bad += not ok
        print("%s: %s%s" % (name, r, "" if ok else "  <-- want 4xx or closed"))
    return 1 if bad else 0


async def slowloris(host, port, secs, opened):
    try:
        r, w = await asyncio.open_connection(host, port)
    except OSError:
        opened.append(False)
        return
    opened.append(True)
    end = time.monotonic() + secs
    try:
        w.write(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        while time.monotonic() < end:
            await asyncio.sleep(1)
            w.write(b"s")
            await w.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        w.close()


async def junk_worker(host, port, todo, counts):
    while todo[0] > 0:
        todo[0] -= 1
        payload = JUNK[todo[0] % len(JUNK)]
        try:
            r, w = await asyncio.open_connection(host, port)
        except OSError:
            counts["connect-failed"] = counts.get("connect-failed", 0) + 1
            continue
        try:
            w.write(payload)
            await w.drain()
            res = result_of(await asyncio.wait_for(r.read(64), 3))
        except (ConnectionError, OSError):
            res = "closed"
        except asyncio.TimeoutError:
            res = "timeout"
        w.close()
        counts[res] = counts.get(res, 0) + 1


async def hostile(a):
    opened, counts, todo = [], {}, [a.junk]
    t0 = time.monotonic()
    slow = [asyncio.create_task(slowloris(a.host, a.port, a.slow_secs, opened))
            for _ in range(a.slow)]
    while len(opened) < a.slow:
        await asyncio.sleep(0.01)
    workers = [asyncio.create_task(junk_worker(a.host, a.port, todo, counts))
               for _ in range(16)]
    while a.junk - todo[0] < min(200, a.junk):
        await asyncio.sleep(0.01)
    print("ready", flush=True)
    await asyncio.gather(*workers)
    t1 = time.monotonic()
    await asyncio.gather(*slow)
    summary = " ".join("%s=%d" % kv for kv in sorted(counts.items()))
    print("slowloris %d/%d opened; junk %d in %.1f s: %s" %
          (sum(opened), a.slow, sum(counts.values()), t1 - t0, summary), flush=True)
    return 0


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["malformed", "hostile"])
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("--slow", type=int, default=200)
    p.add_argument("--slow-secs", type=float, default=5)
    p.add_argument("--junk", type=int, default=10000)
    a = p.parse_args()
    if a.mode == "malformed":
        return malformed(a)
    return asyncio.run(hostile(a))


if __name__ == "__main__":
    sys.exit(main())
