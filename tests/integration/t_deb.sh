#!/usr/bin/env bash
# The Debian package. `make deb` builds it, lintian-clean (a package in
# build/deb/ built from the tree as it is now is reused). apt installs it,
# dependencies resolved, into a fresh Debian 12 root that debootstrap makes
# from the configured Debian mirror, or, where debootstrap cannot run or
# finish in time, on this machine. There: healthd -V reports the package's
# version, the shipped examples validate, sysusers.d made user healthd and
# tmpfiles.d its directories, the unit is installed but not enabled,
# `systemd-analyze verify` passes on the installed units, and a purge leaves
# no file of the package (dpkg -L, taken before) behind. In the debootstrap
# root also: bird2 configured after healthd in the same dpkg run still gets
# /var/lib/healthd made (healthd's trigger).
#
# Every step has a timeout; together they stay inside run.sh's
# INTEG_TIMEOUT. T_DEB_DEBOOTSTRAP=0 goes straight to this machine,
# T_DEB_DEBOOTSTRAP_TIMEOUT (default 120) bounds debootstrap, T_DEB_MIRROR
# overrides the mirror taken from apt's sources.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

T=/tmp/healthd-deb.$$
R=$T/root
SUITE=bookworm
cleanup() {
	trap - ERR
	# debootstrap and the chroot steps mount only in mount namespaces of
	# their own; should anything still be mounted below $T, detach it
	# before removing the tree
	local m
	awk -v t="$T/" 'index($5, t) == 1 { print $5 }' /proc/self/mountinfo | sort -r |
		while IFS= read -r m; do umount -l "$m" 2>/dev/null || true; done
	rm -rf "$T"
}
trap 'cleanup || true' EXIT # the test's own exit status stands
trap '_lab_on_err "$LINENO"' ERR
trap 'exit 130' INT
trap 'exit 143' TERM
log() { printf '%s\n' "$*"; }
mkdir -p "$T"
cd "$LAB_SRC"

# The time left before run.sh's timeout, less a margin for cleanup.
DEADLINE=$(($(now_ms) + (${INTEG_TIMEOUT:-180} - 15) * 1000))
left() { echo $(((DEADLINE - $(now_ms)) / 1000)); }
# bounded SECONDS CMD...: CMD with a timeout of SECONDS, or of the time
# left if that is shorter (at least 1 s).
bounded() {
	local s=$1 l
	shift
	l=$(left)
	[ "$l" -ge "$s" ] || s=$l
	[ "$s" -ge 1 ] || s=1
	timeout -k 5 "$s" "$@"
}
tail_of() { tail -n "${2:-5}" "$1" | sed 's/^/    /'; }

# ---- the package ----
t0=$(now_ms)
if scripts/deb.sh --current 2>/dev/null; then
	log "note: reusing the package in build/deb/ (built and lintian-checked from this tree)"
else
	bounded 150 make -s --no-print-directory deb >"$T/make.log" 2>&1 || {
		tail_of "$T/make.log" 30
		fail "make deb failed (exit $?)"
	}
	log "measured: make deb (dpkg-buildpackage and lintian) took $(($(now_ms) - t0)) ms"
fi
read -r VER _ DEBNAME <build/deb/SOURCE
DEB=$LAB_SRC/build/deb/$DEBNAME
[ -f "$DEB" ] || fail "no $DEB"
[ "$(dpkg-deb -f "$DEB" Version)" = "$VER" ] || fail "$DEB is not version $VER"
lintian --fail-on error,warning "$DEB" >"$T/lintian.log" 2>&1 || {
	tail_of "$T/lintian.log" 20
	fail "lintian: errors or warnings in $DEBNAME"
}
dpkg-deb --fsys-tarfile "$DEB" | tar -t | sed 's|^\./|/|; s|/$||; /^$/d' >"$T/contents"
for f in /usr/sbin/healthd /usr/sbin/healthctl /usr/sbin/meshctl /usr/sbin/meshd /usr/sbin/meshlg \
	/usr/share/man/man8/healthd.8.gz /usr/share/man/man8/healthctl.8.gz \
	/usr/share/man/man8/meshctl.8.gz /usr/share/man/man8/meshd.8.gz /usr/share/man/man8/meshlg.8.gz /usr/share/man/man5/healthd.yaml.5.gz \
	/lib/systemd/system/healthd.service /lib/systemd/system/healthd-withdraw.service \
	/lib/systemd/system/meshd.service /lib/systemd/system/meshlg.service /usr/share/doc/healthd/examples/meshd.yaml \
	/usr/lib/sysusers.d/healthd.conf /usr/lib/tmpfiles.d/healthd.conf \
	/usr/share/bash-completion/completions/healthctl \
	/usr/share/doc/healthd/examples/healthd.yaml /usr/share/doc/healthd/examples/mesh.yaml \
	/usr/share/doc/healthd/copyright; do
	grep -qxF "$f" "$T/contents" || fail "$DEBNAME lacks $f"
