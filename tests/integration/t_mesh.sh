#!/usr/bin/env bash
# The four-region anycast mesh (meshlab.sh): node files from `meshctl
# render`, real BIRD, wireguard-go, nftables and healthd on four nodes,
# four transit BIRDs as the Internet, a user per region.
#   1. every user is answered by its own region's node;
#   2. the iBGP mesh runs over WireGuard: every session on the reflector
#      lax1 Established, BFD Up to every neighbour;
#   3. lax1 sees all four announcers; ORD's web service stopped: ORD's user
#      is answered by a neighbouring region and lax1 sees three; started
#      again: ord1 answers again (both times measured);
#   4. the rendered firewall: from a user only 80/443 on the anycast
#      address answer, the rest is dropped (a timeout, not a refusal); the
#      looking glass answers over the tunnel; SSH from the admin prefix only;
#   5. meshctl apply on ord1: a new community goes through `configure
#      ... timeout` and `configure confirm` and reaches the transit; a
#      broken change (the upstream's AS) is not confirmed, the files are
#      put back, BIRD undoes it by itself and the iBGP session is untouched;
#   6. ml_down leaves no namespace, process or directory behind.
set -euo pipefail
. "$(dirname "$0")/meshlab.sh"

t0=$(now_ms)
ml_up
echo "measured: lab up and converged in $(($(now_ms) - t0)) ms (4 transits, 4 nodes, $ML_DUMMY_KIND anycast0)"
[ "$ML_DUMMY_KIND" = dummy ] || echo "note: this kernel has no dummy driver; anycast0 is an ifb device"

