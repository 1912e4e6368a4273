#!/usr/bin/env bash
# Operator intent survives restarts: a drain with its reason and who asked
# is kept in state_dir, so healthd killed and started again keeps the
# service withdrawn once its checks have risen; an expired --for deadline
# means undrained, a running one is re-armed; a corrupt or unwritable state
# file is logged with its name and never stops healthd; drain --all; bad
# input is refused with the usual exit codes.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

expect_rc() { # RC CMD...
	local want=$1 rc=0; shift
	"$@" >"$LAB_DIR/out" 2>"$LAB_DIR/err" || rc=$?
	[ "$rc" -eq "$want" ] || { echo "exit $rc, expected $want: $*" >&2; cat "$LAB_DIR/err" >&2; return 1; }
}
STATE=$LAB_DIR/state/intent.json
# py EXPR — EXPR over the status snapshot (d) and the web service (w)
py() {
	lab_healthctl status --json 2>/dev/null | python3 -c '
import json, sys
d = json.load(sys.stdin); w = [s for s in d["services"] if s["name"] == "web"][0]
sys.exit(0 if eval(sys.argv[1]) else 1)' "$1"
}
checks_up() { py 'all(c["state"] == "up" for s in d["services"] for c in s["checks"])'; }
# SIGKILL leaves the control socket behind: remove it, so that starting
# waits for the new healthd's socket
kill_healthd() {
	lab_healthd_stop KILL || true
	rm -f "$LAB_DIR/healthd.sock"
}
restart() { # SIGKILL: no stop policy, no goodbye
	kill_healthd
	lab_healthd_start
}
in_state_file() { # PYEXPR over the state file's services (s)
	python3 -c 'import json, sys; s = json.load(open(sys.argv[1]))["services"]; sys.exit(0 if eval(sys.argv[2]) else 1)' \
		"$STATE" "$1"
}

lab_up
{
	LAB_DRAIN=1s lab_config
	printf '%s\n' '  - name: dns' '    prefixes: ["203.0.113.53/32"]' '    drain: 1s' \
		'    checks:' '      - { name: tcp, type: tcp, host: 127.0.0.1, port: 8080 }'
} >"$LAB_DIR/healthd.yaml"
lab_web_start 8080
lab_healthd_start
wait_for 10 "announced" lab_upstream_has "$LAB_PREFIX4"
[ ! -e "$STATE" ] || fail "a state file before any drain"

# drain with a reason: withdrawn at the upstream, written to the state file
expect_rc 0 lab_healthctl drain web --reason "kernel upgrade"
wait_for 10 "withdrawn at the upstream after the drain" lab_upstream_lacks "$LAB_PREFIX4"
wait_for 5 "the state file" test -s "$STATE"
in_state_file 's["web"]["drained"] and s["web"]["reason"] == "kernel upgrade" and s["web"]["uid"] == 0 and s["web"]["user"] == "root" and s["web"]["until_ms"] == 0' ||
	fail "state file: $(cat "$STATE")"
[ -z "$(find "$LAB_DIR/state" -name '*.tmp.*')" ] || fail "temporary files left in state_dir"

# SIGKILL and start again: after the checks rise it stays withdrawn
restart
wait_for 10 "checks risen after the restart" checks_up
lab_upstream_lacks "$LAB_PREFIX4" || fail "re-announced after the restart while drained"
never_for 2 0.1 "re-announced while drained (reconcile: 1s)" lab_upstream_has "$LAB_PREFIX4"
py 'w["state"] == "withdrawn" and w["drain"]["drained"] and w["drain"]["reason"] == "kernel upgrade"'
py 'w["drain"]["by"] == "root" and w["drain"]["uid"] == 0 and w["drain"]["since"] and w["drain"]["until"] is None'
grep -q "service web: drain restored from $STATE: by root (uid 0), until undrain, reason: kernel upgrade" \
	"$LAB_DIR/healthd.log"
expect_rc 0 lab_healthctl status
grep -q '^  drain requested by root (uid 0) since .*, until undrain$' "$LAB_DIR/out"
grep -q '^  drain reason: kernel upgrade$' "$LAB_DIR/out"

# undrain: the route comes back, and stays back over a restart
expect_rc 0 lab_healthctl undrain web
wait_for 10 "re-announced after undrain" lab_upstream_has "$LAB_PREFIX4"
wait_for 5 "web gone from the state file" in_state_file '"web" not in s'
restart
wait_for 10 "checks risen" checks_up
lab_upstream_has "$LAB_PREFIX4"
py 'not w["drain"]["drained"] and not w["drain_requested"]'

