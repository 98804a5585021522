#!/usr/bin/env bash
# BGP interop on this host, no IPVS needed: Debian's bird2 as the router,
# with ECMP, and two stand-in directors (test/bgp/speaker: the bgp
# package's Controller on embedded GoBGP), each in a network namespace of
# its own on one bridge. It shows and times:
#   - both sessions established (one with TCP MD5) and the VIP /32 in the
#     router's kernel with two next hops;
#   - a director killed with kill -9: its next hop gone (the kernel closes
#     the dead process's TCP session at once);
#   - the director back: announced again;
#   - SIGTERM: withdrawn while the session is still up, before the process
#     exits;
#   - every service below quorum: withdrawn; back in quorum: announced again
#     after the hold-down;
#   - a dead host (its link down): withdrawn when the hold time (9 s) runs
#     out; link back: announced again.
# Addresses are 10.9.0.0/24 and 192.0.2.10 inside the namespaces only. Runs
# as root, in about a minute; installs bird2 if missing.
set -euo pipefail
cd "$(dirname "$0")/../.."
GO=${GO:-go}

if [[ $EUID -ne 0 ]]; then
	echo "run.sh: needs root for its network namespaces" >&2
	exit 1
fi
if ! command -v bird >/dev/null || ! command -v birdc >/dev/null; then
	apt-get -o DPkg::Lock::Timeout=300 install -y --no-install-recommends bird2 >/dev/null
fi

tag=lvbgp$$
R=$tag-r A=$tag-a B=$tag-b
VIP=192.0.2.10 RTR=10.9.0.254 IPA=10.9.0.2 IPB=10.9.0.3
HOLD=9 HOLD_DOWN=5s
work=$(mktemp -d)
pids=()
namespaces=()
cleanup() {
	set +e
	for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
	wait 2>/dev/null
	for ns in "${namespaces[@]}"; do ip netns del "$ns"; done
	rm -rf "$work"
}
trap cleanup EXIT

"$GO" build -o "$work/speaker" ./test/bgp/speaker

# --- the network: one bridge in the router's namespace, a veth per director.
for ns in $R $A $B; do
	ip netns add "$ns"
	namespaces+=("$ns")
	ip -n "$ns" link set lo up
done
ip -n $R link add br0 type bridge
ip -n $R addr add $RTR/24 dev br0
ip -n $R link set br0 up
for d in a b; do
	ns=$tag-$d ip=$IPA
	[[ $d == b ]] && ip=$IPB
	ip -n $R link add p$d type veth peer name eth0 netns "$ns"
	ip -n $R link set p$d master br0 up
	ip -n "$ns" addr add $ip/24 dev eth0
	ip -n "$ns" link set eth0 up
done

# --- the router: bird2, ECMP into its kernel table.
cat >"$work/bird.conf" <<EOF
router id $RTR;
log stderr all;
protocol device { scan time 10; }
protocol kernel {
	ipv4 { import none; export all; };
	merge paths on;		# ECMP: one route, a next hop per director
}
template bgp director {
	local $RTR as 65000;
	passive on;		# the directors dial
	hold time $HOLD;
	keepalive time 3;
	error wait time 5, 30;	# bird's default 60 s idle after a hold timer expiry would hide the directors' own recovery
	ipv4 { import all; export none; };
}
protocol bgp da from director { neighbor $IPA as 65001; }
protocol bgp db from director { neighbor $IPB as 65001; password "lvsdr-md5"; }
EOF
ip netns exec $R bird -f -c "$work/bird.conf" -s "$work/bird.ctl" -P "$work/bird.pid" 2>"$work/bird.log" &
pids+=($!)
birdc() { command birdc -s "$work/bird.ctl" "$@"; }
for _ in $(seq 100); do birdc show status >/dev/null 2>&1 && break; sleep 0.05; done

