#!/usr/bin/env bash
# healthctl import on the unit fixtures (tests/unit/fixtures/import): the
# real binary, its exit codes and its errors; every output passes
# `healthd -t` (exec, dns and http checks, on_change hooks).
# No namespaces needed.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/integration/lib.sh
B=$HEALTHD_BUILD
F=tests/unit/fixtures/import
T=$(mktemp -d /tmp/healthd-import.$$.XXXX)
trap 'rm -rf "$T"' EXIT

exabgp() { # exabgp ARGS_FILE: healthctl import on the arguments it lists
	local args
	mapfile -t args <"$1"
	"$B/healthctl" import exabgp-healthcheck "${args[@]}"
}

# ---- the outputs with http checks only: healthd -t takes them ----
"$B/healthctl" import anycast-healthchecker "$F/anycast-healthchecker/http-only" >"$T/ahc-http.yaml"
exabgp "$F/exabgp/http.args" >"$T/exabgp-http.yaml"
for y in ahc-http exabgp-http; do
	"$B/healthd" -t -c "$T/$y.yaml" 2>"$T/$y.err" ||
		fail "healthd -t refused the import $y: $(grep -v warning "$T/$y.err" | head -n 3)"
	grep -q 'configuration OK' "$T/$y.err" || fail "$y: no 'configuration OK'"
	cmp -s "$T/$y.yaml" "tests/unit/golden/import/${y/ahc/anycast-healthchecker}.yaml" ||
		fail "$y: healthctl's output differs from the unit suite's golden file"
done

# ---- the full fixtures: the text, and the same bytes as the unit suite ----
"$B/healthctl" import anycast-healthchecker "$F/anycast-healthchecker/anycast-healthchecker.conf" \
	"$F/anycast-healthchecker/conf.d" >"$T/ahc.yaml"
cmp -s "$T/ahc.yaml" tests/unit/golden/import/anycast-healthchecker.yaml ||
	fail "anycast-healthchecker: output differs from tests/unit/golden/import"
for k in 'type: http' 'type: dns' 'type: exec' 'on_change: ["/bin/sh", "-c", ' \
	'include: "/var/lib/anycast-healthchecker/anycast-prefixes.conf"' \
	'# not mapped: bird_reconfigure_cmd = '; do
	grep -qF "$k" "$T/ahc.yaml" || fail "anycast-healthchecker: no '$k' in the output"
done
exabgp "$F/exabgp/exec.args" >"$T/exabgp-exec.yaml"
exabgp "$F/exabgp/config-file.args" >"$T/exabgp-config.yaml"
grep -qF 'case \"$HEALTHD_TO\" in up) export STATE=UP;' "$T/exabgp-exec.yaml" ||
	fail "exabgp: no on_change hook"
grep -qF 'type: dns' "$T/exabgp-config.yaml" || fail "exabgp --config: the dig check is not dns"

# ---- the full outputs through healthd -t ----
# An exec check's command must exist when healthd loads the file: the
# commands the fixtures name that this machine lacks become stubs on a
# tmpfs over their directory, in a mount namespace of healthd -t's own
# (nothing on the machine changes).
missing=$(grep -ho 'command: \["/[^"]*"' "$T"/*.yaml | sed 's/^command: \["//; s/"$//' | sort -u |
	while read -r p; do [ -x "$p" ] || echo "$p"; done | paste -sd ' ' -)
for p in $missing; do
	[ -d "$(dirname "$p")" ] || fail "a fixture's command $p is in a directory this machine lacks"
done
# shellcheck disable=SC2016 # sh expands them
check_t() { # YAML
	MISSING=$missing unshare -m sh -c '
		for d in $(for p in $MISSING; do dirname "$p"; done | sort -u); do mount -t tmpfs tmpfs "$d" || exit 1; done
		for p in $MISSING; do printf "#!/bin/sh\nexit 0\n" >"$p" && chmod 755 "$p" || exit 1; done
		exec "$0" -t -c "$1"' "$B/healthd" "$1"
}
for y in ahc exabgp-exec exabgp-config; do
	check_t "$T/$y.yaml" 2>"$T/$y.err" >/dev/null ||
		fail "healthd -t refused the import $y: $(grep -v warning "$T/$y.err" | head -n 3)"
done
[ -z "$missing" ] || echo "note: healthd -t with stubs for $missing (in a mount namespace)"

# ---- errors: exit 5 and FILE:LINE; usage: exit 2 ----
rc=0
"$B/healthctl" import anycast-healthchecker "$F/errors/bad-line.conf" >/dev/null 2>"$T/err" || rc=$?
[ "$rc" -eq 5 ] || fail "a bad INI line: exit $rc, not 5"
grep -qF "$F/errors/bad-line.conf:3: " "$T/err" || fail "a bad INI line: $(cat "$T/err")"
rc=0
exabgp "$F/errors/unknown-option.args" >/dev/null 2>"$T/err" || rc=$?
[ "$rc" -eq 5 ] || fail "an unknown option: exit $rc, not 5"
grep -qF "argument 5: unknown option '--bogus'" "$T/err" || fail "an unknown option: $(cat "$T/err")"
rc=0
"$B/healthctl" import nagios x >/dev/null 2>&1 || rc=$?
[ "$rc" -eq 2 ] || fail "import of an unknown tool: exit $rc, not 2"

# the two imports, trimmed: the keys, without the comments and blank lines
show() {
	grep -vE '^ *(#|$)' "$1" | cut -c1-150 | sed "s/^/note: $2: /"
}
show "$T/ahc.yaml" anycast-healthchecker
show "$T/exabgp-config.yaml" exabgp-healthcheck
