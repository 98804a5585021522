#!/usr/bin/env bash
# The director's TCP checks against keepalived's TCP_CHECK on the same
# checks, in one VM run (keepalived needs IPVS, which only the VM has): 100
# services x 10 real servers = 1,000 checks, interval (delay_loop) 1 s,
# connect_timeout 1 s, retry 1, delay_before_retry 1 s. The real servers are
# 10 node namespaces on a bridge, each listening on the 100 service ports
# (test/bench/checks listen -address: read to the prober's FIN, then close).
# keepalived (-C, checkers only), `director run` on the same topology and
# the checker alone run one after the other (LVSDR_BENCH_ORDER), each in a
# director namespace of its own; after a warm-up each is measured over one
# window: the CPU of its processes (utime + stime from /proc, keepalived's
# parent and checker together), the probes it ran (the namespace's
# ActiveOpens) and so the CPU a probe, the RSTs it sent, the real servers up
# in the kernel at the end (destinations with a weight), the lowest
# up-count seen, every 5 s, during the window, and the director's "check
# state changed ... to=down" lines.
#
# Settings (environment; LVSDR_* reach the VM): LVSDR_BENCH_SERVICES
# (default 100), LVSDR_BENCH_NODES (default 10), LVSDR_BENCH_WARMUP (s,
# default 15), LVSDR_BENCH_WINDOW (s, default 20), LVSDR_BENCH_ORDER (the
# contenders, in order: keepalived, director, director1 (GOMAXPROCS=1),
# other (the binary LVSDR_BENCH_OTHER), checker; a name given
# again runs again, as NAME2, and the summary's ratio is of the means;
# default "keepalived director director keepalived checker": the order
# A B B A, so that a drift over the run favours neither), LVSDR_BENCH_PROFILE (1, or contender names: strace -c and
# perf of each after its window).
set -euo pipefail
cd "$(dirname "$0")/../../.."
services=${LVSDR_BENCH_SERVICES:-100}
nodes=${LVSDR_BENCH_NODES:-10}
vip=10.99.255.250
first_port=20000

if [[ ! -e /proc/net/ip_vs && -z ${LVSDR_VM:-} ]]; then
	out=$PWD/.cache/bench-checks
	rm -rf "$out" && mkdir -p "$out"
	${GO:-go} build -o "$out/" ./cmd/director ./test/bench/checks
	# LVSDR_BENCH_OTHER: another build of the director (another commit's),
	# measured in the same run as the contender "other".
	[[ -z ${LVSDR_BENCH_OTHER:-} ]] || cp "$LVSDR_BENCH_OTHER" "$out/director-other"
	command -v keepalived >/dev/null || { echo "vm.sh: keepalived is missing on this machine (the VM uses its root): apt-get install keepalived" >&2; exit 1; }
	awk -v services="$services" -v nodes="$nodes" -v first="$first_port" -v vip="$vip" -v out="$out" '
	BEGIN {
		t = out "/topology.yaml"; k = out "/keepalived.conf"
		print "vip: " vip >t
		print "director: {interface: eth0}" >t
		print "realserver: {interface: eth0}" >t
		print "services:" >t
		names = ""
		for (n = 0; n < nodes; n++) names = names (n ? ", " : "") "n" n
		for (s = 0; s < services; s++)
			printf "  - {name: s%d, port: %d, check: {type: tcp, interval: 1s, connect_timeout: 1s, retry: 1, delay_before_retry: 1s}, real_servers: [%s]}\n", s, first + s, names >t
		print "real_servers:" >t
		for (n = 0; n < nodes; n++) printf "  - {name: n%d, address: 10.99.250.%d}\n", n, n + 1 >t
		print "global_defs {\n    router_id lvsdr-bench-checks\n}" >k
		for (s = 0; s < services; s++) {
			printf "virtual_server %s %d {\n    delay_loop 1\n    lb_algo wrr\n    lb_kind DR\n    protocol TCP\n", vip, first + s >k
			for (n = 0; n < nodes; n++)
				printf "    real_server 10.99.250.%d %d {\n        weight 1\n        TCP_CHECK {\n            connect_timeout 1\n            retry 1\n            delay_before_retry 1\n        }\n    }\n", n + 1, first + s >k
			print "}" >k
		}
	}'
	export LVSDR_BENCH_BIN=$out LVSDR_BENCH_SERVICES=$services LVSDR_BENCH_NODES=$nodes
	exec test/vm/run --timeout "${LVSDR_BENCH_VM_TIMEOUT:-1800}" --mem "${LVSDR_BENCH_VM_MEM:-2048}" -- test/bench/checks/vm.sh
