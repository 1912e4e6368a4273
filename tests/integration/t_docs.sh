#!/usr/bin/env bash
# Operator surfaces, no lab network: `make install` puts every file in
# place; the man pages render without warnings, document every config key
# with its real default, and their example validates; the unit passes
# `systemd-analyze verify`; sysusers.d and tmpfiles.d make the user and the
# modes the unit relies on, and through them healthd (user healthd, group
# bird) and BIRD (user bird) work together, healthd telling a notify socket
# READY=1, WATCHDOG=1 and STOPPING=1 and logging to a journal socket with
# SERVICE=/CHECK= fields; the bash completion completes.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

T=/tmp/healthd-docs.$$
R=$T/root
PIDS=()
cleanup() {
	local rc=$? f i
	trap - ERR
	for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do _lab_stop_pid "${PIDS[i]}"; done # healthd first
	if [ "$rc" -ne 0 ]; then
		for f in "$T"/*.log "$T"/*.err; do
			[ -s "$f" ] && { echo "--- $f" >&2; tail -n 30 "$f" >&2; }
		done
	fi
	rm -rf "$T"
}
trap 'cleanup || true' EXIT # the test's own exit status stands
trap '_lab_on_err "$LINENO"' ERR
mkdir -p "$T"
chmod 0755 "$T" # users healthd and bird traverse it below

# ---- make install ----
make -s --no-print-directory install DESTDIR="$R" PREFIX=/usr >"$T/make.log" 2>&1 ||
	fail "make install failed: $(tail -n 5 "$T/make.log")"
for f in usr/sbin/healthd usr/sbin/healthctl \
	usr/share/man/man8/healthd.8 usr/share/man/man8/healthctl.8 \
	usr/share/man/man5/healthd.yaml.5 \
	usr/lib/systemd/system/healthd.service usr/lib/systemd/system/healthd-withdraw.service \
	usr/lib/sysusers.d/healthd.conf usr/lib/tmpfiles.d/healthd.conf \
	usr/share/bash-completion/completions/healthctl \
	usr/share/doc/healthd/examples/healthd.yaml; do
	[ -f "$R/$f" ] || fail "make install did not install /$f"
done
# The unit names the binaries where PREFIX put them.
make -s --no-print-directory install DESTDIR="$T/local" PREFIX=/usr/local >>"$T/make.log" 2>&1
grep -qx 'ExecStart=/usr/local/sbin/healthd -c /etc/healthd/healthd.yaml' \
	"$T/local/usr/local/lib/systemd/system/healthd.service" ||
	fail "PREFIX=/usr/local: ExecStart does not point at /usr/local/sbin"

# ---- man pages ----
for page in "$R"/usr/share/man/man*/*; do
	out=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$page" 2>"$T/man.err")
	[ ! -s "$T/man.err" ] || fail "man --warnings $page: $(cat "$T/man.err")"
	[ "$(printf '%s\n' "$out" | wc -l)" -gt 40 ] || fail "$page renders almost empty"
done
Y5=$R/usr/share/man/man5/healthd.yaml.5

# A key is documented when a .TP entry is headed by it.
tagged=$(awk 'tp { print; tp = 0 } /^\.TP/ { tp = 1 }' "$Y5")
keys=$(grep -ohE 'CFG_(FN|STR|DUR|UINT|BOOL|NUM)\("[a-z_]+"' config/config.c config/check_keys.c |
	sed 's/.*("//; s/"$//' | sort -u)
[ "$(wc -w <<<"$keys")" -ge 30 ] || fail "found only $(wc -w <<<"$keys") keys in the key tables"
for k in $keys; do
	grep -qE "^\.BR? (.* )?$k( |$)" <<<"$tagged" || fail "healthd.yaml(5) lacks key '$k'"
done

# Every default that healthd -t -v prints for a minimal config is stated in
# one of the paragraphs of that key.
cat >"$T/min.yaml" <<'EOF'
services:
  - name: web
    prefixes: ["203.0.113.10/32"]
    checks:
      - {name: h, type: http, url: "http://127.0.0.1/"}
      - {name: t, type: tcp, host: 127.0.0.1, port: 80}
      - {name: w, type: wireguard, interface: wg0}
      - {name: d, type: dns, qname: www.example.net}
      - {name: e, type: exec, command: ["/bin/true"]}
EOF
"$R/usr/sbin/healthd" -t -v -c "$T/min.yaml" 2>/dev/null >"$T/min.out"
paragraph() { # the text of every .TP entry headed by key $1
	awk -v k="$1" '
		/^\.(TP|SH|SS|RE|RS)/ { on = 0 }
		tp { on = ($0 ~ "^\\.BR? (.* )?" k "( |$)"); tp = 0 }
		/^\.TP/ { tp = 1; next }
		on' "$Y5"
}
checked=0
while IFS= read -r line; do
	k=$(sed -E 's/^ *(- )?([a-z_]+): .*/\2/' <<<"$line")
	v=$(sed -E 's/^[^:]*: //; s/^\[(.*)\]$/\1/; s/"//g' <<<"$line")
	case $k in node|name|type|url|host|port|interface|qname|prefixes|command) continue ;; esac
	{ [ -n "$v" ] && [ "$v" != "{}" ]; } || continue
	paragraph "$k" | grep -qF -- "$v" || fail "healthd.yaml(5): the default of '$k' ($v) is not stated"
	checked=$((checked + 1))
