#!/usr/bin/env bash
# The demo: real BIRD on a node, a real upstream BGP peer (a second BIRD),
# a local web service and healthd, in network namespaces. Shows the
# upstream's table as healthd withdraws and re-announces the anycast
# prefixes, then tears everything down (also on Ctrl-C).
set -euo pipefail
cd "$(dirname "$0")/.."
. tests/integration/lib.sh

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
upstream_table() {
	local t
	t=$(lab_up_birdc show route 2>/dev/null | sed -n '/^Table/,$p' | sed 's/^/   /' || true)
	if [ -z "$t" ]; then
		echo "   (empty: the upstream has no route from this node)"
		return
	fi
	printf '%s\n' "$t"
	echo "   communities on $LAB_PREFIX4: $(lab_upstream_communities "$LAB_PREFIX4" | tr '\n' ' ')"
}

if [ "$(id -u)" -ne 0 ]; then
	echo "demo: needs root for network namespaces" >&2
	exit 1
fi

say "Bringing up the lab: node BIRD (AS 64500) <-> upstream BIRD (AS 64501) in namespaces $NS_NODE / $NS_UP"
lab_up
lab_config > "$LAB_DIR/healthd.yaml"
"$HEALTHD_BIN" -t -c "$LAB_DIR/healthd.yaml" 2>/dev/null
echo "   healthd config: $LAB_DIR/healthd.yaml (interval 200ms, fall 2, rise 2, hold_down 1s)"

say "Starting the web service (127.0.0.1:8080 on the node) and healthd"
lab_web_start 8080
lab_healthd_start
wait_for 10 "upstream to learn $LAB_PREFIX4" lab_upstream_has "$LAB_PREFIX4"
wait_for 5 "upstream to learn $LAB_PREFIX6" lab_upstream_has "$LAB_PREFIX6"
say "healthctl status"
lab_healthctl status | sed 's/^/   /'
say "Upstream's routing table: the anycast prefixes are announced"
upstream_table

say "Stopping the web service"
t0=$(now_ms)
lab_web_stop
wait_for 5 "upstream to lose $LAB_PREFIX4" lab_upstream_lacks "$LAB_PREFIX4"
t1=$(now_ms)
wait_for 5 "upstream to lose $LAB_PREFIX6" lab_upstream_lacks "$LAB_PREFIX6"
echo "   the upstream lost $LAB_PREFIX4 $((t1 - t0)) ms after the web service stopped"
say "Upstream's routing table: withdrawn"
upstream_table
say "healthctl status"
lab_healthctl status | sed 's/^/   /'

say "Starting the web service again"
t0=$(now_ms)
lab_web_start 8080
wait_for 10 "upstream to learn $LAB_PREFIX4 again" lab_upstream_has "$LAB_PREFIX4"
t1=$(now_ms)
wait_for 5 "upstream to learn $LAB_PREFIX6 again" lab_upstream_has "$LAB_PREFIX6"
echo "   re-announced $((t1 - t0)) ms later (rise 2 x 200ms, then the 1s hold-down)"
say "Upstream's routing table: announced again"
upstream_table
say "healthd's log"
grep -E 'notice|warning|error' "$LAB_DIR/healthd.log" | grep -v 'longer than' | sed 's/^/   /'

say "Tearing down"
lab_healthd_stop TERM || true
