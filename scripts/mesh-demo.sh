#!/usr/bin/env bash
# The mesh demo: four regions (LAX, ORD, EWR, MIA), each with a node that
# runs BIRD, WireGuard, the firewall and healthd from the files `meshctl
# render` made, a transit router standing in for the Internet there, and a
# user who fetches the anycast address. Shows which node answers each user,
# the route reflector's view, a failure in ORD and its return, and the
# firewall; then tears everything down (also on Ctrl-C). About 30 seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
. tests/integration/meshlab.sh

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
tell() { printf '   %s\n' "$*"; }
upper() { tr '[:lower:]' '[:upper:]' <<<"$1"; }

# The transit's best route in words: "straight to ord1" or "via LAX (AS path ...)".
route_words() {
	local proto path
	read -r proto path < <(ml_transit_best "$1") || { echo "no route"; return; }
	case "$proto" in
	node_*) echo "straight to its own node ${proto#node_}" ;;
	to_*) echo "via the $(upper "${proto#to_}") transit (AS path $path)" ;;
	*) echo "$proto $path" ;;
	esac
}

users_answers() {
	local r body
	for r in "${ML_LINE[@]}"; do
		body=$(ml_user_get "$r") || body="(no answer)"
		tell "user in $(upper "$r") -> http://$ML_ANYCAST4/ answered by $body"
	done
}

# A key of ord1's rendered http check (the first after its name) or service.
hd_val() {
	awk -v k="$1:" '/- name: "?http"?$/ { c = 1 } (c || k == "hold_down:") && $1 == k { gsub(/"/, "", $2); print $2; exit }' \
		"$(ml_root ord1)/etc/healthd/healthd.yaml"
}

announcers_words() {
	ml_announcers "$1" | paste -sd ' ' | sed 's/ /, /g'
}

if [ "$(id -u)" -ne 0 ]; then
	echo "mesh-demo: needs root for network namespaces" >&2
	exit 1
fi

t_begin=$(now_ms)
say "Bringing up the mesh lab (namespaces $ML_NS-*, files in $ML_DIR)"
tell "each node makes its own WireGuard key; the inventory gets the public keys only"
tell "meshctl render writes every node's bird.conf, WireGuard peers, nftables ruleset,"
tell "anycast interface and healthd.yaml from tests/mesh/lab.yaml.in; then:"
tell "4 transit routers in a line LAX - ORD - EWR - MIA (the Internet), a user per region,"
tell "and on each node: wireguard-go, the firewall, BIRD, a web server on $ML_ANYCAST4, healthd"
t0=$(now_ms)
ml_up
tell "everything is up and converged after $(($(now_ms) - t0)) ms"
tell "meshctl render: $(grep -c 'files$' "$ML_DIR/meshctl-render.out") nodes, $(awk '{s += $2} END {print s}' "$ML_DIR/meshctl-render.out") files, each checked by bird -p, nft -c and healthd -t"
[ "$ML_DUMMY_KIND" = dummy ] || tell "(this kernel has no dummy driver: anycast0 is an ifb device here)"

say "Every region's user asks for http://$ML_ANYCAST4/ (the same address everywhere)"
users_answers
tell "each transit sends it to the nearest node: the shortest AS path wins"

say "The route reflector lax1: iBGP to every client over the WireGuard tunnel"
ml_birdc lax1 show protocols '"ibgp_*"' | sed -n '/^ibgp_/s/^/   /p'
wait_for 10 "BFD Up on lax1" ml_bfd_up lax1
tell "BFD (fast failure detection on the tunnel): $(ml_bfd_sessions lax1 | awk '$2 == "Up"' | wc -l) sessions Up"
tell "WireGuard peers of lax1 with a handshake: $(ml_wg lax1 show "${ML_INV[lax1.tunnel_interface]}" latest-handshakes | awk '$2 > 0' | wc -l) of $((${#ML_NODES[@]} - 1))"
tell "$ML_PREFIX4 is announced by: $(announcers_words lax1)"
tell "and a client (mia1) sees every path through the reflector too (ADD-PATH): $(announcers_words mia1)"

say "Failure: the web service on ord1 stops"
t_stop=$(now_ms)
ml_web_stop ord1
ml_wait_answer ord 10 'lax1|ewr1'
t_away=$(now_ms)
tell "ORD's user is answered by $REPLY $((t_away - t_stop)) ms after the stop"
wait_for 10 "lax1 to see ord1's withdrawal" ml_announcers_are lax1 "$(printf '%s\n' "${ML_NODES[@]}" | grep -vx ord1 | sort | paste -sd ' ')"
tell "healthd on ord1 saw $(hd_val fall) failed checks ($(hd_val interval) apart) and withdrew $ML_PREFIX4;"
tell "the ORD transit now routes it $(route_words ord)"
tell "the reflector lax1 now sees: $(announcers_words lax1)"
tell "the other regions are not affected:"
for r in lax ewr mia; do tell "  user in $(upper "$r") -> answered by $(ml_user_get "$r" || echo '(no answer)')"; done
tell "what healthctl status says on ord1:"
ml_healthctl ord1 status 2>/dev/null | sed -n '/^service /,$p' | grep -v '^ *peer ' | sed 's/^/     /'

say "Recovery: the web service on ord1 starts again"
t_start=$(now_ms)
ml_web_start ord1
ml_wait_answer ord 30 ord1
t_back=$(now_ms)
tell "ORD's user is answered by ord1 again $((t_back - t_start)) ms after the start"
tell "(healthd waits for $(hd_val rise) good checks and for its hold-down, $(hd_val hold_down) after the withdrawal,"
tell " so a flapping service does not flap the route)"
wait_for 10 "lax1 to see four announcers again" ml_announcers_are lax1 "$(printf '%s\n' "${ML_NODES[@]}" | sort | paste -sd ' ')"
tell "the ORD transit routes it $(route_words ord); the reflector sees: $(announcers_words lax1)"

say "The firewall on ord1 (rendered by meshctl), tried from outside"
pub=${ML_INV[ord1.public_ipv4]}
words() { case "$1" in open) echo "open" ;; timeout) echo "dropped (no answer)" ;; refused) echo "refused" ;; *) echo "$1" ;; esac; }
while read -r t got; do
	tell "ORD user  -> $t: $(words "$got")"
done < <(ml_tcp "$(ml_uns ord)" 1.5 "$ML_ANYCAST4:80" "$ML_ANYCAST4:443" "$ML_ANYCAST4:22" "$ML_ANYCAST4:8080" \
	"$pub:22" "$pub:179" "$pub:8080")
while read -r t got; do
	tell "admin     -> $t (ssh on ord1's provider address): $(words "$got")"
done < <(ml_tcp "$ML_ADMIN_NS" 1.5 "$pub:22")
lg=$(ml_lg lax1 ord1 /status 2>/dev/null | python3 -c 'import json,sys; print("router id " + json.load(sys.stdin)["status"]["router_id"])' 2>/dev/null || echo "(no answer)")
tell "lax1      -> ${ML_INV[ord1.tunnel_ipv4]}:8080 (ord1's looking glass, over the tunnel): answered, $lg"
say "The fleet, as lax1's looking glass sees it (meshctl fleet)"
ip netns exec "$(ml_ns lax1)" "$MESHCTL_BIN" fleet --lg "http://${ML_INV[lax1.tunnel_ipv4]}:8080" 2>&1 | sed 's/^/    /' || true

say "Tearing down"
ml_down
tell "every process stopped, every namespace removed, $ML_DIR deleted"
tell "the whole demo took $((($(now_ms) - t_begin) / 1000)) s"
