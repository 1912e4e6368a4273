"""Targets, the comparison with them, bench/results.md and the summary."""

import dns

# Targets from the benchmark issue, measured on these 2-core machines.
CPU_US_PER_PROBE = 30.0        # at 1,000 probes/s
RSS_MB = {1000: 8.0, 10000: 40.0}
DETECT_SLACK_MS = 30.0         # p95 <= fall x interval + 30 ms
FALL, INTERVAL_MS = 2, 100
HTTP_RPS, HTTP_P99_MS, LATE_P99_MS = 100000.0, 1.0, 5.0


def _engine(res, n):
    return next((e for e in res["engine"] if e["checks"] == n), None)


def mb(kb):
    return kb / 1024.0


def checks(res):
    """(figure, value text, target text, met) rows for every target."""
    rows = []
    e1k, e10k = _engine(res, 1000), _engine(res, 10000)
    if e1k:
        v = e1k["cpu_us_per_probe"]
        rows.append(("CPU per probe at 1,000 probes/s", "%.1f µs" % v,
                     "≤ %.0f µs" % CPU_US_PER_PROBE, v <= CPU_US_PER_PROBE, "cpu"))
    if e10k:
        v = e10k["probes_per_s"]
        rows.append(("probes delivered at 10,000 checks, 1 s interval", "%.0f/s" % v,
                     "≈ 10,000/s", v >= 9900, "scale"))
    for e in (e1k, e10k):
        if e:
            lim = RSS_MB[e["checks"]]
            rows.append(("peak RSS (VmHWM) at %s checks" % format(e["checks"], ","),
                         "%.1f MB" % mb(e["hwm_kb"]), "≤ %.0f MB" % lim,
                         mb(e["hwm_kb"]) <= lim, "rss%d" % e["checks"]))
    d = res.get("detect")
    if d:
        lim = FALL * INTERVAL_MS + DETECT_SLACK_MS
        for k, what in (("down", "withdrawal"), ("up", "return")):
            rows.append(("detection p95, %s" % what, "%.0f ms" % d[k]["p95"],
                         "≤ %.0f ms" % lim, d[k]["p95"] <= lim, "detect"))
    h = res.get("http")
    if h:
        rows.append(("/health requests/s", "%.0f" % h["rps"], "≥ %.0f" % HTTP_RPS,
                     h["rps"] >= HTTP_RPS, "http"))
        rows.append(("/health p99 latency", "%.2f ms" % h["p99_ms"],
                     "≤ %.0f ms" % HTTP_P99_MS, h["p99_ms"] <= HTTP_P99_MS, "http"))
        late = h["during"]["lateness"]
        if late:
            rows.append(("probe lateness p99 under /health load",
                         "%.2f ms" % late["p99"], "≤ %.0f ms" % LATE_P99_MS,
                         late["p99"] <= LATE_P99_MS, "lateness"))
    return rows


def misses(res):
    return sorted({r[4] for r in checks(res) if not r[3]})


def _lat(late, k):
    return "%.2f" % late[k] if late else "-"


def engine_line(e):
    return ("%5d checks: %6.0f probes/s, %5.1f µs CPU/probe, RSS %.1f MB (peak %.1f), "
            "lateness p50 %s ms p99 %s ms" %
            (e["checks"], e["probes_per_s"], e["cpu_us_per_probe"] or 0, mb(e["rss_kb"]),
             mb(e["hwm_kb"]), _lat(e["lateness"], "p50"), _lat(e["lateness"], "p99")))


def exec_line(x):
    return ("%d exec checks of /bin/true: %.0f probes/s (%d failed), %.0f µs CPU/probe in "
            "healthd (+ %.0f µs in the children), lateness p50 %s ms p99 %s ms" %
            (x["checks"], x["probes_per_s"], x["probes_failed"], x["cpu_us_per_probe"] or 0,
             x["children_cpu_us_per_probe"] or 0, _lat(x["lateness"], "p50"),
             _lat(x["lateness"], "p99")))


EXEC_METHOD = (
    "%(checks)d checks of `type: exec` running `/bin/true` at a 1 s interval, one healthd, "
    "a %(window_s).0f s window after the warm-up (bench/execprobe.py). CPU per probe is "
    "healthd's utime+stime over the probes its counters show (spawn, read, reap); the "
    "children's own CPU (cutime+cstime) is beside it. Lateness is how late the probe "
    "timers fired. uv_spawn forks and then waits, in the loop, until the child has "
    "exec'd (libuv learns an exec failure through a pipe), so each spawn holds the loop "
    "for the child's fork-to-exec time; under strace those reads took up to a few ms on "
    "this shared 2-core machine: the likely source of the exec probes' lateness.")


