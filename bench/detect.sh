#!/usr/bin/env bash
# bench/detect.sh OUT.json RUNS — detection times in the namespace lab of
# tests/integration/lib.sh: interval 100ms, fall 2 (rise 2), no hold-down
# and no dampening, so the figures are detection and propagation alone.
set -euo pipefail
out=$1
runs=${2:-20}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../tests/integration/lib.sh
source "$HERE/../tests/integration/lib.sh"

lab_up
LAB_INTERVAL=100ms LAB_TIMEOUT=100ms LAB_HOLD_DOWN=0s \
LAB_SERVICE_EXTRA='    dampening: { suppress: 1000000 }' \
	lab_config > "$LAB_DIR/healthd.yaml"
"$HEALTHD_BIN" -t -c "$LAB_DIR/healthd.yaml" >/dev/null
lab_web_start 8080
lab_healthd_start
wait_for 20 "route at the upstream" lab_upstream_has "${LAB_PREFIX4%/*}/32"
lab_web_stop
wait_for 10 "route withdrawn at the upstream" lab_upstream_lacks "${LAB_PREFIX4%/*}/32"

python3 "$HERE/detect.py" --ns "$NS_NODE" --sock "$LAB_DIR/up/bird.ctl" \
	--prefix "$LAB_PREFIX4" --dir "$LAB_DIR/www" --port 8080 \
	--webserver "$SRC_DIR/tests/integration/webserver.py" --runs "$runs" --out "$out"
lab_healthd_stop
