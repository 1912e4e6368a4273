#!/usr/bin/env bash
# Fault: BIRD stops answering in the middle of a command (SIGSTOP), then
# resumes; then stops again and is killed. healthd times the command out,
# stays up, reconnects when BIRD is back, and the state at the upstream is
# the one the checks call for.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

lab_up
lab_config >"$LAB_DIR/healthd.yaml"
lab_web_start 8080
lab_healthd_start
wait_for 10 "upstream to learn $LAB_PREFIX4" lab_upstream_has "$LAB_PREFIX4"
timeouts() { grep -c "no reply to \".*\" within 2000 ms" "$LAB_DIR/healthd.log" || true; }

# 1. frozen, then thawed: the withdrawal goes out after the reconnect
kill -STOP "$LAB_NODE_BIRD_PID"
n0=$(timeouts)
lab_web_stop
wait_for 5 "the checks to withdraw" lab_state_is withdrawn
wait_for 10 "the command to time out" eval '[ "$(timeouts)" -gt "$n0" ]'
kill -0 "$HEALTHD_PID"
lab_upstream_has "$LAB_PREFIX4" # the frozen BIRD still holds its BGP session
kill -CONT "$LAB_NODE_BIRD_PID"
wait_for 15 "upstream to lose $LAB_PREFIX4 after BIRD resumed" lab_upstream_lacks "$LAB_PREFIX4"
wait_for 5 "upstream to lose $LAB_PREFIX6" lab_upstream_lacks "$LAB_PREFIX6"
lab_web_start 8080
wait_for 15 "upstream to learn $LAB_PREFIX4 again" lab_upstream_has "$LAB_PREFIX4"

# 2. frozen mid-command, then killed: BIRD restarts from the include file
kill -STOP "$LAB_NODE_BIRD_PID"
n0=$(timeouts)
lab_web_stop
wait_for 10 "the command to time out" eval '[ "$(timeouts)" -gt "$n0" ]'
lab_include_disabled healthd_web_v4
lab_bird_kill
wait_for 10 "upstream to lose $LAB_PREFIX4 with BIRD" lab_upstream_lacks "$LAB_PREFIX4"
kill -0 "$HEALTHD_PID"
lab_state_is withdrawn
lab_bird_start
lab_bgp_established 20
never_within 3 "the route announced while the web service is down" lab_upstream_has "$LAB_PREFIX4"
wait_for 10 "healthd to reconnect" eval '[ "$(lab_status_get "d[\"bird\"][\"connected\"]")" = True ]'
lab_web_start 8080
wait_for 15 "upstream to learn $LAB_PREFIX4 after BIRD's restart" lab_upstream_has "$LAB_PREFIX4"
wait_for 5 "upstream to learn $LAB_PREFIX6" lab_upstream_has "$LAB_PREFIX6"
lab_state_is up
kill -0 "$HEALTHD_PID"
lab_healthd_stop TERM