fi

# In the VM, from here on.
bin=${LVSDR_BENCH_BIN:?}
warmup=${LVSDR_BENCH_WARMUP:-15}
order=${LVSDR_BENCH_ORDER:-keepalived director director keepalived checker}
window=${LVSDR_BENCH_WINDOW:-20}
checks=$((services * nodes))
work=$(mktemp -d)
pids=()
namespaces=()
cleanup() {
	local p n
	for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
	for n in "${namespaces[@]}"; do ip netns del "$n" 2>/dev/null || true; done
}
trap cleanup EXIT
ulimit -n 65536

netns() {
	ip netns add "$1"
	namespaces+=("$1")
	ip -n "$1" link set lo up
}
plug() {
	local host=$1 port=$2 addr=$3
	ip -n lvsdr-bc-sw link add "$port" type veth peer name eth0 netns "$host"
	ip -n lvsdr-bc-sw link set "$port" master br0 up
	ip -n "$host" addr add "$addr" dev eth0
	ip -n "$host" link set eth0 up
}
netns lvsdr-bc-sw
ip -n lvsdr-bc-sw link add br0 type bridge
ip -n lvsdr-bc-sw link set br0 up
# The listeners end when this fifo's last writer (this script) goes.
mkfifo "$work/hold"
exec 3<>"$work/hold"
for ((n = 0; n < nodes; n++)); do
	netns "lvsdr-bc-n$n"
	plug "lvsdr-bc-n$n" "p-n$n" "10.99.250.$((n + 1))/16"
	ip netns exec "lvsdr-bc-n$n" "$bin/checks" listen -address "10.99.250.$((n + 1))" -checks "$services" <"$work/hold" >"$work/listen$n.log" 2>&1 &
	pids+=($!)
done
for ((n = 0; n < nodes; n++)); do
	for _ in $(seq 600); do grep -q ready "$work/listen$n.log" && break; sleep 0.1; done
	grep -q ready "$work/listen$n.log" || { echo "listener of node $n: $(cat "$work/listen$n.log")" >&2; exit 1; }
done
# director NAME N: a fresh namespace for the next contender, the director's
# address 10.99.0.N, so that none inherits the TIME_WAIT sockets and the
# ephemeral ports of the one before (at 1,000 connections a second they fill
# the port range, and each connect then searches it: the later contenders
# would pay for the earlier ones). Sets ns and ipvs, the table of the
# namespace, read without entering it.
director_ns() {
	ns=$1
	netns $ns
	plug $ns "p-$2" "10.99.0.$2/16"
	ip netns exec $ns sleep 1000000 &
	pids+=($!)
	ipvs=/proc/$!/net/ip_vs
	for _ in $(seq 50); do [[ -e $ipvs ]] && break; sleep 0.1; done
}

