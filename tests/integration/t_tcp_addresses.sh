#!/usr/bin/env bash
# A TCP check whose host name resolves to an address that silently drops
# SYNs (first) and one that answers (second): the first gets its share of
# the timeout, then the second is tried, and the check is up, naming the
# address that answered. (With one deadline for all, the blackholed first
# address took the whole timeout and the check failed.)
set -euo pipefail
. "$(dirname "$0")/lib.sh"

lab_up
lab_web_start 8080
# the name: ::1 first, then 127.0.0.1 (a hosts file in healthd's own mount
# namespace; the machine's /etc/hosts is untouched)
printf '::1 webhost\n127.0.0.1 webhost\n' >"$LAB_DIR/hosts"
printf '#!/bin/sh\nexec unshare -m --propagation private sh -c '"'"'mount --bind "$0" /etc/hosts && exec "$@"'"'"' "%s" "%s" "$@"\n' \
	"$LAB_DIR/hosts" "$HEALTHD_BIN" >"$LAB_DIR/healthd-hosts"
chmod +x "$LAB_DIR/healthd-hosts"
# SYNs to [::1]:8080 vanish (the node's namespace only)
in_node nft -f - <<'NFT'
table inet hdtest {
	chain out {
		type filter hook output priority 0;
		ip6 daddr ::1 tcp dport 8080 drop
	}
}
NFT
LAB_INTERVAL=1s LAB_TIMEOUT=900ms LAB_CHECKS_EXTRA='      - name: byname
        type: tcp
        host: webhost
        port: 8080
        on_fail: withdraw' lab_config >"$LAB_DIR/healthd.yaml"
real_bin=$HEALTHD_BIN
HEALTHD_BIN=$LAB_DIR/healthd-hosts lab_healthd_start
HEALTHD_BIN=$real_bin
detail() { lab_status_get '[c for s in d["services"] for c in s["checks"] if c["name"] == "byname"][0]["last"]["detail"]' 2>/dev/null; }
wait_for 10 "a result of the check by name" eval 'detail | grep -q .'
wait_for 10 "the check by name up" eval 'detail | grep -q "^connected to 127.0.0.1:8080 (after \[::1\]:8080 connection timed out)"'
log "measured: detail: $(detail)"
wait_for 10 "announced" lab_upstream_has "$LAB_PREFIX4"
