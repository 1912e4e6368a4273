#!/usr/bin/env bash
# Fault: BIRD's socket is absent when healthd starts. healthd starts anyway,
# says which socket it cannot reach and why, and announces once BIRD comes.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

lab_up
lab_config >"$LAB_DIR/healthd.yaml"
lab_web_start 8080
lab_bird_kill
rm -f "$LAB_DIR/node/bird.ctl"
sock=$LAB_DIR/node/bird.ctl

lab_healthd_start
wait_for 5 "healthd to name the socket it cannot reach" \
	grep -qF "BIRD unreachable: $sock: connect: no such file or directory" "$LAB_DIR/healthd.log"
kill -0 "$HEALTHD_PID"
lab_healthctl status | grep -qF "BIRD $sock: NOT CONNECTED"
[ "$(lab_status_get 'd["bird"]["connected"]')" = False ]
lab_upstream_lacks "$LAB_PREFIX4"
wait_for 5 "the checks to call for announcing" lab_state_is up

lab_bird_start
wait_for 15 "upstream to learn $LAB_PREFIX4 once BIRD is there" lab_upstream_has "$LAB_PREFIX4"
wait_for 5 "upstream to learn $LAB_PREFIX6" lab_upstream_has "$LAB_PREFIX6"
# BIRD may announce from healthd's file before healthd's next reconnect
# attempt (its back-off reaches 5 s while BIRD is absent)
wait_for 10 "healthd to connect to BIRD" grep -qF "connected to BIRD at $sock" "$LAB_DIR/healthd.log"
wait_for 5 "healthctl to show BIRD connected" eval '[ "$(lab_status_get "d[\"bird\"][\"connected\"]")" = True ]'
lab_state_is up

# and the other way: the checks fail while BIRD is away again
lab_bird_kill
rm -f "$sock"
lab_web_stop
wait_for 5 "the checks to withdraw" lab_state_is withdrawn
lab_bird_start
lab_bgp_established 20
never_within 3 "the route announced while the web service is down" lab_upstream_has "$LAB_PREFIX4"
kill -0 "$HEALTHD_PID"
lab_healthd_stop TERM
