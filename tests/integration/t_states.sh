#!/usr/bin/env bash
# The communities the upstream receives in each state, read from the
# upstream: up, degraded, draining (healthctl drain, then withdrawal after
# `drain`), undrain, and the maintenance file.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

has_comm() { lab_upstream_communities "$LAB_PREFIX4" | grep -qx "$1"; }
lacks_comm() { ! has_comm "$1"; }
v6_has_comm() { lab_upstream_communities "$LAB_PREFIX6" | grep -qx "$1"; }

lab_up
LAB_DRAIN=2s LAB_HOLD_DOWN=500ms \
LAB_SERVICE_EXTRA="    maintenance_file: $LAB_DIR/maintenance" \
LAB_CHECKS_EXTRA='      - name: mesh
        type: tcp
        host: 127.0.0.1
        port: 8081
        on_fail: degrade' lab_config > "$LAB_DIR/healthd.yaml"
lab_web_start 8080
ip netns exec "$NS_NODE" python3 "$SRC_DIR/tests/integration/webserver.py" --port 8081 \
	--dir "$LAB_DIR" > "$LAB_DIR/mesh.out" 2>&1 &
MESH_PID=$!; _track "$MESH_PID"
wait_for 5 "mesh listener" grep -q ready "$LAB_DIR/mesh.out"
lab_healthd_start

# up: the `up` set only
wait_for 10 "upstream to learn $LAB_PREFIX4 with 64500:100" has_comm '(64500,100)'
wait_for 2 "v6 carries the same communities" v6_has_comm '(64500,100)'
lacks_comm '(64500,666)'
lab_state_is up

# degraded: up + degraded, the BGP session stays up (per-route attributes)
withdraws0=$(lab_upstream_withdraws)
configures0=$(lab_status_get 'd["bird"]["configures"]')
since=$(lab_up_birdc show protocols node4 | awk '/node4/ {print $5, $6}')
kill "$MESH_PID"; wait "$MESH_PID" 2>/dev/null || true
wait_for 5 "upstream to see 64500:666 (degraded)" has_comm '(64500,666)'
has_comm '(64500,100)'
wait_for 2 "v6 degraded too" v6_has_comm '(64500,666)'
lab_state_is degraded
[ "$(lab_up_birdc show protocols node4 | awk '/node4/ {print $5, $6}')" = "$since" ] ||
	{ echo "the BGP session was reset by a community change" >&2; exit 1; }

# drain: draining communities, then withdrawn after `drain` (2s)
ip netns exec "$NS_NODE" python3 "$SRC_DIR/tests/integration/webserver.py" --port 8081 \
	--dir "$LAB_DIR" > "$LAB_DIR/mesh.out" 2>&1 &
MESH_PID=$!; _track "$MESH_PID"
wait_for 5 "back to up" lacks_comm '(64500,666)'
lab_healthctl drain web
t0=$(now_ms)
wait_for 2 "upstream to see 65535:0 (draining)" has_comm '(65535,0)'
lab_state_is draining
# up -> degraded -> up -> draining: enable the new protocol, then disable
# the old; the upstream never saw the prefix withdrawn, BIRD never configured
[ "$(lab_upstream_withdraws)" = "$withdraws0" ] ||
	{ echo "FAIL: the upstream saw $(($(lab_upstream_withdraws) - withdraws0)) withdrawals during community changes"; exit 1; }
[ "$(lab_status_get 'd["bird"]["configures"]')" = "$configures0" ] ||
	{ echo "FAIL: a community change sent configure"; exit 1; }
log "measured: degrade -> recover -> drain: 0 withdrawals at the upstream, 0 configures"
wait_for 5 "withdrawal after the drain time" lab_upstream_lacks "$LAB_PREFIX4"
t1=$(now_ms)
[ $((t1 - t0)) -ge 1900 ] || { echo "withdrawn after $((t1 - t0)) ms, before drain: 2s" >&2; exit 1; }
log "measured: drain 2s -> withdrawn after $((t1 - t0)) ms"
lab_state_is withdrawn
lab_healthctl status | grep -q 'drain requested'
lab_healthctl undrain web
wait_for 5 "re-announced after undrain" has_comm '(64500,100)'
lacks_comm '(65535,0)'

# the maintenance file drains too; removing it returns to normal
touch "$LAB_DIR/maintenance"
wait_for 3 "maintenance file -> draining" has_comm '(65535,0)'
rm "$LAB_DIR/maintenance"
wait_for 3 "maintenance file removed -> up" lacks_comm '(65535,0)'
lab_upstream_has "$LAB_PREFIX4"

# unknown service and bad duration are refused with a message
if lab_healthctl drain nosuch 2>"$LAB_DIR/err"; then exit 1; fi
grep -q "no service 'nosuch'" "$LAB_DIR/err"
if lab_healthctl drain web --for 5x 2>"$LAB_DIR/err"; then exit 1; fi
grep -q "not a duration" "$LAB_DIR/err"
