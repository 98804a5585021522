package topology

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// withHA is valid with director.ha from issue 11's contract.
var withHA = strings.Replace(valid, "director:\n  interface: eth0\n", `director:
  interface: eth0
  ha:
    vrid: 51
    version: 3
    advert_interval: 100ms
    unicast: false
    preempt: true
    preempt_delay: 0s
    directors:
      - {name: lb1, address: 10.0.0.10, priority: 150}
      - {name: lb2, address: 10.0.0.11, priority: 100}
`, 1)

func TestHA(t *testing.T) {
	topo, err := Parse("t.yaml", []byte(withHA))
	if err != nil {
		t.Fatal(err)
	}
	want := HA{
		VRID: 51, Version: 3, AdvertInterval: 100 * time.Millisecond, Preempt: true,
		Directors: []HADirector{
			{Name: "lb1", Address: netip.MustParseAddr("10.0.0.10"), Priority: 150},
			{Name: "lb2", Address: netip.MustParseAddr("10.0.0.11"), Priority: 100},
		},
		GARPRepeat: 5, GARPDelay: 5 * time.Second, SyncID: 51, SyncGroup: netip.MustParseAddr("224.0.0.81"), SyncPort: 8848,
	}
	if h := topo.Director.HA; h == nil || !haEqual(*h, want) {
		t.Errorf("ha:\n got %+v\nwant %+v", topo.Director.HA, want)
	}
	if topo.Director.BGP != nil {
		t.Errorf("bgp %+v, want nil", topo.Director.BGP)
	}

	// The defaults are keepalived's: version 2 at 1 s, 5 + 5 GARPs.
	minimal := strings.NewReplacer("    version: 3\n", "", "    advert_interval: 100ms\n", "", "    unicast: false\n", "", "    preempt: true\n", "", "    preempt_delay: 0s\n", "").Replace(withHA)
	topo, err = Parse("t.yaml", []byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	want.Version, want.AdvertInterval = 2, time.Second
	if h := topo.Director.HA; h == nil || !haEqual(*h, want) {
		t.Errorf("ha defaults:\n got %+v\nwant %+v", topo.Director.HA, want)
	}

	everything := strings.Replace(withHA, "    unicast: false\n", `    unicast: true
    garp_repeat: 3
    garp_delay: 0s
    garp_refresh: 1m
    connection_sync: true
    sync_id: 7
    sync_group: 224.0.0.82
    sync_port: 8849
`, 1)
	topo, err = Parse("t.yaml", []byte(everything))
	if err != nil {
		t.Fatal(err)
	}
	h := topo.Director.HA
	if !h.Unicast || h.GARPRepeat != 3 || h.GARPDelay != 0 || h.GARPRefresh != time.Minute || !h.ConnectionSync || h.SyncID != 7 ||
		h.SyncGroup != netip.MustParseAddr("224.0.0.82") || h.SyncPort != 8849 {
		t.Errorf("ha: %+v", h)
	}
	topo, err = Parse("t.yaml", []byte(strings.Replace(withHA, "    unicast: false\n", "    connection_sync: true\n", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if h := topo.Director.HA; !h.ConnectionSync || h.SyncID != 51 {
		t.Errorf("sync_id defaults to the vrid: %+v", h)
	}
	if topo, _ := Parse("t.yaml", []byte(valid)); topo.Director.HA != nil {
		t.Errorf("no ha key, ha = %+v", topo.Director.HA)
	}
}

func haEqual(a, b HA) bool {
	directors := slices.Equal(a.Directors, b.Directors)
	a.Directors, b.Directors = nil, nil
	return directors && a.VRID == b.VRID && a.Version == b.Version && a.AdvertInterval == b.AdvertInterval && a.Unicast == b.Unicast &&
		a.Preempt == b.Preempt && a.PreemptDelay == b.PreemptDelay && a.GARPRepeat == b.GARPRepeat && a.GARPDelay == b.GARPDelay &&
		a.GARPRefresh == b.GARPRefresh && a.ConnectionSync == b.ConnectionSync && a.SyncID == b.SyncID && a.SyncGroup == b.SyncGroup && a.SyncPort == b.SyncPort
}

func TestHAProblems(t *testing.T) {
	replace := func(old, new string) string {
		if !strings.Contains(withHA, old) {
			t.Fatalf("fixture lacks %q", old)
		}
		return strings.Replace(withHA, old, new, 1)
	}
	tests := []struct{ name, doc, want string }{
		{"vrid zero", replace("vrid: 51", "vrid: 0"), `t.yaml:5: director.ha.vrid must be between 1 and 255, not 0`},
		{"vrid too big", replace("vrid: 51", "vrid: 256"), `t.yaml:5: director.ha.vrid must be between 1 and 255, not 256`},
		{"vrid missing", replace("    vrid: 51\n", ""), `t.yaml:5: director.ha.vrid is required`},
		{"version 1", replace("version: 3", "version: 1"), `t.yaml:6: director.ha.version must be between 2 and 3, not 1`},
		{"v2 in milliseconds", replace("version: 3", "version: 2"), `t.yaml:7: director.ha.advert_interval must be whole seconds from 1s to 255s with VRRP version 2 (it counts in seconds), not 100ms: set version: 3 for a shorter interval`},
		{"default version in milliseconds", replace("    version: 3\n", ""), `t.yaml:6: director.ha.advert_interval must be whole seconds from 1s to 255s with VRRP version 2`},
		{"v2 too long", replace("version: 3\n    advert_interval: 100ms", "version: 2\n    advert_interval: 256s"), `director.ha.advert_interval must be whole seconds from 1s to 255s with VRRP version 2 (it counts in seconds), not 4m16s`},
		{"v3 not centiseconds", replace("advert_interval: 100ms", "advert_interval: 105ms"), `t.yaml:7: director.ha.advert_interval must be a multiple of 10ms from 10ms to 40.95s with VRRP version 3 (it counts in centiseconds), not 105ms`},
		{"v3 too long", replace("advert_interval: 100ms", "advert_interval: 41s"), `director.ha.advert_interval must be a multiple of 10ms from 10ms to 40.95s`},
		{"zero interval", replace("advert_interval: 100ms", "advert_interval: 0s"), `t.yaml:7: director.ha.advert_interval must be above zero`},
		{"unicast not a bool", replace("unicast: false", "unicast: no"), `t.yaml:8: director.ha.unicast must be true or false, not "no"`},
		{"preempt delay too long", replace("preempt_delay: 0s", "preempt_delay: 1001s"), `t.yaml:10: director.ha.preempt_delay must be at most 16m40s (as keepalived's), not 16m41s`},
		{"preempt delay without preempt", replace("preempt: true\n    preempt_delay: 0s", "preempt: false\n    preempt_delay: 30s"), `t.yaml:10: director.ha.preempt_delay is a delay before preempting, and preempt is false`},
		{"one director", replace("      - {name: lb2, address: 10.0.0.11, priority: 100}\n", ""), `t.yaml:12: director.ha.directors lists 1 director: VRRP needs every director of the VIP, at least 2`},
		{"directors missing", replace("    directors:\n      - {name: lb1, address: 10.0.0.10, priority: 150}\n      - {name: lb2, address: 10.0.0.11, priority: 100}\n", ""), `t.yaml:5: director.ha.directors is required`},
		{"directors not a list", replace("    directors:\n      - {name: lb1, address: 10.0.0.10, priority: 150}\n      - {name: lb2, address: 10.0.0.11, priority: 100}\n", "    directors: lb1\n"), `t.yaml:11: director.ha.directors must be a list, not "lb1"`},
		{"duplicate name", replace("name: lb2", "name: lb1"), `t.yaml:13: director.ha.directors[1]: name "lb1" is already used by directors[0]`},
		{"duplicate address", replace("address: 10.0.0.11", "address: 10.0.0.10"), `t.yaml:13: director.ha.directors[1] (lb2): address 10.0.0.10 is already used by directors[0]`},
		{"address is the VIP", replace("address: 10.0.0.11", "address: 10.0.0.100"), `t.yaml:13: director.ha.directors[1] (lb2): address 10.0.0.100 is the VIP`},
		{"bad address", replace("address: 10.0.0.11", "address: lb2.example"), `t.yaml:13: director.ha.directors[1] (lb2).address must be an IPv4 address, not "lb2.example"`},
		{"priority zero", replace("priority: 100", "priority: 0"), `t.yaml:13: director.ha.directors[1] (lb2).priority must be between 1 and 255, not 0`},
		{"priority missing", replace(", priority: 100}", "}"), `t.yaml:13: director.ha.directors[1] (lb2).priority is required`},
		{"unknown director key", replace("priority: 100}", "priority: 100, state: BACKUP}"), `t.yaml:13: director.ha.directors[1] (lb2): unknown key "state"`},
		{"unknown ha key", replace("    unicast: false\n", "    nopreempt: true\n"), `t.yaml:8: director.ha: unknown key "nopreempt"`},
		{"sync_id without sync", replace("    unicast: false\n", "    sync_id: 3\n"), `t.yaml:8: director.ha.sync_id is a setting of the sync daemons: it needs connection_sync: true`},
		{"sync_id too big", replace("    unicast: false\n", "    connection_sync: true\n    sync_id: 256\n"), `t.yaml:9: director.ha.sync_id must be between 0 and 255, not 256`},
		{"sync_group not multicast", replace("    unicast: false\n", "    connection_sync: true\n    sync_group: 10.0.0.1\n"), `t.yaml:9: director.ha.sync_group must be an IPv4 multicast group such as 224.0.0.81, not "10.0.0.1"`},
		{"garp_repeat zero", replace("    unicast: false\n", "    garp_repeat: 0\n"), `t.yaml:8: director.ha.garp_repeat must be between 1 and 100, not 0`},
		{"garp_refresh bad", replace("    unicast: false\n", "    garp_refresh: often\n"), `t.yaml:8: director.ha.garp_refresh must be a duration`},
		{"ha and bgp", replace("  ha:\n", "  bgp: {asn: 65001, peers: [{address: 10.0.0.254, asn: 65000}]}\n  ha:\n"), `t.yaml:4: director: ha and bgp together: one VIP owner model per file`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("t.yaml", []byte(tt.doc))
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error:\n%v\nwant it to contain:\n%s", err, tt.want)
			}
		})
	}
}

func TestHASelf(t *testing.T) {
	topo, err := Parse("t.yaml", []byte(withHA))
	if err != nil {
		t.Fatal(err)
	}
	h := topo.Director.HA
	addr := netip.MustParseAddr
	tests := []struct {
		addresses []netip.Addr
		name      string
		want      string
		err       string
	}{
		{[]netip.Addr{addr("192.168.1.1"), addr("10.0.0.11")}, "", "lb2", ""},
		{[]netip.Addr{addr("10.0.0.10")}, "", "lb1", ""},
		{[]netip.Addr{addr("10.0.0.10")}, "lb2", "lb2", ""},
		{nil, "lb1", "lb1", ""},
		{[]netip.Addr{addr("10.0.0.12")}, "", "", "this director is not in director.ha.directors: none of its addresses on director.interface (10.0.0.12) is a director's address; give --name (known: lb1, lb2)"},
		{nil, "", "", "(none)"},
		{nil, "lb3", "", `this director is not in director.ha.directors: no director is named "lb3" (known: lb1, lb2)`},
		{[]netip.Addr{addr("10.0.0.10"), addr("10.0.0.11")}, "", "", "this host has the addresses of several directors (lb1 and lb2): give --name"},
	}
	for _, tt := range tests {
		got, err := h.Self(tt.addresses, tt.name)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("Self(%v, %q) = %v, %v; want error %q", tt.addresses, tt.name, got, err, tt.err)
			}
			continue
		}
		if err != nil || got.Name != tt.want {
			t.Errorf("Self(%v, %q) = %v, %v; want %s", tt.addresses, tt.name, got, err, tt.want)
		}
	}
	if _, err := h.Self(nil, "lb3"); !errors.Is(err, ErrNoSelf) {
		t.Errorf("an unknown name: %v, want ErrNoSelf", err)
	}
	self, _ := h.Self(nil, "lb1")
	if peers := h.Peers(self); len(peers) != 1 || peers[0].Name != "lb2" {
		t.Errorf("peers of lb1: %v", peers)
	}
}

