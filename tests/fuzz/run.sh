#!/usr/bin/env bash
# Runs each libFuzzer target for FUZZ_SECONDS (default 60) from a fresh
# corpus under build/fuzz/run.PID/, seeded from tests/fuzz/seeds/<target>/
# and the unit tests' fixtures; prints the executions each target ran.
#   FUZZ_SECONDS=60 tests/fuzz/run.sh build/fuzz/fuzz_X...
# A crash leaves its input in build/fuzz/run.PID/crashes/<target>/ and
# fails the run.
set -u
cd "$(dirname "$0")/../.."
secs=${FUZZ_SECONDS:-60}
run=build/fuzz/run.$$
mkdir -p "$run"
summary=()
fail=0

# The reply fuzzer takes a split spec first: 3 chunk sizes, then the stream.
seed_bird_reply() {
	for f in tests/unit/fixtures/bird/*.raw; do
		{ printf '\003\004\001\026'; cat "$f"; } > "$1/$(basename "$f")"
	done
}
seed_config() { cp tests/unit/golden/config/*.yaml config/examples/*.yaml "$1/" 2>/dev/null || true; }
seed_import() {
	cp tests/unit/fixtures/import/anycast-healthchecker/*.conf \
		tests/unit/fixtures/import/anycast-healthchecker/*/*.conf \
		tests/unit/fixtures/import/exabgp/*.conf tests/unit/fixtures/import/errors/*.conf "$1/" 2>/dev/null || true
}
seed_wg_uapi() { cp tests/unit/fixtures/wg/*.txt "$1/" 2>/dev/null || true; }

for bin in "$@"; do
	name=$(basename "$bin"); target=${name#fuzz_}
	corpus=$run/corpus/$target crashes=$run/crashes/$target
	mkdir -p "$corpus" "$crashes"
	[ -d "tests/fuzz/seeds/$target" ] && cp tests/fuzz/seeds/"$target"/* "$corpus/" 2>/dev/null
	if declare -F "seed_$target" >/dev/null; then "seed_$target" "$corpus"; fi
	dict=()
	[ -f "tests/fuzz/seeds/$target.dict" ] && dict=(-dict="tests/fuzz/seeds/$target.dict")
	"$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
		"${dict[@]}" -artifact_prefix="$crashes/" "$corpus" > "$run/$target.log" 2>&1
	rc=$?
	execs=$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+)/\1/p' "$run/$target.log" | tail -n1)
	inputs=$(find "$corpus" -type f | wc -l)
	if [ $rc -ne 0 ]; then
		fail=1
		line=$(printf '%-14s CRASH after %s executions (exit %d), see %s' "$target" "${execs:-?}" "$rc" "$crashes")
		grep -E 'ERROR:|runtime error:|SUMMARY' "$run/$target.log" | head -n 5 >&2
	else
		line=$(printf '%-14s %10s executions in %ss, clean (corpus %d inputs)' "$target" "$execs" "$secs" "$inputs")
	fi
	echo "$line"
	summary+=("$line")
done
printf '%s\n' "${summary[@]}" > "$run/summary.txt"
echo "fuzz: logs and corpora in $run"
exit $fail
