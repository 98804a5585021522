#!/usr/bin/env bash
# test/deb/run.sh: builds the Debian package (make deb) and proves that it
# installs on a clean Debian bookworm (a minbase chroot), that the binaries,
# the units, the docs, the man pages, the shell completions and the state
# directory are in place, that each unit's sandbox scores at most
# $LVSDR_DEB_EXPOSURE_MAX with `systemd-analyze security`, and that remove
# and purge leave nothing behind; lintian too, when the host has it.
#
# Needs root (debootstrap, chroot). Touches nothing of this host outside
# $LVSDR_DEB_CACHE (default /var/cache/lvsdr-deb: the bootstrapped tree as a
# tarball, the .debs apt fetched, and the installed tree with systemd that
# test/e2e/systemd_test.go boots) and a scratch chroot: a tmpfs mounted on a
# directory under /var/tmp, unmounted and removed on exit. Nothing is mounted
# inside the chroot (no /proc, /dev, /sys) and no service runs: `director run`
# and `realserver start` are never called.
#
# Environment:
#   LVSDR_DEB_CACHE    cache directory (default /var/cache/lvsdr-deb)
#   LVSDR_DEB_MIRROR   Debian mirror (default: the bookworm one of this host's apt sources)
#   LVSDR_DEB_REFRESH  1: bootstrap the tree again (it also is when 30 days old)
#   LVSDR_DEB_KEEP     1: keep the chroot for inspection (printed at the end)
#   LVSDR_DEB_EXPOSURE_MAX  highest systemd-analyze security score, in tenths (default 30: 3.0)
set -euo pipefail
cd "$(dirname "$0")/../.."

suite=bookworm
cache=${LVSDR_DEB_CACHE:-/var/cache/lvsdr-deb}
base=$cache/$suite-minbase.tar.gz
# systemd_root is the installed tree with systemd, kept for the e2e suite.
systemd_root=$cache/$suite-systemd-root
# exposure_max is the highest `systemd-analyze security` score a unit may
# have, in tenths as its --threshold takes it (30: 3.0; the hardened units
# measured 2.5 and 2.2 with systemd 252).
exposure_max=${LVSDR_DEB_EXPOSURE_MAX:-30}
start=$SECONDS
step_start=$SECONDS
failures=0

log() { echo "deb-test: $*" >&2; }
die() { echo "deb-test: FAIL: $*" >&2; exit 1; }
step() {
	echo "deb-test: [$((SECONDS - step_start))s] done" >&2
	step_start=$SECONDS
	echo "== $*" >&2
}
ok() { echo "  ok   $*" >&2; }
bad() { echo "  FAIL $*" >&2; failures=$((failures + 1)); }
# lacks REGEX TEXT: true if no line of TEXT matches REGEX (grep -E).
lacks() { ! grep -qE "$1" <<<"$2"; }
# check DESCRIPTION COMMAND...: records a pass or a failure, never exits.
check() {
	local what=$1
	shift
	if "$@" >/dev/null 2>&1; then ok "$what"; else bad "$what"; fi
}

[[ $(id -u) -eq 0 ]] || die "must run as root (debootstrap, chroot)"
export DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8

