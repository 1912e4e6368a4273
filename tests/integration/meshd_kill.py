#!/usr/bin/env python3
"""kill -9 of meshd in the middle of enrolments, --rounds times; run inside
meshd's network namespace (t_meshd.sh).

Each round starts meshd, makes tokens through the admin socket (meshctl
token create), redeems them one after another from a thread, and kills
meshd with SIGKILL once a varied number of replies has come back (0 to 3)
and a varied fraction of a few milliseconds later, so the kill lands
before, during and after the transaction of the next enrolment. Then meshd
starts again and every token is tried once more:
  - a token whose enrolment was answered 200 must be refused "already
    redeemed" (nothing redeemed is lost);
  - a token whose reply never came is either refused so (it was committed)
    or redeemed now, and then refused on a third try (never twice);
and the database holds one "enrolled" audit row per redeemed token.
Exits non-zero with the first broken promise.
"""
import argparse, base64, http.client, json, os, random, signal, sqlite3, subprocess, sys, threading, time

ap = argparse.ArgumentParser()
for a in ("meshd", "conf", "meshctl", "admin", "db", "url", "log"):
    ap.add_argument("--" + a, required=True)
ap.add_argument("--rounds", type=int, default=20)
ap.add_argument("--node", default="ord1")
ap.add_argument("--ip", default="198.51.100.6")
o = ap.parse_args()
host, port = o.url.split("//")[1].split(":")
port = int(port)


def call(method, path, body=None):
    c = http.client.HTTPConnection(host, port, timeout=5)
    try:
        c.request(method, path, body=json.dumps(body) if body else None,
                  headers={"Content-Type": "application/json"})
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def start():
    log = open(o.log, "ab")
    p = subprocess.Popen([o.meshd, "-c", o.conf], stdout=log, stderr=log)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if p.poll() is not None:
            sys.exit("meshd exited with %s at start" % p.returncode)
        try:
            if call("GET", "/api/v1/status")[0] == 200:
                return p
        except OSError:
            pass
        time.sleep(0.02)
    p.kill()
    sys.exit("meshd did not answer within 10 s")


def token():
    env = dict(os.environ, MESHD_ADMIN_SOCKET=o.admin)
    # --replace: the node is enrolled after the first round
    r = subprocess.run([o.meshctl, "token", "create", o.node, "--ttl", "1h", "--replace"], env=env,
                       capture_output=True, text=True)
    if r.returncode != 0:
        return None, r.stderr.strip()
    return r.stdout.strip(), None


def enroll(t):
    key = base64.b64encode(os.urandom(32)).decode()
    return call("POST", "/api/v1/nodes/enroll", {"token": t, "public_key": key, "external_ip": o.ip})


committed, unknown = [], []
for rnd in range(o.rounds):
    p = start()
    toks, replies, problems = [], [], []
    killed = threading.Event()
    want = rnd % 4

    # one token at a time: a redemption voids the node's other open tokens
    def worker():
        for _ in range(4):
            t, why = token()
            if t is None:
                if not killed.is_set():
                    problems.append("meshctl token create: %s" % why)
                return
            toks.append(t)
            try:
                st, body = enroll(t)
                replies.append((t, st, body))
            except OSError:
                replies.append((t, None, b""))
                return

    th = threading.Thread(target=worker)
    th.start()
    deadline = time.monotonic() + 10
    while len(replies) < want and time.monotonic() < deadline and th.is_alive():
        time.sleep(0.0005)
    time.sleep(random.random() * 0.004)   # where in the next exchange the kill lands
    killed.set()
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    th.join(15)
    if problems:
        sys.exit("round %d: %s" % (rnd, problems[0]))
    seen = set()
    for t, st, body in replies:
        seen.add(t)
        if st == 200:
            committed.append(t)
        elif st is None:
            unknown.append(t)
        else:
            sys.exit("round %d: enrolment refused before the kill: %s %s" % (rnd, st, body[:200]))
    unknown.extend(t for t in toks if t not in seen)

late = 0
p = start()
try:
    for t in committed:
        st, body = enroll(t)
        if st != 403 or b"already redeemed" not in body:
            sys.exit("a token answered 200 before kill -9 was lost or redeemed again: %s %s" % (st, body[:200]))
    for t in unknown:
        # committed before the kill (already redeemed), voided by a later
        # redemption (expired), or redeemed now and then refused
        st, body = enroll(t)
        if st == 200:
            late += 1
            st, body = enroll(t)
        if st != 403 or (b"already redeemed" not in body and b"expired" not in body):
            sys.exit("a token was redeemed twice: %s %s" % (st, body[:200]))
finally:
    os.kill(p.pid, signal.SIGTERM)
    p.wait()
db = sqlite3.connect(o.db)
redeemed = db.execute("SELECT count(*) FROM tokens WHERE redeemed_at IS NOT NULL").fetchone()[0]
enrolled = db.execute("SELECT count(*) FROM audit WHERE event = 'enrolled'").fetchone()[0]
if enrolled != redeemed:
    sys.exit("audit: %d enrolments for %d redeemed tokens" % (enrolled, redeemed))
print("measured: kill -9 of meshd in %d rounds of enrolments: %d answered and kept, %d cut off "
      "(%d had committed, %d redeemed after the restart), none redeemed twice; %d tokens redeemed, "
      "%d enrolments in the audit" % (o.rounds, len(committed), len(unknown), len(unknown) - late, late,
                                      redeemed, enrolled))
