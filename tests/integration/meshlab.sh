# shellcheck shell=bash
# tests/integration/meshlab.sh — a four-region anycast mesh in network
# namespaces, with the node side rendered by `meshctl render` from
# tests/mesh/lab.yaml.in. Sourced by t_mesh.sh and scripts/mesh-demo.sh;
# safe under `set -euo pipefail`.
#
#   the Internet (the lab's own BIRDs, one namespace each):
#
#     ml<ID>-admin 192.0.2.66
#          |
#     t-lax AS64497 ---- t-ord AS64498 ---- t-ewr AS64499 ---- t-mia AS64500
#       |    192.0.2.0/30  |    192.0.2.4/30  |    192.0.2.8/30  |
#     u-lax  lax1        u-ord  ord1        u-ewr  ewr1        u-mia  mia1
#
#   each transit: eBGP to its neighbours (connected nets and BGP routes
#   out, everything in, into the kernel), eBGP with a password to its node
#   (AS 64496: everything in, nothing out), a user (198.51.100.64+4i/30).
#   each node (root $ML_DIR/nodes/NODE, files from meshctl render): eth0 =
#   public_ipv4 with the default route to its transit, anycast0 with the
#   anycast addresses, its WireGuard interface (wireguard-go), the
#   rendered nftables ruleset, BIRD, healthd, the web service on
#   203.0.113.10:80 (and :443), the looking glass (meshlg) on its tunnel
#   addresses at 8080, sshd's stand-in on 22 (nodeweb.py).
#
# Namespaces are ml<ID>-<node>, ml<ID>-t-<region>, ml<ID>-u-<region> and
# ml<ID>-admin (ID = the PID of the script); everything lives in
# $ML_DIR=/tmp/meshlab.<ID> (ML_KEEP=1 keeps it after ml_down). Every
# process is tracked by PID and stopped by ml_down (the EXIT trap).
# wireguard-go, wg and healthd (its wireguard check reads the UAPI socket)
# run in a mount namespace of their own in which /run/wireguard is the
# node's $R/run/wireguard, so the sockets of two runs, or of two labs at
# once, never meet. A run killed before its trap could run leaves its
# namespace list, its PIDs and its owner in its directory; the next ml_up
# stops those PIDs (only the ones still inside those namespaces), removes
# those namespaces and the directory.

# wait_for, never_for, now_ms, fail, _lab_on_err, _lab_alive, HEALTHD_BUILD
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# shellcheck disable=SC2034 # the variables below are for the scripts that source it
ML_ID=${ML_ID:-$$}
ML_NS=ml$ML_ID
ML_DIR=/tmp/meshlab.$ML_ID
ML_TEMPLATE=${ML_TEMPLATE:-$LAB_SRC/tests/mesh/lab.yaml.in}
MESHCTL_BIN=${MESHCTL_BIN:-$HEALTHD_BUILD/meshctl}
ML_ANYCAST4=203.0.113.10                # the service address users fetch
ML_PREFIX4=203.0.113.0/24               # what each node announces
ML_LINE=(lax ord ewr mia)               # the transits, linked in this order
ML_ADMIN=192.0.2.66                     # the inventory's admin prefix, on LAX
ML_BARE=${ML_BARE:-}                    # nodes that start bare and enrol (t_enroll.sh)
ML_PIDS=()
ML_NSLIST=()
ML_IS_UP=
ML_DUMMY_KIND=dummy
declare -A ML_INV=()                    # "node.key", "upstream.key", "tunnel.key" -> value
declare -A ML_WEB_PID=() ML_REGION_NODE=()
ML_NODES=()                             # in inventory order
ML_UPSTREAMS=()

ml_log() { printf '%s\n' "$*" >&2; }
# A reason the lab cannot go on, as a line run.sh shows in its summary.
_ml_err() { printf 'FAIL: meshlab: %s\n' "$*" >&2; }

# --- the inventory -----------------------------------------------------

