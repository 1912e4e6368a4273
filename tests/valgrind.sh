#!/usr/bin/env bash
# Runs Criterion suites under valgrind memcheck; any error or leak in any
# process (the runner or a test's worker) fails the suite.
#   tests/valgrind.sh build/std/tests/test_X...
# Criterion runs each test in a re-executed worker, so children are traced
# and each process logs to its own file: a worker's exit code is not what
# the runner reports.
set -u
dir=$(mktemp -d "/tmp/healthd-valgrind.$$.XXXX")
trap 'rm -rf "$dir"' EXIT
supp=$(dirname "$0")/valgrind.supp
fail=0; bad=()
for t in "$@"; do
	name=$(basename "$t")
	mkdir -p "$dir/$name"
	start=$(date +%s)
	out=$(valgrind -q --trace-children=yes --leak-check=full --error-exitcode=1 \
		--errors-for-leak-kinds=definite,possible --show-leak-kinds=definite,possible \
		--trace-children-skip="*python3*,*/bird,*/birdc,*/sh,*/bash" \
		--suppressions="$supp" --log-file="$dir/$name/%p.log" \
		"$t" --jobs 1 2>&1); rc=$?
	# "==PID==" lines are errors and leaks; "--PID--" ones only warnings
	reports=$(grep -l '^==[0-9]*==' "$dir/$name"/*.log 2>/dev/null | sort)
	if [ "$rc" -ne 0 ] || [ -n "$reports" ]; then
		fail=$((fail + 1)); bad+=("$name")
		printf 'FAIL %-24s %4ds (exit %d)\n' "$name" $(( $(date +%s) - start )) "$rc"
		printf '%s\n' "$out" | grep -E 'Synthesis|FAIL|Crash' | tail -n 5
		for f in $reports; do head -n 60 "$f"; done
	else
		printf 'PASS %-24s %4ds\n' "$name" $(( $(date +%s) - start ))
	fi
done
[ $fail -eq 0 ] || echo "failing under valgrind: ${bad[*]}"
echo "valgrind: $(( $# - fail )) suites clean, $fail with reports"
[ $fail -eq 0 ]