# --for: the time left is re-armed at start; a deadline that passed while
# healthd was down means undrained
expect_rc 0 lab_healthctl drain --for 1h --reason "long one" web
wait_for 5 "the 1h drain in the state file" in_state_file 's["web"]["reason"] == "long one"'
restart
py 'w["drain"]["drained"] and 3500 <= w["drain"]["remaining_s"] <= 3600 and w["drain"]["until"]'
expect_rc 0 lab_healthctl status
grep -q '^  drain requested by root (uid 0) since .*, until .*Z ([0-9]*s left)$' "$LAB_DIR/out"
expect_rc 0 lab_healthctl drain web --for 2s
wait_for 10 "withdrawn" lab_upstream_lacks "$LAB_PREFIX4"
wait_for 5 "the 2s drain in the state file" in_state_file 's["web"]["until_ms"] > 0 and "reason" not in s["web"]'
kill_healthd
until_ms=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["services"]["web"]["until_ms"])' "$STATE")
past() { [ "$(now_ms)" -gt "$until_ms" ]; }
wait_for 5 "the --for deadline to pass while healthd is down" past
lab_healthd_start
grep -q "service web: the drain by root (uid 0), until [0-9T:-]*Z ended while healthd was not running: undrained" \
	"$LAB_DIR/healthd.log"
wait_for 10 "announced again after the deadline" lab_upstream_has "$LAB_PREFIX4"
py 'not w["drain"]["drained"]'

# drain --all and undrain --all
expect_rc 0 lab_healthctl drain --all --reason "node maintenance"
py 'all(s["drain"]["drained"] and s["drain"]["reason"] == "node maintenance" for s in d["services"])'
wait_for 10 "web withdrawn after drain --all" lab_upstream_lacks "$LAB_PREFIX4"
wait_for 10 "dns withdrawn after drain --all" lab_upstream_lacks 203.0.113.53/32
expect_rc 0 lab_healthctl undrain --all
py 'not any(s["drain"]["drained"] for s in d["services"])'
wait_for 10 "re-announced after undrain --all" lab_upstream_has "$LAB_PREFIX4"

# a corrupt state file: logged with its name, no intent, healthd keeps running
kill_healthd
printf '{"version": 1, "services": {"web": {"drained": tru' >"$STATE"
lab_healthd_start
grep -q "error: state file $STATE is corrupt (line 1 column .*): starting with no operator intent" \
	"$LAB_DIR/healthd.log" || fail "no error naming the corrupt state file"
wait_for 10 "checks risen" checks_up
lab_upstream_has "$LAB_PREFIX4"
py 'not w["drain"]["drained"]'
expect_rc 0 lab_healthctl drain web --reason "after corruption"
wait_for 5 "the state file replaced" in_state_file 's["web"]["reason"] == "after corruption"'
expect_rc 0 lab_healthctl undrain web
wait_for 10 "re-announced" lab_upstream_has "$LAB_PREFIX4"

# an unwritable state_dir: the drain still works, the error names the path,
# and the write is retried until it succeeds
rm -rf "$LAB_DIR/state"
: >"$LAB_DIR/state" # a file where the directory should be
expect_rc 0 lab_healthctl drain web --reason "disk trouble"
wait_for 5 "the write failure logged" grep -q "error: state file $STATE not written, operator intent is not saved (attempt 1, next in 1s): $STATE.tmp.[0-9]*: open: Not a directory" \
	"$LAB_DIR/healthd.log"
wait_for 10 "withdrawn although the state file cannot be written" lab_upstream_lacks "$LAB_PREFIX4"
rm -f "$LAB_DIR/state"
wait_for 10 "written once the directory can be made" test -s "$STATE"
wait_for 5 "the recovery logged" grep -q "state file $STATE written after [0-9]* failed attempts" "$LAB_DIR/healthd.log"
in_state_file 's["web"]["reason"] == "disk trouble"'
expect_rc 0 lab_healthctl undrain web

# bad input: clear messages, the usual exit codes
expect_rc 3 lab_healthctl drain nosuch --reason x
grep -q "no service 'nosuch'" "$LAB_DIR/err"
expect_rc 2 lab_healthctl drain web --reason
grep -q -- "--reason needs a text" "$LAB_DIR/err"
expect_rc 2 lab_healthctl drain web --reason ""
grep -q "reason is empty" "$LAB_DIR/err"
expect_rc 2 lab_healthctl drain web --reason "$(printf 'r%.0s' {1..201})"
grep -q "reason too long (201 bytes, at most 200)" "$LAB_DIR/err"
expect_rc 2 lab_healthctl drain web --reason "$(printf 'a\tb')"
grep -q "reason contains a control character" "$LAB_DIR/err"
expect_rc 2 lab_healthctl drain web --all
expect_rc 2 lab_healthctl undrain web --for 5s
expect_rc 2 lab_healthctl drain --for 5x web
grep -q "drain --for '5x': not a duration" "$LAB_DIR/err"
py 'not w["drain"]["drained"]'
log "intent: drains kept over SIGKILL restarts, deadlines on the wall clock, corrupt and unwritable state handled"
