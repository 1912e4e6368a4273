#!/usr/bin/env bash
# An exec check decides the route: its script reads a file that the test
# flips between ok and bad; the upstream loses the route on exit 1 and
# regains it on exit 0, and healthctl shows the script's first line. A
# probe deaf to SIGTERM overruns its interval: it is killed a second after
# its timeout, no second one starts meanwhile, and its result and the
# check's overruns say so. No probe is left running once healthd stopped.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

lab_up
FLAG=$LAB_DIR/exec.flag
PROBE=$LAB_DIR/probe.sh
cat >"$PROBE" <<'SH'
#!/bin/sh
read -r v <"$1"
echo "flag says $v (cwd $(pwd), TAG=$TAG)"
[ "$v" = ok ]
SH
chmod 0755 "$PROBE"
echo ok >"$FLAG"
LAB_CHECKS_EXTRA="      - name: script
        type: exec
        command: [\"$PROBE\", \"$FLAG\"]
        env: {TAG: lab}
        working_directory: $LAB_DIR
        on_fail: withdraw
      - name: deaf
        type: exec
        command: [\"/bin/sh\", \"-c\", \"echo deaf; trap '' TERM; sleep 30\"]
        on_fail: ignore" lab_config >"$LAB_DIR/healthd.yaml"
"$HEALTHD_BIN" -t -c "$LAB_DIR/healthd.yaml" 2>/dev/null
lab_web_start 8080
lab_healthd_start
wait_for 10 "upstream to learn $LAB_PREFIX4" lab_upstream_has "$LAB_PREFIX4"
check_json() { # CHECK PYTHON-EXPR on c
	lab_healthctl status --json | python3 -c '
import json, sys
d = json.load(sys.stdin)
c = [c for c in d["services"][0]["checks"] if c["name"] == sys.argv[1]][0]
sys.exit(0 if eval(sys.argv[2]) else 1)' "$1" "$2"
}
wait_for 5 "check script up" check_json script 'c["state"] == "up"'
lab_state_is up
lab_healthctl status | grep -qF "exit 0: flag says ok (cwd $LAB_DIR, TAG=lab)" ||
	fail "status lacks the script's line: $(lab_healthctl status)"

t0=$(now_ms)
echo bad >"$FLAG"
wait_for 5 "upstream to lose $LAB_PREFIX4" lab_upstream_lacks "$LAB_PREFIX4"
t1=$(now_ms)
log "measured: exec check exit 1 -> upstream lost the route in $((t1 - t0)) ms (interval 200ms, fall 2)"
lab_state_is withdrawn
lab_healthctl status | grep -qF "exit 1: flag says bad" ||
	fail "status lacks the failing line: $(lab_healthctl status)"

t0=$(now_ms)
echo ok >"$FLAG"
wait_for 10 "upstream to learn $LAB_PREFIX4 again" lab_upstream_has "$LAB_PREFIX4"
t1=$(now_ms)
log "measured: exec check exit 0 -> upstream has the route in $((t1 - t0)) ms (rise 2, hold_down 1s)"
lab_state_is up

# timeout 200ms, SIGKILL 1s later: about 5 intervals of 200ms skipped
wait_for 5 "the deaf probe killed" check_json deaf 'c["last"] and c["last"]["result"] == "timeout"'
check_json deaf '"process group killed: deaf (overran: " in c["last"]["detail"]' ||
	fail "deaf detail: $(lab_healthctl status --json | grep -o '"detail": "[^"]*deaf[^"]*"')"
check_json deaf 'c["overruns"] >= 3' || fail "overruns not counted"
[ "$(pgrep -fc "trap '' TERM; sleep 30")" -le 1 ] || fail "more than one deaf probe at a time"

lab_healthd_stop TERM
probes() { pgrep -f "$PROBE" >/dev/null || pgrep -f "trap '' TERM; sleep 30" >/dev/null; }
wait_for 3 "no probe left running after healthd stopped" eval '! probes'
