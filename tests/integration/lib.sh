# tests/integration/lib.sh — a two-router BGP lab in network namespaces.
# Sourced by the integration tests and scripts/demo.sh; safe under
# `set -euo pipefail`.
#
#   hd<PID>n  node:     BIRD AS 64500 (router id 198.51.100.1), the web
#                       service on 127.0.0.1, healthd
#   hd<PID>u  upstream: BIRD AS 64501 (router id 198.51.100.2), the eBGP
#                       peer whose table is the truth
#   veth: node 198.51.100.1/24 2001:db8:100::1/64 <-> upstream .2 / ::2
#
# Documentation addresses only, no default route: nothing leaves the
# machine. Everything started is tracked by PID and stopped by lab_down,
# which lab_up installs as the EXIT trap, so a failing test cleans up too.

# shellcheck disable=SC2034 # the variables below are for the scripts that source it
LAB_ID=${LAB_ID:-$$}
LAB_NS_NODE=hd${LAB_ID}n
LAB_NS_UP=hd${LAB_ID}u
LAB_DIR=/tmp/healthd-lab.${LAB_ID}
LAB_PREFIX4=203.0.113.10/32
LAB_PREFIX6=2001:db8:203::10/128
LAB_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HEALTHD_BUILD=${HEALTHD_BUILD:-build/std}
case "$HEALTHD_BUILD" in /*) ;; *) HEALTHD_BUILD=$LAB_SRC/$HEALTHD_BUILD ;; esac
HEALTHD_BIN=${HEALTHD_BIN:-$HEALTHD_BUILD/healthd}
HEALTHCTL_BIN=${HEALTHCTL_BIN:-$HEALTHD_BUILD/healthctl}
LAB_PIDS=()
LAB_NODE_BIRD_PID=
LAB_UP_BIRD_PID=
LAB_WEB_PID=
LAB_HEALTHD_PID=
LAB_IS_UP=

# Milliseconds on the wall clock, without forking.
now_ms() {
	local t=${EPOCHREALTIME/[.,]/}
	echo $((t / 1000))
}

lab_log() { printf '%s\n' "$*" >&2; }

# ERR trap: the failing line of the test script, as written.
_lab_on_err() {
	local text
	text=$(sed -n "${1}{s/^[[:space:]]*//;p;}" "$0" 2>/dev/null || true)
	printf 'FAIL: %s:%s: %s\n' "${0##*/}" "$1" "${text:-$BASH_COMMAND}" >&2
}

# Ends the test with a reason that run.sh shows.
fail() {
	printf 'FAIL: %s\n' "$*" >&2
	exit 1
}

# wait_for TIMEOUT_S DESCRIPTION CMD... — polls CMD every 20 ms until it
# succeeds; on timeout prints DESCRIPTION and returns 1.
wait_for() {
	local secs=$1 what=$2
	shift 2
	local deadline=$(($(now_ms) + ${secs%%.*} * 1000))
	until "$@" >/dev/null 2>&1; do
		if [ "$(now_ms)" -ge "$deadline" ]; then
			printf 'timed out after %ss waiting for: %s\n' "$secs" "$what" >&2
			return 1
		fi
		sleep 0.02
	done
}

# never_for SECONDS INTERVAL_S DESCRIPTION CMD... — CMD must fail at every
# poll for the whole period; prints DESCRIPTION and returns 1 if it succeeds.
never_for() {
	local secs=$1 every=$2 what=$3
	shift 3
	local deadline=$(($(now_ms) + ${secs%%.*} * 1000)) polls=0
	while [ "$(now_ms)" -lt "$deadline" ]; do
		if "$@" >/dev/null 2>&1; then
			printf 'after %d polls: %s\n' "$polls" "$what" >&2
			return 1
		fi
		polls=$((polls + 1))
		sleep "$every"
	done
	LAB_POLLS=$polls
}

lab_node_birdc() { birdc -s "$LAB_DIR/node/bird.ctl" "$@"; }
lab_up_birdc() { birdc -s "$LAB_DIR/up/bird.ctl" "$@"; }

# The upstream's BGP protocol that carries PREFIX's family.
_lab_up_proto() {
	case "$1" in *:*) echo node6 ;; *) echo node4 ;; esac
}

