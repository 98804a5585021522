package director

import (
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lvsdr/lvsdr/ipvsctl"
)

func TestStateFileKeepsEveryKindOfKey(t *testing.T) {
	f := StateFile{Path: filepath.Join(t.TempDir(), "director.json")}
	want := State{
		Owned: []ipvsctl.ServiceKey{
			{Protocol: ipvsctl.TCP, Address: netip.MustParseAddr("10.0.0.100"), Port: 5672},
			{FWMark: 0x4c560001},
		},
		Maintenance: []string{"rmq_node2"},
	}
	if err := f.Save(want); err != nil {
		t.Fatal(err)
	}
	got, err := f.Load()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Owned, want.Owned) || !slices.Equal(got.Maintenance, want.Maintenance) {
		t.Errorf("state read back as %+v, want %+v", got, want)
	}

	// A file written before firewall marks existed still reads.
	old := `{"services": [{"protocol": "tcp", "address": "10.0.0.100", "port": 15672}], "maintenance": ["rmq_node1"]}`
	if err := os.WriteFile(f.Path, []byte(old), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err = f.Load()
	if err != nil || len(got.Owned) != 1 || got.Owned[0] != (ipvsctl.ServiceKey{Protocol: ipvsctl.TCP, Address: netip.MustParseAddr("10.0.0.100"), Port: 15672}) {
		t.Errorf("old state file: %+v, %v", got, err)
	}
}

func TestCheckServiceRetiredWhileStoppedIsDeletedAtStart(t *testing.T) {
	topo := reference()
	topo.Director.CheckMarkBase = 100
	topo.Services[0].Checks[0].ThroughVIP = true
	h := newHarness(t, topo)
	for i, rs := range topo.RealServers {
		h.net.marks[101+uint32(i)] = rs.Address
	}
	h.start()
	h.advanceUntil(10*time.Second, has("-f 101 -s rr"))
	h.stop()

	plain := reference()
	h.topo.Store(plain)
	h.start()
	h.advanceUntil(10*time.Second, func(tab []string) bool {
		return !slices.ContainsFunc(tab, func(line string) bool { return strings.HasPrefix(line, "-f ") })
	})
}