# --- helpers
# Bash's own clock and parsing: a look at the route forks only ip, so the
# figures are good to a few milliseconds.
now_ns() { echo $((${EPOCHREALTIME/./} * 1000)); }
ms_since() { echo $(((${EPOCHREALTIME/./} * 1000 - $1) / 1000000)); }
# The next hops of the VIP's route in the router's kernel, sorted.
hops() {
	local out re='via ([0-9.]+)' list=() i j t
	out=$(ip -n $R -4 -o route show $VIP)
	while [[ $out =~ $re ]]; do
		list+=("${BASH_REMATCH[1]}")
		out=${out#*"${BASH_REMATCH[0]}"}
	done
	for ((i = 1; i < ${#list[@]}; i++)); do
		for ((j = i; j > 0; j--)); do
			[[ ${list[j - 1]} > ${list[j]} ]] || break
			t=${list[j]} list[j]=${list[j - 1]} list[j - 1]=$t
		done
	done
	echo "${list[*]}"
}
# wait_hops WANT TIMEOUT_S: until the VIP's next hops are WANT; fails after
# TIMEOUT_S. Looks every 2 ms or so.
wait_hops() {
	local t0
	t0=$(now_ns)
	until [[ "$(hops)" == "$1" ]]; do
		if (($(now_ns) - t0 > $2 * 1000000000)); then
			echo "FAIL: next hops of $VIP are '$(hops)', want '$1' (waited $2 s)" >&2
			echo "--- bird"; birdc show protocols; tail -20 "$work/bird.log"
			exit 1
		fi
		sleep 0.001
	done
}
declare -A pid
start_director() { # a|b
	local ns=$tag-$1 ip=$IPA pw=()
	[[ $1 == b ]] && ip=$IPB pw=(-password lvsdr-md5)
	ip netns exec "$ns" "$work/speaker" -router-id $ip -peer $RTR -vip $VIP -hold ${HOLD}s \
		-hold-down $HOLD_DOWN "${pw[@]}" >>"$work/$1.out" 2>>"$work/$1.err" &
	pid[$1]=$!
	pids+=($!)
}
both="$IPA $IPB"
declare -A fig

echo "== two directors start"
t0=$(now_ns)
start_director a
start_director b
wait_hops "$both" 30
fig[start]=$(ms_since "$t0")
established=$(birdc show protocols | grep -c Established || true)
birdc show protocols
birdc show route for $VIP all
echo "router kernel: $(ip -n $R route show $VIP | xargs)"
[[ $established == 2 ]] || { echo "FAIL: $established sessions established, want 2"; exit 1; }
echo "both sessions established (db with TCP MD5); the VIP has next hops: $(hops)"

echo "== kill -9 director a"
t0=$(now_ns)
kill -9 "${pid[a]}"
wait "${pid[a]}" 2>/dev/null || true
wait_hops "$IPB" 30
fig[kill]=$(ms_since "$t0")
echo "next hop $IPA gone in ${fig[kill]} ms; bird: $(birdc show protocols da | tail -1 | xargs)"

echo "== director a back"
t0=$(now_ns)
start_director a
wait_hops "$both" 30
fig[back]=$(ms_since "$t0")
echo "announced again in ${fig[back]} ms from the process start"

echo "== SIGTERM director a (graceful)"
: >"$work/a.out"
t0=$(now_ns)
kill -TERM "${pid[a]}"
wait_hops "$IPB" 30
gone=$(now_ns)
state=$(birdc show protocols da | tail -1 | awk '{print $6}')
wait "${pid[a]}" || true
exited=$(awk '$2 == "exit" {print $1}' "$work/a.out")
fig[term]=$(((gone - t0) / 1000000))
fig[term_exit]=$(((exited - gone) / 1000000))
echo "withdrawn ${fig[term]} ms after SIGTERM, session still '$state' then; the process exited ${fig[term_exit]} ms later"
[[ $state == Established ]] || { echo "FAIL: the session was '$state' when the route went, want Established (a withdrawal, not a closed session)"; exit 1; }
((exited > gone)) || { echo "FAIL: the process exited before the route was withdrawn"; exit 1; }

start_director a
wait_hops "$both" 30

echo "== every service of director b below quorum, then back"
t0=$(now_ns)
kill -USR1 "${pid[b]}"
wait_hops "$IPA" 30
fig[quorum]=$(ms_since "$t0")
state=$(birdc show protocols db | tail -1 | awk '{print $6}')
echo "withdrawn in ${fig[quorum]} ms, session '$state'"
t0=$(now_ns)
kill -USR2 "${pid[b]}"
wait_hops "$both" 30
fig[quorum_back]=$(ms_since "$t0")
echo "announced again after ${fig[quorum_back]} ms (hold-down $HOLD_DOWN)"

echo "== director a's link goes down (a dead host), then up"
t0=$(now_ns)
ip -n $A link set eth0 down
wait_hops "$IPB" 30
fig[dead]=$(ms_since "$t0")
echo "withdrawn after ${fig[dead]} ms (hold time $HOLD s, counted by bird from the last keepalive, which GoBGP sends every 3 s, and jittered by up to 25 % as RFC 4271 asks); bird: $(birdc show protocols da | tail -1 | xargs)"
t0=$(now_ns)
ip -n $A link set eth0 up
wait_hops "$both" 60
fig[dead_back]=$(ms_since "$t0")
echo "announced again ${fig[dead_back]} ms after the link came up"

echo "== both directors stop"
kill -TERM "${pid[a]}" "${pid[b]}"
wait_hops "" 30
wait "${pid[a]}" "${pid[b]}" || true
echo "no route to $VIP left: '$(ip -n $R route show $VIP)'"

cat <<EOF

BGP interop, bird $(birdc show status | awk '/^BIRD/ {print $2; exit}') with ECMP, two GoBGP directors (ms):
  both start -> two next hops          ${fig[start]}
  kill -9 -> next hop gone             ${fig[kill]}
  restart -> next hop back             ${fig[back]}
  SIGTERM -> withdrawn                 ${fig[term]}  (session up; exit ${fig[term_exit]} ms after)
  all below quorum -> withdrawn        ${fig[quorum]}
  back in quorum -> announced          ${fig[quorum_back]}  (hold-down $HOLD_DOWN)
  link down -> withdrawn               ${fig[dead]}  (hold time ${HOLD} s)
  link up -> announced                 ${fig[dead_back]}
EOF
echo "PASS: test/bgp/run.sh"
