#!/usr/bin/env bash
# Stop the web service: the upstream loses both prefixes; start it: they return.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

lab_up
lab_config > "$LAB_DIR/healthd.yaml"
"$HEALTHD_BIN" -t -c "$LAB_DIR/healthd.yaml" 2>/dev/null
lab_web_start 8080
lab_healthd_start
wait_for 10 "upstream to learn $LAB_PREFIX4" lab_upstream_has "$LAB_PREFIX4"
wait_for 5 "upstream to learn $LAB_PREFIX6" lab_upstream_has "$LAB_PREFIX6"
lab_upstream_communities "$LAB_PREFIX4" | grep -qx '(64500,100)'
lab_state_is up

t0=$(now_ms)
lab_web_stop
wait_for 5 "upstream to lose $LAB_PREFIX4" lab_upstream_lacks "$LAB_PREFIX4"
t1=$(now_ms)
wait_for 2 "upstream to lose $LAB_PREFIX6" lab_upstream_lacks "$LAB_PREFIX6"
log "measured: web stopped -> upstream lost the route in $((t1 - t0)) ms (interval 200ms, fall 2)"
lab_state_is withdrawn
grep -q 'disabled yes;' "$LAB_DIR/node/healthd.conf"
lab_healthctl status | grep -q 'refused'

t0=$(now_ms)
lab_web_start 8080
wait_for 10 "upstream to learn $LAB_PREFIX4 again" lab_upstream_has "$LAB_PREFIX4"
t1=$(now_ms)
wait_for 2 "upstream to learn $LAB_PREFIX6 again" lab_upstream_has "$LAB_PREFIX6"
log "measured: web started -> upstream has the route in $((t1 - t0)) ms (rise 2, hold_down 1s)"
lab_healthd_stop TERM
grep -q 'stopped' "$LAB_DIR/healthd.log"
