#!/usr/bin/env bash
# healthd -t / -t -v on good and broken configs (no namespaces needed).
set -euo pipefail
cd "$(dirname "$0")/../.."
B=${HEALTHD_BUILD:-build/std}
T=$(mktemp -d /tmp/healthd-cli.$$.XXXX)
trap 'rm -rf "$T"' EXIT

$B/healthd -t -c config/examples/healthd.yaml 2>"$T/err"
grep -q 'configuration OK' "$T/err"

# -t -v prints the normalised config, which parses back to itself
$B/healthd -t -v -c config/examples/healthd.yaml > "$T/norm.yaml" 2>/dev/null
$B/healthd -t -v -c "$T/norm.yaml" > "$T/norm2.yaml" 2>/dev/null
cmp "$T/norm.yaml" "$T/norm2.yaml"

# -t -v shows no secret: a URL's password and redact_headers values are ***
cat >"$T/secret.yaml" <<'EOF'
services:
  - name: web
    prefixes: ["203.0.113.10/32"]
    checks:
      - name: h
        type: http
        url: "http://probe:s3cr3t@127.0.0.1/"
        headers: { Authorization: "Bearer t0k3n", X-Probe: anycast }
EOF
$B/healthd -t -v -c "$T/secret.yaml" >"$T/secret.out" 2>/dev/null
grep -qF 'url: "http://probe:***@127.0.0.1/"' "$T/secret.out"
grep -qF '"Authorization": "***"' "$T/secret.out"
grep -qF '"X-Probe": "anycast"' "$T/secret.out"
if grep -E 's3cr3t|t0k3n' "$T/secret.out" >&2; then exit 1; fi

# a broken config: exit 1, FILE:LINE:COL and the key
sed 's/timeout: 2s/timeout: 2 s/' config/examples/healthd.yaml > "$T/broken.yaml"
rc=0; $B/healthd -t -c "$T/broken.yaml" 2>"$T/err" || rc=$?
[ $rc -eq 1 ] || { echo "exit $rc" >&2; exit 1; }
grep -Eq "^healthd: $T/broken.yaml:[0-9]+:[0-9]+: bird.timeout: " "$T/err" || { cat "$T/err" >&2; exit 1; }

# the same config refused at start: exit 1, nothing started
rc=0; timeout 5 $B/healthd -c "$T/broken.yaml" 2>"$T/err" || rc=$?
[ $rc -eq 1 ]
grep -q "bird.timeout" "$T/err"

# a missing file names the file
rc=0; $B/healthd -t -c "$T/nope.yaml" 2>"$T/err" || rc=$?
[ $rc -eq 1 ] && grep -q "$T/nope.yaml" "$T/err"

# usage errors exit 2
rc=0; $B/healthd -x 2>/dev/null || rc=$?
[ $rc -eq 2 ]
$B/healthd -V | grep -q '^healthd '
