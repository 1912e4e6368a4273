#!/usr/bin/env python3
"""A recording proxy in front of a real BIRD's control socket.

    birdrecord.py --listen PATH --bird PATH --log FILE

Every connection to PATH gets a connection of its own to BIRD's socket;
bytes pass both ways unchanged. Every line a client sends is written to
FILE as Python repr() of its bytes, one per line, before it is forwarded,
so the file holds exactly what BIRD received. Prints "ready" once it
listens. Stops on SIGTERM.
"""
import argparse
import os
import selectors
import signal
import socket
import sys


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--listen", required=True)
    p.add_argument("--bird", required=True)
    p.add_argument("--log", required=True)
    a = p.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        os.unlink(a.listen)
    except FileNotFoundError:
        pass
    log = open(a.log, "a", buffering=1)
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(a.listen)
    srv.listen(16)
    sel = selectors.DefaultSelector()
    sel.register(srv, selectors.EVENT_READ, None)
    peer, pending = {}, {}
    print("ready", flush=True)

    def close(s):
        for x in (s, peer.get(s)):
            if x is None:
                continue
            try:
                sel.unregister(x)
            except (KeyError, ValueError):
                pass
            x.close()
            peer.pop(x, None)
            pending.pop(x, None)

    while True:
        for key, _ in sel.select():
            s = key.fileobj
            if s is srv:
                c, _ = srv.accept()
                b = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                try:
                    b.connect(a.bird)
                except OSError:
                    c.close()
                    continue
                peer[c], peer[b] = b, c
                pending[c] = b""
                sel.register(c, selectors.EVENT_READ, "client")
                sel.register(b, selectors.EVENT_READ, "bird")
                continue
            try:
                data = s.recv(65536)
            except OSError:
                data = b""
            if not data:
                close(s)
                continue
            if key.data == "client":
                buf = pending[s] + data
                *lines, pending[s] = buf.split(b"\n")
                for line in lines:
                    log.write(repr(line + b"\n") + "\n")
                    peer[s].sendall(line + b"\n")
            else:
                try:
                    peer[s].sendall(data)
                except OSError:
                    close(s)


if __name__ == "__main__":
    main()
