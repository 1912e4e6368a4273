#!/usr/bin/env bash
# Runs every Criterion suite given and prints one closing line with the sums.
set -u
pass=0; fail=0; bad=()
for t in "$@"; do
  out=$("$t" --jobs 1 2>&1); rc=$?
  printf '%s\n' "$out" | grep -v '^\[----\]' | tail -n 3
  line=$(printf '%s\n' "$out" | grep -E 'Synthesis: Tested' | tail -n1)
  p=$(sed -nE 's/.*Passing: ([0-9]+).*/\1/p' <<<"$line"); p=${p:-0}
  f=$(sed -nE 's/.*Failing: ([0-9]+).*Crashing: ([0-9]+).*/\1+\2/p' <<<"$line"); f=$(( ${f:-0} ))
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
  pass=$((pass + p)); fail=$((fail + f))
  [ "$rc" -ne 0 ] && bad+=("$(basename "$t")")
done
[ ${#bad[@]} -gt 0 ] && echo "failing suites: ${bad[*]}"
echo "unit: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
