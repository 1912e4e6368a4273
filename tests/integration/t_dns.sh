#!/usr/bin/env bash
# type: dns against a real resolver: unbound in a namespace of its own
# answers from local data (an A record, NXDOMAIN, a TXT set too big for
# 512 bytes), refuses one zone and forwards another to a port where nothing
# listens (SERVFAIL). UDP and TCP are two unbound processes on the same
# address and port, one per transport, so the TCP one's query log proves
# that the truncated answer was fetched again over TCP. 198.51.100.2 never
# answers (timeout over UDP); 192.0.2.55 answers over UDP only, truncated,
# and drops TCP (timeout, udp then tcp). healthd runs the checks;
# `healthctl status --json` shows each one's state and detail.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

command -v unbound >/dev/null || fail "unbound not installed (scripts/deps.sh test)"
NS=hd$$d
D=/tmp/healthd-dns.$$
PIDS=()
cleanup() {
	local rc=$? pid
	trap - ERR
	if [ "$rc" -ne 0 ]; then
		tail -n 20 "$D"/*.log >&2 2>/dev/null || true
	fi
	for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
	for pid in "${PIDS[@]}"; do _lab_stop_pid "$pid"; done
	ip netns del "$NS" 2>/dev/null || true
	if grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$D/healthd.log" 2>/dev/null; then
		grep -E -A40 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$D/healthd.log" | head -n 80 >&2
		rc=1
	fi
	rm -rf "$D"
	exit "$rc"
}
trap cleanup EXIT
trap '_lab_on_err $LINENO' ERR
mkdir -p "$D/state"
in_ns() { ip netns exec "$NS" "$@"; }

ip netns add "$NS"
in_ns ip link set lo up
in_ns ip addr add 192.0.2.53/32 dev lo
in_ns ip addr add 192.0.2.55/32 dev lo
# 198.51.100.2 swallows everything: a veth peer that never answers
in_ns ip link add hd0 type veth peer name hd1
in_ns ip addr add 198.51.100.1/24 dev hd0
in_ns ip link set hd1 up
in_ns ip link set hd0 up
in_ns ip neigh replace 198.51.100.2 lladdr 02:00:00:00:00:02 dev hd0 nud permanent
in_ns nft -f - <<'NFT'
table inet hdtest {
	chain out {
		type filter hook output priority 0;
		ip daddr 192.0.2.55 tcp dport 53 drop
	}
}
NFT

# 12 TXT records of 70 bytes: about 1 kB, truncated in 512 bytes of UDP
big=
for i in $(seq -w 1 12); do
	big+="  local-data: 'big.example.net. 300 IN TXT \"record-$i-$(printf '%060d' 0)\"'"$'\n'
done
unbound_conf() { # NAME INTERFACES DO_UDP DO_TCP
	local ifs=
	for a in $2; do ifs+="  interface: $a"$'\n'; done
	cat <<EOF
server:
$ifs  port: 53
  do-udp: $3
  do-tcp: $4
  do-ip6: no
  access-control: 0.0.0.0/0 allow
  username: ""
  chroot: ""
  directory: "$D"
  pidfile: "$D/unbound-$1.pid"
  use-syslog: no
  logfile: "$D/unbound-$1.log"
  log-queries: yes
  verbosity: 1
  num-threads: 1
  module-config: "iterator"
  local-zone: "example.net." static
  local-data: "www.example.net. 300 IN A 192.0.2.1"
$big  local-zone: "refused.example.net." refuse
  # a forwarder that refuses at once: SERVFAIL without waiting on retries
  outbound-msg-retry: 1
forward-zone:
  name: "dead.example.org."
  forward-tcp-upstream: yes
  forward-addr: 192.0.2.53@5399
remote-control:
  control-enable: no
EOF
}
unbound_conf udp "192.0.2.53 192.0.2.55" yes no >"$D/unbound-udp.conf"
unbound_conf tcp "192.0.2.53" no yes >"$D/unbound-tcp.conf"
for t in udp tcp; do
	in_ns unbound -d -c "$D/unbound-$t.conf" >>"$D/unbound-$t.out" 2>&1 &
	PIDS+=($!)
	wait_for 10 "unbound ($t) to start" grep -q "start of service" "$D/unbound-$t.log"
done

cat >"$D/healthd.yaml" <<EOF
node: dns1
bird: { socket: $D/bird.ctl, include: $D/healthd.conf }
control: { socket: $D/healthd.sock }
state_dir: $D/state
defaults: { interval: 1s, timeout: 900ms, rise: 1, fall: 1 }
services:
  - name: dns
    prefixes: ["203.0.113.53/32"]
    checks:
      - { name: answer, type: dns, qname: www.example.net, server: 192.0.2.53, expect_answer: 192.0.2.1 }
      - { name: wrong_answer, type: dns, qname: www.example.net, server: "192.0.2.53:53", expect_answer: 192.0.2.9 }
      - { name: nxdomain, type: dns, qname: nope.example.net, server: 192.0.2.53 }
      - { name: want_nxdomain, type: dns, qname: nope.example.net, server: 192.0.2.53, expect_rcode: nxdomain }
      - { name: servfail, type: dns, qname: www.dead.example.org, server: 192.0.2.53, expect_rcode: SERVFAIL, timeout: 3s, interval: 3s }
      - { name: refused, type: dns, qname: www.refused.example.net, server: 192.0.2.53 }
      - { name: udp_timeout, type: dns, qname: www.example.net, server: "198.51.100.2:53" }
      - { name: truncated, type: dns, qname: big.example.net, qtype: txt, server: 192.0.2.53, expect_answer: record-12 }
      - { name: tcp_timeout, type: dns, qname: big.example.net, qtype: TXT, server: 192.0.2.55 }
EOF
"$HEALTHD_BIN" -t -c "$D/healthd.yaml"
in_ns "$HEALTHD_BIN" -c "$D/healthd.yaml" >>"$D/healthd.log" 2>&1 &
PIDS+=($!)
wait_for 10 "healthd to open its control socket" test -S "$D/healthd.sock"

# check NAME -> "STATE|DETAIL" from healthctl status --json
check() {
	"$HEALTHCTL_BIN" -s "$D/healthd.sock" status --json 2>/dev/null | python3 -c '
import json, sys
d = json.load(sys.stdin)
c = [c for s in d["services"] for c in s["checks"] if c["name"] == sys.argv[1]][0]
print("%s|%s" % (c.get("state"), (c.get("last") or {}).get("detail", "")))' "$1"
}
check_is() { [[ "$(check "$1")" == "$2|$3"* ]]; }
expect() { # NAME STATE DETAIL (a fixed string the detail starts with)
	local got
	if ! wait_for 10 "check $1 $2 with \"$3\"" check_is "$1" "$2" "$3"; then
		got=$(check "$1" || true)
		fail "check $1: want $2 \"$3...\", got \"$got\""
	fi
	log "measured: $1: $(check "$1")"
}

expect answer up "NOERROR from 192.0.2.53:53: 192.0.2.1"
expect wrong_answer down 'no answer contains "192.0.2.9" (got 192.0.2.1)'
expect nxdomain down "NXDOMAIN from 192.0.2.53:53 (want NOERROR)"
expect want_nxdomain up "NXDOMAIN from 192.0.2.53:53"
expect servfail up "SERVFAIL from 192.0.2.53:53"
log "measured: servfail latency: $("$HEALTHCTL_BIN" -s "$D/healthd.sock" status --json | python3 -c '
import json, sys
d = json.load(sys.stdin)
print([c for s in d["services"] for c in s["checks"] if c["name"] == "servfail"][0]["last"].get("latency_ms", "?"))') ms"
expect refused down "REFUSED from 192.0.2.53:53 (want NOERROR)"
expect udp_timeout down "timeout after 900 ms (udp)"
expect truncated up "NOERROR from 192.0.2.53:53 over tcp: record-"
expect tcp_timeout down "timeout after 900 ms (udp, then tcp)"

# The server's side: the big TXT set reached the TCP-only unbound, the A
# query never did (UDP was enough for it).
wait_for 5 "the TXT query in the TCP server's log" grep -q "big.example.net. TXT IN" "$D/unbound-tcp.log"
grep -q "www.example.net. A IN" "$D/unbound-tcp.log" && fail "the A query went over TCP"
grep -q "big.example.net. TXT IN" "$D/unbound-udp.log" || fail "the TXT query was never asked over UDP first"
log "measured: TCP server saw $(grep -c 'big.example.net. TXT IN' "$D/unbound-tcp.log") TXT queries, no A query"
