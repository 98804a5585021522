package realserver

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lvsdr/lvsdr/internal/netif"
	"github.com/lvsdr/lvsdr/sysctl"
)

type fakeAddrs struct {
	links []string
	addrs []netif.Addr
	// failAdd, when set, refuses the adds it returns an error for.
	failAdd func(netif.Addr) error
}

func (f *fakeAddrs) LinkExists(name string) error {
	if !slices.Contains(f.links, name) {
		return fmt.Errorf("interface %s: Link not found", name)
	}
	return nil
}

// Add is a no-op for an address already on the link whatever its scope or
// label, as the kernel's "exists" is.
func (f *fakeAddrs) Add(a netif.Addr) error {
	if f.failAdd != nil {
		if err := f.failAdd(a); err != nil {
			return err
		}
	}
	if !slices.ContainsFunc(f.addrs, func(x netif.Addr) bool { return x.Link == a.Link && x.Prefix == a.Prefix }) {
		f.addrs = append(f.addrs, a)
	}
	return nil
}

func (f *fakeAddrs) Delete(a netif.Addr) error {
	f.addrs = slices.DeleteFunc(f.addrs, func(x netif.Addr) bool { return x == a })
	return nil
}

func (f *fakeAddrs) List() ([]netif.Addr, error) { return slices.Clone(f.addrs), nil }

var cfg = Config{VIP: netip.MustParseAddr("10.0.0.100"), Interface: "eth0"}

// node returns an agent over a fake node whose eth0 has arp_ignore 2 (an
// operator's earlier choice that stop must restore, not zero).
func node(t *testing.T) (*Agent, *fakeAddrs, *bytes.Buffer) {
	t.Helper()
	root := t.TempDir()
	values := map[string]string{}
	for _, dev := range []string{"all", "eth0", "lo"} {
		for _, key := range []string{"arp_ignore", "arp_announce", "rp_filter", "proxy_arp"} {
			values[filepath.Join(root, "net/ipv4/conf", dev, key)] = "0"
		}
	}
	values[filepath.Join(root, "net/ipv4/conf/eth0/arp_ignore")] = "2"
	for p, v := range values {
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte(v+"\n"), 0o644)
	}
	addrs := &fakeAddrs{links: []string{"lo", "eth0"}, addrs: []netif.Addr{
		{Link: "lo", Prefix: netip.MustParsePrefix("127.0.0.1/8"), HostScope: true, Label: "lo"},
		{Link: "eth0", Prefix: netip.MustParsePrefix("10.0.0.2/24"), Label: "eth0"},
	}}
	out := &bytes.Buffer{}
	return &Agent{Addrs: addrs, Sysctl: sysctl.FS{Root: root}, StateDir: filepath.Join(t.TempDir(), "state"), Out: out}, addrs, out
}

func values(t *testing.T, a *Agent) map[string]string {
	t.Helper()
	got := map[string]string{}
	for _, kv := range wanted("eth0") {
		v, err := a.Sysctl.Get(kv[0])
		if err != nil {
			t.Fatal(err)
		}
		got[kv[0]] = v
	}
	return got
}

var vipOnLo = netif.Addr{Link: "lo", Prefix: netip.MustParsePrefix("10.0.0.100/32"), HostScope: true, Label: "lo:0"}

func TestStartReplacesAVIPThatRealserverShPutOnLoWithGlobalScope(t *testing.T) {
	a, addrs, out := node(t)
	// ifconfig lo:0 10.0.0.100 netmask 255.255.255.255: scope global.
	addrs.addrs = append(addrs.addrs, netif.Addr{Link: "lo", Prefix: netip.MustParsePrefix("10.0.0.100/32"), Label: "lo:0"})
	if err := a.Start(cfg); err != nil {
		t.Fatal(err)
	}
	var onLo []netif.Addr
	for _, x := range addrs.addrs {
		if x.Prefix.Addr() == cfg.VIP {
			onLo = append(onLo, x)
		}
	}
	if len(onLo) != 1 || onLo[0] != vipOnLo {
		t.Errorf("VIP on lo after start: %v, want only %v", onLo, vipOnLo)
	}
	if !strings.Contains(out.String(), "replacing the VIP on lo") {
		t.Errorf("start did not say it replaced the VIP:\n%s", out)
	}
	if err := a.Status(cfg); err != nil {
		t.Errorf("status after start over realserver.sh's VIP: %v", err)
	}
}

func TestStartPutsBackTheVIPItCouldNotReplace(t *testing.T) {
	a, addrs, _ := node(t)
	global := netif.Addr{Link: "lo", Prefix: netip.MustParsePrefix("10.0.0.100/32"), Label: "lo:0"}
	addrs.addrs = append(addrs.addrs, global)
	addrs.failAdd = func(x netif.Addr) error {
		if x.HostScope {
			return errors.New("no room")
		}
		return nil
	}
	if err := a.Start(cfg); err == nil {
		t.Fatal("start succeeded though the VIP could not be added")
	}
	if !slices.Contains(addrs.addrs, global) {
		t.Errorf("the node was left without its VIP: %v", addrs.addrs)
	}
}

