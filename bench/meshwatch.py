#!/usr/bin/env python3
"""A region's user in the mesh lab, asking the anycast service non-stop.

    meshwatch.py --url http://ADDR/ --out FILE [--every-ms 5] [--timeout-ms 100]

Runs inside the user's namespace (bench/meshfail.sh starts it with `ip
netns exec`). Each probe is a new connection and one `GET /`; the body is
the name of the node that answered ("-refused", "-timeout", "-error" when
none did). A line "EPOCH_MS BODY LAST_MS" is appended to FILE whenever the
answer differs from the previous probe's: EPOCH_MS is when this probe got
its answer, LAST_MS when the last probe with the previous answer got its
one (0 on the first line), on the wall clock, which every namespace
shares. So FILE is the history of who answered, and each change happened
between LAST_MS and EPOCH_MS. Stops on SIGTERM.
"""
import argparse
import signal
import socket
import sys
import time
import urllib.parse


def ask(host, port, path, timeout):
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.settimeout(timeout)
            s.sendall(b"GET %s HTTP/1.0\r\nHost: %s\r\n\r\n" % (path.encode(), host.encode()))
            data = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
    except ConnectionRefusedError:
        return "-refused"
    except socket.timeout:
        return "-timeout"
    except OSError:
        return "-error"
    head, _, body = data.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.") or b" 200 " not in head.split(b"\r\n", 1)[0] + b" ":
        return "-error"
    return body.decode(errors="replace").strip() or "-empty"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--every-ms", type=float, default=5)
    ap.add_argument("--timeout-ms", type=float, default=100)
    a = ap.parse_args()
    u = urllib.parse.urlsplit(a.url)
    host, port, path = u.hostname, u.port or 80, u.path or "/"
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    last, last_ms = None, 0
    with open(a.out, "a", buffering=1) as out:
        while True:
            got = ask(host, port, path, a.timeout_ms / 1000.0)
            now = int(time.time() * 1000)
            if got != last:
                out.write("%d %s %d\n" % (now, got, last_ms))
                last = got
            last_ms = now
            time.sleep(a.every_ms / 1000.0)


if __name__ == "__main__":
    main()
