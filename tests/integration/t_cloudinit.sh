#!/usr/bin/env bash
# meshctl cloud-init and the bootstrap it carries (mesh/bootstrap.sh), no
# lab network: the user-data passes `cloud-init schema --config-file` and
# carries the script byte for byte; the script is shellcheck-clean and
# refuses bad options; and its failure paths, each with the step's name and
# exit code and nothing installed: meshd unreachable, a wrong pin (curl
# refuses the TLS peer, the right pin passes with a self-signed
# certificate), a refused token, a sha256 that does not match, a path with
# "..", an absolute path, a path outside the directories meshctl renders
# (root/.ssh/..., etc/cron.d/...), another node's config, a symbolic link
# out of the root, a metadata value that is not bird.conf's, a missing BGP
# password, a bird.conf BIRD refuses; an enrolment whose reply was lost is
# asked for again with the same key.
# Once the password is there, a run goes through to --start without the
# token (the enrolment is kept).
#
# The HTTP side is tests/integration/cannedapi.py: a canned responder for
# the script's error paths, NOT meshd (meshd is tested on its own); what
# passes here says nothing about meshd's replies.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

T=/tmp/healthd-cloudinit.$$
API_PID=
cleanup() {
	[ -z "$API_PID" ] || _lab_stop_pid "$API_PID"
	[ -n "${CI_KEEP:-}" ] || rm -rf "$T" # CI_KEEP=1 keeps it for a look
}
trap cleanup EXIT
trap '_lab_on_err "$LINENO"' ERR
mkdir -p "$T"
MESHCTL=$HEALTHD_BUILD/meshctl
BOOT=$LAB_SRC/mesh/bootstrap.sh
[ -x "$MESHCTL" ] || fail "$MESHCTL not built (make build)"
for c in openssl wg bird nft curl python3; do
	command -v "$c" >/dev/null || fail "$c not found (scripts/deps.sh test)"
done
command -v cloud-init >/dev/null || fail "cloud-init not found (scripts/deps.sh test installs it)"

TOKEN=$(openssl rand -hex 32)
# a certificate made for this run only; the pin as meshd logs it
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
	-subj /CN=meshd.test -keyout "$T/key.pem" -out "$T/cert.pem" 2>"$T/openssl.err" ||
	fail "openssl req: $(cat "$T/openssl.err")"
PIN=$(openssl x509 -in "$T/cert.pem" -pubkey -noout | openssl pkey -pubin -outform der |
	openssl dgst -sha256 -binary | base64)
WRONG_PIN=$(head -c 32 /dev/urandom | openssl dgst -sha256 -binary | base64)

# ---- meshctl cloud-init: the user-data ----
ci() { "$MESHCTL" cloud-init -c "$LAB_SRC/config/examples/mesh.yaml" "$@"; }
ci ord1 --token "$TOKEN" --api https://meshd.example.net:8443 --pin "sha256//$PIN" >"$T/ud.yaml" 2>"$T/ci.err" ||
	fail "meshctl cloud-init: $(cat "$T/ci.err")"
head -n 1 "$T/ud.yaml" | grep -qx '#cloud-config' || fail "the user-data does not start with #cloud-config"
# Debian 12's cloud-init (22.4.2) has `cloud-init schema --config-file`
# (not `devel schema`); exit 0 and "Valid cloud-config" when it passes.
cloud-init schema --config-file "$T/ud.yaml" >"$T/schema.out" 2>&1 ||
	fail "cloud-init schema refuses the user-data: $(tr -s '\n' ' ' <"$T/schema.out")"
grep -q '^Valid cloud-config' "$T/schema.out" || fail "cloud-init schema: $(cat "$T/schema.out")"
ci ord1 --token "$TOKEN" --api https://meshd.example.net --pin "$PIN" --metadata none \
	--package-url https://pkg.example.net/healthd_1.0_amd64.deb \
	--package-sha256 "$(printf '%064d' 7)" >"$T/ud2.yaml"
cloud-init schema --config-file "$T/ud2.yaml" >"$T/schema.out" 2>&1 ||
	fail "cloud-init schema refuses the --package-url user-data: $(tr -s '\n' ' ' <"$T/schema.out")"
