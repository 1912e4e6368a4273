#!/usr/bin/env bash
# The HTTP surface with a real client: /health, /health/SERVICE, /status
# (equal to healthctl's JSON, and free of a check URL's password),
# /metrics (every family, valid exposition),
# malformed and oversized requests, and hostile clients (slowloris plus
# 10,000 junk requests) that must not delay a withdrawal.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

HERE=$(cd "$(dirname "$0")" && pwd)
URL=http://127.0.0.1:9110
FAMILIES=(
	healthd_check_up healthd_check_latency_seconds healthd_check_consecutive_failures
	healthd_check_probes_total healthd_service_state healthd_service_transitions_total
	healthd_service_dampening_penalty healthd_service_suppressed healthd_bird_connected
	healthd_bird_command_errors_total healthd_bird_reconcile_repairs_total
	healthd_bird_configures_total healthd_reloads_total healthd_reload_failures_total
	healthd_build_info
)

hcurl() { in_node curl -sS --max-time 5 "$@"; }
# "CODE BODY" of GET URL
get() { hcurl -o "$LAB_DIR/body" -w '%{http_code}' "$1" >"$LAB_DIR/code" && echo "$(cat "$LAB_DIR/code") $(cat "$LAB_DIR/body")"; }
expect() { # URL "CODE BODY"
	local got
	got=$(get "$1")
	[ "$got" = "$2" ] || fail "GET $1: got '$got', want '$2'"
}
healthd_alive() { kill -0 "$LAB_HEALTHD_PID" 2>/dev/null; }

lab_up
# A check with a password in its URL, against a closed port: its failure
# detail reaches /status and the log, the password must not.
LAB_CHECKS_EXTRA='      - { name: secret, type: http, url: "http://probe:s3cr3t@127.0.0.1:1/healthz", on_fail: ignore }' \
	LAB_HTTP_LISTEN="127.0.0.1:9110 [::1]:9110" lab_config >"$LAB_DIR/healthd.yaml"
lab_web_start 8080
lab_healthd_start
wait_for 10 "upstream to learn $LAB_PREFIX4" lab_upstream_has "$LAB_PREFIX4"
wait_for 5 "service web up" lab_state_is up

# /health and /health/SERVICE, on both addresses, GET and HEAD
expect "$URL/health" "200 up"
expect "http://[::1]:9110/health" "200 up"
expect "$URL/health/web" "200 up"
expect "$URL/health/nosuch" "404 not found"
expect "$URL/nosuch" "404 not found"
[ "$(hcurl -I -o /dev/null -w '%{http_code}' "$URL/health")" = 200 ]
[ "$(hcurl -X POST -d x=1 -o /dev/null -w '%{http_code}' "$URL/health")" = 405 ]
hcurl -D - -o /dev/null -X DELETE "$URL/status" | grep -qi '^Allow: GET, HEAD'

# /status is the snapshot healthctl prints: same services, same states
hcurl "$URL/status" >"$LAB_DIR/status.json"
lab_healthctl status --json >"$LAB_DIR/ctl.json"
python3 - "$LAB_DIR/status.json" "$LAB_DIR/ctl.json" <<'EOF'
import json, sys
h, c = (json.load(open(p)) for p in sys.argv[1:3])
states = lambda d: [(s["name"], s["state"]) for s in d["services"]]
assert states(h) == states(c) == [("web", "up")], (states(h), states(c))
assert h["node"] == c["node"] == "lab1" and h["version"] == c["version"]
EOF
wait_for 5 "check secret to fail" grep -q 'check secret: .* -> down' "$LAB_DIR/healthd.log"
hcurl "$URL/status" >"$LAB_DIR/status.json"
grep -qF 'http://probe:***@127.0.0.1:1/healthz' "$LAB_DIR/status.json" ||
	fail "/status lacks the redacted URL: $(cat "$LAB_DIR/status.json")"
! grep -q s3cr3t "$LAB_DIR/status.json" "$LAB_DIR/healthd.log" || fail "the URL's password is shown"

# /metrics: a valid exposition with every family; values match the state
hcurl "$URL/metrics" >"$LAB_DIR/metrics"
python3 "$HERE/promcheck.py" "${FAMILIES[@]}" <"$LAB_DIR/metrics" ||
	fail "/metrics is not a valid exposition: $(python3 "$HERE/promcheck.py" "${FAMILIES[@]}" <"$LAB_DIR/metrics" | head -3)"
grep -qx 'healthd_service_state{service="web",state="up"} 1' "$LAB_DIR/metrics"
grep -qx 'healthd_check_up{service="web",check="http"} 1' "$LAB_DIR/metrics"
grep -qx 'healthd_bird_connected 1' "$LAB_DIR/metrics"
grep -q '^healthd_check_latency_seconds_bucket{service="web",check="http",le="+Inf"} [1-9]' "$LAB_DIR/metrics"
grep -q '^healthd_build_info{version=".*"} 1$' "$LAB_DIR/metrics"

# malformed and oversized requests: 4xx or a closed connection, healthd stays
in_node python3 "$HERE/httpjunk.py" malformed 127.0.0.1 9110 >"$LAB_DIR/malformed.out" ||
	fail "malformed requests: $(grep '<--' "$LAB_DIR/malformed.out")"
grep -qx 'header-100k: 4[0-9][0-9]\|header-100k: closed' "$LAB_DIR/malformed.out"
healthd_alive || fail "healthd died on malformed requests"
expect "$URL/health" "200 up"

# hostile clients while the web service fails: the withdrawal is on time
in_node python3 "$HERE/httpjunk.py" hostile 127.0.0.1 9110 --slow 200 --slow-secs 5 \
	--junk 10000 >"$LAB_DIR/hostile.out" 2>&1 &
hostile_pid=$!
_track "$hostile_pid"
wait_for 10 "hostile clients under way" grep -qx ready "$LAB_DIR/hostile.out"
t0=$(now_ms)
lab_web_stop
wait_for 5 "upstream to lose $LAB_PREFIX4" lab_upstream_lacks "$LAB_PREFIX4"
t1=$(now_ms)
expect "$URL/health" "503 withdrawn"
expect "$URL/health/web" "503 withdrawn"
wait "$hostile_pid" || fail "hostile client failed: $(tail -n 3 "$LAB_DIR/hostile.out")"
_lab_untrack "$hostile_pid"
log "measured: web stopped -> upstream lost the route in $((t1 - t0)) ms under 200 slowloris + 10000 junk requests (interval 200ms, fall 2)"
log "measured: $(tail -n 1 "$LAB_DIR/hostile.out")"
[ $((t1 - t0)) -le 1500 ] || fail "withdrawal took $((t1 - t0)) ms under hostile clients, want <= 1500"
grep -q '^slowloris 200/200 opened; junk 10000 ' "$LAB_DIR/hostile.out"
healthd_alive || fail "healthd died under hostile clients"
expect "$URL/health" "503 withdrawn"
# to a file: grep -q would stop reading early and fail curl under pipefail
hcurl "$URL/metrics" >"$LAB_DIR/metrics"
grep -qx 'healthd_service_state{service="web",state="withdrawn"} 1' "$LAB_DIR/metrics"

lab_healthd_stop TERM
