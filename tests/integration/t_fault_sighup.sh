#!/usr/bin/env bash
# Fault: 100 SIGHUPs within about a second, every other one with a broken
# config in place. healthd stays up, the last good config is the one that
# runs (its community reaches the upstream), and the checks still decide.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

lab_up
lab_config >"$LAB_DIR/good.yaml"
cp "$LAB_DIR/good.yaml" "$LAB_DIR/healthd.yaml"
lab_web_start 8080
lab_healthd_start
wait_for 10 "upstream to learn $LAB_PREFIX4" lab_upstream_has "$LAB_PREFIX4"
reloads0=$(lab_status_get 'd["reloads"]')

# good configs carry community 64500:N; broken ones an unknown key
for i in $(seq 1 100); do
	if [ $((i % 2)) -eq 0 ]; then
		sed "s/^node: lab1/nodee: lab1/" "$LAB_DIR/good.yaml"
	else
		sed "s/\"64500:100\"/\"64500:$((1000 + i))\"/" "$LAB_DIR/good.yaml"
	fi >"$LAB_DIR/c$i.yaml"
done
t0=$(now_ms)
for i in $(seq 1 100); do
	mv "$LAB_DIR/c$i.yaml" "$LAB_DIR/healthd.yaml" # whole files only
	kill -HUP "$HEALTHD_PID"
done
log "measured: 100 SIGHUPs sent in $(($(now_ms) - t0)) ms"
kill -0 "$HEALTHD_PID"
# the last file is broken; signals coalesce, so the config that runs is
# whichever good one the last successful reload read: one of the storm's
grep -q '^nodee:' "$LAB_DIR/healthd.yaml"
wait_for 10 "healthd to answer after the storm" lab_state_is up
storm_comm() { lab_upstream_communities "$LAB_PREFIX4" | grep -qxE '\(64500,10[0-9][13579]\)'; }
wait_for 10 "a community of the storm's good configs at the upstream" storm_comm
[ "$(lab_upstream_communities "$LAB_PREFIX4" | wc -l)" -eq 1 ] ||
	fail "communities at the upstream: $(lab_upstream_communities "$LAB_PREFIX4" | tr '\n' ' ')"
lab_status_get 'd["last_reload_error"]' | grep -q 'nodee: unknown key'
# one more good config after the storm takes effect
sed 's/"64500:100"/"64500:2000"/' "$LAB_DIR/good.yaml" >"$LAB_DIR/next.yaml"
mv "$LAB_DIR/next.yaml" "$LAB_DIR/healthd.yaml"
kill -HUP "$HEALTHD_PID"
has_comm() { lab_upstream_communities "$LAB_PREFIX4" | grep -qx "$1"; }
wait_for 10 "the new community at the upstream" has_comm '(64500,2000)'
reloads=$(lab_status_get 'd["reloads"]') failures=$(lab_status_get 'd["reload_failures"]')
log "measured: of 100 SIGHUPs, $((reloads - reloads0)) reloads and $failures refusals were processed"
[ "$failures" -ge 1 ] && [ "$reloads" -gt "$reloads0" ] || fail "reloads $reloads, failures $failures"
grep -q "reload failed, the running config stays: .*healthd.yaml:[0-9]*:[0-9]*: .*nodee" "$LAB_DIR/healthd.log"

# the checks still rule after the storm
lab_web_stop
wait_for 5 "upstream to lose $LAB_PREFIX4" lab_upstream_lacks "$LAB_PREFIX4"
lab_state_is withdrawn
lab_web_start 8080
wait_for 10 "upstream to learn $LAB_PREFIX4 again" lab_upstream_has "$LAB_PREFIX4"
kill -0 "$HEALTHD_PID"
lab_healthd_stop TERM
