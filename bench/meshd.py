"""The meshd part: the API under wrk, on loopback (no namespace).

meshd, copied from the build directory when the part begins, serves the
lab's inventory (tests/mesh/lab.yaml.in with its placeholders filled as
tests/integration/t_meshd.sh fills them: lax1, ewr1 and mia1 with keys
from `wg genkey | wg pubkey`, ord1 without one) in plain HTTP on one
loopback port and in HTTPS on another, with a throwaway P-256
certificate from `openssl req`. ord1 is enrolled as a node enrols: a
token from `meshctl token create` over the admin socket, then POST
/api/v1/nodes/enroll with a key of its own; its credential is the
`Authorization: Bearer` of the config runs.

Load: `wrk -t2 -c32` for WINDOW s against GET /api/v1/nodes/ord1/config
over HTTP and over HTTPS, and against GET /api/v1/status over HTTP, with
the limits raised (rate and burst 100,000, 512 connections a source) so
that the limiter cuts nothing; wrk's figures come from bench/wrkdone.lua.
meshd's CPU is utime+stime from /proc/PID/stat over each run (and
schedstat's on-CPU time) divided by the requests; its RSS is read from
/proc/PID/status after the load. wrk shares the two cores with meshd.

Then meshd again with the default limits (rate 10, burst 20, 16
connections a source): one source asks GET /api/v1/status back to back
on one keep-alive connection for LIMIT_S s, and a second source asks 25
times meanwhile; what each got through is counted.

Everything started is stopped by its PID; the files live in the bench's
temp dir, which carries its PID.
"""
import hashlib
import http.client
import json
import os
import shutil
import ssl
import subprocess
import time

import procs

SRC = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WRKDONE = os.path.join(SRC, "bench", "wrkdone.lua")
THREADS, CONNS = 2, 32
LIMIT_S = 3.0
RAISED = {"rate": 100000, "burst": 100000, "max_body": 8192, "per_source": 512}
DEFAULTS = {"rate": 10, "burst": 20, "max_body": 8192, "per_source": 16}
ORD1_IP = "198.51.100.6"        # ord1's public_ipv4 in the lab inventory


def snapshot(ctx, d):
    """meshd and meshctl as they are now, copied: a rebuild while the part
    runs changes nothing under it. (dir, {name: sha256 prefix})."""
    b = os.path.join(d, "bin")
    os.makedirs(b, exist_ok=True)
    ids = {}
    for name in ("meshd", "meshctl"):
        shutil.copy2(os.path.join(ctx.build, name), b)
        with open(os.path.join(b, name), "rb") as f:
            ids[name] = hashlib.sha256(f.read()).hexdigest()[:16]
    return b, ids


def run_out(argv, **kw):
    r = subprocess.run(argv, capture_output=True, text=True, timeout=60, **kw)
    if r.returncode != 0:
        raise RuntimeError("%s: exit %d: %s" % (" ".join(argv[:3]), r.returncode,
                                               (r.stderr or r.stdout).strip()[-500:]))
    return r.stdout


def wg_pubkey():
    return run_out(["wg", "pubkey"], input=run_out(["wg", "genkey"])).strip()


def lab_inventory(d):
    with open(os.path.join(SRC, "tests", "mesh", "lab.yaml.in")) as f:
        lines = f.read().splitlines(True)
    out = []
    for line in lines:
        if "@KEY_ord1@" in line:
            continue                        # ord1 enrols in the run
        line = line.replace("@LAB@", os.path.join(d, "lab"))
        for n in ("lax1", "ewr1", "mia1"):
            if "@KEY_%s@" % n in line:
                line = line.replace("@KEY_%s@" % n, wg_pubkey())
        out.append(line)
    path = os.path.join(d, "mesh.yaml")
    with open(path, "w") as f:
        f.write("".join(out))
    return path


