#!/usr/bin/env bash
# The fleet guard in the four-region mesh (meshlab.sh; the lab inventory
# sets guard: {min_announcers: 1, step: 1s, interval: 250ms}).
#   1. the web service stopped on all four nodes at once: at every
#      transit at least one node keeps announcing the /24, with at most
#      one gap, shorter than BOUND_MS; one node is GUARDED (status, JSON,
#      /metrics, the log); a drain there is refused (exit 3);
#   2. the web service restored on two other nodes: they announce with the
#      up community, the guarded node withdraws, and no transit loses the
#      /24 while that happens.
#
# The bound: every node sees the others' paths over iBGP. The nodes that
# fail while another still announces withdraw; the last one sees none
# and holds, so normally there is no gap at all. When the last ones fail
# within one BIRD round of each other, all may withdraw; then the node
# with the lowest router id (rank 0) re-announces once two answers in a
# row, one guard.interval apart, show nobody: at most 2 * 250 ms after
# the last withdrawal reached it, plus a BIRD round and the eBGP hops to
# the transits (a few ms here). Were rank 0 not to come back, rank 1
# would, one step (1 s) after it saw nobody: 250 ms + 1 s. Both are under
# the issue's 2 s, which is the bound asserted: BOUND_MS = 2000.
set -euo pipefail
. "$(dirname "$0")/meshlab.sh"

BOUND_MS=2000
ml_up

events=$ML_DIR/transit-events
stopfile=$ML_DIR/sampler.stop
# The transits' best route to the /24 every 20 ms, on one connection each;
# a line per change: "MS TRANSIT present|absent PROTO".
python3 - "$ML_DIR" "$ML_PREFIX4" "$stopfile" "${ML_LINE[@]}" >"$events" 2>"$ML_DIR/sampler.err" <<'PY' &
import os, re, socket, sys, time
d, prefix, stop, regions = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
conns = {}
for r in regions:
    s = socket.socket(socket.AF_UNIX)
    s.connect('%s/transit/%s/bird.ctl' % (d, r))
    s.settimeout(2)
    conns[r] = [s, b'']

def reply(c):
    buf = c[1]
    while True:
        m = re.search(rb'(^|\n)\d{4} [^\n]*\n', buf)
        if m:
            c[1] = buf[m.end():]
            return buf[:m.end()]
        buf += c[0].recv(65536)

for c in conns.values():
    reply(c)
last = {}
while not os.path.exists(stop):
    t0 = time.time()
    for r, c in conns.items():
        c[0].sendall(('show route %s primary\n' % prefix).encode())
        out = reply(c).decode(errors='replace')
        m = re.search(r'\[([A-Za-z0-9_]+) ', out)
        state = ('present', m.group(1)) if m else ('absent', '-')
        if last.get(r) != state:
            last[r] = state
            print('%d %s %s %s' % (int(time.time() * 1000), r, state[0], state[1]), flush=True)
    time.sleep(max(0, 0.02 - (time.time() - t0)))
