package ipvsctl

import (
	"bytes"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/vishvananda/netlink/nl"
)

// The golden bytes are little-endian: netlink integers are in host order.
func needLittleEndian(t *testing.T) {
	t.Helper()
	if nl.NativeEndian().Uint16([]byte{1, 0}) != 1 {
		t.Skip("golden netlink bytes are written for a little-endian host")
	}
}

func TestEncodeDaemonCommandsByteForByte(t *testing.T) {
	needLittleEndian(t)
	full := SyncDaemon{Role: SyncMaster, Interface: "eth0", SyncID: 7,
		Group: netip.MustParseAddr("239.1.2.3"), Port: 8849, MaxLen: 1400, TTL: 2}
	for _, tc := range []struct {
		name string
		cmd  uint8
		d    SyncDaemon
		want []byte
	}{
		{"start master with every setting", ipvsCmdNewDaemon, full, []byte{
			0x09, 0x01, 0x00, 0x00, // IPVS_CMD_NEW_DAEMON, version 1
			0x40, 0x00, 0x03, 0x80, // IPVS_CMD_ATTR_DAEMON, nested, 64 bytes
			0x08, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00, // STATE master
			0x09, 0x00, 0x02, 0x00, 'e', 't', 'h', '0', 0x00, 0x00, 0x00, 0x00, // MCAST_IFN "eth0\0", padded
			0x08, 0x00, 0x03, 0x00, 0x07, 0x00, 0x00, 0x00, // SYNC_ID 7
			0x06, 0x00, 0x04, 0x00, 0x78, 0x05, 0x00, 0x00, // SYNC_MAXLEN 1400
			0x08, 0x00, 0x05, 0x00, 239, 1, 2, 3, // MCAST_GROUP, network order
			0x06, 0x00, 0x07, 0x00, 0x91, 0x22, 0x00, 0x00, // MCAST_PORT 8849, host order
			0x05, 0x00, 0x08, 0x00, 0x02, 0x00, 0x00, 0x00, // MCAST_TTL 2
		}},
		{"start backup with the kernel's defaults: only what a 2.6 kernel knows", ipvsCmdNewDaemon,
			SyncDaemon{Role: SyncBackup, Interface: "bond0.100", SyncID: 255}, []byte{
				0x09, 0x01, 0x00, 0x00,
				0x24, 0x00, 0x03, 0x80, // 36 bytes
				0x08, 0x00, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, // STATE backup
				0x0e, 0x00, 0x02, 0x00, 'b', 'o', 'n', 'd', '0', '.', '1', '0', '0', 0x00, 0x00, 0x00, // "bond0.100\0"
				0x08, 0x00, 0x03, 0x00, 0xff, 0x00, 0x00, 0x00, // SYNC_ID 255
			}},
		{"stop sends the role alone", ipvsCmdDelDaemon, full, []byte{
			0x0a, 0x01, 0x00, 0x00, // IPVS_CMD_DEL_DAEMON
			0x0c, 0x00, 0x03, 0x80,
			0x08, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00,
		}},
		{"get is a bare header (a dump)", ipvsCmdGetDaemon, full, []byte{0x0b, 0x01, 0x00, 0x00}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := encodeDaemonCmd(tc.cmd, tc.d); !bytes.Equal(got, tc.want) {
				t.Errorf("encoded\n% x\nwant\n% x", got, tc.want)
			}
		})
	}
}

// The same message built with vishvananda/netlink's attribute encoder, as a
// second opinion on lengths and padding.
func TestEncodeDaemonAgreesWithTheNetlinkLibrary(t *testing.T) {
	d := SyncDaemon{Role: SyncBackup, Interface: "veth-a1", SyncID: 42,
		Group: netip.MustParseAddr("224.0.0.81"), Port: 8848, MaxLen: 9000, TTL: 1}
	attr := nl.NewRtAttr(ipvsCmdAttrDaemon|nlaFNested, nil)
	attr.AddRtAttr(ipvsDaemonAttrState, nl.Uint32Attr(uint32(SyncBackup)))
	attr.AddRtAttr(ipvsDaemonAttrMcastIfn, nl.ZeroTerminated("veth-a1"))
	attr.AddRtAttr(ipvsDaemonAttrSyncID, nl.Uint32Attr(42))
	attr.AddRtAttr(ipvsDaemonAttrSyncMaxLen, nl.Uint16Attr(9000))
	attr.AddRtAttr(ipvsDaemonAttrMcastGroup, []byte{224, 0, 0, 81})
	attr.AddRtAttr(ipvsDaemonAttrMcastPort, nl.Uint16Attr(8848))
	attr.AddRtAttr(ipvsDaemonAttrMcastTTL, nl.Uint8Attr(1))
	want := append([]byte{ipvsCmdNewDaemon, 1, 0, 0}, attr.Serialize()...)
	if got := encodeDaemonCmd(ipvsCmdNewDaemon, d); !bytes.Equal(got, want) {
		t.Errorf("encoded\n% x\nnetlink library\n% x", got, want)
	}
}

