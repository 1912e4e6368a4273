#!/usr/bin/env bash
# healthd killed with SIGKILL and started again makes no route change at the
# upstream: it adopts what BIRD has while its checks rise.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

lab_up
LAB_INTERVAL=300ms lab_config > "$LAB_DIR/healthd.yaml"
lab_web_start 8080
lab_healthd_start
wait_for 10 "announced" lab_upstream_has "$LAB_PREFIX4"
wait_for 5 "BIRD in sync" sh -c "\"$HEALTHCTL_BIN\" -s $LAB_DIR/healthd.sock status --json | grep -q '\"in_sync\": true'"
before=$(lab_upstream_changes)
since=$(lab_node_birdc show protocols healthd_web_v4 | awk '/healthd_web_v4/ {print $5, $6}')

for round in 1 2 3; do
	lab_healthd_stop KILL || true
	rm -f "$LAB_DIR/healthd.sock"
	lab_healthd_start
	# the checks themselves, not the state adopted from BIRD before them
	wait_for 5 "checks risen after restart $round" lab_checks_up
done
wait_for 5 "BIRD in sync" sh -c "\"$HEALTHCTL_BIN\" -s $LAB_DIR/healthd.sock status --json | grep -q '\"in_sync\": true'"
after=$(lab_upstream_changes)
[ "$before" = "$after" ] || { echo "route updates at the upstream: $before -> $after" >&2; exit 1; }
[ "$(lab_node_birdc show protocols healthd_web_v4 | awk '/healthd_web_v4/ {print $5, $6}')" = "$since" ] ||
	{ echo "healthd_web_v4 was restarted in BIRD" >&2; exit 1; }
log "measured: 3 SIGKILL restarts while announced: $((after - before)) route updates at the upstream"

# the same while withdrawn
lab_web_stop
wait_for 5 "withdrawn" lab_upstream_lacks "$LAB_PREFIX4"
before=$(lab_upstream_changes)
lab_healthd_stop KILL || true
rm -f "$LAB_DIR/healthd.sock"
lab_healthd_start
never_within 2 "the prefix came back after a SIGKILL restart while withdrawn" lab_upstream_has "$LAB_PREFIX4"
[ "$(lab_upstream_changes)" = "$before" ]
