#!/usr/bin/env bash
# make bench-kernel: the director against ipvsadm -R and keepalived on a real
# kernel, in one VM run, so that only ratios matter (the VM is emulated:
# absolute times are slow and vary between runs).
#
# Two shapes, each generated as a topology file and as the equivalent
# keepalived.conf (virtual_server blocks, lb_kind DR, lb_algo wrr,
# persistence_timeout 50, no checkers, the same weights):
#   own       one VIP, N/10 ports x 10 real servers of their own (N distinct
#             real servers): one weight is one destination.
#   rabbitmq  few nodes (10), N/10 ports, every service on every node, with a
#             tcp check through the VIP on each. keepalived has no checks
#             through the VIP: its figures, and ipvsadm -R's, are those of the
#             same table without checks.
# For each: ipvsadm -R from empty; keepalived start -> every real server in
# the kernel, and one weight edited + SIGHUP -> the kernel shows it; director
# run start -> every real server in the kernel, director status against
# ipvsadm -Ln, and one weight edited + SIGHUP -> the kernel shows it (with
# the kernel operations it ran, from its "ipvs" log lines); director apply
# from empty. It prints a table of times and ratios and the issue 9 targets
# as PASS/FAIL: informative, the exit code is 0 unless a step failed to run.
#
# Settings (environment; LVSDR_* reach the VM):
#   LVSDR_BENCH_REAL_SERVERS  destinations per shape (default 10000; 1000, 40000)
#   LVSDR_BENCH_SHAPES        "own rabbitmq" (default) or either alone
#   LVSDR_BENCH_NODES         nodes of the rabbitmq shape (default 10)
#   LVSDR_BENCH_CHECK_INTERVAL  check interval of the rabbitmq shape (default
#                             N/333 s, at least 5 s: about 333 probes a second)
#   LVSDR_BENCH_TIMEOUT       bound on each wait, in seconds (default 600)
#   LVSDR_BENCH_VM_TIMEOUT    bound on the whole VM run (default 3600)
#   LVSDR_BENCH_REF           build the director from this commit (git
#                             archive) instead of the working tree
set -euo pipefail
cd "$(dirname "$0")/../.."

size=${LVSDR_BENCH_REAL_SERVERS:-10000}
shapes=${LVSDR_BENCH_SHAPES:-own rabbitmq}
nodes=${LVSDR_BENCH_NODES:-10}
vip=10.99.255.250
first_port=20000