def certificate(d):
    cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    run_out(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-nodes", "-days", "2", "-subj", "/CN=meshd", "-keyout", key, "-out", cert])
    os.chmod(key, 0o600)
    return cert, key


class Meshd:
    def __init__(self, b, d, inv, cert, key, limits):
        self.d = d
        self.http, self.https = procs.free_port(), procs.free_port()
        while self.https == self.http:
            self.https = procs.free_port()
        self.admin = os.path.join(d, "admin.sock")
        self.conf = os.path.join(d, "meshd.yaml")
        with open(self.conf, "w") as f:
            f.write("inventory: %s\nstate: %s\nadmin_socket: %s\nlisten:\n"
                    "  - {address: \"127.0.0.1:%d\"}\n"
                    "  - {address: \"127.0.0.1:%d\", certificate: %s, key: %s}\n"
                    "limits: {rate: %d, burst: %d, max_body: %d, per_source: %d}\n" %
                    (inv, os.path.join(d, "state", "meshd.db"), self.admin, self.http,
                     self.https, cert, key, limits["rate"], limits["burst"],
                     limits["max_body"], limits["per_source"]))
        self.p = procs.start([os.path.join(b, "meshd"), "-c", self.conf],
                             os.path.join(d, "meshd.log"))
        # asked from 127.0.0.3, so that no bucket of the measured sources is touched
        try:
            procs.wait_until(10, "meshd to answer on 127.0.0.1:%d" % self.http,
                             lambda: self.p.poll() is None and
                             get(self.http, "/api/v1/status", source="127.0.0.3")[0] == 200)
        except RuntimeError as e:
            self.stop()
            raise RuntimeError("%s: %s" % (e, self.log.strip()[-500:]))

    def stop(self):
        rc = procs.stop(self.p)
        with open(os.path.join(self.d, "meshd.log"), errors="replace") as f:
            self.log = f.read()
        return rc


def get(port, path, headers=None, source=None, tls=False, method="GET", body=None):
    """(status, body bytes, headers) over a fresh connection."""
    kw = {"timeout": 10, "source_address": (source, 0) if source else None}
    if tls:
        c = http.client.HTTPSConnection("127.0.0.1", port,
                                        context=ssl._create_unverified_context(), **kw)
    else:
        c = http.client.HTTPConnection("127.0.0.1", port, **kw)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        return r.status, r.read(), dict(r.getheaders())
    finally:
        c.close()


def enrol(b, m, say):
    tok = run_out([os.path.join(b, "meshctl"), "token", "create", "ord1", "--ttl", "1h"],
                  env=dict(os.environ, MESHD_ADMIN_SOCKET=m.admin)).strip()
    req = json.dumps({"token": tok, "public_key": wg_pubkey(), "external_ip": ORD1_IP})
    st, body, _ = get(m.https, "/api/v1/nodes/enroll", tls=True, method="POST", body=req,
                      headers={"Content-Type": "application/json"})
    if st != 200:
        raise RuntimeError("enrol of ord1: %d %s" % (st, body[:300]))
    cred = json.loads(body)["credential"]
    say("meshd: ord1 enrolled through the admin socket's token and POST /api/v1/nodes/enroll")
    return cred


def wrk(m, d, name, url, secs, auth=None):
    """One wrk run; wrk's figures and meshd's CPU over it."""
    log = os.path.join(d, "wrk-%s.out" % name)
    argv = ["wrk", "-t%d" % THREADS, "-c%d" % CONNS, "-d%ds" % secs, "--latency",
            "-s", WRKDONE]
    if auth:
        argv += ["-H", "Authorization: Bearer " + auth]
    c0, s0 = procs.cpu_seconds(m.p.pid)
    w = procs.start(argv + [url], log)
    w.wait(timeout=secs + 30)
    procs.stop(w)
    c1, s1 = procs.cpu_seconds(m.p.pid)
    with open(log) as f:
        text = f.read()
    line = [x for x in text.splitlines() if x.startswith("BENCH ")]
    if w.returncode != 0 or not line:
        raise RuntimeError("wrk %s: exit %s: %s" % (name, w.returncode, text[-500:]))
    fig = json.loads(line[-1][6:])
    secs_run = fig["duration_us"] / 1e6
    n = fig["requests"]
    fig.update({
        "url": url.replace("127.0.0.1:%d" % m.http, "127.0.0.1:HTTP").replace(
            "127.0.0.1:%d" % m.https, "127.0.0.1:HTTPS"),
        "rps": n / secs_run,
        "cpu_s": c1 - c0,
        "cpu_us_per_request": (c1 - c0) * 1e6 / n if n else None,
        "cpu_sched_us_per_request": (s1 - s0) * 1e6 / n if n and s0 is not None else None,
        "cpu_share": (c1 - c0) / secs_run,
        "wrk_output": "\n".join(x for x in text.splitlines() if not x.startswith("BENCH ")),
    })
    return fig


def config_body(m, cred):
    st, body, hdr = get(m.http, "/api/v1/nodes/ord1/config",
                        headers={"Authorization": "Bearer " + cred})
    if st != 200:
        raise RuntimeError("GET /api/v1/nodes/ord1/config: %d %s" % (st, body[:300]))
    st2, body2, _ = get(m.https, "/api/v1/nodes/ord1/config", tls=True,
                        headers={"Authorization": "Bearer " + cred})
    if st2 != 200 or body2 != body:
        raise RuntimeError("the config over HTTPS is not the one over HTTP (%d)" % st2)
    files = json.loads(body)["files"]
    big = max(files, key=lambda f: len(f["content"]))
    return {"bytes": len(body), "files": len(files), "largest": big["path"],
            "largest_bytes": len(big["content"].encode())}


def limited(m):
    """At the default limits: one source back to back for LIMIT_S s on one
    keep-alive connection, a second source 25 times meanwhile."""
    codes, retry = {}, set()
    c = http.client.HTTPConnection("127.0.0.1", m.http, timeout=10)
    other = None
    t0 = time.monotonic()
    while time.monotonic() - t0 < LIMIT_S:
        c.request("GET", "/api/v1/status")
        r = c.getresponse()
        r.read()
        codes[r.status] = codes.get(r.status, 0) + 1
        if r.status == 429:
            retry.add(r.getheader("Retry-After"))
            if other is None:           # the first source is held back by now
                other = [get(m.http, "/api/v1/status", source="127.0.0.2")[0]
                         for _ in range(25)]
    elapsed = time.monotonic() - t0
    c.close()
    st, body, _ = get(m.http, "/api/v1/status", source="127.0.0.3")
    counters = json.loads(body) if st == 200 else {}
    return {"seconds": elapsed, "requests": sum(codes.values()), "ok": codes.get(200, 0),
            "refused": codes.get(429, 0), "other_codes": {str(k): v for k, v in codes.items()
                                                         if k not in (200, 429)},
            "retry_after": sorted(x for x in retry if x is not None),
            "second_source_ok": (other or []).count(200),
            "second_source_asked": len(other or []),
            "rate_limited_counter": counters.get("rate_limited")}


def measure(ctx, d, quick, say):
    secs = 3 if quick else 10
    b, ids = snapshot(ctx, d)
    res = {"binaries": ids, "threads": THREADS, "connections": CONNS, "window_s": secs,
           "limits": RAISED, "default_limits": DEFAULTS}
    inv = lab_inventory(d)
    cert, key = certificate(d)
    m = Meshd(b, d, inv, cert, key, RAISED)
    try:
        cred = enrol(b, m, say)
        res["config_body"] = config_body(m, cred)
        res["rss_before"] = procs.memory_kb(m.p.pid)
        runs = [("config", "HTTP", "http://127.0.0.1:%d/api/v1/nodes/ord1/config" % m.http, cred),
                ("config", "HTTPS", "https://127.0.0.1:%d/api/v1/nodes/ord1/config" % m.https, cred),
                ("status", "HTTP", "http://127.0.0.1:%d/api/v1/status" % m.http, None)]
        res["runs"] = []
        for what, over, url, auth in runs:
            say("meshd: wrk -t%d -c%d -d%ds GET %s over %s" %
                (THREADS, CONNS, secs, url.split("/", 3)[3], over))
            fig = wrk(m, d, "%s-%s" % (what, over.lower()), url, secs, auth)
            fig.update({"what": what, "over": over})
            res["runs"].append(fig)
            say(run_line(fig))
        res["rss_after"] = procs.memory_kb(m.p.pid)
        st, body, _ = get(m.http, "/api/v1/status")
        res["status_after"] = json.loads(body) if st == 200 else None
    finally:
        res["exit"] = m.stop()
    say("meshd: again with the default limits: one source back to back for %.0f s" % LIMIT_S)
    m = Meshd(b, d, inv, cert, key, DEFAULTS)
    try:
        res["limiter"] = dict(limited(m), defaults=DEFAULTS)
    finally:
        m.stop()
    say(limiter_line(res["limiter"]))
    return res


def run(ctx, quick, say):
    d = os.path.join(ctx.tmp, "meshd")         # ctx.tmp carries the bench's PID
    os.makedirs(d, exist_ok=True)
    try:
        return measure(ctx, d, quick, say)
    except (RuntimeError, OSError, ValueError, KeyError, subprocess.SubprocessError) as e:
        # recorded, so that a full run keeps every other part's figures
        say("meshd: failed: %s" % e)
        return {"error": str(e)}
    finally:
        shutil.rmtree(d, ignore_errors=True)


# ---- lines for the terminal (report.py writes the markdown) ----

def run_line(r):
    return ("meshd %s over %s: %.0f req/s, p50 %.2f ms p99 %.2f ms, %s non-2xx, CPU %.1f µs/request"
            % (r["what"], r["over"], r["rps"], r["p50_us"] / 1000.0, r["p99_us"] / 1000.0,
               r["status_errors"], r["cpu_us_per_request"] or 0))


def limiter_line(lim):
    return ("meshd limiter at rate %d/s burst %d: one source back to back for %.1f s got %d of "
            "%d through (Retry-After %s); a second source meanwhile %d of %d" %
            (DEFAULTS["rate"], DEFAULTS["burst"], lim["seconds"], lim["ok"], lim["requests"],
             ", ".join(lim["retry_after"]) or "-", lim["second_source_ok"],
             lim["second_source_asked"]))
