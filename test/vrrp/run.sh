#!/bin/bash
# run.sh proves lvsdr's VRRP against Debian's keepalived 2.2.7 on this host:
# network namespaces joined by veth pairs and a bridge (no IPVS needed), the vrrp
# package's interop test (go test -tags vrrpinterop) in one, keepalived in the
# other, in v2 at 1 s and v3 at 100 ms, multicast and unicast, both
# directions. It prints the takeover times. Needs root. About 2 minutes.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH=/usr/local/go/bin:$PATH
if [ "$(id -u)" != 0 ]; then
	echo "test/vrrp/run.sh: needs root (network namespaces, raw sockets)" >&2
	exit 1
fi
command -v keepalived >/dev/null || apt-get -o DPkg::Lock::Timeout=300 install -y --no-install-recommends keepalived
keepalived --version 2>&1 | sed -n 1p

nsl=lvsdrvrrp-l$$ nsk=lvsdrvrrp-k$$ nsb=lvsdrvrrp-b$$
tmp=$(mktemp -d)
cleanup() {
	# only what runs in the namespaces made here: keepalived left by a failure
	for pid in $(ip netns pids $nsk 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
	for ns in $nsl $nsk $nsb; do ip netns del $ns 2>/dev/null || true; done
	rm -rf "$tmp"
}
trap cleanup EXIT
# lvsdr (10.99.0.1 on vl) and keepalived (10.99.0.2 on vk), each joined by a
# veth pair to a bridge in a third namespace: the test cuts lvsdr off (its
# bridge port down) without keepalived seeing a link change, to make a
# split brain and heal it.
for ns in $nsl $nsk $nsb; do ip netns add $ns; ip -n $ns link set lo up; done
ip -n $nsb link add br0 type bridge mcast_snooping 0
ip link add vl netns $nsl type veth peer name bl netns $nsb
ip link add vk netns $nsk type veth peer name bk netns $nsb
ip -n $nsb link set bl master br0
ip -n $nsb link set bk master br0
for dev in br0 bl bk; do ip -n $nsb link set $dev up; done
ip -n $nsl addr add 10.99.0.1/24 dev vl
ip -n $nsk addr add 10.99.0.2/24 dev vk
ip -n $nsl link set vl up
ip -n $nsk link set vk up

go test -c -tags vrrpinterop -o "$tmp/vrrp.test" ./vrrp
ip netns exec $nsl env VRRP_IFACE=vl VRRP_LOCAL=10.99.0.1 VRRP_KA_NS=$nsk VRRP_KA_IFACE=vk \
	VRRP_KA_ADDR=10.99.0.2 VRRP_BRIDGE_NS=$nsb VRRP_CUT_PORT=bl VRRP_WORKDIR="$tmp" \
	"$tmp/vrrp.test" -test.run '^TestInterop$' -test.v -test.timeout 170s "$@"
