# tests/integration/lib.sh — a two-router lab in network namespaces.
#
#   node ns  (hd<PID>n): BIRD (AS 64500) + the web service + healthd
#   upstream (hd<PID>u): BIRD (AS 64501), the eBGP peer whose table is the truth
#   veth: node 198.51.100.1/24 2001:db8:100::1/64 <-> upstream .2 / ::2
#
# Only documentation addresses; no default route; nothing leaves the
# machine. Everything started is tracked by PID and stopped by lab_down,
# which lab_up installs as an EXIT trap.

LAB_ID=${LAB_ID:-$$}
NS_NODE=hd${LAB_ID}n
NS_UP=hd${LAB_ID}u
LAB_DIR=/tmp/healthd-lab.${LAB_ID}
LAB_PREFIX4=203.0.113.10/32
LAB_PREFIX6=2001:db8:203::10/128
SRC_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HEALTHD_BUILD=${HEALTHD_BUILD:-build/std}
case "$HEALTHD_BUILD" in /*) ;; *) HEALTHD_BUILD=$SRC_DIR/$HEALTHD_BUILD ;; esac
HEALTHD_BIN=${HEALTHD_BIN:-$HEALTHD_BUILD/healthd}
HEALTHCTL_BIN=${HEALTHCTL_BIN:-$HEALTHD_BUILD/healthctl}
LAB_PIDS=()

now_ms() { date +%s%3N; }

log() { printf '  %s\n' "$*" >&2; }

# wait_for SECONDS DESCRIPTION CMD... — poll CMD every 20 ms until it
# succeeds or the deadline passes.
wait_for() {
	local secs=$1 what=$2; shift 2
	local deadline=$(( $(now_ms) + secs * 1000 ))
	while ! "$@" >/dev/null 2>&1; do
		if [ "$(now_ms)" -ge "$deadline" ]; then
			echo "timed out after ${secs}s waiting for: $what" >&2
			return 1
		fi
		sleep 0.02
	done
}

# never_within SECONDS DESCRIPTION CMD... — CMD must not succeed once
# during the whole period (polled every 20 ms).
never_within() {
	local secs=$1 what=$2; shift 2
	local deadline=$(( $(now_ms) + secs * 1000 ))
	while [ "$(now_ms)" -lt "$deadline" ]; do
		if "$@" >/dev/null 2>&1; then
			echo "unexpected: $what" >&2
			return 1
		fi
		sleep 0.02
	done
}

in_node() { ip netns exec "$NS_NODE" "$@"; }
in_up() { ip netns exec "$NS_UP" "$@"; }

lab_node_birdc() { birdc -s "$LAB_DIR/node/bird.ctl" "$@"; }
lab_up_birdc() { birdc -s "$LAB_DIR/up/bird.ctl" "$@"; }

# The upstream has PREFIX in its table (learnt over BGP).
lab_upstream_has() {
	lab_up_birdc show route "$1" 2>/dev/null | grep -q "^$1 \|^ *$1 \|^${1}[[:space:]]"
}
lab_upstream_lacks() { ! lab_upstream_has "$1"; }

# The communities the upstream received for PREFIX, one per line.
lab_upstream_communities() {
	{ lab_up_birdc show route "$1" all 2>/dev/null || true; } |
		sed -nE 's/^[[:space:]]*BGP\.(large_)?community:[[:space:]]*(.*)$/\2/p' |
		tr ' ' '\n' | { grep -v '^$' || true; }
}

lab_bgp_established() {
	lab_up_birdc show protocols node4 2>/dev/null | grep -q Established &&
		lab_up_birdc show protocols node6 2>/dev/null | grep -q Established
}

_track() { LAB_PIDS+=("$1"); }

_stop_pid() {
	local pid=$1
	[ -n "$pid" ] || return 0
	kill "$pid" 2>/dev/null || return 0
	for _ in $(seq 1 250); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.02
	done
	kill -9 "$pid" 2>/dev/null || true
}

lab_write_bird_confs() {
	mkdir -p "$LAB_DIR/node" "$LAB_DIR/up"
	[ -e "$LAB_DIR/node/healthd.conf" ] || echo "# written by healthd" > "$LAB_DIR/node/healthd.conf"
	cat > "$LAB_DIR/node/bird.conf" <<EOF
log "$LAB_DIR/node/bird.log" all;
router id 198.51.100.1;
protocol device {}
include "$LAB_DIR/node/healthd.conf";
filter to_upstream { if proto ~ "healthd_*" then accept; reject; }
template bgp up {
	local as 64500;
	neighbor as 64501;
	connect delay time 1;
	connect retry time 1;
	error wait time 1, 5;
}
protocol bgp upstream4 from up {
	neighbor 198.51.100.2;
	ipv4 { import none; export filter to_upstream; };
}
protocol bgp upstream6 from up {
	neighbor 2001:db8:100::2;
	ipv6 { import none; export filter to_upstream; };
}
EOF
	cat > "$LAB_DIR/up/bird.conf" <<EOF
log "$LAB_DIR/up/bird.log" all;
router id 198.51.100.2;
protocol device {}
template bgp node {
	local as 64501;
	neighbor as 64500;
	connect delay time 1;
	connect retry time 1;
	error wait time 1, 5;
}
protocol bgp node4 from node {
	neighbor 198.51.100.1;
	ipv4 { import all; export none; };
}
protocol bgp node6 from node {
	neighbor 2001:db8:100::1;
	ipv6 { import all; export none; };
}
EOF
}

_bird_start() { # NS DIR
	local ns=$1 dir=$2
	rm -f "$dir/bird.ctl"
	ip netns exec "$ns" bird -f -c "$dir/bird.conf" -s "$dir/bird.ctl" -P "$dir/bird.pid" \
		>>"$dir/bird.out" 2>&1 &
	local pid=$!
	_track "$pid"
	echo "$pid" > "$dir/bird.child"
	wait_for 10 "BIRD in $ns to answer on $dir/bird.ctl" birdc -s "$dir/bird.ctl" show status
}

lab_bird_start() { _bird_start "$NS_NODE" "$LAB_DIR/node"; }

lab_bird_kill() {
	local pid
	pid=$(cat "$LAB_DIR/node/bird.child" 2>/dev/null) || return 0
	kill -9 "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

lab_up() {
	set -E
	trap 'echo "FAILED at ${BASH_SOURCE[0]##*/}:$LINENO: $BASH_COMMAND" >&2' ERR
	trap lab_down EXIT
	trap 'exit 130' INT TERM
	rm -rf "$LAB_DIR"
	mkdir -p "$LAB_DIR"
	ip netns add "$NS_NODE"
	ip netns add "$NS_UP"
	ip link add "hd${LAB_ID}a" netns "$NS_NODE" type veth peer name "hd${LAB_ID}b" netns "$NS_UP"
	in_node ip link set lo up
	in_up ip link set lo up
	in_node ip link set "hd${LAB_ID}a" up
	in_up ip link set "hd${LAB_ID}b" up
	in_node ip addr add 198.51.100.1/24 dev "hd${LAB_ID}a"
	in_up ip addr add 198.51.100.2/24 dev "hd${LAB_ID}b"
	in_node ip addr add 2001:db8:100::1/64 dev "hd${LAB_ID}a" nodad
	in_up ip addr add 2001:db8:100::2/64 dev "hd${LAB_ID}b" nodad
	lab_write_bird_confs
	lab_bird_start
	_bird_start "$NS_UP" "$LAB_DIR/up"
	wait_for 20 "BGP sessions Established" lab_bgp_established
}

