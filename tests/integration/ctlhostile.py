#!/usr/bin/env python3
"""Hostile control-socket peers for t_ctl_hostile, each bounded in time.

    ctlhostile.py pipeline --socket PATH [--count 300000] [--seconds 20]
        one client sends COUNT "status" lines as fast as healthd takes
        them and never reads a reply; prints "ready" after the first
        second, at the end "pipeline: sent N of M requests".
    ctlhostile.py trickle --socket PATH [--clients 100] [--seconds 10]
        CLIENTS connections each send one byte of "status          \\n"
        every 0.3s,
        connecting again when healthd drops them; prints "ready" once all
        are connected, at the end "trickle: C connections, D dropped".
    ctlhostile.py silent --socket PATH [--seconds 20]
        a server that accepts and never answers.
    ctlhostile.py stream --socket PATH [--seconds 20]
        a server that answers every client with bytes and no newline,
        without end.
SIGTERM ends any of them early, with the same summary.
"""
import argparse
import os
import select
import signal
import socket
import sys
import threading
import time

stop = threading.Event()


def pipeline(a):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(a.socket)
    s.setblocking(False)
    data = b"status\n" * a.count
    sent, t0, ready = 0, time.monotonic(), False
    until = t0 + a.seconds
    while not stop.is_set() and time.monotonic() < until:
        if not ready and time.monotonic() - t0 >= 1:
            print("ready", flush=True)
            ready = True
        if sent < len(data):
            try:
                sent += s.send(data[sent:sent + 65536])
                continue
            except BlockingIOError:
                pass
            except OSError as e:
                print("pipeline: healthd closed the connection: %s" % e, flush=True)
                break
        select.select([], [s] if sent < len(data) else [], [], 0.1)
    if not ready:
        print("ready", flush=True)
    print("pipeline: sent %d of %d requests" % (sent // 7, a.count), flush=True)
    s.close()


def trickle(a):
    msg = b"status" + b" " * 10 + b"\n"  # 17 bytes: 5s a line, past healthd's 2s
    conns, drops = 0, 0
    socks = {}

    def connect(i):
        nonlocal conns
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.setblocking(False)
        try:
            s.connect(a.socket)
        except OSError:
            s.close()
            return
        socks[i] = [s, 0]
        conns += 1

    for i in range(a.clients):
        connect(i)
    print("ready %d clients" % len(socks), flush=True)
    until = time.monotonic() + a.seconds
    while not stop.is_set() and time.monotonic() < until:
        for i in range(a.clients):
            if i not in socks:
                connect(i)
                continue
            s, n = socks[i]
            try:
                # a reply means healthd let a whole line in: start over
                while True:
                    if not s.recv(65536):
                        raise ConnectionResetError
            except BlockingIOError:
                pass
            except OSError:
                drops += 1
                s.close()
                del socks[i]
                continue
            try:
                s.send(msg[n % len(msg):n % len(msg) + 1])
                socks[i][1] = n + 1
            except OSError:
                drops += 1
                s.close()
                del socks[i]
        stop.wait(0.3)
    for s, _ in socks.values():
        s.close()
    print("trickle: %d connections, %d dropped" % (conns, drops), flush=True)


def server(a, streaming):
    try:
        os.unlink(a.socket)
    except FileNotFoundError:
        pass
    ls = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    ls.bind(a.socket)
    ls.listen(16)
    ls.setblocking(False)
    print("ready", flush=True)
    clients = []
    until = time.monotonic() + a.seconds
    chunk = b"x" * 65536
    while not stop.is_set() and time.monotonic() < until:
        r, w, _ = select.select([ls], clients if streaming else [], [], 0.2)
        if r:
            try:
                c, _ = ls.accept()
                c.setblocking(False)
                clients.append(c)
            except BlockingIOError:
                pass
        for c in w:
            try:
                while True:
                    c.send(chunk)
            except BlockingIOError:
                pass
            except OSError:
                c.close()
                clients.remove(c)
    for c in clients:
        c.close()
    ls.close()
    os.unlink(a.socket)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["pipeline", "trickle", "silent", "stream"])
    p.add_argument("--socket", required=True)
    p.add_argument("--seconds", type=float, default=20)
    p.add_argument("--count", type=int, default=300000)
    p.add_argument("--clients", type=int, default=100)
    a = p.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    if a.mode == "pipeline":
        pipeline(a)
    elif a.mode == "trickle":
        trickle(a)
    else:
        server(a, a.mode == "stream")


if __name__ == "__main__":
    sys.exit(main())
