package director

import (
	"fmt"
	"testing"

	"github.com/lvsdr/lvsdr/topology"
)

// The loop records every reload's outcome in the view that status and the
// metrics read.
func TestReloadOutcomeIsPublished(t *testing.T) {
	h := newHarness(t, reference())
	h.start()
	h.settle()
	if v := h.d.view.Load(); v == nil || v.lastReload != nil {
		t.Fatalf("before any reload the view says %+v", v)
	}

	invalid := fmt.Errorf("topology.yaml:3: unknown key: %w", topology.ErrInvalid)
	h.loadErr.Store(&invalid)
	if err := h.d.ReloadAndWait(); err == nil {
		t.Fatal("an invalid file was accepted")
	}
	h.settle()
	lr := h.d.view.Load().lastReload
	if lr == nil || lr.OK || lr.Error != invalid.Error() || !lr.Time.Equal(h.clock.Now()) || lr.Duration <= 0 {
		t.Errorf("refused reload recorded as %+v", lr)
	}

	h.loadErr.Store(nil)
	if err := h.d.ReloadAndWait(); err != nil {
		t.Fatal(err)
	}
	h.settle()
	if lr := h.d.view.Load().lastReload; lr == nil || !lr.OK || lr.Error != "" {
		t.Errorf("good reload recorded as %+v", lr)
	}
}