lab_down() {
	local rc=$?
	trap - EXIT
	for pid in "${LAB_PIDS[@]}"; do _stop_pid "$pid"; done
	for pid in "${LAB_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
	LAB_PIDS=()
	ip netns del "$NS_NODE" 2>/dev/null || true
	ip netns del "$NS_UP" 2>/dev/null || true
	if [ "$rc" -ne 0 ] && [ -z "${LAB_KEEP_LOGS:-}" ]; then
		for f in "$LAB_DIR"/healthd.log "$LAB_DIR"/node/bird.log; do
			[ -f "$f" ] && { echo "--- last lines of $f" >&2; tail -n 25 "$f" >&2; }
		done
	fi
	rm -rf "$LAB_DIR"
	return "$rc"
}

# The web service on the node: 127.0.0.1:PORT/healthz answers 200.
lab_web_start() {
	local port=${1:-8080}
	mkdir -p "$LAB_DIR/www"
	echo ok > "$LAB_DIR/www/healthz"
	ip netns exec "$NS_NODE" python3 "$SRC_DIR/tests/integration/webserver.py" --port "$port" \
		--dir "$LAB_DIR/www" > "$LAB_DIR/web.out" 2>&1 &
	WEB_PID=$!
	_track "$WEB_PID"
	wait_for 10 "web service to listen" grep -q '^ready' "$LAB_DIR/web.out"
}

