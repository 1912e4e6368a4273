#!/usr/bin/env bash
# Fault: something else answers on BIRD's socket: garbage at once, nothing
# at all, a welcome and then garbage, a welcome and then silence. healthd
# logs an error naming the socket and what was sent, stays up, announces
# nothing by accident, and recovers when the real BIRD is back on that path.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

sock=$LAB_DIR/node/bird.ctl
FAKE_PID=
fake_start() {
	: >"$LAB_DIR/fake.out"
	python3 "$LAB_SRC/tests/integration/fakebird.py" --socket "$sock" --mode "$1" \
		>"$LAB_DIR/fake.out" 2>&1 &
	FAKE_PID=$!
	_lab_track "$FAKE_PID"
	wait_for 5 "the fake BIRD ($1) to listen" grep -qx ready "$LAB_DIR/fake.out"
}
fake_stop() { _lab_stop_pid "$FAKE_PID"; FAKE_PID=; }
logged() { grep -qF "$1" "$LAB_DIR/healthd.log"; }

lab_up
lab_config >"$LAB_DIR/healthd.yaml"
lab_web_start 8080
lab_healthd_start
wait_for 10 "upstream to learn $LAB_PREFIX4" lab_upstream_has "$LAB_PREFIX4"

# the real BIRD dies while the service is down: the file says withdrawn
lab_web_stop
wait_for 5 "upstream to lose $LAB_PREFIX4" lab_upstream_lacks "$LAB_PREFIX4"
lab_bird_kill

fake_start garbage
wait_for 10 "an error naming the socket and the greeting" \
	logged "$sock: BIRD sent garbage: no four-digit code in \"HELLO this is not BIRD\""
kill -0 "$HEALTHD_PID"
fake_stop

fake_start silent
wait_for 15 "an error naming the socket that never welcomed" logged "$sock: no welcome within 2000 ms"
kill -0 "$HEALTHD_PID"
fake_stop

fake_start welcome-garbage
wait_for 15 "an error quoting the garbage reply" \
	logged "$sock: BIRD sent garbage: NUL byte in \"\\x00\\xffjunk\\x0a\""
grep -q '^command ' "$LAB_DIR/fake.out"
kill -0 "$HEALTHD_PID"
fake_stop

fake_start welcome-silent
wait_for 15 "a command to time out on the silent BIRD" logged "$sock: no reply to \"show protocols"
kill -0 "$HEALTHD_PID"
fake_stop

# the checks still decide, and healthctl still answers
lab_state_is withdrawn
lab_healthctl status | grep -qF "BIRD $sock: NOT CONNECTED"

# the real BIRD returns on the same path: the route stays withdrawn...
lab_bird_start
lab_bgp_established 20
wait_for 15 "healthd to reconnect to the real BIRD" \
	eval '[ "$(lab_status_get "d[\"bird\"][\"connected\"]")" = True ]'
never_within 3 "the route announced while the web service is down" lab_upstream_has "$LAB_PREFIX4"
# ...until the checks call for it
lab_web_start 8080
wait_for 15 "upstream to learn $LAB_PREFIX4" lab_upstream_has "$LAB_PREFIX4"
wait_for 5 "upstream to learn $LAB_PREFIX6" lab_upstream_has "$LAB_PREFIX6"
lab_state_is up
kill -0 "$HEALTHD_PID"
lab_healthd_stop TERM