# --package is the contract's name of --package-url; the token from stdin
printf '%s\n' "$TOKEN" | ci ord1 --token - --api https://meshd.example.net --pin "$PIN" --metadata none \
	--package https://pkg.example.net/healthd_1.0_amd64.deb \
	--package-sha256 "$(printf '%064d' 7)" | cmp -s - "$T/ud2.yaml" ||
	fail "--package and --token - do not give the same user-data as --package-url and --token"
python3 - "$T/ud.yaml" "$T/ud2.yaml" "$BOOT" "$TOKEN" <<'PY' || fail "the user-data is not what it should be"
import sys, yaml
ud, ud2 = (yaml.safe_load(open(p)) for p in sys.argv[1:3])
script, token = open(sys.argv[3]).read(), sys.argv[4]
files = {f["path"]: f for f in ud["write_files"]}
boot = files["/usr/local/sbin/mesh-bootstrap"]
assert boot["content"] == script, "the script is not carried byte for byte"
assert boot["permissions"] == "0700" and files["/etc/healthd/mesh.token"]["permissions"] == "0600"
assert files["/etc/healthd/mesh.token"]["content"] == token + "\n"
assert open(sys.argv[1]).read().count(token) == 1, "the token is elsewhere too"
run = ud["runcmd"][-1]
assert run[0] == "/usr/local/sbin/mesh-bootstrap" and "--token-file" in run and token not in " ".join(run)
assert "healthd" in ud["packages"] and "healthd" not in ud2["packages"]
pkg = ud2["runcmd"][0]
assert pkg[:2] == ["sh", "-ec"] and "sha256sum --check" in pkg[2], pkg
assert ud2["runcmd"][1][-2:] == ["--external-ip", "198.51.100.9"], ud2["runcmd"][1]
PY
bash -n "$BOOT"
echo "measured: user-data of ord1: $(wc -c <"$T/ud.yaml") bytes (Vultr takes at most 65536)"
# refusals: unknown node, bad pin, bad URL, bad token
expect_ci_fail() { # WHAT-GREP ARGS...
	local want=$1 rc=0
	shift
	ci "$@" >"$T/ci.out" 2>"$T/ci.err" || rc=$?
	[ "$rc" -ne 0 ] || fail "meshctl cloud-init $* did not fail"
	[ ! -s "$T/ci.out" ] || fail "meshctl cloud-init $* failed but printed user-data"
	grep -q -- "$want" "$T/ci.err" || fail "meshctl cloud-init $*: no '$want' in: $(cat "$T/ci.err")"
}
expect_ci_fail "no node named 'nope'" nope --token "$TOKEN" --api https://m.example --pin "$PIN"
expect_ci_fail "is not sha256//BASE64" ord1 --token "$TOKEN" --api https://m.example --pin sha256//short
expect_ci_fail "is not https://HOST" ord1 --token "$TOKEN" --api http://m.example --pin "$PIN"
expect_ci_fail "64 lowercase hex" ord1 --token XYZ --api https://m.example --pin "$PIN"

# ---- the script: shellcheck, --help, options ----
if command -v shellcheck >/dev/null; then
	shellcheck "$BOOT" >"$T/sc.out" 2>&1 || fail "shellcheck mesh/bootstrap.sh: $(head -n 20 "$T/sc.out")"
else
	echo "note: shellcheck not installed: mesh/bootstrap.sh not linted"