def _exec_md(x):
    if not x:
        return ["not measured in this run."]
    out = []
    if x.get("machine"):
        out += ["Measured alone (`bench.py --only exec`) on %s, load average %s at start, "
                "healthd %s." % (x["machine"]["date"], x["machine"]["load"],
                                 x["machine"]["healthd"]), ""]
    out += [EXEC_METHOD % x, "",
            "| checks | probes/s | failed | CPU µs/probe (healthd) | CPU µs/probe (children) "
            "| CPU share | RSS MB | peak RSS MB | lateness p50 ms | p99 ms | max ms |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    late = x["lateness"]
    out.append("| %d | %.0f | %d | %.0f | %.0f | %.1f%% | %.1f | %.1f | %s | %s | %s |" %
               (x["checks"], x["probes_per_s"], x["probes_failed"], x["cpu_us_per_probe"] or 0,
                x["children_cpu_us_per_probe"] or 0, 100 * x["cpu_share"], mb(x["rss_kb"]),
                mb(x["hwm_kb"]), _lat(late, "p50"), _lat(late, "p99"), _lat(late, "max")))
    return out


def http_line(h):
    if h is None:
        return "HTTP endpoint: not measured: no HTTP endpoint"
    return ("/health: %.0f req/s, p99 %.2f ms; probe lateness p99 %s ms meanwhile" %
            (h["rps"], h["p99_ms"], _lat(h["during"]["lateness"], "p99")))


def hostile_line(h):
    if not h or not h.get("slowloris") or not h.get("burst"):
        return "/health under hostile clients: not measured"
    return ("/health from a fresh client: p99 %.2f ms under 1,000 slowloris, %.2f ms after a "
            "2,000-connection burst (answered again after %s ms)" %
            (h["slowloris"]["p99_ms"], h["burst"]["p99_ms"], h.get("recovered_ms", "?")))


def _hostile_md(h):
    if not h:
        return ["not measured."]
    out = ["| load | probes answered | p50 ms | p99 ms | max ms |", "|---|---:|---:|---:|---:|"]
    for k, what in (("slowloris", "during 1,000 slowloris connections"),
                    ("burst", "after 2,000 `GET /hea`+close connections")):
        v = h.get(k)
        if v:
            out.append("| %s | %d/%d | %.2f | %.2f | %.2f |" % (
                what, v["answered"], v["sent"], v["p50_ms"], v["p99_ms"], v["max_ms"]))
        else:
            out.append("| %s | not measured | | | |" % what)
    out += ["", "/health answered again %s ms after the burst. The clients' output:" %
            h.get("recovered_ms", "?"), "", "```"]
    out += [h.get("slowloris_output", ""), h.get("burst_output", ""), "```"]
    return out


def detect_line(d):
    return ("detection: withdrawn median %.0f ms p95 %.0f ms; back median %.0f ms p95 %.0f ms"
            % (d["down"]["median"], d["down"]["p95"], d["up"]["median"], d["up"]["p95"]))


def control_line(c):
    return ("healthctl status: p50 %.1f ms p99 %.1f ms quiet; p50 %.1f ms p99 %.1f ms while a "
            "client pipelines and never reads (healthd took %d lines; RSS %.1f -> %.1f MB)" %
            (c["quiet"]["p50_ms"], c["quiet"]["p99_ms"], c["pipelining"]["p50_ms"],
             c["pipelining"]["p99_ms"], c["pipelined_sent"], mb(c["rss_kb_before"]),
             mb(c["rss_kb_during"])))


def _control_md(c):
    if not c:
        return ["not measured in this run."]
    out = []
    if c.get("machine"):
        out += ["Measured alone (`bench.py --only control`) on %s, load average %s at start, "
                "healthd %s." % (c["machine"]["date"], c["machine"]["load"],
                                 c["machine"]["healthd"]), ""]
    out += ["| socket | samples | failed | p50 ms | p99 ms | max ms |",
            "|---|---:|---:|---:|---:|---:|"]
    for k, what in (("quiet", "quiet"),
                    ("pipelining", "one client pipelining `status`, reading nothing "
                     "(healthd took %s lines)" % format(c["pipelined_sent"], ","))):
        r = c[k]
        out.append("| %s | %d | %d | %.1f | %.1f | %.1f |" %
                   (what, r["samples"], r["failed"], r["p50_ms"], r["p99_ms"], r["max_ms"]))
    out += ["", "healthd RSS %.1f MB before the pipelining client, %.1f MB while it ran." %
            (mb(c["rss_kb_before"]), mb(c["rss_kb_during"]))]
    return out


def _ms(v):
    return "%.2f s" % (v / 1000.0) if v >= 1000 else "%.0f ms" % v if v >= 10 else "%.1f ms" % v


def _mb(kb):
    return "%.1f" % mb(kb)


def _run_row(what, r):
    w, k, c = r["wall_ms"], r["rss_kb"], r.get("cpu_ms")
    return "| %s | %d | %s | %s | %s | %s | %s (%s-%s) |" % (
        what, w["runs"], _ms(w["median"]), _ms(w["min"]), _ms(w["max"]),
        _ms(c["median"]) if c else "-", _mb(k["median"]), _mb(k["min"]), _mb(k["max"]))


MESH_METHOD = """\
How: bench/mesh.py generates the inventory (benchmark and documentation
addresses: blocks 198.18.0.0/16 and 2001:db8:100::/48, regions' /29s from
198.18.1.0 upward, the anycast address 198.18.0.10 in a /24 no region uses,
tunnel 198.19.0.0/22 and 2001:db8:10::/48 with node k at host k, public
addresses from 198.18.128.0/17, a distinct WireGuard public key each, one
upstream AS 64497, the first node the route reflector and every other its
client); `meshctl check` finds it valid with no warning. Each command runs
from a fresh process into a fresh, empty output directory (removed between
runs, not timed); the time is fork to reap and the peak RSS `wait4`'s
`ru_maxrss`, both taken by bench/rusage.c, which forks the command from a
small process (forked from Python, `ru_maxrss` would start at Python's own
high-water mark); with the tools' checks on, it is the larger of meshctl's
and the biggest tool's; CPU is user + system time, the tools' included.
\"checks skipped\" is `MESHCTL_BIRD= MESHCTL_NFT= MESHCTL_HEALTHD=`;
\"checked\" runs `bird -p`, `nft -c` (in `unshare -n`) and `healthd -t` on
the node's files as `meshctl render` does by default. The staged trees are
made durable with one syncfs() before they are swapped in, so the
render-all wall times include the disk's."""

MESH_FAIL_METHOD = """\
How: bench/meshfail.sh brings up tests/integration/meshlab.sh's lab (four
regions, a node each, files from `meshctl render`, real BIRD, wireguard-go,
nftables and healthd, transit BIRDs as the Internet) with the rendered
checks: `interval: %(interval_ms)dms`, `fall: %(fall)d`, `rise: %(rise)d`,
`hold_down: %(hold_s)gs`, a dampening penalty of %(penalty)d a withdrawal,
suppressed at %(suppress)d. ORD's user asks http://%(anycast)s/ on a new
connection every 5 ms (bench/meshwatch.py) and logs who answers. The lab's
`ml_web_stop` sends %(node)s's web service SIGTERM; the clock stops at the
first answer from another node and starts at the SIGTERM (second row) or
when the service stopped answering (first row: the later of the SIGTERM and
the user's last answer from it, so a service slow to exit does not count).
Once the hold-down has run out (it counts from the withdrawal), `ml_web_start`
starts the service again and the clock runs from its start to the first
answer from %(node)s; it listened a median %(listen)s after its start (when
`ml_web_start` returned, which polls for it every 20 ms), the last row counts
from then. Each stop and start comes after a random 0.2-0.4 s pause. Before
each stop the bench waits until the penalty has decayed to %(threshold)d or
less, so that no withdrawal triggers dampening and every run is a failover,
not a suppression; that wait is most of the part's time."""



def mesh_render_line(lay):
    ra = lay["render_all"]
    return ("mesh %d nodes/%d regions: check %.0f ms (%.1f MB); render all %.2f s (%.1f MB), "
            "%.0f MB written; reflector's bird.conf %.0f kB" %
            (lay["nodes"], lay["regions"], lay["check"]["wall_ms"]["median"],
             lay["check"]["rss_kb"]["median"] / 1024.0, ra["wall_ms"]["median"] / 1000.0,
             ra["rss_kb"]["median"] / 1024.0, ra["total_bytes"] / 1e6,
             ra["reflector"]["bird_conf_bytes"] / 1e3))


def mesh_failover_line(f):
    if not f or "skipped" in f:
        return "mesh failover: not measured: %s" % (f or {}).get("skipped", "not run")
    if "error" in f:
        return "mesh failover: failed: %s" % f["error"]
    return ("mesh failover (%d runs): ORD's user answered elsewhere after median %.0f ms, "
            "p95 %.0f ms; by ORD again after median %.0f ms, p95 %.0f ms" %
            (f["away"]["runs"], f["away"]["median"], f["away"]["p95"], f["back"]["median"],
             f["back"]["p95"]))


def mesh_lines(m):
    r = m.get("render") or {}
    lines = [mesh_render_line(lay) for lay in r.get("layouts", [])]
    if "error" in r:
        lines.append("mesh render: failed: %s" % r["error"])
    return lines + [mesh_failover_line(m.get("failover"))]


def _mesh_md(m):
    if not m:
        return ["not measured in this run."]
    out = []
    if m.get("machine"):
        out += ["Measured alone (`bench.py --only mesh`) on %s, load average %s at start, "
                "healthd %s." % (m["machine"]["date"], m["machine"]["load"],
                                 m["machine"]["healthd"]), ""]
    if m.get("binaries"):
        out += ["The binaries, copied from the build directory when the part began (sha256, "
                "first 16 hex digits): %s." % ", ".join(
                    "%s %s" % (k, v) for k, v in sorted(m["binaries"].items())), ""]
    r = m["render"]
    if "error" in r:
        return out + ["not measured: " + r["error"]]
    t = r["target"]
    out += ["The target was %s nodes in %d regions. The inventory cannot hold that: a "
            "region is one /29 and a node's slot is the region's /29 plus its provider's "
            "offset, which must be a host address (1-6), so a region has at most 6 nodes "
            "and %d regions at most %d. `meshctl check` refuses the %s-in-%d inventory "
            "(exit %d):" % (format(t["nodes"], ","), t["regions"], t["regions"],
                            6 * t["regions"], format(t["nodes"], ","), t["regions"], t["exit"]),
            "", "```", t["error"], "```", "",
            "Measured instead: %s." % "; ".join(
                "%s nodes in %d regions (%d a region, providers p1-p%d at offsets 1-%d)" %
                (format(l["nodes"], ","), l["regions"], l["per_region"], l["per_region"],
                 l["per_region"]) for l in r["layouts"]), "", MESH_METHOD, "",
            "| inventory | command | runs | wall median | min | max | CPU median "
            "| peak RSS MB, median (min-max) |",
            "|---|---|---:|---:|---:|---:|---:|---:|"]
    for l in r["layouts"]:
        inv = "%s nodes, %d regions" % (format(l["nodes"], ","), l["regions"])
        out.append(_run_row("%s | `meshctl check`" % inv, l["check"]))
        out.append(_run_row("%s | `meshctl render`, all %s nodes, checks skipped" %
                            (inv, format(l["nodes"], ",")), l["render_all"]))
        for o in l["render_one"]:
            what = "%s | `render --node %s` (the %s)" % (inv, o["node"], o["role"])
            out.append(_run_row(what + ", checks skipped", o["skipped"]))
            if o.get("checked"):
                out.append(_run_row(what + ", checked", o["checked"]))
            else:
                out.append("| %s, checked | failed: %s | | | | | |" %
                           (what, o.get("checked_error", "?").replace("|", "\\|")))
    out += ["", "| inventory | inventory file | written by render all | files "
            "| reflector's bird.conf | a client's bird.conf | a client's files |",
            "|---|---:|---:|---:|---:|---:|---:|"]
    for l in r["layouts"]:
        ra = l["render_all"]
        out.append("| %s nodes, %d regions | %.0f kB | %.1f MB | %s | %.1f kB | %.1f kB "
                   "| %.1f kB |" % (format(l["nodes"], ","), l["regions"],
                                    l["inventory_bytes"] / 1e3, ra["total_bytes"] / 1e6,
                                    format(ra["files"], ","),
                                    ra["reflector"]["bird_conf_bytes"] / 1e3,
                                    ra["client"]["bird_conf_bytes"] / 1e3,
                                    ra["client"]["bytes"] / 1e3))
    out += ["", "The reflector's bird.conf has an iBGP session (IPv4 and IPv6) per client; "
            "every node's WireGuard files (wg and networkd), firewall and healthd.yaml (its "
            "WireGuard check) list every other node, so what a render of every node "
            "writes grows with the square of the nodes."]
    return out


def _mesh_fail_md(f):
    if not f:
        return ["not measured in this run."]
    if "skipped" in f:
        return ["not measured: %s (bench/meshfail.sh runs it once the lab is there)."
                % f["skipped"]]
    if "error" in f:
        return ["not measured: %s. The end of its log:" % f["error"], "", "```",
                f.get("log", "").rstrip(), "```"]
    c = dict(f["config"], hold_s=f["config"]["hold_down_ms"] / 1000.0,
             threshold=f["config"]["penalty_threshold"])
    listen = sorted(r["listen_ms"] for r in f["runs"])
    c["listen"] = "%.0f ms" % listen[len(listen) // 2]
    out = [MESH_FAIL_METHOD % c, "",
           "| | runs | median ms | p95 ms | min ms | max ms |", "|---|---:|---:|---:|---:|---:|"]
    for k, what in (("away", "%s's web stopped → ORD's user answered by another node"
                     % c["node"]),
                    ("away_from_sigterm", "the same, from the SIGTERM"),
                    ("back", "%s's web started → ORD's user answered by %s again"
                     % (c["node"], c["node"])),
                    ("back_after_listen", "the same, from when it listened")):
        s = f[k]
        out.append("| %s | %d | %.0f | %.0f | %.0f | %.0f |" %
                   (what, s["runs"], s["median"], s["p95"], s["min"], s["max"]))
    dark = f["back_unanswered_ms_max"]
    out += ["", "Answered meanwhile by: %s. While %s came back, ORD's user went "
            "unanswered for at most %d ms%s. The lab came up in %.1f s." %
            (", ".join(f["away_by"]), c["node"], dark,
             " (the route moves from one live node to another)" if dark == 0 else
             " (a request in flight while the route moved back failed, most likely "
             "because its connection's packets went to two nodes)", c["lab_up_ms"] / 1000.0)]
    slow = f.get("slow_exit", [])
    if slow:
        by = {r["run"]: r for r in f["runs"]}
        out += ["", "In run%s %s the web service (tests/integration/nodeweb.py) went on "
                "answering for %s after its SIGTERM (`ml_web_stop` kills it after 5 s): "
                "the second row's largest figures are that, not the mesh." %
                ("s" if len(slow) > 1 else "", ", ".join(str(n) for n in slow),
                 ", ".join("%.1f s" % (by[n]["sigterm_to_gone_ms"] / 1000.0) for n in slow))]
    out += ["",
            "All runs (ms), away: " + ", ".join("%d" % r["away_ms"] for r in f["runs"]), "",
            "All runs (ms), away from the SIGTERM: " + ", ".join(
                "%d" % r["away_from_sigterm_ms"] for r in f["runs"]), "",
            "All runs (ms), back: " + ", ".join("%d" % r["back_ms"] for r in f["runs"])]
    return out


MESHD_METHOD = """\
How: bench/meshd.py starts meshd (copied from the build directory) on
loopback, no namespace: plain HTTP on one 127.0.0.1 port, HTTPS on another
with a throwaway P-256 certificate from `openssl req`. The inventory is
the lab's (tests/mesh/lab.yaml.in, four nodes, placeholders filled as
tests/integration/t_meshd.sh fills them, keys from `wg genkey | wg
pubkey`); ord1 is enrolled as a node enrols (`meshctl token create` over
the admin socket, then POST /api/v1/nodes/enroll) and its credential is
the `Authorization: Bearer` of the config runs, so each of them looks the
credential's hash up in SQLite and sends the cached reply. The limits are
raised for the load (rate and burst %(rate)s, %(per_source)s connections a
source) so the rate limiter cuts nothing. `wrk -t%(threads)d -c%(connections)d
-d%(window_s)ds` runs once per row; requests and latency come from wrk
(a `done` script, bench/wrkdone.lua), meshd's CPU from utime+stime in
/proc/PID/stat over the run (and schedstat's on-CPU time) divided by the
requests. wrk shares the two cores with meshd, which is one thread: a CPU
share near 100%% is meshd's core used up."""


def _lim_md(lim):
    return ("Rate limit at the defaults (rate %d/s, burst %d): meshd started again with "
            "them; one source asking `GET /api/v1/status` back to back on one keep-alive "
            "connection for %.1f s sent %s requests: %d answered 200 (burst + rate x time = "
            "%.0f), %s answered 429 with Retry-After %s. A second source, asking 25 times "
            "once the first was held back, got %d of its %d through (its burst is its own). "
            "meshd's own `rate_limited` counter says %s: both sources' 429s." %
            (lim["defaults"]["rate"], lim["defaults"]["burst"], lim["seconds"],
             format(lim["requests"], ","), lim["ok"],
             lim["defaults"]["burst"] + lim["defaults"]["rate"] * lim["seconds"],
             format(lim["refused"], ","), ", ".join(lim["retry_after"]) or "-",
             lim["second_source_ok"], lim["second_source_asked"],
             format(lim["rate_limited_counter"], ",")
             if lim["rate_limited_counter"] is not None else "nothing"))


def meshd_lines(m):
    if not m:
        return []
    if "error" in m:
        return ["meshd: failed: %s" % m["error"]]
    lines = ["meshd %s over %s: %.0f req/s, p50 %.2f ms, p99 %.2f ms, %.1f µs CPU/request" %
             (r["what"], r["over"], r["rps"], r["p50_us"] / 1000.0, r["p99_us"] / 1000.0,
              r["cpu_us_per_request"] or 0) for r in m["runs"]]
    lines.append("meshd RSS after the load %.1f MB (peak %.1f MB); config reply %s bytes" %
                 (mb(m["rss_after"]["VmRSS"]), mb(m["rss_after"]["VmHWM"]),
                  format(m["config_body"]["bytes"], ",")))
    lim = m["limiter"]
    lines.append("meshd limiter at %d/s burst %d: %d of %d back-to-back requests in %.1f s "
                 "through, the rest 429" % (lim["defaults"]["rate"], lim["defaults"]["burst"],
                                           lim["ok"], lim["requests"], lim["seconds"]))
    return lines


def _meshd_md(m):
    if not m:
        return ["not measured in this run."]
    out = []
    if m.get("machine"):
        out += ["Measured alone (`bench.py --only meshd`) on %s, load average %s at start, "
                "healthd %s." % (m["machine"]["date"], m["machine"]["load"],
                                 m["machine"]["healthd"]), ""]
    if "error" in m:
        return out + ["not measured: " + m["error"]]
    out += ["The binaries, copied from the build directory when the part began (sha256, "
            "first 16 hex digits): %s." % ", ".join(
                "%s %s" % (k, v) for k, v in sorted(m["binaries"].items())), "",
            MESHD_METHOD % dict(m, rate=format(m["limits"]["rate"], ","),
                                per_source=m["limits"]["per_source"]), "",
            "| request | over | requests/s | p50 ms | p90 ms | p99 ms | max ms | non-2xx "
            "| socket errors | meshd CPU µs/request (stat) | (schedstat) | meshd CPU share |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    what = {"config": "`GET /api/v1/nodes/ord1/config`, ord1's credential",
            "status": "`GET /api/v1/status`, no credential"}
    for r in m["runs"]:
        sock = r["connect_errors"] + r["read_errors"] + r["write_errors"] + r["timeouts"]
        out.append("| %s | %s | %.0f | %.2f | %.2f | %.2f | %.2f | %d | %d | %.1f | %s | "
                   "%.0f%% |" % (what[r["what"]], r["over"], r["rps"], r["p50_us"] / 1000.0,
                                 r["p90_us"] / 1000.0, r["p99_us"] / 1000.0,
                                 r["max_us"] / 1000.0, r["status_errors"], sock,
                                 r["cpu_us_per_request"] or 0,
                                 "%.1f" % r["cpu_sched_us_per_request"]
                                 if r["cpu_sched_us_per_request"] else "-",
                                 100 * r["cpu_share"]))
    b, rb, ra = m["config_body"], m["rss_before"], m["rss_after"]
    out += ["", "The config reply is %s bytes of JSON: %d files, the largest %s (%s bytes). "
            "meshd's RSS was %.1f MB before the load and %.1f MB after it (%.1f anon + %.1f "
            "file), its peak (VmHWM) %.1f MB." %
            (format(b["bytes"], ","), b["files"], b["largest"], format(b["largest_bytes"], ","),
             mb(rb["VmRSS"]), mb(ra["VmRSS"]), mb(ra["RssAnon"]), mb(ra["RssFile"]),
             mb(ra["VmHWM"])), "", _lim_md(m["limiter"])]
    return out


def summary(res):
    lines = ["healthd bench (%s, %s cores):" % (res["machine"]["cpu"], res["machine"]["nproc"])]
    lines += ["  " + engine_line(e) for e in res["engine"]]
    if res.get("exec"):
        lines.append("  " + exec_line(res["exec"]))
    lines.append("  " + detect_line(res["detect"]))
    lines.append("  " + http_line(res.get("http")))
    lines.append("  " + hostile_line(res.get("hostile")))
    if res.get("control"):
        lines.append("  " + control_line(res["control"]))
    if res.get("mesh"):
        lines += ["  " + line for line in mesh_lines(res["mesh"])]
    if res.get("meshd"):
        lines += ["  " + line for line in meshd_lines(res["meshd"])]
    for name, val, target, ok, _ in checks(res):
        lines.append("  %-4s %s: %s (target %s)" % ("ok" if ok else "MISS", name, val, target))
    return "\n".join(lines)


def _machine_md(m):
    out = ["| | |", "|---|---|"]
    for k in ("nproc", "cpu", "memory", "kernel", "os", "date", "load", "healthd", "libcurl",
              "nginx", "wrk"):
        out.append("| %s | %s |" % ("load average at start" if k == "load" else k, m.get(k)))
    return out


def _engine_md(res):
    out = ["| checks | probes/s | failed | new conns/s | CPU µs/probe (stat) "
           "| CPU µs/probe (schedstat) | CPU share | RSS MB (anon + file) | peak RSS MB "
           "| lateness p50 ms | p99 ms | max ms |",
           "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for e in res["engine"]:
        late = e["lateness"]
        out.append("| %s | %.0f | %s | %.0f | %.1f | %s | %.1f%% | %.1f (%.1f + %.1f) | %.1f "
                   "| %s | %s | %s |"
                   % (format(e["checks"], ","), e["probes_per_s"],
                      "-" if e["probes_failed"] is None else e["probes_failed"],
                      e["connects_per_s"], e["cpu_us_per_probe"] or 0,
            "%.1f" % e["cpu_sched_us_per_probe"] if e["cpu_sched_us_per_probe"] else "-",
            100 * e["cpu_share"], mb(e["rss_kb"]), mb(e.get("anon_kb", 0)),
            mb(e.get("file_kb", 0)), mb(e["hwm_kb"]),
            _lat(late, "p50"), _lat(late, "p99"), _lat(late, "max")))
    slow = [e for e in res["engine"] if e["lateness"] is None]
    for e in slow:
        out += ["", "At %s checks `healthctl status --json` took %.0f s or more (limit %d s): "
                "the loop was too busy to answer, so the window's lateness and failures "
                "are not known; probes/s come from nginx's own request counter." %
                (format(e["checks"], ","), e["status_s"], 30)]
    return out


def _detect_md(d):
    out = ["| | runs | median ms | p95 ms | min ms | max ms |", "|---|---:|---:|---:|---:|---:|"]
    for k, what in (("down", "service stopped → route gone at the upstream"),
                    ("up", "service listening → route back at the upstream")):
        s = d[k]
        out.append("| %s | %d | %.1f | %.1f | %.1f | %.1f |" %
                   (what, s["runs"], s["median"], s["p95"], s["min"], s["max"]))
    out.append("")
    out.append("All runs (ms), withdrawal: " + ", ".join("%.0f" % v for v in d["down"]["all"]))
    out.append("")
    out.append("All runs (ms), return: " + ", ".join("%.0f" % v for v in d["up"]["all"]))
    return out


def _http_md(h):
    if h is None:
        return ["not measured: no HTTP endpoint (nothing answered GET /health on the "
                "configured `http: listen` address)."]
    late = h["during"]["lateness"]
    out = ["| requests/s | p50 ms | p90 ms | p99 ms | non-2xx | probes/s meanwhile "
           "| probe lateness p50 ms | p99 ms | max ms |",
           "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
           "| %.0f | %.2f | %.2f | %.2f | %d | %.0f | %s | %s | %s |" % (
               h["rps"], h["p50_ms"], h["p90_ms"], h["p99_ms"], h["non_2xx"],
               h["during"]["probes_per_s"], _lat(late, "p50"), _lat(late, "p99"),
               _lat(late, "max")),
           "", "GET /health answered %s before the load. wrk's output:" % h["status_code"],
           "", "```", h["wrk_output"].rstrip(), "```"]
    return out


METHOD = """\
How: `make bench` (bench/bench.py). nginx 1.22 runs one worker with keep-alive
and `return 200` on a free loopback port; each run starts its own BIRD (no BGP,
only the include file healthd owns, on a socket in the run's directory) and
healthd with one service of N HTTP checks at a 1 s interval, all probing that
nginx. After the first probes (spread over one interval) and a %(warmup_s)d s
warm-up, the window is %(window_s)d s: nginx's request counter (stub_status)
gives the probes delivered and the new connections; `healthctl status
--json` snapshots just before and after it give the failed probes and the
scheduler's lateness histogram for the window; CPU is the
difference of utime+stime in /proc/PID/stat over the same window (schedstat's
on-CPU time is given beside it: it has ns resolution, stat has 10 ms). RSS is
VmRSS at the end of the window, peak RSS is VmHWM. Lateness is how long after
its due time a probe's timer callback ran (healthd's `scheduler.lateness_ms`,
log-linear buckets within 12.5%%; libuv timers have 1 ms resolution, so up to
1 ms of it is the timer's rounding). nginx shares the two cores with healthd."""

DETECT_METHOD = """\
How: the namespace lab of tests/integration (node BIRD + healthd + the web
service in one namespace, the upstream BIRD as eBGP peer in another).
`interval: 100ms`, `timeout: 100ms`, `fall: 2`, `rise: 2`, `hold_down: 0s` and
dampening off, so the figures are detection plus propagation alone. The clock
starts when the web service is stopped (SIGTERM) or when it prints that it
listens; the upstream's table is read over its control socket every 5 ms.
Each start and stop comes after a random 0.2-0.4 s pause, so it falls anywhere
in the probe period."""


def markdown(res):
    m = res["machine"]
    out = ["# healthd benchmark results", "",
           "Written by `make bench` in %.0f s. Machine:" % res["duration_s"], ""]
    out += _machine_md(m)
    out += ["", "## Targets", "", "| figure | measured | target | |", "|---|---:|---:|---|"]
    for name, val, target, ok, _ in checks(res):
        out.append("| %s | %s | %s | %s |" % (name, val, target, "met" if ok else "**missed**"))
    if res.get("http") is None:
        out.append("| /health requests/s, p99, lateness meanwhile | not measured: no HTTP "
                   "endpoint | ≥ 100,000, ≤ 1 ms, ≤ 5 ms | - |")
    out += ["", "## Probe engine", "", METHOD % res, ""]
    out += _engine_md(res)
    if "exec" in res:
        out += ["", "## Exec probes", ""]
        out += _exec_md(res["exec"])
    out += ["", "## Detection", "", DETECT_METHOD, ""]
    out += _detect_md(res["detect"])
    out += ["", "## HTTP endpoint", "",
            "`wrk -t1 -c50 -d10s --latency http://127.0.0.1:PORT/health` while healthd "
            "runs 1,000 checks at 1 s against the same nginx; lateness is the probe "
            "timers' during the wrk run.", ""]
    out += _http_md(res.get("http"))
    if "hostile" in res:
        out += ["", "## HTTP endpoint under hostile clients", "",
                "tests/integration/httphostile.py against healthd with 100 checks: 1,000 "
                "slowloris connections (a header byte a second, 50 from each of "
                "127.0.0.2-21) while a fresh client from 127.0.0.1 asks /health every "
                "100 ms; then 2,000 connections from 127.0.0.2 that send `GET /hea` and "
                "all close, /health polled until it answers, then 500 probes 20 ms apart.",
                ""]
        out += _hostile_md(res["hostile"])
    out += ["", "## Control socket", "", "`healthctl status --json` from a fresh process, "
            "timed from exec to exit, against healthd running 100 HTTP checks at 1 s: with "
            "the socket quiet, then while one client has sent up to 300,000 `status` lines "
            "and reads none of the replies (bench/control.py).", ""]
    out += _control_md(res.get("control"))
    if "dns" in res:
        out += ["", "## DNS probes", ""]
        out += dns.markdown(res["dns"])
    if "mesh" in res:
        out += ["", "## Mesh: meshctl over large inventories", ""]
        out += _mesh_md(res["mesh"])
        out += ["", "## Mesh: failover in the four-region lab", ""]
        out += _mesh_fail_md(res["mesh"].get("failover"))
    if "meshd" in res:
        out += ["", "## meshd: the API under wrk", ""]
        out += _meshd_md(res["meshd"])
    for p in res.get("profiles", []):
        out += ["", "## Profile: " + p["title"], "", p["why"], "", "```", p["text"].rstrip(),
                "```"]
    return "\n".join(out) + "\n"