# 0 if the upstream has PREFIX from the node over BGP. Reads reply codes
# (birdc -v): the prefix must open a row of a 1007 block.
lab_upstream_has() {
	local out
	out=$(lab_up_birdc -v show route "$1" protocol "$(_lab_up_proto "$1")" 2>/dev/null) || return 1
	awk -v p="$1" '
		/^[0-9][0-9][0-9][0-9][- ]/ { code = substr($0, 1, 4); sub(/^[0-9]+[- ]/, " ") }
		code == "1007" && $1 == p { found = 1 }
		END { exit !found }' <<<"$out"
}

lab_upstream_lacks() { ! lab_upstream_has "$1"; }

# The communities the upstream received with PREFIX, one per line:
# (A,B) for standard and (A,B,C) for large ones.
lab_upstream_communities() {
	lab_up_birdc show route "$1" protocol "$(_lab_up_proto "$1")" all 2>/dev/null |
		sed -nE 's/^[[:space:]]*BGP\.(large_)?community:[[:space:]]*//p' |
		grep -oE '\([0-9]+(, *[0-9]+){1,2}\)' | tr -d ' ' || true
}

_lab_established() { # SOCK PROTO
	birdc -s "$1" show protocols "$2" 2>/dev/null | grep -q '[[:space:]]Established'
}

# Both sessions Established, seen from both sides.
_lab_all_established() {
	_lab_established "$LAB_DIR/up/bird.ctl" node4 &&
		_lab_established "$LAB_DIR/up/bird.ctl" node6 &&
		_lab_established "$LAB_DIR/node/bird.ctl" upstream4 &&
		_lab_established "$LAB_DIR/node/bird.ctl" upstream6
}

# lab_bgp_established [TIMEOUT_S=20] — waits until both sessions are
# Established on both sides.
lab_bgp_established() {
	wait_for "${1:-20}" "both BGP sessions Established" _lab_all_established
}

_lab_track() { LAB_PIDS+=("$1"); }

_lab_untrack() {
	local p keep=()
	for p in "${LAB_PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
	LAB_PIDS=("${keep[@]}")
}

# A live process: not gone and not a zombie waiting to be reaped.
_lab_alive() {
	local st
	read -r _ _ st _ 2>/dev/null </proc/"$1"/stat || return 1
	[ "$st" != Z ]
}

# Stops PID (a child of this shell): SIGTERM, up to 5 s, then SIGKILL.
_lab_stop_pid() {
	local pid=$1 sig=${2:-TERM} i
	[ -n "$pid" ] || return 0
	if kill -"$sig" "$pid" 2>/dev/null; then
		for ((i = 0; i < 250; i++)); do
			_lab_alive "$pid" || break
			sleep 0.02
		done
		kill -KILL "$pid" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || true
	jobs >/dev/null 2>&1 # flushes bash's "Killed" notice for the reaped job
	_lab_untrack "$pid"
}