done < <(grep -E '^ *(- )?[a-z_]+: [^ ]' "$T/min.out")
[ "$checked" -ge 25 ] || fail "compared only $checked defaults"

# The page's example is a valid config.
sed -n '/^\.SH EXAMPLE/,/^\.fi/p' "$Y5" | sed -e '/^\./d' -e 's/\\-/-/g' >"$T/example.yaml"
"$R/usr/sbin/healthd" -t -c "$T/example.yaml" 2>"$T/example.err" ||
	fail "the example in healthd.yaml(5) does not validate: $(cat "$T/example.err")"
grep -q 'type: wireguard' "$T/example.yaml"

# Every exit code in healthctl's header comment is in healthctl(8).
codes=$(sed -n '/Exit codes:/,/\*\//p' healthd/healthctl.c | grep -oE '[0-9]+ [a-z`]' | cut -d' ' -f1)
[ -n "$codes" ]
for c in $codes; do
	sed -n '/^\.SH EXIT STATUS/,/^\.SH /p' "$R/usr/share/man/man8/healthctl.8" |
		grep -qx "\.B $c" || fail "healthctl(8) lacks exit code $c"
done

# ---- the unit ----
U=$R/usr/lib/systemd/system/healthd.service
for want in 'Type=notify' 'WatchdogSec=30s' 'Restart=on-failure' 'User=healthd' \
	'SupplementaryGroups=bird' 'CapabilityBoundingSet=' 'NoNewPrivileges=yes' \
	'ProtectSystem=strict' 'PrivateTmp=yes' 'SystemCallFilter=@system-service' \
	'RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK' \
	'ExecStartPre=/usr/sbin/healthd -t -c /etc/healthd/healthd.yaml' \
	'ReadWritePaths=/run/healthd /var/lib/healthd' 'OnFailure=healthd-withdraw.service'; do
	grep -qxF -- "$want" "$U" || fail "healthd.service lacks '$want'"
done
grep -qxF 'ExecStart=/usr/sbin/healthd --withdraw-all -c /etc/healthd/healthd.yaml' \
	"$R/usr/lib/systemd/system/healthd-withdraw.service" ||
	fail "healthd-withdraw.service does not run healthd --withdraw-all"
