#!/usr/bin/env python3
"""cannedapi.py: a CANNED RESPONDER for mesh-bootstrap's error paths.

This is not meshd and tests nothing of it (meshd has its own tests): it
answers the three requests the bootstrap makes with fixed replies in the
shapes of the contract, so that t_cloudinit.sh can drive the script into
each of its failure paths (a refused token, a wrong pin, a sha256 that does
not match, a path that leaves the root) and once through to the end.

    cannedapi.py --port-file F [--cert C --key K [--plain-port-file P]]
                 --token T --node N --tree DIR [--secret PATH=WHAT]
                 [--mutate KIND] [--metadata FILE] [--log FILE]

  POST /api/v1/nodes/enroll      200 with a credential when the body's token
                                 is T, else 403 {"error": "token refused: unknown"};
                                 --lose-reply: the first such request gets no
                                 reply at all, a second with the same public
                                 key 200 with a new credential and "retry":
                                 true, another key 403 "already redeemed"
  GET  /api/v1/nodes/N/config    with "Authorization: Bearer <credential>":
                                 every file under DIR (the node's tree from
                                 meshctl render), with its sha256 and check;
                                 --mutate sha256|dotdot|absolute|outside|cron|
                                 othernode spoils it (enrollpath: the
                                 enrolment reply points at another node's)
  GET  /v1.json                  the metadata FILE (the provider's stand-in)
The port it listens on (127.0.0.1) is written to F once it listens; with
--cert, TLS, and with --plain-port-file the same answers in plain HTTP on a
second port (the metadata service is plain HTTP). With
--log, one JSON line per request: method, path, whether the token or the
credential was right, the body's keys (never the token itself).
"""
import argparse
import hashlib
import json
import os
import secrets
import ssl
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CHECKS = {"bird.conf": "bird", "healthd.yaml": "healthd"}


def config_reply(a, node):
    files = []
    for dirpath, _, names in os.walk(a.tree):
        for name in names:
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, a.tree)
            with open(full, "rb") as f:
                content = f.read().decode("utf-8")
            check = CHECKS.get(name) or ("nft" if name.endswith(".nft") else None)
            files.append({"path": rel, "mode": "0%o" % (os.stat(full).st_mode & 0o777),
                          "sha256": hashlib.sha256(content.encode()).hexdigest(),
                          "check": check, "content": content})
    files.sort(key=lambda f: f["path"])
    if a.mutate == "sha256":
        files[0]["sha256"] = hashlib.sha256(b"something else").hexdigest()
    elif a.mutate in ("dotdot", "absolute", "outside", "cron"):
        content = "escaped\n"
        path = {"dotdot": "etc/../../escaped", "absolute": "/tmp/escaped",
                "outside": "root/.ssh/authorized_keys", "cron": "etc/cron.d/x"}[a.mutate]
        files.append({"path": path, "mode": "0644",
                      "sha256": hashlib.sha256(content.encode()).hexdigest(),
                      "check": None, "content": content})
    if a.mutate == "othernode":
        node = "lax1"
    secrets_ = []
    for s in a.secret:
        path, _, what = s.partition("=")
        secrets_.append({"path": path, "what": what})
    return {"node": node, "region": a.region, "inventory": "sha256:" + "0" * 64,
            "interface": a.interface, "private_key_file": "etc/wireguard/%s.key" % a.interface,
            "secrets": secrets_, "files": files}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port-file", required=True)
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--plain-port-file")
    p.add_argument("--token", required=True)
    p.add_argument("--node", required=True)
    p.add_argument("--region", default="ord")
    p.add_argument("--interface", default="wg0")
    p.add_argument("--tree", required=True)
    p.add_argument("--secret", action="append", default=[])
    p.add_argument("--mutate", default="none",
                   choices=["none", "sha256", "dotdot", "absolute", "outside", "cron", "othernode",
                            "enrollpath"])
    p.add_argument("--lose-reply", action="store_true")
    p.add_argument("--metadata")
    p.add_argument("--log")
    a = p.parse_args()
    credential = secrets.token_hex(32)
    state = {"redeemed_key": None, "lost": False}

    class H(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def note(self, **kv):
            if a.log:
                with open(a.log, "a") as f:
                    f.write(json.dumps(dict(method=self.command, path=self.path, **kv)) + "\n")

        def reply(self, code, body):
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self):
            n = int(self.headers.get("Content-Length", "0"))
            raw = self.rfile.read(n) if 0 < n < 65536 else b""
            try:
                body = json.loads(raw)
            except ValueError:
                body = {}
            if self.path != "/api/v1/nodes/enroll":
                return self.reply(404, {"error": "no such path"})
            ok = body.get("token") == a.token
            self.note(token_ok=ok, keys=sorted(body), public_key=body.get("public_key"),
                      external_ip=body.get("external_ip"))
            if not ok:
                return self.reply(403, {"error": "token refused: unknown"})
            nonlocal credential
            reply = {"node": a.node, "region": a.region, "credential": credential,
                     "config": "/api/v1/nodes/%s/config" % (a.node if a.mutate != "enrollpath" else "lax1"),
                     "wireguard": "/api/v1/nodes/%s/wireguard" % a.node}
            if a.lose_reply:
                # meshd's way: the first redemption committed, its reply lost;
                # the same key again is a retry with a new credential
                if state["redeemed_key"] is None:
                    state["redeemed_key"] = body.get("public_key")
                    self.close_connection = True
                    return
                if body.get("public_key") != state["redeemed_key"]:
                    return self.reply(403, {"error": "token refused: already redeemed"})
                credential = secrets.token_hex(32)
                reply.update(credential=credential, retry=True)
            self.reply(200, reply)

        def do_GET(self):
            if self.path == "/v1.json" and a.metadata:
                self.note()
                with open(a.metadata) as f:
                    return self.reply(200, json.load(f))
            if self.path != "/api/v1/nodes/%s/config" % a.node:
                return self.reply(404, {"error": "no such path"})
            ok = self.headers.get("Authorization") == "Bearer " + credential
            self.note(credential_ok=ok)
            if not ok:
                return self.reply(401, {"error": "no credential"})
            self.reply(200, config_reply(a, a.node))

    def port_file(path, srv):
        with open(path + ".tmp", "w") as f:
            f.write("%d\n" % srv.server_address[1])
        os.rename(path + ".tmp", path)

    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    if a.cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(a.cert, a.key)
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
        if a.plain_port_file:
            plain = ThreadingHTTPServer(("127.0.0.1", 0), H)
            threading.Thread(target=plain.serve_forever, daemon=True).start()
            port_file(a.plain_port_file, plain)
    port_file(a.port_file, srv)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
