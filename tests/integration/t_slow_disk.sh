#!/usr/bin/env bash
# A disk that takes 5 s per fsync (LD_PRELOAD shim) does not delay a
# withdrawal: `disable` goes out over the socket at once, the include file
# follows when the write is done.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

shim=$HEALTHD_BUILD/tests/slowfsync.so
[ -f "$shim" ] || { echo "FAIL: $shim not built"; exit 1; }
lab_up
lab_config >"$LAB_DIR/healthd.yaml"
lab_web_start 8080
export SLOWFSYNC_MS=5000 SLOWFSYNC_LOG=$LAB_DIR/fsync.log
# a sanitized healthd loads its runtime first; the shim may come before it
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"
LD_PRELOAD=$shim lab_healthd_start
wait_for 30 "announced (the first write stalls too)" lab_upstream_has "$LAB_PREFIX4"
wait_for 5 "the writes to be done" eval '[ "$(grep -c ^start "$SLOWFSYNC_LOG")" = "$(grep -c ^end "$SLOWFSYNC_LOG")" ]'
wait_for 10 "BIRD in sync" eval '[ "$(lab_status_get "d[\"bird\"][\"in_sync\"]")" = True ]'
stalls=$(grep -c ^start "$SLOWFSYNC_LOG")

t0=$(now_ms)
lab_web_stop
wait_for 5 "upstream to lose $LAB_PREFIX4" lab_upstream_lacks "$LAB_PREFIX4"
t1=$(now_ms)
# the file write for this withdrawal is still stalled
[ "$(grep -c ^start "$SLOWFSYNC_LOG")" -gt "$stalls" ] || { echo "FAIL: no write was started"; exit 1; }
[ "$(grep -c ^end "$SLOWFSYNC_LOG")" -lt "$(grep -c ^start "$SLOWFSYNC_LOG")" ] ||
	{ echo "FAIL: the write was not under way when the route left"; exit 1; }
grep -q '# healthd-state: up' "$LAB_DIR/node/healthd.conf" ||
	{ echo "FAIL: the file was already rewritten"; exit 1; }
log "measured: web stopped -> upstream lost the route in $((t1 - t0)) ms with every fsync stalled 5 s (interval 200ms, fall 2)"
[ $((t1 - t0)) -lt 2500 ] || { echo "FAIL: the withdrawal waited for the disk"; exit 1; }
wait_for 15 "the file to follow" grep -q '# healthd-state: withdrawn' "$LAB_DIR/node/healthd.conf"
lab_include_disabled healthd_web_v4