rr=lax1
nodes_sorted=$(printf '%s\n' "${ML_NODES[@]}" | sort | paste -sd ' ')
others=$((${#ML_NODES[@]} - 1))

# 1. each user reaches its own region's node
for r in "${ML_LINE[@]}"; do
	body=$(ml_user_get "$r") || fail "$r's user got no answer from $ML_ANYCAST4"
	[ "$body" = "${ML_REGION_NODE[$r]}" ] || fail "$r's user was answered by '$body', not ${ML_REGION_NODE[$r]}"
	echo "user in $r -> http://$ML_ANYCAST4/ answered by $body"
done
# the transits learn only the announced prefixes from their node
for r in "${ML_LINE[@]}"; do
	got=$(ml_transit_imports "$r" | sort | paste -sd ' ')
	[ "$got" = "$ML_PREFIX4" ] || fail "transit $r imported '$got' from ${ML_REGION_NODE[$r]}, expected only $ML_PREFIX4"
done

# 2. iBGP over WireGuard on the reflector, BFD up
ml_bgp_established "$rr" 'ibgp_*_v4' "$others" || fail "$rr: not all $others ibgp_*_v4 sessions Established"
ml_bgp_established "$rr" 'ibgp_*_v6' "$others" || fail "$rr: not all $others ibgp_*_v6 sessions Established"
ml_birdc "$rr" show protocols '"ibgp_*"' | sed -n '/^ibgp_/s/^/  /p'
for n in "${ML_NODES[@]}"; do
	[ "$n" = "$rr" ] && continue
	ml_bgp_established "$n" "ibgp_${rr}_v4" 1 || fail "$n: ibgp_${rr}_v4 not Established"
	ml_bgp_established "$n" "ibgp_${rr}_v6" 1 || fail "$n: ibgp_${rr}_v6 not Established"
	# the session's neighbour is the reflector's tunnel address
	ml_birdc "$n" show protocols all "ibgp_${rr}_v4" | grep -qE "Neighbor address: *${ML_INV[$rr.tunnel_ipv4]}(%|\$)" ||
		fail "$n: ibgp_${rr}_v4 does not go to ${ML_INV[$rr.tunnel_ipv4]} over the tunnel"
done
hs=$(ml_wg "$rr" show "${ML_INV[$rr.tunnel_interface]}" latest-handshakes | awk '$2 > 0' | wc -l)
[ "$hs" -eq "$others" ] || fail "$rr: WireGuard handshakes with $hs peers, expected $others"
wait_for 10 "BFD Up to every iBGP neighbour of $rr" ml_bfd_up "$rr"
ml_bfd_sessions "$rr" | sed 's/^/  bfd /'
bfd_up=$(ml_bfd_sessions "$rr" | awk '$2 == "Up"' | wc -l)
echo "$rr: $((2 * others)) iBGP sessions Established over ${ML_INV[$rr.tunnel_interface]}, $bfd_up BFD sessions Up"

# 3. ADD-PATH: the reflector and a client see every announcer
wait_for 10 "$rr to see all four announcers of $ML_PREFIX4" ml_announcers_are "$rr" "$nodes_sorted"
echo "$rr sees $ML_PREFIX4 from: $(ml_announcers "$rr" | paste -sd ' ')"
ml_birdc "$rr" show route "$ML_PREFIX4" | sed -n '2,$s/^/  /p'
wait_for 10 "mia1 (a client) to see all four announcers through the reflector" ml_announcers_are mia1 "$nodes_sorted"

without_ord=$(printf '%s\n' "${ML_NODES[@]}" | grep -vx ord1 | sort | paste -sd ' ')
all_up=$(printf '%s:up\n' "${ML_NODES[@]}" | sort | paste -sd ' ')
wait_for 10 "$rr's looking glass to list every node as up" eval '[ "$(ml_fleet "$rr")" = "$all_up" ]'
out=$(ip netns exec "$(ml_ns "$rr")" "$MESHCTL_BIN" fleet --lg "http://${ML_INV[$rr.tunnel_ipv4]}:8080" 2>&1) ||
	fail "meshctl fleet: $out"
echo "$out" | sed 's/^/  meshctl fleet: /'
for n in "${ML_NODES[@]}"; do
	grep -Eq "^web +$n +up " <<<"$out" || fail "meshctl fleet does not show $n up: $out"
done
t_stop=$(now_ms)
ml_web_stop ord1
fleet_gone=
while [ "$(now_ms)" -lt $((t_stop + 10000)) ]; do
	f=$(ml_fleet "$rr" 2>/dev/null) || f=
	if [ -n "$f" ] && [[ " $f " != *" ord1:"* ]]; then fleet_gone=$(now_ms); break; fi
	sleep 0.02
done
[ -n "$fleet_gone" ] || fail "$rr's fleet view still lists ord1 10 s after its web service stopped"
[ $((fleet_gone - t_stop)) -lt 1000 ] || fail "ord1 left $rr's fleet view after $((fleet_gone - t_stop)) ms, not within 1 s"
echo "measured: ord1's web stopped -> gone from $rr's looking-glass fleet view after $((fleet_gone - t_stop)) ms"
ml_wait_answer ord 10 'lax1|ewr1'
t_away=$(now_ms)
away_by=$REPLY
wait_for 10 "$rr to see three announcers (ord1 withdrawn)" ml_announcers_are "$rr" "$without_ord"
t_rr3=$(now_ms)
ml_state_is ord1 withdrawn || fail "ord1's healthd says $(ml_state ord1), not withdrawn"
for r in lax ewr mia; do
	[ "$(ml_user_get "$r")" = "${ML_REGION_NODE[$r]}" ] || fail "$r's user lost its node while ord1 was down"
done
echo "measured: ord1's web stopped -> ORD's user answered by $away_by after $((t_away - t_stop)) ms; $rr saw 3 announcers after $((t_rr3 - t_stop)) ms"

t_start=$(now_ms)
ml_web_start ord1
ml_wait_answer ord 30 ord1
t_back=$(now_ms)
wait_for 10 "$rr to see all four announcers again" ml_announcers_are "$rr" "$nodes_sorted"
echo "measured: ord1's web started -> ORD's user answered by ord1 again after $((t_back - t_start)) ms; $((t_back - t_stop)) ms after the stop (healthd's hold_down counts from the withdrawal)"

# 4. the firewall, seen from ORD's user, the admin and the mesh
pub=${ML_INV[ord1.public_ipv4]}
a=$ML_ANYCAST4
declare -A want=(
	["$a:80"]=open ["$a:443"]=open ["$a:8080"]=timeout ["$a:22"]=timeout ["$a:179"]=timeout
	["$pub:80"]=timeout ["$pub:443"]=timeout ["$pub:8080"]=timeout ["$pub:22"]=timeout ["$pub:179"]=timeout
)
targets=("$a:80" "$a:443" "$a:8080" "$a:22" "$a:179" "$pub:80" "$pub:443" "$pub:8080" "$pub:22" "$pub:179")
bad=
while read -r t got; do
	echo "  from ORD's user: $t $got"
	[ "$got" = "${want[$t]}" ] || bad+=" $t:$got(want ${want[$t]})"
done < <(ml_tcp "$(ml_uns ord)" 1.5 "${targets[@]}")
[ -z "$bad" ] || fail "firewall seen from ORD's user:$bad"
[ "$(ml_user_get ord)" = ord1 ] || fail "the probes above went to another node than ord1"

lg=$(ml_lg "$rr" ord1 /status) || fail "ord1's looking glass did not answer $rr over the tunnel"
python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["status"]["router_id"] == sys.argv[1], d' \
	"${ML_INV[ord1.router_id]}" <<<"$lg" || fail "ord1's looking glass /status: $lg"
lg6=$(ip netns exec "$(ml_ns "$rr")" curl -sf --interface "${ML_INV[$rr.tunnel_ipv6]}" --connect-timeout 1 -m 2 \
	"http://[${ML_INV[ord1.tunnel_ipv6]}]:8080/status") || fail "ord1's looking glass on its IPv6 tunnel address did not answer $rr"
echo "  from $rr over the tunnel: ord1's looking glass answered on ${ML_INV[ord1.tunnel_ipv4]}:8080 and [${ML_INV[ord1.tunnel_ipv6]}]:8080"
# its listener itself refuses a source outside the tunnel (here ord1's own
# public address, over lo, which the ruleset lets through)
if ip netns exec "$(ml_ns ord1)" curl -s --interface "$pub" --connect-timeout 1 -m 2 \
	"http://${ML_INV[ord1.tunnel_ipv4]}:8080/status" >/dev/null 2>&1; then
	fail "ord1's looking glass answered a request from $pub"
fi

got=$(ml_tcp "$ML_ADMIN_NS" 1.5 "$pub:22" "$a:22")
while read -r line; do echo "  from the admin: $line"; done <<<"$got"
[ "$(awk -v t="$pub:22" '$1 == t {print $2}' <<<"$got")" = open ] || fail "ssh on $pub not open from the admin prefix"
# MESH.md: the anycast addresses take 80 and 443 only, SSH is for the
# provider addresses, also from the admin prefix
adm_any=$(awk -v t="$a:22" '$1 == t {print $2}' <<<"$got")
[ "$adm_any" = timeout ] || fail "the admin prefix reaches TCP 22 on the anycast address $a ($adm_any); only 80/443 may answer there"
banner=$(ip netns exec "$ML_ADMIN_NS" timeout 2 bash -c "exec 3<>/dev/tcp/$pub/22 && head -n 1 <&3") ||
	fail "no ssh banner from $pub for the admin"
[[ "$banner" == SSH-2.0-meshlab\ ord1* ]] || fail "ssh banner from $pub: '$banner'"

# 5. meshctl apply on ord1: a new community goes through the timed
#    configure and the confirm; a broken change (the upstream's AS wrong)
#    is not confirmed, BIRD undoes it by itself and the iBGP sessions stay.
inv2=$ML_DIR/mesh-community.yaml
sed 's/up: \["64496:100"\]/up: ["64496:100", "64496:101"]/' "$ML_DIR/mesh.yaml" >"$inv2"
! cmp -s "$inv2" "$ML_DIR/mesh.yaml" || fail "the lab inventory has no up community 64496:100 to extend"
ip netns exec "$(ml_ns ord1)" "$MESHCTL_BIN" diff -c "$inv2" --node ord1 >"$ML_DIR/diff.out" && fail "diff saw no change"
grep -q '^+.*64496:101' "$ML_DIR/diff.out" || fail "diff does not show the new community: $(cat "$ML_DIR/diff.out")"
t_apply=$(now_ms)
out=$(_ml_wgns ord1 "$MESHCTL_BIN" apply -c "$inv2" --node ord1 --timeout 30 --wait 15 2>&1) ||
	fail "apply of a new community failed: $out"
echo "$out" | sed 's/^/  apply: /'
grep -q 'configure timeout 30 s' <<<"$out" || fail "apply did not send a timed configure"
grep -q 'Reconfiguration confirmed' <<<"$out" || fail "apply did not confirm"
grep -q 'healthd: reloaded' <<<"$out" || fail "apply did not reload healthd"
# the device kept the node's own key (wg syncconf without it would clear it)
pk=$(ml_wg ord1 show "${ML_INV[ord1.tunnel_interface]}" public-key)
[ "$pk" = "${ML_INV[ord1.wireguard_public_key]}" ] || fail "ord1's WireGuard key after apply is '$pk', not its own"
ord_transit_has_101() { ml_tbirdc ord show route "$ML_PREFIX4" all | grep -q '(64496,101)'; }
wait_for 10 "ORD's transit to see ord1's route with 64496:101" ord_transit_has_101
echo "measured: apply of a new community on ord1 -> its transit saw it after $(($(now_ms) - t_apply)) ms"
ip netns exec "$(ml_ns ord1)" "$MESHCTL_BIN" diff -c "$inv2" --node ord1 >/dev/null || fail "diff after apply still sees changes"

inv3=$ML_DIR/mesh-broken.yaml
awk '/^  transit_ord:/ {t = 1} t && /asn: 64498/ {sub(/64498/, "64999"); t = 0} {print}' "$inv2" >"$inv3"
! cmp -s "$inv3" "$inv2" || fail "could not break transit_ord's AS in the inventory"
cp "$(ml_root ord1)/etc/bird/bird.conf" "$ML_DIR/bird.conf.before"
ibgp_before=$(ml_birdc ord1 show protocols ibgp_lax1_v4 | grep '^ibgp_lax1_v4')
hlog=$(ml_root ord1)/var/log/healthd.log
repairs_before=$(grep -c 'repairing' "$hlog" || true)
t_broken=$(now_ms)
if out=$(_ml_wgns ord1 "$MESHCTL_BIN" apply -c "$inv3" --node ord1 --timeout 20 --wait 3 2>&1); then
	fail "apply of a broken change succeeded: $out"
fi
echo "$out" | sed 's/^/  apply (broken): /'
grep -q 'not back within 3 s: upstream_transit_ord_v4' <<<"$out" || fail "apply did not name the session that did not come back"
grep -q 'BIRD: back on the old configuration' <<<"$out" || fail "apply did not put BIRD back on the old configuration"
cmp -s "$ML_DIR/bird.conf.before" "$(ml_root ord1)/etc/bird/bird.conf" || fail "the old bird.conf is not back on disk"
wait_for 15 "ord1's eBGP session to come back with the old AS" ml_bgp_established ord1 upstream_transit_ord_v4 1
echo "measured: broken apply refused and undone; upstream_transit_ord_v4 Established again after $(($(now_ms) - t_broken)) ms"
ml_birdc ord1 show protocols all upstream_transit_ord_v4 | grep -q 'Neighbor AS: *64498' ||
	fail "ord1's upstream session does not run with the old AS after the undo"
ibgp_after=$(ml_birdc ord1 show protocols ibgp_lax1_v4 | grep '^ibgp_lax1_v4')
[ "$ibgp_after" = "$ibgp_before" ] || fail "ord1's iBGP session changed during the broken apply: '$ibgp_before' -> '$ibgp_after'"
ml_wait_answer ord 15 ord1 || fail "ORD's user is not answered by ord1 after the undo"
[ "$(grep -c 'repairing' "$hlog" || true)" = "$repairs_before" ] ||
	fail "healthd on ord1 had to repair its protocols after the undo: $(grep repairing "$hlog" | tail -2)"

# The confirm never comes (meshctl killed while it waits): BIRD goes back
# to the old configuration by itself when the timeout ends, and the disk
# never had the new one (BIRD read a staged copy).
_ml_wgns ord1 "$MESHCTL_BIN" apply -c "$inv3" --node ord1 --timeout 9 --wait 4 >"$ML_DIR/apply-killed.out" 2>&1 &
apid=$!
wait_for 10 "the killed apply's timed configure" grep -q 'configure timeout 9 s' "$ML_DIR/apply-killed.out"
kill -KILL "$apid" 2>/dev/null || true
wait "$apid" 2>/dev/null || true
t_kill=$(now_ms)
upstream_has_old_as() {
	ml_bgp_established ord1 upstream_transit_ord_v4 1 &&
		ml_birdc ord1 show protocols all upstream_transit_ord_v4 | grep -q 'Neighbor AS: *64498'
}
wait_for 20 "BIRD's own undo: ord1's eBGP session back with the old AS" upstream_has_old_as
echo "measured: no confirm -> BIRD undid the change by itself; eBGP Established again $(($(now_ms) - t_kill)) ms after meshctl died"
ml_wait_answer ord 20 ord1 || fail "ORD's user is not answered by ord1 after BIRD's own undo"
cmp -s "$ML_DIR/bird.conf.before" "$(ml_root ord1)/etc/bird/bird.conf" || fail "the unconfirmed bird.conf reached the disk"
ip netns exec "$(ml_ns ord1)" "$MESHCTL_BIN" diff -c "$inv2" --node ord1 >/dev/null || fail "diff sees changes after BIRD's own undo"

# 6. clean exit
pids=("${ML_PIDS[@]}")
nslist=("${ML_NSLIST[@]}")
[ ${#pids[@]} -ge 20 ] || fail "expected at least 20 tracked processes, have ${#pids[@]}"
ml_down
for pid in "${pids[@]}"; do ! kill -0 "$pid" 2>/dev/null || fail "process $pid left running"; done
# shellcheck disable=SC2009 # any process naming the directory, whoever started it
left=$(ps -eo pid=,args= | grep -F "$ML_DIR" | grep -v grep || true)
[ -z "$left" ] || fail "processes left behind: $left"
for ns in "${nslist[@]}"; do
	! ip netns list | grep -qE "^$ns( |\$)" || fail "namespace $ns left behind"
done
! ip netns list | grep -q "^$ML_NS-" || fail "a namespace $ML_NS-* left behind"
[ ! -e "$ML_DIR" ] || fail "$ML_DIR left behind"
echo "clean: ${#pids[@]} processes stopped, ${#nslist[@]} namespaces removed, $ML_DIR gone"
ml_down # idempotent