func TestStartSetsEverythingAndStopRestoresTheRecordedValues(t *testing.T) {
	a, addrs, _ := node(t)
	before := values(t, a)
	if err := a.Start(cfg); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(addrs.addrs, vipOnLo) {
		t.Errorf("VIP not on lo as /32 scope host label lo:0: %v", addrs.addrs)
	}
	for _, kv := range wanted("eth0") {
		if v := values(t, a)[kv[0]]; v != kv[1] {
			t.Errorf("%s = %s after start, want %s", kv[0], v, kv[1])
		}
	}
	if err := a.Status(cfg); err != nil {
		t.Errorf("status after start: %v", err)
	}

	// A second start is a no-op and keeps the original record.
	if err := a.Start(cfg); err != nil {
		t.Fatalf("second start: %v", err)
	}
	if n := slices.Index(addrs.addrs, vipOnLo); n < 0 || len(addrs.addrs) != 3 {
		t.Errorf("second start changed the addresses: %v", addrs.addrs)
	}

	if err := a.Stop(cfg); err != nil {
		t.Fatal(err)
	}
	if slices.Contains(addrs.addrs, vipOnLo) {
		t.Errorf("VIP still on lo after stop")
	}
	if got := values(t, a); fmt.Sprint(got) != fmt.Sprint(before) {
		t.Errorf("after stop: %v, want the values before start %v", got, before)
	}
	if got := values(t, a)["net.ipv4.conf.eth0.arp_ignore"]; got != "2" {
		t.Errorf("eth0 arp_ignore restored to %s, want the recorded 2", got)
	}
	if _, err := os.Stat(a.recordPath()); err == nil {
		t.Errorf("record left behind after stop")
	}
}

func TestStartOnAMissingInterfaceChangesNothing(t *testing.T) {
	a, addrs, _ := node(t)
	before := values(t, a)
	err := a.Start(Config{VIP: cfg.VIP, Interface: "eth9"})
	if err == nil || !strings.Contains(err.Error(), "eth9") {
		t.Fatalf("Start on eth9: %v, want an error naming it", err)
	}
	if got := values(t, a); fmt.Sprint(got) != fmt.Sprint(before) || len(addrs.addrs) != 2 {
		t.Errorf("a failed start changed the node: %v %v", got, addrs.addrs)
	}
	if _, err := os.Stat(a.recordPath()); err == nil {
		t.Errorf("a failed start left a record")
	}
}

func TestStopWithoutARecordRemovesTheVIPAndWarns(t *testing.T) {
	a, addrs, out := node(t)
	addrs.Add(vipOnLo)
	if err := a.Stop(cfg); err != nil {
		t.Fatal(err)
	}
	if slices.Contains(addrs.addrs, vipOnLo) || !strings.Contains(out.String(), "nothing to restore") {
		t.Errorf("stop without record: addrs %v, output %q", addrs.addrs, out)
	}
}

func TestStatus(t *testing.T) {
	tests := []struct {
		name      string
		change    func(a *Agent, addrs *fakeAddrs)
		wantReady bool
		wantOut   string
	}{
		{"not started", func(*Agent, *fakeAddrs) {}, false, "VIP 10.0.0.100/32 dev lo scope host label lo:0"},
		{"started", func(a *Agent, _ *fakeAddrs) { a.Start(cfg) }, true, "ok"},
		{"strict rp_filter warns", func(a *Agent, _ *fakeAddrs) {
			a.Start(cfg)
			a.Sysctl.Set("net.ipv4.conf.all.rp_filter", "1")
		}, true, "warning: rp_filter is 1 (strict)"},
		{"proxy_arp warns", func(a *Agent, _ *fakeAddrs) {
			a.Start(cfg)
			a.Sysctl.Set("net.ipv4.conf.eth0.proxy_arp", "1")
		}, true, "warning: proxy_arp is on"},
		{"VIP on eth0 too", func(a *Agent, addrs *fakeAddrs) {
			a.Start(cfg)
			addrs.Add(netif.Addr{Link: "eth0", Prefix: netip.MustParsePrefix("10.0.0.100/24")})
		}, false, "NOT READY: the VIP is also on eth0"},
		{"arp_announce reset by hand", func(a *Agent, _ *fakeAddrs) {
			a.Start(cfg)
			a.Sysctl.Set("net.ipv4.conf.all.arp_announce", "0")
			a.Sysctl.Set("net.ipv4.conf.eth0.arp_announce", "1")
		}, false, "arp_announce on eth0 (all=0, eth0=1)         want 2        have 1        NOT READY"},
		// The kernel takes the larger of all and the interface.
		{"arp settings on all alone", func(a *Agent, _ *fakeAddrs) {
			a.Start(cfg)
			a.Sysctl.Set("net.ipv4.conf.eth0.arp_ignore", "0")
			a.Sysctl.Set("net.ipv4.conf.eth0.arp_announce", "0")
		}, true, "arp_ignore on eth0 (all=1, eth0=0)           want 1        have 1        ok"},
		{"arp_ignore 2 on the interface", func(a *Agent, _ *fakeAddrs) {
			a.Start(cfg)
			a.Sysctl.Set("net.ipv4.conf.all.arp_ignore", "0")
			a.Sysctl.Set("net.ipv4.conf.eth0.arp_ignore", "2")
		}, true, "arp_ignore on eth0 (all=0, eth0=2)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, addrs, out := node(t)
			tt.change(a, addrs)
			out.Reset()
			err := a.Status(cfg)
			if ready := err == nil; ready != tt.wantReady {
				t.Errorf("ready = %v (%v), want %v\n%s", ready, err, tt.wantReady, out)
			}
			if err != nil && !errors.Is(err, ErrNotReady) {
				t.Errorf("error %v is not ErrNotReady", err)
			}
			if !strings.Contains(out.String(), tt.wantOut) {
				t.Errorf("output:\n%s\nwant it to contain %q", out, tt.wantOut)
			}
		})
	}
}