# generate writes, for one shape, the director's topology (topology.yaml),
# the same table for keepalived (keepalived.conf) and for ipvsadm -R (rules),
# and meta: what the kernel holds once the table is in, and how to edit one
# weight in each file.
generate() {
	local shape=$1 dir=$2 ports
	mkdir -p "$dir"
	case $shape in
	own)
		ports=$((size / 10))
		awk -v ports="$ports" -v first="$first_port" -v vip="$vip" -v out="$dir" '
		function addr(s, r,   i) { i = s * 10 + r + 256; return "10.99." int(i / 256) "." (i % 256) }
		BEGIN {
			t = out "/topology.yaml"; k = out "/keepalived.conf"
			print "vip: " vip >t
			print "director: {interface: eth0}" >t
			print "realserver: {interface: eth0}" >t
			print "services:" >t
			for (s = 0; s < ports; s++) {
				names = ""
				for (r = 0; r < 10; r++) names = names (r ? ", " : "") "n" s "_" r
				printf "  - {name: s%d, port: %d, persistence_timeout: 50, check: {type: none}, real_servers: [%s]}\n", s, first + s, names >t
			}
			print "real_servers:" >t
			for (s = 0; s < ports; s++) for (r = 0; r < 10; r++)
				printf "  - {name: n%d_%d, address: %s}\n", s, r, addr(s, r) >t
			print "global_defs {\n    router_id lvsdr-bench\n}" >k
			for (s = 0; s < ports; s++) {
				printf "virtual_server %s %d {\n    lb_algo wrr\n    lb_kind DR\n    persistence_timeout 50\n    protocol TCP\n", vip, first + s >k
				for (r = 0; r < 10; r++) printf "    real_server %s %d {\n        weight 1\n    }\n", addr(s, r), first + s >k
				print "}" >k
			}
			# One real server of one service: one destination.
			s = int(ports / 2); a = addr(s, 3)
			m = out "/meta"
			printf "edit_topology=%cs/{name: n%d_3, address: %s}/{name: n%d_3, address: %s, weight: 7}/%c\n", 39, s, a, s, a, 39 >m
			printf "edit_keepalived=%c/real_server %s %d {/{n;s/weight 1/weight 7/}%c\n", 39, a, first + s, 39 >m
			print "edited_destinations=1" >m
			printf "describe=%cone VIP, %d ports x 10 real servers of their own (%d real servers), no checks%c\n", 39, ports, ports * 10, 39 >m
		}'
		;;
	rabbitmq)
		ports=$((size / nodes))
		local interval=${LVSDR_BENCH_CHECK_INTERVAL:-$((size / 333 > 5 ? size / 333 : 5))}
		awk -v ports="$ports" -v nodes="$nodes" -v first="$first_port" -v vip="$vip" -v out="$dir" -v interval="$interval" '
		function addr(n) { return "10.99.250." (n + 1) }
		function topo(t, check,   s, n) {
			print "vip: " vip >t
			print "director: {interface: eth0}" >t
			print "realserver: {interface: eth0}" >t
			print "services:" >t
			for (s = 0; s < ports; s++)
				printf "  - {name: s%d, port: %d, persistence_timeout: 50, check: %s}\n", s, first + s, check >t
			print "real_servers:" >t
			for (n = 0; n < nodes; n++) printf "  - {name: rmq%d, address: %s}\n", n, addr(n) >t
		}
		BEGIN {
			topo(out "/topology.yaml", "{type: tcp, through_vip: true, interval: " interval "s, connect_timeout: 10s, retry: 1, delay_before_retry: 1s}")
			topo(out "/topology-nochecks.yaml", "{type: none}")
			k = out "/keepalived.conf"
			print "global_defs {\n    router_id lvsdr-bench\n}" >k
			for (s = 0; s < ports; s++) {
				printf "virtual_server %s %d {\n    lb_algo wrr\n    lb_kind DR\n    persistence_timeout 50\n    protocol TCP\n", vip, first + s >k
				for (n = 0; n < nodes; n++) printf "    real_server %s %d {\n        weight 1\n    }\n", addr(n), first + s >k
				print "}" >k
			}
			# A node weight is the weight of its destination in every service.
			n = int(nodes / 2); a = addr(n)
			m = out "/meta"
			printf "edit_topology=%cs/{name: rmq%d, address: %s}/{name: rmq%d, address: %s, weight: 7}/%c\n", 39, n, a, n, a, 39 >m
			printf "edit_keepalived=%c/real_server %s /{n;s/weight 1/weight 7/}%c\n", 39, a, 39 >m
			print "edited_destinations=" ports >m
			print "check_interval=" interval >m
			printf "describe=%cone VIP, %d ports x %d nodes (%d real servers), tcp checks through the VIP every %ds; ipvsadm -R and keepalived: the same table without checks%c\n", 39, ports, nodes, ports * nodes, interval, 39 >m
		}'
		;;
	*)
		echo "kernel.sh: unknown shape $shape (own, rabbitmq)" >&2
		return 2
		;;
	esac
	local plain=$dir/topology.yaml
	[[ -f $dir/topology-nochecks.yaml ]] && plain=$dir/topology-nochecks.yaml
	"$LVSDR_BENCH_BIN/director" apply --dry-run --empty-kernel --config "$plain" --state-dir "$dir/state" >"$dir/rules"
	"$LVSDR_BENCH_BIN/director" apply --dry-run --empty-kernel --config "$dir/topology.yaml" --state-dir "$dir/state" >"$dir/rules-director"
	rm -rf "$dir/state"
	# /proc/net/ip_vs: three header lines, then a line per service and per
	# destination.
	echo "kernel_lines=$(($(wc -l <"$dir/rules") + 3))" >>"$dir/meta"
	echo "director_lines=$(($(wc -l <"$dir/rules-director") + 3))" >>"$dir/meta"
	echo "ports=$ports" >>"$dir/meta"
}