fi
bash "$BOOT" --help >"$T/help.out" || fail "--help exited $?"
grep -q '^usage: mesh-bootstrap --api URL' "$T/help.out" || fail "--help prints no usage"
grep -q '13 start' "$T/help.out" || fail "--help lists no exit codes"
expect_args_fail() { # WHAT-GREP ARGS...
	local want=$1 rc=0
	shift
	bash "$BOOT" "$@" 2>"$T/args.err" || rc=$?
	[ "$rc" -eq 2 ] || fail "mesh-bootstrap $*: exit $rc, want 2 ($(cat "$T/args.err"))"
	grep -q "mesh-bootstrap: step args failed: .*$want" "$T/args.err" ||
		fail "mesh-bootstrap $*: no '$want' in: $(cat "$T/args.err")"
}
expect_args_fail "--api URL is required" --token "$TOKEN" --pin "$PIN"
expect_args_fail "--pin is required" --api https://127.0.0.1:1 --token "$TOKEN"
expect_args_fail "not the base64 of a sha256" --api https://127.0.0.1:1 --token "$TOKEN" --pin nope
expect_args_fail "plain http:// only to a loopback" --api http://192.0.2.1 --token "$TOKEN"
expect_args_fail "unknown option '--frobnicate'" --frobnicate
expect_args_fail "needs --start CMD" --api https://127.0.0.1:1 --token "$TOKEN" --pin "$PIN" --root "$T"
expect_args_fail "needs --external-ip" --api https://127.0.0.1:1 --token "$TOKEN" --pin "$PIN" --metadata none

# ---- a node's tree and the canned responder ----
subst=()
for n in lax1 ord1 ewr1 mia1; do subst+=(-e "s#@KEY_${n}@#$(wg genkey | wg pubkey)#"); done
sed -e "s#@LAB@#$T#g" "${subst[@]}" "$LAB_SRC/tests/mesh/lab.yaml.in" >"$T/mesh.yaml"
mkdir -p "$T/secrets" "$T/render" "$T/nodes"
PW=$T/secrets/transit_ord.password
(umask 077 && printf 'password "%s";\n' "$(openssl rand -hex 12)" >"$PW")
MESHCTL_HEALTHD=$HEALTHD_BUILD/healthd "$MESHCTL" render -c "$T/mesh.yaml" --node ord1 -o "$T/render" \
	>"$T/render.out" 2>&1 || fail "meshctl render: $(cat "$T/render.out")"
cat >"$T/metadata.json" <<'EOF'
{"bgp": {"ipv4": {"my-address": "198.51.100.6", "my-asn": "64496",
                  "peer-address": "198.51.100.5", "peer-asn": "64498"}},
 "hostname": "ord1", "interfaces": [{"ipv4": {"address": "198.51.100.6"}}]}
EOF
sed 's/"peer-asn": "64498"/"peer-asn": "65001"/' "$T/metadata.json" >"$T/metadata-wrong.json"

start_api() { # [cannedapi.py options]
	[ -z "$API_PID" ] || _lab_stop_pid "$API_PID"
	rm -f "$T/port" "$T/pport"
	: >"$T/api.log"
	python3 "$LAB_SRC/tests/integration/cannedapi.py" --port-file "$T/port" --plain-port-file "$T/pport" \
		--cert "$T/cert.pem" --key "$T/key.pem" --token "$TOKEN" --node ord1 --region ord \
		--interface wg-ord1 --tree "$T/render/ord1" --secret "$PW=BGP password of upstream transit_ord" \
		--metadata "$T/metadata.json" --log "$T/api.log" "$@" >"$T/api.out" 2>&1 &
	API_PID=$!
	_lab_track "$API_PID"
	wait_for 10 "the canned responder to listen" test -s "$T/port"
	API=https://127.0.0.1:$(cat "$T/port")
	MD=http://127.0.0.1:$(cat "$T/pport")/v1.json
}
start_api

# The pin at the TLS level, by curl itself (see the note at TLS= in the
# script): with --insecure the pin is still enforced; a self-signed
# certificate passes with its pin alone.
rc=0; code=$(curl -s -o /dev/null -w '%{http_code}' --insecure --pinnedpubkey "sha256//$PIN" "$API/nope") || rc=$?
[ "$code" = 404 ] || fail "the right pin with --insecure: curl exit $rc, HTTP $code (want 404 from the responder)"
rc=0; curl -s -o /dev/null --insecure --pinnedpubkey "sha256//$WRONG_PIN" "$API/nope" || rc=$?
[ "$rc" -eq 90 ] || fail "a wrong pin with --insecure: curl exit $rc, want 90 (pinned key mismatch)"
rc=0; curl -s -o /dev/null --pinnedpubkey "sha256//$PIN" "$API/nope" || rc=$?
[ "$rc" -eq 60 ] || fail "the right pin without --insecure: curl exit $rc, want 60 (self-signed)"

