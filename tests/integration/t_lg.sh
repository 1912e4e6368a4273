#!/usr/bin/env bash
# meshlg, the looking glass, against a real BIRD behind a recording proxy
# (birdrecord.py logs every line BIRD receives), in a namespace of its own:
#   1. it answers on the tunnel addresses (v4 and v6) with birdwatcher's
#      JSON, the fleet view and HTML, and BIRD's first command is `restrict`;
#   2. a source outside `allow` is refused before anything is read;
#   3. hostile values in every query parameter (lgattack.py): each 400 with
#      a reason, meshlg still up, and BIRD received only allowlisted lines;
#   4. a BIRD that does not answer 0016 to `restrict`: nothing is served and
#      nothing but `restrict` is sent;
#   5. the per-source token bucket answers 429 with Retry-After;
#   6. the HTML page in headless Chromium (a screenshot kept), every value
#      escaped (python's html.parser finds no element that came from data);
#   7. SIGTERM: a clean exit, nothing left.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

D=/tmp/healthd-lg.$$
NS=hd$$lg
OUT=${LG_OUT:-/tmp/healthd-lg-out.$$}   # kept: the screenshot
MESHLG=$HEALTHD_BUILD/meshlg
PIDS=()
mkdir -p "$D" "$OUT"
cleanup() {
	local p
	for p in "${PIDS[@]}"; do _lab_stop_pid "$p"; done
	ip netns del "$NS" 2>/dev/null || true
	[ -n "${KEEP:-}" ] || rm -rf "$D"
}
trap cleanup EXIT
trap '_lab_on_err $LINENO' ERR
in_ns() { ip netns exec "$NS" "$@"; }
spawn() { # LOG CMD...
	local log=$1
	shift
	ip netns exec "$NS" "$@" >>"$log" 2>&1 &
	REPLY=$!
	PIDS+=("$REPLY")
}
[ -x "$MESHLG" ] || fail "$MESHLG not built (make build)"

ip netns add "$NS"
in_ns ip link set lo up
# lax1's tunnel addresses, and a public one that is not in `allow`
for a in 192.0.2.129/32 198.51.100.6/32; do in_ns ip addr add "$a" dev lo; done
in_ns ip addr add 2001:db8:10::1/128 dev lo nodad

cat >"$D/bird.conf" <<EOF2
router id 203.0.113.1;
log "$D/bird.log" all;
timeformat route iso long;
timeformat protocol iso long;
protocol device { }
protocol static healthd_web_v4 {
	ipv4 { import filter { bgp_community.add((64496, 100)); accept; }; };
	route 203.0.113.0/24 blackhole;
}
protocol static healthd_web_v6 {
	ipv6 { import filter { bgp_community.add((64496, 100)); accept; }; };
	route 2001:db8:100::/48 blackhole;
}
protocol static other4 { ipv4; route 198.51.100.128/25 blackhole; }
EOF2
bird -p -c "$D/bird.conf"
spawn "$D/bird.out" bird -f -c "$D/bird.conf" -s "$D/bird.ctl" -P "$D/bird.pid"
wait_for 10 "BIRD to answer" birdc -s "$D/bird.ctl" show status
spawn "$D/record.out" python3 "$LAB_SRC/tests/integration/birdrecord.py" --listen "$D/rec.ctl" \
	--bird "$D/bird.ctl" --log "$D/commands.log"
wait_for 10 "the recording proxy" grep -qx ready "$D/record.out"
: >"$D/commands.log"

