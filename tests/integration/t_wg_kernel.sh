#!/usr/bin/env bash
# The WireGuard check's netlink backend against the real kernel module, in
# a qemu guest (the module is not on these machines): Debian's stock kernel
# (linux-image-amd64, fetched with apt-get download) boots under TCG with a
# busybox initramfs holding wireguard.ko and its dependencies, iproute2's
# ip, wg and tests/kernel/wg_kernel_probe. The guest's /init
# (tests/kernel/init.sh) probes with the module absent, then loaded: no
# such interface, a non-WireGuard one, two dead peers, listed peers, a dump
# split over several messages. Skipped where qemu, TCG or the Debian
# mirror is unavailable.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

T=/tmp/healthd-wgk.$$
QEMU_PID=
PROBE=$HEALTHD_BUILD/kernel/wg_kernel_probe

cleanup() {
	if [ -n "$QEMU_PID" ]; then
		kill "$QEMU_PID" 2>/dev/null || true
		wait "$QEMU_PID" 2>/dev/null || true
	fi
	[ -n "${LAB_KEEP:-}" ] || rm -rf "$T"
}
trap 'cleanup || true' EXIT # the test's own exit status stands
trap '_lab_on_err "$LINENO"' ERR
trap 'exit 130' INT
trap 'exit 143' TERM

skip() {
	echo "  note: skipped: $*"
	exit 0
}
log() { printf '%s\n' "$*"; }

mkdir -p "$T/root"
cd "$T"

# ---- tools and the kernel ----

"$LAB_SRC/scripts/deps.sh" test >"$T/deps.log" 2>&1 || true
command -v qemu-system-x86_64 >/dev/null ||
	skip "qemu-system-x86_64 not installed (scripts/deps.sh test: $(tail -n 1 "$T/deps.log"))"
qemu-system-x86_64 -accel help 2>/dev/null | grep -qx tcg ||
	skip "this qemu-system-x86_64 has no TCG accelerator"
[ -x /bin/busybox ] || skip "/bin/busybox not installed (busybox-static)"
if [ ! -x "$PROBE" ]; then
	case "$HEALTHD_BUILD" in */build/san) san=1 ;; *) san= ;; esac
	make -s -C "$LAB_SRC" ${san:+SANITIZE=1} "${HEALTHD_BUILD#"$LAB_SRC"/}/kernel/wg_kernel_probe"
fi

t0=$(now_ms)
apt_dl() { apt-get download -o APT::Sandbox::User=root "$1" >>"$T/apt.log" 2>&1; }
apt_dl linux-image-amd64 ||
	skip "apt-get download linux-image-amd64 failed (no Debian mirror?): $(tail -n 1 "$T/apt.log")"
# The meta package names the real one: "linux-image-6.1.0-N-amd64 (= V)".
image=$(dpkg-deb -f linux-image-amd64_*.deb Depends | sed 's/[ ,(].*//')
apt_dl "$image" || skip "apt-get download $image failed: $(tail -n 1 "$T/apt.log")"
mkdir k
dpkg-deb --fsys-tarfile "$image"_*.deb | tar -x -C k --wildcards './boot/vmlinuz-*' './lib/modules/*'
rm -f ./*.deb
kver=$(ls k/lib/modules)
kdir=k/lib/modules/$kver
[ -f "k/boot/vmlinuz-$kver" ] || fail "no k/boot/vmlinuz-$kver in $image"
log "kernel $kver ($image), fetched and unpacked in $(($(now_ms) - t0)) ms"

# ---- wireguard.ko and what it depends on, in load order ----

declare -A modpath=() seen=()
while read -r f; do
	n=${f##*/}
	n=${n%%.ko*}
	modpath[${n//-/_}]=$f
done < <(find "$kdir/kernel" -name '*.ko*')

ko_cat() {
	case "$1" in
	*.ko) cat "$1" ;;
	*.ko.xz) xz -dc "$1" ;;
	*.ko.zst) zstd -qdc "$1" ;;
	*.ko.gz) gzip -dc "$1" ;;
	*) fail "$1: unknown module compression" ;;
	esac
}

