#!/usr/bin/env python3
"""The services of one mesh-lab node (tests/integration/meshlab.sh).

    nodeweb.py --name NODE [--http ADDR:PORT]... [--tcp ADDR:PORT]...

--http serves GET (and HEAD) of / and /healthz with 200 and "NODE\\n" as
the body, 404 elsewhere: the anycast web service on 203.0.113.10:80 and
the looking glass's stand-in on 8080. --tcp accepts connections and
writes one line, "SSH-2.0-meshlab NODE" (port 22) or "NODE" (any other
port), then closes: the stand-in for sshd or a TLS port. ADDR is IPv4 or
IPv6 in brackets ([2001:db8:100::10]:80). Prints "ready" on stdout once
every socket listens; stops at once on SIGTERM (the lab stops it by PID).
"""
import argparse
import http.server
import os
import signal
import socket
import socketserver
import sys
import threading

NAME = b""


def split(spec):
    host, _, port = spec.rpartition(":")
    host = host.strip("[]")
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    return fam, host, int(port)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a real web server would

    def log_message(self, *a):
        pass

    def do_GET(self):
        path = self.path.split("?", 1)[0]
        ok = path in ("/", "/healthz")
        body = NAME + b"\n" if ok else b"not found\n"
        self.send_response(200 if ok else 404)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_HEAD = do_GET


def http_server(spec):
    fam, host, port = split(spec)

    class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
        address_family = fam
        daemon_threads = True
        allow_reuse_address = True  # started again at once on the same port
        request_queue_size = 256

        def server_bind(self):  # without HTTPServer's reverse lookup of ADDR
            socketserver.TCPServer.server_bind(self)
            self.server_name, self.server_port = host, port

    srv = Server((host, port), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()


def tcp_server(spec):
    fam, host, port = split(spec)
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, port))
    s.listen(64)
    line = (b"SSH-2.0-meshlab " + NAME if port == 22 else NAME) + b"\r\n"

    def loop():
        while True:
            c, _ = s.accept()
            try:
                c.sendall(line)
            except OSError:
                pass
            c.close()

    threading.Thread(target=loop, daemon=True).start()


def main():
    global NAME
    p = argparse.ArgumentParser()
    p.add_argument("--name", required=True)
    p.add_argument("--http", action="append", default=[])
    p.add_argument("--tcp", action="append", default=[])
    a = p.parse_args()
    NAME = a.name.encode()
    # SIGTERM is taken by sigwait below, in the main thread: blocked before
    # any thread starts, so every thread inherits the mask and none can
    # swallow it; a Python handler could wait forever for a request thread
    # stuck in a keep-alive read.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    for spec in a.http:
        http_server(spec)
    for spec in a.tcp:
        tcp_server(spec)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
    os._exit(0)


if __name__ == "__main__":
    main()
