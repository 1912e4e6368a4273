#!/usr/bin/env bash
# The HTTP endpoint stays reachable and fair under hostile clients:
# (a) after 2,000 connections that send "GET /hea" and close, /health
# answers again; (b) under 1,000 slowloris connections (a header byte a
# second) a fresh client's /health is answered, and a body trickled after
# whole headers is cut off at the same deadline; (c) a 70 KB request line and
# garbage get a 4xx or a close and /health stays fine; (d) beyond
# http.per_source_limit a source's connections are closed while another
# source is still answered. Times are reported as measured:, not asserted
# beyond generous deadlines.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

HERE=$(cd "$(dirname "$0")" && pwd)
H=127.0.0.1
P=9110
hostile() { in_node python3 "$HERE/httphostile.py" "$@"; }
healthd_alive() { kill -0 "$LAB_HEALTHD_PID" 2>/dev/null; }
health_ok() { [ "$(in_node curl -sS --max-time 2 -o /dev/null -w '%{http_code}' "http://$H:$P/health")" = 200 ]; }

lab_up
# Sources on the node's loopback (documentation range): 192.0.2.1 probes,
# 192.0.2.11-30 are the hostile clients.
for i in 1 $(seq 11 30); do ip -n "$LAB_NS_NODE" addr add "192.0.2.$i/32" dev lo; done
SLOW_SRCS=$(seq -s, -f '192.0.2.%g' 11 30)

LAB_HTTP_LISTEN="$H:$P" lab_config >"$LAB_DIR/healthd.yaml"
lab_web_start 8080
lab_healthd_start
wait_for 10 "upstream to learn $LAB_PREFIX4" lab_upstream_has "$LAB_PREFIX4"
wait_for 5 "service web up" lab_state_is up
wait_for 5 "/health 200" health_ok

# (a) connect-and-close burst; /health must answer again (1 s is the goal,
# the deadline is generous for a loaded machine)
hostile burst "$H" "$P" --n 2000 --from 192.0.2.11 --probe-from 192.0.2.1 --deadline 10 \
	>"$LAB_DIR/burst.out" 2>&1 || fail "after the burst: $(tail -n 2 "$LAB_DIR/burst.out")"
log "measured: /health answered again $(sed -n 's/^recovered //p' "$LAB_DIR/burst.out") after 2,000 'GET /hea'+close connections ($(head -n 1 "$LAB_DIR/burst.out"))"
healthd_alive || fail "healthd died in the burst"
# and still answers once every connection of the burst has timed out
sleep 6
wait_for 2 "/health 200 once the burst's connections timed out" health_ok

# (b) slowloris from 20 sources (50 each, under the per-source default)
hostile slowloris "$H" "$P" --n 1000 --from "$SLOW_SRCS" --probe-from 192.0.2.1 --secs 20 \
	>"$LAB_DIR/slow.out" 2>&1 || fail "under slowloris: $(tail -n 2 "$LAB_DIR/slow.out")"
log "measured: /health from a fresh client under 1,000 slowloris connections: $(tail -n 1 "$LAB_DIR/slow.out") ($(head -n 1 "$LAB_DIR/slow.out"))"
healthd_alive || fail "healthd died under slowloris"
wait_for 5 "/health 200 after slowloris" health_ok

# (b2) whole headers, then a body a byte a second: the deadline covers the
# whole exchange, so each is closed in about 5 s, not kept alive by its bytes
hostile slowbody "$H" "$P" --n 50 --from 192.0.2.14 --secs 15 >"$LAB_DIR/slowbody.out" 2>&1 ||
	fail "slow bodies kept their slots: $(tail -n 1 "$LAB_DIR/slowbody.out")"
log "measured: $(tail -n 1 "$LAB_DIR/slowbody.out")"
health_ok || fail "/health after slow bodies"

# (c) a 70 KB request line and garbage
hostile bigline "$H" "$P" --from 192.0.2.12 >"$LAB_DIR/bigline.out" 2>&1 ||
	fail "big line / garbage: $(grep '<--' "$LAB_DIR/bigline.out")"
healthd_alive || fail "healthd died on a 70 KB request line"
wait_for 2 "/health 200 after the big line" health_ok

# (d) the per-source cap, small here so that it is quick to reach
lab_healthd_stop TERM
LAB_HTTP_LISTEN="$H:$P" LAB_HTTP_PER_SOURCE=8 lab_config >"$LAB_DIR/healthd.yaml"
lab_healthd_start
wait_for 5 "/health 200 with per_source_limit 8" health_ok
hostile cap "$H" "$P" --limit 8 --from 192.0.2.13 --probe-from 192.0.2.1 \
	>"$LAB_DIR/cap.out" 2>&1 || fail "per-source cap: $(tail -n 1 "$LAB_DIR/cap.out")"
log "measured: $(tail -n 1 "$LAB_DIR/cap.out")"
healthd_alive || fail "healthd died at the per-source cap"
health_ok || fail "/health after the per-source cap"

lab_healthd_stop TERM
