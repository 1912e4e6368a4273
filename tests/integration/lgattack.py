#!/usr/bin/env python3
"""Hostile requests against meshlg (t_lg.sh).

    lgattack.py --target HOST:PORT --source ADDR --commands FILE

Every query parameter of the looking glass (the protocol name of
/protocol/, /routes/protocol/, /routes/filtered/, /routes/noexport/; the
network of /route/net/ and /route?net=; the value of uncached=; the name
of an argument) is tried with CR, LF, NUL, ';', '|', quotes, '$(',
backticks, a leading '-', a 10 KB string, invalid UTF-8, and shell or
BIRD syntax around a valid value, each raw and percent-encoded. Every
answer must be 400 with a reason in the body, except where the HTTP
server itself refuses the request line before meshlg sees it (414 when
it is over the 16 KB header cap; a raw NUL, at which libmicrohttpd ends
the request line: what comes before it is an ordinary request, answered
as one, and nothing after it reaches meshlg), and a well-formed name BIRD
does not run ("all"), which is 404. Then FILE, the commands BIRD received (birdrecord.py),
must hold only lines of the allowlist below. Prints one "measured:" line.
"""
import argparse
import ast
import re
import socket
import sys

ALLOW = [
    r"restrict",
    r"show status",
    r"show protocols",
    r"show protocols all",
    r'show protocols all "[A-Za-z_][A-Za-z0-9_]{0,63}"',
    r"show route for [0-9a-f.:]+ all",
    r"show route [0-9a-f.:]+/[0-9]{1,3} all",
    r"show route protocol [A-Za-z_][A-Za-z0-9_]{0,63} all",
    r"show route filtered protocol [A-Za-z_][A-Za-z0-9_]{0,63} all",
    r"show route noexport [A-Za-z_][A-Za-z0-9_]{0,63} all",
    r"show route count",
]
ALLOW_RE = [re.compile("^(" + a + ")\n$") for a in ALLOW]

BAD = [b"\r", b"\n", b"\x00", b";", b"|", b'"', b"'", b"$(", b"`", b"-", b"A" * 10240,
       b"\xff\xfe", b"\xc3", b"\xed\xa0\x80", b" ", b"*", b"\\", b"%"]
VALID_NAME = b"healthd_web_v4"
VALID_NET = b"203.0.113.0/24"


def pct(b):
    return "".join("%%%02X" % c for c in b).encode()


def request(target, source, path):
    host, port = target.rsplit(":", 1)
    s = socket.create_connection((host, int(port)), timeout=5, source_address=(source, 0))
    s.sendall(b"GET " + path + b" HTTP/1.1\r\nHost: lg\r\nConnection: close\r\n\r\n")
    data = b""
    while True:
        try:
            chunk = s.recv(65536)
        except (ConnectionResetError, socket.timeout):
            break
        if not chunk:
            break
        data += chunk
    s.close()
    m = re.match(rb"HTTP/1\.[01] (\d{3})", data)
    body = data.split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in data else b""
    return (int(m.group(1)) if m else 0), body


def cases():
    for bad in BAD:
        for form, enc in (("raw", lambda b: b), ("pct", pct)):
            # around a valid value, alone, and leading
            for val in (bad, VALID_NAME + enc(bad) if form == "pct" else VALID_NAME + bad,
                        (enc(bad) if form == "pct" else bad) + VALID_NAME):
                v = enc(val) if form == "pct" and val is bad else val
                for route in (b"/protocol/", b"/routes/protocol/", b"/routes/filtered/",
                              b"/routes/noexport/"):
                    yield form, route + v
            for val in (bad, VALID_NET + (enc(bad) if form == "pct" else bad),
                        (enc(bad) if form == "pct" else bad) + VALID_NET):
                v = enc(val) if form == "pct" and val is bad else val
                yield form, b"/route/net/" + v
                yield form, b"/route?net=" + v
                yield form, b"/protocols/short?uncached=" + v
                yield form, b"/status?" + v + b"=1"
    # whole commands and shell syntax where a value goes
    for v in (b"ibgp_x all; disable ibgp_x", b"x\ndisable x", b"$(reboot)", b"`id`",
              b"-- configure", b"' or '1'='1", b"203.0.113.0/24 where net ~ 1.0.0.0/8",
              b"all", b"203.0.113.10 all\nconfigure"):
        for route in (b"/routes/protocol/", b"/route/net/", b"/route?net="):
            yield "pct", route + pct(v)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--target", required=True)
    p.add_argument("--source", required=True)
    p.add_argument("--commands", required=True)
    a = p.parse_args()
    counts, bad = {}, []
    n = cut = 0
    for form, path in cases():
        n += 1
        code, body = request(a.target, a.source, path)
        counts[code] = counts.get(code, 0) + 1
        if code == 400 and len(body.strip()) >= 8:
            continue
        if code == 414 and len(path) > 16000:
            continue                    # the shared server's header cap, before meshlg
        if form == "raw" and b"\x00" in path and code in (200, 502):
            cut += 1                    # answered as the request before the NUL
            continue
        if code == 404 and path.endswith(pct(b"all")):
            continue                    # a well-formed name, not one BIRD runs
        bad.append("%s %r -> %d %r" % (form, path[:80], code, body[:100]))
    cmds = [ast.literal_eval(l) for l in open(a.commands) if l.strip()]
    outside = [c for c in cmds if not any(r.match(c.decode("latin-1")) for r in ALLOW_RE)]
    print("measured: %d hostile requests: %s (%d cut at a raw NUL by libmicrohttpd, answered as "
          "the request before it); BIRD received %d commands, %d outside the allowlist"
          % (n, ", ".join("%d x %s" % (v, k) for k, v in sorted(counts.items())), cut, len(cmds),
             len(outside)))
    for b in bad[:20]:
        print("unexpected: " + b)
    for c in outside[:20]:
        print("unexpected: BIRD received %r" % c)
    sys.exit(1 if bad or outside else 0)


if __name__ == "__main__":
    main()
