#!/usr/bin/env bash
# A withdrawn service stays withdrawn across `birdc configure` and a BIRD
# restart; BIRD being away does not stop a later re-announce.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

lab_up
lab_config > "$LAB_DIR/healthd.yaml"
lab_healthd_start
wait_for 10 "healthd to settle on withdrawn (no web service)" lab_state_is withdrawn
wait_for 5 "the include file to say disabled" lab_include_disabled healthd_web_v4
never_within 1 "upstream has $LAB_PREFIX4 without a web service" lab_upstream_has "$LAB_PREFIX4"

lab_node_birdc configure >/dev/null
never_within 1 "upstream learnt $LAB_PREFIX4 after birdc configure" lab_upstream_has "$LAB_PREFIX4"

lab_bird_kill
lab_bird_start
wait_for 20 "BGP sessions Established after the BIRD restart" lab_bgp_established
never_within 3 "upstream learnt $LAB_PREFIX4 after a BIRD restart" lab_upstream_has "$LAB_PREFIX4"
lab_node_birdc show protocols healthd_web_v4 | grep -q ' down '
wait_for 5 "healthd to reconnect to BIRD" sh -c "\"$HEALTHCTL_BIN\" -s $LAB_DIR/healthd.sock status --json | grep -q '\"connected\": true'"

lab_web_start 8080
wait_for 10 "upstream to learn $LAB_PREFIX4 once the web service runs" lab_upstream_has "$LAB_PREFIX4"