func TestDecodeDaemonReply(t *testing.T) {
	needLittleEndian(t)
	for _, tc := range []struct {
		name  string
		reply []byte
		want  SyncDaemon
		err   string
	}{
		// What ip_vs_genl_fill_daemon writes since 4.3: the nest without
		// NLA_F_NESTED, the group last.
		{"a 6.1 kernel's backup", []byte{
			0x09, 0x01, 0x00, 0x00,
			0x40, 0x00, 0x03, 0x00,
			0x08, 0x00, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00,
			0x09, 0x00, 0x02, 0x00, 'e', 't', 'h', '0', 0x00, 0x00, 0x00, 0x00,
			0x08, 0x00, 0x03, 0x00, 0x02, 0x00, 0x00, 0x00,
			0x06, 0x00, 0x04, 0x00, 0xc0, 0x05, 0x00, 0x00, // 1472
			0x06, 0x00, 0x07, 0x00, 0x90, 0x22, 0x00, 0x00, // 8848
			0x05, 0x00, 0x08, 0x00, 0x01, 0x00, 0x00, 0x00,
			0x08, 0x00, 0x05, 0x00, 224, 0, 0, 81,
		}, SyncDaemon{Role: SyncBackup, Interface: "eth0", SyncID: 2, Group: DefaultSyncGroup, Port: 8848, MaxLen: 1472, TTL: 1}, ""},
		{"a kernel before 4.3: state, interface, id", []byte{
			0x09, 0x01, 0x00, 0x00,
			0x24, 0x00, 0x03, 0x00,
			0x08, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00,
			0x08, 0x00, 0x02, 0x00, 'l', 'o', 0x00, 0x00,
			0x08, 0x00, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00,
			0x08, 0x00, 0x00, 0x00, 0xde, 0xad, 0xbe, 0xef, // an attribute we do not know
		}, SyncDaemon{Role: SyncMaster, Interface: "lo"}, ""},
		{"no daemon attribute", []byte{0x09, 0x01, 0x00, 0x00}, SyncDaemon{}, "without a daemon attribute"},
		{"an attribute longer than the message", []byte{
			0x09, 0x01, 0x00, 0x00,
			0x10, 0x00, 0x03, 0x00,
			0x08, 0x00, 0x01, 0x00,
		}, SyncDaemon{}, "length 16 in 8 bytes"},
		{"no state", []byte{
			0x09, 0x01, 0x00, 0x00,
			0x0c, 0x00, 0x03, 0x00,
			0x08, 0x00, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00,
		}, SyncDaemon{}, "without a state"},
		{"a sync id the protocol cannot carry", []byte{
			0x09, 0x01, 0x00, 0x00,
			0x14, 0x00, 0x03, 0x00,
			0x08, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00,
			0x08, 0x00, 0x03, 0x00, 0x00, 0x01, 0x00, 0x00,
		}, SyncDaemon{}, "sync id 256"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decodeDaemon(tc.reply)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("decode: %v, want an error with %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("decoded %+v, want %+v", got, tc.want)
			}
		})
	}
}

// What we start must read back equal: encode, then decode as if the kernel
// had echoed every attribute.
func TestEncodedDaemonDecodesToItself(t *testing.T) {
	d := SyncDaemon{Role: SyncMaster, Interface: "eth1", SyncID: 9,
		Group: netip.MustParseAddr("ff02::81"), Port: 9000, MaxLen: 8000, TTL: 3}
	got, err := decodeDaemon(encodeDaemonCmd(ipvsCmdNewDaemon, d))
	if err != nil || got != d {
		t.Errorf("round trip: %+v, %v; want %+v", got, err, d)
	}
}

