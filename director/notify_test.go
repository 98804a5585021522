package director

import (
	"errors"
	"testing"
	"time"
)

// The service manager hears READY=1 only once the kernel has the table,
// RELOADING=1 and READY=1 around every reload, accepted or refused, and
// WATCHDOG=1 from the loop every Watchdog.
func TestRunTellsTheServiceManagerItsState(t *testing.T) {
	h := newHarness(t, reference())
	states := make(chan string, 64)
	servicesAtReady := -1
	h.configure = func(c *Config) {
		c.Watchdog = 10 * time.Second
		c.Notify = func(state string) {
			if state == "READY=1" && servicesAtReady < 0 {
				services, _ := h.kernel.Services()
				servicesAtReady = len(services)
			}
			states <- state
		}
	}
	h.start()
	next := func() string {
		t.Helper()
		select {
		case s := <-states:
			return s
		case <-time.After(10 * time.Second): // a hang guard, not a timing
			t.Fatal("the director told nothing more")
			return ""
		}
	}
	expect := func(when string, want ...string) {
		t.Helper()
		for _, w := range want {
			if got := next(); got != w {
				t.Fatalf("%s: told %q, want %q", when, got, w)
			}
		}
	}

	expect("at start", "READY=1")
	if servicesAtReady != 2 {
		t.Errorf("READY=1 with %d services in the kernel, want both: it must follow the first reconcile", servicesAtReady)
	}
	if err := h.d.ReloadAndWait(); err != nil {
		t.Fatal(err)
	}
	expect("an accepted reload", "RELOADING=1", "READY=1")
	refused := errors.New("topology.yaml:3: unknown key")
	h.loadErr.Store(&refused)
	if err := h.d.ReloadAndWait(); err == nil {
		t.Fatal("the invalid file was accepted")
	}
	expect("a refused reload", "RELOADING=1", "READY=1")
	h.loadErr.Store(nil)

	// Not due yet: a reload round trip shows nothing else was told.
	h.clock.Advance(9 * time.Second)
	h.d.ReloadAndWait()
	expect("before the watchdog is due", "RELOADING=1", "READY=1")
	h.clock.Advance(time.Second)
	expect("when the watchdog is due", "WATCHDOG=1")
	// The loop armed the next one before it takes another request.
	h.d.ReloadAndWait()
	expect("after a watchdog", "RELOADING=1", "READY=1")
	h.clock.Advance(10 * time.Second)
	expect("every Watchdog", "WATCHDOG=1")

	h.stop()
	expect("at stop", "STOPPING=1")
}
