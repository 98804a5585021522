#!/usr/bin/env bash
# Programs 1,000 services × 10 DR real servers into a real kernel, with
# `director apply` and with `ipvsadm -R` of the same rules, in one run so
# only their ratio matters (the VM is emulated: absolute times are slow).
# Run it with `make bench-kernel`; it runs in the VM of test/vm, in a network
# namespace of its own.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [[ ! -e /proc/net/ip_vs && -z ${LVSDR_VM:-} ]]; then
	out=$PWD/.cache/bench
	mkdir -p "$out"
	go build -o "$out/" ./cmd/director
	exec env LVSDR_BENCH_BIN="$out" test/vm/run --timeout 900 -- test/bench/kernel.sh
fi
director=${LVSDR_BENCH_BIN:?}/director
ns=lvsdr-bench
ip netns add $ns
trap 'ip netns del $ns' EXIT
ip -n $ns link add eth0 type veth peer name eth1
ip -n $ns link set eth0 up
ip -n $ns link set eth1 up
ip -n $ns addr add 10.99.0.1/16 dev eth0
work=$(mktemp -d)

# Each service has real servers of its own, so one weight is one destination.
awk 'BEGIN {
	print "vip: 10.99.255.250"
	print "director: {interface: eth0}"
	print "realserver: {interface: eth0}"
	print "services:"
	for (s = 0; s < 1000; s++) {
		names = ""
		for (r = 0; r < 10; r++) names = names (r ? ", " : "") "n" s "_" r
		printf "  - {name: s%d, port: %d, persistence_timeout: 50, check: {type: none}, real_servers: [%s]}\n", s, 20000 + s, names
	}
	print "real_servers:"
	for (s = 0; s < 1000; s++) for (r = 0; r < 10; r++) {
		i = s * 10 + r + 256
		printf "  - {name: n%d_%d, address: 10.99.%d.%d}\n", s, r, int(i / 256), i % 256
	}
}' >"$work/topology.yaml"
d() { ip netns exec $ns "$director" "$@" --config "$work/topology.yaml" --state-dir "$work/state" --control-socket "$work/sock"; }
now() { date +%s.%N; }
elapsed() { echo "$2 - $1" | bc; }

d apply --dry-run --empty-kernel >"$work/rules"
echo "rules: $(grep -c -- '^-A' "$work/rules") services, $(grep -c -- '^-a' "$work/rules") real servers"

t0=$(now); ip netns exec $ns ipvsadm -R <"$work/rules"; t1=$(now)
ipvsadm_r=$(elapsed "$t0" "$t1")
ip netns exec $ns ipvsadm -C

t0=$(now); d apply >/dev/null; t1=$(now)
apply=$(elapsed "$t0" "$t1")
t0=$(now); d apply >/dev/null; t1=$(now)
noop=$(elapsed "$t0" "$t1")
t0=$(now); ip netns exec $ns ipvsadm -Ln >/dev/null; t1=$(now)
dump=$(elapsed "$t0" "$t1")

sed -i 's/{name: n500_3, address: \([0-9.]*\)}/{name: n500_3, address: \1, weight: 7}/' "$work/topology.yaml"
t0=$(now); ops=$(d apply); t1=$(now)
weight=$(elapsed "$t0" "$t1")
t0=$(now); ip netns exec $ns ipvsadm -e -t 10.99.255.250:20500 -r 10.99.20.139:20500 -g -w 8; t1=$(now)
ipvsadm_e=$(elapsed "$t0" "$t1")

printf '%-52s %8s s\n' "ipvsadm -R, 1,000 services x 10 real servers" "$ipvsadm_r" \
	"director apply, the same from empty" "$apply" \
	"director apply again, nothing to do (read + diff)" "$noop" \
	"ipvsadm -Ln dump of the table" "$dump" \
	"director apply, one weight changed" "$weight" \
	"ipvsadm -e, one weight changed" "$ipvsadm_e"
echo "director apply / ipvsadm -R: $(echo "scale=2; $apply / $ipvsadm_r" | bc)"
echo "operations for one weight change: $(echo "$ops" | grep -c -- '^-')  ($ops)"
