#!/bin/bash
# capture.sh records the VRRP adverts Debian's keepalived sends, as the golden
# packets of vrrp/testdata. It runs keepalived in a network namespace of its
# own, joined by a veth pair to a second namespace where tcpdump listens, in
# the four modes lvsdr must interoperate with: v2 and v3, multicast and
# unicast. Output: one file per mode in the directory given (default
# vrrp/testdata), the whole IPv4 packet as hex on one line.
set -euo pipefail
out=${1:-$(dirname "$0")/../../vrrp/testdata}
out=$(cd "$out" && pwd)
command -v keepalived >/dev/null || apt-get -o DPkg::Lock::Timeout=300 install -y --no-install-recommends keepalived
command -v tcpdump >/dev/null || apt-get -o DPkg::Lock::Timeout=300 install -y --no-install-recommends tcpdump
tmp=$(mktemp -d)
nska=lvsdrcap-ka nscap=lvsdrcap-cap
cleanup() {
	[ -f "$tmp/ka.pid" ] && kill "$(cat "$tmp/ka.pid")" 2>/dev/null || true
	sleep 0.5
	ip netns del $nska 2>/dev/null || true
	ip netns del $nscap 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
ip netns add $nska
ip netns add $nscap
ip link add vka netns $nska type veth peer name vcap netns $nscap
ip -n $nska addr add 10.99.0.2/24 dev vka
ip -n $nscap addr add 10.99.0.1/24 dev vcap
ip -n $nska link set vka up
ip -n $nscap link set vcap up
ip -n $nska link set lo up
ip -n $nscap link set lo up

capture() { # name version unicast(0|1)
	local name=$1 version=$2 unicast=$3 extra=""
	[ "$unicast" = 1 ] && extra="unicast_src_ip 10.99.0.2
    unicast_peer {
        10.99.0.1
    }"
	local interval=1
	[ "$version" = 3 ] && interval=0.1
	cat >"$tmp/ka.conf" <<CONF
global_defs {
    vrrp_version $version
}
vrrp_instance VI_1 {
    state MASTER
    interface vka
    virtual_router_id 51
    priority 150
    advert_int $interval
    $extra
    virtual_ipaddress {
        10.99.0.100/32
        10.99.0.101/32
    }
}
CONF
	ip netns exec $nscap timeout 8 tcpdump -i vcap -c 2 -w "$tmp/$name.pcap" 'ip proto 112' 2>/dev/null &
	local tcpdump=$!
	sleep 0.5
	ip netns exec $nska keepalived -n -l -P -f "$tmp/ka.conf" -p "$tmp/ka.pid" -r "$tmp/vrrp.pid" &
	local ka=$!
	wait $tcpdump || true
	kill -TERM $ka; wait $ka || true
	# the pcap's last record: 16-byte record header, 14-byte Ethernet header, then the IPv4 packet
	python3 - "$tmp/$name.pcap" >"$out/keepalived-$name.hex" <<'PY'
import struct, sys
d = open(sys.argv[1], 'rb').read()
off, last = 24, None
while off < len(d):
    incl = struct.unpack('<I', d[off+8:off+12])[0]
    last = d[off+16:off+16+incl]
    off += 16 + incl
print(last[14:].hex())
PY
	echo "$name: $(cat "$out/keepalived-$name.hex")"
}
capture v2-multicast 2 0
capture v2-unicast 2 1
capture v3-multicast 3 0
capture v3-unicast 3 1