_lab_write_confs() {
	mkdir -p "$LAB_DIR/node" "$LAB_DIR/up"
	echo "# healthd writes its protocols here" >"$LAB_DIR/node/healthd.conf"
	# error wait 1..2 s: a session reset by a killed peer comes back quickly
	local timers='connect delay time 1; connect retry time 1; error wait time 1, 2; error forget time 10;'
	cat >"$LAB_DIR/node/bird.conf" <<EOF
# node: AS 64500; announces the healthd_* protocols to the upstream.
log "$LAB_DIR/node/bird.log" all;
router id 198.51.100.1;
protocol device { }
include "$LAB_DIR/node/healthd.conf";
filter to_upstream { if proto ~ "healthd_*" then accept; reject; }
template bgp up {
	local as 64500;
	neighbor as 64501;
	$timers
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
	cat >"$LAB_DIR/up/bird.conf" <<EOF
# upstream: AS 64501; takes everything the node sends, sends nothing.
log "$LAB_DIR/up/bird.log" all;
router id 198.51.100.2;
protocol device { }
template bgp node {
	local as 64501;
	neighbor as 64500;
	$timers
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

# Starts BIRD in NS from DIR; sets REPLY to its PID once it answers.
_lab_bird_start() {
	local ns=$1 dir=$2 pid
	rm -f "$dir/bird.ctl" "$dir/bird.pid"
	# ip netns exec execs bird: $! is BIRD itself
	ip netns exec "$ns" bird -f -c "$dir/bird.conf" -s "$dir/bird.ctl" -P "$dir/bird.pid" \
		>>"$dir/bird.out" 2>&1 &
	pid=$!
	_lab_track "$pid"
	REPLY=$pid
	wait_for 10 "BIRD in $ns to answer on $dir/bird.ctl" \
		birdc -s "$dir/bird.ctl" show status
}

lab_bird_start() {
	_lab_bird_start "$LAB_NS_NODE" "$LAB_DIR/node" || return 1
	LAB_NODE_BIRD_PID=$REPLY
}

# SIGKILL to the node's BIRD: no goodbye to the upstream, as in a crash.
lab_bird_kill() {
	[ -n "$LAB_NODE_BIRD_PID" ] || return 0
	_lab_stop_pid "$LAB_NODE_BIRD_PID" KILL
	LAB_NODE_BIRD_PID=
}

_lab_need() {
	[ "$(id -u)" -eq 0 ] || { lab_log "lab: needs root (network namespaces)"; return 1; }
	ip netns list >/dev/null 2>&1 || { lab_log "lab: 'ip netns' does not work here"; return 1; }
	local c
	for c in bird birdc python3; do
		command -v "$c" >/dev/null || { lab_log "lab: $c not found (scripts/deps.sh test)"; return 1; }
	done
}

_lab_net() {
	local n=$LAB_NS_NODE u=$LAB_NS_UP
	ip netns add "$n"
	ip netns add "$u"
	# no DAD: BGP over IPv6 binds at once, link-local next hops are usable
	ip netns exec "$n" sysctl -qw net.ipv6.conf.default.accept_dad=0 net.ipv6.conf.all.accept_dad=0
	ip netns exec "$u" sysctl -qw net.ipv6.conf.default.accept_dad=0 net.ipv6.conf.all.accept_dad=0
	ip -n "$n" link add up0 type veth peer name node0 netns "$u"
	ip -n "$n" link set lo up
	ip -n "$u" link set lo up
	ip -n "$n" addr add 198.51.100.1/24 dev up0
	ip -n "$n" addr add 2001:db8:100::1/64 dev up0 nodad
	ip -n "$u" addr add 198.51.100.2/24 dev node0
	ip -n "$u" addr add 2001:db8:100::2/64 dev node0 nodad
	ip -n "$n" link set up0 up
	ip -n "$u" link set node0 up
}

lab_up() {
	_lab_need || return 1
	LAB_IS_UP=1
	trap "lab_down || true" EXIT # the test's own exit status stands
	# set -e exits silently; name the line and command that failed
	trap '_lab_on_err "$LINENO"' ERR
	trap 'exit 130' INT
	trap 'exit 143' TERM
	trap 'exit 129' HUP
	rm -rf "$LAB_DIR"
	mkdir -p "$LAB_DIR"
	_lab_net || return 1
	_lab_write_confs
	lab_bird_start || return 1
	_lab_bird_start "$LAB_NS_UP" "$LAB_DIR/up" || return 1
	LAB_UP_BIRD_PID=$REPLY
	lab_bgp_established 20
}

# The last LINES lines of each non-empty FILE, named below BASE, on stderr.
_lab_tail_logs() { # BASE LINES FILE...
	local base=$1 lines=$2 f
	shift 2
	for f in "$@"; do
		[ -s "$f" ] || continue
		printf -- '--- last lines of %s\n' "${f#"$base"/}" >&2
		tail -n "$lines" "$f" | sed 's/^/    /' >&2
	done
}

_lab_show_logs() {
	_lab_tail_logs "$LAB_DIR" "${LAB_LOG_LINES:-15}" \
		"$LAB_DIR/healthd.log" "$LAB_DIR/node/bird.log" "$LAB_DIR/up/bird.log"
}

# Stops everything started, removes the namespaces and LAB_DIR. Idempotent.
lab_down() {
	local rc=$? pid ns
	[ -n "$LAB_IS_UP" ] || return "$rc"
	LAB_IS_UP=
	trap - ERR
	[ "$rc" -eq 0 ] || [ "$rc" -eq 130 ] || _lab_show_logs # not after Ctrl-C
	for pid in "${LAB_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
	for pid in "${LAB_PIDS[@]}"; do _lab_stop_pid "$pid"; done
	# anything our processes left in our namespaces (e.g. a probe's child)
	for ns in "$LAB_NS_NODE" "$LAB_NS_UP"; do
		for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
		ip netns del "$ns" 2>/dev/null || true
	done
	LAB_NODE_BIRD_PID="" LAB_UP_BIRD_PID="" LAB_WEB_PID="" LAB_HEALTHD_PID="" HEALTHD_PID=""
	# a sanitizer report from healthd (build/san) fails the test that saw it;
	# exit, since the EXIT trap's return status would not count
	local san=
	if grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$LAB_DIR/healthd.log" 2>/dev/null; then
		san=1
		printf 'FAIL: sanitizer report in healthd.log:\n' >&2
		grep -E -A40 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$LAB_DIR/healthd.log" |
			head -n 80 | sed 's/^/    /' >&2
	fi
	rm -rf "$LAB_DIR"
	[ -z "$san" ] || exit $((rc ? rc : 1))
	return "$rc"
}

# The web service: 200 "ok" on http://127.0.0.1:PORT/healthz in the node ns.
# lab_web_start [PORT [webserver.py options, e.g. --mode hang]]
lab_web_start() {
	local port=${1:-8080} out=$LAB_DIR/web.out
	shift || true
	[ -z "$LAB_WEB_PID" ] || lab_web_stop
	: >"$out"
	mkdir -p "$LAB_DIR/www"
	echo ok >"$LAB_DIR/www/healthz"
	# a test can fail the endpoint alone (404) by removing $LAB_DIR/www/healthz
	ip netns exec "$LAB_NS_NODE" python3 "$LAB_SRC/tests/integration/webserver.py" \
		--port "$port" --dir "$LAB_DIR/www" "$@" >"$out" 2>&1 &
	LAB_WEB_PID=$!
	_lab_track "$LAB_WEB_PID"
	wait_for 10 "web service to print 'ready $port'" grep -qx "ready $port" "$out"
}

lab_web_stop() {
	_lab_stop_pid "$LAB_WEB_PID"
	LAB_WEB_PID=
}

# healthd's config for the lab: service web on PORT (default 8080).
lab_healthd_config() {
	local port=${1:-8080}
	cat <<EOF
node: lab1
bird: { socket: $LAB_DIR/node/bird.ctl, include: $LAB_DIR/node/healthd.conf, timeout: 2s, reconcile: 1s }
control: { socket: $LAB_DIR/healthd.sock }
state_dir: $LAB_DIR/state
defaults: { interval: 200ms, timeout: 200ms, rise: 2, fall: 2 }
services:
  - name: web
    prefixes: ["$LAB_PREFIX4", "$LAB_PREFIX6"]
    communities: { up: ["64500:100"] }
    hold_down: 1s
    checks:
      - { name: http, type: http, url: "http://127.0.0.1:$port/healthz", on_fail: withdraw }
EOF
}

# Runs healthd -c CONFIG in the node ns; stderr goes to $LAB_DIR/healthd.log.
# Runs healthd -c CONFIG (default $LAB_DIR/healthd.yaml) in the node ns,
# with $HEALTHD_FLAGS; stderr goes to $LAB_DIR/healthd.log.
lab_healthd_start() {
	local cfg=${1:-$LAB_DIR/healthd.yaml}
	[ -x "$HEALTHD_BIN" ] || { lab_log "lab: $HEALTHD_BIN not built"; return 1; }
	# shellcheck disable=SC2086 # HEALTHD_FLAGS is a list of words
	ip netns exec "$LAB_NS_NODE" "$HEALTHD_BIN" -c "$cfg" ${HEALTHD_FLAGS:-} \
		>>"$LAB_DIR/healthd.log" 2>&1 &
	LAB_HEALTHD_PID=$!
	HEALTHD_PID=$LAB_HEALTHD_PID
	_lab_track "$LAB_HEALTHD_PID"
	wait_for 10 "healthd to open its control socket" test -S "$LAB_DIR/healthd.sock"
}

# lab_healthd_stop [SIGNAL] — returns healthd's exit status (0 if none ran).
lab_healthd_stop() {
	local pid=$LAB_HEALTHD_PID sig=${1:-TERM} rc=0 i
	[ -n "$pid" ] || return 0
	LAB_HEALTHD_PID="" HEALTHD_PID=""
	kill -"$sig" "$pid" 2>/dev/null || true
	for ((i = 0; i < 250; i++)); do
		_lab_alive "$pid" || break
		sleep 0.02
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || rc=$?
	jobs >/dev/null 2>&1
	_lab_untrack "$pid"
	return "$rc"
}

lab_healthctl() { "$HEALTHCTL_BIN" -s "$LAB_DIR/healthd.sock" "$@"; }

# --- names the tests also use --------------------------------------------
NS_NODE=$LAB_NS_NODE
NS_UP=$LAB_NS_UP
SRC_DIR=$LAB_SRC
HEALTHD_PID=

log() { printf '%s\n' "$*" >&2; }
in_node() { ip netns exec "$LAB_NS_NODE" "$@"; }
in_up() { ip netns exec "$LAB_NS_UP" "$@"; }
_track() { _lab_track "$@"; }

# never_within SECONDS DESCRIPTION CMD... — never_for, polling every 20 ms.
never_within() {
	local secs=$1
	shift
	never_for "$secs" 0.02 "$@"
}

# http.listen from LAB_HTTP_LISTEN (addresses separated by spaces), if set;
# http.per_source_limit from LAB_HTTP_PER_SOURCE, if set.
_lab_http_yaml() {
	[ -n "${LAB_HTTP_LISTEN:-}" ] || return 0
	local a list=""
	for a in $LAB_HTTP_LISTEN; do list+="${list:+, }\"$a\""; done
	printf 'http:\n  listen: [%s]\n' "$list"
	[ -z "${LAB_HTTP_PER_SOURCE:-}" ] || printf '  per_source_limit: %s\n' "$LAB_HTTP_PER_SOURCE"
}

# lab_config — lab_healthd_config with knobs: LAB_INTERVAL, LAB_TIMEOUT,
# LAB_DRAIN, LAB_HOLD_DOWN, LAB_HTTP_LISTEN, LAB_HTTP_PER_SOURCE, LAB_STATE_DIR (default
# $LAB_DIR/state), and YAML lines LAB_SERVICE_EXTRA (service keys)
# and LAB_CHECKS_EXTRA (more checks).
lab_config() {
	cat <<EOF2
node: lab1
bird:
  socket: $LAB_DIR/node/bird.ctl
  include: $LAB_DIR/node/healthd.conf
  timeout: 2s
  reconcile: 1s
control:
  socket: $LAB_DIR/healthd.sock
state_dir: ${LAB_STATE_DIR:-$LAB_DIR/state}
$(_lab_http_yaml)
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
EOF2
}

# The service's state word from `healthctl status --json`.
lab_state() {
	lab_healthctl status --json 2>/dev/null | python3 -c '
import json, sys
d = json.load(sys.stdin)
print([s["state"] for s in d["services"] if s["name"] == sys.argv[1]][0])' "${1:-web}"
}
lab_state_is() { [ "$(lab_state "${2:-web}")" = "$1" ]; }

# lab_status_get PYEXPR — PYEXPR evaluated over `healthctl status --json`
# (as d), printed; e.g. lab_status_get 'd["bird"]["connected"]'.
lab_status_get() {
	lab_healthctl status --json 2>/dev/null |
		python3 -c 'import json, sys; d = json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"
}

# Route changes (updates + withdraws) the upstream received over node4.
lab_upstream_updates() {
	lab_up_birdc show protocols all node4 2>/dev/null |
		awk '/Import updates:/ {u = $3} /Import withdraws:/ {w = $3} END {print u + w}'
}

# Import updates plus withdraws the upstream had from the node, both families.
lab_upstream_changes() {
	local p n=0 c
	for p in node4 node6; do
		c=$(lab_up_birdc show protocols all "$p" 2>/dev/null |
			awk '/Import updates:/ {u = $3} /Import withdraws:/ {w = $3} END {print u + w}')
		n=$((n + ${c:-0}))
	done
	echo "$n"
}

# True when every check of every service has risen (its own state "up"),
# not merely the service state healthd adopted from BIRD.
lab_checks_up() {
	lab_healthctl status --json 2>/dev/null | python3 -c '
import json, sys
d = json.load(sys.stdin)
ok = all(c["state"] == "up" for s in d["services"] for c in s["checks"])
sys.exit(0 if ok and d["services"] else 1)'
}

# Withdrawals the upstream received from the node, both families.
lab_upstream_withdraws() {
	local p n=0 c
	for p in node4 node6; do
		c=$(lab_up_birdc show protocols all "$p" 2>/dev/null | awk '/Import withdraws:/ {print $3}')
		n=$((n + ${c:-0}))
	done
	echo "$n"
}

# lab_include_disabled PROTO — the include file's `protocol static PROTO`
# block says `disabled yes;` (other protocols of the service, such as
# PROTO_draining, carry it whenever their state is not the service's).
lab_include_disabled() {
	awk -v p="$1" '
		$1 == "protocol" && $2 == "static" { inside = ($3 == p) }
		inside && /disabled yes;/ { found = 1 }
		inside && /^}/ { inside = 0 }
		END { exit !found }' "$LAB_DIR/node/healthd.conf"
}
