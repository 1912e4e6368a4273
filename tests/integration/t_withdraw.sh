#!/usr/bin/env bash
# Stop the web service: the upstream loses both prefixes; start it: they
# return. `healthd -t` refuses a broken config, naming file:line:col.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

lab_up
lab_config > "$LAB_DIR/healthd.yaml"
"$HEALTHD_BIN" -t -c "$LAB_DIR/healthd.yaml" 2>/dev/null
lab_web_start 8080
lab_healthd_start
wait_for 10 "upstream to learn $LAB_PREFIX4" lab_upstream_has "$LAB_PREFIX4"
wait_for 5 "upstream to learn $LAB_PREFIX6" lab_upstream_has "$LAB_PREFIX6"
lab_upstream_communities "$LAB_PREFIX4" | grep -qx '(64500,100)'
lab_state_is up

t0=$(now_ms)
lab_web_stop
wait_for 5 "upstream to lose $LAB_PREFIX4" lab_upstream_lacks "$LAB_PREFIX4"
t1=$(now_ms)
wait_for 2 "upstream to lose $LAB_PREFIX6" lab_upstream_lacks "$LAB_PREFIX6"
log "measured: web stopped -> upstream lost the route in $((t1 - t0)) ms (interval 200ms, fall 2)"
lab_state_is withdrawn
lab_include_disabled healthd_web_v4
lab_healthctl status | grep -q 'refused'

t0=$(now_ms)
lab_web_start 8080
wait_for 10 "upstream to learn $LAB_PREFIX4 again" lab_upstream_has "$LAB_PREFIX4"
t1=$(now_ms)
wait_for 2 "upstream to learn $LAB_PREFIX6 again" lab_upstream_has "$LAB_PREFIX6"
log "measured: web started -> upstream has the route in $((t1 - t0)) ms (rise 2, hold_down 1s)"
lab_healthd_stop TERM
grep -q 'stopped' "$LAB_DIR/healthd.log"

# -t on a broken config: exit 1, and the error names file:line:col and key
broken=$LAB_DIR/broken.yaml
sed 's/^  rise: 2$/  rise: 2\n  riise: 3/' "$LAB_DIR/healthd.yaml" >"$broken"
line=$(grep -n '^  riise:' "$broken" | cut -d: -f1)
[ -n "$line" ] || fail "could not break the config"
rc=0
"$HEALTHD_BIN" -t -c "$broken" 2>"$LAB_DIR/t.err" || rc=$?
[ "$rc" -eq 1 ] || fail "healthd -t on a broken config exited $rc, want 1"
grep -qF "$broken:$line:3" "$LAB_DIR/t.err" || fail "no $broken:$line:3 in: $(cat "$LAB_DIR/t.err")"
grep -q 'riise' "$LAB_DIR/t.err" || fail "the error does not name the key: $(cat "$LAB_DIR/t.err")"