# boot ROOT EXIT [options] — the script with the lab's tools; its stderr in
# $T/boot.err; fails the test unless it exits EXIT.
N=0
boot() {
	local root=$1 want=$2 rc=0
	shift 2
	N=$((N + 1))
	mkdir -p "$root"
	MESHCTL_HEALTHD=$HEALTHD_BUILD/healthd bash "$BOOT" --api "$API" --pin "sha256//$PIN" \
		--metadata "$MD" --root "$root" --start "$T/start.sh" --tools-env --retry-for 1 \
		"$@" 2>"$T/boot.err" || rc=$?
	cat "$T/boot.err" >>"$T/all.err"
	[ "$rc" -eq "$want" ] || fail "run $N ($*): exit $rc, want $want: $(grep 'failed:' "$T/boot.err" || tail -n 3 "$T/boot.err")"
}
failed_step() { # STEP GREP — the run's last words name the step and the reason
	grep -q "mesh-bootstrap: step $1 failed: .*$2" "$T/boot.err" ||
		fail "run $N: no 'step $1 failed: ...$2' in: $(grep 'failed' "$T/boot.err" || tail -n 2 "$T/boot.err")"
}
# nothing of the config under ROOT: the key, the credential, the state, the log at most
nothing_installed() {
	local extra
	extra=$(cd "$1" && find . -type f ! -path ./etc/wireguard/mesh-bootstrap.key \
		! -path ./etc/healthd/mesh.credential ! -path ./var/lib/mesh-bootstrap/state \
		! -path ./var/lib/mesh-bootstrap/lock ! -path ./var/log/mesh-bootstrap.log)
	[ -z "$extra" ] || fail "run $N left files under $1: $extra"
	[ -z "$(find "$1/var/lib/mesh-bootstrap" -mindepth 1 -type d)" ] || fail "run $N left its work directory"
}
cat >"$T/start.sh" <<'EOF'
#!/bin/sh
# the lab's --start stand-in: what it was given
printf '%s\n' "$*" "$MESH_NODE $MESH_REGION $MESH_INTERFACE $MESH_KEY_FILE" >"$1/started"
EOF
chmod +x "$T/start.sh"
printf '%s\n' "$TOKEN" >"$T/token"

# meshd unreachable: a port nobody listens on
FREE=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$T/nodes/r-down"
t0=$(now_ms)
rc=0
MESHCTL_HEALTHD=$HEALTHD_BUILD/healthd bash "$BOOT" --api "https://127.0.0.1:$FREE" --pin "$PIN" \
	--metadata "$MD" --root "$T/nodes/r-down" --start "$T/start.sh" --tools-env --retry-for 2 \
	--token "$TOKEN" 2>"$T/boot.err" || rc=$?
cat "$T/boot.err" >>"$T/all.err"
[ "$rc" -eq 6 ] || fail "unreachable meshd: exit $rc, want 6 (enroll)"
failed_step enroll "cannot reach https://127.0.0.1:$FREE"
grep -q 'again in 1s' "$T/boot.err" || fail "unreachable meshd was not tried again"
echo "measured: unreachable meshd, --retry-for 2: step enroll failed after $(($(now_ms) - t0)) ms"

# a wrong pin: refused before anything is sent
boot "$T/nodes/r-pin" 6 --token-file "$T/token" --pin "sha256//$WRONG_PIN"
failed_step enroll "not the one pinned"
! grep -q enroll "$T/api.log" || fail "a request reached the responder through a wrong pin"
# a refused token: meshd's words; not tried again
boot "$T/nodes/r-token" 6 --token "$(openssl rand -hex 32)"
failed_step enroll "HTTP 403: token refused: unknown"
[ "$(grep -c '"token_ok": false' "$T/api.log")" -eq 1 ] || fail "a 403 was tried again"
[ -s "$T/token" ] || fail "a failed enrolment removed the token file"

