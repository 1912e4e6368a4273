#!/usr/bin/env bash
# bench/meshfail.sh OUT RUNS — failover in the four-region mesh lab of
# tests/integration/meshlab.sh (node files from `meshctl render`, real BIRD,
# wireguard-go, nftables and healthd, transit BIRDs as the Internet).
#
# ORD's user asks the anycast address non-stop (bench/meshwatch.py, a new
# connection every 5 ms). Each run: ORD's web service is stopped (ml_web_stop:
# SIGTERM) and the clock runs until ORD's user is answered by another node,
# from the SIGTERM and from when the service stopped answering (the later of
# the SIGTERM and ORD's user's last answer from it: a service slow to exit
# still serves); after healthd's hold-down has run out it is started again
# (ml_web_start) and the clock runs until ORD's node answers again. The lab's checks are the rendered ones
# (interval 100ms, fall 2, rise 2) with the rendered hold-down and
# dampening: before each stop the bench waits until the service's
# dampening penalty has decayed far enough that this withdrawal cannot
# suppress it, so every run measures a failover, not a suppression.
#
# OUT gets JSON lines: {"config": …}, then one {"run": …} a run.
# Exit 77 with "skip: REASON" on stderr when the lab cannot run here (yet).
set -euo pipefail
out=$1
runs=${2:-10}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LAB=$HERE/../tests/integration/meshlab.sh

skip() {
	printf 'skip: %s\n' "$*" >&2
	exit 77
}
[ -f "$LAB" ] || skip "tests/integration/meshlab.sh is not there"
[ "$(id -u)" -eq 0 ] || skip "the mesh lab needs root (network namespaces)"
# shellcheck source=../tests/integration/meshlab.sh
source "$LAB"
for f in ml_up ml_down ml_web_stop ml_web_start ml_uns ml_root ml_healthctl ml_state_is; do
	declare -F "$f" >/dev/null || skip "tests/integration/meshlab.sh defines no $f (yet)"
done
[ -n "${ML_ANYCAST4:-}" ] || skip "tests/integration/meshlab.sh sets no ML_ANYCAST4 (yet)"
[ -f "$ML_TEMPLATE" ] || skip "the lab's inventory $ML_TEMPLATE is not there (yet)"

t_up=$(now_ms)
ml_up
up_ms=$(($(now_ms) - t_up))
node=${ML_REGION_NODE[ord]:-}
[ -n "$node" ] || { echo "meshlab: no node in region ord" >&2; exit 1; }
others=$(printf '%s\n' "${ML_NODES[@]}" | grep -vx "$node" | paste -sd '|')

# The rendered service and check values of ORD's node.
read -r hold_ms suppress penalty interval_ms fall rise < <(python3 - "$(ml_root "$node")/etc/healthd/healthd.yaml" <<'EOF'
import re, sys
text = open(sys.argv[1]).read()
def ms(v):
    n, u = re.fullmatch(r"(\d+)(ms|s|m|h)", v).groups()
    return int(n) * {"ms": 1, "s": 1000, "m": 60000, "h": 3600000}[u]
svc = text[text.index("- name: \"web\""):]
chk = svc[svc.index("checks:"):]
first = lambda k, t: re.search(r"^\s*%s: (\S+)" % k, t, re.M).group(1)
print(ms(first("hold_down", svc)), first("suppress", svc), first("penalty", svc),
      ms(first("interval", chk)), first("fall", chk), first("rise", chk))
EOF
)
# the penalty this withdrawal adds must leave it below suppress
threshold=$((suppress - penalty - 100))

watch_log=$ML_DIR/bench-watch.log
: >"$watch_log"
ip netns exec "$(ml_uns ord)" python3 "$HERE/meshwatch.py" --url "http://$ML_ANYCAST4/" --out "$watch_log" &
watch_pid=$!
stop_watch() {
	[ -n "${watch_pid:-}" ] || return 0
	kill -TERM "$watch_pid" 2>/dev/null || true
	wait "$watch_pid" 2>/dev/null || true
	watch_pid=
}
on_exit() {
	local rc=$?
	trap - ERR
	set +e
	stop_watch
	(exit "$rc") # ml_down reads the exit status: logs on failure
	ml_down
}
trap on_exit EXIT

