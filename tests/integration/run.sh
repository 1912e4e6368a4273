#!/usr/bin/env bash
# Runs every tests/integration/t_*.sh (or the ones named), each in its own
# bash process, and closes with "integration: N passed, N failed".
# A test passes when it exits 0; its "measured:" and "note:" lines (e.g. a
# skip) are shown either way,
# and on failure its reason ("FAIL:" and "timed out" lines) and log tail.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1

refuse() {
	echo "integration: cannot run: $*" >&2
	echo "integration: 0 passed, 1 failed"
	exit 1
}
[ "$(id -u)" -eq 0 ] || refuse "needs root to create network namespaces (run as root)"
command -v ip >/dev/null || refuse "'ip' not found (iproute2)"
probe=hdprobe$$
ip netns add "$probe" 2>/dev/null || refuse "'ip netns add' failed: no network namespace support"
ip netns del "$probe"

tests=("$@")
[ ${#tests[@]} -gt 0 ] || tests=(tests/integration/t_*.sh)
[ -e "${tests[0]}" ] || refuse "no tests/integration/t_*.sh"
logdir=${INTEG_LOGDIR:-/tmp/healthd-integration.$$}
mkdir -p "$logdir"
pass=0 failn=0 failed=()
for t in "${tests[@]}"; do
	name=$(basename "$t" .sh)
	log=$logdir/$name.log
	start=${EPOCHREALTIME/[.,]/}
	# TERM first so the test's EXIT trap tears its lab down
	timeout -s TERM -k 10 "${INTEG_TIMEOUT:-180}" bash "$t" >"$log" 2>&1
	rc=$?
	ms=$(((${EPOCHREALTIME/[.,]/} - start) / 1000))
	if [ "$rc" -eq 0 ]; then
		pass=$((pass + 1))
		printf 'PASS %-20s %6d ms\n' "$name" "$ms"
		grep -E '^ *(measured|note):' "$log" | sed 's/^ */     /' || true
	else
		failn=$((failn + 1))
		failed+=("$name")
		why=$(grep -E '^(FAIL:|timed out|after [0-9]+ polls:|unexpected:)' "$log" | tail -n 3 | paste -sd '|' -)
		[ "$rc" -ne 124 ] || why="killed after ${INTEG_TIMEOUT:-180}s${why:+; $why}"
		# else the test's last words, before lab_down's log tails
		[ -n "$why" ] || why="exit $rc: $(sed '/^--- last lines of /,$d' "$log" | tail -n 1)"
		printf 'FAIL %-20s %6d ms  %s\n' "$name" "$ms" "$why"
		grep -E '^ *(measured|note):' "$log" | sed 's/^ */     /' || true
		echo "     --- last lines of $log"
		tail -n "${INTEG_TAIL:-40}" "$log" | sed 's/^/     /'
	fi
done
[ "$failn" -eq 0 ] && rm -rf "$logdir"
[ "$failn" -eq 0 ] || echo "failed: ${failed[*]} (logs in $logdir)"
echo "integration: $pass passed, $failn failed"
[ "$failn" -eq 0 ]
