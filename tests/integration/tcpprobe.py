#!/usr/bin/env python3
"""TCP connects, all at once, for the mesh lab's firewall checks.

    tcpprobe.py TIMEOUT_S HOST:PORT...

Prints one line per target, in the order given: "HOST:PORT open",
"HOST:PORT refused" (a RST came back: the port is reachable but closed,
or a firewall rejects), "HOST:PORT timeout" (no answer within TIMEOUT_S:
the SYN was dropped) or "HOST:PORT error TEXT" (e.g. no route).
IPv6 hosts go in brackets. Exits 0 whatever the results.
"""
import socket
import sys
import threading


def probe(spec, timeout, out, i):
    host, _, port = spec.rpartition(":")
    host = host.strip("[]")
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect((host, int(port)))
        out[i] = "open"
    except socket.timeout:
        out[i] = "timeout"
    except ConnectionRefusedError:
        out[i] = "refused"
    except OSError as e:
        out[i] = "error " + (e.strerror or str(e)).replace(" ", "_")
    finally:
        s.close()


def main():
    timeout = float(sys.argv[1])
    targets = sys.argv[2:]
    out = [None] * len(targets)
    threads = [threading.Thread(target=probe, args=(t, timeout, out, i))
               for i, t in enumerate(targets)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for t, r in zip(targets, out):
        print(t, r)


if __name__ == "__main__":
    main()