done
dpkg-deb -f "$DEB" Recommends | grep -qw bird2 || fail "$DEBNAME does not recommend bird2"

# ---- where it goes: a debootstrap root, or this machine ----
# in_root ROOT SECONDS CMD...: CMD inside ROOT (/ for this machine), in a
# PID and mount namespace of its own: whatever a maintainer script starts
# ends with it (a timeout kills the lot), /proc is mounted for it alone.
in_root() {
	local root=$1 s=$2
	shift 2
	if [ "$root" = / ]; then
		bounded "$s" "$@"
	else
		bounded "$s" unshare --fork --kill-child --pid --mount --mount-proc="$root/proc" \
			chroot "$root" "$@"
	fi
}

# The Debian mirror apt uses for $SUITE (not -updates or -security).
mirror() {
	[ -z "${T_DEB_MIRROR:-}" ] || { echo "$T_DEB_MIRROR"; return; }
	# shellcheck disable=SC2016 # apt's format fields, not the shell's
	apt-get indextargets --format '$(TARGET_OF) $(RELEASE) $(COMPONENT) $(REPO_URI)' 2>/dev/null |
		awk -v s="$SUITE" '$1 == "deb" && $2 == s && $3 == "main" { print $4; exit }'
}

ROOT=
if [ "${T_DEB_DEBOOTSTRAP:-1}" = 0 ]; then
	log "note: T_DEB_DEBOOTSTRAP=0: installing on this machine"
elif ! command -v debootstrap >/dev/null; then
	log "note: debootstrap not installed (scripts/deps.sh test): installing on this machine"
elif ! M=$(mirror) || [ -z "$M" ]; then
	log "note: apt has no Debian $SUITE mirror configured: installing on this machine"
elif ! bounded 10 curl -fsS -o /dev/null "${M%/}/dists/$SUITE/InRelease" 2>"$T/curl.err"; then
	log "note: the mirror $M does not answer within 10 s ($(head -c 200 "$T/curl.err")): installing on this machine"
elif [ "$(left)" -lt 90 ]; then
	log "note: $(left) s left, too little for debootstrap: installing on this machine"
else
	# At most T_DEB_DEBOOTSTRAP_TIMEOUT s, and 60 s left for installing
	# and checking in the root afterwards. The .debs it fetched are kept in
	# build/debootstrap-cache/ for the next run.
	t0=$(now_ms)
	mkdir -p "$R" build/debootstrap-cache
	dl=$(($(left) - 60))
	[ "$dl" -le "${T_DEB_DEBOOTSTRAP_TIMEOUT:-120}" ] || dl=${T_DEB_DEBOOTSTRAP_TIMEOUT:-120}
	if bounded "$dl" unshare --mount --pid --fork --kill-child \
		debootstrap --variant=minbase --cache-dir="$LAB_SRC/build/debootstrap-cache" \
		"$SUITE" "$R" "$M" >"$T/debootstrap.log" 2>&1; then
		ROOT=$R
		log "measured: debootstrap --variant=minbase $SUITE from $M took $(($(now_ms) - t0)) ms"
	else
		rc=$?
		if [ "$rc" -eq 124 ]; then
			log "note: debootstrap did not finish within $dl s (at: $(tail -n 1 "$T/debootstrap.log")); installing on this machine"
		else
			log "note: debootstrap failed (exit $rc: $(tail -n 1 "$T/debootstrap.log")); installing on this machine"
		fi
		rm -rf "$R"
	fi
fi

# DPkg::Lock::Timeout: on this machine another apt may hold dpkg's lock
apt=(env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=30)
if [ -n "$ROOT" ]; then
	cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
	# no service of any package starts in the root (no init runs there
	# either; this is for init scripts)
	printf '#!/bin/sh\nexit 101\n' >"$ROOT/usr/sbin/policy-rc.d"
	chmod 0755 "$ROOT/usr/sbin/policy-rc.d"
	cp "$DEB" "$ROOT/tmp/$DEBNAME"
	PKG=/tmp/$DEBNAME
	WHERE="in the debootstrap root"
