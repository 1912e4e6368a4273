#!/usr/bin/env bash
# Someone runs `birdc enable` on a withdrawn service: the reconcile pass
# (bird.reconcile: 1s) puts it back within one interval and logs the repair.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

lab_up
lab_config > "$LAB_DIR/healthd.yaml"
lab_healthd_start
wait_for 10 "withdrawn (no web service)" lab_state_is withdrawn
wait_for 5 "protocols configured and down" sh -c "birdc -s $LAB_DIR/node/bird.ctl show protocols healthd_web_v4 | grep -q ' down '"

lab_node_birdc enable healthd_web_v4 >/dev/null
t0=$(now_ms)
wait_for 3 "the repair to disable healthd_web_v4 again" sh -c "birdc -s $LAB_DIR/node/bird.ctl show protocols healthd_web_v4 | grep -q ' down '"
t1=$(now_ms)
log "measured: drift repaired in $((t1 - t0)) ms (reconcile 1s)"
[ $((t1 - t0)) -le 2000 ] || { echo "repair took longer than one reconcile interval + 1s" >&2; exit 1; }
grep -q 'healthd_web_v4 is up in BIRD but should be disabled: repairing' "$LAB_DIR/healthd.log"
lab_healthctl status --json | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["bird"]["repairs"] >= 1, d["bird"]'
wait_for 3 "upstream without the prefix" lab_upstream_lacks "$LAB_PREFIX4"
