#!/usr/bin/env python3
"""Floods a control socket with junk clients for a bounded time.

    ctlflood.py --socket PATH [--seconds 5] [--holders 100] [--workers 20]

--holders connections send half a request and then sit idle until the
end; --workers threads connect again and again, each time sending one
kind of junk (binary bytes, an unknown command, a line too long, nothing
at all) and reading whatever comes back. Prints "ready" once the holders
are connected and, at the end, "flood: N connections, R replies, E errors".
SIGTERM ends the flood early, with the same summary.
"""
import argparse
import os
import signal
import socket
import sys
import threading
import time

JUNK = [
    b"\x00\x01\x02\xff\xfe\n",
    b"frobnicate everything\n",
    b"status" + b"x" * 5000,
    b"",
    b"drain\n",
    b"check nosuchcheck\n",
    b"\r\n\r\n\r\n",
    os.urandom(64),
]


stop = threading.Event()


def worker(path, until, counts, lock):
    i = 0
    while time.monotonic() < until and not stop.is_set():
        i += 1
        data = JUNK[i % len(JUNK)]
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(1.0)
        try:
            s.connect(path)
            if data:
                s.sendall(data)
            s.shutdown(socket.SHUT_WR)
            got = s.recv(65536)
            with lock:
                counts["conns"] += 1
                counts["replies"] += 1 if got else 0
        except OSError:
            with lock:
                counts["errors"] += 1
        finally:
            s.close()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--socket", required=True)
    p.add_argument("--seconds", type=float, default=5)
    p.add_argument("--holders", type=int, default=100)
    p.add_argument("--workers", type=int, default=20)
    a = p.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    holders = []
    for _ in range(a.holders):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(a.socket)
            s.sendall(b"sta")
            holders.append(s)
        except OSError:
            s.close()
    print("ready %d holders" % len(holders), flush=True)
    counts = {"conns": 0, "replies": 0, "errors": 0}
    lock = threading.Lock()
    until = time.monotonic() + a.seconds
    threads = [threading.Thread(target=worker, args=(a.socket, until, counts, lock))
               for _ in range(a.workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for s in holders:
        s.close()
    print("flood: %d connections, %d replies, %d errors"
          % (counts["conns"], counts["replies"], counts["errors"]), flush=True)


if __name__ == "__main__":
    sys.exit(main())