// withBGP is valid with director.bgp from issue 13's contract.
var withBGP = strings.NewReplacer("director:\n  interface: eth0\n", `director:
  interface: eth0
  bgp:
    asn: 65001
    router_id: 10.0.0.10
    hold_time: 9s
    peers:
      - {address: 10.0.0.254, asn: 65000}
`, "scheduler: wrr", "scheduler: mh\n    scheduler_flags: [mh-port]", "    port: 15672\n", "    port: 15672\n    scheduler: sh\n").Replace(valid)

func TestBGP(t *testing.T) {
	topo, err := Parse("t.yaml", []byte(withBGP))
	if err != nil {
		t.Fatal(err)
	}
	b := topo.Director.BGP
	if b == nil || b.ASN != 65001 || b.RouterID != netip.MustParseAddr("10.0.0.10") || b.HoldTime != 9*time.Second ||
		!slices.Equal(b.Peers, []BGPPeer{{Address: netip.MustParseAddr("10.0.0.254"), ASN: 65000, Port: 179, HoldTime: 9 * time.Second}}) {
		t.Errorf("bgp: %+v", b)
	}
	if s := topo.Services[0]; s.Scheduler != "mh" || !slices.Equal(s.SchedulerFlags, []string{"mh-port"}) || s.SchedulerFlagBits() != 0x10 {
		t.Errorf("amqp: %s %v %#x", s.Scheduler, s.SchedulerFlags, s.SchedulerFlagBits())
	}
	if s := topo.Services[1]; s.Scheduler != "sh" || s.SchedulerFlags != nil || s.SchedulerFlagBits() != 0 {
		t.Errorf("management: %s %v", s.Scheduler, s.SchedulerFlags)
	}

	password := filepath.Join(t.TempDir(), "md5")
	if err := os.WriteFile(password, []byte("secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	minimal := strings.NewReplacer("    router_id: 10.0.0.10\n", "", "    hold_time: 9s\n", "",
		"{address: 10.0.0.254, asn: 65000}", "{address: 10.0.0.254, asn: 4200000000, port: 1179, hold_time: 0, password_file: "+password+"}",
		"scheduler_flags: [mh-port]", "scheduler_flags: [mh-port, mh-fallback]").Replace(withBGP)
	topo, err = Parse("t.yaml", []byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	b = topo.Director.BGP
	if b.RouterID.IsValid() || b.HoldTime != 90*time.Second ||
		!slices.Equal(b.Peers, []BGPPeer{{Address: netip.MustParseAddr("10.0.0.254"), ASN: 4200000000, Port: 1179, HoldTime: 0, PasswordFile: password}}) {
		t.Errorf("bgp: %+v", b)
	}
	if err := topo.CheckDirectorHost(); err != nil {
		t.Errorf("the peer's password file is there: %v", err)
	}
	if bits := topo.Services[0].SchedulerFlagBits(); bits != 0x18 {
		t.Errorf("mh-port|mh-fallback = %#x, want 0x18", bits)
	}
	if topo, _ := Parse("t.yaml", []byte(valid)); topo.Director.BGP != nil {
		t.Errorf("no bgp key, bgp = %+v", topo.Director.BGP)
	}

	missing, err := Parse("t.yaml", []byte(strings.Replace(withBGP, "asn: 65000}", "asn: 65000, password_file: /nonexistent/md5}", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if err := missing.CheckDirectorHost(); err == nil || err.Error() != "t.yaml:9: director.bgp.peers[0].password_file: open /nonexistent/md5: no such file or directory" {
		t.Errorf("a missing password file on the director: %v", err)
	}
}

func TestBGPProblems(t *testing.T) {
	replace := func(old, new string) string {
		if !strings.Contains(withBGP, old) {
			t.Fatalf("fixture lacks %q", old)
		}
		return strings.Replace(withBGP, old, new, 1)
	}
	tests := []struct{ name, doc, want string }{
		{"asn zero", replace("asn: 65001", "asn: 0"), `t.yaml:5: director.bgp.asn must be between 1 and 4294967295, not 0`},
		{"asn too big", replace("asn: 65001", "asn: 4294967296"), `t.yaml:5: director.bgp.asn must be between 1 and 4294967295, not 4294967296`},
		{"asn as dotted", replace("asn: 65001", "asn: 1.10"), `t.yaml:5: director.bgp.asn must be a whole number, not "1.10"`},
		{"asn missing", replace("    asn: 65001\n", ""), `t.yaml:5: director.bgp.asn is required`},
		{"router id", replace("router_id: 10.0.0.10", "router_id: lb1"), `t.yaml:6: director.bgp.router_id must be an IPv4 address, not "lb1"`},
		{"hold time 2s", replace("hold_time: 9s", "hold_time: 2s"), `t.yaml:7: director.bgp.hold_time must be 0 (no keepalives) or whole seconds from 3s to 65535s (RFC 4271), not 2s`},
		{"hold time fraction", replace("hold_time: 9s", "hold_time: 3500ms"), `director.bgp.hold_time must be 0 (no keepalives) or whole seconds`},
		{"peers missing", replace("    peers:\n      - {address: 10.0.0.254, asn: 65000}\n", ""), `t.yaml:5: director.bgp.peers is required`},
		{"peers empty", replace("    peers:\n      - {address: 10.0.0.254, asn: 65000}\n", "    peers: []\n"), `t.yaml:8: director.bgp.peers lists no peer`},
		{"peer asn missing", replace("{address: 10.0.0.254, asn: 65000}", "{address: 10.0.0.254}"), `t.yaml:9: director.bgp.peers[0].asn is required`},
		{"peer address missing", replace("{address: 10.0.0.254, asn: 65000}", "{asn: 65000}"), `t.yaml:9: director.bgp.peers[0].address is required`},
		{"peer twice", replace("      - {address: 10.0.0.254, asn: 65000}\n", "      - {address: 10.0.0.254, asn: 65000}\n      - {address: 10.0.0.254, asn: 65002}\n"), `t.yaml:10: director.bgp.peers[1]: address 10.0.0.254 is already used by peers[0]`},
		{"peer is the VIP", replace("address: 10.0.0.254", "address: 10.0.0.100"), `t.yaml:9: director.bgp.peers[0]: address 10.0.0.100 is the VIP`},
		{"peer port", replace("asn: 65000}", "asn: 65000, port: 0}"), `t.yaml:9: director.bgp.peers[0].port must be between 1 and 65535, not 0`},
		{"peer hold time", replace("asn: 65000}", "asn: 65000, hold_time: 1}"), `t.yaml:9: director.bgp.peers[0].hold_time must be 0 (no keepalives) or whole seconds from 3s to 65535s`},
		{"peer password in the yaml", replace("asn: 65000}", "asn: 65000, password: secret}"), `t.yaml:9: director.bgp.peers[0]: unknown key "password"`},
		{"wrr with bgp", replace("scheduler: sh", "scheduler: wrr"), `t.yaml:21: services[1] (management).scheduler is wrr, and with director.bgp every director must pick the same real server for a connection, or the routers re-hashing flows across directors break it: use mh (or sh)`},
		{"default scheduler with bgp", replace("    scheduler: sh\n", ""), `t.yaml:19: services[1] (management).scheduler is wrr, and with director.bgp`},
		{"nat with bgp", replace("forwarding: dr", "forwarding: nat"), `t.yaml:16: services[0] (amqp).forwarding nat with director.bgp: replies must return through the director that scheduled the connection`},
		{"sh flag on mh", replace("[mh-port]", "[sh-port]"), `t.yaml:15: services[0] (amqp).scheduler_flags: unknown flag "sh-port" of the mh scheduler (one of mh-fallback mh-port)`},
		{"flag twice", replace("[mh-port]", "[mh-port, mh-port]"), `t.yaml:15: services[0] (amqp).scheduler_flags lists "mh-port" twice`},
		{"flags not a list", replace("[mh-port]", "mh-port"), `t.yaml:15: services[0] (amqp).scheduler_flags must be a list, not "mh-port"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("t.yaml", []byte(tt.doc))
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error:\n%v\nwant it to contain:\n%s", err, tt.want)
			}
		})
	}
	// Flags on a scheduler that has none, without bgp.
	doc := strings.Replace(valid, "scheduler: wrr", "scheduler: wrr\n    scheduler_flags: [mh-port]", 1)
	if _, err := Parse("t.yaml", []byte(doc)); err == nil || !strings.Contains(err.Error(), "t.yaml:9: services[0] (amqp).scheduler_flags: the wrr scheduler has no flags (sh and mh have)") {
		t.Errorf("flags on wrr: %v", err)
	}
	doc = strings.Replace(valid, "scheduler: wrr", "scheduler: sh\n    scheduler_flags: [sh-fallback, sh-port]", 1)
	topo, err := Parse("t.yaml", []byte(doc))
	if err != nil || topo.Services[0].SchedulerFlagBits() != 0x18 {
		t.Errorf("sh flags without bgp: %v", err)
	}
}