func TestValidateDaemon(t *testing.T) {
	ok := SyncDaemon{Role: SyncMaster, Interface: "eth0", SyncID: 1}
	for _, tc := range []struct {
		name   string
		change func(*SyncDaemon)
		err    string
	}{
		{"valid", func(*SyncDaemon) {}, ""},
		{"no role", func(d *SyncDaemon) { d.Role = 0 }, "want master (1) or backup (2)"},
		{"both roles", func(d *SyncDaemon) { d.Role = 3 }, "want master (1) or backup (2)"},
		{"no interface", func(d *SyncDaemon) { d.Interface = "" }, "1 to 15 bytes"},
		{"15-byte interface", func(d *SyncDaemon) { d.Interface = "abcdefghijklmno" }, ""},
		{"16-byte interface", func(d *SyncDaemon) { d.Interface = "abcdefghijklmnop" }, "1 to 15 bytes"},
		{"unicast group", func(d *SyncDaemon) { d.Group = netip.MustParseAddr("10.0.0.1") }, "not a multicast"},
		{"IPv6 group", func(d *SyncDaemon) { d.Group = netip.MustParseAddr("ff02::81") }, ""},
		{"maxlen the kernel would clamp", func(d *SyncDaemon) { d.MaxLen = 1000 }, "maxlen 1000 out of 1024–65507"},
		{"maxlen too large", func(d *SyncDaemon) { d.MaxLen = 65508 }, "out of"},
		{"largest IPv4 maxlen", func(d *SyncDaemon) { d.MaxLen = 65507 }, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := ok
			tc.change(&d)
			err := d.Validate()
			if (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
				t.Errorf("Validate: %v, want %q", err, tc.err)
			}
		})
	}
	if err := ValidateDaemons([]SyncDaemon{ok, ok}); err == nil || !strings.Contains(err.Error(), "two master") {
		t.Errorf("two masters: %v", err)
	}
}

func TestPlanDaemons(t *testing.T) {
	master := SyncDaemon{Role: SyncMaster, Interface: "eth0", SyncID: 1}
	backup := SyncDaemon{Role: SyncBackup, Interface: "eth0", SyncID: 2}
	// As the kernel reports them once started: defaults filled in.
	running := func(d SyncDaemon) SyncDaemon {
		d = d.withDefaults()
		d.MaxLen = 1472
		return d
	}
	with := func(d SyncDaemon, change func(*SyncDaemon)) SyncDaemon { change(&d); return d }
	for _, tc := range []struct {
		name                string
		want, have          []SyncDaemon
		wantStart, wantStop []SyncDaemon
	}{
		{"nothing runs: start both", []SyncDaemon{master, backup}, nil, []SyncDaemon{master, backup}, nil},
		{"a crashed director's daemons: adopted", []SyncDaemon{backup, master}, []SyncDaemon{running(master), running(backup)}, nil, nil},
		{"a pre-4.3 kernel reports no group: the default matches",
			[]SyncDaemon{with(master, func(d *SyncDaemon) { d.Group, d.Port, d.TTL = DefaultSyncGroup, DefaultSyncPort, DefaultSyncTTL })},
			[]SyncDaemon{master}, nil, nil},
		{"another sync id: replaced",
			[]SyncDaemon{master, backup},
			[]SyncDaemon{running(with(master, func(d *SyncDaemon) { d.SyncID = 9 })), running(backup)},
			[]SyncDaemon{master}, []SyncDaemon{running(with(master, func(d *SyncDaemon) { d.SyncID = 9 }))}},
		{"another interface: replaced",
			[]SyncDaemon{backup},
			[]SyncDaemon{running(with(backup, func(d *SyncDaemon) { d.Interface = "eth1" }))},
			[]SyncDaemon{backup}, []SyncDaemon{running(with(backup, func(d *SyncDaemon) { d.Interface = "eth1" }))}},
		{"another group: replaced",
			[]SyncDaemon{with(master, func(d *SyncDaemon) { d.Group = netip.MustParseAddr("239.0.0.1") })},
			[]SyncDaemon{running(master)},
			[]SyncDaemon{with(master, func(d *SyncDaemon) { d.Group = netip.MustParseAddr("239.0.0.1") })}, []SyncDaemon{running(master)}},
		{"another port: replaced",
			[]SyncDaemon{with(master, func(d *SyncDaemon) { d.Port = 9000 })}, []SyncDaemon{running(master)},
			[]SyncDaemon{with(master, func(d *SyncDaemon) { d.Port = 9000 })}, []SyncDaemon{running(master)}},
		{"another TTL: replaced",
			[]SyncDaemon{with(master, func(d *SyncDaemon) { d.TTL = 2 })}, []SyncDaemon{running(master)},
			[]SyncDaemon{with(master, func(d *SyncDaemon) { d.TTL = 2 })}, []SyncDaemon{running(master)}},
		{"an asked maxlen that differs: replaced",
			[]SyncDaemon{with(master, func(d *SyncDaemon) { d.MaxLen = 1400 })}, []SyncDaemon{running(master)},
			[]SyncDaemon{with(master, func(d *SyncDaemon) { d.MaxLen = 1400 })}, []SyncDaemon{running(master)}},
		{"the role swapped (keepalived's way): both replaced",
			[]SyncDaemon{with(master, func(d *SyncDaemon) { d.Role = SyncBackup })},
			[]SyncDaemon{running(master)},
			[]SyncDaemon{with(master, func(d *SyncDaemon) { d.Role = SyncBackup })}, []SyncDaemon{running(master)}},
		{"a role no longer wanted: stopped", []SyncDaemon{master}, []SyncDaemon{running(master), running(backup)}, nil, []SyncDaemon{running(backup)}},
		{"nothing wanted: all stopped", nil, []SyncDaemon{running(master), running(backup)}, nil, []SyncDaemon{running(master), running(backup)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start, stop := PlanDaemons(tc.want, tc.have)
			if !slices.Equal(start, tc.wantStart) || !slices.Equal(stop, tc.wantStop) {
				t.Errorf("start %v, stop %v\nwant start %v, stop %v", start, stop, tc.wantStart, tc.wantStop)
			}
		})
	}
}

