#!/usr/bin/env bash
# The lab itself, without healthd: a hand-written healthd_web_v4/_v6 in the
# include file reaches the upstream with its communities, other protocols
# do not, `disable` withdraws at once, a killed and restarted BIRD comes
# back, the web service answers, and lab_down leaves nothing behind.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

p4=$LAB_PREFIX4 p6=$LAB_PREFIX6
lab_up
node_ns=$NS_NODE up_ns=$NS_UP

# The shipped example parses, with the include it names pointed at a
# rendering like healthd's.
example=$LAB_DIR/example
mkdir -p "$example"
sed "s#/etc/bird/healthd.conf#$example/healthd.conf#" config/examples/bird.conf >"$example/bird.conf"
cat >"$example/healthd.conf" <<'CONF'
protocol static healthd_web_v4 { ipv4; route 192.0.2.10/32 blackhole { bgp_community.add((27218,100)); }; }
protocol static healthd_web_v6 { disabled yes; ipv6; route 2001:db8::10/128 blackhole; }
CONF
bird -p -c "$example/bird.conf" || fail "config/examples/bird.conf does not parse"

cat >"$LAB_DIR/node/healthd.conf" <<CONF
protocol static healthd_web_v4 {
	ipv4;
	route $p4 blackhole { bgp_community.add((64500,100)); bgp_large_community.add((64500,1,2)); };
}
protocol static healthd_web_v6 {
	ipv6;
	route $p6 blackhole { bgp_community.add((64500,100)); };
}
protocol static other_v4 { ipv4; route 203.0.113.99/32 blackhole; }
CONF
lab_node_birdc configure | grep -q Reconfigured
wait_for 5 "upstream to learn $p4" lab_upstream_has "$p4"
wait_for 5 "upstream to learn $p6" lab_upstream_has "$p6"
[ "$(lab_upstream_communities "$p4" | paste -sd ' ')" = "(64500,100) (64500,1,2)" ] ||
	fail "communities of $p4 at the upstream: $(lab_upstream_communities "$p4" | paste -sd ' ')"
[ "$(lab_upstream_communities "$p6")" = "(64500,100)" ] || fail "communities of $p6 at the upstream"
lab_node_birdc show route 203.0.113.99/32 | grep -q 203.0.113.99 || fail "node lacks other_v4's route"
lab_upstream_lacks 203.0.113.99/32 || fail "export filter let other_v4 through"

# disable/enable: the measured time from birdc to the upstream's table
for round in 1 2 3; do
	t0=$(now_ms)
	lab_node_birdc disable healthd_web_v4 >/dev/null
	wait_for 5 "upstream to lose $p4 after disable" lab_upstream_lacks "$p4"
	t1=$(now_ms)
	lab_upstream_has "$p6" || fail "disabling healthd_web_v4 took $p6 too"
	lab_node_birdc enable healthd_web_v4 >/dev/null
	wait_for 5 "upstream to learn $p4 after enable" lab_upstream_has "$p4"
	t2=$(now_ms)
	echo "measured: round $round: disable -> upstream loss $((t1 - t0)) ms, enable -> upstream has it $((t2 - t1)) ms"
done

# A killed node BIRD: the upstream drops the routes; a new one brings them back.
old=$(cat "$LAB_DIR/node/bird.pid")
kill -0 "$old" || fail "no BIRD with the PID in its pidfile"
lab_bird_kill
! kill -0 "$old" 2>/dev/null || fail "BIRD $old survived SIGKILL"
wait_for 5 "upstream to drop $p4 when the node's BIRD died" lab_upstream_lacks "$p4"
t0=$(now_ms)
lab_bird_start
lab_bgp_established 15
t1=$(now_ms)
wait_for 5 "upstream to relearn $p4 after BIRD restart" lab_upstream_has "$p4"
echo "measured: BIRD restart -> sessions Established in $((t1 - t0)) ms"

# The web service: up, down, up again at once on the same port.
http_ok() { ip netns exec "$node_ns" python3 -c 'import sys, urllib.request as u
r = u.urlopen("http://127.0.0.1:%s/healthz" % sys.argv[1], timeout=1)
sys.exit(0 if r.status == 200 and r.read() == b"ok\n" else 1)' "$1" 2>/dev/null; }
lab_web_start 18080
http_ok 18080 || fail "web service did not answer 200 ok"
lab_web_stop
! http_ok 18080 || fail "web service still answers after lab_web_stop"
lab_web_start 18080
http_ok 18080 || fail "web service did not come back on the same port"

# lab_down: no namespace, no process, no directory left.
pids=("${LAB_PIDS[@]}")
[ ${#pids[@]} -ge 3 ] || fail "expected at least 3 tracked processes, have ${#pids[@]}: ${pids[*]}"
lab_down
for pid in "${pids[@]}"; do ! kill -0 "$pid" 2>/dev/null || fail "process $pid left running"; done
left=$(ps -eo pid=,args= | grep -F "$LAB_DIR" | grep -v grep || true)
[ -z "$left" ] || fail "processes left behind: $left"
! ip netns list | grep -qE "^($node_ns|$up_ns)( |$)" || fail "namespace left behind"
[ ! -e "$LAB_DIR" ] || fail "$LAB_DIR left behind"
lab_down # idempotent
