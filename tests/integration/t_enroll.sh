#!/usr/bin/env bash
# A bare node joins the mesh by itself. The four-region lab
# (meshlab.sh) comes up with ord1 bare: a namespace with its link to its
# transit, and nothing of the mesh on it (no key, no files, no daemon).
# meshd runs on the admin host over the lab's inventory, HTTPS with a
# throwaway certificate; a stand-in for the provider's metadata service
# answers on 192.0.2.254 inside ord1 (the real one cannot exist here).
#
#   1. A forged X-Forwarded-For (ord1's tunnel address) gets nothing.
#   2. `meshctl token create ord1`, then `meshctl cloud-init` renders the
#      user-data; its bootstrap script runs in ord1's namespace against
#      meshd: key, metadata, enrol, fetch, verify, validate, install, and
#      start (the lab's stand-in for systemctl starts the daemons).
#   3. The other nodes take ord1's key from meshd (`meshctl apply
#      --enrolled`); ord1's iBGP session comes up over WireGuard, its
#      anycast route appears at the reflector and at its transit, and
#      ORD's user is answered by ord1. Measured: bootstrap start -> route
#      at the transit.
#   4. The bootstrap run again on a fresh machine with the same token is
#      refused (already redeemed); an expired token is refused.
set -euo pipefail
ML_BARE=ord1
. "$(dirname "$0")/meshlab.sh"

command -v openssl >/dev/null || fail "openssl is missing: scripts/deps.sh test installs it"
ml_up
ml_meshd_up
ml_metadata_up ord1
R=$(ml_root ord1)
NS=$(ml_ns ord1)
export MESHD_ADMIN_SOCKET=$ML_MESHD_ADMIN
in_ord1() { ip netns exec "$NS" "$@"; }
api() { in_ord1 curl -s -m 5 -k --pinnedpubkey "$ML_MESHD_PIN" -o "$ML_DIR/body" -w '%{http_code}' "$@"; }

# 1. a header is not an identity
[ "$(api -H "X-Forwarded-For: ${ML_INV[ord1.tunnel_ipv4]}" "$ML_MESHD_URL/api/v1/nodes/ord1/config")" = 401 ] ||
	fail "a forged X-Forwarded-For got ord1's config: $(cat "$ML_DIR/body")"
[ "$(api -H "X-Forwarded-For: ${ML_INV[lax1.tunnel_ipv4]}" "$ML_MESHD_URL/api/v1/nodes/lax1/wireguard")" = 401 ] ||
	fail "a forged X-Forwarded-For got lax1's peers"
