#!/usr/bin/env bash
# A WireGuard mesh check against real wireguard-go: one tunnel between the
# node and the upstream namespace over the lab's veth (198.51.100.1 <-> .2),
# persistent keepalive 1 s, tunnel addresses in 2001:db8:77::/64. healthd
# watches the node's end with max_rx_idle 3s, on_fail degrade. UDP is then
# dropped with nftables in the peer's namespace: the service must turn
# degraded within max_rx_idle + one interval (+ margin), and up when healed.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

WG_NODE=wg${LAB_ID}n
WG_UP=wg${LAB_ID}u
WG_DIR=/var/run/wireguard

has_comm() { lab_upstream_communities "$LAB_PREFIX4" | grep -qx "$1"; }
lacks_comm() { ! has_comm "$1"; }

# lab_down stops wireguard-go by PID (tracked below); a SIGKILLed one
# leaves its socket behind in the shared dir.
wg_cleanup() {
	lab_down
	local rc=$?
	rm -f "$WG_DIR/$WG_NODE.sock" "$WG_DIR/$WG_UP.sock"
	return "$rc"
}

wg_start() { # NS IFACE
	WG_PROCESS_FOREGROUND=1 ip netns exec "$1" wireguard-go -f "$2" >> "$LAB_DIR/$2.log" 2>&1 &
	_lab_track $!
	wait_for 10 "wireguard-go $2 to open its UAPI socket" test -S "$WG_DIR/$2.sock"
}

wg_setup() { # NS IFACE MY_ADDR PEER_PUB PEER_ENDPOINT PEER_ADDR KEYFILE
	ip netns exec "$1" wg set "$2" private-key "$7" listen-port 51820 \
		peer "$4" endpoint "$5:51820" allowed-ips "$6/128" persistent-keepalive 1
	ip -n "$1" addr add "$3/64" dev "$2" nodad
	ip -n "$1" link set "$2" up
}

handshake_done() { ip netns exec "$LAB_NS_NODE" wg show "$WG_NODE" latest-handshakes | awk '$2 > 0 {ok=1} END {exit !ok}'; }

peer_json() { # the peer's FIELD in healthctl status --json
	lab_healthctl status --json | python3 -c '
import json, sys
d = json.load(sys.stdin)
c = [c for s in d["services"] for c in s["checks"] if c["name"] == "mesh"][0]
print(c["peers"][0][sys.argv[1]])' "$1"
}

lab_up
trap "wg_cleanup || true" EXIT # the test's own exit status stands
mkdir -p "$LAB_DIR/wg"
(umask 077; wg genkey > "$LAB_DIR/wg/node.key"; wg genkey > "$LAB_DIR/wg/up.key")
PUB_NODE=$(wg pubkey < "$LAB_DIR/wg/node.key")
PUB_UP=$(wg pubkey < "$LAB_DIR/wg/up.key")
wg_start "$LAB_NS_NODE" "$WG_NODE"
wg_start "$LAB_NS_UP" "$WG_UP"
wg_setup "$LAB_NS_NODE" "$WG_NODE" 2001:db8:77::1 "$PUB_UP" 198.51.100.2 2001:db8:77::2 "$LAB_DIR/wg/node.key"
wg_setup "$LAB_NS_UP" "$WG_UP" 2001:db8:77::2 "$PUB_NODE" 198.51.100.1 2001:db8:77::1 "$LAB_DIR/wg/up.key"
wait_for 10 "a WireGuard handshake" handshake_done

LAB_CHECKS_EXTRA="      - name: mesh
        type: wireguard
        interface: $WG_NODE
        peers:
          - up: \"$PUB_UP\"
        max_rx_idle: 3s
        interval: 500ms
        timeout: 500ms
        fall: 1
        on_fail: degrade" lab_config > "$LAB_DIR/healthd.yaml"
lab_web_start 8080
lab_healthd_start

# healthy: up, and the peer is alive in healthctl status
wait_for 10 "upstream to learn $LAB_PREFIX4 with 64500:100" has_comm '(64500,100)'
wait_for 5 "service up" lab_state_is up
wait_for 5 "the peer alive in healthctl status" \
	sh -c "'$HEALTHCTL_BIN' -s '$LAB_DIR/healthd.sock' status | grep -q 'peer up: alive.*endpoint=198.51.100.2:51820'"
[ "$(peer_json alive)" = True ]
[ "$(peer_json key)" = "$PUB_UP" ]
never_within 2 "degraded while the tunnel is healthy" has_comm '(64500,666)'

# UDP dropped in the peer's namespace: no more keepalives reach the node
ip netns exec "$LAB_NS_UP" nft -f - <<'EOF'
table inet hdwgdrop {
	chain in { type filter hook input priority 0; udp dport 51820 drop; }
	chain out { type filter hook output priority 0; udp sport 51820 drop; }
}
EOF
t0=$(now_ms)
wait_for 10 "upstream to see 64500:666 (degraded)" has_comm '(64500,666)'
t1=$(now_ms)
detect=$((t1 - t0))
lab_log "measured: UDP dropped -> degraded at the upstream after $detect ms (max_rx_idle 3s, interval 500ms, keepalive 1s)"
[ "$detect" -le 5000 ] || fail "degraded after $detect ms, beyond max_rx_idle + interval + 1.5 s"
[ "$detect" -ge 1500 ] || fail "degraded after only $detect ms: before max_rx_idle could pass"
has_comm '(64500,100)'
lab_state_is degraded
[ "$(peer_json alive)" = False ]
lab_healthctl status | grep -q 'peer up: nothing received for'

# healed: keepalives flow again, the service is up with only the `up` set
ip netns exec "$LAB_NS_UP" nft delete table inet hdwgdrop
t2=$(now_ms)
wait_for 10 "upstream to lose 64500:666 after healing" lacks_comm '(64500,666)'
lab_log "measured: healed -> up at the upstream after $(( $(now_ms) - t2 )) ms (rise 2)"
wait_for 5 "service up again" lab_state_is up
[ "$(peer_json alive)" = True ]
