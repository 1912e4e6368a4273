#!/usr/bin/env bash
# 1,000 services (1,250 prefixes, 2,500 BIRD protocols): start, SIGKILL
# restart and reload make no route change at the upstream, and no
# `configure` after the first one that loads the protocols.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

N=${SCALE_SERVICES:-1000}
lab_up
lab_web_start 8080
{
	cat <<EOF2
node: lab1
bird: { socket: $LAB_DIR/node/bird.ctl, include: $LAB_DIR/node/healthd.conf, timeout: 5s, reconcile: 2s }
control: { socket: $LAB_DIR/healthd.sock }
defaults: { interval: 2s, timeout: 1s, rise: 2, fall: 2 }
services:
EOF2
	for ((i = 0; i < N; i++)); do
		pfx="\"2001:db8:f00::$(printf '%x' "$i")/128\""
		[ "$i" -lt 250 ] && pfx+=", \"203.0.113.$i/32\""
		cat <<EOF2
  - name: s$i
    prefixes: [$pfx]
    communities: { up: ["64500:100"] }
    hold_down: 0s
    checks:
      - { name: port, type: tcp, host: 127.0.0.1, port: 8080 }
EOF2
	done
} >"$LAB_DIR/healthd.yaml"
routes=$((N + (N < 250 ? N : 250)))

upstream_routes() {
	# "Total: N of N routes for N networks in 2 tables"
	lab_up_birdc show route count 2>/dev/null | awk '/^Total:/ { print $2 }'
}
configures() { lab_status_get 'd["bird"]["configures"]'; }
in_sync() { [ "$(lab_status_get 'd["bird"]["in_sync"]')" = True ]; }

start=${EPOCHREALTIME/[.,]/}
lab_healthd_start
wait_for 60 "$routes routes at the upstream (has $(upstream_routes))" eval '[ "$(upstream_routes)" = "$routes" ]'
wait_for 30 "BIRD in sync" in_sync
log "measured: $N services announced at the upstream in $(((${EPOCHREALTIME/[.,]/} - start) / 1000)) ms"
[ "$(configures)" = 1 ] || { echo "FAIL: $(configures) configures to load the protocols (want 1)"; exit 1; }
protos=$(lab_node_birdc show protocols '"healthd_*"' | awk '$1 ~ /^healthd_/ { n++ } END { print n + 0 }')
[ "$protos" -ge $((2 * routes)) ] || { echo "FAIL: BIRD runs $protos healthd_* protocols"; exit 1; }
before=$(lab_upstream_changes)

lab_healthd_stop KILL || true
lab_healthd_start
wait_for 30 "BIRD in sync after the restart" in_sync
wait_for 30 "every check risen after the restart" lab_checks_up
wait_for 10 "BIRD in sync with the checks' verdict" in_sync
after=$(lab_upstream_changes)
[ "$after" = "$before" ] || { echo "FAIL: route changes at the upstream across a SIGKILL restart: $((after - before))"; exit 1; }
[ "$(configures)" = 0 ] || { echo "FAIL: $(configures) configures after the restart (want 0)"; exit 1; }
log "measured: SIGKILL restart with $N services: $((after - before)) route changes at the upstream, $(configures) configures"

kill -HUP "$LAB_HEALTHD_PID"
wait_for 10 "the reload" eval '[ "$(lab_status_get "d[\"reloads\"]")" = 1 ]'
wait_for 10 "BIRD in sync after the reload" in_sync
[ "$(upstream_routes)" = "$routes" ] || { echo "FAIL: $(upstream_routes) routes after the reload"; exit 1; }
[ "$(lab_upstream_changes)" = "$before" ] || { echo "FAIL: route changes at the upstream across a reload"; exit 1; }
[ "$(configures)" = 0 ] || { echo "FAIL: $(configures) configures after a reload that changed nothing"; exit 1; }
cmds=$(lab_status_get 'd["bird"]["commands"]')
log "measured: reload with $N services: 0 route changes, 0 configures, $cmds BIRD commands since the restart"
