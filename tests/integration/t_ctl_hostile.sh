#!/usr/bin/env bash
# Hostile control-socket peers, both ways round. healthctl against servers
# that never answer or never stop answering, a missing socket, a socket it
# may not open, a config that does not parse: exit 1 with what happened,
# within its timeout and its reply cap. healthd against a client that
# pipelines 300,000 requests and never reads (memory stays bounded, probes
# on time, the route announced throughout) and against 100 clients
# trickling a byte every 0.3s (root's healthctl status and drain still get
# through); the read-only socket serves status to anyone and refuses drain.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

HOSTILE=$LAB_SRC/tests/integration/ctlhostile.py
AS_NOBODY=(setpriv --reuid=nobody --regid=nogroup --clear-groups)
PY=/usr/bin/python3 # python3 on PATH may live where nobody cannot read

expect_rc() { # RC CMD...
	local want=$1 rc=0; shift
	"$@" >"$LAB_DIR/out" 2>"$LAB_DIR/err" || rc=$?
	[ "$rc" -eq "$want" ] || { echo "exit $rc, expected $want: $*" >&2; cat "$LAB_DIR/err" >&2; return 1; }
}
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
# The largest lateness bucket (µs) that gained probes between two status
# snapshots, from the scheduler histogram.
late_max_us() { # BEFORE.json AFTER.json
	python3 -c '
import json, sys
h = [dict((b, n) for b, n in json.load(open(f))["scheduler"]["lateness_ms"]["histogram_us"])
     for f in sys.argv[1:3]]
print(max([b for b, n in h[1].items() if n > h[0].get(b, 0)] or [0]))' "$1" "$2"
}
start_hostile() { # OUTFILE ARGS... ; sets HOSTILE_PID
	python3 "$HOSTILE" "${@:2}" >"$1" 2>&1 &
	HOSTILE_PID=$!
	_lab_track "$HOSTILE_PID"
	wait_for 10 "ctlhostile $2 to be ready" grep -q '^ready' "$1"
}
stop_hostile() {
	kill -TERM "$HOSTILE_PID" 2>/dev/null || true
	wait "$HOSTILE_PID" || true
	_lab_untrack "$HOSTILE_PID"
}

lab_up
chmod 0711 "$LAB_DIR" # nobody reaches the sockets inside
RO=$LAB_DIR/healthd-ro.sock
lab_config | sed "s|^  socket: $LAB_DIR/healthd.sock\$|&\n  readonly_socket: $RO|" >"$LAB_DIR/healthd.yaml"
grep -q readonly_socket "$LAB_DIR/healthd.yaml"

# ---- healthctl against bad servers ----
# silent: accepts, never answers
start_hostile "$LAB_DIR/silent.out" silent --socket "$LAB_DIR/silent.sock" --seconds 30
t0=$(now_ms)
expect_rc 1 timeout 20 "$HEALTHCTL_BIN" -T 1s -s "$LAB_DIR/silent.sock" status
t1=$(now_ms)
grep -q "timed out after 1s" "$LAB_DIR/err" || fail "silent server: $(cat "$LAB_DIR/err")"
log "measured: healthctl -T 1s gave up on a silent server after $((t1 - t0)) ms"
stop_hostile
# streaming: bytes without a newline, for ever
start_hostile "$LAB_DIR/stream.out" stream --socket "$LAB_DIR/stream.sock" --seconds 60
# healthctl's exit status and its peak RSS (kB), by a parent that waits
expect_rc 0 python3 -c '
import resource, subprocess, sys
r = subprocess.run(sys.argv[2:], stderr=open(sys.argv[1], "w"))
print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)' \
	"$LAB_DIR/stream.err" "$HEALTHCTL_BIN" -T 50s -s "$LAB_DIR/stream.sock" status
read -r rc maxrss <"$LAB_DIR/out"
[ "$rc" -eq 1 ] || fail "streaming server: exit $rc: $(cat "$LAB_DIR/stream.err")"
grep -q "reply from $LAB_DIR/stream.sock too large" "$LAB_DIR/stream.err" ||
	fail "streaming server: $(cat "$LAB_DIR/stream.err")"
log "measured: healthctl against a streaming server: max RSS $((maxrss / 1024)) MB"
[ "$maxrss" -lt $((256 * 1024)) ] || fail "healthctl grew to $((maxrss / 1024)) MB"
stop_hostile
# no socket
expect_rc 1 "$HEALTHCTL_BIN" -s "$LAB_DIR/nosuch.sock" status
grep -q "cannot reach healthd at $LAB_DIR/nosuch.sock: no such socket" "$LAB_DIR/err"
# permission denied names the socket's group
start_hostile "$LAB_DIR/perm.out" silent --socket "$LAB_DIR/perm.sock" --seconds 30
chgrp daemon "$LAB_DIR/perm.sock"
chmod 0660 "$LAB_DIR/perm.sock"
expect_rc 1 "${AS_NOBODY[@]}" "$HEALTHCTL_BIN" -T 2s -s "$LAB_DIR/perm.sock" status
grep -q "permission denied (join group 'daemon'" "$LAB_DIR/err" || fail "permission: $(cat "$LAB_DIR/err")"
stop_hostile
# the shipped layout: a 0750 directory of the group, which nobody cannot enter
mkdir -m 0750 "$LAB_DIR/rundir"
chgrp daemon "$LAB_DIR/rundir"
start_hostile "$LAB_DIR/perm.out" silent --socket "$LAB_DIR/rundir/healthd.sock" --seconds 30
expect_rc 1 "${AS_NOBODY[@]}" "$HEALTHCTL_BIN" -T 2s -s "$LAB_DIR/rundir/healthd.sock" status
grep -q "permission denied (join group 'daemon'" "$LAB_DIR/err" || fail "permission (directory): $(cat "$LAB_DIR/err")"
stop_hostile

