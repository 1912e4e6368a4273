#!/usr/bin/env python3
"""A fake of the few Vultr v2 API calls contrib/vultr/vultr-deploy makes,
on loopback, for t_vultr.sh (the real API cannot be reached here).

    fakevultr.py --key KEY --log FILE [--fail-create MSG]

Prints its port on stdout. POST /v2/instances checks the bearer key and
the body's fields, answers like Vultr (202, the instance pending, with a
default_password); GET /v2/instances/ID answers pending twice, then
active with a main_ip. Every request is appended to FILE as JSON.
"""
import argparse
import http.server
import json
import sys

A = None
POLLS = {}


class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def reply(self, code, obj):
        raw = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def record(self, body):
        with open(A.log, "a") as f:
            f.write(json.dumps({"method": self.command, "path": self.path,
                                "auth": self.headers.get("Authorization", ""),
                                "body": body}) + "\n")

    def authorised(self):
        if self.headers.get("Authorization") != "Bearer " + A.key:
            self.reply(401, {"error": "Invalid API token.", "status": 401})
            return False
        return True

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        try:
            body = json.loads(self.rfile.read(n))
        except ValueError:
            body = None
        self.record(body)
        if not self.authorised():
            return
        if self.path != "/v2/instances" or not isinstance(body, dict):
            return self.reply(400, {"error": "bad request", "status": 400})
        if A.fail_create:
            return self.reply(400, {"error": A.fail_create, "status": 400})
        for k in ("region", "plan", "os_id", "label", "user_data"):
            if k not in body:
                return self.reply(400, {"error": "missing " + k, "status": 400})
        POLLS["inst-1"] = 0
        self.reply(202, {"instance": {"id": "inst-1", "label": body["label"], "status": "pending",
                                      "main_ip": "0.0.0.0", "default_password": "S3cret-root-pw"}})

    def do_GET(self):
        self.record(None)
        if not self.authorised():
            return
        iid = self.path.rsplit("/", 1)[-1]
        if not self.path.startswith("/v2/instances/") or iid not in POLLS:
            return self.reply(404, {"error": "Not found", "status": 404})
        POLLS[iid] += 1
        active = POLLS[iid] > 2
        self.reply(200, {"instance": {"id": iid, "status": "active" if active else "pending",
                                      "main_ip": "203.0.113.77" if active else "0.0.0.0",
                                      "v6_main_ip": "2001:db8::77" if active else "",
                                      "default_password": "S3cret-root-pw"}})


def main():
    global A
    p = argparse.ArgumentParser()
    p.add_argument("--key", required=True)
    p.add_argument("--log", required=True)
    p.add_argument("--fail-create", default="")
    A = p.parse_args()
    srv = http.server.HTTPServer(("127.0.0.1", 0), H)
    print(srv.server_address[1], flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
