package ipvsctl

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moby/ipvs"
)

// A lost netlink reply blocks moby/ipvs forever; the call must give up, and
// calls must never overlap (replies are matched by sequence number).
func TestNetlinkCallsAreSerializedAndBounded(t *testing.T) {
	n := &Netlink{handle: &ipvs.Handle{}, timeout: 50 * time.Millisecond}
	var inside, overlaps atomic.Int32
	release := make(chan struct{})
	defer close(release)
	err := n.call(func(*ipvs.Handle) error { <-release; return nil })
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("a call that never returns: %v, want ErrTimeout", err)
	}
	done := make(chan struct{})
	for range 8 {
		go func() {
			defer func() { done <- struct{}{} }()
			n.call(func(*ipvs.Handle) error {
				if inside.Add(1) > 1 {
					overlaps.Add(1)
				}
				time.Sleep(time.Millisecond)
				inside.Add(-1)
				return nil
			})
		}()
	}
	for range 8 {
		<-done
	}
	if overlaps.Load() != 0 {
		t.Errorf("%d calls overlapped", overlaps.Load())
	}
}
