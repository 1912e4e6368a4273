#!/usr/bin/env bash
# healthctl import on the unit fixtures (tests/unit/fixtures/import): the
# real binary, its exit codes and its errors; the outputs that hold only
# keys this healthd knows (http checks) pass `healthd -t`; the full
# outputs (exec and dns checks, on_change hooks) are shown as note: lines.
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

# ---- the full outputs through healthd -t, once it knows their keys ----
# exec and dns checks and on_change come with their own changes; until this
# healthd accepts them, say so instead of failing.
knows() { # knows YAML_LINES...: healthd -t takes a service with these check keys
	printf 'services:\n  - name: probe\n    prefixes: ["192.0.2.1/32"]\n%s\n' "$1" >"$T/probe.yaml"
	"$B/healthd" -t -c "$T/probe.yaml" >/dev/null 2>&1
}
exec_ok=0 dns_ok=0
knows '    on_change: ["/bin/true"]
    checks:
      - {name: e, type: exec, command: ["/bin/true"]}' && exec_ok=1
knows '    checks:
      - {name: d, type: dns, name: example.net, qtype: A, server: "127.0.0.1:53"}' && dns_ok=1
for y in ahc exabgp-exec exabgp-config; do
	need_dns=0
	grep -q 'type: dns' "$T/$y.yaml" && need_dns=1
	if [ "$exec_ok" -eq 1 ] && { [ "$need_dns" -eq 0 ] || [ "$dns_ok" -eq 1 ]; }; then
		"$B/healthd" -t -c "$T/$y.yaml" 2>"$T/$y.err" ||
			fail "healthd -t refused the import $y: $(grep -v warning "$T/$y.err" | head -n 3)"
	else
		echo "note: $y: healthd -t skipped: this healthd has no exec$([ "$need_dns" -eq 1 ] && echo '/dns') checks yet"
	fi
done

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