# Reads the nodes', upstreams' and tunnel's keys of an inventory in the
# layout of lab.yaml.in (block mappings, one key per line) into ML_INV.
_ml_inventory_read() {
	local kind name key value
	ML_NODES=() ML_UPSTREAMS=()
	while read -r kind name key value; do
		ML_INV["$name.$key"]=$value
		case "$kind.$key" in
		node.name) ML_NODES+=("$name") ;;
		upstream.asn) ML_UPSTREAMS+=("$name") ;;
		esac
	done < <(awk '
		{ sub(/[ \t]+#.*$/, "") }
		/^[^ \t#-]/ { sect = $0; sub(/:.*/, "", sect); sub2 = ""; next }
		function val() { v = $0; sub(/^[^:]*:[ \t]*/, "", v); gsub(/"/, "", v); return v }
		function key() { k = $1; sub(/:$/, "", k); return k }
		sect == "mesh" && /^  [a-z_]+:[ \t]*$/ { sub2 = key(); next }
		sect == "mesh" && sub2 == "tunnel" && /^    [a-z_0-9]+:/ { print "tunnel", "tunnel", key(), val() }
		sect == "upstreams" && /^  [A-Za-z0-9_]+:[ \t]*$/ { up = key(); next }
		sect == "upstreams" && /^    [a-z_0-9]+:/ { print "upstream", up, key(), val() }
		sect == "nodes" && /^  - name:/ { node = $3; gsub(/"/, "", node); print "node", node, "name", node; next }
		sect == "nodes" && /^    [a-z_0-9]+:/ { print "node", node, key(), val() }
	' "$1")
	[ ${#ML_NODES[@]} -gt 0 ] || { _ml_err "no nodes in $1"; return 1; }
	local n
	for n in "${ML_NODES[@]}"; do
		[ -n "${ML_REGION_NODE[${ML_INV[$n.region]}]:-}" ] ||
			ML_REGION_NODE[${ML_INV[$n.region]}]=$n
	done
}

ml_inv() { printf '%s\n' "${ML_INV[$1]}"; }
ml_root() { printf '%s\n' "${ML_INV[$1.root]}"; }
ml_ns() { printf '%s\n' "$ML_NS-$1"; }           # a node's namespace
ml_tns() { printf '%s\n' "$ML_NS-t-$1"; }        # a region's transit
ml_uns() { printf '%s\n' "$ML_NS-u-$1"; }        # a region's user
ML_ADMIN_NS=$ML_NS-admin

# --- processes and namespaces ------------------------------------------

_ml_track() {
	ML_PIDS+=("$1")
	echo "$1" >>"$ML_DIR/pids"
}

_ml_untrack() {
	local p keep=()
	for p in "${ML_PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
	ML_PIDS=("${keep[@]}")
}

# Stops PID (a child of this shell): SIGTERM, up to 5 s, then SIGKILL.
_ml_stop_pid() {
	local pid=$1 i
	[ -n "$pid" ] || return 0
	if kill -TERM "$pid" 2>/dev/null; then
		for ((i = 0; i < 250; i++)); do
			_lab_alive "$pid" || break
			sleep 0.02
		done
		kill -KILL "$pid" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || true
	jobs >/dev/null 2>&1
	_ml_untrack "$pid"
}

# _ml_spawn NS LOG CMD... — CMD in NS in the background (ip netns exec
# execs it, so $! is CMD itself); REPLY = its PID.
_ml_spawn() {
	local ns=$1 out=$2
	shift 2
	ip netns exec "$ns" "$@" >>"$out" 2>&1 &
	REPLY=$!
	_ml_track "$REPLY"
}

_ml_netns_add() {
	echo "$1" >>"$ML_DIR/netns" # recorded first: a crash right after still finds it
	ip netns add "$1"
	ML_NSLIST+=("$1")
	ip netns exec "$1" sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 \
		net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
	ip -n "$1" link set lo up
}

# _ml_veth NS_A IF_A ADDR_A NS_B IF_B ADDR_B (addresses with their length)
_ml_veth() {
	ip -n "$1" link add "$2" type veth peer name "$5" netns "$4"
	ip -n "$1" addr add "$3" dev "$2"
	ip -n "$4" addr add "$6" dev "$5"
	ip -n "$1" link set "$2" up
	ip -n "$4" link set "$5" up
}

# The shell that ran ml_up, as "PID STARTTIME" (a reused PID differs).
_ml_owner() {
	local st
	st=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	st=${st##*) }
	# shellcheck disable=SC2086 # the fields of /proc/PID/stat, split
	set -- "$1" $st
	echo "$1 ${21}"
}

_ml_owner_alive() {
	local pid start
	read -r pid start 2>/dev/null <"$1/owner" || {
		# no owner file (yet): the run is young or was killed at once
		pid=${1##*.}
		kill -0 "$pid" 2>/dev/null
		return
	}
	[ "$(_ml_owner "$pid" 2>/dev/null)" = "$pid $start" ]
}

# The leftovers of runs killed before their EXIT trap ran: PIDs still in
# one of the namespaces that run recorded, those namespaces, its directory.
_ml_reap_stale() {
	local f dir id ns pid mine
	for f in /tmp/meshlab.*/netns; do
		[ -f "$f" ] || continue
		dir=${f%/netns} id=${dir##*.}
		case "$id" in '' | *[!0-9]*) continue ;; esac
		[ "$id" != "$ML_ID" ] || continue
		_ml_owner_alive "$dir" && continue # that run is still going
		mine=" $(tr '\n' ' ' <"$f") "
		while read -r pid; do
			ns=$(ip netns identify "$pid" 2>/dev/null) || continue
			if [ -n "$ns" ] && [[ "$mine" == *" $ns "* ]]; then kill -KILL "$pid" 2>/dev/null || true; fi
		done < <(cat "$dir/pids" 2>/dev/null)
		while read -r ns; do
			[ -e "/run/netns/$ns" ] || continue
			for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
			ip netns del "$ns" 2>/dev/null || true
		done <"$f"
		rm -rf "$dir"
		ml_log "meshlab: removed what the aborted run $id left behind"
	done
}

# --- the Internet side --------------------------------------------------

ml_tbirdc() { birdc -s "$ML_DIR/transit/$1/bird.ctl" "${@:2}"; }
ml_birdc() { birdc -s "$(ml_root "$1")/run/bird/bird.ctl" "${@:2}"; }

# BIRD's config for the transit at index i=$1 of ML_LINE. On the line it
# has 192.0.2.4i+1 towards the next transit and 192.0.2.4(i-1)+2 towards
# the previous one; its node's session uses the inventory's addresses.
_ml_transit_conf() {
	local i=$1 r=${ML_LINE[$1]} d n up asn node
	d=$ML_DIR/transit/$r
	node=${ML_REGION_NODE[$r]}
	up=${ML_INV[$node.upstream]}
	asn=${ML_INV[$up.asn]}
	mkdir -p "$d"
	{
		cat <<EOF
# transit $r: AS $asn, the lab's Internet in region $r.
log "$d/bird.log" all;
router id 198.51.100.$((65 + 4 * i));
protocol device { scan time 10; }
protocol direct { ipv4; }
protocol kernel { ipv4 { import none; export where source = RTS_BGP; }; }
timeformat protocol iso long;
template bgp transit {
	local as $asn;
	connect delay time 1; connect retry time 1; error wait time 1, 2; error forget time 10;
	ipv4 { import all; export where source ~ [RTS_DEVICE, RTS_BGP]; };
}
EOF
		if [ "$i" -gt 0 ]; then
			n=${ML_LINE[i - 1]}
			printf 'protocol bgp to_%s from transit { neighbor 192.0.2.%d as %s; }\n' \
				"$n" $((4 * (i - 1) + 1)) "${ML_INV[${ML_INV[${ML_REGION_NODE[$n]}.upstream]}.asn]}"
		fi
		if [ "$i" -lt $((${#ML_LINE[@]} - 1)) ]; then
			n=${ML_LINE[i + 1]}
			printf 'protocol bgp to_%s from transit { neighbor 192.0.2.%d as %s; }\n' \
				"$n" $((4 * i + 2)) "${ML_INV[${ML_INV[${ML_REGION_NODE[$n]}.upstream]}.asn]}"
		fi
		for n in "${ML_NODES[@]}"; do
			[ "${ML_INV[$n.region]}" = "$r" ] || continue
			cat <<EOF
# the node $n (the mesh's AS): only its anycast prefixes are expected
protocol bgp node_$n {
	local as $asn;
	neighbor ${ML_INV[$n.public_ipv4]} as ${ML_INV[mesh.asn]:-64496};
	include "${ML_INV[${ML_INV[$n.upstream]}.password_file]}";
	connect delay time 1; connect retry time 1; error wait time 1, 2; error forget time 10;
	ipv4 { import all; export none; };
}
EOF
		done
	} >"$d/bird.conf"
	bird -p -c "$d/bird.conf" || { _ml_err "$d/bird.conf does not parse"; return 1; }
}

_ml_bird_start() { # NS DIR CONF SOCK PIDFILE
	rm -f "$4" "$5"
	_ml_spawn "$1" "$2/bird.out" bird -f -c "$3" -s "$4" -P "$5"
	wait_for 10 "BIRD in $1 to answer on $4" birdc -s "$4" show status
}

ml_internet_up() {
	local i r ns node pub nb
	for r in "${ML_LINE[@]}"; do
		_ml_netns_add "$(ml_tns "$r")"
		ip netns exec "$(ml_tns "$r")" sysctl -qw net.ipv4.ip_forward=1
		_ml_netns_add "$(ml_uns "$r")"
	done
	_ml_netns_add "$ML_ADMIN_NS"
	for ((i = 0; i + 1 < ${#ML_LINE[@]}; i++)); do
		_ml_veth "$(ml_tns "${ML_LINE[i]}")" "t-${ML_LINE[i + 1]}" "192.0.2.$((4 * i + 1))/30" \
			"$(ml_tns "${ML_LINE[i + 1]}")" "t-${ML_LINE[i]}" "192.0.2.$((4 * i + 2))/30"
	done
	for ((i = 0; i < ${#ML_LINE[@]}; i++)); do
		r=${ML_LINE[i]} ns=$(ml_uns "${ML_LINE[i]}")
		_ml_veth "$(ml_tns "$r")" user "198.51.100.$((65 + 4 * i))/30" "$ns" eth0 "198.51.100.$((66 + 4 * i))/30"
		ip -n "$ns" route add default via "198.51.100.$((65 + 4 * i))"
	done
	_ml_veth "$(ml_tns lax)" admin 192.0.2.65/30 "$ML_ADMIN_NS" eth0 "$ML_ADMIN/30"
	ip -n "$ML_ADMIN_NS" route add default via 192.0.2.65
	# the nodes' links: public_ipv4 and its upstream's neighbour share a /30
	for node in "${ML_NODES[@]}"; do
		r=${ML_INV[$node.region]} pub=${ML_INV[$node.public_ipv4]}
		nb=${ML_INV[${ML_INV[$node.upstream]}.neighbor_ipv4]}
		_ml_netns_add "$(ml_ns "$node")"
		_ml_veth "$(ml_tns "$r")" "n-$node" "$nb/30" "$(ml_ns "$node")" eth0 "$pub/30"
		ip -n "$(ml_ns "$node")" route add default via "$nb"
	done
	for ((i = 0; i < ${#ML_LINE[@]}; i++)); do
		r=${ML_LINE[i]}
		_ml_transit_conf "$i" || return 1
		_ml_bird_start "$(ml_tns "$r")" "$ML_DIR/transit/$r" "$ML_DIR/transit/$r/bird.conf" \
			"$ML_DIR/transit/$r/bird.ctl" "$ML_DIR/transit/$r/bird.pid" || return 1
	done
}

# 0 when every BGP protocol of BIRD at SOCK whose name matches the glob
# is Established, and there is at least one (or exactly $3 of them).
_ml_bgp_up() {
	birdc -s "$1" show protocols 2>/dev/null | awk -v g="$2" -v want="${3:-}" '
		BEGIN { gsub(/\*/, ".*", g); g = "^" g "$" }
		$1 ~ g && $2 == "BGP" { n++; if ($0 !~ /Established/) bad++ }
		END { exit !(n > 0 && !bad && (want == "" || n == want)) }'
}

ml_transits_established() {
	local r
	for r in "${ML_LINE[@]}"; do
		_ml_bgp_up "$ML_DIR/transit/$r/bird.ctl" 'to_*' || return 1
	done
}

# --- the nodes ------------------------------------------------------------

# Keys, secrets, the inventory and meshctl render.
ml_prepare() {
	local n r key pw up f
	mkdir -p "$ML_DIR/secrets" "$ML_DIR/nodes"
	sed "s#@LAB@#$ML_DIR#g" "$ML_TEMPLATE" >"$ML_DIR/mesh.yaml.in"
	_ml_inventory_read "$ML_DIR/mesh.yaml.in" || return 1
	# Each node's own key. meshctl render replaces the whole DIR/NODE tree
	# (the old one is removed), so the keys are made beside it and put in
	# place, $R/etc/wireguard/IF.key, once the tree is rendered.
	for n in "${ML_NODES[@]}"; do
		r=${ML_INV[$n.root]}
		[ "${r#"$ML_DIR"/}" != "$r" ] || { _ml_err "$n's root $r is outside $ML_DIR"; return 1; }
		ml_is_bare "$n" && continue   # it makes its own key when it enrols
		key=$ML_DIR/keys/$n/${ML_INV[$n.tunnel_interface]}.key
		(umask 077 && mkdir -p "${key%/*}" && wg genkey >"$key")
		ML_INV[$n.wireguard_public_key]=$(wg pubkey <"$key")
	done
	for up in "${ML_UPSTREAMS[@]}"; do
		f=${ML_INV[$up.password_file]}
		pw=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
		(umask 077 && printf 'password "%s";\n' "$pw" >"$f")
	done
	local subst=()
	for n in "${ML_NODES[@]}"; do
		if ml_is_bare "$n"; then
			subst+=(-e "/@KEY_${n}@/d")
		else
			subst+=(-e "s#@KEY_${n}@#${ML_INV[$n.wireguard_public_key]}#g")
		fi
	done
	sed "${subst[@]}" "$ML_DIR/mesh.yaml.in" >"$ML_DIR/mesh.yaml"
	ML_INV[mesh.asn]=$(awk '/^mesh:/ {m = 1; next} /^[^ ]/ {m = 0} m && $1 == "asn:" {print $2; exit}' "$ML_DIR/mesh.yaml")
	[ -x "$MESHCTL_BIN" ] || { _ml_err "$MESHCTL_BIN not built (make build)"; return 1; }
	"$MESHCTL_BIN" check -c "$ML_DIR/mesh.yaml" >"$ML_DIR/meshctl-check.out" 2>&1 || {
		_ml_err "meshctl check refuses the lab inventory: $(head -n 1 "$ML_DIR/meshctl-check.out")"
		sed 's/^/    /' "$ML_DIR/meshctl-check.out" >&2
		return 1
	}
	"$MESHCTL_BIN" render -c "$ML_DIR/mesh.yaml" -o "$ML_DIR/nodes" >"$ML_DIR/meshctl-render.out" 2>&1 || {
		_ml_err "meshctl render failed: $(grep -v 'files$' "$ML_DIR/meshctl-render.out" | head -n 1)"
		sed 's/^/    /' "$ML_DIR/meshctl-render.out" >&2
		return 1
	}
	for n in "${ML_NODES[@]}"; do
		r=${ML_INV[$n.root]}
		if ml_is_bare "$n"; then   # a bare machine: nothing of the mesh on it yet
			rm -rf "$r"
			mkdir -p "$r/run" "$r/var/log"
			continue
		fi
		for f in etc/bird/bird.conf "etc/wireguard/${ML_INV[$n.tunnel_interface]}.conf" \
			etc/systemd/network/50-anycast.netdev etc/systemd/network/50-anycast.network \
			etc/nftables.d/healthd-mesh.nft etc/healthd/healthd.yaml; do
			[ -s "$r/$f" ] || { _ml_err "meshctl render left no $r/$f"; return 1; }
		done
		key=$r/etc/wireguard/${ML_INV[$n.tunnel_interface]}.key
		[ -e "$key" ] || install -m 0600 "$ML_DIR/keys/$n/${key##*/}" "$key"
		_ml_router_id "$n"
		mkdir -p "$r/run/bird" "$r/run/healthd" "$r/run/wireguard" "$r/var/log" "$r/var/lib/healthd"
		[ -e "$r/var/lib/healthd/bird.conf" ] || : >"$r/var/lib/healthd/bird.conf"
	done
}

ml_is_bare() { [[ " $ML_BARE " == *" $1 "* ]]; }

# Node $1's iBGP sessions are Established, but those to a bare node,
# which wait for it.
_ml_ibgp_up() {
	ml_birdc "$1" show protocols 2>/dev/null | awk -v bare=" $ML_BARE " '
		$1 ~ /^ibgp_/ && $2 == "BGP" {
			peer = $1; sub(/^ibgp_/, "", peer); sub(/_v[46]$/, "", peer)
			if (index(bare, " " peer " ")) next
			n++; if ($0 !~ /Established/) bad++
		}
		END { exit !(n > 0 && !bad) }'
}
# The nodes that run (every node but the bare ones).
ml_joined() {
	local n
	for n in "${ML_NODES[@]}"; do ml_is_bare "$n" || echo "$n"; done
}

# ml_join NODE — starts what systemd would on a node whose files its
# bootstrap just put in place (mesh-bootstrap --start): the anycast
# interface, wireguard-go with the rendered peers and the node's own key,
# the ruleset, BIRD, healthd, the web service. Tracked like every other.
ml_join() {
	local n=$1 r
	r=$(ml_root "$n")
	ML_INV[$n.wireguard_public_key]=$(wg pubkey <"$r/etc/wireguard/${ML_INV[$n.tunnel_interface]}.key")
	_ml_router_id "$n"
	mkdir -p "$r/run/bird" "$r/run/healthd" "$r/run/wireguard" "$r/var/log" "$r/var/lib/healthd"
	_ml_anycast_up "$n" || return 1
	_ml_wg_start "$n"
	_ml_wg_configure "$n" || return 1
	ip -n "$(ml_ns "$n")" link set "${ML_INV[$n.tunnel_interface]}" up
	_ml_node_start "$n" || return 1
	local keep=() b
	for b in $ML_BARE; do [ "$b" = "$n" ] || keep+=("$b"); done
	ML_BARE=${keep[*]}
}

# The node's BIRD router id, from its rendered bird.conf.
_ml_router_id() {
	ML_INV[$1.router_id]=$(sed -n 's/^router id \([0-9.]*\);.*/\1/p' "$(ml_root "$1")/etc/bird/bird.conf" | head -n 1)
}

# wg and wireguard-go see the node's own $R/run/wireguard as /run/wireguard.
_ml_wgns() { # NODE CMD...
	local n=$1
	shift
	mkdir -p /run/wireguard
	# shellcheck disable=SC2016 # sh expands them
	ip netns exec "$(ml_ns "$n")" unshare -m --propagation private \
		sh -c 'mount --bind "$0" /run/wireguard && exec "$@"' "$(ml_root "$n")/run/wireguard" "$@"
}
ml_wg() { _ml_wgns "$1" wg "${@:2}"; }

# _ml_spawn_wgns NODE LOG CMD... — _ml_spawn with the node's /run/wireguard.
_ml_spawn_wgns() {
	local n=$1 out=$2
	shift 2
	mkdir -p /run/wireguard
	# shellcheck disable=SC2016 # sh expands them
	_ml_spawn "$(ml_ns "$n")" "$out" unshare -m --propagation private \
		sh -c 'mount --bind "$0" /run/wireguard && exec "$@"' "$(ml_root "$n")/run/wireguard" "$@"
}

# _ml_networkd KEY FILE — the values of KEY in a systemd-networkd file.
_ml_networkd() { sed -n "s/^[[:space:]]*$1[[:space:]]*=[[:space:]]*//p" "$2" | sed 's/[[:space:]]*$//'; }

# anycast0 as systemd-networkd would make it from the rendered .netdev and
# .network files (Kind=, Name=, Address=). A kernel without the dummy
# driver gets an ifb device of the same name (addresses on it are as local).
_ml_anycast_up() {
	local n=$1 r ns name kind a
	r=$(ml_root "$n") ns=$(ml_ns "$n")
	name=$(_ml_networkd Name "$r/etc/systemd/network/50-anycast.netdev" | head -n 1)
	kind=$(_ml_networkd Kind "$r/etc/systemd/network/50-anycast.netdev" | head -n 1)
	if [ -z "$name" ] || [ -z "$kind" ]; then
		_ml_err "no Name=/Kind= in $r/etc/systemd/network/50-anycast.netdev"
		return 1
	fi
	ip -n "$ns" link add "$name" type "$kind" 2>/dev/null || {
		[ "$kind" = dummy ] && ip -n "$ns" link add "$name" type ifb || return 1
		# shellcheck disable=SC2034 # read by the scripts that source this
		ML_DUMMY_KIND=ifb
	}
	while read -r a; do
		case "$a" in *:*) ip -n "$ns" addr add "$a" dev "$name" nodad ;; *) ip -n "$ns" addr add "$a" dev "$name" ;; esac
	done < <(_ml_networkd Address "$r/etc/systemd/network/50-anycast.network")
	ip -n "$ns" link set "$name" up
}

# The anycast addresses from the rendered .network file.
ml_anycast_addrs() { _ml_networkd Address "$(ml_root "$1")/etc/systemd/network/50-anycast.network" | sed 's#/.*##'; }

_ml_wg_start() {
	local n=$1 ifc=${ML_INV[$1.tunnel_interface]} r
	r=$(ml_root "$n")
	_ml_spawn_wgns "$n" "$r/var/log/wireguard-go.log" env WG_PROCESS_FOREGROUND=1 wireguard-go -f "$ifc"
	ML_INV[$n.wg_pid]=$REPLY
}

_ml_wg_configure() {
	local n=$1 ifc=${ML_INV[$1.tunnel_interface]} r ns
	r=$(ml_root "$n") ns=$(ml_ns "$n")
	local addrs=() a f=$r/etc/systemd/network/50-$ifc.network
	[ ! -s "$f" ] || mapfile -t addrs < <(_ml_networkd Address "$f")
	[ ${#addrs[@]} -gt 0 ] ||
		addrs=("${ML_INV[$n.tunnel_ipv4]}/${ML_INV[tunnel.ipv4]#*/}" "${ML_INV[$n.tunnel_ipv6]}/${ML_INV[tunnel.ipv6]#*/}")
	wait_for 10 "wireguard-go $ifc to open its UAPI socket" test -S "$r/run/wireguard/$ifc.sock" || return 1
	ml_wg "$n" setconf "$ifc" "$r/etc/wireguard/$ifc.conf" || { _ml_err "wg setconf $ifc $r/etc/wireguard/$ifc.conf failed"; return 1; }
	ml_wg "$n" set "$ifc" private-key "$r/etc/wireguard/$ifc.key"
	for a in "${addrs[@]}"; do
		case "$a" in *:*) ip -n "$ns" addr add "$a" dev "$ifc" nodad ;; *) ip -n "$ns" addr add "$a" dev "$ifc" ;; esac
	done
}

# The web service on the anycast addresses: 80 (HTTP) and 443 (TCP).
ml_web_start() {
	local n=$1 a specs=()
	while read -r a; do
		case "$a" in *:*) a="[$a]" ;; esac
		specs+=(--http "$a:80" --tcp "$a:443")
	done < <(ml_anycast_addrs "$n")
	: >"$(ml_root "$n")/var/log/web.out"
	_ml_spawn "$(ml_ns "$n")" "$(ml_root "$n")/var/log/web.out" \
		python3 "$LAB_SRC/tests/integration/nodeweb.py" --name "$n" "${specs[@]}"
	ML_WEB_PID[$n]=$REPLY
	wait_for 10 "$n's web service to listen" grep -qx ready "$(ml_root "$n")/var/log/web.out"
}

ml_web_stop() {
	_ml_stop_pid "${ML_WEB_PID[$1]:-}"
	ML_WEB_PID[$1]=
}

_ml_node_start() {
	local n=$1 r ns
	r=$(ml_root "$n") ns=$(ml_ns "$n")
	ip netns exec "$ns" nft -f "$r/etc/nftables.d/healthd-mesh.nft" ||
		{ _ml_err "nft -f $r/etc/nftables.d/healthd-mesh.nft refused in $ns"; return 1; }
	bird -p -c "$r/etc/bird/bird.conf" || { _ml_err "$r/etc/bird/bird.conf does not parse"; return 1; }
	"$HEALTHD_BIN" -t -c "$r/etc/healthd/healthd.yaml" >"$r/var/log/healthd-t.out" 2>&1 || {
		_ml_err "healthd -t refuses $r/etc/healthd/healthd.yaml: $(head -n 1 "$r/var/log/healthd-t.out")"
		sed 's/^/    /' "$r/var/log/healthd-t.out" >&2
		return 1
	}
	_ml_bird_start "$ns" "$r/var/log" "$r/etc/bird/bird.conf" "$r/run/bird/bird.ctl" "$r/run/bird/bird.pid" || return 1
	ML_INV[$n.bird_pid]=$REPLY
	: >"$r/var/log/services.out"
	# sshd's stand-in, on every address
	_ml_spawn "$ns" "$r/var/log/services.out" \
		python3 "$LAB_SRC/tests/integration/nodeweb.py" --name "$n" --tcp "[::]:22"
	wait_for 10 "$n's ssh stand-in to listen" grep -qx ready "$r/var/log/services.out" || return 1
	_ml_lg_start "$n" || return 1
	ml_web_start "$n" || return 1
	# healthd's wireguard check reads the UAPI socket: the node's /run/wireguard
	_ml_spawn_wgns "$n" "$r/var/log/healthd.log" "$HEALTHD_BIN" -c "$r/etc/healthd/healthd.yaml"
	ML_INV[$n.healthd_pid]=$REPLY
	wait_for 10 "$n's healthd to open its control socket" test -S "$r/run/healthd/healthd.sock"
}

MESHLG_BIN=${MESHLG_BIN:-$HEALTHD_BUILD/meshlg}

# The node's looking glass (meshlg) on its tunnel addresses, from the
# rendered etc/healthd/meshlg.yaml, with its own restricted BIRD connection.
_ml_lg_start() {
	local n=$1 r ns
	r=$(ml_root "$n") ns=$(ml_ns "$n")
	"$MESHLG_BIN" -t -c "$r/etc/healthd/meshlg.yaml" >"$r/var/log/meshlg-t.out" 2>&1 ||
		{ _ml_err "meshlg -t refuses $r/etc/healthd/meshlg.yaml: $(head -n 1 "$r/var/log/meshlg-t.out")"; return 1; }
	_ml_spawn "$ns" "$r/var/log/meshlg.log" "$MESHLG_BIN" -c "$r/etc/healthd/meshlg.yaml"
	ML_INV[$n.lg_pid]=$REPLY
	wait_for 10 "$n's looking glass to answer" ml_lg "$n" "$n" /status
}

# ml_lg FROM NODE PATH — GET PATH from NODE's looking glass, from node
# FROM's tunnel address (the looking glass answers the mesh only).
ml_lg() {
	ip netns exec "$(ml_ns "$1")" curl -sf --interface "${ML_INV[$1.tunnel_ipv4]}" --connect-timeout 1 -m 2 \
		"http://${ML_INV[$2.tunnel_ipv4]}:${ML_LG_PORT:-8080}$3"
}

# The nodes NODE's looking glass lists as announcing service $2 (default
# web), "NODE:STATE" sorted, one line.
ml_fleet() {
	ml_lg "$1" "$1" /fleet | python3 -c '
import json, sys
d = json.load(sys.stdin)
s = [x for x in d["services"] if x["name"] == sys.argv[1]][0]
print(" ".join(sorted({"%s:%s" % (a["node"], a["state"]) for a in s["announcers"]})))' "${2:-web}"
}

ml_nodes_up() {
	local n nodes
	mapfile -t nodes < <(ml_joined)
	for n in "${nodes[@]}"; do _ml_anycast_up "$n" || return 1; done
	for n in "${nodes[@]}"; do _ml_wg_start "$n"; done
	for n in "${nodes[@]}"; do _ml_wg_configure "$n" || return 1; done
	# every peer is configured before any tunnel goes up: no first
	# handshake is lost to a peer not ready yet (a retry costs 5 s)
	for n in "${nodes[@]}"; do ip -n "$(ml_ns "$n")" link set "${ML_INV[$n.tunnel_interface]}" up; done
	for n in "${nodes[@]}"; do _ml_node_start "$n" || return 1; done
}

ml_healthctl() { "$HEALTHCTL_BIN" -s "$(ml_root "$1")/run/healthd/healthd.sock" "${@:2}"; }

# The state word of service $2 (default web) on node $1.
ml_state() {
	ml_healthctl "$1" status --json 2>/dev/null | python3 -c '
import json, sys
d = json.load(sys.stdin)
print([s["state"] for s in d["services"] if s["name"] == sys.argv[1]][0])' "${2:-web}"
}
ml_state_is() { [ "$(ml_state "$1")" = "$2" ]; }

# --- enrolment: meshd on the admin host, a provider's metadata service --

MESHD_BIN=${MESHD_BIN:-$HEALTHD_BUILD/meshd}
ML_METADATA=192.0.2.254                 # the metadata service's stand-in, on a bare node

# ml_meshd_up — meshd on the admin host (ML_ADMIN:8443, HTTPS with a
# throwaway certificate) over the lab's inventory. Sets ML_MESHD_URL,
# ML_MESHD_PIN (curl's --pinnedpubkey form) and ML_MESHD_ADMIN (its admin
# socket, for meshctl token and --enrolled).
ml_meshd_up() {
	local d=$ML_DIR/meshd
	mkdir -p "$d"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=meshd \
		-addext "subjectAltName=IP:$ML_ADMIN" -keyout "$d/key.pem" -out "$d/cert.pem" 2>/dev/null
	chmod 600 "$d/key.pem"
	ML_MESHD_PIN=sha256//$(openssl x509 -in "$d/cert.pem" -pubkey -noout | openssl pkey -pubin -outform der |
		openssl dgst -sha256 -binary | base64)
	cat >"$d/meshd.yaml" <<-EOF2
		inventory: $ML_DIR/mesh.yaml
		state: $d/state/meshd.db
		admin_socket: $d/admin.sock
		listen:
		  - {address: "$ML_ADMIN:8443", certificate: $d/cert.pem, key: $d/key.pem}
	EOF2
	: >"$d/meshd.log"
	_ml_spawn "$ML_ADMIN_NS" "$d/meshd.log" "$MESHD_BIN" -c "$d/meshd.yaml"
	ML_INV[meshd.pid]=$REPLY
	ML_MESHD_URL=https://$ML_ADMIN:8443
	ML_MESHD_ADMIN=$d/admin.sock
	wait_for 10 "meshd to answer on $ML_MESHD_URL" ip netns exec "$ML_ADMIN_NS" \
		curl -sf -k --pinnedpubkey "$ML_MESHD_PIN" "$ML_MESHD_URL/api/v1/status" ||
		{ _ml_err "meshd did not start: $(tail -n 3 "$d/meshd.log")"; return 1; }
}

# ml_metadata_up NODE — the provider's metadata service as the node would
# see it (its BGP session values from the inventory), on ML_METADATA:80 in
# the node's namespace.
ml_metadata_up() {
	local n=$1 ns up out
	ns=$(ml_ns "$n") up=${ML_INV[$n.upstream]} out=$ML_DIR/metadata-$n.out
	ip -n "$ns" link set lo up
	ip -n "$ns" addr add "$ML_METADATA/32" dev lo
	: >"$out"
	_ml_spawn "$ns" "$out" python3 "$LAB_SRC/tests/integration/fakemetadata.py" --listen "$ML_METADATA:80" \
		--hostname "$n" --my-address "${ML_INV[$n.public_ipv4]}" --my-asn "${ML_INV[mesh.asn]}" \
		--peer-address "${ML_INV[$up.neighbor_ipv4]}" --peer-asn "${ML_INV[$up.asn]}"
	wait_for 10 "the metadata service on $n" grep -qx ready "$out"
}

# --- what the tests look at ---------------------------------------------

# The body a region's user gets from http://ADDR/ (default the anycast
# address); fails when nothing answers within 1 s.
ml_user_get() {
	ip netns exec "$(ml_uns "$1")" curl -sS --connect-timeout 1 -m 2 "http://${2:-$ML_ANYCAST4}/" 2>/dev/null
}

# ml_wait_answer REGION SECS BODY_REGEX — polls the region's user until the
# body matches; REPLY = the body.
ml_wait_answer() {
	local deadline=$(($(now_ms) + $2 * 1000)) body
	while :; do
		body=$(ml_user_get "$1") || body=
		[[ "$body" =~ ^($3)$ ]] && { REPLY=$body; return 0; }
		if [ "$(now_ms)" -ge "$deadline" ]; then
			ml_log "timed out after $2s waiting for $1's user to be answered by /$3/ (last answer: '${body:-none}')"
			return 1
		fi
		sleep 0.01
	done
}

# The node whose BIRD router id is $1 (empty if none).
ml_node_by_router_id() {
	local n
	for n in "${ML_NODES[@]}"; do
		[ "${ML_INV[$n.router_id]:-}" != "$1" ] || { echo "$n"; return 0; }
	done
}

# The nodes that announce $2 (default the /24) in node $1's BIRD, one per
# line, sorted: itself for its healthd_* route; for a reflected route the
# node whose router id is its BGP.originator_id; for any other BGP route
# the peer of the ibgp_<peer>_v4/_v6 protocol it came from.
ml_announcers() {
	local p=${2:-$ML_PREFIX4} proto orig
	{
		while read -r proto orig; do
			case "$proto" in
			healthd_*) echo "$1" ;;
			*) if [ "$orig" != - ]; then
				ml_node_by_router_id "$orig"
			else
				proto=${proto#ibgp_}
				echo "${proto%_v[46]}"
			fi ;;
			esac
		done < <(ml_birdc "$1" show route "$p" all 2>/dev/null | awk '
			function flush() { if (proto != "") print proto, orig; proto = "" }
			match($0, /\[[A-Za-z0-9_]+ /) { flush(); proto = substr($0, RSTART + 1, RLENGTH - 2); orig = "-" }
			$1 == "BGP.originator_id:" { orig = $2 }
			END { flush() }')
	} | sort -u
}
ml_announcers_are() { [ "$(ml_announcers "$1" | paste -sd ' ')" = "$2" ]; }

# The BGP protocols named $2 (glob) in node $1's BIRD are all Established
# (and there are $3 of them, if given).
ml_bgp_established() { _ml_bgp_up "$(ml_root "$1")/run/bird/bird.ctl" "$2" "${3:-}"; }

# BFD sessions of node $1: "ADDRESS STATE" per line.
ml_bfd_sessions() {
	ml_birdc "$1" show bfd sessions 2>/dev/null | awk '$1 ~ /^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$/ || $1 ~ /^[0-9a-f]*:[0-9a-f:]*[0-9a-f]$/ { print $1, $3 }'
}

# Every iBGP neighbour of node $1 (its ibgp_* protocols' neighbour
# addresses, from `show protocols all`) has a BFD session Up.
ml_bfd_up() {
	local n=$1 a want have
	want=$(ml_birdc "$n" show protocols all '"ibgp_*"' 2>/dev/null | awk '$1 == "Neighbor" && $2 == "address:" { sub(/%.*/, "", $3); print $3 }' | sort -u)
	[ -n "$want" ] || return 1
	have=$(ml_bfd_sessions "$n" | awk '$2 == "Up" { print $1 }' | sort -u)
	for a in $want; do grep -qxF "$a" <<<"$have" || return 1; done
}

# The transit of region $1 has the /24 from its node, and the route it
# uses (its best) goes there.
ml_transit_prefers_node() {
	ml_tbirdc "$1" show route "$ML_PREFIX4" primary 2>/dev/null | grep -q "\[node_${ML_REGION_NODE[$1]} "
}

# The transit of region $1's best route to $2 (default the /24): "PROTO
# AS_PATH" (PROTO node_<node> or to_<region>), empty if it has none.
ml_transit_best() {
	ml_tbirdc "$1" show route "${2:-$ML_PREFIX4}" primary all 2>/dev/null | awk '
		match($0, /\[[A-Za-z0-9_]+ /) && proto == "" { proto = substr($0, RSTART + 1, RLENGTH - 2) }
		$1 == "BGP.as_path:" && path == "" { $1 = ""; path = substr($0, 2) }
		END { if (proto != "") print proto, path }'
}

# What the transit of region $1 imported from its node, one prefix a line.
ml_transit_imports() {
	ml_tbirdc "$1" show route protocol "node_${ML_REGION_NODE[$1]}" 2>/dev/null |
		awk '$1 ~ /^[0-9a-f.:]+\/[0-9]+$/ { print $1 }'
}

# ml_tcp NS TIMEOUT_S HOST:PORT... — "HOST:PORT open|refused|timeout|error"
ml_tcp() { ip netns exec "$1" python3 "$LAB_SRC/tests/integration/tcpprobe.py" "${@:2}"; }

# Everything is up: every transit's sessions, every node's upstream and
# iBGP sessions, every node's service up in healthd, and every transit's
# best route to the /24 going to its own node.
ml_converged() {
	local n r
	for r in "${ML_LINE[@]}"; do
		if ml_is_bare "${ML_REGION_NODE[$r]}"; then   # its session to the node waits for it
			_ml_bgp_up "$ML_DIR/transit/$r/bird.ctl" 'to_*' || return 1
		else
			_ml_bgp_up "$ML_DIR/transit/$r/bird.ctl" '*' || return 1
		fi
	done
	local nodes
	mapfile -t nodes < <(ml_joined)
	for n in "${nodes[@]}"; do
		ml_bgp_established "$n" 'upstream_*' || return 1
		_ml_ibgp_up "$n" || return 1
		ml_state_is "$n" up || return 1
	done
	for r in "${ML_LINE[@]}"; do
		ml_is_bare "${ML_REGION_NODE[$r]}" || ml_transit_prefers_node "$r" || return 1
	done
}

# ml_attach — for a shell beside a running lab (ML_ID=ITS_ID): reads its
# inventory so that the ml_* queries work; starts and stops nothing.
ml_attach() {
	_ml_inventory_read "$ML_DIR/mesh.yaml" || return 1
	ML_INV[mesh.asn]=$(awk '/^mesh:/ {m = 1; next} /^[^ ]/ {m = 0} m && $1 == "asn:" {print $2; exit}' "$ML_DIR/mesh.yaml")
	local n
	for n in "${ML_NODES[@]}"; do _ml_router_id "$n"; done
}

# ml_up — the whole lab; returns once it has converged.
ml_up() {
	local c
	_lab_need || return 1
	for c in wg wireguard-go nft curl unshare; do
		command -v "$c" >/dev/null || { _ml_err "$c not found (scripts/deps.sh all)"; return 1; }
	done
	[ -x "$HEALTHD_BIN" ] || { _ml_err "$HEALTHD_BIN not built (make build)"; return 1; }
	ML_IS_UP=1
	trap "ml_down || true" EXIT # the test's own exit status stands
	set -E # the ERR trap inside functions too
	trap '_ml_on_err "$LINENO" "${BASH_SOURCE[0]:-$0}"' ERR
	trap 'exit 130' INT
	trap 'exit 143' TERM
	trap 'exit 129' HUP
	_ml_reap_stale
	rm -rf "$ML_DIR"
	mkdir -p "$ML_DIR"
	: >"$ML_DIR/pids"
	: >"$ML_DIR/netns"
	_ml_owner "$$" >"$ML_DIR/owner"
	# called plainly: under set -e any command that fails inside ends the
	# script, the ERR trap names it and the EXIT trap tears the lab down
	ml_prepare
	ml_internet_up
	wait_for 20 "the transits' BGP sessions to their neighbours" ml_transits_established
	ml_nodes_up
	wait_for 40 "the mesh to converge (sessions, healthd, best routes)" ml_converged
}

# ERR trap (with errtrace, also inside functions): the failing line, as
# written, of whichever file it is in.
_ml_on_err() {
	local text
	text=$(sed -n "${1}{s/^[[:space:]]*//;p;}" "$2" 2>/dev/null || true)
	printf 'FAIL: %s:%s: %s\n' "${2##*/}" "$1" "${text:-$BASH_COMMAND}" >&2
}

_ml_show_logs() {
	local n
	# the nodes' BIRDs log to syslog (rendered): their sessions instead
	for n in "${ML_NODES[@]}"; do
		[ -S "$(ml_root "$n")/run/bird/bird.ctl" ] || continue
		printf -- '--- BIRD on %s: show protocols\n' "$n" >&2
		ml_birdc "$n" show protocols 2>/dev/null | sed -n '3,$s/^/    /p' >&2 || true
	done
	_lab_tail_logs "$ML_DIR" "${LAB_LOG_LINES:-6}" \
		"$ML_DIR"/nodes/*/var/log/healthd.log "$ML_DIR"/nodes/*/var/log/bird.out \
		"$ML_DIR"/nodes/*/var/log/wireguard-go.log "$ML_DIR"/transit/*/bird.log \
		"$ML_DIR"/meshd/meshd.log "$ML_DIR"/nodes/*/var/log/mesh-bootstrap.log \
		"$ML_DIR"/nodes/*/var/log/meshlg.log
}

# Stops everything started, removes the namespaces and ML_DIR. Idempotent.
ml_down() {
	local rc=$? pid ns
	[ -n "$ML_IS_UP" ] || return "$rc"
	ML_IS_UP=
	trap - ERR
	[ "$rc" -eq 0 ] || [ "$rc" -eq 130 ] || _ml_show_logs
	for pid in "${ML_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
	for pid in "${ML_PIDS[@]}"; do _ml_stop_pid "$pid"; done
	# anything our processes left in our namespaces (e.g. a probe's child)
	for ns in "${ML_NSLIST[@]}"; do
		for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
		ip netns del "$ns" 2>/dev/null || true
	done
	ML_NSLIST=()
	local san=
	if grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$ML_DIR"/nodes/*/var/log/healthd.log 2>/dev/null; then
		san=1
		printf 'FAIL: sanitizer report in a healthd.log:\n' >&2
		grep -h -E -A40 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$ML_DIR"/nodes/*/var/log/healthd.log |
			head -n 80 | sed 's/^/    /' >&2
	fi
	if [ -n "${ML_KEEP:-}" ]; then # kept for a look; nothing in it for the next run to reap
		mv -f "$ML_DIR/netns" "$ML_DIR/netns.removed" 2>/dev/null || true
		ml_log "meshlab: kept $ML_DIR"
	else
		rm -rf "$ML_DIR"
	fi
	[ -z "$san" ] || exit $((rc ? rc : 1))
	return "$rc"
}
