#!/usr/bin/env bash
# healthd --withdraw-all: refused while a healthd runs; once healthd is
# dead, every healthd_* protocol is disabled in BIRD and in the file and
# the upstream loses the routes.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

lab_up
lab_config >"$LAB_DIR/healthd.yaml"
lab_web_start 8080
lab_healthd_start
wait_for 10 "announced" lab_upstream_has "$LAB_PREFIX4"
wait_for 5 "announced (v6)" lab_upstream_has "$LAB_PREFIX6"

# while healthd runs: refused, nothing touched
rc=0
in_node "$HEALTHD_BIN" --withdraw-all -c "$LAB_DIR/healthd.yaml" 2>"$LAB_DIR/wd.err" || rc=$?
[ "$rc" = 1 ] || { echo "FAIL: --withdraw-all beside a running healthd exited $rc"; exit 1; }
grep -q "another healthd (pid $LAB_HEALTHD_PID) holds" "$LAB_DIR/wd.err" || { echo "FAIL: $(cat "$LAB_DIR/wd.err")"; exit 1; }
grep -q "healthctl drain --all" "$LAB_DIR/wd.err"
lab_upstream_has "$LAB_PREFIX4"

# healthd dies for good: the routes stay, with nothing checking them ...
lab_healthd_stop KILL || true
lab_upstream_has "$LAB_PREFIX4"
# ... until --withdraw-all
t0=$(now_ms)
in_node "$HEALTHD_BIN" --withdraw-all -c "$LAB_DIR/healthd.yaml" 2>"$LAB_DIR/wd.err" ||
	{ echo "FAIL: --withdraw-all: $(cat "$LAB_DIR/wd.err")"; exit 1; }
wait_for 5 "the upstream to lose $LAB_PREFIX4" lab_upstream_lacks "$LAB_PREFIX4"
wait_for 5 "the upstream to lose $LAB_PREFIX6" lab_upstream_lacks "$LAB_PREFIX6"
log "measured: --withdraw-all -> upstream lost the routes in $(($(now_ms) - t0)) ms"
grep -q "protocols disabled in BIRD" "$LAB_DIR/wd.err"
[ "$(grep -c 'disabled yes;' "$LAB_DIR/node/healthd.conf")" = "$(grep -c '^protocol static' "$LAB_DIR/node/healthd.conf")" ] ||
	{ echo "FAIL: the include file still enables a protocol"; cat "$LAB_DIR/node/healthd.conf"; exit 1; }
up=$(lab_node_birdc show protocols '"healthd_*"' | awk '$1 ~ /^healthd_/ && $4 == "up" { n++ } END { print n + 0 }')
[ "$up" = 0 ] || { echo "FAIL: $up healthd_* protocols still up"; exit 1; }
# BIRD restarted or reconfigured keeps them withdrawn
lab_node_birdc configure >/dev/null
never_within 2 "the route came back after configure" lab_upstream_has "$LAB_PREFIX4"

# BIRD down: the file is still written, and the exit status says BIRD was not reached
lab_node_birdc enable '"healthd_web_v4"' >/dev/null
sed -i 's/disabled yes;//' "$LAB_DIR/node/healthd.conf"
rc=0
in_node "$HEALTHD_BIN" --withdraw-all -c <(sed "s|socket: $LAB_DIR/node/bird.ctl|socket: $LAB_DIR/node/nobird.ctl|" "$LAB_DIR/healthd.yaml") \
	2>"$LAB_DIR/wd.err" || rc=$?
[ "$rc" = 1 ] || { echo "FAIL: --withdraw-all without BIRD exited $rc"; exit 1; }
grep -q "BIRD unreachable" "$LAB_DIR/wd.err" || { echo "FAIL: $(cat "$LAB_DIR/wd.err")"; exit 1; }
lab_include_disabled healthd_web_v4
