#!/bin/busybox sh
# shellcheck shell=dash disable=SC1091 # /etc/wg/keys exists in the guest only
# /init of the qemu guest built by t_wg_kernel.sh: runs wg_kernel_probe
# against the kernel's own WireGuard, before and after the module is loaded,
# and ends with one line "WG-KERNEL-TEST: PASS ..." or "... FAIL ...", then
# powers off. Keys and wg configs come from the host in /etc/wg.
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sys /sys
/bin/busybox mount -t devtmpfs dev /dev
/bin/busybox --install -s /bin
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
. /etc/wg/keys
read -r up _ </proc/uptime
echo "boot: init at ${up}s of uptime"

passed=0 failed=0 names=
step() { # DESCRIPTION PROBE-ARGS...
	desc=$1
	shift
	echo "== $desc"
	if /wg_kernel_probe "$@"; then
		passed=$((passed + 1))
	else
		failed=$((failed + 1))
		names="$names; $desc"
		echo "FAIL: $desc"
	fi
}
# Setup commands: a failure is the test's failure too.
run() {
	"$@" || { failed=$((failed + 1)); names="$names; $*"; echo "FAIL: $*"; }
}
end() {
	read -r up _ </proc/uptime
	echo "boot: done at ${up}s of uptime"
	if [ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]; then
		echo "WG-KERNEL-TEST: PASS ($passed probes, kernel $(uname -r))"
	else
		echo "WG-KERNEL-TEST: FAIL ($failed failed, $passed passed${names})"
	fi
	sync
	poweroff -f
	exit 1   # no ACPI power-off: init exits, panic=-1 reboots, qemu -no-reboot quits
}

step "module not loaded" -r unreachable -d "module not loaded" wg0

# In dependency order, as resolved on the host from each module's depends=.
while read -r m; do
	run insmod "/lib/modules/$m"
done </lib/modules/order
[ -d /sys/module/wireguard ] || { echo "FAIL: wireguard.ko did not load"; failed=1; end; }

step "no interface wg1" -r unreachable -d "no interface wg1" -D "module not loaded" wg1
step "lo is not WireGuard" -r unreachable -d "lo is not a WireGuard interface" lo

run ip link add wg0 type wireguard
step "interface without peers" -r unreachable -d "wg0 has no peers" -c 0 wg0

# A with an endpoint and keepalive, B with neither; nothing can answer.
run wg setconf wg0 /etc/wg/two.conf
run ip link set wg0 up
step "two peers, both dead" -r unreachable -d "0 of 2 peers alive, need 2" -c 2 \
	-s "$KEY_A=no handshake yet" -s "$KEY_B=no handshake yet" \
	-e "$KEY_A=192.0.2.1:51820" -e "$KEY_B=-" wg0
step "listed peers by name" -p "a=$KEY_A" -p "b=$KEY_B" -p "c=$KEY_C" -n 1 \
	-r unreachable -d "0 of 3 peers alive, need 1" -c 3 \
	-s "a=no handshake yet" -s "c=not on the interface" -e "a=192.0.2.1:51820" wg0

# A with 1000 allowed IPs and 300 more peers: the dump takes several
# messages and A's allowed IPs go on in the next one, under its key.
run wg setconf wg0 /etc/wg/many.conf
step "peers split across dump messages" -S "$KEY_A" -r unreachable -c 302 \
	-d "0 of 302 peers alive" -e "$KEY_A=192.0.2.1:51820" -e "$KEY_B=-" wg0
step "split peer watched by name" -p "a=$KEY_A" -p "b=$KEY_B" -S a -c 2 \
	-s "a=no handshake yet" -e "a=192.0.2.1:51820" wg0

run ip link del wg0
step "interface deleted" -r unreachable -d "no interface wg0" -D "module not loaded" wg0
end