func TestReconcileDaemonsAdoptsThenReplaces(t *testing.T) {
	k := NewFakeSyncDaemons()
	want := []SyncDaemon{{Role: SyncMaster, Interface: "eth0", SyncID: 1}, {Role: SyncBackup, Interface: "eth0", SyncID: 2}}
	started, stopped, err := ReconcileDaemons(k, want)
	if err != nil || len(started) != 2 || len(stopped) != 0 {
		t.Fatalf("first reconcile: started %v, stopped %v, %v", started, stopped, err)
	}
	writes := k.Writes
	// A new director process: same wish, the kernel's daemons kept.
	if started, stopped, err := ReconcileDaemons(k, want); err != nil || started != nil || stopped != nil || k.Writes != writes {
		t.Fatalf("second reconcile: started %v, stopped %v, %v, %d writes", started, stopped, err, k.Writes-writes)
	}
	want[1].SyncID = 3
	started, stopped, err = ReconcileDaemons(k, want)
	if err != nil || len(started) != 1 || started[0].SyncID != 3 || len(stopped) != 1 || stopped[0].SyncID != 2 {
		t.Fatalf("changed backup: started %v, stopped %v, %v", started, stopped, err)
	}
	have, _ := k.Daemons()
	if len(have) != 2 || have[0].SyncID != 1 || have[1].SyncID != 3 || have[1].Port != DefaultSyncPort {
		t.Errorf("daemons now %v", have)
	}
}

func TestReconcileDaemonsFailuresAreJoinedAndIsolated(t *testing.T) {
	k := NewFakeSyncDaemons()
	k.StartDaemon(SyncDaemon{Role: SyncMaster, Interface: "eth0", SyncID: 5})
	k.StartDaemon(SyncDaemon{Role: SyncBackup, Interface: "eth0", SyncID: 6})
	broken := errors.New("netlink broke")
	k.Fail = func(op string, d SyncDaemon) error {
		if op == "stop" && d.Role == SyncMaster {
			return broken
		}
		return nil
	}
	want := []SyncDaemon{{Role: SyncMaster, Interface: "eth0", SyncID: 1}, {Role: SyncBackup, Interface: "eth0", SyncID: 2}}
	started, stopped, err := ReconcileDaemons(k, want)
	if !errors.Is(err, broken) || !strings.Contains(err.Error(), "stop master sync daemon on eth0 syncid 5") {
		t.Errorf("error %v, want the master's stop failure with context", err)
	}
	if errors.Is(err, ErrExists) {
		t.Errorf("error %v: a master whose stop failed was started anyway", err)
	}
	if len(started) != 1 || started[0].Role != SyncBackup || len(stopped) != 1 || stopped[0].Role != SyncBackup {
		t.Errorf("started %v, stopped %v: the backup must be replaced, the master left alone", started, stopped)
	}
	if have, _ := k.Daemons(); have[0].SyncID != 5 {
		t.Errorf("a second master was started beside the one that would not stop: %v", have)
	}
	if _, _, err := ReconcileDaemons(k, append(want, want[0])); err == nil {
		t.Errorf("two masters wanted: no error")
	}
}

func TestFakeSyncDaemonsActsLikeTheKernel(t *testing.T) {
	k := NewFakeSyncDaemons()
	d := SyncDaemon{Role: SyncBackup, Interface: "eth0"}
	if err := k.StartDaemon(d); err != nil {
		t.Fatal(err)
	}
	if err := k.StartDaemon(d); !errors.Is(err, ErrExists) {
		t.Errorf("second backup: %v, want ErrExists", err)
	}
	if err := k.StopDaemon(SyncMaster); !errors.Is(err, ErrNotFound) {
		t.Errorf("stop of a master that does not run: %v, want ErrNotFound", err)
	}
	if err := k.StopDaemon(SyncBackup); err != nil {
		t.Errorf("stop backup: %v", err)
	}
	if have, _ := k.Daemons(); len(have) != 0 {
		t.Errorf("after stop: %v", have)
	}
}
