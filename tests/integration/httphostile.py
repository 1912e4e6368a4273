#!/usr/bin/env python3
"""Bursts and slow clients against healthd's HTTP server, with /health
probed from a fresh client during or after each. Bounded in count and
time; every socket is closed before it exits.

  httphostile.py burst HOST PORT [--n 2000] [--from ADDR] [--deadline 10]
      N connections each send "GET /hea" and then all close; /health is
      polled until it answers. Prints "recovered N ms"; exit 1 if it never does.
      With --after N, then N probes 20 ms apart: "after: probes ... p99 ...".
  httphostile.py slowloris HOST PORT [--n 1000] [--from A,B,...] [--secs 20]
                 [--probe-from ADDR]
      N connections (spread over the --from addresses) each send a header
      byte a second for SECS; meanwhile a fresh client asks /health every
      100 ms. Prints "probes ANSWERED/SENT p50 X ms p99 Y ms max Z ms";
      exit 1 if fewer than 90% of the probes were answered.
  httphostile.py bigline HOST PORT
      a 70 KB request line, then garbage, each on its own connection: a 4xx
      or a close. Prints "NAME: RESULT"; exit 1 on anything else.
  httphostile.py slowbody HOST PORT [--n 50] [--from ADDR] [--secs 15]
      N connections send whole headers announcing a 1 MB body, then a body
      byte a second: the server must close every one within SECS (its
      whole-request deadline). Prints "slowbody CLOSED/N closed, last after
      X ms"; exit 1 if any stayed open.
  httphostile.py cap HOST PORT --limit N [--from ADDR] [--probe-from ADDR]
      N + 4 connections from one source hold half a request; the last 4
      must be closed by the server within 3 s while the first N stay open,
      and /health from the other source must answer. Exit 1 otherwise.
"""
import argparse
import asyncio
import os
import statistics
import sys
import time

PROBE = b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"


def ms_since(t):
    return (time.monotonic() - t) * 1000.0


async def connect(host, port, src):
    return await asyncio.open_connection(host, port,
                                         local_addr=(src, 0) if src else None)


async def probe(host, port, src, timeout):
    """Milliseconds until a status line of /health came back, or None."""
    t = time.monotonic()
    w = None
    try:
        r, w = await asyncio.wait_for(connect(host, port, src), timeout)
        w.write(PROBE)
        line = await asyncio.wait_for(r.readline(), timeout - ms_since(t) / 1000.0)
        return ms_since(t) if line.startswith(b"HTTP/1.") else None
    except (OSError, asyncio.TimeoutError, ValueError):
        return None
    finally:
        if w:
            w.close()


def quantile(v, q):
    v = sorted(v)
    return v[min(len(v) - 1, int(q * len(v)))]


async def burst(a):
    """All N at once: each connects and sends half a request; once every
    connect has ended, all close together."""
    sem = asyncio.Semaphore(500)   # connects in flight, not connections made
    failed, conns = [0], []

    async def one():
        async with sem:
            try:
                _, w = await asyncio.wait_for(connect(a.host, a.port, a.src), 5)
            except (OSError, asyncio.TimeoutError):
                failed[0] += 1
                return
            conns.append(w)
            w.write(b"GET /hea")
            try:
                await w.drain()
            except OSError:
                pass
    t0 = time.monotonic()
    await asyncio.gather(*(one() for _ in range(a.n)))
    for w in conns:
        w.close()
    await asyncio.sleep(0)
    t_end = time.monotonic()
    print("burst %d connections in %.0f ms, %d connects failed" %
          (a.n, ms_since(t0), failed[0]), flush=True)
    deadline = t_end + a.deadline
    while time.monotonic() < deadline:
        if await probe(a.host, a.port, a.probe_src, 0.5) is not None:
            print("recovered %.0f ms" % ((time.monotonic() - t_end) * 1000.0), flush=True)
            return await probes_after(a)
        await asyncio.sleep(0.05)
    print("never recovered in %.0f s" % a.deadline, flush=True)
    return 1


async def probes_after(a):
    """--after N probes, 20 ms apart, once /health answers again."""
    if not a.after:
        return 0
    lat = []
    for _ in range(a.after):
        r = await probe(a.host, a.port, a.probe_src, 2.0)
        if r is not None:
            lat.append(r)
        await asyncio.sleep(0.02)
    if not lat:
        print("after: probes 0/%d" % a.after, flush=True)
        return 1
    print("after: probes %d/%d p50 %.2f ms p99 %.2f ms max %.2f ms" %
          (len(lat), a.after, statistics.median(lat), quantile(lat, 0.99), max(lat)),
          flush=True)
    return 0