last_is() { [ "$(tail -n 1 "$watch_log" | cut -d' ' -f2)" = "$1" ]; }
# The first change of answer at or after $1 (ms) to a body matching ^($2)$
# (or, with $3 = not, not matching): "MS BODY LAST_MS" (meshwatch.py).
first_answer() {
	awk -v t="$1" -v re="^($2)\$" -v neg="${3:-}" \
		'$1 >= t && (neg ? $2 !~ re : $2 ~ re) { print $1, $2, $3; exit }' "$watch_log"
}
# The watcher's lines from $1 to $2 (ms) as a JSON list of strings.
excerpt() { awk -v a="$1" -v b="$2" '$1 >= a && $1 <= b { printf "%s\"%s %s\"", (n++ ? ", " : ""), $1, $2 }' "$watch_log"; }
answered_since() { [ -n "$(first_answer "$1" "$2")" ]; }
# How long, between $1 and $2 (ms), ORD's user got no node's answer
# (refused, timed out): the watcher's lines are the changes of answer.
unanswered_ms() {
	awk -v a="$1" -v b="$2" '
		function add(from, to) { if (from < a) from = a; if (to > b) to = b; if (to > from) s += to - from }
		n && pb ~ /^-/ { add(pt, $1) }
		{ pt = $1; pb = $2; n = 1 }
		END { if (n && pb ~ /^-/) add(pt, b); print s + 0 }' "$watch_log"
}
penalty_now() {
	ml_healthctl "$node" status --json | python3 -c '
import json, sys
d = json.load(sys.stdin)
print(int([s for s in d["services"] if s["name"] == "web"][0]["penalty"]))'
}
penalty_below() { [ "$(penalty_now)" -le "$1" ]; }
pause() { sleep "0.$((200 + RANDOM % 200))"; } # the start or stop falls anywhere in the probe period

wait_for 10 "ORD's user answered by $node" last_is "$node"
printf '{"config": {"node": "%s", "others": "%s", "anycast": "%s", "interval_ms": %d, "fall": %d, "rise": %d, "hold_down_ms": %d, "suppress": %d, "penalty": %d, "penalty_threshold": %d, "lab_up_ms": %d}}\n' \
	"$node" "$others" "$ML_ANYCAST4" "$interval_ms" "$fall" "$rise" "$hold_ms" "$suppress" "$penalty" "$threshold" "$up_ms" >"$out"

for ((i = 1; i <= runs; i++)); do
	t0=$(now_ms)
	wait_for 300 "$node's dampening penalty to decay to $threshold" penalty_below "$threshold"
	waited=$(($(now_ms) - t0))
	p_before=$(penalty_now)
	wait_for 30 "$node's web to be up" ml_state_is "$node" up
	wait_for 10 "ORD's user answered by $node" last_is "$node"
	pause
	t_stop=$(now_ms)
	ml_web_stop "$node"
	t_stopped=$(now_ms)
	wait_for 10 "ORD's user to be answered by another node ($others)" answered_since "$t_stop" "$others"
	read -r t_away by _ < <(first_answer "$t_stop" "$others")
	read -r _ _ t_last < <(first_answer "$t_stop" "$node" not)
	t_gone=$((t_last > t_stop ? t_last : t_stop))
	dark_away=$(unanswered_ms "$t_stop" "$t_away")
	# start again once the hold-down (counted from the withdrawal, which
	# came before t_away) has run out: the figure is the rise alone
	while [ "$(now_ms)" -lt $((t_away + hold_ms)) ]; do sleep 0.05; done
	pause
	t_start=$(now_ms)
	ml_web_start "$node"
	t_listen=$(now_ms)
	wait_for 30 "ORD's user to be answered by $node again" answered_since "$t_start" "$node"
	read -r t_back _ _ < <(first_answer "$t_start" "$node")
	dark_back=$(unanswered_ms "$t_start" "$t_back")
	printf '{"run": %d, "away_ms": %d, "away_from_sigterm_ms": %d, "sigterm_to_gone_ms": %d, "stop_returned_ms": %d, "away_by": "%s", "away_unanswered_ms": %d, "back_ms": %d, "listen_ms": %d, "back_unanswered_ms": %d, "penalty_before": %d, "waited_ms": %d, "watch": [%s]}\n' \
		"$i" $((t_away - t_gone)) $((t_away - t_stop)) $((t_gone - t_stop)) $((t_stopped - t_stop)) "$by" "$dark_away" \
		$((t_back - t_start)) $((t_listen - t_start)) "$dark_back" "$p_before" "$waited" "$(excerpt $((t_stop - 1000)) "$t_back")" >>"$out"
	echo "run $i/$runs: stopped -> $by after $((t_away - t_gone)) ms ($((t_away - t_stop)) ms from SIGTERM); started -> $node after $((t_back - t_start)) ms (penalty was $p_before, waited $((waited / 1000)) s for it)" >&2
done
cp "$watch_log" "${out%.*}.watch.log"