lab_web_stop() {
	_stop_pid "${WEB_PID:-}"
	wait "${WEB_PID:-}" 2>/dev/null || true
	WEB_PID=
}

# lab_config [EXTRA_SERVICE_YAML] — a healthd config for the lab on stdout.
lab_config() {
	cat <<EOF
node: lab1
bird:
  socket: $LAB_DIR/node/bird.ctl
  include: $LAB_DIR/node/healthd.conf
  timeout: 2s
  reconcile: 1s
control:
  socket: $LAB_DIR/healthd.sock
defaults:
  interval: ${LAB_INTERVAL:-200ms}
  timeout: ${LAB_TIMEOUT:-200ms}
  rise: 2
  fall: 2
services:
  - name: web
    prefixes: ["$LAB_PREFIX4", "$LAB_PREFIX6"]
    communities:
      up: ["64500:100"]
      degraded: ["64500:666"]
      draining: ["65535:0"]
    drain: ${LAB_DRAIN:-2s}
    hold_down: ${LAB_HOLD_DOWN:-1s}
${LAB_SERVICE_EXTRA:-}
    checks:
      - name: http
        type: http
        url: "http://127.0.0.1:8080/healthz"
        on_fail: withdraw
${LAB_CHECKS_EXTRA:-}
EOF
}

lab_healthd_start() {
	local cfg=${1:-$LAB_DIR/healthd.yaml}
	ip netns exec "$NS_NODE" "$HEALTHD_BIN" -c "$cfg" ${HEALTHD_FLAGS:-} >> "$LAB_DIR/healthd.log" 2>&1 &
	HEALTHD_PID=$!
	_track "$HEALTHD_PID"
	wait_for 10 "healthd control socket" test -S "$LAB_DIR/healthd.sock"
}

lab_healthd_stop() {
	local sig=${1:-TERM}
	[ -n "${HEALTHD_PID:-}" ] || return 0
	kill -"$sig" "$HEALTHD_PID" 2>/dev/null || true
	wait "$HEALTHD_PID" 2>/dev/null
	local rc=$?
	HEALTHD_PID=
	return $rc
}

lab_healthctl() { "$HEALTHCTL_BIN" -s "$LAB_DIR/healthd.sock" "$@"; }

# The service's state word from healthctl status --json.
lab_state() {
	lab_healthctl status --json 2>/dev/null |
		python3 -c 'import json,sys; d=json.load(sys.stdin); print([s["state"] for s in d["services"] if s["name"]==sys.argv[1]][0])' "${1:-web}"
}
lab_state_is() { [ "$(lab_state "${2:-web}")" = "$1" ]; }

# Count of BGP updates the upstream received from the node (route changes).
lab_upstream_updates() {
	lab_up_birdc show protocols all node4 2>/dev/null |
		awk '/Import updates:/ {u=$3} /Import withdraws:/ {w=$3} END {print u+w}'
}
