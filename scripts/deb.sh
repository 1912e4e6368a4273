#!/usr/bin/env bash
# Builds the healthd Debian package (debian/) with dpkg-buildpackage in a
# copy of the tree, so the work tree gets nothing but build/deb/: the .deb,
# healthd-dbgsym's, their .buildinfo and .changes, build.log and
# lintian.log. Fails on any lintian error or warning.
#
#   scripts/deb.sh            build (make deb)
#   scripts/deb.sh --current  exit 0 if build/deb/ holds the package of the
#                             tree as it is now (same files, same version)
#
# The version is debian/changelog's, plus +gitN.HASH in a git checkout (N
# commits, so a later build upgrades an earlier one; .dirty when files
# differ from HEAD). The copy's changelog carries it; debian/changelog in
# the tree is not changed.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=build/deb

# The files a build uses, NUL-separated: in a git checkout what git tracks
# or would track (not build/ or anything else ignored), else everything
# but build/ and .git.
tree_files() {
	if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
		git ls-files -z --cached --others --exclude-standard |
			while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done
	else
		find . \( -path ./build -o -path ./.git \) -prune -o \( -type f -o -type l \) -print0 |
			sed -z 's|^\./||'
	fi
}

# The tree as a tar stream that depends only on names, modes and contents.
tree_tar() {
	tree_files | LC_ALL=C sort -z |
		tar --create --file=- --format=gnu --mtime=@0 --owner=0 --group=0 \
			--numeric-owner --no-recursion --null --files-from=-
}

version() {
	local base n h dirty=
	base=$(dpkg-parsechangelog -S Version)
	if git rev-parse --verify -q HEAD >/dev/null 2>&1; then
		n=$(git rev-list --count HEAD)
		h=$(git rev-parse --short=7 HEAD)
		[ -z "$(git status --porcelain --untracked-files=normal)" ] || dirty=.dirty
		echo "$base+git$n.$h$dirty"
	else
		echo "$base"
	fi
}

current() {
	local stamp=$OUT/SOURCE ver sum deb
	[ -s "$stamp" ] || return 1
	command -v dpkg-parsechangelog >/dev/null || return 1
	ver=$(version)
	sum=$(tree_tar | sha256sum | cut -d' ' -f1)
	read -r s_ver s_sum deb <"$stamp" || return 1
	[ "$s_ver" = "$ver" ] && [ "$s_sum" = "$sum" ] && [ -f "$OUT/$deb" ]
}

case "${1:-}" in
--current) current; exit ;;
"") ;;
*) echo "usage: $0 [--current]" >&2; exit 2 ;;
esac

scripts/deps.sh deb

ver=$(version)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/healthd-deb.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
src=$tmp/healthd-$ver
mkdir -p "$src" "$OUT"
tree_tar >"$tmp/tree.tar"
sum=$(sha256sum <"$tmp/tree.tar" | cut -d' ' -f1)
# -m: files dated now, not 1970 (dh clamps them to the changelog date)
tar -xmf "$tmp/tree.tar" -C "$src"
rm -f "$tmp/tree.tar"
sed -i "1s/(.*)/($ver)/" "$src/debian/changelog"

rm -f "$OUT"/healthd_* "$OUT"/healthd-dbgsym_* "$OUT/SOURCE"
start=${EPOCHREALTIME/[.,]/}
echo "deb: building healthd $ver (log: $OUT/build.log)" >&2
if ! (cd "$src" && dpkg-buildpackage -us -uc -b --jobs-try=auto) >"$OUT/build.log" 2>&1; then
	tail -n 30 "$OUT/build.log" >&2
	echo "deb: dpkg-buildpackage failed (whole log: $OUT/build.log)" >&2
	exit 1
fi
arch=$(dpkg-architecture -qDEB_HOST_ARCH)
deb=healthd_${ver}_$arch.deb
# the package, healthd-dbgsym's, and the .buildinfo and .changes naming both
mv "$tmp"/*_"${ver}"_* "$OUT/"
echo "deb: built $OUT/$deb in $(((${EPOCHREALTIME/[.,]/} - start) / 1000)) ms" >&2

start=${EPOCHREALTIME/[.,]/}
if ! lintian --fail-on error,warning "$OUT/$deb" >"$OUT/lintian.log" 2>&1; then
	cat "$OUT/lintian.log" >&2
	echo "deb: lintian found errors or warnings in $OUT/$deb" >&2
	exit 1
fi
# (lintian's advice against running as root is kept in lintian.log only)
grep -vx 'running with root privileges is not recommended!' "$OUT/lintian.log" >&2 || true
echo "deb: lintian clean in $(((${EPOCHREALTIME/[.,]/} - start) / 1000)) ms" >&2
echo "$ver $sum $deb" >"$OUT/SOURCE"