if [[ ! -e /proc/net/ip_vs && -z ${LVSDR_VM:-} ]]; then
	out=$PWD/.cache/bench
	mkdir -p "$out"
	# The director from the working tree, or from a commit when others'
	# work in progress is in the tree.
	if [[ -n ${LVSDR_BENCH_REF:-} ]]; then
		rm -rf "$out/src" && mkdir -p "$out/src"
		git archive "$LVSDR_BENCH_REF" | tar -x -C "$out/src"
		(cd "$out/src" && go build -o "$out/" ./cmd/director)
		LVSDR_BENCH_BUILT="commit $(git rev-parse --short "$LVSDR_BENCH_REF")"
	else
		go build -o "$out/" ./cmd/director
		LVSDR_BENCH_BUILT="working tree at $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . ':!test/bench' || echo ', with uncommitted changes')"
	fi
	go build -o "$out/" ./test/bench/kernel/listen ./test/bench/kernel/syslog
	export LVSDR_BENCH_BIN=$out LVSDR_BENCH_DATA=$out/kernel-$size LVSDR_BENCH_BUILT
	rm -rf "$LVSDR_BENCH_DATA"
	for shape in $shapes; do
		echo "generating the $shape shape, $size real servers"
		generate "$shape" "$LVSDR_BENCH_DATA/$shape"
	done
	for c in keepalived ipvsadm; do
		command -v $c >/dev/null || { echo "kernel.sh: $c is missing on this machine (the VM uses its root): apt-get install $c" >&2; exit 1; }
	done
	exec test/vm/run --timeout "${LVSDR_BENCH_VM_TIMEOUT:-3600}" --mem "${LVSDR_BENCH_VM_MEM:-3072}" -- test/bench/kernel.sh
fi

# In the VM, from here on.
#
# How the times are taken: reading the IPVS table is itself costly here
# (/proc/net/ip_vs restarts its walk of the services every 4 KiB, and
# `ipvsadm -Ln` is a netlink dump per service: a large part of a second at
# 10,000 real servers in the emulated VM), so polling the kernel would slow
# what it measures. Each time is taken instead from the program's own log,
# which says when the work was done: keepalived's "Startup complete" and
# "Reload complete" (through a syslog socket that stamps each line), the
# director's "director running", its "ipvs" lines (one per kernel operation,
# written after the operation returned) and "reloaded". The logs are polled
# once a second, which costs little and does not change the figure; once
# the log says done, one read of the table checks that the kernel holds it
# all, and the figure is marked if it did not (then the table is polled).
bin=${LVSDR_BENCH_BIN:?}
data=${LVSDR_BENCH_DATA:?}
timeout=${LVSDR_BENCH_TIMEOUT:-600}
poll=${LVSDR_BENCH_POLL:-1}
ns=lvsdr-bench
work=$(mktemp -d)
failed=0
pids=()
namespaces=()
cleanup() {
	local p n
	for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
	for n in "${namespaces[@]}"; do ip netns del "$n" 2>/dev/null || true; done
}
trap cleanup EXIT
ulimit -n 1048576 2>/dev/null || ulimit -n 65536 2>/dev/null || true

fail() {
	echo "FAILED TO RUN: $*" >&2
	failed=1
}

# The network: a switch namespace with a bridge, the director's namespace
# (eth0, 10.99.0.1/16; every real server address is on that link) and, for
# the rabbitmq shape, one namespace per node with the VIP on lo.
netns() {
	ip netns add "$1"
	namespaces+=("$1")
	ip -n "$1" link set lo up
}
netns lvsdr-sw
ip -n lvsdr-sw link add br0 type bridge
ip -n lvsdr-sw link set br0 up
plug() {
	local host=$1 port=$2 addr=$3
	ip -n lvsdr-sw link add "$port" type veth peer name eth0 netns "$host"
	ip -n lvsdr-sw link set "$port" master br0 up
	ip -n "$host" addr add "$addr" dev eth0
	ip -n "$host" link set eth0 up
}
netns $ns
plug $ns p-director 10.99.0.1/16
# /proc/PID/net/ip_vs of a process in the namespace: the table of that
# namespace, read without entering it.
ip netns exec $ns sleep 1000000 &
pids+=($!)
ipvs=/proc/$!/net/ip_vs
for _ in $(seq 50); do [[ -e $ipvs ]] && break; sleep 0.1; done
# keepalived logs through syslog(3): our daemon stamps each line.
"$bin/syslog" -socket /dev/log >"$work/syslog" 2>&1 &
pids+=($!)
for _ in $(seq 50); do [[ -S /dev/log ]] && break; sleep 0.1; done