PY
sampler=$!
_ml_track "$sampler"
sampled() { [ "$(wc -l <"$events")" -ge ${#ML_LINE[@]} ]; }
wait_for 5 "the transit sampler's first samples ($(cat "$ML_DIR/sampler.err" 2>/dev/null))" sampled

# gaps FROM_MS TO_MS — per transit: "TRANSIT N_GAPS LONGEST_MS" (a gap still
# open at TO_MS counts up to TO_MS)
gaps() {
	python3 - "$events" "$1" "$2" "${ML_LINE[@]}" <<'PY'
import sys
ev, lo, hi, regions = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:]
rows = [l.split() for l in open(ev) if l.strip()]
for r in regions:
    state, since, n, worst = 'present', lo, 0, 0
    for t, rr, st, _ in rows:
        t = int(t)
        if rr != r:
            continue
        if t <= lo:
            state = st
            continue
        if t > hi:
            break
        if st == 'absent' and state == 'present':
            since = t
        elif st == 'present' and state == 'absent':
            n += 1
            worst = max(worst, t - max(since, lo))
        state = st
    if state == 'absent':
        n += 1
        worst = max(worst, hi - max(since, lo))
    print(r, n, worst)
PY
}

guarded_of() { # node -> "true"/"false"
	ml_healthctl "$1" status --json 2>/dev/null | python3 -c '
import json, sys
d = json.load(sys.stdin)
print(str([s for s in d["services"] if s["name"] == "web"][0]["guarded"]).lower())'
}
guarded_nodes() {
	local n
	for n in "${ML_NODES[@]}"; do [ "$(guarded_of "$n")" = true ] && echo "$n"; done
	return 0
}
one_guarded() { [ "$(guarded_nodes | wc -l)" -eq 1 ]; }

# 1. the web service stopped on all four nodes at once
t_stop=$(now_ms)
stoppers=()
for n in "${ML_NODES[@]}"; do
	kill -TERM "${ML_WEB_PID[$n]}"   # all four at once; reaped below
	stoppers+=("${ML_WEB_PID[$n]}")
done
for n in "${ML_NODES[@]}"; do ml_web_stop "$n"; done
t_stopped=$(now_ms)
echo "measured: the four web services stopped within $((t_stopped - t_stop)) ms"
wait_for 15 "exactly one node GUARDED" one_guarded
g=$(guarded_nodes)
# settled: the three others withdrawn and staying so for 3 s
others=()
for n in "${ML_NODES[@]}"; do [ "$n" = "$g" ] || others+=("$n"); done
all_others_withdrawn() { local n; for n in "${others[@]}"; do ml_state_is "$n" withdrawn || return 1; done; }
wait_for 10 "the three other nodes withdrawn" all_others_withdrawn
# and it stays so: no second node comes back, the guarded one keeps on
unsettled() { ! one_guarded || ! all_others_withdrawn || [ "$(guarded_nodes)" != "$g" ]; }
never_within 3 "another node announcing, or $g letting go" unsettled
t_settled=$(now_ms)
one_guarded || fail "after 3 s the guarded nodes are: $(guarded_nodes | paste -sd ' ')"
ml_state_is "$g" degraded || fail "the guarded node $g is $(ml_state "$g"), not degraded"

worst=0
while read -r r n w; do
	echo "measured: transit $r: $n gap(s), the longest $w ms (from the stop to $((t_settled - t_stop)) ms after)"
	[ "$n" -le 1 ] || fail "transit $r lost the /24 $n times"
	[ "$w" -lt "$BOUND_MS" ] || fail "transit $r was without the /24 for $w ms (bound $BOUND_MS ms)"
	[ "$w" -le "$worst" ] || worst=$w
done < <(gaps "$t_stop" "$t_settled")
for r in "${ML_LINE[@]}"; do
	[ -n "$(ml_transit_best "$r")" ] || fail "transit $r has no route to $ML_PREFIX4 with the guard holding"
done
echo "measured: all four web services down -> $g keeps announcing (GUARDED); worst gap at the transits $worst ms (bound $BOUND_MS ms)"

# what the guarded node says: status text and JSON, /metrics, the log
st=$(ml_healthctl "$g" status)
grep -q 'reason: *GUARDED: last announcer' <<<"$st" || fail "$g's status does not say GUARDED: $st"
grep -q 'check http failed' <<<"$st" || fail "$g's status does not name the failing check"
grep -q 'GUARDED: last announcer' "$(ml_root "$g")/var/log/healthd.log" || fail "$g's log does not say GUARDED"
[ "$(grep -c 'GUARDED: last announcer' "$(ml_root "$g")/var/log/healthd.log")" -le 2 ] ||
	fail "$g logs GUARDED more than once per transition: $(grep -c 'GUARDED' "$(ml_root "$g")/var/log/healthd.log")"
m=$(ip netns exec "$(ml_ns "$g")" curl -sS -m 2 http://127.0.0.1:9110/metrics)
grep -qx 'healthd_service_guarded{service="web"} 1' <<<"$m" || fail "$g's /metrics lacks healthd_service_guarded 1"
grep -q '^healthd_service_guarded_info{service="web",reason="GUARDED: last announcer' <<<"$m" ||
	fail "$g's /metrics lacks the guard's reason"
# its transit gets the degraded community from it
gr=${ML_INV[$g.region]}
ml_tbirdc "$gr" show route protocol "node_$g" all | grep -q '(64496,300)' ||
	fail "$g's transit does not see the degraded community on $g's route"
# a drain would leave nobody: refused, exit 3, unless --force
set +e
out=$(ml_healthctl "$g" drain web 2>&1)
rc=$?
set -e
[ "$rc" -eq 3 ] || fail "drain on the guarded node exited $rc, not 3: $out"
grep -q 'draining web would leave 0 other announcers' <<<"$out" || fail "drain refusal says: $out"
echo "  drain on $g refused: $out"
ml_state_is "$g" degraded || fail "the refused drain changed $g's state"

# 2. the web service restored on two of the others
back=("${others[0]}" "${others[1]}")
t_restore=$(now_ms)
for n in "${back[@]}"; do ml_web_start "$n"; done
both_up() { ml_state_is "${back[0]}" up && ml_state_is "${back[1]}" up; }
wait_for 20 "${back[*]} up again (hold_down counts from their withdrawal)" both_up
wait_for 10 "$g to withdraw once others announce" ml_state_is "$g" withdrawn
t_released=$(now_ms)
[ "$(guarded_of "$g")" = false ] || fail "$g still guarded after withdrawing"
grep -q 'guard released' "$(ml_root "$g")/var/log/healthd.log" || fail "$g's log does not say the guard let go"
for n in "${back[@]}"; do
	r=${ML_INV[$n.region]}
	up_comm() { ml_tbirdc "$1" show route protocol "node_$2" all | grep -q '(64496,100)' &&
		! ml_tbirdc "$1" show route protocol "node_$2" all | grep -q '(64496,300)'; }
	wait_for 10 "transit $r to get $n's route with the up community only" up_comm "$r" "$n"
done
no_import() { [ -z "$(ml_transit_imports "$gr")" ]; }
wait_for 10 "$g's transit to lose $g's route" no_import
n_gaps=0
while read -r r n w; do
	echo "measured: restore: transit $r: $n gap(s), the longest $w ms"
	n_gaps=$((n_gaps + n))
done < <(gaps "$t_restore" "$(now_ms)")
[ "$n_gaps" -eq 0 ] || fail "a transit lost the /24 while ${back[*]} came back and $g let go"
echo "measured: ${back[*]} restored -> both up after $((t_released - t_restore)) ms and $g withdrew (guard released), no gap at any transit"

: >"$stopfile"
_ml_stop_pid "$sampler"
ml_down