up() { awk '$1 == "->" && $4 ~ /^[0-9]+$/ && $4 > 0 { n++ } END { print n + 0 }' "$ipvs"; }
# ticks PID...: utime + stime of the processes, then stime alone, in
# USER_HZ.
ticks() {
	local p total=0 sys=0 f
	for p in "$@"; do
		f=$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null) || continue
		set -- $f
		total=$((total + ${12} + ${13}))
		sys=$((sys + ${13}))
	done
	echo $total $sys
}
# opens PID: the TCP connects the namespace of PID has started (ActiveOpens):
# the probes, retries included, whoever runs them.
# resets PID: the RSTs it has sent (OutRsts): a probe closing with FIN sends
# none.
opens() { awk '$1 == "Tcp:" && $2 ~ /^[0-9]+$/ { print $6 }' "/proc/$1/net/snmp"; }
resets() { awk '$1 == "Tcp:" && $2 ~ /^[0-9]+$/ { print $15 }' "/proc/$1/net/snmp"; }
# machine: the VM's busy and softirq ticks, from /proc/stat.
machine() { awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 + $9, $8 }' /proc/stat; }
named() {
	local p
	for p in /proc/[0-9]*; do
		if [[ $(cat "$p/comm" 2>/dev/null) == "$1" ]]; then echo "${p#/proc/}"; fi
	done
}
await_up() {
	for _ in $(seq 1200); do (($(up) >= checks)) && return 0; sleep 0.1; done
	echo "only $(up) of $checks real servers up after 120 s" >&2
}
hz=$(getconf CLK_TCK)

# measure NAME PID...: the window's CPU, the up-count at its end and the
# lowest seen, read every 5 s, over the window.
measure() {
	local name=$1 t0 t1 c0 c1 m0 m1 o0 o1 r0 low=$checks u i
	shift
	sleep "$warmup"
	o0=$(opens $1)
	r0=$(resets $1)
	c0=$(ticks "$@")
	m0=$(machine)
	t0=$EPOCHREALTIME
	for ((i = 0; i < window; i += 5)); do
		sleep 5
		u=$(up)
		((u < low)) && low=$u
	done
	c1=$(ticks "$@")
	o1=$(opens $1)
	m1=$(machine)
	t1=$EPOCHREALTIME
	awk -v name="$name" -v c0="$c0" -v c1="$c1" -v m0="$m0" -v m1="$m1" -v hz="$hz" -v a="$t0" -v b="$t1" -v up="$(up)" -v low="$low" -v n="$checks" -v cpus="$(nproc)" -v probes=$((o1 - o0)) -v resets=$(($(resets $1) - r0)) '
		BEGIN {
			split(c0, x); split(c1, y); split(m0, p); split(m1, q); c = y[1] - x[1]; w = b - a
			printf "%s: cpu=%.2fs core_pct=%.1f sys_share_pct=%.1f window=%.1fs probes=%d probes_per_s=%.0f us_per_probe=%.0f resets_sent=%d up=%d/%d lowest_up=%d vm_busy_pct=%.1f vm_softirq_pct=%.1f\n", name, c / hz, 100 * c / hz / w,
				(c > 0 ? 100 * (y[2] - x[2]) / c : 0), w, probes, probes / w, (probes > 0 ? 1e6 * c / hz / probes : 0), resets, up, n, low, 100 * (q[1] - p[1]) / hz / w / cpus, 100 * (q[2] - p[2]) / hz / w / cpus
		}' | tee -a "$work/results"
}

echo "kernel $(uname -r), $(nproc) CPUs, $(keepalived --version 2>&1 | head -1); $services services x $nodes real servers = $checks TCP checks, 1 s; order: $order"

