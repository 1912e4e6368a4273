#!/usr/bin/env bash
# Runs every tests/integration/t_*.sh (or those named) in its own process,
# and closes with "integration: N passed, N failed".
set -u
cd "$(dirname "$0")/../.."
if [ "$(id -u)" -ne 0 ]; then
	echo "integration tests need root (network namespaces)" >&2
	echo "integration: 0 passed, 1 failed"
	exit 1
fi
if ! ip netns list >/dev/null 2>&1; then
	echo "integration tests need 'ip netns' (iproute2) and namespace support" >&2
	echo "integration: 0 passed, 1 failed"
	exit 1
fi
tests=("$@")
[ ${#tests[@]} -gt 0 ] || tests=(tests/integration/t_*.sh)
pass=0; fail=0; failed=()
for t in "${tests[@]}"; do
	name=$(basename "$t" .sh)
	start=$(date +%s%3N)
	out=$(timeout -k 5 180 bash "$t" 2>&1); rc=$?
	dur=$(( $(date +%s%3N) - start ))
	if [ $rc -eq 0 ]; then
		pass=$((pass + 1))
		printf 'PASS %-28s %6d ms\n' "$name" "$dur"
		printf '%s\n' "$out" | grep -E '^  (measured|note):' || true
	else
		fail=$((fail + 1)); failed+=("$name")
		printf 'FAIL %-28s %6d ms (exit %d)\n' "$name" "$dur" "$rc"
		printf '%s\n' "$out" | sed 's/^/    /' | tail -n 60
	fi
done
[ $fail -eq 0 ] || echo "failed: ${failed[*]}"
echo "integration: $pass passed, $fail failed"
[ $fail -eq 0 ]
