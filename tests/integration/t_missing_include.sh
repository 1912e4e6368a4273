#!/usr/bin/env bash
# bird.conf does not include the file healthd writes: BIRD never gets
# healthd's protocols. healthd must not spin (configure after configure),
# must say what is wrong, and /health must not claim the service is
# announced while the upstream has no route.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

lab_up
port=$((20000 + $$ % 20000))
LAB_HTTP_LISTEN="127.0.0.1:$port" lab_config |
	sed "s|include: $LAB_DIR/node/healthd.conf|include: $LAB_DIR/node/elsewhere.conf|" \
	>"$LAB_DIR/healthd.yaml"
grep -q elsewhere.conf "$LAB_DIR/healthd.yaml"
lab_web_start 8080
lab_healthd_start
wait_for 10 "the checks to rise" lab_checks_up
wait_for 10 "healthd to name the problem" eval \
	'lab_status_get "d[\"bird\"][\"problem\"]" | grep -q "does bird.conf include $LAB_DIR/node/elsewhere.conf"'
lab_upstream_lacks "$LAB_PREFIX4"

health() { ip netns exec "$LAB_NS_NODE" curl -s -o "$LAB_DIR/health.body" -w '%{http_code}' "http://127.0.0.1:$port/health${1:-}"; }
[ "$(health)" = 503 ] || { echo "FAIL: /health answered $(health) while BIRD runs nothing"; exit 1; }
grep -q "BIRD does not run healthd_web_v4" "$LAB_DIR/health.body" || { echo "FAIL: /health said: $(cat "$LAB_DIR/health.body")"; exit 1; }
[ "$(health /web)" = 503 ]
lab_healthctl status | grep -q "NOT ANNOUNCED by BIRD: BIRD does not run healthd_web_v4"
lab_healthctl status | grep -q "PROBLEM: BIRD does not run"
ip netns exec "$LAB_NS_NODE" curl -s -o "$LAB_DIR/metrics" "http://127.0.0.1:$port/metrics"
grep -qx 'healthd_bird_problem 1' "$LAB_DIR/metrics"

# the command rate once the back-off is in force
c0=$(lab_status_get 'd["bird"]["commands"]') k0=$(lab_status_get 'd["bird"]["configures"]')
t0=$(now_ms)
wait_for 15 "10 s to pass" eval '[ $(($(now_ms) - t0)) -ge 10000 ]'
c1=$(lab_status_get 'd["bird"]["commands"]') k1=$(lab_status_get 'd["bird"]["configures"]')
log "measured: bird.conf without healthd's include: $((c1 - c0)) BIRD commands ($((k1 - k0)) configures) in 10 s"
[ $((k1 - k0)) -le 4 ] || { echo "FAIL: $((k1 - k0)) configures in 10 s"; exit 1; }
[ $((c1 - c0)) -le 25 ] || { echo "FAIL: $((c1 - c0)) commands in 10 s"; exit 1; }
lines=$(grep -c "does bird.conf include" "$LAB_DIR/healthd.log" || true)
[ "$lines" -le 2 ] || { echo "FAIL: the problem was logged $lines times"; exit 1; }

# the operator fixes bird.conf: healthd notices by itself and announces
sed -i "s|include \"$LAB_DIR/node/healthd.conf\";|include \"$LAB_DIR/node/elsewhere.conf\";|" "$LAB_DIR/node/bird.conf"
lab_node_birdc configure >/dev/null
wait_for 40 "the route at the upstream" lab_upstream_has "$LAB_PREFIX4"
wait_for 5 "/health 200" eval '[ "$(health)" = 200 ]'
wait_for 5 "the problem to be over" eval '[ -z "$(lab_status_get "d[\"bird\"][\"problem\"]")" ]'