lab_web_start 8080
lab_healthd_start
wait_for 10 "announced" lab_upstream_has "$LAB_PREFIX4"
wait_for 5 "the read-only socket" test -S "$RO"

# ---- a config that does not parse still names its socket ----
{ lab_config | sed '/^control:/,$d'; printf 'control:\n  socket: "%s"  # quoted\n' "$LAB_DIR/healthd.sock"
  printf 'services:\n  - name: [unclosed\n'; } >"$LAB_DIR/broken.yaml"
if build_check=$("$HEALTHD_BIN" -t -c "$LAB_DIR/broken.yaml" 2>&1); then fail "broken.yaml parses: $build_check"; fi
expect_rc 0 "$HEALTHCTL_BIN" -c "$LAB_DIR/broken.yaml" status
grep -q '^service web' "$LAB_DIR/out"
printf 'node: [oops\ncontrol: { socket: %s }\n' "$LAB_DIR/healthd.sock" >"$LAB_DIR/flow.yaml"
expect_rc 0 "$HEALTHCTL_BIN" -c "$LAB_DIR/flow.yaml" status --json

# ---- the read-only socket ----
expect_rc 0 "${AS_NOBODY[@]}" "$HEALTHCTL_BIN" -s "$RO" status --json
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["services"][0]["name"]=="web"' "$LAB_DIR/out"
expect_rc 0 "${AS_NOBODY[@]}" "$HEALTHCTL_BIN" -s "$RO" version
grep -q '^healthd ' "$LAB_DIR/out"
for req in "drain web" "undrain web" "reload" "check web/http"; do
	# shellcheck disable=SC2086 # the request is words
	expect_rc 3 "${AS_NOBODY[@]}" "$HEALTHCTL_BIN" -s "$RO" $req
	grep -q "read-only socket" "$LAB_DIR/err" || fail "$req on the read-only socket: $(cat "$LAB_DIR/err")"
done
expect_rc 3 "$HEALTHCTL_BIN" -s "$RO" drain web # root too: it is the socket that decides
lab_state_is up
# the main socket is not for nobody (0660, group root)
expect_rc 1 "${AS_NOBODY[@]}" "$HEALTHCTL_BIN" -s "$LAB_DIR/healthd.sock" status
grep -q "permission denied (join group 'root'" "$LAB_DIR/err"

# ---- a client that pipelines and never reads ----
lab_healthctl status --json >"$LAB_DIR/before.json"
rss0=$(rss_kb "$HEALTHD_PID")
start_hostile "$LAB_DIR/pipe.out" pipeline --socket "$LAB_DIR/healthd.sock" --count 300000 --seconds 12
never_for 8 0.2 "the upstream lost $LAB_PREFIX4 while a client pipelined" lab_upstream_lacks "$LAB_PREFIX4"
expect_rc 0 timeout 10 "$HEALTHCTL_BIN" -s "$LAB_DIR/healthd.sock" status
rss1=$(rss_kb "$HEALTHD_PID")
lab_healthctl status --json >"$LAB_DIR/after.json"
late=$(late_max_us "$LAB_DIR/before.json" "$LAB_DIR/after.json")
stop_hostile
log "measured: pipelining client: healthd RSS ${rss0} kB -> ${rss1} kB, probes at most ${late} us late; $(tail -n1 "$LAB_DIR/pipe.out")"
[ "$rss1" -lt $((rss0 + 50 * 1024)) ] || fail "healthd grew from $rss0 kB to $rss1 kB"
[ "$late" -le 1000000 ] || fail "probes ran up to $late us late while a client pipelined"
lab_upstream_has "$LAB_PREFIX4"

# ---- 100 clients trickling a byte every 0.3s, as an unprivileged user ----
chmod 0666 "$LAB_DIR/healthd.sock" # a local user, not an operator
"${AS_NOBODY[@]}" "$PY" "$HOSTILE" trickle --socket "$LAB_DIR/healthd.sock" --clients 100 \
	--seconds 20 >"$LAB_DIR/trickle.out" 2>&1 &
HOSTILE_PID=$!
_lab_track "$HOSTILE_PID"
wait_for 10 "the tricklers to connect" grep -q '^ready' "$LAB_DIR/trickle.out"
for i in 1 2 3 4 5; do
	expect_rc 0 timeout 10 "$HEALTHCTL_BIN" -s "$LAB_DIR/healthd.sock" status ||
		fail "healthctl status ($i) while 100 clients trickle: $(cat "$LAB_DIR/err")"
	sleep 0.5
done
expect_rc 0 timeout 10 "$HEALTHCTL_BIN" -s "$LAB_DIR/healthd.sock" drain web --reason "trickle test"
wait_for 5 "draining" lab_state_is draining
expect_rc 0 timeout 10 "$HEALTHCTL_BIN" -s "$LAB_DIR/healthd.sock" undrain web
kill -0 "$HOSTILE_PID" || fail "the tricklers ended before healthctl was tried"
stop_hostile
log "measured: $(tail -n1 "$LAB_DIR/trickle.out")"
grep -q "dropped client" "$LAB_DIR/healthd.log" || fail "healthd did not log a dropped client"

kill -0 "$HEALTHD_PID"
wait_for 10 "up again" lab_state_is up
lab_healthd_stop TERM
[ ! -e "$RO" ] || fail "healthd left the read-only socket behind"
