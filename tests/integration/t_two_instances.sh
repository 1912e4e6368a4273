#!/usr/bin/env bash
# One healthd per control socket and per include file. A second healthd on
# the same config, or on the same include file behind another control
# socket, exits at once with "another healthd (pid N) holds LOCKFILE", and
# leaves the first one's socket and file alone: the first keeps serving
# healthctl. healthd -t takes no lock. A reload onto an include file that
# someone else holds is refused and the running config stays.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

_gone() { ! _lab_alive "$1"; }

# second_healthd CONFIG — runs another healthd in the node ns; it must exit
# within 5 s; REPLY is its exit status, its output is in second.log.
second_healthd() {
	local pid rc=0
	ip netns exec "$LAB_NS_NODE" "$HEALTHD_BIN" -c "$1" >"$LAB_DIR/second.log" 2>&1 &
	pid=$!
	_lab_track "$pid"
	if ! wait_for 5 "the second healthd to exit" _gone "$pid"; then
		_lab_stop_pid "$pid"
		fail "a second healthd with $1 kept running: $(tail -n 3 "$LAB_DIR/second.log")"
	fi
	wait "$pid" || rc=$?
	_lab_untrack "$pid"
	REPLY=$rc
}

# the first one still has its socket (the same one) and answers on it
first_serves() {
	[ -S "$LAB_DIR/healthd.sock" ] || fail "the first healthd's control socket is gone"
	[ "$(stat -c %i "$LAB_DIR/healthd.sock")" = "$sock_inode" ] ||
		fail "the control socket was replaced"
	kill -0 "$first"
	lab_healthctl status | grep -q '^service web *up'
}

lab_up
lab_config >"$LAB_DIR/healthd.yaml"
lab_web_start 8080
lab_healthd_start
first=$LAB_HEALTHD_PID
wait_for 10 "upstream to learn $LAB_PREFIX4" lab_upstream_has "$LAB_PREFIX4"
wait_for 5 "web up" lab_state_is up
sock_inode=$(stat -c %i "$LAB_DIR/healthd.sock")
grep -qx "$first" "$LAB_DIR/healthd.sock.lock" || fail "the control socket's lock does not hold pid $first"
grep -qx "$first" "$LAB_DIR/node/healthd.conf.lock" || fail "the include file's lock does not hold pid $first"

# healthd -t on the same config: no lock, exit 0
ip netns exec "$LAB_NS_NODE" "$HEALTHD_BIN" -t -c "$LAB_DIR/healthd.yaml" 2>"$LAB_DIR/t.err" ||
	fail "healthd -t refused while another healthd runs: $(cat "$LAB_DIR/t.err")"

# the same config: refused on the control socket's lock, before the socket is touched
second_healthd "$LAB_DIR/healthd.yaml"
[ "$REPLY" -eq 1 ] || fail "a second healthd on the same config exited $REPLY, want 1"
grep -qF "another healthd (pid $first) holds $LAB_DIR/healthd.sock.lock: " "$LAB_DIR/second.log" ||
	fail "no clear message: $(cat "$LAB_DIR/second.log")"
if grep -q "started" "$LAB_DIR/second.log"; then fail "the second healthd started"; fi
first_serves
expect_drain() {
	lab_healthctl drain web >/dev/null
	wait_for 5 "draining" lab_state_is draining
	lab_healthctl undrain web >/dev/null
	wait_for 5 "up again" lab_state_is up
}
expect_drain

# another control socket, the same include file: refused on the include's lock
sed "s|socket: $LAB_DIR/healthd.sock|socket: $LAB_DIR/second.sock|" "$LAB_DIR/healthd.yaml" >"$LAB_DIR/second.yaml"
grep -q "second.sock" "$LAB_DIR/second.yaml"
second_healthd "$LAB_DIR/second.yaml"
[ "$REPLY" -eq 1 ] || fail "a second healthd on the same include file exited $REPLY, want 1"
grep -qF "another healthd (pid $first) holds $LAB_DIR/node/healthd.conf.lock: " "$LAB_DIR/second.log" ||
	fail "no clear message: $(cat "$LAB_DIR/second.log")"
[ ! -e "$LAB_DIR/second.sock" ] || fail "the refused healthd bound its control socket"
grep -q 'healthd_web_v4' "$LAB_DIR/node/healthd.conf"
first_serves
expect_drain

# reload onto an include file whose lock another process holds: refused
other=$LAB_DIR/node/other.conf
: >"$other"
# a blocking flock: with -n, the holder gave up whenever the poll below
# held the lock for its instant, and never held it (seen in loaded runs)
flock "$other.lock" sleep 600 &
holder=$!
_lab_track "$holder"
wait_for 5 "flock(1) to hold $other.lock" sh -c "! flock -n '$other.lock' true"
cp "$LAB_DIR/healthd.yaml" "$LAB_DIR/good.yaml"
sed -i "s|include: $LAB_DIR/node/healthd.conf|include: $other|" "$LAB_DIR/healthd.yaml"
rc=0
lab_healthctl reload 2>"$LAB_DIR/reload.err" || rc=$?
[ "$rc" -eq 3 ] || fail "reload onto a held include file exited $rc, want 3"
grep -qF "holds $other.lock: it uses the include file $other; bird.include not changed" "$LAB_DIR/reload.err" ||
	fail "no clear reload error: $(cat "$LAB_DIR/reload.err")"
_lab_stop_pid "$holder"
cp "$LAB_DIR/good.yaml" "$LAB_DIR/healthd.yaml"
lab_healthctl reload >/dev/null
first_serves
expect_drain
[ ! -s "$other" ] || fail "the refused reload wrote $other"

lab_healthd_stop TERM
log "note: a second healthd was refused on the control socket's and on the include file's lock"
