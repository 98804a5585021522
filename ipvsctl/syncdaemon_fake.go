package ipvsctl

import (
	"fmt"
	"sync"
)

// FakeSyncDaemons stands in for the kernel's sync daemons in tests: one per
// role, the kernel's defaults filled in on start, the kernel's errors.
type FakeSyncDaemons struct {
	mu      sync.Mutex
	running map[SyncRole]SyncDaemon
	// Writes counts the starts and stops tried.
	Writes int
	// Fail, when set, is called before every start ("start") and stop
	// ("stop"); a non-nil result is returned instead of running it.
	Fail func(op string, d SyncDaemon) error
}

// NewFakeSyncDaemons returns a fake with no daemon running.
func NewFakeSyncDaemons() *FakeSyncDaemons {
	return &FakeSyncDaemons{running: map[SyncRole]SyncDaemon{}}
}

// fakeDefaultMaxLen is what the kernel derives for a 1500-byte MTU over
// IPv4 (1500 − 20 − 8).
const fakeDefaultMaxLen = 1472

// Daemons lists the running daemons, master first.
func (f *FakeSyncDaemons) Daemons() ([]SyncDaemon, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []SyncDaemon
	for _, role := range []SyncRole{SyncMaster, SyncBackup} {
		if d, ok := f.running[role]; ok {
			out = append(out, d)
		}
	}
	return out, nil
}

// StartDaemon starts a daemon; ErrExists if one of its role runs.
func (f *FakeSyncDaemons) StartDaemon(d SyncDaemon) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Writes++
	if err := d.Validate(); err != nil {
		return err
	}
	if f.Fail != nil {
		if err := f.Fail("start", d); err != nil {
			return err
		}
	}
	if _, ok := f.running[d.Role]; ok {
		return fmt.Errorf("start %s: %w", d, ErrExists)
	}
	d = d.withDefaults()
	if d.MaxLen == 0 {
		d.MaxLen = fakeDefaultMaxLen
	}
	f.running[d.Role] = d
	return nil
}

// StopDaemon stops the daemon of a role; ErrNotFound if none runs.
func (f *FakeSyncDaemons) StopDaemon(role SyncRole) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Writes++
	if f.Fail != nil {
		if err := f.Fail("stop", SyncDaemon{Role: role}); err != nil {
			return err
		}
	}
	if _, ok := f.running[role]; !ok {
		return fmt.Errorf("stop the %s sync daemon: %w", role, ErrNotFound)
	}
	delete(f.running, role)
	return nil
}
