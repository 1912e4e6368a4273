#!/usr/bin/env bash
# Fault: the include file's directory turns read-only under a running
# healthd (a read-only bind mount in healthd's own mount namespace; BIRD
# still reads it). The withdrawal still reaches BIRD over the socket and
# the upstream loses the route; healthctl status and the log report the
# write error; once the directory is writable the file is brought up to date.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

command -v unshare >/dev/null && command -v nsenter >/dev/null || fail "needs unshare and nsenter (util-linux)"
lab_up
lab_config >"$LAB_DIR/healthd.yaml"
inc=$LAB_DIR/node/healthd.conf
# healthd in a private mount namespace: exec all the way, so $! is healthd
printf '#!/bin/sh\nexec unshare -m --propagation private "%s" "$@"\n' "$HEALTHD_BIN" >"$LAB_DIR/healthd-mntns"
chmod +x "$LAB_DIR/healthd-mntns"
real_bin=$HEALTHD_BIN
HEALTHD_BIN=$LAB_DIR/healthd-mntns
lab_web_start 8080
lab_healthd_start
HEALTHD_BIN=$real_bin
[ "$(readlink "/proc/$HEALTHD_PID/exe")" = "$(readlink -f "$real_bin")" ] || fail "\$! is not healthd"
wait_for 10 "upstream to learn $LAB_PREFIX4" lab_upstream_has "$LAB_PREFIX4"
in_hd_mnt() { nsenter -t "$HEALTHD_PID" -m "$@"; }

in_hd_mnt mount --bind -o ro "$LAB_DIR/node" "$LAB_DIR/node"
if in_hd_mnt touch "$LAB_DIR/node/probe" 2>/dev/null; then fail "the bind mount is not read-only"; fi
touch "$LAB_DIR/node/probe" # ...for healthd only

t0=$(now_ms)
lab_web_stop
wait_for 5 "upstream to lose $LAB_PREFIX4 despite the read-only include" lab_upstream_lacks "$LAB_PREFIX4"
wait_for 2 "upstream to lose $LAB_PREFIX6" lab_upstream_lacks "$LAB_PREFIX6"
log "measured: withdrawal with a read-only include file reached the upstream in $(($(now_ms) - t0)) ms"
lab_state_is withdrawn
if lab_include_disabled healthd_web_v4; then fail "the include file was written through a read-only mount"; fi
wait_for 5 "the write error in the log" \
	grep -qF "include file not written, BIRD will still be told: " "$LAB_DIR/healthd.log"
grep -F "include file not written" "$LAB_DIR/healthd.log" | grep -qi "read-only file system" ||
	fail "the log does not say why: $(grep -F 'include file not written' "$LAB_DIR/healthd.log" | head -n1)"
[ "$(lab_status_get 'd["bird"]["render_errors"]')" -ge 1 ]
lab_status_get 'd["bird"]["last_error"]' | grep -qi "read-only file system"
lab_healthctl status | grep -qi "last BIRD error: .*read-only file system"
# reconcile passes must not undo the withdrawal from the stale file
never_within 3 "the route back while the file is stale" lab_upstream_has "$LAB_PREFIX4"
kill -0 "$HEALTHD_PID"

# writable again: the file catches up without any change of state
in_hd_mnt umount "$LAB_DIR/node"
wait_for 10 "the include file to say withdrawn" lab_include_disabled healthd_web_v4
# and a BIRD restart now keeps the route withdrawn
lab_bird_kill
lab_bird_start
lab_bgp_established 20
never_within 3 "the route announced after BIRD's restart" lab_upstream_has "$LAB_PREFIX4"
lab_web_start 8080
wait_for 15 "upstream to learn $LAB_PREFIX4 again" lab_upstream_has "$LAB_PREFIX4"
lab_state_is up
kill -0 "$HEALTHD_PID"
lab_healthd_stop TERM