conf() { # FILE SOCKET PORT LIMITS
	cat >"$1" <<EOF2
node: lax1
listen: ["192.0.2.129:$3", "[2001:db8:10::1]:$3"]
allow: ["192.0.2.128/26", "2001:db8:10::/48"]
bird: {socket: $2}
limits: {$4}
services:
  - name: web
    prefixes: ["203.0.113.0/24", "2001:db8:100::/48"]
    communities: {up: ["64496:100"], degraded: ["64496:300"], draining: ["65535:0"]}
nodes:
  - {name: lax1, router_id: 203.0.113.1}
  - {name: ord1, router_id: 203.0.113.9}
EOF2
}
conf "$D/lg.yaml" "$D/rec.ctl" 8080 "rate: 100000, burst: 100000, concurrency: 64, timeout: 2s, cache: 500ms"
"$MESHLG" -t -c "$D/lg.yaml" >/dev/null
spawn "$D/lg.log" "$MESHLG" -d -c "$D/lg.yaml"
LG_PID=$REPLY
get() { in_ns curl -sS -m 3 -o "$D/body" -w '%{http_code}' "$@" 2>/dev/null || true; }
ready() { [ "$(get http://192.0.2.129:8080/status)" = 200 ]; }
wait_for 10 "meshlg to serve /status" ready

# 1. the endpoints
[ "$(head -n 1 "$D/commands.log")" = "b'restrict\\n'" ] || fail "BIRD's first command was $(head -n 1 "$D/commands.log"), not restrict"
python3 - "$D/body" <<'PY' || fail "/status: $(cat "$D/body")"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["status"]["router_id"] == "203.0.113.1", d
assert isinstance(d["api"]["result_from_cache"], bool) and d["ttl"].endswith("Z"), d
PY
[ "$(get 'http://[2001:db8:10::1]:8080/routes/protocol/healthd_web_v6')" = 200 ] || fail "v6 listener: $(cat "$D/body")"
grep -q '"network":"2001:db8:100::/48"' "$D/body" || fail "routes of healthd_web_v6: $(cat "$D/body")"
[ "$(get http://192.0.2.129:8080/route/net/203.0.113.10)" = 200 ] || fail "route for: $(cat "$D/body")"
grep -q '"communities":\[\[64496,100\]\]' "$D/body" || fail "route for 203.0.113.10: $(cat "$D/body")"
[ "$(get http://192.0.2.129:8080/fleet)" = 200 ] || fail "fleet: $(cat "$D/body")"
python3 - "$D/body" <<'PY' || fail "fleet: $(cat "$D/body")"
import json, sys
d = json.load(open(sys.argv[1]))
ann = d["services"][0]["announcers"]
assert sorted((a["node"], a["state"], a["prefix"]) for a in ann) == [
    ("lax1", "up", "2001:db8:100::/48"), ("lax1", "up", "203.0.113.0/24")], ann
PY
[ "$(get http://192.0.2.129:8080/routes/protocol/nosuch_proto)" = 404 ] || fail "an unknown protocol: $(cat "$D/body")"
[ "$(get http://192.0.2.129:8080/nowhere)" = 404 ] || fail "an unknown page"
[ "$(get -X POST http://192.0.2.129:8080/status)" = 405 ] || fail "POST is not refused"
echo "endpoints: /status /fleet /route/net /routes/protocol (v4 and v6 listeners) answer; BIRD's first command was restrict"

# coalescing: 20 identical requests at once cost BIRD one command
before=$(grep -c 'route for 203.0.113.77' "$D/commands.log" || true)
cpids=()
for i in $(seq 20); do
	in_ns curl -s -m 3 -o /dev/null http://192.0.2.129:8080/route/net/203.0.113.77 &
	cpids+=($!)
done
for p in "${cpids[@]}"; do wait "$p" || true; done
n=$(($(grep -c 'route for 203.0.113.77' "$D/commands.log") - before))
[ "$n" -le 2 ] || fail "20 identical requests sent BIRD $n commands"
echo "measured: 20 identical concurrent route-for requests -> $n BIRD command(s)"

# meshctl fleet: the same view as a table
in_ns "$HEALTHD_BUILD/meshctl" fleet --lg http://192.0.2.129:8080 >"$D/fleet.txt" || fail "meshctl fleet: $(cat "$D/fleet.txt")"
grep -qE '^web +lax1 +up +203.0.113.0/24 +healthd_web_v4 +local$' "$D/fleet.txt" || fail "meshctl fleet: $(cat "$D/fleet.txt")"
sed 's/^/  /' "$D/fleet.txt"

