#!/usr/bin/env bash
# Fault: the web service fails without going away: it accepts and never
# replies, it answers 500, it trickles its reply. Each time the upstream
# loses the route and healthctl status gives the reason; healthd stays up.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

lab_up
# three failures in a row must not be dampened into suppression here
LAB_SERVICE_EXTRA='    dampening: { suppress: 100000, reuse: 1000 }' lab_config >"$LAB_DIR/healthd.yaml"
# the mode changes under a running server: no "refused" in between
lab_web_start 8080 --mode-file "$LAB_DIR/web.mode"
lab_healthd_start
wait_for 10 "upstream to learn $LAB_PREFIX4" lab_upstream_has "$LAB_PREFIX4"

check_last() { lab_status_get 'd["services"][0]["checks"][0]["last"]["'"$1"'"]'; }

# mode | the check's result word | what the service's reason must say
for spec in "hang|timeout|no answer" "status:500|status|500" "trickle|timeout|no answer"; do
	IFS='|' read -r mode want why <<<"$spec"
	echo "$mode" >"$LAB_DIR/web.mode"
	wait_for 5 "upstream to lose $LAB_PREFIX4 ($mode)" lab_upstream_lacks "$LAB_PREFIX4"
	wait_for 2 "upstream to lose $LAB_PREFIX6 ($mode)" lab_upstream_lacks "$LAB_PREFIX6"
	lab_state_is withdrawn
	[ "$(check_last result)" = "$want" ] ||
		fail "$mode: last result $(check_last result), want $want"
	reason=$(lab_status_get 'd["services"][0]["reason"]')
	case "$reason" in *"$why"*) ;; *) fail "$mode: the service's reason does not say '$why': $reason" ;; esac
	lab_healthctl status >"$LAB_DIR/status.txt"
	grep -q "reason: .*$why" "$LAB_DIR/status.txt" || fail "$mode: healthctl status: $(cat "$LAB_DIR/status.txt")"
	kill -0 "$HEALTHD_PID"
	echo ok >"$LAB_DIR/web.mode"
	wait_for 10 "upstream to learn $LAB_PREFIX4 again after $mode" lab_upstream_has "$LAB_PREFIX4"
	lab_state_is up
done
kill -0 "$HEALTHD_PID"
lab_healthd_stop TERM
