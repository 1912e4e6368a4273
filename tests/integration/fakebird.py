#!/usr/bin/env python3
"""A broken BIRD on a unix socket, for fault-injection tests.

    fakebird.py --socket PATH --mode MODE

MODE: "garbage" greets with a line that is not BIRD's protocol; "silent"
accepts and never writes; "welcome-garbage" sends BIRD's welcome, then
answers every command with bytes that are not a reply; "welcome-silent"
sends the welcome and never answers a command; "welcome-ok" sends the
welcome and answers every command "0000" (so `restrict` gets no 0016). Prints "ready" once it
listens and one line per command received. Stops on SIGTERM.
"""
import argparse
import os
import selectors
import signal
import socket
import sys

WELCOME = b"0001 BIRD 2.0.12 ready.\n"
GREETING = b"HELLO this is not BIRD\n"
JUNK = b"\x00\xffjunk\n"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--socket", required=True)
    p.add_argument("--mode", required=True,
                   choices=["garbage", "silent", "welcome-garbage", "welcome-silent",
                            "welcome-ok"])
    args = p.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        os.unlink(args.socket)
    except FileNotFoundError:
        pass
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(args.socket)
    srv.listen(16)
    sel = selectors.DefaultSelector()
    sel.register(srv, selectors.EVENT_READ)
    print("ready", flush=True)
    while True:
        for key, _ in sel.select():
            s = key.fileobj
            if s is srv:
                c, _ = srv.accept()
                if args.mode == "garbage":
                    c.sendall(GREETING)
                elif args.mode.startswith("welcome"):
                    c.sendall(WELCOME)
                sel.register(c, selectors.EVENT_READ)
                continue
            try:
                data = s.recv(4096)
            except OSError:
                data = b""
            if not data:
                sel.unregister(s)
                s.close()
                continue
            for line in data.splitlines():
                print("command %r" % line.decode(errors="replace"), flush=True)
                try:
                    if args.mode == "welcome-garbage":
                        s.sendall(JUNK)
                    elif args.mode == "welcome-ok":
                        s.sendall(b"0000 \n")
                    elif args.mode == "garbage":
                        s.sendall(GREETING)
                except OSError:
                    pass


if __name__ == "__main__":
    main()
