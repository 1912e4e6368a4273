#!/usr/bin/env bash
# on_change runs after every state change, in order, with HEALTHD_SERVICE,
# HEALTHD_FROM, HEALTHD_TO and HEALTHD_REASON: up -> degraded (a degrade
# check fails) -> withdrawn (a withdraw check fails) -> up. A hook that
# fails is logged with its first line and does not hold up the next one.
# At stop (on_stop: withdraw) the withdrawal's hook still runs.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

lab_up
HOOKS=$LAB_DIR/hooks.log
REASONS=$LAB_DIR/reasons.log
for f in degrade withdraw; do echo ok >"$LAB_DIR/$f.flag"; done
: >"$HOOKS"
# shellcheck disable=SC2016 # the hook's shell expands these, not this one
hook='echo \"$HEALTHD_FROM $HEALTHD_TO\" >>'$HOOKS'; echo \"$HEALTHD_SERVICE: $HEALTHD_REASON\" >>'$REASONS'; [ \"$HEALTHD_TO\" != degraded ] || { echo hook refuses degraded; exit 3; }'
check() { # NAME ON_FAIL
	printf '      - name: %s\n        type: exec\n        command: ["/bin/sh", "-c", "read -r v <%s; echo $v; [ $v = ok ]"]\n        on_fail: %s\n' \
		"$1" "$LAB_DIR/$1.flag" "$2"
}
LAB_SERVICE_EXTRA="    on_change: [\"/bin/sh\", \"-c\", \"$hook\"]
    on_change_timeout: 2s
    on_stop: withdraw" \
LAB_CHECKS_EXTRA="$(check degrade degrade)
$(check withdraw withdraw)" lab_config >"$LAB_DIR/healthd.yaml"
"$HEALTHD_BIN" -t -c "$LAB_DIR/healthd.yaml" 2>/dev/null ||
	fail "config refused: $("$HEALTHD_BIN" -t -c "$LAB_DIR/healthd.yaml" 2>&1)"
lab_web_start 8080
lab_healthd_start

lines() { [ "$(wc -l <"$HOOKS")" -ge "$1" ]; }
wait_for 10 "upstream to learn $LAB_PREFIX4" lab_upstream_has "$LAB_PREFIX4"
wait_for 5 "hook for withdrawn -> up" lines 1
lab_state_is up

echo bad >"$LAB_DIR/degrade.flag"
wait_for 5 "hook for up -> degraded" lines 2
lab_state_is degraded
echo bad >"$LAB_DIR/withdraw.flag"
wait_for 5 "hook for degraded -> withdrawn" lines 3
lab_state_is withdrawn
wait_for 5 "upstream to lose $LAB_PREFIX4" lab_upstream_lacks "$LAB_PREFIX4"
# the degrade check recovers first (no change while withdrawn), then the other
echo ok >"$LAB_DIR/degrade.flag"
deg_up() { lab_healthctl status --json | python3 -c '
import json, sys
d = json.load(sys.stdin)
sys.exit(0 if [c for c in d["services"][0]["checks"] if c["name"] == "degrade"][0]["state"] == "up" else 1)'; }
wait_for 5 "degrade check up again" deg_up
echo ok >"$LAB_DIR/withdraw.flag"
wait_for 10 "hook for withdrawn -> up" lines 4
wait_for 5 "upstream to learn $LAB_PREFIX4 again" lab_upstream_has "$LAB_PREFIX4"

want=$'withdrawn up\nup degraded\ndegraded withdrawn\nwithdrawn up'
[ "$(cat "$HOOKS")" = "$want" ] || fail "hook lines: $(paste -sd '|' "$HOOKS"), want $(paste -sd '|' <<<"$want")"
grep -q '^web: check degrade failed: exit 1: bad$' "$REASONS" ||
	fail "HEALTHD_REASON: $(paste -sd '|' "$REASONS")"
grep -q '^web: check withdraw failed: exit 1: bad$' "$REASONS"
grep -q '^web: all checks up$' "$REASONS"
grep -qF 'on_change hook (up -> degraded) failed: exit 3: hook refuses degraded' "$LAB_DIR/healthd.log" ||
	fail "the failed hook is not logged"
lab_healthd_stop TERM || fail "healthd exited $? at stop"
[ "$(tail -n 1 "$HOOKS")" = "up withdrawn" ] || fail "no hook for the stop's withdrawal: $(paste -sd '|' "$HOOKS")"
grep -q '^web: healthd stopping (on_stop: withdraw)$' "$REASONS"