# profile NAME PID...: with LVSDR_BENCH_PROFILE=1, after the window and
# still under load, the system calls of the processes (strace -c on every
# thread, counted per probe by their connect calls) and where the whole
# VM's CPU goes (perf, every CPU: the kernel's side of loopback and veth
# traffic runs in softirq, charged to whoever the tick finds).
profile() {
	local name=$1 tids=() p
	shift
	[[ ${LVSDR_BENCH_PROFILE:-0} == 1 || " ${LVSDR_BENCH_PROFILE:-} " == *" $name "* ]] || return 0
	for p in "$@"; do tids+=(-p "$p"); done
	echo "== $name: clocksource $(cat /sys/devices/system/clocksource/clocksource0/current_clocksource); sockstat of its namespace: $(ip netns exec $ns cat /proc/net/sockstat | grep '^TCP:')"
	if command -v strace >/dev/null; then
		timeout -s INT 10 strace -c -f -q "${tids[@]}" -o "$work/strace.$name" || true
		echo "== $name: strace -c -f, 10 s (strace slows what it counts: read the calls, not the times)"
		sed -n '1,30p' "$work/strace.$name"
		awk -v name="$name" '$NF == "connect" { c = $4 } { if ($NF ~ /^[a-z_0-9]+$/ && $NF != "total" && $4 ~ /^[0-9]+$/) { calls += $4 } }
			END { if (c > 0) printf "== %s: %d connects, %.2f system calls a probe\n", name, c, calls / c }' "$work/strace.$name"
	fi
	if command -v perf >/dev/null; then
		perf record -q -a -g -F 250 -o "$work/perf.$name" -- sleep 10 >/dev/null 2>&1 || { echo "== $name: perf record failed"; return 0; }
		perf report -i "$work/perf.$name" --stdio --no-children -g none --sort comm --percent-limit 0.5 >"$work/perf-comm.$name" 2>/dev/null || true
		perf report -i "$work/perf.$name" --stdio --no-children -g none --comm "$(cat /proc/$1/comm)" --sort dso,sym --percent-limit 0.4 >"$work/perf-sym.$name" 2>/dev/null || true
		perf report -i "$work/perf.$name" --stdio --children -g none --comm "$(cat /proc/$1/comm)" --sort sym --percent-limit 2 >"$work/perf-children.$name" 2>/dev/null || true
		echo "== $name: perf, whole VM, 10 s, by process"
		grep -v '^#' "$work/perf-comm.$name" | grep -v '^$' | sed -n '1,25p' || true
		echo "== $name: perf, its own samples by symbol (self)"
		grep -v '^#' "$work/perf-sym.$name" | grep -v '^$' | sed -n '1,70p' || true
		echo "== $name: perf, its own samples by symbol (with children)"
		grep -v '^#' "$work/perf-children.$name" | grep -v '^$' | sed -n '1,60p' || true
	fi
}

# A contender named again in LVSDR_BENCH_ORDER runs again, as NAME2, NAME3
# ... (its own namespace and address): alternating them shows how much of a
# difference is the order (the first contender of a run has been seen to
# pay more, on a VM still settling).
run_keepalived() {
	local name=${1:-keepalived}
	director_ns lvsdr-bc-$name $((10 + round))
	# keepalived logs to syslog, which nothing reads here: its verdicts are
	# read from the kernel's table.
	ip netns exec $ns keepalived -n -C -f "$bin/keepalived.conf" -p "$work/k.pid" -c "$work/kc.pid" -r "$work/kv.pid" >"$work/keepalived.out" 2>&1 &
	kpid=$!
	pids+=($kpid)
	await_up
	kpids=$(named keepalived)
	measure $name $kpids
	echo "$name: processes=$(echo $kpids | wc -w)" | tee -a "$work/results"
	profile $name $kpids
	kill -TERM $kpid
	wait $kpid 2>/dev/null || true
	ip netns exec $ns ipvsadm -C
}

