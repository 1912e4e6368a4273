#!/usr/bin/env bash
# Reload: a broken config (SIGHUP or healthctl reload) is refused with
# file:line:col and the old config keeps running; a good one takes effect
# (a new community reaches the upstream without resetting the BGP session).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

lab_up
lab_config > "$LAB_DIR/healthd.yaml"
lab_web_start 8080
lab_healthd_start
wait_for 10 "announced" lab_upstream_has "$LAB_PREFIX4"
since=$(lab_up_birdc show protocols node4 | awk '/node4/ {print $5, $6}')

cp "$LAB_DIR/healthd.yaml" "$LAB_DIR/good.yaml"
sed -i 's/interval: 200ms/intervall: 200ms/' "$LAB_DIR/healthd.yaml"
kill -HUP "$HEALTHD_PID"
wait_for 5 "the refusal in the log" grep -q "reload failed, the running config stays: .*healthd.yaml:[0-9]*:[0-9]*: .*intervall" "$LAB_DIR/healthd.log"
if lab_healthctl reload 2>"$LAB_DIR/err"; then echo "reload of a broken config succeeded" >&2; exit 1; fi
grep -q "healthd.yaml:[0-9]*:[0-9]*: .*intervall" "$LAB_DIR/err"
kill -0 "$HEALTHD_PID"
lab_state_is up
lab_upstream_has "$LAB_PREFIX4"

sed 's/up: \["64500:100"\]/up: ["64500:200"]/' "$LAB_DIR/good.yaml" > "$LAB_DIR/healthd.yaml"
lab_healthctl reload
has_comm() { lab_upstream_communities "$LAB_PREFIX4" | grep -qx "$1"; }
wait_for 5 "the new community at the upstream" has_comm '(64500,200)'
lab_state_is up
[ "$(lab_up_birdc show protocols node4 | awk '/node4/ {print $5, $6}')" = "$since" ] ||
	{ echo "the BGP session was reset by the reload" >&2; exit 1; }

# many SIGHUPs, half broken: healthd stays up and announced
for i in $(seq 1 20); do
	if [ $((i % 2)) -eq 0 ]; then sed -i 's/^node:/nodee:/' "$LAB_DIR/healthd.yaml"; else sed -i 's/^nodee:/node:/' "$LAB_DIR/healthd.yaml"; fi
	kill -HUP "$HEALTHD_PID"
done
kill -0 "$HEALTHD_PID"
wait_for 5 "healthd answering after the SIGHUP storm" lab_state_is up
lab_upstream_has "$LAB_PREFIX4"