# host_mirror prints the URI of this host's apt source for "$suite" main
# (deb822 .sources files and one-line .list files), so the chroot uses the
# registry this machine is configured, and allowed, to reach.
host_mirror() {
	local f
	for f in /etc/apt/sources.list.d/*.sources; do
		[[ -f $f ]] || continue
		awk -v suite="$suite" '
			function flush() {
				if (types ~ /(^| )deb( |$)/ && (" " suites " ") ~ (" " suite " ") && (" " comps " ") ~ / main / && enabled != "no" && uris != "") {
					split(uris, u, " "); print u[1]; found = 1; exit
				}
				types = suites = comps = uris = enabled = ""
			}
			/^[ \t]*$/ { flush(); next }
			/^#/ { next }
			{ key = tolower($1); sub(/:$/, "", key); $1 = ""; sub(/^ +/, "") }
			key == "types" { types = $0 } key == "suites" { suites = $0 }
			key == "components" { comps = $0 } key == "uris" { uris = $0 }
			key == "enabled" { enabled = tolower($0) }
			END { if (!found) flush() }
		' "$f"
	done
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[[ -f $f ]] || continue
		sed -e 's/\[[^]]*\]//' "$f" | awk -v suite="$suite" '$1 == "deb" && $3 == suite { for (i = 4; i <= NF; i++) if ($i == "main") { print $2; exit } }'
	done
}

# bootstrap makes the cached tarball: debootstrap minbase, this host's mirror,
# apt lists fetched, services forbidden to start (policy-rc.d).
bootstrap() {
	local mirror dir
	command -v debootstrap >/dev/null || {
		log "installing debootstrap"
		apt-get install -y -qq --no-install-recommends debootstrap >/dev/null ||
			{ apt-get update -qq && apt-get install -y -qq --no-install-recommends debootstrap >/dev/null; }
	}
	mirror=${LVSDR_DEB_MIRROR:-$(host_mirror | head -n1)}
	[[ -n $mirror ]] || die "no apt source for $suite main on this host; set LVSDR_DEB_MIRROR"
	log "debootstrap --variant=minbase $suite from $mirror"
	new_scratch dir bootstrap
	local -a keyring=()
	[[ -f /usr/share/keyrings/debian-archive-keyring.gpg ]] &&
		keyring=(--keyring=/usr/share/keyrings/debian-archive-keyring.gpg)
	if ! debootstrap "${keyring[@]}" --variant=minbase "$suite" "$dir" "$mirror" >"$cache/debootstrap.log" 2>&1; then
		tail -n 20 "$cache/debootstrap.log" >&2
		die "debootstrap failed; see $cache/debootstrap.log"
	fi
	echo "deb $mirror $suite main" >"$dir/etc/apt/sources.list"
	printf '#!/bin/sh\n# lvsdr test chroot: no service starts here.\nexit 101\n' >"$dir/usr/sbin/policy-rc.d"
	chmod 0755 "$dir/usr/sbin/policy-rc.d"
	cp -L /etc/resolv.conf "$dir/etc/resolv.conf"
	chroot "$dir" apt-get update -qq >"$cache/apt.log" 2>&1 || die "apt-get update in the chroot failed; see $cache/apt.log"
	chroot "$dir" apt-get clean
	rm -f "$dir/etc/resolv.conf"
	tar -C "$dir" --numeric-owner -czf "$base.new" .
	mv "$base.new" "$base"
	umount "$dir" 2>/dev/null || true
	[[ -n $(mounts_under "$dir") ]] || rm -rf --one-file-system "$dir"
	log "cached $base ($(du -m "$base" | cut -f1) MiB)"
}

# Scratch trees (the chroot, a bootstrap) are tmpfs mounts of their own on
# fresh directories under /var/tmp: dpkg's fsyncs and tar's ten thousand
# files cost nothing there, and cleanup is an unmount. They go on exit,
# whatever happens: every mount at or under one is unmounted, and a
# directory that still holds a mount is never deleted.
scratch=()
root=""
# new_scratch VAR NAME: makes the directory, mounts a tmpfs on it (on disk
# if that fails) and stores its path in VAR.
new_scratch() {
	local -n dir_=$1
	dir_=$(mktemp -d "/var/tmp/lvsdr-deb-$2.XXXXXX")
	scratch+=("$dir_")
	if ! mount -t tmpfs -o size=4g,mode=0755 lvsdr-deb-test "$dir_"; then
		log "no tmpfs for $dir_: on disk (slower)"
	fi
}
mounts_under() {
	findmnt -rn -o TARGET | awk -v d="$1" '$0 == d || index($0, d "/") == 1' | sort -r
}
cleanup() {
	local d m
	for d in "${scratch[@]}"; do
		[[ -d $d ]] || continue
		if [[ ${LVSDR_DEB_KEEP:-} == 1 && $d == "$root" ]]; then
			log "kept $d (umount $d && rmdir $d when done)"
			continue
		fi
		for m in $(mounts_under "$d"); do
			umount "$m" || umount -l "$m" || true
		done
		if [[ -n $(mounts_under "$d") ]]; then
			log "not removing $d: something is still mounted there"
			continue
		fi
		rm -rf --one-file-system "$d"
	done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== make deb" >&2
deb=$(make -s --no-print-directory deb | tail -n1)
[[ -f $deb ]] || die "make deb printed '$deb', not a package"
pkgver=$(dpkg-deb -f "$deb" Version)
log "$deb"

# lintian, when this host has it: a manual page for each binary (no
# no-manual-page) and no tag on the pages or the completion scripts. Its other
# tags are printed, not judged. Exit 2 is --fail-on (tags at error level),
# anything else but 0 means lintian itself failed.
if command -v lintian >/dev/null; then
	step "lintian $(basename "$deb") (host)"
	lintian_out=$(lintian --allow-root --pedantic --display-info "$deb" 2>&1) && rc=0 || rc=$?
	if [[ -n $lintian_out ]]; then
		while IFS= read -r line; do echo "  | $line"; done <<<"$lintian_out" >&2
	fi
	check "lintian ran (exit $rc)" test "$rc" -eq 0 -o "$rc" -eq 2
	check "lintian: no no-manual-page" lacks 'no-manual-page' "$lintian_out"
	check "lintian: nothing on man pages or completions" lacks 'manpage|groff|completion|usr/share/man/' "$lintian_out"
else
	log "lintian skipped: not on this host"
fi

step "clean $suite chroot"
mkdir -p "$cache/archives"
exec 9>"$cache/lock"
flock 9 # one run at a time uses (and may rebuild) the cache
if [[ ! -f $base || ${LVSDR_DEB_REFRESH:-} == 1 ]] || [[ -n $(find "$base" -mtime +30) ]]; then
	bootstrap
fi
new_scratch root root
tar -C "$root" --numeric-owner -xzf "$base"
cp -L /etc/resolv.conf "$root/etc/resolv.conf"
in_root() { chroot "$root" "$@"; }
# apt in the chroot: no pty (nothing is mounted on /dev/pts), no _apt sandbox
# (the archive holds root's copies of cached .debs).
apt=(apt-get -o Dpkg::Use-Pty=0 -o APT::Sandbox::User=root)
# cache_debs keeps the .debs apt fetched for the next run.
cache_debs() {
	find "$root/var/cache/apt/archives" -maxdepth 1 -name '*.deb' -exec cp -n -t "$cache/archives/" {} +
}
for p in iproute2 procps systemd; do
	if in_root dpkg -s "$p" >/dev/null 2>&1; then die "the base tree already has $p: not clean"; fi
done
in_root test ! -e /usr/sbin/director || die "the base tree already has /usr/sbin/director"
log "$root"

step "apt-get install ./$(basename "$deb") (dependencies from the mirror)"
cp "$deb" "$root/tmp/"
chmod 0644 "$root/tmp/$(basename "$deb")"
# .debs of earlier runs: apt takes them from its archive instead of the network.
find "$cache/archives" -name '*.deb' -exec cp -t "$root/var/cache/apt/archives/" {} +
install_out=$root/tmp/install.log
if ! in_root "${apt[@]}" install -y --no-install-recommends "/tmp/$(basename "$deb")" >"$install_out" 2>&1; then
	log "install failed with the cached apt lists; apt-get update and again"
	in_root "${apt[@]}" update -qq >>"$install_out" 2>&1 || true
	in_root "${apt[@]}" install -y --no-install-recommends "/tmp/$(basename "$deb")" >>"$install_out" 2>&1 ||
		{ cat "$install_out" >&2; die "apt-get install of the package failed"; }
fi
cache_debs
sed 's/^/  | /' "$install_out" | grep -E 'Setting up|lvsdr:|^  \| (E|W):' >&2 || true

step "installed"
check "lvsdr $pkgver installed" sh -c "chroot '$root' dpkg-query -W -f '\${Status} \${Version}' lvsdr | grep -qx 'install ok installed $pkgver'"
check "iproute2 came in as a dependency" in_root dpkg -s iproute2
check "procps (/bin/kill of ExecReload) came in as a dependency" in_root dpkg -s procps
check "ipvsadm recommended (issue 15 item 8)" test "$(dpkg-deb -f "$deb" Recommends)" = ipvsadm
check "ipvsadm not installed (a Recommends, and --no-install-recommends)" sh -c "! chroot '$root' dpkg -s ipvsadm"
check "postinst printed the hint for /etc/lvsdr/topology.yaml" grep -q 'lvsdr: write /etc/lvsdr/topology.yaml' "$install_out"
check "postinst says to enable the director on both of a pair (director.ha), as two-directors.yaml does" grep -q 'two directors: the same file with director.ha on both, and lvsdr-director enabled on both' "$install_out"
check "postinst no longer sends the pair to keepalived" lacks 'keepalived starts|do not enable' "$(cat "$install_out")"
check "director --help exits 0" in_root /usr/sbin/director --help
check "realserver --help exits 0" in_root /usr/sbin/realserver --help
check "director is on root's PATH" in_root sh -c 'command -v director'
for unit in lvsdr-director.service lvsdr-realserver.service; do
	u=$root/lib/systemd/system/$unit
	check "$unit in /lib/systemd/system, mode 644" test "$(stat -c %a "$u" 2>/dev/null)" = 644
	check "$unit is the repository's" cmp "$u" "deploy/systemd/$unit"
	# Every command the unit runs must exist in the installed system.
	while read -r cmd; do
		check "$unit: $cmd is executable" in_root test -x "$cmd"
	done < <(sed -n -E 's/^Exec[A-Za-z]*=[-@:+!]*([^ ]+).*/\1/p' "$u" | sort -u)
	while read -r docpath; do
		check "$unit: Documentation=file:$docpath exists" in_root test -f "$docpath"
	done < <(sed -n -E 's/^Documentation=.*file:([^ ]+).*/\1/p' "$u")
	check "$unit not enabled" sh -c "! ls '$root'/etc/systemd/system/*.wants/$unit"
done
check "example /usr/share/doc/lvsdr/examples/rabbitmq.yaml" in_root test -f /usr/share/doc/lvsdr/examples/rabbitmq.yaml
check "director validate accepts the packaged example" in_root /usr/sbin/director validate --config /usr/share/doc/lvsdr/examples/rabbitmq.yaml
for f in deploy/examples/*.yaml; do
	check "example $(basename "$f") shipped, as in the repository" cmp "$f" "$root/usr/share/doc/lvsdr/examples/$(basename "$f")"
	check "director validate accepts the packaged $(basename "$f")" in_root /usr/sbin/director validate --config "/usr/share/doc/lvsdr/examples/$(basename "$f")"
done
# The pair's example is lvsdr's own VRRP now: enabled on both directors,
# no keepalived starting and stopping the director.
two=$root/usr/share/doc/lvsdr/examples/two-directors.yaml
check "two-directors.yaml uses director.ha with connection_sync" sh -c "grep -q '^  ha:' '$two' && grep -q '^    connection_sync: true' '$two'"
check "two-directors.yaml enables the director on both" grep -q 'systemctl enable --now lvsdr-director' "$two"
check "two-directors.yaml no longer has keepalived start the director" lacks 'notify_master|systemctl start lvsdr-director|Do not .systemctl enable' "$(cat "$two")"
# dead_links DIR: prints each relative link of the Markdown files under DIR
# whose target does not exist there.
dead_links() {
	local f link
	while IFS= read -r -d '' f; do
		grep -oE '\]\([^)# ]+' "$f" | cut -c3- | while IFS= read -r link; do
			case $link in *://* | mailto:* | /*) continue ;; esac
			[[ -e $(dirname "$f")/$link ]] || echo "${f#"$root"}: $link"
		done
	done < <(find "$1" -name '*.md' -print0)
}
dead=$(dead_links "$root/usr/share/doc/lvsdr")
check "no dead relative link in /usr/share/doc/lvsdr${dead:+: $(echo $dead)}" test -z "$dead"
check "copyright and changelog in /usr/share/doc/lvsdr" in_root test -f /usr/share/doc/lvsdr/copyright -a -f /usr/share/doc/lvsdr/changelog.gz
check "/etc/lvsdr is a directory" in_root test -d /etc/lvsdr
check "/var/lib/lvsdr is a directory (postinst)" in_root test -d /var/lib/lvsdr

# Manual pages: one per command the installed binary lists (cobra's
# completion and help aside), section 8, gzipped, with the NAME line whatis
# and lintian read. man-db is not in a minbase tree; zcat is.
man8=$root/usr/share/man/man8
# gzip_9n FILE: mode 644, and the header gzip -9n writes: no name, no time
# (bytes 3-7 zero), best compression (XFL 2), Unix; then the whole file intact.
gzip_9n() {
	[[ $(stat -c %a "$1") == 644 && $(od -An -tx1 -N10 "$1" | tr -d ' \n') == 1f8b0800000000000203 ]] && gzip -t "$1"
}
# man_page FILE NAME: a section 8 page titled NAME, whose NAME section is
# "NAME - summary".
man_page() {
	zcat "$1" | grep -q "^\.TH \"${2^^}\" \"8\" " &&
		zcat "$1" | grep -A1 -x '\.SH NAME' | grep -q "^$2 - ."
}
# subcommands CMD [SUB...]: the commands `CMD SUB... --help` lists, cobra's
# completion and help aside.
subcommands() {
	in_root "$@" --help | awk '/^Available Commands:/ { on = 1; next } on && NF == 0 { exit } on && $1 != "completion" && $1 != "help" { print $1 }'
}
for cmd in director realserver; do
	pages=("$cmd")
	# A page per command at every depth (director ha status: director-ha-status).
	while read -r sub; do
		pages+=("$cmd-$sub")
		while read -r subsub; do pages+=("$cmd-$sub-$subsub"); done < <(subcommands "/usr/sbin/$cmd" "$sub")
	done < <(subcommands "/usr/sbin/$cmd")
	for page in "${pages[@]}"; do
		check "man8/$page.8.gz, mode 644, gzip -9n" gzip_9n "$man8/$page.8.gz"
		check "man8/$page.8.gz: .TH section 8, NAME '$page - ...'" man_page "$man8/$page.8.gz" "$page"
	done
	check "no other $cmd page than ${#pages[@]}" test "$(find "$man8" -name "$cmd.8.gz" -o -name "$cmd-*.8.gz" | wc -l)" -eq "${#pages[@]}"
done
# Section 5: the topology file's page, made from docs/configuration.md.
topology_page() {
	gzip_9n "$1" && zcat "$1" | grep -q '^\.TH "LVSDR-TOPOLOGY" "5" ' && zcat "$1" | grep -A1 -x '\.SH NAME' | grep -q '^lvsdr-topology \\- .'
}
check "man5/lvsdr-topology.5.gz, mode 644, gzip -9n: .TH section 5, NAME 'lvsdr-topology - ...'" topology_page "$root/usr/share/man/man5/lvsdr-topology.5.gz"

# Completion scripts, where each shell looks for those of packages, and equal
# to what the installed binary's own `completion SHELL` prints.
# same_as_command FILE COMMAND...: mode 644 and the output of COMMAND in the chroot.
same_as_command() {
	local f=$1
	shift
	[[ $(stat -c %a "$f") == 644 ]] && in_root "$@" | cmp -s - "$f"
}
for cmd in director realserver; do
	for f in bash:/usr/share/bash-completion/completions/$cmd zsh:/usr/share/zsh/vendor-completions/_$cmd \
		fish:/usr/share/fish/vendor_completions.d/$cmd.fish; do
		shell=${f%%:*} f=${f#*:}
		check "$f, mode 644, is '$cmd completion $shell'" same_as_command "$root$f" "/usr/sbin/$cmd" completion "$shell"
	done
done

step "bash completion through bash-completion's loader"
# With bash-completion (Priority: standard, so on most systems; not in a
# minbase tree) installed now, after the checks above, its loader must find
# each script by command name and register it. Running the completion
# function itself needs /dev/fd (process substitution), which this chroot
# does not mount; the binary's side of it, `CMD __complete WORD...`, is
# checked instead: the script is cobra's own (compared above) and only
# relays what that prints.
# loads_completion CMD: bash-completion's loader registers a function for CMD.
loads_completion() {
	# shellcheck disable=SC2016 # $1 is the inner shell's
	in_root bash -c 'source /usr/share/bash-completion/bash_completion
		_completion_loader "$1" # 124 (try again) when it loaded one
		complete -p "$1" | grep -q -- " -F __start_$1 $1\$"' loads_completion "$1"
}
# completes CMD WORD... -- WANT...: `CMD __complete WORD...` offers exactly WANT.
completes() {
	local -a args=() want=()
	while [[ $1 != -- ]]; do args+=("$1"); shift; done
	shift
	want=("$@")
	[[ $(in_root "${args[@]:0:1}" __complete "${args[@]:1}" 2>/dev/null | grep -v '^:' | cut -f1 | tr '\n' ' ') == "${want[*]} " ]]
}
if in_root "${apt[@]}" install -y --no-install-recommends bash-completion >"$root/tmp/bash-completion.log" 2>&1; then
	cache_debs
	check "bash-completion loads director's" loads_completion director
	check "bash-completion loads realserver's" loads_completion realserver
else
	tail -n 5 "$root/tmp/bash-completion.log" >&2
	bad "apt-get install bash-completion in the chroot"
fi
check "director dr<TAB>: drain" completes /usr/sbin/director dr -- drain
check "director apply --dr<TAB>: --dry-run" completes /usr/sbin/director apply --dr -- --dry-run
check "realserver st<TAB>: start status stop" completes /usr/sbin/realserver st -- start status stop

step "systemd-analyze verify and security"
# The host's systemd-analyze (--root) checks the units against the chroot:
# the binaries they run, the units they order against. It needs systemd's own
# units there, so systemd (no recommends) goes into the chroot now, after the
# package's own checks; its .debs are cached like the others. A host without
# systemd-analyze skips this.
if command -v systemd-analyze >/dev/null; then
	if in_root "${apt[@]}" install -y --no-install-recommends systemd >"$root/tmp/systemd.log" 2>&1; then
		cache_debs
		verify_out=$(cd "$root" && SYSTEMD_LOG_COLOR=0 systemd-analyze verify --man=no --generators=no --root="$root" \
			lib/systemd/system/lvsdr-director.service lib/systemd/system/lvsdr-realserver.service 2>&1) && rc=0 || rc=$?
		if [[ -n $verify_out ]]; then
			while IFS= read -r line; do echo "  | $line"; done <<<"$verify_out" >&2
		fi
		if [[ $rc -eq 0 && -z $verify_out ]]; then ok "systemd-analyze verify: both units, no warning"; else bad "systemd-analyze verify (exit $rc)"; fi
		# The sandbox of each unit, scored by systemd itself (0 best, 10
		# worst). The threshold is the hardened units' score with a little
		# room: a setting dropped by mistake pushes either over it. The
		# director must stay root with the network capabilities, hence not 0.
		for unit in lvsdr-director.service lvsdr-realserver.service; do
			sec_out=$(SYSTEMD_LOG_COLOR=0 systemd-analyze security --offline=yes --root="$root" --threshold="$exposure_max" "$unit" 2>&1) && rc=0 || rc=$?
			score=$(sed -n -E 's/.*Overall exposure level for [^:]+: ([0-9.]+).*/\1/p' <<<"$sec_out")
			grep -E '^✗' <<<"$sec_out" | sed 's/^/  | /' >&2 || true
			[[ -n $score ]] || sed 's/^/  | /' <<<"$sec_out" >&2
			check "$unit: systemd-analyze security exposure ${score:-?}, at most $((exposure_max / 10)).$((exposure_max % 10))" test "$rc" -eq 0 -a -n "$score"
		done
		# The e2e suite boots this tree with systemd as PID 1 in the VM
		# (test/e2e/systemd_test.go): systemd and the package are in it now.
		log "saving the tree with systemd for the e2e suite: $systemd_root"
		rm -rf --one-file-system "$systemd_root.new"
		cp -a "$root" "$systemd_root.new"
		rm -f "$systemd_root.new/etc/resolv.conf" "$systemd_root.new"/tmp/*.deb "$systemd_root.new"/var/cache/apt/archives/*.deb
		rm -rf --one-file-system "$systemd_root"
		mv "$systemd_root.new" "$systemd_root"
	else
		tail -n 5 "$root/tmp/systemd.log" >&2
		bad "apt-get install systemd in the chroot"
	fi
else
	log "skipped: no systemd-analyze on this host"
fi

step "the unit's ExecStartPre on the example as /etc/lvsdr/topology.yaml, then reinstall"
cp "$root/usr/share/doc/lvsdr/examples/rabbitmq.yaml" "$root/etc/lvsdr/topology.yaml"
check "director validate --config /etc/lvsdr/topology.yaml (ExecStartPre)" in_root /usr/sbin/director validate --config /etc/lvsdr/topology.yaml
echo 'state' >"$root/var/lib/lvsdr/marker"
mkdir -p "$root/etc/systemd/system/multi-user.target.wants"
ln -sf /lib/systemd/system/lvsdr-director.service "$root/etc/systemd/system/multi-user.target.wants/lvsdr-director.service"
check "dpkg -i over the installed package (prerm upgrade, postinst configure)" in_root dpkg -i "/tmp/$(basename "$deb")"
check "reinstall kept /var/lib/lvsdr's contents" test -f "$root/var/lib/lvsdr/marker"

step "dpkg -r lvsdr"
check "dpkg -r lvsdr" in_root dpkg -r lvsdr
check "director gone" test ! -e "$root/usr/sbin/director"
check "realserver gone" test ! -e "$root/usr/sbin/realserver"
check "units gone" sh -c "! ls '$root'/lib/systemd/system/lvsdr-*"
check "man pages gone" sh -c "! ls '$man8'/director*.8.gz '$man8'/realserver*.8.gz"
check "completion scripts gone" sh -c "! ls '$root'/usr/share/bash-completion/completions/director '$root'/usr/share/zsh/vendor-completions/_director '$root'/usr/share/fish/vendor_completions.d/director.fish"
check "state kept until purge" test -f "$root/var/lib/lvsdr/marker"
check "package left in config-files state" sh -c "chroot '$root' dpkg-query -W -f '\${Status}' lvsdr | grep -qx 'deinstall ok config-files'"

step "dpkg -P lvsdr"
check "dpkg -P lvsdr" in_root dpkg -P lvsdr
check "package unknown to dpkg" sh -c "! chroot '$root' dpkg-query -W lvsdr"
check "/var/lib/lvsdr gone" test ! -e "$root/var/lib/lvsdr"
check "enablement symlink gone" test ! -L "$root/etc/systemd/system/multi-user.target.wants/lvsdr-director.service"
check "the operator's /etc/lvsdr/topology.yaml kept" test -f "$root/etc/lvsdr/topology.yaml"
check "no lvsdr file left in /usr or /lib" sh -c "! find '$root/usr' '$root/lib/systemd' -name '*lvsdr*' -o -name 'director*' -o -name 'realserver*' -o -name _director -o -name _realserver | grep -q ."

step "summary"
echo "deb-test: total $((SECONDS - start))s" >&2
if [[ $failures -gt 0 ]]; then
	die "$failures check(s) failed"
fi
echo "deb-test: PASS $deb" >&2