# run_director [NAME [ENV...]]: director run on the topology, with ENV (e.g.
# GOMAXPROCS=1 as director1: one P, no second thread to wake and put back
# to sleep for each event).
run_director() {
	local name=${1:-director} exe=${2:-$bin/director}
	shift $(($# < 2 ? $# : 2))
	director_ns lvsdr-bc-$name $((10 + round))
	ip netns exec $ns env "$@" "$exe" run --config "$bin/topology.yaml" --state-dir "$work/state-$name" --control-socket "$work/sock-$name" >"$work/$name.log" 2>&1 &
	dpid=$!
	pids+=($dpid)
	await_up
	measure $name $dpid
	echo "$name: downs=$(grep -cE 'msg="check state changed".* to=down' "$work/$name.log" || true) late_warnings=$(grep -c 'start late' "$work/$name.log" || true)" | tee -a "$work/results"
	profile $name $dpid
	kill -TERM $dpid
	wait $dpid 2>/dev/null || true
	ip netns exec $ns ipvsadm -C
}
run_director1() { run_director "${1:-director1}" "$bin/director" GOMAXPROCS=1; }
run_other() { run_director "${1:-other}" "$bin/director-other"; }

# The checker alone (test/bench/checks on the same targets: the Manager and
# nothing else of the director), then the floor: the bare syscalls of one
# check back to back against the same listeners.
run_checker() {
	director_ns lvsdr-bc-c$round $((10 + round))
	ip netns exec $ns "$bin/checks" -checks "$checks" -remote 10.99.250.1 -per-node "$services" \
		-warmup "${warmup}s" -duration "${window}s" -floor 10s >"$work/checker.out" 2>"$work/checker.err" || cat "$work/checker.err" >&2
	grep -E '^(checks|checker_cpu|lag|floor)' "$work/checker.out" | sed 's/^/checker alone: /' | tee -a "$work/results"
}

round=0
declare -A runs=()
for contender in $order; do
	round=$((round + 1))
	runs[$contender]=$((${runs[$contender]:-0} + 1))
	name=$contender
	((runs[$contender] == 1)) || name=$contender${runs[$contender]}
	"run_$contender" "$name"
done

echo
awk '
	{ for (i = 1; i <= NF; i++) if (split($i, kv, "=") == 2) v[$1 " " kv[1]] = kv[2] }
	/^[a-z0-9]+: cpu=/ { name = substr($1, 1, length($1) - 1); order[++n] = name; pct[name] = v[$1 " core_pct"] + 0; upc[name] = v[$1 " up"]; low[name] = v[$1 " lowest_up"]; sys[name] = v[$1 " sys_share_pct"]; us[name] = v[$1 " us_per_probe"] + 0; rate[name] = v[$1 " probes_per_s"] }
	/checker_cpu_core_pct=/ { c = v["checker checker_cpu_core_pct"] + 0; cus = v["checker checker_cpu_us_per_probe"] }
	/floor_cpu_us_per_probe=/ { f = v["checker floor_cpu_us_per_probe"] }
	/ probes_per_s=/ { cr = v["checker probes_per_s"]; cf = v["checker failures"]; cd = v["checker downs"] }
	END {
		# keepalived, run once or more: the mean of its runs; so for the
		# director (director, director2, ...).
		for (i = 1; i <= n; i++) {
			x = order[i]
			if (x ~ /^keepalived[0-9]*$/) { kn++; ks += us[x]; kp += pct[x] }
			if (x ~ /^director[0-9]*$/ && x != "director1") { dn++; ds += us[x] }
		}
		k = (kn > 0 ? kp / kn : 0); ku = (kn > 0 ? ks / kn : 0)
		printf "| | %% of one core | probes/s | CPU a probe | in the kernel | x keepalived (a probe) | up at the end (lowest) |\n|---|---|---|---|---|---|---|\n"
		for (i = 1; i <= n; i++) { x = order[i]; printf "| %s | %.1f | %s | %.0f us | %s %% | %.2f | %s (%s) |\n", x, pct[x], rate[x], us[x], sys[x], (ku > 0 ? us[x] / ku : 0), upc[x], low[x] }
		if (cr != "") {
			printf "| checker alone (%s probes/s, %s failed, %s down) | %.1f | | %.2f | |\n", cr, cf, cd, c, (k > 0 ? c / k : 0)
			printf "checker alone: %s us a probe; floor: %s us a probe\n", cus, f
		}
		printf "director / keepalived CPU a probe: %.2f (target <= 0.5; means of %d and %d runs)\n", (ku > 0 && dn > 0 ? ds / dn / ku : 0), dn, kn
	}' "$work/results"
