#!/usr/bin/env python3
"""A real HTTP/HTTPS server for the check tests.

Listens on 127.0.0.1 on a port the OS picks and prints the port on stdout
once it accepts connections. Then, unless --quiet, one line per event:

    conn N                      a TCP connection was accepted (N counts from 1)
    req conn=N sni=S path=P headers=Name: value|Name: value|...

The body of a normal reply echoes what the server saw:
    ok conn=N host=HOST sni=SNI

Modes:
    ok          200 (or --status N, or N for a path /status/N) with the
                echo body (or --body TEXT)
    hang        accept, read the request, never reply
    slow        headers at once, then the body one byte every 100 ms
    close       accept and close at once, before reading anything
--pad N puts N bytes of 'x' before the body. --tls serves HTTPS with a
self-signed certificate for www.example.net made by openssl at start in a
per-PID temporary directory, which is removed once the key is loaded.
"""
import argparse
import http.server
import os
import shutil
import socketserver
import ssl
import subprocess
import sys
import tempfile
import threading
import time

lock = threading.Lock()
conns = 0
args = None
tls_ctx = None


def emit(line):
    if args.quiet:
        return
    with lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def make_tls_context():
    d = tempfile.mkdtemp(prefix="healthd-testhttp-%d-" % os.getpid())
    try:
        crt, key = os.path.join(d, "crt.pem"), os.path.join(d, "key.pem")
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec",
             "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-days", "1", "-subj", "/CN=www.example.net",
             "-addext", "subjectAltName=DNS:www.example.net,IP:127.0.0.1",
             "-keyout", key, "-out", crt],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(crt, key)
    finally:
        shutil.rmtree(d, ignore_errors=True)
    ctx.set_alpn_protocols(["http/1.1"])

    def on_sni(sslsock, name, _ctx):
        sslsock.sni_seen = name
    ctx.sni_callback = on_sni
    return ctx


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so tests can count connections

    def setup(self):
        global conns
        with lock:
            conns += 1
            self.conn_no = conns
        emit("conn %d" % self.conn_no)
        if args.mode == "close":
            self.request.close()
            self.close_connection = True
            self.rfile = self.wfile = None
            return
        self.sni = "-"
        if tls_ctx:
            self.request.settimeout(10)
            self.request = tls_ctx.wrap_socket(self.request, server_side=True)
            self.request.settimeout(None)
            self.sni = getattr(self.request, "sni_seen", None) or "-"
        super().setup()

    def handle(self):
        if args.mode == "close":
            return
        try:
            super().handle()
        except (OSError, ssl.SSLError):
            pass

    def finish(self):
        if args.mode == "close":
            return
        try:
            super().finish()
            if tls_ctx:
                self.request.close()
        except OSError:
            pass

    def log_message(self, *a):
        pass

    def do_GET(self):
        hdrs = "|".join("%s: %s" % (k, v) for k, v in self.headers.items())
        emit("req conn=%d sni=%s path=%s headers=%s"
             % (self.conn_no, self.sni, self.path, hdrs))
        if args.mode == "hang":
            threading.Event().wait()
        host = self.headers.get("Host", "-")
        text = args.body if args.body is not None else \
            "ok conn=%d host=%s sni=%s\n" % (self.conn_no, host, self.sni)
        body = b"x" * args.pad + text.encode()
        status = args.status
        if self.path.startswith("/status/"):
            status = int(self.path[len("/status/"):])
        if status in (204, 304):
            body = b""  # these carry no body, not even on keep-alive
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        if status not in (204, 304):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if args.mode == "slow":
            for i in range(len(body)):
                self.wfile.write(body[i:i + 1])
                self.wfile.flush()
                time.sleep(0.1)
        else:
            self.wfile.write(body)


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    request_queue_size = 1024  # many probes connect at once
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        pass  # failed handshakes are what some tests are about


def main():
    global args, tls_ctx
    p = argparse.ArgumentParser()
    p.add_argument("--mode", default="ok",
                   choices=["ok", "hang", "slow", "close"])
    p.add_argument("--status", type=int, default=200)
    p.add_argument("--body")
    p.add_argument("--pad", type=int, default=0)
    p.add_argument("--tls", action="store_true")
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args()
    if args.tls:
        tls_ctx = make_tls_context()
    srv = Server(("127.0.0.1", 0), Handler)
    sys.stdout.write("%d\n" % srv.server_address[1])
    sys.stdout.flush()
    srv.serve_forever()


if __name__ == "__main__":
    main()