[ "$(api -d "{\"external_ip\":\"${ML_INV[ord1.public_ipv4]}\"}" "$ML_MESHD_URL/api/v1/nodes/discover")" = 200 ] ||
	fail "discover: $(cat "$ML_DIR/body")"
grep -q '"enrolled":false' "$ML_DIR/body" || fail "ord1 is enrolled before it enrolled: $(cat "$ML_DIR/body")"

# 2. the user-data, and its bootstrap run on the bare node
TOKEN=$("$MESHCTL_BIN" token create ord1 --ttl 10m 2>/dev/null)
"$MESHCTL_BIN" cloud-init -c "$ML_DIR/mesh.yaml" ord1 --token "$TOKEN" --api "$ML_MESHD_URL" \
	--pin "$ML_MESHD_PIN" --metadata "http://$ML_METADATA/v1.json" >"$ML_DIR/ord1.user-data"
# what cloud-init would write: the script and the token file
python3 - "$ML_DIR/ord1.user-data" "$ML_DIR/bootstrap" <<-'EOF'
	import os, sys, yaml
	d = yaml.safe_load(open(sys.argv[1]))
	os.makedirs(sys.argv[2], mode=0o700, exist_ok=True)
	for f in d["write_files"]:
	    name = os.path.join(sys.argv[2], os.path.basename(f["path"]))
	    with open(name, "w") as out:
	        out.write(f["content"])
	    os.chmod(name, int(str(f.get("permissions", "0600")), 8))
EOF
BOOT=$ML_DIR/bootstrap/mesh-bootstrap
[ -x "$BOOT" ] || fail "the user-data holds no executable mesh-bootstrap: $(ls "$ML_DIR/bootstrap")"
TOKFILE=$(ls "$ML_DIR"/bootstrap/*token* | head -n 1)
grep -qxF "$TOKEN" "$TOKFILE" || fail "the user-data's token file does not hold the token"
boot() { # ROOT TOKEN-FILE LOG
	ip netns exec "$NS" env PATH="$HEALTHD_BUILD:$PATH" MESHCTL_HEALTHD="$HEALTHD_BIN" \
		"$BOOT" --api "$ML_MESHD_URL" --token-file "$2" --pin "$ML_MESHD_PIN" \
		--metadata "http://$ML_METADATA/v1.json" --root "$1" --retry-for 20 \
		--start "$LAB_SRC/tests/integration/meshlab-start.sh" --log "$3" --tools-env
}
t0=$(now_ms)
boot "$R" "$TOKFILE" "$R/var/log/mesh-bootstrap.log" >"$ML_DIR/bootstrap.out" 2>&1 &
BPID=$!
_ml_track "$BPID"
wait_for 60 "the bootstrap to reach its start step" test -s "$R/run/bootstrap.start" ||
	fail "the bootstrap stopped: $(tail -n 5 "$ML_DIR/bootstrap.out")"
t_files=$(now_ms)
ml_join ord1
echo 0 >"$R/run/bootstrap.started"
wait "$BPID" || fail "the bootstrap failed: $(tail -n 5 "$ML_DIR/bootstrap.out")"
_ml_untrack "$BPID"
sed 's/^/  bootstrap: /' "$R/var/log/mesh-bootstrap.log"
for s in key metadata enroll fetch verify validate install start; do
	grep -q "$s" "$R/var/log/mesh-bootstrap.log" || fail "the bootstrap log does not show step $s"
done
! grep -qF "$TOKEN" "$R/var/log/mesh-bootstrap.log" "$ML_DIR/bootstrap.out" || fail "the token is in the bootstrap's log"
KEYF=$R/etc/wireguard/${ML_INV[ord1.tunnel_interface]}.key
[ "$(stat -c %a "$KEYF")" = 600 ] || fail "ord1's private key is mode $(stat -c %a "$KEYF")"
! grep -qrF "$(cat "$KEYF")" "$ML_DIR/meshd" || fail "ord1's private key reached meshd"
log "measured: bare ord1: bootstrap start -> files installed and checked in $((t_files - t0)) ms"

# 3. the mesh takes ord1 in: its peers learn its key from meshd
for n in lax1 ewr1 mia1; do
	out=$(_ml_wgns "$n" env MESHD_ADMIN_SOCKET="$ML_MESHD_ADMIN" "$MESHCTL_BIN" apply -c "$ML_DIR/mesh.yaml" \
		--node "$n" --enrolled --timeout 30 --wait 15 2>&1) || fail "apply --enrolled on $n: $out"
done
wait_for 40 "ord1's iBGP session to lax1 over WireGuard" ml_bgp_established ord1 'ibgp_lax1_*'
wait_for 20 "ord1's route at the reflector" eval 'ml_announcers lax1 | grep -qx ord1'
wait_for 20 "ORD's transit to prefer ord1" ml_transit_prefers_node ord
t_route=$(now_ms)
ml_wait_answer ord 20 ord1 || fail "ORD's user is not answered by ord1"
log "measured: bare ord1: bootstrap start -> its anycast route preferred at its transit in $((t_route - t0)) ms (peers' apply included)"
wait_for 20 "the whole mesh to converge with ord1" ml_converged

# 4. refusals: the same token again, on a fresh machine; an expired token
mkdir -p "$ML_DIR/again/run" "$ML_DIR/again/var/log"
printf '%s\n' "$TOKEN" >"$ML_DIR/again.token"
chmod 600 "$ML_DIR/again.token"
if boot "$ML_DIR/again" "$ML_DIR/again.token" "$ML_DIR/again/var/log/b.log" >"$ML_DIR/again.out" 2>&1; then
	fail "a second run with the same token enrolled"
fi
grep -q 'step enroll failed' "$ML_DIR/again.out" || fail "the second run did not fail at enroll: $(tail -n 3 "$ML_DIR/again.out")"
grep -q 'already redeemed' "$ML_DIR/again.out" || fail "the second run's reason: $(tail -n 3 "$ML_DIR/again.out")"
OLD=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
now=$(date +%s)
sqlite3 "$ML_DIR/meshd/state/meshd.db" "INSERT INTO tokens(hash,node,created_at,expires_at) VALUES('$(printf %s "$OLD" | sha256sum | cut -d' ' -f1)','ord1',$((now - 7200)),$((now - 3600)));"
rm -rf "$ML_DIR/again"
mkdir -p "$ML_DIR/again/run" "$ML_DIR/again/var/log"
printf '%s\n' "$OLD" >"$ML_DIR/again.token"
if boot "$ML_DIR/again" "$ML_DIR/again.token" "$ML_DIR/again/var/log/b.log" >"$ML_DIR/again.out" 2>&1; then
	fail "an expired token enrolled"
fi
grep -q 'token refused: expired' "$ML_DIR/again.out" || fail "the expired token's reason: $(tail -n 3 "$ML_DIR/again.out")"
[ ! -e "$ML_DIR/again/etc/bird/bird.conf" ] || fail "a refused bootstrap installed files"
log "PASS"
