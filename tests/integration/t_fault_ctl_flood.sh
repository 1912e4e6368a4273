#!/usr/bin/env bash
# Fault: the control socket is flooded (idle half-requests, junk clients,
# hundreds of concurrent `healthctl status`) while the service fails once:
# the withdrawal reaches the upstream in the usual time, healthd stays up,
# and healthctl works during and after the flood.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

lab_up
lab_config >"$LAB_DIR/healthd.yaml"
lab_web_start 8080
lab_healthd_start
wait_for 10 "upstream to learn $LAB_PREFIX4" lab_upstream_has "$LAB_PREFIX4"

python3 "$LAB_SRC/tests/integration/ctlflood.py" --socket "$LAB_DIR/healthd.sock" \
	--seconds 60 --holders 100 --workers 20 >"$LAB_DIR/flood.out" 2>&1 &
FLOOD_PID=$!
_lab_track "$FLOOD_PID"
wait_for 10 "the flood to start" grep -q '^ready' "$LAB_DIR/flood.out"
t0=$(now_ms)
lab_web_stop
wait_for 5 "upstream to lose $LAB_PREFIX4 under the flood" lab_upstream_lacks "$LAB_PREFIX4"
t1=$(now_ms)
log "measured: withdrawal under a control-socket flood reached the upstream in $((t1 - t0)) ms"
[ $((t1 - t0)) -lt 2000 ] || fail "the withdrawal took $((t1 - t0)) ms under the flood"
kill -0 "$HEALTHD_PID"
# an operator gets through while idle clients hold connections
wait_for 5 "healthctl status during the flood" lab_state_is withdrawn
kill -0 "$FLOOD_PID" || fail "the flood ended before healthctl was tried"
# 300 healthctl status, 50 at a time, into the flood
seq 300 | xargs -P 50 -I{} "$HEALTHCTL_BIN" -s "$LAB_DIR/healthd.sock" status --json \
	>"$LAB_DIR/ctl.out" 2>"$LAB_DIR/ctl.err" &
CTL_PID=$!
_lab_track "$CTL_PID"

wait "$CTL_PID" || true # some are refused while every client is busy
_lab_untrack "$CTL_PID"
kill -0 "$FLOOD_PID" || fail "the flood ended before the healthctl batch did"
kill -TERM "$FLOOD_PID" # ends it, with its summary
ok=$(grep -c '"services"' "$LAB_DIR/ctl.out" || true)
log "measured: $ok of 300 concurrent healthctl status answered during the flood"
[ "$ok" -ge 150 ] || fail "only $ok healthctl status got through: $(sort "$LAB_DIR/ctl.err" | uniq -c | head -n 3)"
wait "$FLOOD_PID" || fail "the flood tool failed: $(cat "$LAB_DIR/flood.out")"
_lab_untrack "$FLOOD_PID"
log "measured: $(tail -n1 "$LAB_DIR/flood.out")"

kill -0 "$HEALTHD_PID"
lab_state_is withdrawn
lab_web_start 8080
wait_for 10 "upstream to learn $LAB_PREFIX4 again" lab_upstream_has "$LAB_PREFIX4"
lab_state_is up
lab_healthd_stop TERM
