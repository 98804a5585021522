package vip

import (
	"bytes"
	"net"
	"net/netip"
	"testing"
)

func TestGratuitousARPFrame(t *testing.T) {
	mac := net.HardwareAddr{0x02, 0, 0, 0, 0, 0x01}
	got := garpFrame(mac, netip.MustParseAddr("10.0.0.100"))
	want := []byte{
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0, 0, 0, 0x01, 0x08, 0x06, // Ethernet
		0, 1, 0x08, 0, 6, 4, 0, 1, // ARP request, Ethernet/IPv4
		0x02, 0, 0, 0, 0, 0x01, 10, 0, 0, 100, // sender: our MAC, the VIP
		0, 0, 0, 0, 0, 0, 10, 0, 0, 100, // target: the VIP
	}
	if !bytes.Equal(got, want) {
		t.Errorf("frame\n got % x\nwant % x", got, want)
	}
}
