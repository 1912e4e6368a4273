#!/usr/bin/env bash
# contrib/vultr/vultr-deploy against a fake of the Vultr v2 API on
# loopback (tests/integration/fakevultr.py; the real API cannot be reached
# here): --dry-run makes no call and masks the key; a create sends the
# user-data (base64) with the bearer key from the environment, and --wait
# prints the address once active; the API's refusal and a wrong key come
# back in its words; no key or root password is ever printed.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

D=/tmp/healthd-vultr.$$
mkdir -p "$D"
FAKE_PID=
cleanup() {
	[ -z "$FAKE_PID" ] || _lab_stop_pid "$FAKE_PID"
	rm -rf "$D"
}
trap cleanup EXIT
DEPLOY=$LAB_SRC/contrib/vultr/vultr-deploy
KEY=test-key-$$-$RANDOM
printf '#cloud-config\nruncmd: [echo hello]\n' >"$D/ud"

start_fake() { # [--fail-create MSG]
	[ -z "$FAKE_PID" ] || _lab_stop_pid "$FAKE_PID"
	: >"$D/calls"
	python3 "$LAB_SRC/tests/integration/fakevultr.py" --key "$KEY" --log "$D/calls" "$@" >"$D/port" 2>"$D/fake.err" &
	FAKE_PID=$!
	wait_for 5 "the fake API to listen" test -s "$D/port"
	API=http://127.0.0.1:$(cat "$D/port")
}
start_fake
args=(--region ord --plan vc2-1c-1gb --os-id 2136 --label ord2 --user-data "$D/ud" --api "$API")

# dry run: the calls, no request, the key masked
out=$(VULTR_API_KEY=$KEY "$DEPLOY" "${args[@]}" --wait --dry-run)
grep -q '^POST /v2/instances$' <<<"$out" || fail "dry run does not show the POST: $out"
grep -q '^GET /v2/instances/<id>$' <<<"$out" || fail "dry run does not show the GET"
grep -q 'Bearer \*\*\*' <<<"$out" || fail "dry run does not mask the key"
! grep -qF "$KEY" <<<"$out" || fail "dry run printed the key"
[ ! -s "$D/calls" ] || fail "dry run made calls: $(cat "$D/calls")"

# no key: refused, no call
rc=0
env -u VULTR_API_KEY "$DEPLOY" "${args[@]}" 2>"$D/err" || rc=$?
[ "$rc" -eq 2 ] || fail "without VULTR_API_KEY exit $rc, want 2"
grep -q 'VULTR_API_KEY is not set' "$D/err" || fail "no clear error: $(cat "$D/err")"
[ ! -s "$D/calls" ] || fail "calls made without a key"

# create and wait
out=$(VULTR_API_KEY=$KEY "$DEPLOY" "${args[@]}" --wait 2>&1) || fail "deploy failed: $out"
grep -q '^created ord2: instance inst-1 in ord$' <<<"$out" || fail "no 'created': $out"
grep -q '^ord2 is active: public_ipv4 203.0.113.77$' <<<"$out" || fail "no address: $out"
! grep -qF "$KEY" <<<"$out" || fail "the key was printed"
! grep -q 'S3cret-root-pw' <<<"$out" || fail "the instance's root password was printed"
python3 - "$D/calls" "$D/ud" "$KEY" <<'PY' || fail "the calls are not what Vultr expects: $(cat "$D/calls")"
import base64, json, sys
calls = [json.loads(l) for l in open(sys.argv[1])]
post = calls[0]
assert post["method"] == "POST" and post["path"] == "/v2/instances", post
assert post["auth"] == "Bearer " + sys.argv[3]
b = post["body"]
assert (b["region"], b["plan"], b["os_id"], b["label"]) == ("ord", "vc2-1c-1gb", 2136, "ord2"), b
assert base64.b64decode(b["user_data"]) == open(sys.argv[2], "rb").read()
gets = [c for c in calls[1:] if c["method"] == "GET"]
assert len(gets) == 3 and all(c["path"] == "/v2/instances/inst-1" for c in gets), calls
PY
echo "measured: create + wait through the fake: $(wc -l <"$D/calls") calls"

# a wrong key: the API's 401 in its words
rc=0
VULTR_API_KEY=wrong "$DEPLOY" "${args[@]}" 2>"$D/err" || rc=$?
[ "$rc" -eq 1 ] || fail "a wrong key exited $rc, want 1"
grep -q 'HTTP 401: Invalid API token.' "$D/err" || fail "no clear error: $(cat "$D/err")"

# the API refuses the create: its message, exit 1
start_fake --fail-create "Invalid plan chosen."
rc=0
VULTR_API_KEY=$KEY "$DEPLOY" --region ord --plan vc2-1c-1gb --os-id 2136 --label ord2 \
	--user-data "$D/ud" --api "$API" 2>"$D/err" || rc=$?
[ "$rc" -eq 1 ] || fail "a refused create exited $rc, want 1"
grep -q 'POST /v2/instances: HTTP 400: Invalid plan chosen.' "$D/err" || fail "no clear error: $(cat "$D/err")"

# user-data over Vultr's 64 KiB: refused before any call
head -c 70000 /dev/zero | tr '\0' 'x' >"$D/big"
: >"$D/calls"
rc=0
VULTR_API_KEY=$KEY "$DEPLOY" --region ord --plan p --os-id 1 --label x --user-data "$D/big" --api "$API" 2>"$D/err" || rc=$?
[ "$rc" -eq 2 ] || fail "oversized user-data exited $rc, want 2"
[ ! -s "$D/calls" ] || fail "oversized user-data was sent"
echo "vultr-deploy: dry run, create and wait, refusals: ok"