# 2. a source outside allow
code=$(in_ns curl -sS -m 3 --interface 198.51.100.6 -o /dev/null -w '%{http_code}' http://192.0.2.129:8080/status 2>"$D/refused.err" || true)
[ "$code" = 000 ] || fail "a request from 198.51.100.6 got HTTP $code"
echo "from 198.51.100.6 (not in allow): no HTTP answer ($(head -c 80 "$D/refused.err"))"
kill -0 "$LG_PID" || fail "meshlg died"

# 3. hostile values
in_ns python3 "$LAB_SRC/tests/integration/lgattack.py" --target 192.0.2.129:8080 --source 192.0.2.129 \
	--commands "$D/commands.log" | tee "$D/attack.out"
kill -0 "$LG_PID" || fail "meshlg died under the hostile requests: $(tail -n 5 "$D/lg.log")"
ready || fail "meshlg does not answer after the hostile requests"
echo "measured: meshlg up after the hostile requests (pid $LG_PID)"

# 4. a BIRD that does not restrict
spawn "$D/fake.out" python3 "$LAB_SRC/tests/integration/fakebird.py" --socket "$D/fake.ctl" --mode welcome-ok
wait_for 10 "the fake BIRD" grep -qx ready "$D/fake.out"
conf "$D/lg-fake.yaml" "$D/fake.ctl" 8082 "timeout: 1s"
spawn "$D/lg-fake.log" "$MESHLG" -c "$D/lg-fake.yaml"
wait_for 10 "meshlg on the fake BIRD to try restrict" grep -q "command 'restrict'" "$D/fake.out"
for u in /status /route/net/203.0.113.10 /fleet /; do
	c=$(get "http://192.0.2.129:8082$u")
	[ "$c" = 503 ] || fail "$u on a BIRD that did not answer 0016: HTTP $c $(cat "$D/body")"
done
grep -q 'not 0016' "$D/lg-fake.log" || fail "meshlg did not say why it does not serve: $(cat "$D/lg-fake.log")"
others=$(grep '^command' "$D/fake.out" | grep -vc "command 'restrict'" || true)
[ "$others" -eq 0 ] || fail "meshlg sent a BIRD that did not restrict: $(grep '^command' "$D/fake.out" | sort -u | head -3)"
echo "a BIRD answering 0000 to restrict: every query 503, nothing but restrict sent"

# 5. the token bucket
conf "$D/lg-rate.yaml" "$D/bird.ctl" 8081 "rate: 1, burst: 3"
spawn "$D/lg-rate.log" "$MESHLG" -c "$D/lg-rate.yaml"
wait_for 10 "the rate-limited meshlg" bash -c "[ \"\$(ip netns exec $NS curl -s -o /dev/null -w '%{http_code}' http://192.0.2.129:8081/status)\" = 200 ]"
codes=$(for i in $(seq 10); do in_ns curl -s -o /dev/null -D "$D/h$i" -w '%{http_code}\n' http://192.0.2.129:8081/status; done | sort | uniq -c | paste -sd ' ')
[[ "$codes" == *429* ]] || fail "10 requests at rate 1 burst 3: $codes"
grep -qi '^Retry-After: [0-9]' "$D"/h* || fail "no Retry-After on a 429"
echo "measured: 10 requests at rate 1/s burst 3: $codes"

# 6. HTML
[ "$(get 'http://192.0.2.129:8080/route?net=203.0.113.10')" = 200 ] || fail "HTML route page"
cp "$D/body" "$OUT/route.html"
[ "$(get 'http://192.0.2.129:8080/route?net=%3Cscript%3Ealert(1)%3C/script%3E')" = 400 ] || fail "a script as net"
cp "$D/body" "$OUT/error.html"
[ "$(get http://192.0.2.129:8080/)" = 200 ] || fail "the HTML index"
cp "$D/body" "$OUT/index.html"
[ "$(get http://192.0.2.129:8080/fleet.html)" = 200 ] || fail "the HTML fleet"
cp "$D/body" "$OUT/fleet.html"
python3 - "$OUT" <<'PY' || fail "the HTML pages"
import html.parser, sys
allowed = {"html", "head", "meta", "title", "style", "body", "h1", "h2", "nav", "a", "table", "tr",
           "th", "td", "form", "label", "input", "button", "p", "small", "strong"}
for name in ("index", "route", "error", "fleet"):
    text = open("%s/%s.html" % (sys.argv[1], name), encoding="utf-8").read()
    class P(html.parser.HTMLParser):
        tags, data = set(), []
        def handle_starttag(self, tag, attrs):
            self.tags.add(tag)
        def handle_data(self, d):
            self.data.append(d)
    p = P()
    p.feed(text)
    assert p.tags <= allowed, (name, p.tags - allowed)
    assert "script" not in p.tags, name
    if name == "error":
        assert "<script>alert(1)</script>" in "".join(p.data), "the escaped value is shown as text"
        assert "&lt;script&gt;" in text
print("html: 4 pages parsed, only the page's own elements, values escaped")
PY
if command -v chromium >/dev/null; then
	for page in index fleet; do
		url=http://192.0.2.129:8080/; [ "$page" = index ] || url=http://192.0.2.129:8080/fleet.html
		in_ns timeout 60 chromium --headless --no-sandbox --disable-gpu --user-data-dir="$D/chromium" \
			--screenshot="$OUT/$page.png" --window-size=1200,900 "$url" >"$D/chromium.out" 2>&1 ||
			fail "chromium: $(tail -n 3 "$D/chromium.out")"
		[ -s "$OUT/$page.png" ] || fail "chromium made no screenshot of $url"
	done
	in_ns timeout 60 chromium --headless --no-sandbox --disable-gpu --user-data-dir="$D/chromium" \
		--dump-dom http://192.0.2.129:8080/ >"$D/dom.html" 2>/dev/null
	grep -q '<td>203.0.113.1</td>' "$D/dom.html" || fail "Chromium's DOM lacks the router id"
	echo "note: screenshots of the looking glass in headless Chromium: $OUT/index.png $OUT/fleet.png"
else
	echo "note: chromium is not installed (scripts/deps.sh test installs it); the HTML was checked with python's html.parser only; pages in $OUT"
fi

# wrk: a cached and an uncached `route for` (a second meshlg with cache: 0)
if command -v wrk >/dev/null; then
	conf "$D/lg-nocache.yaml" "$D/bird.ctl" 8083 "rate: 100000, burst: 100000, concurrency: 64, cache: 0s"
	spawn "$D/lg-nocache.log" "$MESHLG" -c "$D/lg-nocache.yaml"
	wait_for 10 "the uncached meshlg" bash -c "[ \"\$(ip netns exec $NS curl -s -o /dev/null -w '%{http_code}' http://192.0.2.129:8083/status)\" = 200 ]"
	for run in cached:8080 uncached:8083; do
		in_ns wrk -t2 -c8 -d4s --latency "http://192.0.2.129:${run#*:}/route/net/203.0.113.10" >"$D/wrk.out" 2>&1 ||
			fail "wrk: $(tail -n 3 "$D/wrk.out")"
		rps=$(awk '/^Requests\/sec:/ {print $2}' "$D/wrk.out")
		p99=$(awk '$1 == "99%" {print $2}' "$D/wrk.out")
		non2xx=$(awk '/Non-2xx/ {print $NF}' "$D/wrk.out")
		echo "measured: wrk route for 203.0.113.10, ${run%%:*}: ${rps} req/s, p99 ${p99}, 8 connections, 2 threads${non2xx:+, $non2xx non-2xx}"
	done
fi

# 7. a clean stop
kill -TERM "$LG_PID"
t0=$(now_ms)
wait "$LG_PID" && rc=0 || rc=$?
[ "$rc" -eq 0 ] || fail "meshlg exited $rc on SIGTERM: $(tail -n 3 "$D/lg.log")"
echo "measured: meshlg stopped $(($(now_ms) - t0)) ms after SIGTERM, exit 0"
! grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$D"/lg*.log || fail "sanitizer: $(grep -h -A5 Sanitizer "$D"/lg*.log | head -20)"
