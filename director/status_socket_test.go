package director

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lvsdr/lvsdr/topology"
)

// Over the control socket, as `director status` asks: the file on disk
// against the topology in force, and the last reload, through an edit, a
// refused reload and a good one.
func TestStatusOverTheSocketFollowsTheFileAndTheReloads(t *testing.T) {
	path := filepath.Join(t.TempDir(), "topology.yaml")
	write := func(doc string) {
		if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(statusFileYAML)
	first, err := topology.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, first)
	h.controlSocket = filepath.Join(t.TempDir(), "director.sock")
	h.start()
	h.advanceUntil(10*time.Second, has("  -r 10.0.0.3:5672 -g -w 1"))
	status := func() Report {
		t.Helper()
		r, err := QueryStatus(h.controlSocket)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}

	if r := status(); r.File == nil || !r.File.InForce || r.File.Path != path || r.LastReload != nil {
		t.Errorf("at start: file %+v, last reload %+v", r.File, r.LastReload)
	}

	edited := strings.Replace(statusFileYAML, "weight: 1}", "weight: 4}", 1)
	write(edited)
	if r := status(); r.File == nil || r.File.InForce || !r.File.Valid {
		t.Errorf("after an edit: file %+v", r.File)
	}

	refused := fmt.Errorf("topology.yaml:3: unknown key: %w", topology.ErrInvalid)
	h.loadErr.Store(&refused)
	h.d.ReloadAndWait()
	h.settle()
	r := status()
	if r.LastReload == nil || r.LastReload.OK || r.LastReload.Error != refused.Error() {
		t.Errorf("after a refused reload: %+v", r.LastReload)
	}
	h.loadErr.Store(nil)

	next, err := topology.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	h.topo.Store(next)
	if err := h.d.ReloadAndWait(); err != nil {
		t.Fatal(err)
	}
	h.settle()
	if r := status(); r.LastReload == nil || !r.LastReload.OK || r.File == nil || !r.File.InForce {
		t.Errorf("after the reload: file %+v, last reload %+v", r.File, r.LastReload)
	}
}
