#!/usr/bin/env bash
# meshd on its own, in a namespace of its own, read by a real HTTP client
# (curl): every endpoint's shape, HTTPS with the certificate pinned, the
# refusals (no credential, another node's, a forged X-Forwarded-For, a
# spent token, an expired token, a wrong address, bad JSON, a body over
# the cap, an unknown path, a wrong method), the per-source rate limit,
# the config reply's bytes against `meshctl render`'s, a reload with a
# broken inventory, no secret in the log or the database, and kill -9 of
# meshd in the middle of enrolments (tests/integration/meshd_kill.py; its
# seed is in its measured line, MESHD_KILL_SEED=N repeats a run).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

command -v sqlite3 >/dev/null || fail "sqlite3 (the CLI) is missing: scripts/deps.sh test installs it"
D=/tmp/healthd-meshd.$$
NS=hd$$md
MESHD=$HEALTHD_BUILD/meshd
MESHCTL=$HEALTHD_BUILD/meshctl
MESHD_PID=
mkdir -p "$D"
cleanup() {
	[ -z "$MESHD_PID" ] || _lab_stop_pid "$MESHD_PID"
	# anything else still inside the namespace (a kill -9 round cut short)
	for p in $(ip netns pids "$NS" 2>/dev/null); do kill -KILL "$p" 2>/dev/null || true; done
	ip netns del "$NS" 2>/dev/null || true
	[ -n "${KEEP:-}" ] || rm -rf "$D"
}
trap cleanup EXIT
trap '_lab_on_err $LINENO' ERR
in_ns() { ip netns exec "$NS" "$@"; }

ip netns add "$NS"
in_ns ip link set lo up
# the public address meshd answers on, and the tunnel addresses of lax1
# (where meshd also listens in plain HTTP) and of ord1
for a in 198.51.100.2 198.51.100.6 198.51.100.14 198.51.100.99 192.0.2.129 192.0.2.130; do
	in_ns ip addr add "$a/32" dev lo
done
# lax1's IPv6 tunnel address (a plain listener) and 24 hosts of one /64
in_ns ip addr add 2001:db8:10::1/128 dev lo nodad
for i in $(seq 256 279); do in_ns ip addr add "2001:db8:10:0:1::$(printf %x "$i")/128" dev lo nodad; done

# the lab's inventory: lax1, ewr1, mia1 with keys; ord1 not enrolled yet
for n in lax1 ewr1 mia1; do
	wg genkey | wg pubkey >"$D/$n.pub"
done
sed -e "s|@LAB@|$D/lab|g" -e "s|@KEY_lax1@|$(cat "$D/lax1.pub")|" -e "s|@KEY_ewr1@|$(cat "$D/ewr1.pub")|" \
	-e "s|@KEY_mia1@|$(cat "$D/mia1.pub")|" -e '/@KEY_ord1@/d' \
	"$LAB_SRC/tests/mesh/lab.yaml.in" >"$D/mesh.yaml"
"$MESHCTL" check -c "$D/mesh.yaml" >/dev/null 2>&1 || fail "the test inventory is not valid: $("$MESHCTL" check -c "$D/mesh.yaml" 2>&1)"

# a throwaway self-signed certificate, and its pin computed by openssl
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=meshd \
	-keyout "$D/key.pem" -out "$D/cert.pem" 2>/dev/null
chmod 600 "$D/key.pem"
PIN=sha256//$(openssl x509 -in "$D/cert.pem" -pubkey -noout | openssl pkey -pubin -outform der |
	openssl dgst -sha256 -binary | base64)

