#!/usr/bin/env bash
# Every healthctl subcommand against a running healthd, with its exit codes:
# 0 ok, 1 healthd not reachable, 2 usage, 3 refused, 4 probe failed.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

expect_rc() { # RC CMD...
	local want=$1 rc=0; shift
	"$@" >"$LAB_DIR/out" 2>"$LAB_DIR/err" || rc=$?
	[ "$rc" -eq "$want" ] || { echo "exit $rc, expected $want: $*" >&2; cat "$LAB_DIR/err" >&2; return 1; }
}

lab_up
lab_config > "$LAB_DIR/healthd.yaml"

# not running: exit 1 with a clear message
expect_rc 1 lab_healthctl status
grep -q "cannot reach healthd at $LAB_DIR/healthd.sock" "$LAB_DIR/err"
# a drain too long is refused before healthctl connects: usage (2), not
# unreachable (1), and the message names the value and the limit
expect_rc 2 "$HEALTHCTL_BIN" -s "$LAB_DIR/healthd.sock" drain web --for 18446744073709551615ms
grep -qF "healthctl: drain --for '18446744073709551615ms': too long (at most 168h)" "$LAB_DIR/err"
if grep -q "cannot reach" "$LAB_DIR/err"; then fail "healthctl tried to connect: $(cat "$LAB_DIR/err")"; fi

lab_web_start 8080
lab_healthd_start
wait_for 10 "announced" lab_upstream_has "$LAB_PREFIX4"

expect_rc 0 lab_healthctl status
grep -q '^service web *up' "$LAB_DIR/out"
grep -q 'http *http *withdraw up' "$LAB_DIR/out"
expect_rc 0 lab_healthctl status --json
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["services"][0]["checks"][0]["last"]["result"]=="ok"' "$LAB_DIR/out"
# -c CONFIG finds the socket from the config
expect_rc 0 "$HEALTHCTL_BIN" -c "$LAB_DIR/healthd.yaml" status --json
expect_rc 0 lab_healthctl version
grep -q '^healthd ' "$LAB_DIR/out"

expect_rc 0 lab_healthctl check web/http
grep -q '^web/http: ok, status 200' "$LAB_DIR/out"
expect_rc 0 lab_healthctl check http
expect_rc 3 lab_healthctl check nosuch
grep -q "no check 'nosuch'" "$LAB_DIR/err"

expect_rc 0 lab_healthctl drain web --for 1s
wait_for 3 "draining" lab_state_is draining
wait_for 5 "drain for 1s ends by itself" lab_state_is up
expect_rc 0 lab_healthctl drain web
expect_rc 0 lab_healthctl undrain web
expect_rc 3 lab_healthctl undrain nosuch
expect_rc 2 lab_healthctl drain
expect_rc 2 lab_healthctl frobnicate
expect_rc 2 lab_healthctl check $'http\nreload'   # one request, one line
grep -q "may not contain a line break" "$LAB_DIR/err"
expect_rc 2 lab_healthctl drain web --for 5x
grep -qF "drain --for '5x': not a duration" "$LAB_DIR/err"
expect_rc 2 lab_healthctl drain web --for 18446744073709551615ms
grep -qF "'18446744073709551615ms': too long (at most 168h)" "$LAB_DIR/err"
expect_rc 2 lab_healthctl drain web --for 169h
lab_state_is up
# healthd's own parser refuses the same, for clients other than healthctl
printf 'drain web 18446744073709551615ms\n' | timeout 2 python3 -c '
import socket,sys
s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(sys.stdin.buffer.read())
a=s.makefile("rb").readline()
assert a.startswith(b"400 ") and b"is too long (at most 168h)" in a, a' "$LAB_DIR/healthd.sock"
lab_state_is up

expect_rc 0 lab_healthctl reload
cp "$LAB_DIR/healthd.yaml" "$LAB_DIR/good.yaml"
echo "bogus: 1" >> "$LAB_DIR/healthd.yaml"
expect_rc 3 lab_healthctl reload
grep -Eq "healthd.yaml:[0-9]+:[0-9]+: bogus: unknown key" "$LAB_DIR/err"
cp "$LAB_DIR/good.yaml" "$LAB_DIR/healthd.yaml"

# --watch repaints until interrupted
timeout -s INT 1.5 "$HEALTHCTL_BIN" -s "$LAB_DIR/healthd.sock" status --watch 0.2 > "$LAB_DIR/watch" || true
[ "$(grep -c '^service web' "$LAB_DIR/watch")" -ge 3 ]

# a failing probe: exit 4
lab_web_stop
expect_rc 4 lab_healthctl check web/http
grep -q 'refused' "$LAB_DIR/out"

# raw protocol: junk gets a 400 with a message, the socket stays usable
printf 'frob\nstatus\n' | timeout 2 python3 -c '
import socket,sys
s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(sys.stdin.buffer.read())
f=s.makefile("rb"); a=f.readline(); b=f.readline()
assert a.startswith(b"400 ") and b"unknown command" in a, a
assert b.startswith(b"200 "), b[:40]' "$LAB_DIR/healthd.sock"
