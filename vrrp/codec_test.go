package vrrp

import (
	"bytes"
	"encoding/hex"
	"errors"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"
)

// The vector of the lead's notes: VRID 240, priority 100, 192.168.0.230,
// 100 cs, from 192.168.0.220 to 224.0.0.18, checksum 0x0608.
func TestMarshalV3GoldenVector(t *testing.T) {
	a := Advert{Version: 3, VRID: 240, Priority: 100, Interval: time.Second,
		Addresses: []netip.Addr{netip.MustParseAddr("192.168.0.230")}}
	got, err := a.Marshal(netip.MustParseAddr("192.168.0.220"), MulticastGroup)
	if err != nil {
		t.Fatal(err)
	}
	want := mustHex(t, "31f064010064 0608 c0a800e6")
	if !bytes.Equal(got, want) {
		t.Fatalf("marshal = % x, want % x", got, want)
	}
	back, err := Unmarshal(got, netip.MustParseAddr("192.168.0.220"), MulticastGroup)
	if err != nil {
		t.Fatal(err)
	}
	if !equalAdverts(back, a) {
		t.Fatalf("unmarshal = %+v, want %+v", back, a)
	}
}

// keepalived's own adverts decode to what its configuration says, and lvsdr
// marshals the very same bytes from that advert, in every mode.
func TestKeepalivedGolden(t *testing.T) {
	addrs := []netip.Addr{netip.MustParseAddr("10.99.0.100"), netip.MustParseAddr("10.99.0.101")}
	for _, tc := range []struct {
		file    string
		version int
		dst     string
		ival    time.Duration
	}{
		{"keepalived-v2-multicast.hex", 2, "224.0.0.18", time.Second},
		{"keepalived-v2-unicast.hex", 2, "10.99.0.1", time.Second},
		{"keepalived-v3-multicast.hex", 3, "224.0.0.18", 100 * time.Millisecond},
		{"keepalived-v3-unicast.hex", 3, "10.99.0.1", 100 * time.Millisecond},
	} {
		t.Run(tc.file, func(t *testing.T) {
			raw, err := os.ReadFile("testdata/" + tc.file)
			if err != nil {
				t.Fatal(err)
			}
			pkt := mustHex(t, string(raw))
			ihl := int(pkt[0]&0xf) * 4
			src := netip.AddrFrom4([4]byte(pkt[12:16]))
			dst := netip.AddrFrom4([4]byte(pkt[16:20]))
			if dst.String() != tc.dst || src.String() != "10.99.0.2" || pkt[8] != 255 || pkt[1] != 0xc0 || pkt[9] != Protocol {
				t.Fatalf("IP header: src %v dst %v TTL %d TOS %#x proto %d", src, dst, pkt[8], pkt[1], pkt[9])
			}
			msg := pkt[ihl:]
			got, err := Unmarshal(msg, src, dst)
			if err != nil {
				t.Fatal(err)
			}
			want := Advert{Version: tc.version, VRID: 51, Priority: 150, Interval: tc.ival, Addresses: addrs}
			if !equalAdverts(got, want) {
				t.Fatalf("unmarshal = %+v, want %+v", got, want)
			}
			ours, err := want.Marshal(src, dst)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(ours, msg) {
				t.Fatalf("lvsdr marshals % x, keepalived sent % x", ours, msg)
			}
		})
	}
}

// A v3 checksum computed without the pseudo-header (RFC 9568) is accepted.
func TestUnmarshalV3WithoutPseudoHeader(t *testing.T) {
	msg := mustHex(t, "31f064010064 0000 c0a800e6")
	sum := checksum(msg, nil)
	msg[6], msg[7] = byte(sum>>8), byte(sum)
	if _, err := Unmarshal(msg, netip.MustParseAddr("192.168.0.220"), MulticastGroup); err != nil {
		t.Fatalf("RFC 9568 form rejected: %v", err)
	}
}

func TestUnmarshalRejects(t *testing.T) {
	src, dst := netip.MustParseAddr("10.99.0.2"), MulticastGroup
	v2 := func(edit func([]byte)) []byte {
		b, err := Advert{Version: 2, VRID: 51, Priority: 150, Interval: time.Second,
			Addresses: []netip.Addr{netip.MustParseAddr("10.99.0.100")}}.Marshal(src, dst)
		if err != nil {
			t.Fatal(err)
		}
		edit(b)
		return b
	}
	fixSum := func(b []byte) {
		b[6], b[7] = 0, 0
		s := checksum(b, nil)
		b[6], b[7] = byte(s>>8), byte(s)
	}
	for _, tc := range []struct {
		name string
		msg  []byte
		want error
	}{
		{"short", []byte{0x21, 51, 150}, ErrMalformed},
		{"no address", v2(func(b []byte) { b[3] = 0; fixSum(b) }), ErrMalformed},
		{"count beyond the message", v2(func(b []byte) { b[3] = 2; fixSum(b) }), ErrMalformed},
		{"v2 without its auth trailer", v2(func([]byte) {})[:12], ErrMalformed},
		{"version 1", v2(func(b []byte) { b[0] = 0x11; fixSum(b) }), ErrBadVersion},
		{"type 2", v2(func(b []byte) { b[0] = 0x22; fixSum(b) }), ErrBadType},
		{"checksum", v2(func(b []byte) { b[7]++ }), ErrBadChecksum},
		{"priority changed after checksum", v2(func(b []byte) { b[2] = 200 }), ErrBadChecksum},
		{"simple password", v2(func(b []byte) { b[4] = 1; fixSum(b) }), ErrAuthMismatch},
		{"v3 checksum over another destination", mustV3(t, src, netip.MustParseAddr("10.99.0.9")), ErrBadChecksum},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Unmarshal(tc.msg, src, dst)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if RejectReason(err) != tc.want.(*RejectError).Reason {
				t.Fatalf("reason %q", RejectReason(err))
			}
		})
	}
}

func TestMarshalRefusesWhatCannotBeSent(t *testing.T) {
	one := []netip.Addr{netip.MustParseAddr("10.0.0.1")}
	for _, a := range []Advert{
		{Version: 2, Interval: 1500 * time.Millisecond, Addresses: one},
		{Version: 2, Interval: 256 * time.Second, Addresses: one},
		{Version: 3, Interval: 15 * time.Millisecond, Addresses: one},
		{Version: 3, Interval: 41 * time.Second, Addresses: one},
		{Version: 4, Interval: time.Second, Addresses: one},
		{Version: 3, Interval: time.Second},
		{Version: 3, Interval: time.Second, Addresses: []netip.Addr{netip.MustParseAddr("::1")}},
	} {
		if _, err := a.Marshal(one[0], MulticastGroup); err == nil {
			t.Errorf("%+v marshalled", a)
		}
	}
}

func mustV3(t *testing.T, src, dst netip.Addr) []byte {
	b, err := Advert{Version: 3, VRID: 51, Priority: 150, Interval: time.Second,
		Addresses: []netip.Addr{netip.MustParseAddr("10.99.0.100")}}.Marshal(src, dst)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func equalAdverts(a, b Advert) bool {
	if a.Version != b.Version || a.VRID != b.VRID || a.Priority != b.Priority || a.Interval != b.Interval || len(a.Addresses) != len(b.Addresses) {
		return false
	}
	for i := range a.Addresses {
		if a.Addresses[i] != b.Addresses[i] {
			return false
		}
	}
	return true
}
