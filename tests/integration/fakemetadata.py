#!/usr/bin/env python3
"""A stand-in for a cloud provider's instance metadata service (Vultr's
http://169.254.169.254/v1.json), which cannot exist in the lab: serves
GET /v1.json with the node's BGP session values in the provider's shape,
on a documentation address given by --listen. Prints "ready" once bound.
Every request is logged to stderr."""
import argparse, http.server, json, sys

ap = argparse.ArgumentParser()
ap.add_argument("--listen", required=True, help="ADDRESS:PORT")
ap.add_argument("--my-address", required=True)
ap.add_argument("--my-asn", required=True)
ap.add_argument("--peer-address", required=True)
ap.add_argument("--peer-asn", required=True)
ap.add_argument("--hostname", default="node")
o = ap.parse_args()
doc = {
    "hostname": o.hostname,
    "instanceid": "lab-" + o.hostname,
    "region": {"regioncode": "LAB"},
    "interfaces": [{"ipv4": {"address": o.my_address}, "network-type": "public"}],
    "bgp": {"ipv4": {"my-address": o.my_address, "my-asn": o.my_asn,
                     "peer-address": o.peer_address, "peer-asn": o.peer_asn}},
}
body = json.dumps(doc, indent=1).encode()


class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path != "/v1.json":
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        sys.stderr.write("metadata: %s %s\n" % (self.client_address[0], fmt % args))


host, port = o.listen.rsplit(":", 1)
srv = http.server.HTTPServer((host, int(port)), H)
print("ready", flush=True)
srv.serve_forever()