else
	# Not over a healthd that is there already, package or make install.
	if dpkg-query -W -f='${Status}' healthd 2>/dev/null | grep -q 'ok installed'; then
		log "note: skipped the install: the healthd package is installed on this machine already"
		exit 0
	fi
	while IFS= read -r f; do
		if [ -e "$f" ] && [ ! -d "$f" ]; then
			log "note: skipped the install: $f exists on this machine, not from the package"
			exit 0
		fi
	done <"$T/contents"
	for d in /var/lib/healthd /run/healthd; do
		if [ -e "$d" ]; then
			log "note: skipped the install: $d exists on this machine (the package's purge would remove it)"
			exit 0
		fi
	done
	ROOT=/
	PKG=$DEB
	WHERE="on this machine"
fi
P=${ROOT%/} # prefix for paths seen from here

# The directories of the package that are there before it.
while IFS= read -r f; do [ ! -d "$P$f" ] || echo "$f"; done <"$T/contents" >"$T/dirs-before"

t0=$(now_ms)
if [ "$ROOT" != / ]; then
	in_root "$ROOT" 60 "${apt[@]}" update -q >"$T/apt.log" 2>&1 || {
		tail_of "$T/apt.log"
		fail "apt-get update in the root failed"
	}
	# man-db: systemd-analyze verify reads the units' Documentation= pages
	extra=(man-db)
else
	extra=()
fi
in_root "$ROOT" 90 "${apt[@]}" install -y -q "$PKG" "${extra[@]}" >>"$T/apt.log" 2>&1 || {
	tail_of "$T/apt.log" 15
	fail "apt-get install $PKG failed $WHERE"
}
log "measured: apt-get install of the package (and what it needs) $WHERE took $(($(now_ms) - t0)) ms"
HAD_BIRD2=
dpkg-query --admindir="$P/var/lib/dpkg" -W -f='${Status}' bird2 2>/dev/null | grep -q 'ok installed' && HAD_BIRD2=1

# ---- the installed package ----
in_root "$ROOT" 10 healthd -V >"$T/version" 2>&1 || fail "healthd -V: $(cat "$T/version")"
[ "$(cat "$T/version")" = "healthd $VER" ] || fail "healthd -V says '$(cat "$T/version")', the package is $VER"
in_root "$ROOT" 10 healthd -t -c /usr/share/doc/healthd/examples/healthd.yaml >"$T/t.out" 2>&1 ||
	fail "healthd -t on the shipped example: $(tail -n 3 "$T/t.out")"
grep -q 'configuration OK' "$T/t.out"
in_root "$ROOT" 10 meshctl check -c /usr/share/doc/healthd/examples/mesh.yaml >"$T/m.out" 2>&1 ||
	fail "meshctl check on the shipped example: $(tail -n 3 "$T/m.out")"
in_root "$ROOT" 10 healthctl -h >/dev/null 2>&1 || fail "healthctl -h failed"

# sysusers.d and tmpfiles.d ran; the unit is installed, not enabled.
in_root "$ROOT" 10 getent passwd healthd >"$T/passwd" || fail "no user healthd after the install"
[ "$(cut -d: -f7 "$T/passwd")" = /usr/sbin/nologin ] || fail "user healthd: $(cat "$T/passwd")"
if [ -n "$HAD_BIRD2" ]; then
	modes=$(in_root "$ROOT" 10 stat -c '%U:%G %a' /var/lib/healthd /var/lib/healthd/bird.conf /run/healthd | paste -sd' ')
	[ "$modes" = "healthd:bird 2750 healthd:bird 640 healthd:healthd 750" ] ||
		fail "tmpfiles.d: /var/lib/healthd, its bird.conf, /run/healthd are $modes"
else
	log "note: bird2 was not installed with the package; tmpfiles.d's modes not checked"
fi
en=$(systemctl --root="$ROOT" is-enabled healthd.service 2>&1 || true)
[ "$en" = disabled ] || fail "healthd.service is '$en' after the install, want disabled"
en=$(systemctl --root="$ROOT" is-enabled meshd.service 2>&1 || true)
[ "$en" = disabled ] || fail "meshd.service is '$en' after the install, want disabled"
in_root "$ROOT" 10 getent passwd meshd >/dev/null || fail "sysusers.d made no user meshd $WHERE"

