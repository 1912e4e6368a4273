#!/usr/bin/env python3
"""A tiny real HTTP server standing in for the node's web service.

    webserver.py [--host 127.0.0.1] [--port 8080] [--dir DIR] [--mode MODE]

Serves 200 "ok" on /healthz and 404 elsewhere. With --dir, a path is
served from the file of that name in DIR (404 when it is missing), so a
test can fail the health endpoint by removing DIR/healthz. Prints "ready PORT" on
stdout once it accepts connections (port 0 lets the OS pick one). Stops on
SIGTERM or SIGINT; the lab starts and stops it by its PID.

--mode fails the service the way real servers fail: "hang" accepts and
reads the request but never answers, "status:N" answers N to everything,
"trickle" sends a 200 one byte every 100 ms. The default is "ok".
--mode-file FILE: the mode is read from FILE at every request (when it
exists), so a test can switch it without a moment of "connection refused".
"""
import argparse
import os
import http.server
import signal
import socketserver
import sys
import threading
import time


args = None


def current_mode():
    if args.mode_file:
        try:
            with open(args.mode_file) as f:
                return f.read().strip() or args.mode
        except OSError:
            pass
    return args.mode


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a real web server would

    def log_message(self, *a):
        pass

    def do_GET(self):
        mode = current_mode()
        if mode == "hang":
            threading.Event().wait()  # the connection stays open, silent
        if mode == "trickle":
            return self.trickle()
        path = self.path.split("?", 1)[0]
        body = None
        if args.dir is not None:
            name = os.path.basename(path)
            try:
                with open(os.path.join(args.dir, name), "rb") as f:
                    body = f.read() if name else None
            except OSError:
                body = None
        elif path == "/healthz":
            body = b"ok\n"
        ok = body is not None
        body = body if ok else b"not found\n"
        if mode.startswith("status:"):
            ok, body = True, b"failing on purpose\n"
        code = int(mode[7:]) if mode.startswith("status:") else 200
        self.send_response(code if ok else 404)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def trickle(self):
        reply = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n"
        for i in range(len(reply)):
            self.wfile.write(reply[i:i + 1])
            self.wfile.flush()
            time.sleep(0.1)

    def do_HEAD(self):
        self.do_GET()


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True  # restarted at once on the same port by the tests
    request_queue_size = 1024   # hundreds of checks connect in the same second


def main():
    global args
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--dir")
    p.add_argument("--mode", default="ok")
    p.add_argument("--mode-file")
    args = p.parse_args()
    srv = Server((args.host, args.port), Handler)
    # SIGTERM ends the process at once: open keep-alive connections die with it.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    sys.stdout.write("ready %d\n" % srv.server_address[1])
    sys.stdout.flush()
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