conf() { # LISTEN-YAML
	cat >"$D/meshd.yaml" <<-EOF
		inventory: $D/mesh.yaml
		state: $D/state/meshd.db
		admin_socket: $D/admin.sock
		listen:
		$1
		limits: {rate: 50, burst: 100, max_body: 4096}
	EOF
}
conf "  - {address: \"198.51.100.2:8443\", certificate: $D/cert.pem, key: $D/key.pem}
  - {address: \"192.0.2.129:8081\"}
  - {address: \"127.0.0.1:8082\"}
  - {address: \"[2001:db8:10::1]:8083\"}"

# -t: the pin meshd prints is openssl's
out=$(in_ns "$MESHD" -t -c "$D/meshd.yaml")
grep -qF "TLS pin $PIN" <<<"$out" || fail "meshd -t pin differs from openssl's $PIN: $out"

# plain HTTP on a public address is refused, naming the listener
cp "$D/meshd.yaml" "$D/good.yaml"
conf '  - {address: "198.51.100.2:8080"}'
if out=$(in_ns "$MESHD" -t -c "$D/meshd.yaml" 2>&1); then fail "plain HTTP on 198.51.100.2 accepted"; fi
grep -q 'listen 198.51.100.2:8080: plain HTTP only on loopback or a mesh tunnel address' <<<"$out" ||
	fail "unclear refusal of plain HTTP: $out"
# a typo in meshd.yaml names file, line and key
printf 'inventory: %s\nlisten: [{address: "127.0.0.1:1"}]\nlimts: {rate: 1}\n' "$D/mesh.yaml" >"$D/typo.yaml"
if out=$(in_ns "$MESHD" -t -c "$D/typo.yaml" 2>&1); then fail "a typo accepted"; fi
grep -q 'typo.yaml:3:1: limts' <<<"$out" || fail "the typo is not named with its line: $out"
cp "$D/good.yaml" "$D/meshd.yaml"

start_meshd() {
	ip netns exec "$NS" "$MESHD" -c "$D/meshd.yaml" -d >>"$D/meshd.log" 2>&1 &
	MESHD_PID=$!
	_lab_track "$MESHD_PID"
	wait_for 10 "meshd to answer" in_ns curl -sf http://127.0.0.1:8082/api/v1/status ||
		fail "meshd did not start: $(tail -n 5 "$D/meshd.log")"
}
start_meshd
api() { in_ns curl -s -m 5 -o "$D/body" -w '%{http_code}' "$@"; }
tls() { api --pinnedpubkey "$PIN" -k "$@"; }
jget() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); exec("print(" + sys.argv[2] + ")")' "$D/body" "$1"; }
U=https://198.51.100.2:8443/api/v1

# status
[ "$(tls "$U/status")" = 200 ] || fail "status: $(cat "$D/body")"
[ "$(jget 'd["inventory"]["nodes"]')" = 4 ] || fail "status: nodes: $(cat "$D/body")"
[ "$(jget 'd["inventory"]["sha256"]')" = "sha256:$(sha256sum <"$D/mesh.yaml" | cut -d' ' -f1)" ] ||
	fail "status: inventory hash: $(cat "$D/body")"
for k in enrolled requests errors refused rate_limited uptime_s version; do
	jget "d['$k']" >/dev/null || fail "status lacks $k: $(cat "$D/body")"
done
# TLS: a wrong pin gets nothing
if in_ns curl -s -m 5 -k --pinnedpubkey "sha256//$(head -c 32 /dev/urandom | base64)" "$U/status" >/dev/null; then
	fail "a wrong pin was accepted"
fi

# discover: a lookup, nothing secret
[ "$(tls -d '{"external_ip":"198.51.100.6"}' "$U/nodes/discover")" = 200 ] || fail "discover: $(cat "$D/body")"
[ "$(jget 'd["node"], d["region"], d["enrolled"]')" = "ord1 ord False" ] || fail "discover: $(cat "$D/body")"
[ "$(tls -d '{"external_ip":"198.51.100.99"}' "$U/nodes/discover")" = 404 ] || fail "discover unknown: $(cat "$D/body")"
grep -q 'no node has this address' "$D/body" || fail "discover 404 reason: $(cat "$D/body")"
[ "$(tls -d '{"external_ip":' "$U/nodes/discover")" = 400 ] || fail "bad JSON: $(cat "$D/body")"
grep -q 'bad JSON at line 1' "$D/body" || fail "bad JSON reason: $(cat "$D/body")"
[ "$(tls -d '{"ip":"198.51.100.6"}' "$U/nodes/discover")" = 400 ] || fail "missing member"
grep -q 'external_ip.*a string is required' "$D/body" || fail "missing member reason: $(cat "$D/body")"
[ "$(tls "$U/nodes/discover")" = 405 ] || fail "GET discover: $(cat "$D/body")"
[ "$(tls "$U/nodes/ord1/secrets")" = 404 ] || fail "unknown endpoint"
[ "$(tls --path-as-is "$U/../../etc/passwd")" = 404 ] || fail "path outside the API"
[ "$(tls --path-as-is "$U/nodes/../status")" = 404 ] || fail "a dot-dot path"
[ "$(tls -X DELETE "$U/status")" = 405 ] || fail "DELETE"
head -c 20000 /dev/zero | tr '\0' x >"$D/big"
[ "$(tls --data-binary @"$D/big" "$U/nodes/discover")" = 413 ] || fail "a body over the cap: $(cat "$D/body")"

# config and wireguard: nothing without the node's credential or address
[ "$(tls "$U/nodes/ord1/config")" = 401 ] || fail "config without a credential: $(cat "$D/body")"
[ "$(tls -H 'X-Forwarded-For: 192.0.2.130' -H 'X-Real-IP: 192.0.2.130' "$U/nodes/ord1/config")" = 401 ] ||
	fail "a forged X-Forwarded-For got in: $(cat "$D/body")"
[ "$(tls -H 'Authorization: Bearer 0000000000000000000000000000000000000000000000000000000000000000' \
	"$U/nodes/ord1/config")" = 401 ] || fail "a made-up credential got in"
[ "$(tls "$U/nodes/nosuch/config")" = 401 ] || fail "an unknown node's name leaks to a stranger"

# enrolment
TOKEN=$(MESHD_ADMIN_SOCKET=$D/admin.sock "$MESHCTL" token create ord1 --ttl 1h 2>/dev/null)
[[ $TOKEN =~ ^[0-9a-f]{64}$ ]] || fail "token create printed: $TOKEN"
(umask 077 && wg genkey >"$D/ord1.key")
ORD1_PUB=$(wg pubkey <"$D/ord1.key")
enroll() { # TOKEN IP [KEY] [SOURCE]: from ord1's public address unless told
	tls --interface "${4:-198.51.100.6}" \
		-d "{\"token\":\"$1\",\"public_key\":\"${3:-$ORD1_PUB}\",\"external_ip\":\"$2\"}" "$U/nodes/enroll"
}
audit_rows() { sqlite3 "$D/state/meshd.db" "SELECT count(*) FROM audit"; }
a0=$(audit_rows)
# refusals before a known token are not written to the audit log
[ "$(enroll 00"${TOKEN:2}" 198.51.100.6 not-a-key)" = 400 ] || fail "a bad key with a bad token: $(cat "$D/body")"
[ "$(enroll ffff"${TOKEN:4}" 198.51.100.6)" = 403 ] || fail "an unknown token: $(cat "$D/body")"
[ "$(audit_rows)" = "$a0" ] || fail "unauthenticated refusals were written to the audit log"
# a token alone is not enough: the request must come from ord1's public_ipv4
[ "$(enroll "$TOKEN" 198.51.100.6 "$ORD1_PUB" 198.51.100.99)" = 403 ] || fail "enrol from another source: $(cat "$D/body")"
grep -q 'the request comes from 198.51.100.99, not from ord1' "$D/body" || fail "source refusal reason: $(cat "$D/body")"
[ "$(enroll "$TOKEN" 198.51.100.99)" = 403 ] || fail "enrol from a wrong address: $(cat "$D/body")"
grep -q 'external_ip 198.51.100.99 is not ord1' "$D/body" || fail "wrong address reason: $(cat "$D/body")"
[ "$(enroll "$TOKEN" 198.51.100.6 "$(cat "$D/lax1.pub")")" = 409 ] || fail "lax1's key for ord1: $(cat "$D/body")"
[ "$(enroll "$TOKEN" 198.51.100.6 not-a-key)" = 400 ] || fail "a bad key: $(cat "$D/body")"
# a second token for ord1, open while the first is redeemed: voided by it
TOKEN2=$(MESHD_ADMIN_SOCKET=$D/admin.sock "$MESHCTL" token create ord1 --ttl 1h 2>/dev/null)
[ "$(enroll "$TOKEN" 198.51.100.6)" = 200 ] || fail "enrol: $(cat "$D/body")"
CRED=$(jget 'd["credential"]')
[[ $CRED =~ ^[0-9a-f]{64}$ ]] || fail "credential: $(cat "$D/body")"
[ "$(jget 'd["node"], d["config"]')" = "ord1 /api/v1/nodes/ord1/config" ] || fail "enrol reply: $(cat "$D/body")"
(umask 077 && wg genkey >"$D/other.key")
[ "$(enroll "$TOKEN2" 198.51.100.6 "$(wg pubkey <"$D/other.key")")" = 403 ] ||
	fail "ord1's other token replaced its key: $(cat "$D/body")"
grep -q 'token refused: expired' "$D/body" || fail "the voided token's reason: $(cat "$D/body")"
# a token for the enrolled ord1 only with --replace; and revoked
adm() { MESHD_ADMIN_SOCKET=$D/admin.sock "$MESHCTL" "$@"; }
if out=$(adm token create ord1 2>&1); then fail "a token for the enrolled ord1 without --replace: $out"; fi
grep -q "ord1 is enrolled (since .*): a new token would let its holder replace the node's key; pass --replace" <<<"$out" ||
	fail "the refusal of a token for the enrolled ord1: $out"
adm token create ord1 --replace >/dev/null 2>"$D/adm.err" || fail "token create --replace: $(cat "$D/adm.err")"
id=$(sed -n 's/^token \([0-9]*\) for ord1.*/\1/p' "$D/adm.err")
[ "$(adm token revoke "$id")" = "token $id for ord1: revoked" ] || fail "token revoke $id"
if out=$(adm token revoke "$id" 2>&1); then fail "a token revoked twice"; fi
grep -q "token $id: already expired" <<<"$out" || fail "the second revoke: $out"
[ "$(enroll "$TOKEN" 198.51.100.6 "$(wg pubkey <"$D/other.key")")" = 403 ] ||
	fail "a token redeemed twice: $(cat "$D/body")"
grep -q 'already redeemed' "$D/body" || fail "second redeem reason: $(cat "$D/body")"
# the same enrolment again (its reply lost): the state takes it within
# MSTATE_RETRY_S with a new credential; the API passes it on once api.c
# sends a redeemed token on to mstate_enroll_ex (until then: refused)
code=$(enroll "$TOKEN" 198.51.100.6)
if [ "$code" = 200 ]; then
	NEW=$(jget 'd["credential"]')
	[ "$NEW" != "$CRED" ] || fail "a retry returned the same credential"
	[ "$(tls -H "Authorization: Bearer $CRED" "$U/nodes/ord1/wireguard")" = 401 ] ||
		fail "the credential a retry replaced still works"
	CRED=$NEW
	log "enrolment retry: 200, the credential replaced"
else
	[ "$code" = 403 ] && grep -q 'already redeemed' "$D/body" || fail "a retry: $code $(cat "$D/body")"
	log "enrolment retry: refused by the API (it does not pass retries on yet)"
fi
[ "$(enroll ffff"${TOKEN:4}" 198.51.100.6)" = 403 ] || fail "an unknown token"
grep -q 'token refused: unknown' "$D/body" || fail "unknown token reason: $(cat "$D/body")"
# an expired token: written into the state as an operator's clock would
# have left it (its hash only), an hour past its expiry
OLD=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
now=$(date +%s)
sqlite3 "$D/state/meshd.db" "INSERT INTO tokens(hash,node,created_at,expires_at) VALUES('$(printf %s "$OLD" | sha256sum | cut -d' ' -f1)','ord1',$((now - 7200)),$((now - 3600)));"
[ "$(enroll "$OLD" 198.51.100.6)" = 403 ] || fail "an expired token: $(cat "$D/body")"
grep -q 'token refused: expired' "$D/body" || fail "expired token reason: $(cat "$D/body")"
list=$(MESHD_ADMIN_SOCKET=$D/admin.sock "$MESHCTL" token list)
grep -Eq 'ord1 +redeemed' <<<"$list" || fail "token list: $list"
grep -Eq 'ord1 +expired' <<<"$list" || fail "token list lacks the expired one: $list"

# the config reply: the files of `meshctl render --enrolled`, byte for
# byte, each with its sha256
A="Authorization: Bearer $CRED"
[ "$(tls -H "$A" "$U/nodes/ord1/config")" = 200 ] || fail "config: $(cat "$D/body")"
cp "$D/body" "$D/config.json"
[ "$(tls -H "$A" "$U/nodes/ord/config")" = 200 ] || fail "config by region: $(cat "$D/body")"
cmp -s "$D/body" "$D/config.json" || fail "config by region differs from by node"
# (meshctl --enrolled lays what meshd enrolled over the inventory, as meshd does)
rend() { MESHD_ADMIN_SOCKET=$D/admin.sock MESHCTL_BIRD='' MESHCTL_NFT='' MESHCTL_HEALTHD='' \
	"$MESHCTL" render -c "$D/mesh.yaml" --node ord1 --enrolled -o "$D/render"; }
rend >/dev/null 2>&1 || fail "meshctl render --enrolled: $(rend 2>&1)"
python3 - "$D/config.json" "$D/render/ord1" <<-'EOF' || fail "the config reply is not meshctl render's"
	import hashlib, json, os, sys
	d = json.load(open(sys.argv[1]))
	root = sys.argv[2]
	want = sorted(os.path.relpath(os.path.join(p, f), root) for p, _, fs in os.walk(root) for f in fs)
	got = sorted(f["path"] for f in d["files"])
	assert got == want, (got, want)
	for f in d["files"]:
	    data = f["content"].encode()
	    assert hashlib.sha256(data).hexdigest() == f["sha256"], f["path"]
	    assert open(os.path.join(root, f["path"]), "rb").read() == data, f["path"]
	assert d["inventory"].startswith("sha256:") and d["interface"] == "wg-ord1", d
	assert d["private_key_file"] == "etc/wireguard/wg-ord1.key", d
	assert d["secrets"] and d["secrets"][0]["path"].endswith("transit_ord.password"), d["secrets"]
	assert "PrivateKey =" not in json.dumps(d)
EOF
[ "$(tls -H "$A" "$U/nodes/lax1/config")" = 403 ] || fail "ord1's credential got lax1's files"
[ "$(tls -H "$A" "$U/nodes/ord1/wireguard")" = 200 ] || fail "wireguard: $(cat "$D/body")"
python3 - "$D/body" "$D/lax1.pub" "$ORD1_PUB" <<-'EOF' || fail "wireguard reply: $(cat "$D/body")"
	import json, sys
	d = json.load(open(sys.argv[1]))
	assert d["node"] == "ord1" and d["public_key"] == sys.argv[3] and d["listen_port"] == 51820, d
	assert d["addresses"] == ["192.0.2.130/32", "2001:db8:10::2/128"], d
	lax = [p for p in d["peers"] if p["node"] == "lax1"][0]
	assert lax["public_key"] == open(sys.argv[2]).read().strip(), lax
	assert lax["endpoint"] == "198.51.100.2:51820" and lax["persistent_keepalive"] == 1, lax
	assert lax["allowed_ips"] == ["192.0.2.129/32", "2001:db8:10::1/128"], lax
	assert len(d["peers"]) == 3 and d["pending"] == [], d
EOF
# a node's own tunnel address is its credential: lax1 over plain HTTP
T=http://192.0.2.129:8081/api/v1
[ "$(api --interface 192.0.2.129 "$T/nodes/lax1/wireguard")" = 200 ] || fail "lax1 from its tunnel address: $(cat "$D/body")"
[ "$(jget '[p["node"] for p in d["peers"] if p["node"] == "ord1"][0]')" = ord1 ] ||
	fail "lax1's peers lack the enrolled ord1: $(cat "$D/body")"
[ "$(api --interface 192.0.2.129 "$T/nodes/ord1/config")" = 403 ] || fail "lax1's address got ord1's files"
[ "$(api --interface 127.0.0.1 -H 'X-Forwarded-For: 192.0.2.129' "$T/nodes/lax1/wireguard")" = 401 ] ||
	fail "X-Forwarded-For stood in for a tunnel address"
[ "$(tls -H "$A" "$U/firewall/rules")" = 200 ] || fail "firewall: $(cat "$D/body")"
python3 - "$D/body" <<-'EOF' || fail "firewall reply: $(cat "$D/body")"
	import json, sys
	d = json.load(open(sys.argv[1]))
	assert d["node"] == "ord1" and d["policy"] == "drop" and d["table"] == "inet healthd_mesh", d
	assert "table inet healthd_mesh {" in d["nftables"]
	assert "198.51.100.2" in d["sets"]["mesh_nodes_v4"], d["sets"]
	web = [r for r in d["rules"] if r["dport"] == [80, 443]]
	assert len(web) == 2 and web[0]["daddr"] == "@anycast_v4", d["rules"]
	ssh = [r for r in d["rules"] if r["dport"] == [22]]
	assert ssh and ssh[0]["saddr"] == "@admin_v4", ssh
	chain = d["nftables"].split("chain input {")[1]
	accepts = [l.strip() for l in chain.splitlines() if l.endswith(" accept") and "#" not in l]
	assert accepts[0] == "ct state established,related accept", accepts
	assert len(accepts) == 1 + len(d["rules"]), (accepts, d["rules"])
	assert d["rules"][0]["iif"] == "lo" and "packet-too-big" in d["rules"][2]["icmp_type"], d["rules"]
EOF
[ "$(tls -H "$A" "$U/firewall/rules?node=lax1")" = 403 ] || fail "ord1 read lax1's firewall"

# the rate limit: one source is held back (with Retry-After), another is not
out=$(in_ns python3 - <<-'EOF'
	import http.client
	c = http.client.HTTPConnection("127.0.0.1", 8082, timeout=5)
	codes, retry = {}, None
	for _ in range(400):
	    c.request("GET", "/api/v1/status")
	    r = c.getresponse()
	    r.read()
	    codes[r.status] = codes.get(r.status, 0) + 1
	    if r.status == 429:
	        retry = r.getheader("Retry-After")
	print(" ".join("%d=%d" % kv for kv in sorted(codes.items())), "retry-after=%s" % retry)
EOF
)
grep -q '429=' <<<"$out" || fail "400 requests at once were never limited: $out"
grep -Eq 'retry-after=[0-9]+' <<<"$out" || fail "429 without Retry-After: $out"
[ "$(tls "$U/status")" = 200 ] || fail "another source was limited too"
log "measured: rate limit (50/s, burst 100): 400 back-to-back requests from one source: $out"

# the per-source connection cap counts an IPv6 /64, not an address: 24
# hosts of one /64 hold at most limits.per_source (16) connections
out=$(in_ns python3 - <<-'EOF'
	import select, socket, time
	held = []
	for i in range(256, 280):
	    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
	    s.bind(("2001:db8:10:0:1::%x" % i, 0))
	    s.connect(("2001:db8:10::1", 8083))
	    held.append(s)
	# what the server refuses it closes at once: EOF within 0.5 s, all
	# sockets watched together (the kept ones stay quiet)
	closed, deadline = set(), time.monotonic() + 0.5
	while time.monotonic() < deadline:
	    r, _, _ = select.select([s for s in held if s not in closed], [], [], deadline - time.monotonic())
	    for s in r:
	        try:
	            if s.recv(1) == b"":
	                closed.add(s)
	        except OSError:
	            closed.add(s)
	open_ = len(held) - len(closed)
	print(open_)
EOF
)
[ "$out" -le 16 ] || fail "24 hosts of one /64 hold $out connections, more than per_source 16"
[ "$out" -ge 1 ] || fail "no connection of the /64 was kept"
log "measured: 24 hosts of one IPv6 /64: $out connections kept (per_source 16)"

# a broken inventory on SIGHUP: refused, the old one keeps serving
cp "$D/mesh.yaml" "$D/mesh.good"
printf 'nodes: [\n' >>"$D/mesh.yaml"
kill -HUP "$MESHD_PID"
wait_for 5 "the refused reload in the log" grep -q 'reload refused, the old inventory stays' "$D/meshd.log"
[ "$(tls -H "$A" "$U/nodes/ord1/config")" = 200 ] || fail "a bad reload broke the config endpoint"
cmp -s "$D/body" "$D/config.json" || fail "a bad reload changed what is served"
cp "$D/mesh.good" "$D/mesh.yaml"

# a disabled node is refused on every path, and leaves its peers' view
MESHD_ADMIN_SOCKET=$D/admin.sock "$MESHCTL" node disable ord1 >/dev/null 2>&1 || fail "node disable ord1"
[ "$(tls -H "$A" "$U/nodes/ord1/config")" = 401 ] || fail "a disabled node's credential still works"
[ "$(api --interface 192.0.2.130 "$T/nodes/ord1/config")" = 403 ] || fail "a disabled node's tunnel address still works: $(cat "$D/body")"
[ "$(api --interface 192.0.2.129 "$T/nodes/lax1/wireguard")" = 200 ] || fail "lax1's peers after the disable"
! grep -qF "$ORD1_PUB" "$D/body" || fail "lax1's peers still hold the disabled ord1's key"
[ "$(api --interface 192.0.2.129 "$T/firewall/rules")" = 200 ] || fail "lax1's firewall after the disable"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert "198.51.100.6" not in d["sets"]["mesh_nodes_v4"], d["sets"]' \
	"$D/body" || fail "lax1's firewall still lets the disabled ord1 in"

# no secret in the log or the database
for s in "$TOKEN" "$CRED" "$OLD" "$(cat "$D/ord1.key")"; do
	! grep -qF "$s" "$D/meshd.log" || fail "a secret is in meshd's log"
	! grep -qaF "$s" "$D"/state/meshd.db* || fail "a secret is in the database"
done

# kill -9 at any point: no redeemed token lost, none redeemed twice
_lab_stop_pid "$MESHD_PID" KILL
MESHD_PID=
# (the enrolments come from one address, faster than the limit lets through)
sed -i 's/^limits: .*/limits: {rate: 100000, burst: 100000, max_body: 4096}/' "$D/meshd.yaml"
in_ns python3 "$LAB_SRC/tests/integration/meshd_kill.py" --meshd "$MESHD" --conf "$D/meshd.yaml" \
	--meshctl "$MESHCTL" --admin "$D/admin.sock" --db "$D/state/meshd.db" --url http://127.0.0.1:8082 \
	--rounds 25 --log "$D/meshd.log" --node mia1 --ip 198.51.100.14 --source 198.51.100.14 \
	${MESHD_KILL_SEED:+--seed "$MESHD_KILL_SEED"} || fail "kill -9 test"
log "PASS"