async def slowloris(a):
    srcs = a.src.split(",") if a.src else [None]
    opened, dropped, conns = [0], [0], []
    end = time.monotonic() + a.secs

    async def one(i):
        try:
            _, w = await asyncio.wait_for(connect(a.host, a.port, srcs[i % len(srcs)]), 5)
        except (OSError, asyncio.TimeoutError):
            return
        opened[0] += 1
        conns.append(w)
        try:
            w.write(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            while time.monotonic() < end:
                await asyncio.sleep(1)
                w.write(b"s")
                await w.drain()
        except (OSError, ConnectionError):
            dropped[0] += 1   # the server dropped it: no reconnect, the count stays bounded
        finally:
            w.close()
    tasks = [asyncio.create_task(one(i)) for i in range(a.n)]
    await asyncio.sleep(min(3.0, a.secs / 4))   # let them connect and start trickling
    lat, sent = [], 0
    while time.monotonic() < end - 0.5:
        sent += 1
        r = await probe(a.host, a.port, a.probe_src, 2.0)
        if r is not None:
            lat.append(r)
        await asyncio.sleep(0.1)
    await asyncio.gather(*tasks)
    print("slowloris %d/%d opened, %d dropped by the server within %.0f s" %
          (opened[0], a.n, dropped[0], a.secs), flush=True)
    if lat:
        print("probes %d/%d p50 %.2f ms p99 %.2f ms max %.2f ms" %
              (len(lat), sent, statistics.median(lat), quantile(lat, 0.99), max(lat)),
              flush=True)
    else:
        print("probes 0/%d" % sent, flush=True)
    return 0 if sent and len(lat) >= 0.9 * sent else 1


async def slowbody(a):
    closed, last = [0], [0.0]
    t0 = time.monotonic()
    end = t0 + a.secs

    async def one():
        try:
            _, w = await asyncio.wait_for(connect(a.host, a.port, a.src), 5)
        except (OSError, asyncio.TimeoutError):
            return
        try:
            w.write(b"GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n")
            while time.monotonic() < end:
                await asyncio.sleep(1)
                w.write(b"b")
                await w.drain()
        except (OSError, ConnectionError):
            closed[0] += 1
            last[0] = max(last[0], ms_since(t0))
        finally:
            w.close()
    await asyncio.gather(*[asyncio.create_task(one()) for _ in range(a.n)])
    print("slowbody %d/%d closed, last after %.0f ms" % (closed[0], a.n, last[0]), flush=True)
    return 0 if closed[0] == a.n else 1


async def one_request(host, port, src, payload, timeout=5):
    try:
        r, w = await asyncio.wait_for(connect(host, port, src), timeout)
    except (OSError, asyncio.TimeoutError):
        return "connect-failed"
    try:
        w.write(payload)
        try:
            await w.drain()
        except OSError:
            pass
        data = await asyncio.wait_for(r.read(64), timeout)
    except asyncio.TimeoutError:   # before OSError: it is one
        return "timeout"
    except (OSError, ConnectionError):
        return "closed"
    finally:
        w.close()
    if not data:
        return "closed"
    parts = data.split(b" ", 2)
    if len(parts) >= 2 and parts[0].startswith(b"HTTP/") and parts[1].isdigit():
        return parts[1].decode()
    return "junk-reply"


async def bigline(a):
    cases = [
        ("line-70k", b"GET /" + b"a" * (70 * 1024) + b" HTTP/1.1\r\nHost: x\r\n\r\n"),
        ("line-70k-no-end", b"GET /" + b"a" * (70 * 1024)),
        ("garbage", os.urandom(4096) + b"\r\n\r\n"),
        ("garbage-no-end", os.urandom(4096)),
    ]
    bad = 0
    for name, payload in cases:
        res = await one_request(a.host, a.port, a.src, payload, 8)
        ok = res == "closed" or (res.isdigit() and 400 <= int(res) < 500)
        bad += not ok
        print("%s: %s%s" % (name, res, "" if ok else "  <-- want 4xx or closed"), flush=True)
    return 1 if bad else 0


async def cap(a):
    held = []
    try:
        for _ in range(a.limit + 4):
            r, w = await asyncio.wait_for(connect(a.host, a.port, a.src), 5)
            w.write(b"GET /health HTTP/1.1\r\nHost: x\r\n")
            held.append((r, w))
            await asyncio.sleep(0.01)

        async def closed_by_server(r, secs):
            try:
                return await asyncio.wait_for(r.read(64), secs) == b""
            except asyncio.TimeoutError:   # before OSError: it is one
                return False
            except (OSError, ConnectionError):
                return True
        beyond = await asyncio.gather(*(closed_by_server(r, 3) for r, _ in held[a.limit:]))
        within = await asyncio.gather(*(closed_by_server(r, 0.2) for r, _ in held[:a.limit]))
        other = await probe(a.host, a.port, a.probe_src, 2.0)
        print("beyond the cap closed %d/4; within it closed %d/%d; other source %s" %
              (sum(beyond), sum(within), a.limit,
               "answered in %.2f ms" % other if other is not None else "got no answer"),
              flush=True)
        return 0 if all(beyond) and not any(within) and other is not None else 1
    finally:
        for _, w in held:
            w.close()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["burst", "slowloris", "slowbody", "bigline", "cap"])
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("--n", type=int, default=None)
    p.add_argument("--from", dest="src", default=None)
    p.add_argument("--probe-from", dest="probe_src", default=None)
    p.add_argument("--secs", type=float, default=20)
    p.add_argument("--deadline", type=float, default=10)
    p.add_argument("--limit", type=int, default=8)
    p.add_argument("--after", type=int, default=0, help="burst: probes once it answers")
    a = p.parse_args()
    a.n = min(a.n or (2000 if a.mode == "burst" else 1000), 5000)
    a.secs = min(a.secs, 120)
    a.after = min(a.after, 2000)
    if a.mode == "slowbody":
        a.n = min(a.n if a.n != 1000 else 50, 500)
    return asyncio.run({"burst": burst, "slowloris": slowloris, "slowbody": slowbody,
                        "bigline": bigline, "cap": cap}[a.mode](a))


if __name__ == "__main__":
    sys.exit(main())