# systemd-analyze verify on the installed units, as they are there.
if [ "$ROOT" = / ]; then
	verify=(systemd-analyze verify)
else
	verify=(in_root "$ROOT" 30 systemd-analyze verify)
fi
"${verify[@]}" /lib/systemd/system/healthd.service /lib/systemd/system/healthd-withdraw.service \
	/lib/systemd/system/meshd.service >"$T/verify.out" 2>&1 || fail "systemd-analyze verify $WHERE: $(cat "$T/verify.out")"
[ ! -s "$T/verify.out" ] || fail "systemd-analyze verify warns $WHERE: $(cat "$T/verify.out")"

# ---- purge: nothing of the package stays ----
in_root "$ROOT" 10 dpkg -L healthd >"$T/dpkg-L"
[ "$(wc -l <"$T/dpkg-L")" -ge "$(wc -l <"$T/contents")" ] || fail "dpkg -L healthd lists less than the .deb holds"
t0=$(now_ms)
in_root "$ROOT" 60 "${apt[@]}" purge -y -q healthd >"$T/purge.log" 2>&1 || {
	tail_of "$T/purge.log"
	fail "apt-get purge healthd failed $WHERE"
}
log "measured: apt-get purge healthd $WHERE took $(($(now_ms) - t0)) ms"
if dpkg-query --admindir="$P/var/lib/dpkg" -W -f='${Status}' healthd 2>/dev/null | grep -qv 'not-installed'; then
	fail "dpkg still knows healthd after the purge: $(dpkg-query --admindir="$P/var/lib/dpkg" -W -f='${Status}' healthd)"
fi
left_over=()
while IFS= read -r f; do
	[ "$f" != /. ] || continue
	if [ -e "$P$f" ] || [ -L "$P$f" ]; then
		if [ -d "$P$f" ]; then
			# a directory that was there before, or that a package
			# installed with healthd (systemd, say) owns too, stays
			grep -qxF "$f" "$T/dirs-before" && continue
			dpkg-query --admindir="$P/var/lib/dpkg" -S "$f" >/dev/null 2>&1 && continue
		fi
		left_over+=("$f")
	fi
done <"$T/dpkg-L"
[ ${#left_over[@]} -eq 0 ] || fail "after the purge, still there: ${left_over[*]}"
for d in /var/lib/healthd /run/healthd; do
	[ ! -e "$P$d" ] || fail "after the purge, $d is still there"
done

# ---- bird2 configured after healthd in one dpkg run (the root only) ----
if [ "$ROOT" != / ] && [ -n "$HAD_BIRD2" ]; then
	in_root "$ROOT" 60 "${apt[@]}" purge -y -q bird2 >>"$T/purge.log" 2>&1
	! in_root "$ROOT" 10 getent group bird >/dev/null || fail "group bird still there after purging bird2"
	# The downloaded bird2 .deb is still in apt's cache; dpkg configures in
	# the order given.
	bird_deb=$(cd "$ROOT" && echo var/cache/apt/archives/bird2_*.deb)
	[ -f "$ROOT/$bird_deb" ] || fail "no bird2 .deb in the root's apt cache"
	in_root "$ROOT" 60 env DEBIAN_FRONTEND=noninteractive dpkg -i "$PKG" "/$bird_deb" >"$T/order.log" 2>&1 || {
		tail_of "$T/order.log"
		fail "dpkg -i healthd bird2 failed"
	}
	awk '/^Setting up healthd/ { h = NR } /^Setting up bird2/ { b = NR } END { exit !(h && b && h < b) }' \
		"$T/order.log" || fail "dpkg did not configure healthd before bird2: $(grep '^Setting up' "$T/order.log" | paste -sd';')"
	modes=$(in_root "$ROOT" 10 stat -c '%U:%G %a' /var/lib/healthd /var/lib/healthd/bird.conf | paste -sd' ')
	[ "$modes" = "healthd:bird 2750 healthd:bird 640" ] ||
		fail "healthd configured before bird2: /var/lib/healthd and its bird.conf are '$modes'"
	log "note: healthd configured before bird2 in one dpkg run: its trigger made /var/lib/healthd"
fi
log "note: installed, verified and purged $WHERE"
