"""Processes the bench starts: nginx, BIRD, healthd, wrk, valgrind.

Every process is started here, remembered by its PID and stopped by that
PID (TERM, then KILL after a grace period), also when the bench fails.
Nothing is looked up or killed by name.
"""
import json
import os
import signal
import socket
import subprocess
import time
import urllib.request

_started = []


def start(argv, log, **kw):
    """Start ARGV with stdout and stderr appended to LOG; tracked by PID."""
    out = open(log, "ab")
    p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                         stdin=subprocess.DEVNULL, **kw)
    out.close()
    _started.append(p)
    return p


def stop(p, sig=signal.SIGTERM, grace=10.0):
    """Stop P by its PID and reap it; KILL when it outlives GRACE seconds."""
    if p is None:
        return None
    if p.poll() is None:
        try:
            os.kill(p.pid, sig)
            p.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            os.kill(p.pid, signal.SIGKILL)
            p.wait()
        except ProcessLookupError:
            pass
    if p in _started:
        _started.remove(p)
    return p.returncode


def stop_all():
    for p in list(reversed(_started)):
        stop(p, grace=5.0)


def wait_until(secs, what, fn, step=0.05):
    """Poll FN until it returns something true, or fail after SECS."""
    deadline = time.monotonic() + secs
    while True:
        try:
            v = fn()
            if v:
                return v
        except (OSError, ValueError, subprocess.SubprocessError):
            pass
        if time.monotonic() >= deadline:
            raise RuntimeError("timed out after %ss waiting for %s" % (secs, what))
        time.sleep(step)


def free_port():
    """A loopback TCP port nobody listens on right now."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def listening(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


# ---- nginx: one worker, keep-alive, `return 200` ----

NGINX_CONF = """daemon off;
master_process on;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log warn;
events {{ worker_connections 16384; }}
http {{
    access_log off;
    keepalive_timeout 65s;
    keepalive_requests 1000000;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location / {{ return 200 "ok\\n"; }}
        location = /nginx_status {{ stub_status; }}
    }}
}}
"""


def nginx_start(d, port):
    os.makedirs(d, exist_ok=True)
    conf = os.path.join(d, "nginx.conf")
    with open(conf, "w") as f:
        f.write(NGINX_CONF.format(dir=d, port=port))
    p = start(["nginx", "-p", d, "-e", os.path.join(d, "nginx-error.log"), "-c", conf],
              os.path.join(d, "nginx.out"))
    wait_until(10, "nginx on port %d" % port, lambda: p.poll() is None and listening(port))
    return p


def nginx_counts(port):
    """(connections accepted, requests served) so far, not counting this one."""
    with urllib.request.urlopen("http://127.0.0.1:%d/nginx_status" % port, timeout=5) as r:
        text = r.read().decode()
    accepts, _, requests = text.splitlines()[2].split()
    return int(accepts), int(requests) - 1


# ---- BIRD: no BGP, only the include healthd owns ----

BIRD_CONF = """log "{dir}/bird.log" all;
router id 192.0.2.1;
protocol device {{}}
include "{dir}/healthd.conf";
"""


def birdc(sock, *cmd):
    return subprocess.run(["birdc", "-s", sock] + list(cmd), capture_output=True,
                          text=True, timeout=5)


def bird_start(d):
    conf, sock = os.path.join(d, "bird.conf"), os.path.join(d, "bird.ctl")
    with open(conf, "w") as f:
        f.write(BIRD_CONF.format(dir=d))
    with open(os.path.join(d, "healthd.conf"), "w") as f:
        f.write("# written by healthd\n")
    p = start(["bird", "-f", "-c", conf, "-s", sock, "-P", os.path.join(d, "bird.pid")],
              os.path.join(d, "bird.out"))
    wait_until(10, "BIRD on " + sock, lambda: birdc(sock, "show", "status").returncode == 0)
    return p, sock


# ---- healthd ----

def healthd_config(d, bird_sock, n_checks, url, http_port=None, services=1):
    """N checks over SERVICES services, all probing URL every second."""
    lines = [
        "node: bench",
        "bird:",
        "  socket: %s" % bird_sock,
        "  include: %s/healthd.conf" % d,
        "  timeout: 2s",
        "  reconcile: 5s",
        "control:",
        "  socket: %s/healthd.sock" % d,
    ]
    if http_port:
        lines += ["http:", '  listen: ["127.0.0.1:%d"]' % http_port]
    lines += ["defaults:", "  interval: 1s", "  timeout: 1s", "  rise: 2", "  fall: 2",
              "services:"]
    per = (n_checks + services - 1) // services
    for s in range(services):
        lines += ["  - name: bench%d" % s,
                  '    prefixes: ["192.0.2.%d/32"]' % (10 + s),
                  "    checks:"]
        for c in range(s * per, min(n_checks, (s + 1) * per)):
            lines += ["      - name: c%d" % c,
                      "        type: http",
                      '        url: "%s"' % url]
    path = os.path.join(d, "healthd.yaml")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def healthd_start(build, d, cfg, wrap=None):
    argv = (wrap or []) + [os.path.join(build, "healthd"), "-c", cfg]
    p = start(argv, os.path.join(d, "healthd.log"))
    sock = os.path.join(d, "healthd.sock")
    wait_until(120 if wrap else 20, "healthd control socket",
               lambda: p.poll() is None and os.path.exists(sock), step=0.1)
    return p, sock


def status(build, sock, timeout=60):
    r = subprocess.run([os.path.join(build, "healthctl"), "-s", sock, "status", "--json"],
                       capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError("healthctl status: %s" % r.stderr.strip())
    return json.loads(r.stdout)


# ---- /proc figures ----

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    """(utime+stime from /proc/PID/stat, on-CPU time from schedstat), seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    try:
        with open("/proc/%d/schedstat" % pid) as f:
            run_ns = int(f.read().split()[0])
    except OSError:
        run_ns = None
    return ticks / CLK_TCK, (run_ns / 1e9 if run_ns is not None else None)


def memory_kb(pid):
    """VmRSS, VmHWM, RssAnon (heap, stacks) and RssFile (mapped libraries), kB."""
    out = dict.fromkeys(("VmRSS", "VmHWM", "RssAnon", "RssFile"), 0)
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in out:
                out[k] = int(v.split()[0])
    return out
