"""Profiles for missed targets: callgrind for CPU, massif for memory.

perf is used only where hardware counters work (`perf stat -e instructions
true`); these machines have none, so valgrind it is. Instrumentation is
switched on after the warm-up, so start-up work stays out of the profile.
"""
import os
import re
import subprocess
import time

import engine
import procs

PROFILE_CHECKS = 1000
PROFILE_SECS = 15


def perf_works():
    try:
        r = subprocess.run(["perf", "stat", "-x,", "-e", "instructions", "true"],
                           capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return False
    return r.returncode == 0 and "not supported" not in r.stderr \
        and "not counted" not in r.stderr


def _top(text, n):
    """The header and the first N function rows of callgrind_annotate."""
    out, rows = [], 0
    for line in text.splitlines():
        if "PROGRAM TOTALS" in line:
            out.append(line[:150])
        elif re.match(r"^\s*[\d,]+ \(\s*[\d.]+%\)\s+\S", line):
            rows += 1
            if rows > n:
                break
            out.append(line[:150])
        elif rows:
            break   # the end of the function table; source listings follow
    return "\n".join(out)


def _annotate(out, inclusive):
    r = subprocess.run(["callgrind_annotate", "--inclusive=" + ("yes" if inclusive else "no"),
                        out], capture_output=True, text=True, timeout=120)
    return r.stdout


def _instrument(run, on_off):
    subprocess.run(["callgrind_control", "-i", on_off, str(run.hd.pid)],
                   capture_output=True, timeout=60)


def callgrind(ctx, n, say, load=None):
    """Callgrind over PROFILE_SECS of N checks; LOAD(run) runs during it."""
    out = os.path.join(ctx.tmp, "callgrind.%d.out" % n)
    wrap = ["valgrind", "--tool=callgrind", "--instr-atstart=no",
            "--callgrind-out-file=" + out]
    run = engine.Run(ctx, "callgrind-%d" % n, n, wrap=wrap,
                     http_port=procs.free_port() if load else None)
    try:
        run.warm_up(3)
        say("profiling %d checks under callgrind for %d s" % (n, PROFILE_SECS))
        _instrument(run, "on")
        a = run.counters()
        if load:
            load(run)
        else:
            time.sleep(PROFILE_SECS)
        b = run.counters()
        _instrument(run, "off")
        probes = b["nginx"][1] - a["nginx"][1] - 1
    finally:
        run.close()
    if not os.path.exists(out):
        return None
    return ("%d probes delivered in the window under callgrind (valgrind slows healthd "
            "about 50x, so this shows where instructions go, not throughput).\n\n"
            "Self cost, top functions:\n%s\n\nInclusive cost, top functions:\n%s" % (
                probes, _top(_annotate(out, False), 25), _top(_annotate(out, True), 25)))


def massif(ctx, n, say):
    """The heap at its peak with N checks, as massif's allocation tree shows it."""
    out = os.path.join(ctx.tmp, "massif.%d.out" % n)
    wrap = ["valgrind", "--tool=massif", "--depth=8", "--threshold=2.0",
            "--massif-out-file=" + out]
    say("profiling the heap of %d checks under massif" % n)
    run = engine.Run(ctx, "massif-%d" % n, n, wrap=wrap)
    try:
        run.warm_up(3)
        rss = procs.memory_kb(run.hd.pid)
    finally:
        run.close()
    if not os.path.exists(out):
        return None
    text = subprocess.run(["ms_print", "--threshold=2.0", out], capture_output=True,
                          text=True, timeout=120).stdout
    return "%s\n\n%s" % (_massif_peak(out, text), _smaps_note(rss))


def _massif_peak(out, text):
    """The allocation tree of the peak snapshot, from ms_print's TEXT."""
    with open(out) as f:
        raw = f.read()
    m = re.search(r"snapshot=(\d+)\n#-+\ntime=\d+\nmem_heap_B=(\d+)\n"
                  r"mem_heap_extra_B=(\d+)\nmem_stacks_B=\d+\nheap_tree=peak", raw)
    if not m:
        return "(massif recorded no peak snapshot)"
    snap, heap, extra = m.group(1), int(m.group(2)), int(m.group(3))
    lines, inside = [], False
    for line in text.splitlines():
        if re.match(r"^\s*%s\s+[\d,]+\s+[\d,]+\s+[\d,]+" % snap, line):
            inside = True
            continue
        if inside:
            if line.startswith("---") and len(lines) > 2:
                break
            if re.match(r"^[\s|]*(->|\d+\.\d+%)", line):
                lines.append(line[:160])
    return "heap at its peak: %.1f MB used + %.1f MB allocator overhead\n%s" % (
        heap / 1048576, extra / 1048576, "\n".join(lines[:40]))


def _smaps_note(rss):
    return "(RSS under massif, which adds its own: %.1f MB)" % (rss["VmRSS"] / 1024)


def wrk_load(secs):
    def load(run):
        port = int(run_http_port(run))
        w = procs.start(["wrk", "-t1", "-c50", "-d%ds" % secs,
                         "http://127.0.0.1:%d/health" % port],
                        os.path.join(run.dir, "wrk.out"))
        w.wait(timeout=secs + 30)
        procs.stop(w)
    return load


def run_http_port(run):
    with open(os.path.join(run.dir, "healthd.yaml")) as f:
        return re.search(r'listen: \["127\.0\.0\.1:(\d+)"\]', f.read()).group(1)


def for_misses(ctx, res, missed, say):
    """The profiles that explain the missed targets; a profile that cannot
    be taken says why instead of failing the bench."""
    profiles = []
    for title, why, fn in _wanted(res, missed):
        try:
            text = fn(ctx, say)
        except (OSError, RuntimeError, subprocess.SubprocessError) as e:
            text = "profile not taken: %s" % e
        profiles.append({"title": title, "why": why, "text": text or "(no output)"})
    return profiles


def _wanted(res, missed):
    """(title, why, fn(ctx, say)) for each profile the misses call for."""
    out = []
    counters = ("available" if perf_works() else
                "not available here: `perf stat -e instructions` reports <not supported>")
    if "cpu" in missed or "lateness" in missed:
        out.append(("CPU per probe, %s checks (callgrind)" % format(PROFILE_CHECKS, ","),
                    "Where the probe engine's instructions go in steady state. "
                    "(Hardware counters: %s.)" % counters,
                    lambda ctx, say: callgrind(ctx, PROFILE_CHECKS, say)))
    if "scale" in missed:
        out.append(("10,000 checks (callgrind)",
                    "Where the loop's instructions go when it cannot keep up with "
                    "10,000 probes/s. Costs that grow with the number of transfers in "
                    "flight, or with the checks of a service, turn a backlog into a "
                    "bigger one.",
                    lambda ctx, say: callgrind(ctx, 10000, say)))
    for n in (1000, 10000):
        if "rss%d" % n in missed:
            out.append(("memory, %s checks (massif)" % format(n, ","),
                        "What the heap holds at its peak; the tree lists allocation "
                        "sites above 2% of the heap.",
                        lambda ctx, say, n=n: massif(ctx, n, say)))
    if ("http" in missed or "lateness" in missed) and res.get("http"):
        out.append(("/health under wrk with %s checks (callgrind)" %
                    format(PROFILE_CHECKS, ","),
                    "Where the loop's instructions go while it serves /health under "
                    "`wrk -c50` and runs the probes.",
                    lambda ctx, say: callgrind(ctx, PROFILE_CHECKS, say,
                                               load=wrk_load(PROFILE_SECS))))
    return out