# verify: a sha256 that does not match, "..", an absolute path, a link out
start_api --mutate sha256
boot "$T/nodes/r-sha" 8 --token-file "$T/token"
failed_step verify "the sha256 of its content is [0-9a-f]\{64\}, the reply says"
[ ! -e "$T/token" ] || fail "the token file was kept after the token was redeemed"
nothing_installed "$T/nodes/r-sha"
cp "$T/nodes/r-sha/var/log/mesh-bootstrap.log" "$T/sha.log"
start_api --mutate dotdot
boot "$T/nodes/r-dotdot" 8 --token "$TOKEN"
failed_step verify 'etc/../../escaped has a "." or ".." component'
nothing_installed "$T/nodes/r-dotdot"
if [ -e "$T/nodes/escaped" ] || [ -e "$T/escaped" ]; then fail "a file escaped the root"; fi
start_api --mutate absolute
boot "$T/nodes/r-abs" 8 --token "$TOKEN"
failed_step verify "/tmp/escaped is absolute"
nothing_installed "$T/nodes/r-abs"
# a relative path inside the root, but none meshctl renders: refused by name
start_api --mutate outside
boot "$T/nodes/r-ssh" 8 --token "$TOKEN"
failed_step verify "files\[[0-9]*\].path root/.ssh/authorized_keys is not below etc/bird/, etc/wireguard/"
nothing_installed "$T/nodes/r-ssh"
start_api --mutate cron
boot "$T/nodes/r-cron" 8 --token "$TOKEN"
failed_step verify "files\[[0-9]*\].path etc/cron.d/x is not below etc/bird/"
nothing_installed "$T/nodes/r-cron"
# another node's config, or an enrolment that points at another node's
start_api --mutate othernode
boot "$T/nodes/r-other" 8 --token "$TOKEN"
failed_step verify "the config is for node lax1, this node enrolled as ord1"
nothing_installed "$T/nodes/r-other"
start_api --mutate enrollpath
boot "$T/nodes/r-epath" 6 --token "$TOKEN"
failed_step enroll "the reply enrols node ord1 but points at config /api/v1/nodes/lax1/config"
start_api
mkdir -p "$T/outside" "$T/nodes/r-link/etc"
ln -s "$T/outside" "$T/nodes/r-link/etc/bird"
boot "$T/nodes/r-link" 8 --token "$TOKEN"
failed_step verify "etc/bird/bird.conf: its directory resolves to $T/outside, outside the root"
[ -z "$(ls -A "$T/outside")" ] || fail "a file went through the link"

# the metadata's upstream is not bird.conf's
start_api --metadata "$T/metadata-wrong.json"
boot "$T/nodes/r-md" 9 --token "$TOKEN"
failed_step metadata-check "neighbour 198.51.100.5 AS 64498, the metadata's bgp.ipv4 says peer-address 198.51.100.5 peer-asn 65001"
nothing_installed "$T/nodes/r-md"

# a bird.conf BIRD refuses
mkdir -p "$T/broken"
cp -a "$T/render/ord1" "$T/broken/ord1"
printf 'protocol nonsense {\n' >>"$T/broken/ord1/etc/bird/bird.conf"
start_api --tree "$T/broken/ord1"
boot "$T/nodes/r-bird" 11 --token "$TOKEN"
failed_step validate "etc/bird/bird.conf: bird -p refused it"
nothing_installed "$T/nodes/r-bird"

# the BGP password missing: told to put it there; then the same run again
start_api
mv "$PW" "$PW.away"
R=$T/nodes/ord1
printf '%s\n' "$TOKEN" >"$T/token"
boot "$R" 10 --token-file "$T/token"
failed_step secrets "$PW (BGP password of upstream transit_ord).*never travels in user-data"
nothing_installed "$R"
[ ! -e "$T/token" ] || fail "the redeemed token file was kept"
mv "$PW.away" "$PW"
boot "$R" 0 --token-file "$T/token"
grep -q 'enroll: already enrolled as ord1 with this key' "$T/boot.err" || fail "the second run enrolled again"
[ "$(grep -c '"token_ok": true' "$T/api.log")" -eq 1 ] || fail "the token was sent twice"
grep -q "^$R ord1\$" "$R/started" || fail "--start got: $(head -n 1 "$R/started")"
grep -qx "ord1 ord wg-ord1 $R/etc/wireguard/wg-ord1.key" "$R/started" || fail "--start's env: $(tail -n 1 "$R/started")"
(cd "$T/render/ord1" && find . -type f) | while read -r f; do
	cmp -s "$T/render/ord1/$f" "$R/$f" || fail "$R/$f is not the file the config carries"
	[ "$(stat -c %a "$R/$f")" = 644 ] || fail "$R/$f has mode $(stat -c %a "$R/$f")"
