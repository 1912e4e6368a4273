#!/usr/bin/env bash
# A check flapping every 300 ms for 10 s: hold-down and dampening bound the
# route changes the upstream sees, and the service ends up suppressed.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

lab_up
LAB_INTERVAL=100ms LAB_TIMEOUT=100ms LAB_HOLD_DOWN=500ms lab_config > "$LAB_DIR/healthd.yaml"
lab_web_start 8080
lab_healthd_start
wait_for 10 "announced" lab_upstream_has "$LAB_PREFIX4"
before=$(lab_upstream_updates)

end=$(( $(now_ms) + 10000 ))
while [ "$(now_ms)" -lt "$end" ]; do
	lab_web_stop
	sleep 0.3     # the flap itself is the stimulus, not a wait for a state
	lab_web_start 8080
	sleep 0.3
done
after=$(lab_upstream_updates)
changes=$((after - before))
log "measured: 10 s of 300 ms flapping -> $changes route changes at the upstream"
# penalty 1000 per withdrawal, suppress 2500: at most 3 withdrawals and 2
# re-announces before suppression.
[ "$changes" -le 5 ] || { echo "$changes route changes, expected at most 5" >&2; exit 1; }
[ "$changes" -ge 1 ] || { echo "the flapping was not seen at all" >&2; exit 1; }
lab_healthctl status --json | python3 -c '
import json,sys
s=json.load(sys.stdin)["services"][0]
assert s["suppressed"] and s["state"] == "withdrawn", s
assert s["suppressed_until"], s'
lab_healthctl status | grep -q 'SUPPRESSED by dampening until'