order=()
need_module() { # NAME
	local n=${1//-/_} f dep
	[ -z "${seen[$n]:-}" ] || return 0
	seen[$n]=1
	f=${modpath[$n]:-}
	[ -n "$f" ] || fail "module $1 (for wireguard) is not in $image"
	for dep in $(ko_cat "$f" | tr '\0' '\n' | sed -n 's/^depends=//p' | tr , ' '); do
		need_module "$dep"
	done
	order+=("$n")
	ko_cat "$f" >"root/lib/modules/$n.ko"
}
mkdir -p root/lib/modules
need_module wireguard
printf '%s.ko\n' "${order[@]}" >root/lib/modules/order
log "modules: ${order[*]}"

# ---- the initramfs ----

copy_bin() { # FILE PATH-IN-GUEST, with every library ldd names
	local lib
	install -D -m 0755 "$1" "root$2"
	for lib in $(ldd "$1" 2>/dev/null | grep -o '/[^ ]*' || true); do
		[ -e "root$lib" ] || install -D -m 0755 "$(readlink -f "$lib")" "root$lib"
	done
}
copy_bin /bin/busybox /bin/busybox
copy_bin "$PROBE" /wg_kernel_probe
copy_bin "$(command -v ip)" /sbin/ip
copy_bin "$(command -v wg)" /usr/bin/wg
install -m 0755 "$LAB_SRC/tests/kernel/init.sh" root/init
mkdir -p root/proc root/sys root/dev root/etc/wg root/tmp root/var/run

priv=$(wg genkey)
key_a=$(wg genkey | wg pubkey)
key_b=$(wg genkey | wg pubkey)
key_c=$(wg genkey | wg pubkey)
printf 'KEY_A=%s\nKEY_B=%s\nKEY_C=%s\n' "$key_a" "$key_b" "$key_c" >root/etc/wg/keys
peer_a="[Peer]
PublicKey = $key_a
Endpoint = 192.0.2.1:51820
PersistentKeepalive = 25"
peer_b="[Peer]
PublicKey = $key_b
AllowedIPs = 198.51.100.2/32"
printf '[Interface]\nPrivateKey = %s\nListenPort = 51820\n\n%s\nAllowedIPs = 2001:db8:a::/64\n\n%s\n' \
	"$priv" "$peer_a" "$peer_b" >root/etc/wg/two.conf
{
	printf '[Interface]\nPrivateKey = %s\nListenPort = 51820\n\n%s\nAllowedIPs = ' "$priv" "$peer_a"
	seq 1 1000 | awk '{ printf "%s2001:db8:a::%x/128", (NR > 1 ? ", " : ""), $1 } END { print "" }'
	printf '\n%s\n' "$peer_b"
	# 300 more peers: any 32 bytes make a public key.
	python3 -c 'import base64, os
for _ in range(300): print("\n[Peer]\nPublicKey = " + base64.b64encode(os.urandom(32)).decode())'
} >root/etc/wg/many.conf

(cd root && find . | /bin/busybox cpio -o -H newc 2>/dev/null) | gzip -1 >initrd.gz
rm -rf root k/lib
log "initramfs: $(du -k initrd.gz | cut -f1) KiB"

# ---- boot ----

t1=$(now_ms)
timeout -k 5 120 qemu-system-x86_64 -nographic -no-reboot -m 512 -accel tcg -nic none \
	-kernel "k/boot/vmlinuz-$kver" -initrd initrd.gz \
	-append "console=ttyS0 quiet panic=-1" </dev/null >serial.raw 2>&1 &
QEMU_PID=$!
rc=0
wait "$QEMU_PID" || rc=$?
QEMU_PID=
t2=$(now_ms)
# The console's CRs and the firmware's escape sequences out.
tr -d '\r' <serial.raw | sed 's/\x1b\[[0-9;?]*[A-Za-z]//g; s/\x1bc//g' >serial.log
sed -n '/^boot: init/,$p' serial.log
[ "$rc" -ne 124 ] || fail "the guest did not power off within 120 s"
line=$(grep -a '^WG-KERNEL-TEST: ' serial.log | tail -n 1 || true)
[ -n "$line" ] || { tail -n 30 serial.log; fail "no WG-KERNEL-TEST line on the guest's console (qemu exit $rc)"; }
up0=$(sed -n 's/^boot: init at \([0-9.]*\)s.*/\1/p' serial.log)
up1=$(sed -n 's/^boot: done at \([0-9.]*\)s.*/\1/p' serial.log)
probes=$(awk -v a="${up0:-0}" -v b="${up1:-0}" 'BEGIN { printf "%.2f", b - a }')
log "measured: kernel $kver under qemu TCG: /init at ${up0:-?} s of uptime, modules + probes $probes s, $((t2 - t1)) ms from qemu start to power-off"
case "$line" in
"WG-KERNEL-TEST: PASS"*) log "$line" ;;
*) fail "${line#WG-KERNEL-TEST: }" ;;
esac