done
[ "$(stat -c %a "$R/etc/wireguard/wg-ord1.key")" = 600 ] || fail "the key is not 0600"
[ ! -e "$R/etc/wireguard/mesh-bootstrap.key" ] || fail "the staging key was left"
[ "$(stat -c %a "$R/etc/healthd/mesh.credential")" = 600 ] || fail "the credential is not 0600"
[ "$(stat -c %a "$R/etc/healthd")" = 755 ] || fail "etc/healthd is $(stat -c %a "$R/etc/healthd"): healthd must read it"
[ -e "$R/var/lib/healthd/bird.conf" ] || fail "no empty healthd include for bird.conf"
pub=$(wg pubkey <"$R/etc/wireguard/wg-ord1.key")
grep -q "\"public_key\": \"$pub\"" "$T/api.log" || fail "the enrolled public key is not the node's"
grep -q '"external_ip": "198.51.100.6"' "$T/api.log" || fail "the metadata's address was not sent"
nfiles=$(cd "$T/render/ord1" && find . -type f | wc -l)
grep -q "done: ord1 is enrolled, its $nfiles files installed and started" "$R/var/log/mesh-bootstrap.log" ||
	fail "the log has no done line"

# without metadata: the address given, no comparison with bird.conf
boot "$T/nodes/r-nomd" 0 --token "$TOKEN" --metadata none --external-ip 198.51.100.6
grep -q 'metadata-check: skipped: no metadata was read' "$T/boot.err" || fail "--metadata none: the check was not skipped"
grep -q '"external_ip": "198.51.100.6"' <(tail -n 2 "$T/api.log") || fail "--external-ip was not sent"

# the enrolment's reply lost after meshd committed it: asked for again with
# the same key, a retry; the log says so
start_api --lose-reply
boot "$T/nodes/r-lost" 0 --token "$TOKEN" --retry-for 10
grep -q 'enroll, attempt 1: .*again in 1s' "$T/boot.err" || fail "the lost reply was not tried again: $(grep enroll "$T/boot.err")"
grep -q 'enroll: enrolled (retry) as ord1 (region ord)' "$T/nodes/r-lost/var/log/mesh-bootstrap.log" ||
	fail "the log does not say the enrolment was a retry: $(grep enroll "$T/boot.err")"
python3 - "$T/api.log" <<'PY' || fail "the retry did not send the same key"
import json, sys
keys = [d["public_key"] for d in map(json.loads, open(sys.argv[1])) if d.get("token_ok")]
assert len(keys) == 2 and keys[0] == keys[1], keys
PY
grep -q "done: ord1 is enrolled" "$T/nodes/r-lost/var/log/mesh-bootstrap.log" || fail "the retried run did not finish"
# a refused repeat (another key, or too late) says what to do
start_api --lose-reply
boot "$T/nodes/r-lost2" 6 --token "$TOKEN" --retry-for 0
failed_step enroll "cannot reach"
rm -f "$T/nodes/r-lost2/etc/wireguard/mesh-bootstrap.key"
boot "$T/nodes/r-lost2" 6 --token "$TOKEN"
failed_step enroll "already redeemed; if an earlier attempt's reply was lost, meshd takes this key again only within 10 minutes"

# no secret in any log or on stderr: neither the token nor the credential
cred=$(cat "$R/etc/healthd/mesh.credential")
for f in "$T/all.err" "$R/var/log/mesh-bootstrap.log" "$T/sha.log"; do
	! grep -qF "$TOKEN" "$f" || fail "the token is in $f"
	! grep -qF "$cred" "$f" || fail "the credential is in $f"
	! grep -qF "$(cat "$R/etc/wireguard/wg-ord1.key")" "$f" || fail "the private key is in $f"
done
echo "cloud-init: user-data, schema, the bootstrap's refusals and $N runs through the canned responder: ok"