# verify resolves the targets, the commands and the man pages in the root.
mkdir -p "$R/bin"
cp /usr/lib/systemd/system/*.target "$R/usr/lib/systemd/system/"
cp "$(type -P kill)" "$R/bin/kill"
cp "$(type -P sh)" "$R/bin/sh"
MANPATH=$R/usr/share/man systemd-analyze verify --root="$R" \
	/usr/lib/systemd/system/healthd.service \
	/usr/lib/systemd/system/healthd-withdraw.service >"$T/verify.out" 2>&1 ||
	fail "systemd-analyze verify: $(cat "$T/verify.out")"
[ ! -s "$T/verify.out" ] || fail "systemd-analyze verify warns: $(cat "$T/verify.out")"

# ---- sysusers.d and tmpfiles.d, applied to the root ----
mkdir -p "$R/etc"
cp /etc/passwd /etc/group /etc/shadow /etc/gshadow "$R/etc/"
systemd-sysusers --root="$R" >"$T/sysusers.log" 2>&1
HUID=$(awk -F: '$1 == "healthd" { print $3 }' "$R/etc/passwd")
HGID=$(awk -F: '$1 == "healthd" { print $3 }' "$R/etc/group")
BGID=$(getent group bird | cut -d: -f3)
{ [ -n "$HUID" ] && [ -n "$HGID" ]; } || fail "sysusers.d made no user healthd"
systemd-tmpfiles --root="$R" --create >"$T/tmpfiles.log" 2>&1 ||
	fail "systemd-tmpfiles: $(cat "$T/tmpfiles.log")"
[ "$(stat -c '%u:%g %a' "$R/run/healthd")" = "$HUID:$HGID 750" ]
[ "$(stat -c '%u:%g %a' "$R/var/lib/healthd")" = "$HUID:$BGID 2750" ]
INC=$R/var/lib/healthd/bird.conf
[ "$(stat -c '%u:%g %a %s' "$INC")" = "$HUID:$BGID 640 0" ]
# Debian's layout around it: /run/bird bird:bird 0775.
install -d -o bird -g bird -m 0775 "$R/run/bird"
install -d -m 0755 "$R/etc/healthd"

# ---- BIRD as user bird, healthd as user healthd + group bird ----
cat >"$T/bird.conf" <<EOF
router id 192.0.2.1;
protocol device {}
include "$INC";
EOF
bird -f -c "$T/bird.conf" -s "$R/run/bird/bird.ctl" -u bird -g bird >"$T/bird.log" 2>&1 &
PIDS+=($!)
wait_for 10 "BIRD's control socket" test -S "$R/run/bird/bird.ctl"
[ "$(stat -c '%U:%G %a' "$R/run/bird/bird.ctl")" = "bird:bird 660" ]

# Stand-ins for systemd's notify socket and journald's socket.
listen_dgram() { # PATH LOGFILE: one datagram per line, fields joined by '|'
	python3 -c '
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1]); os.chmod(sys.argv[1], 0o666)
with open(sys.argv[2], "ab", buffering=0) as f:
    while True:
        f.write(s.recv(65536).rstrip(b"\n").replace(b"\n", b"|") + b"\n")
' "$1" "$2" &
	PIDS+=($!)
	wait_for 5 "listener on $1" test -S "$1"
}
mkdir -m 0755 "$T/journal"
: >"$T/notify.log"
: >"$T/journal.log"
listen_dgram "$T/notify.sock" "$T/notify.log"
listen_dgram "$T/journal/socket" "$T/journal.log"

install -m 0640 -o root -g "$HGID" /dev/stdin "$R/etc/healthd/healthd.yaml" <<EOF
node: docs
bird:
  socket: $R/run/bird/bird.ctl
  include: $INC
  reconcile: 1s
control:
  socket: $R/run/healthd/healthd.sock
state_dir: $R/var/lib/healthd
services:
  - name: web
    prefixes: ["203.0.113.10/32"]
    checks:
      - name: port
        type: tcp
        host: 127.0.0.1
        port: 9
        interval: 100ms
        timeout: 100ms
EOF
# stderr is the journal when JOURNAL_STREAM names it; journald's socket is
# bound over /run/systemd/journal in a mount namespace of healthd's own.
: >"$T/healthd.err"
JS=$(stat -c '%d:%i' "$T/healthd.err")
# shellcheck disable=SC2016 # the script gets its values as arguments
unshare -m sh -c '
	mount -t tmpfs none /run/systemd && mkdir /run/systemd/journal &&
	mount --bind "$1" /run/systemd/journal && cd / && umask 027 &&
	exec setpriv --reuid="$2" --regid="$3" --groups="$3,$4" env -i \
		NOTIFY_SOCKET="$5" WATCHDOG_USEC=300000 JOURNAL_STREAM="$6" \
		INVOCATION_ID=0123456789abcdef0123456789abcdef "$7" -c "$8"' \
	sh "$T/journal" "$HUID" "$HGID" "$BGID" "$T/notify.sock" "$JS" \
	"$R/usr/sbin/healthd" "$R/etc/healthd/healthd.yaml" 2>>"$T/healthd.err" &
HD=$!
PIDS+=("$HD")

wait_for 10 "READY=1 on the notify socket" grep -q '^READY=1' "$T/notify.log"
watchdogs() { [ "$(grep -c '^WATCHDOG=1$' "$T/notify.log")" -ge "$1" ]; }
wait_for 5 "WATCHDOG=1 fed (WATCHDOG_USEC=300ms)" watchdogs 3
# BIRD (user bird) read what healthd (user healthd) renamed into place.
wait_for 5 "healthd_web_v4 in BIRD" sh -c "birdc -s '$R/run/bird/bird.ctl' show protocols | grep -q '^healthd_web_v4 '"
[ "$(stat -c '%u:%g %a' "$INC")" = "$HUID:$BGID 640" ] ||
	fail "include file is $(stat -c '%u:%g %a' "$INC"), want $HUID:$BGID 640"
grep -q 'healthd_web_v4' "$INC"
[ "$(find "$R/var/lib/healthd" -mindepth 1 ! -name bird.conf.lock | wc -l)" -eq 1 ] ||
	fail "temporary files left beside the include"
# the locks of healthd(8) ONE INSTANCE, writable by user healthd where the unit lets it write
grep -qxE '[0-9]+' "$R/var/lib/healthd/bird.conf.lock" || fail "no pid in the include file's lock"
grep -qxE '[0-9]+' "$R/run/healthd/healthd.sock.lock" || fail "no pid in the control socket's lock"
[ "$(stat -c '%u %a' "$R/run/healthd/healthd.sock")" = "$HUID 660" ]
"$R/usr/sbin/healthctl" -s "$R/run/healthd/healthd.sock" status --json | grep -q '"name": "web"'

# The journal: priority and fields, SERVICE= and CHECK= only where they apply.
# entry MESSAGE_ERE FIELD... — a datagram whose message matches and that has
# each FIELD=VALUE given (!FIELD: lacks that field).
entry() {
	local msg=$1 line f ok
	shift
	while IFS= read -r line; do
		ok=1
		for f in "$@"; do
			case $f in
			!*) grep -qE "(^|\|)${f#!}=" <<<"$line" && ok= ;;
			*) grep -qE "(^|\|)$f(\||$)" <<<"$line" || ok= ;;
			esac
		done
		[ -z "$ok" ] || return 0
	done < <(grep -E "(^|\|)MESSAGE=$msg" "$T/journal.log")
	return 1
}
wait_for 5 "the check's fall in the journal" entry \
	'check port: [a-z]+ -> down' PRIORITY=4 SERVICE=web CHECK=port SYSLOG_IDENTIFIER=healthd
entry 'service web: ' SERVICE=web '!CHECK'
entry 'healthd .* started' PRIORITY=5 '!SERVICE' '!CHECK' '!CODE_FILE'
[ ! -s "$T/healthd.err" ] || fail "healthd wrote to stderr while the journal listened: $(head -3 "$T/healthd.err")"

kill -TERM "$HD"
wait_for 5 "STOPPING=1" grep -q '^STOPPING=1' "$T/notify.log"
rc=0; wait "$HD" || rc=$?
[ "$rc" -eq 0 ] || fail "healthd exited $rc after SIGTERM"

# JOURNAL_STREAM inherited by a process whose stderr is elsewhere: plain lines.
JOURNAL_STREAM=$JS INVOCATION_ID=x "$R/usr/sbin/healthd" -c "$T/nonexistent.yaml" 2>"$T/plain.err" || true
grep -q 'error: .*nonexistent.yaml' "$T/plain.err" || fail "no plain error line: $(cat "$T/plain.err")"

# ---- bash completion ----
bash -n "$R/usr/share/bash-completion/completions/healthctl"
complete_words() { # prints COMPREPLY for the words given (the last is the one completed)
	PATH=$R/usr/sbin:$PATH bash -c '
		. "$1"; shift
		COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); COMPREPLY=()
		_healthctl; echo "${COMPREPLY[*]}"' \
		sh "$R/usr/share/bash-completion/completions/healthctl" "$@"
}
cfg=$R/usr/share/doc/healthd/examples/healthd.yaml
[ "$(complete_words healthctl '')" = "status drain undrain check reload version import" ]
[ "$(complete_words healthctl import '')" = "anycast-healthchecker exabgp-healthcheck" ]
[ "$(complete_words healthctl import ex)" = "exabgp-healthcheck" ]
[ "$(complete_words healthctl un)" = "undrain" ]
[ "$(complete_words healthctl -)" = "-c -s -T -h" ]
[ "$(complete_words healthctl -T 2s st)" = "status" ]
[ "$(complete_words healthctl status --)" = "--json --watch" ]
[ "$(complete_words healthctl -c "$cfg" drain '')" = "web" ]
[ "$(complete_words healthctl -c "$cfg" drain web '')" = "--for --reason" ]
[ "$(complete_words healthctl -c "$cfg" drain -)" = "--all --for --reason" ]
[ "$(complete_words healthctl -c "$cfg" drain --reason x web '')" = "--for" ]
[ "$(complete_words healthctl -c "$cfg" undrain --all '')" = "--reason" ]
[ "$(complete_words healthctl -c "$cfg" check web/h)" = "web/http web/https" ]
[ "$(complete_words healthctl -c "$R/etc/healthd/healthd.yaml" undrain '')" = "web" ]
log "docs: pages, unit, sysusers/tmpfiles modes, notify, journal and completion checked"
