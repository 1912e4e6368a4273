#!/usr/bin/env bash
# mesh-bootstrap --start for the mesh lab: where a real node runs
# `systemctl enable --now ...`, the lab's test shell starts the node's
# daemons itself (ml_join, so that it tracks their PIDs). This hook asks
# for that and waits for the answer: it writes ROOT/run/bootstrap.start,
# then waits up to 90 s for ROOT/run/bootstrap.started, whose content is
# its exit status.
set -euo pipefail
root=$1 node=$2
echo "$node" >"$root/run/bootstrap.start"
for ((i = 0; i < 9000; i++)); do
	if [ -s "$root/run/bootstrap.started" ]; then
		exit "$(cat "$root/run/bootstrap.started")"
	fi
	sleep 0.01
done
echo "meshlab-start: nobody started $node within 90 s" >&2
exit 1
