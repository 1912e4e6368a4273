#!/usr/bin/env bash
# Installs the Debian packages healthd needs to build and test; quiet and
# idempotent when everything is already there.
set -euo pipefail

build_pkgs=(
  build-essential pkg-config
  libuv1-dev libcurl4-openssl-dev libnl-3-dev libnl-genl-3-dev libyaml-dev
  libjansson-dev libmicrohttpd-dev libsystemd-dev libcriterion-dev
  libsqlite3-dev libgnutls28-dev libc-ares-dev
)
test_pkgs=(
  bird2 iproute2 curl python3 procps wireguard-go wireguard-tools nftables
  # t_meshd.sh: a throwaway certificate, and a token written into the state
  openssl sqlite3 python3-yaml
  # t_wg_kernel.sh: a qemu guest with Debian's kernel (about 7 s to install)
  qemu-system-x86 busybox-static
  # t_deb.sh: a fresh Debian 12 root to install the package in
  debootstrap
  # t_cloudinit.sh: `cloud-init schema --config-file` on meshctl cloud-init's
  # user-data (22.4.2 in Debian 12; disabled at boot, see below)
  cloud-init
  # t_lg.sh: the looking glass's HTML page, loaded and screenshotted headless
  chromium
  # t_dns.sh and make bench: a real DNS server (local-data answers, a
  # refusing zone, a dead forwarder) for `type: dns` checks
  unbound
)
# make bench: the HTTP server it probes and the load generator.
bench_pkgs=(
  nginx wrk valgrind
)

# make deb: Debian's packaging tools (debian/rules needs no root, so no
# fakeroot).
deb_pkgs=(
  dpkg-dev debhelper lintian
)

# make fuzz (clang's libFuzzer) and make valgrind.
hardening_pkgs=(
  clang libclang-rt-14-dev valgrind
)

want=("${build_pkgs[@]}")
case "${1:-all}" in
  build) ;;
  all|test) want+=("${test_pkgs[@]}" "${deb_pkgs[@]}") ;;
  deb) want+=("${deb_pkgs[@]}") ;;
  bench) want+=("${test_pkgs[@]}" "${bench_pkgs[@]}") ;;
  hardening) want+=("${hardening_pkgs[@]}") ;;
  *) echo "usage: $0 [build|test|all|bench|hardening|deb]" >&2; exit 2 ;;
esac

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "deps: missing packages: ${missing[*]} (run as root to install them)" >&2
  exit 1
fi
echo "deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The bird2 package starts a system BIRD; the tests run their own.
if [ -d /run/systemd/system ] && systemctl is-active -q bird 2>/dev/null; then
  systemctl disable --now bird >/dev/null 2>&1 || true
fi
# cloud-init here is for its schema check only: a test machine that reboots
# must not be configured by it (its documented off switch).
if [[ " ${missing[*]} " == *" cloud-init "* ]]; then
  mkdir -p /etc/cloud && touch /etc/cloud/cloud-init.disabled
fi
# The unbound package starts a system resolver on port 53; the tests and
# the bench run their own.
if [[ " ${missing[*]} " == *" unbound "* ]] && [ -d /run/systemd/system ]; then
  systemctl disable --now unbound >/dev/null 2>&1 || true
fi
# The nginx package starts a system nginx on port 80; the bench runs its own.
if [[ " ${missing[*]} " == *" nginx "* ]]; then
  if [ -d /run/systemd/system ]; then
    systemctl disable --now nginx >/dev/null 2>&1 || true
  elif [ -s /run/nginx.pid ]; then
    kill "$(cat /run/nginx.pid)" 2>/dev/null || true
  fi
fi
