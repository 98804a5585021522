#!/usr/bin/env bash
# deploy/deb/build.sh: builds dist/lvsdr_<version>_<arch>.deb from this
# checkout with dpkg-deb alone (no debhelper, no new Go dependency).
#
#   deploy/deb/build.sh            # version from git describe
#   VERSION=1.2.0 deploy/deb/build.sh
#
# Environment:
#   VERSION     Debian version; default from `git describe --tags --always --dirty`:
#               a tag v1.2.0 gives 1.2.0, 3 commits past it 1.2.0+git20261125.3.4ccf147,
#               no tag 0.0~git20261125.4ccf147 (commit date, UTC); -dirty adds +dirty.
#   GO          the go command (default: go, then /usr/local/go/bin/go)
#   GOARCH      target architecture (default: go env GOARCH), mapped to Debian's name
#   MAINTAINER  the Maintainer field
#   DIST        output directory (default: dist)
#   DEB_COMPRESS  dpkg-deb -Z: xz (default, smallest), gzip (4x faster here), zstd, none
#
# Prints the path of the package on stdout, everything else on stderr.
set -euo pipefail
umask 022

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
cd "$top"

log() { echo "deb: $*" >&2; }
die() { echo "deb: $*" >&2; exit 1; }

GO=${GO:-go}
if ! command -v "$GO" >/dev/null; then
	[[ -x /usr/local/go/bin/go ]] || die "no go command (set GO)"
	GO=/usr/local/go/bin/go
fi
command -v dpkg-deb >/dev/null || die "dpkg-deb not found (apt-get install dpkg)"

# debian_version turns `git describe` into a Debian version that sorts
# upwards with the history.
debian_version() {
	local desc date dirty="" tag n hash
	desc=$(git describe --tags --always --dirty 2>/dev/null) || die "not a git checkout; set VERSION"
	date=$(TZ=UTC git log -1 --format=%cd --date=format-local:%Y%m%d)
	if [[ $desc == *-dirty ]]; then
		dirty=+dirty
		desc=${desc%-dirty}
	fi
	if [[ $desc =~ ^(.+)-([0-9]+)-g([0-9a-f]+)$ ]]; then
		tag=${BASH_REMATCH[1]} n=${BASH_REMATCH[2]} hash=${BASH_REMATCH[3]}
		tag=${tag#v}
		echo "${tag//-/\~}+git${date}.${n}.${hash}${dirty}"
	elif [[ $desc =~ ^[0-9a-f]+$ ]]; then
		echo "0.0~git${date}.${desc}${dirty}"
	else
		tag=${desc#v}
		echo "${tag//-/\~}${dirty}"
	fi
}

version=${VERSION:-$(debian_version)}
[[ $version =~ ^[0-9][A-Za-z0-9.+~]*$ ]] ||
	die "version '$version' is not a valid Debian version (digits first, then [A-Za-z0-9.+~]); set VERSION"

goarch=$("$GO" env GOARCH)
case $goarch in
amd64 | arm64 | s390x | riscv64 | loong64) arch=$goarch ;;
386) arch=i386 ;;
arm) arch=armhf ;;
ppc64le) arch=ppc64el ;;
mips64le) arch=mips64el ;;
*) die "no Debian architecture for GOARCH=$goarch" ;;
esac

maintainer=${MAINTAINER:-lvsdr maintainers <maintainers@lvsdr.invalid>}
dist=${DIST:-dist}
work=$top/.cache/deb
root=$work/root
out=$dist/lvsdr_${version}_${arch}.deb

# Reproducible file dates: the commit's, unless the caller set one.
if [[ -z ${SOURCE_DATE_EPOCH:-} ]]; then
	SOURCE_DATE_EPOCH=$(git log -1 --format=%ct 2>/dev/null || date +%s)
fi
export SOURCE_DATE_EPOCH

log "lvsdr $version $arch"
rm -rf "$work"
mkdir -p "$root/DEBIAN" "$work/bin" "$dist"

# --version names the commit built (package internal/version).
stamp="-X github.com/lvsdr/lvsdr/internal/version.Version=$(git describe --tags --always --dirty 2>/dev/null || echo "$version")"
stamp+=" -X github.com/lvsdr/lvsdr/internal/version.Commit=$(git rev-parse HEAD 2>/dev/null || true)"
CGO_ENABLED=0 "$GO" build -trimpath -ldflags "-s -w $stamp" -o "$work/bin/" ./cmd/director ./cmd/realserver

# Man pages and completion scripts come from the same two main packages built
# with -tags gendocs: that build writes them from the command tree the binary
# runs (internal/gendocs says why), the completions byte for byte what
# `director completion bash` prints. It is built for this host, not for
# $GOARCH, so that a cross-built package is documented too.
CGO_ENABLED=0 GOOS=$("$GO" env GOHOSTOS) GOARCH=$("$GO" env GOHOSTARCH) \
	"$GO" build -tags gendocs -o "$work/gendocs/" ./cmd/director ./cmd/realserver
for cmd in director realserver; do
	"$work/gendocs/$cmd" -man "$work/man" -completion "$work/completion"
done
# lvsdr-topology(5), the topology file, from docs/configuration.md.
"$work/gendocs/director" -man "$work/man" -topology docs/configuration.md