in_ns() { ip netns exec $ns "$@"; }
flush() { in_ns ipvsadm -C; }
lines() { wc -l <"$ipvs"; }
seconds() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
isnum() { [[ $1 =~ ^[0-9]+(\.[0-9]+)?$ ]]; }
ratio() {
	if isnum "$1" && isnum "$2"; then awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; else echo "-"; fi
}
has_lines() { (($(lines) >= $1)); }
has_weight() { (($(grep -c 'Route *7 ' "$ipvs") >= $1)); }

# await T0 PID WHAT CMD...: runs CMD every $poll s until it succeeds;
# returns 1, after saying why, when $timeout s passed since T0 or PID (if
# not empty) ended.
await() {
	local t0=$1 pid=$2 what=$3
	shift 3
	while ! "$@"; do
		if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then
			echo "$what: the process ended"
			return 1
		fi
		if ((${EPOCHREALTIME%.*} - ${t0%.*} >= timeout)); then
			echo "$what: not done within ${timeout}s"
			return 1
		fi
		sleep "$poll"
	done
}

# Logs. FILE FROM: the lines of FILE from line FROM on.
since() { tail -n +"$2" "$1"; }
# count FILE FROM PATTERN: how many of them match PATTERN.
count() { since "$1" "$2" | grep -cE -- "$3" || true; }
# logged FILE FROM PATTERN [N]: whether N (default 1) of them match.
logged() { (($(count "$1" "$2" "$3") >= ${4:-1})); }
# stamp FILE FROM PATTERN N: the time of the Nth match (N = last for the
# last), in Unix seconds: the director's time=RFC 3339, or the first field
# of our syslog's lines.
stamp() {
	local line
	if [[ $4 == last ]]; then
		line=$(since "$1" "$2" | grep -E -- "$3" | tail -1)
	else
		line=$(since "$1" "$2" | grep -E -- "$3" | sed -n "$4p")
	fi
	[[ -n $line ]] || return 0
	if [[ $line == time=* ]]; then
		line=${line#time=}
		date -d "${line%% *}" +%s.%N
	else
		echo "${line%% *}"
	fi
}
# elapsed T0 T1: seconds from T0 to T1, or "-" without T1.
elapsed() { if [[ -n $2 ]]; then seconds "$1" "$2"; else echo "-"; fi; }

# confirm T0 WHAT FIGURE CMD...: the kernel check after a log said done.
# Prints FIGURE if CMD holds; otherwise polls CMD and prints the time it
# first held, since T0 (the log was early, or wrong).
confirm() {
	local t0=$1 what=$2 figure=$3
	shift 3
	if "$@"; then
		echo "$figure"
		return
	fi
	echo "$what: the log said done at ${figure} s but the kernel did not hold it yet; polling the table" >&2
	local p=$poll
	poll=0.5
	if await "$t0" "" "$what (polling the table)" "$@" >&2; then
		seconds "$t0" "$EPOCHREALTIME"
	else
		echo ">$timeout"
	fi
	poll=$p
}

# stop PID SIGNAL: signals a process and waits for it to end.
stop() {
	local pid=$1
	kill "-$2" "$pid" 2>/dev/null || true
	for _ in $(seq 600); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
	kill -9 "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

# best N CMD...: the shortest wall time of N runs of CMD (its output
# discarded), or "failed".
best() {
	local n=$1 i t0 t1 t b=""
	shift
	for ((i = 0; i < n; i++)); do
		t0=$EPOCHREALTIME
		"$@" >/dev/null 2>"$work/best.err" || { echo "$* failed: $(head -c 300 "$work/best.err")" >&2; echo failed; return; }
		t1=$EPOCHREALTIME
		t=$(seconds "$t0" "$t1")
		if [[ -z $b ]] || (($(awk -v a="$t" -v b="$b" 'BEGIN { print (a < b) }'))); then b=$t; fi
		# A run of more than 10 s is not noise: once is enough.
		((${t%.*} < 10)) || break
	done
	echo "$b"
}

nodes_up() {
	local n
	for ((n = 0; n < nodes; n++)); do
		netns "lvsdr-rmq$n"
		plug "lvsdr-rmq$n" "p-rmq$n" "10.99.250.$((n + 1))/16"
		ip -n "lvsdr-rmq$n" addr add $vip/32 dev lo
		ip netns exec "lvsdr-rmq$n" sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2 \
			net.ipv4.conf.eth0.arp_ignore=1 net.ipv4.conf.eth0.arp_announce=2
		ip netns exec "lvsdr-rmq$n" "$bin/listen" -first-port $first_port -ports "$ports" >"$work/listen$n.log" 2>&1 &
		pids+=($!)
	done
	for ((n = 0; n < nodes; n++)); do
		for _ in $(seq 600); do grep -q ready "$work/listen$n.log" && break; sleep 0.1; done
		grep -q ready "$work/listen$n.log" || fail "listener of node $n: $(cat "$work/listen$n.log")"
	done
}

report=()
row() { report+=("$(printf '| %s | %s | %s | %s |' "$@")"); }
targets=()
target() { targets+=("$(printf '%-4s %s' "$1" "$2")"); }
verdict() { if isnum "$1" && isnum "$2" && (($(awk -v a="$1" -v b="$2" -v k="$3" 'BEGIN { print (a <= k * b) }'))); then echo PASS; else echo FAIL; fi; }

bench() {
	local shape=$1 dir=$data/$1
	local describe edit_topology edit_keepalived edited_destinations kernel_lines director_lines ports check_interval=""
	# shellcheck source=/dev/null
	source "$dir/meta"
	echo
	echo "== shape $shape: $describe"
	[[ $shape == rabbitmq ]] && nodes_up
	flush

	local t0 t1 R K_start K_hup D_start D_first D_hup D_reloaded S L A writes="-" from
	# ipvsadm -R, one process, the whole table.
	t0=$EPOCHREALTIME
	in_ns ipvsadm -R <"$dir/rules" || fail "ipvsadm -R"
	t1=$EPOCHREALTIME
	R=$(seconds "$t0" "$t1")
	(($(lines) == kernel_lines)) || fail "ipvsadm -R left $(lines) lines in /proc/net/ip_vs, want $kernel_lines"
	echo "ipvsadm -R: ${R} s ($(grep -c -- '^-A' "$dir/rules") services, $(grep -c -- '^-a' "$dir/rules") destinations)"
	t0=$EPOCHREALTIME
	lines >/dev/null
	echo "one read of /proc/net/ip_vs ($kernel_lines lines): $(seconds "$t0" "$EPOCHREALTIME") s"
	flush

	# keepalived: the checker process only, not forked, its table left in
	# place on stop (-I) so that its exit is not timed; ipvsadm -C flushes it.
	cp "$dir/keepalived.conf" "$work/keepalived.conf"
	from=$(($(wc -l <"$work/syslog") + 1))
	t0=$EPOCHREALTIME
	ip netns exec $ns keepalived -n -C -I -f "$work/keepalived.conf" -p "$work/k.pid" -c "$work/kc.pid" -r "$work/kv.pid" >"$work/keepalived.out" 2>&1 &
	local kpid=$!
	K_start=">$timeout"
	if await "$t0" "$kpid" "keepalived start" logged "$work/syslog" "$from" 'Startup complete'; then
		K_start=$(confirm "$t0" "keepalived start" "$(elapsed "$t0" "$(stamp "$work/syslog" "$from" 'Startup complete' 1)")" has_lines "$kernel_lines")
	fi
	echo "keepalived start -> all in: ${K_start} s ('Startup complete' logged; the kernel checked after)"
	K_hup=">$timeout"
	if kill -0 "$kpid" 2>/dev/null; then
		sed -i "$edit_keepalived" "$work/keepalived.conf"
		from=$(($(wc -l <"$work/syslog") + 1))
		t0=$EPOCHREALTIME
		kill -HUP "$kpid"
		if await "$t0" "$kpid" "keepalived reload" logged "$work/syslog" "$from" 'Reload complete'; then
			K_hup=$(confirm "$t0" "keepalived reload" "$(elapsed "$t0" "$(stamp "$work/syslog" "$from" 'Reload complete' 1)")" has_weight "$edited_destinations")
		fi
		echo "keepalived SIGHUP -> weight in: ${K_hup} s ('Reload complete' logged; the kernel checked after)"
		echo "keepalived's log after the SIGHUP:"
		{ since "$work/syslog" "$from" | head -8; } || true
	else
		fail "keepalived ended: $(tail -5 "$work/keepalived.out")"
	fi
	stop "$kpid" TERM
	flush

	# director run, in the namespace.
	cp "$dir/topology.yaml" "$work/topology.yaml"
	rm -rf "$work/state" "$work/sock"
	d() { in_ns "$bin/director" "$@" --config "$work/topology.yaml" --state-dir "$work/state" --control-socket "$work/sock"; }
	local log=$work/director.log ops=$((director_lines - 3))
	t0=$EPOCHREALTIME
	ip netns exec $ns "$bin/director" run --config "$work/topology.yaml" --state-dir "$work/state" --control-socket "$work/sock" >"$log" 2>&1 &
	local dpid=$!
	D_start=">$timeout"
	D_first=-
	# From empty, every destination is one logged operation: done when the
	# last of them is logged (with checks, they come as checks pass).
	if await "$t0" "$dpid" "director start" logged "$log" 1 'msg=ipvs ' "$ops"; then
		D_start=$(confirm "$t0" "director start" "$(elapsed "$t0" "$(stamp "$log" 1 'msg=ipvs ' "$ops")")" has_lines "$director_lines")
	fi
	await "$t0" "$dpid" "director running" logged "$log" 1 'msg="director running"' >/dev/null || true
	D_first=$(elapsed "$t0" "$(stamp "$log" 1 'msg="director running"' 1)")
	echo "director run start -> all in: ${D_start} s (the ${ops}th 'ipvs' line; the first reconcile ended, 'director running': ${D_first} s)"
	# What GOGC=400 costs in memory (cmd/director/main.go says why).
	echo "director memory after start: $(grep -hE '^Vm(RSS|HWM)' /proc/"$dpid"/status 2>/dev/null | tr -s ' \t' ' ' | paste -sd ' ')"
	S=-
	L=-
	local D_hup=">$timeout" D_reloaded=">$timeout" downs=0 by_reason=""
	if kill -0 "$dpid" 2>/dev/null; then
		S=$(best 2 d status)
		L=$(best 2 in_ns ipvsadm -Ln)
		echo "director status: ${S} s, ipvsadm -Ln: ${L} s (best of 2)"
		from=$(($(wc -l <"$log") + 1))
		sed -i "$edit_topology" "$work/topology.yaml"
		t0=$EPOCHREALTIME
		kill -HUP "$dpid"
		if await "$t0" "$dpid" "director reload" logged "$log" "$from" 'msg=reloaded '; then
			D_reloaded=$(elapsed "$t0" "$(stamp "$log" "$from" 'msg=reloaded ' 1)")
			writes=$(count "$log" "$from" 'msg=ipvs ')
			by_reason=$(since "$log" "$from" | grep 'msg=ipvs ' | sed -n 's/.*reason=\([a-z]*\).*/\1/p' | sort | uniq -c | awk '{ printf "%s%s %s", (NR > 1 ? ", " : ""), $1, $2 }')
			# The weight is in once the last operation of the reload
			# returned.
			local last
			last=$(stamp "$log" "$from" 'msg=ipvs .*reason=reload' last)
			[[ -n $last ]] || last=$(stamp "$log" "$from" 'msg=reloaded ' 1)
			D_hup=$(confirm "$t0" "director reload" "$(elapsed "$t0" "$last")" has_weight "$edited_destinations")
		fi
		downs=$(count "$log" 1 'msg="check state changed".* to=down')
		echo "director memory after status and reload: $(grep -hE '^Vm(RSS|HWM)' /proc/"$dpid"/status 2>/dev/null | tr -s ' \t' ' ' | paste -sd ' ')"
		echo "director SIGHUP -> weight in: ${D_hup} s ('reloaded' logged: ${D_reloaded} s); kernel operations after the SIGHUP: ${writes} (${by_reason:-none}); expected ${edited_destinations}; checks gone down during the run: ${downs}"
		{ since "$log" "$from" | grep 'msg=ipvs ' | head -3; } || true
		echo "the director's log, but its 'ipvs' lines:"
		{ grep -v -E 'msg=ipvs |msg="check state changed"' "$log" | head -30; } || true
	else
		fail "director run ended: $(tail -5 "$log")"
	fi
	stop "$dpid" TERM
	flush
	in_ns ip addr del $vip/32 dev eth0 2>/dev/null || true

	# director apply, one shot, from empty.
	rm -rf "$work/state"
	cp "$dir/topology.yaml" "$work/topology.yaml"
	t0=$EPOCHREALTIME
	d apply >/dev/null 2>"$work/apply.err" || fail "director apply: $(head -c 300 "$work/apply.err")"
	t1=$EPOCHREALTIME
	A=$(seconds "$t0" "$t1")
	(($(lines) == director_lines)) || fail "director apply left $(lines) lines in /proc/net/ip_vs, want $director_lines"
	echo "director apply: ${A} s"
	flush
	in_ns ip addr del $vip/32 dev eth0 2>/dev/null || true

	local v
	for v in "$K_start" "$K_hup" "$D_start" "$D_hup" "$S" "$L"; do
		isnum "$v" || [[ $v == ">$timeout" ]] || failed=1
	done
	report+=("" "shape $shape: $describe" "" "| measurement | time (s) | x ipvsadm -R | director / keepalived |" "|---|---|---|---|")
	row "ipvsadm -R, from empty" "$R" "1.00" ""
	row "keepalived start -> all in the kernel" "$K_start" "$(ratio "$K_start" "$R")" ""
	row "director run start -> all in the kernel" "$D_start" "$(ratio "$D_start" "$R")" "$(ratio "$D_start" "$K_start")"
	row "director run start -> first reconcile done" "$D_first" "$(ratio "$D_first" "$R")" ""
	row "director apply, from empty" "$A" "$(ratio "$A" "$R")" ""
	row "keepalived: weight edited, SIGHUP -> in the kernel" "$K_hup" "$(ratio "$K_hup" "$R")" ""
	row "director run: weight edited, SIGHUP -> in the kernel" "$D_hup" "$(ratio "$D_hup" "$R")" "$(ratio "$D_hup" "$K_hup")"
	row "director run: SIGHUP -> 'reloaded' logged" "$D_reloaded" "$(ratio "$D_reloaded" "$R")" ""
	row "director run: kernel operations after that SIGHUP (expected $edited_destinations)" "$writes" "" ""
	row "ipvsadm -Ln (director running)" "$L" "$(ratio "$L" "$R")" ""
	row "director status (from the running director)" "$S" "$(ratio "$S" "$R")" "$(ratio "$S" "$L") x ipvsadm -Ln"

	if [[ $shape == own ]]; then
		target "$(verdict "$D_start" "$R" 1.0)" "own: director run start ($D_start s) <= 1.0 x ipvsadm -R ($R s)"
		local hup=FAIL
		[[ $(verdict "$D_hup" "$K_hup" 1.0) == PASS && $writes == 1 ]] && hup=PASS
		target "$hup" "own: SIGHUP of one weight ($D_hup s) faster than keepalived's reload ($K_hup s), and exactly 1 kernel operation ($writes)"
	fi
	target "$(verdict "$S" "$L" 2.0)" "$shape: director status ($S s) <= 2 x ipvsadm -Ln ($L s)"
}

echo "kernel $(uname -r), $(nproc) CPUs, $(keepalived --version 2>&1 | head -1), $(ipvsadm --version 2>&1 | head -1)"
echo "director built from the ${LVSDR_BENCH_BUILT:-?}; $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "real servers per shape: $size; shapes: $shapes; bound on each wait: ${timeout}s"
# Each program runs once before anything is timed, so that its binary and
# libraries are in the VM's page cache, as they are on a host after its
# first start. Without it a program's first run pays the read of its file
# over 9p: for the director's 33 MB a second or more of a timed start, for
# keepalived's 1 MB and libraries much less.
for prog in "$bin/director" keepalived ipvsadm; do
	"$prog" --version >/dev/null 2>&1 || true
done
for shape in $shapes; do
	bench "$shape"
done
printf '%s\n' "${report[@]}"
echo
echo "issue 9 targets (informative):"
printf '%s\n' "${targets[@]}"
exit $failed