# Every Go module linked into the binaries must be in the copyright file.
missing=$("$GO" version -m "$work/bin/director" "$work/bin/realserver" |
	awk '$1 == "dep" {print $2}' | sort -u |
	while read -r mod; do
		grep -q "^Files: .*${mod}/\*\|^ ${mod}/\*" "$here/copyright" || echo "$mod"
	done)
[[ -z $missing ]] || die "deploy/deb/copyright lacks a Files: paragraph for: $(echo "$missing" | tr '\n' ' ')"

install -D -m 0755 "$work/bin/director" "$root/usr/sbin/director"
install -D -m 0755 "$work/bin/realserver" "$root/usr/sbin/realserver"
for unit in deploy/systemd/lvsdr-director.service deploy/systemd/lvsdr-realserver.service; do
	install -D -m 0644 "$unit" "$root/lib/systemd/system/$(basename "$unit")"
done

# Section 8, one page per command and subcommand; Debian wants them gzipped
# at -9 without the name and date in the gzip header (-n: reproducible).
man8=$root/usr/share/man/man8
install -d -m 0755 "$man8"
for page in "$work/man"/*.8; do
	name=$(basename "$page")
	gzip -9n <"$page" >"$man8/$name.gz"
done
# Section 5, the topology file's format, the same way.
man5=$root/usr/share/man/man5
install -d -m 0755 "$man5"
for page in "$work/man"/*.5; do
	gzip -9n <"$page" >"$man5/$(basename "$page").gz"
done
# Each shell's directory for completions shipped by packages, loaded on demand.
for cmd in director realserver; do
	install -D -m 0644 "$work/completion/bash/$cmd" "$root/usr/share/bash-completion/completions/$cmd"
	install -D -m 0644 "$work/completion/zsh/_$cmd" "$root/usr/share/zsh/vendor-completions/_$cmd"
	install -D -m 0644 "$work/completion/fish/$cmd.fish" "$root/usr/share/fish/vendor_completions.d/$cmd.fish"
done

# The units' Documentation= is file:/usr/share/doc/lvsdr/operations.md, so the
# docs sit next to README.md rather than under docs/, and the examples in
# examples/ beside them. Their links into the source tree (docs/x.md,
# ../deploy/examples/y.yaml, ../../docs/x.md) are rewritten to where the
# files are installed, so none is dead there; a link to a file the package
# does not ship (test/vm/README.md) becomes its path in the source tree, as
# text. test/deb/run.sh checks that no link is dead.
doc=$root/usr/share/doc/lvsdr
relink() {
	sed -E -e 's#\]\((\.\./)+deploy/examples/#](examples/#g' -e 's#\]\(deploy/examples/#](examples/#g' \
		-e 's#\]\(deploy/\)#](examples/)#g' -e 's#\]\((\.\./)+README\.md#](README.md#g' \
		-e 's#\]\(docs/#](#g' -e 's#\]\((\.\./)+docs/#](../#g' \
		-e 's#\[([^]]*)\]\(((\.\./)*test/[^)]*)\)#\1 (in the source tree)#g' "$1"
}
install -d -m 0755 "$doc/examples"
relink README.md >"$doc/README.md"
for f in docs/*.md; do
	relink "$f" >"$doc/$(basename "$f")"
done
relink deploy/examples/README.md >"$doc/examples/README.md"
chmod 0644 "$doc"/*.md "$doc/examples/README.md"
install -m 0644 "$here/copyright" "$doc/copyright"
for f in deploy/examples/*.yaml; do
	install -m 0644 "$f" "$doc/examples/$(basename "$f")"
done
install -D -m 0644 "$here/lintian-overrides" "$root/usr/share/lintian/overrides/lvsdr"
{
	printf 'lvsdr (%s) unstable; urgency=medium\n\n' "$version"
	printf '  * Built from git %s.\n\n' "$(git describe --tags --always --dirty 2>/dev/null || echo "$version")"
	printf ' -- %s  %s\n' "$maintainer" "$(date -u -R -d "@$SOURCE_DATE_EPOCH")"
} | gzip -9n >"$doc/changelog.gz"
chmod 0644 "$doc/changelog.gz"

# The operator writes /etc/lvsdr/topology.yaml; the package ships the
# directory only (so no conffiles). /var/lib/lvsdr is made by postinst.
install -d -m 0755 "$root/etc/lvsdr"

for s in postinst prerm postrm; do
	install -m 0755 "$here/$s" "$root/DEBIAN/$s"
done

size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
sed -e "s|@VERSION@|$version|" -e "s|@ARCH@|$arch|" -e "s|@MAINTAINER@|$maintainer|" \
	-e "s|@INSTALLED_SIZE@|$size|" "$here/control.in" >"$root/DEBIAN/control"
chmod 0644 "$root/DEBIAN/control"
(cd "$root" && find . -path ./DEBIAN -prune -o -type f -print0 | LC_ALL=C sort -z | xargs -0 md5sum | sed 's| \./| |') >"$root/DEBIAN/md5sums"
chmod 0644 "$root/DEBIAN/md5sums"

# Only this version's package stays in dist/.
rm -f "$dist"/lvsdr_*_"$arch".deb
dpkg-deb --root-owner-group -Z"${DEB_COMPRESS:-xz}" --build "$root" "$out" >&2
log "built $out ($(du -k "$out" | cut -f1) KiB)"
echo "$out"
