package bgp

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// Fake is a Speaker in memory for tests: it records every call as a line
// ("announce 192.0.2.1/32 via 10.0.0.2"), fails a call on demand, and
// plays the sessions' states as the test sets them. An UPDATE is counted
// as sent to every established peer at once, unless HoldUpdates is set.
type Fake struct {
	mu      sync.Mutex
	calls   []string
	callsCh chan string
	peers   map[netip.Addr]*PeerStatus
	routes  map[netip.Prefix]netip.Addr
	changed chan struct{}
	started bool
	// fail maps a method name ("announce") to the error it returns.
	fail map[string]error
	// holdUpdates keeps UPDATEs from being counted as sent.
	holdUpdates bool
	now         func() time.Time
}

// errNotStarted is what GoBGP answers too before StartBgp or after Stop.
var errNotStarted = errors.New("BGP speaker not started")

// NewFake returns a fake speaker; now stamps the peers' Since.
func NewFake(now func() time.Time) *Fake {
	return &Fake{
		callsCh: make(chan string, 1024),
		peers:   make(map[netip.Addr]*PeerStatus),
		routes:  make(map[netip.Prefix]netip.Addr),
		changed: make(chan struct{}, 1),
		fail:    make(map[string]error),
		now:     now,
	}
}

// Fail makes a method return err from now on; nil clears it. The methods
// are named "start", "peers" (UpdatePeers), "list" (Peers), "announce",
// "withdraw" and "stop".
func (f *Fake) Fail(method string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err == nil {
		delete(f.fail, method)
		return
	}
	f.fail[method] = err
}

// HoldUpdates stops (true) or resumes counting UPDATEs as sent, as if the
// sessions' sockets were stuck.
func (f *Fake) HoldUpdates(hold bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.holdUpdates = hold
}

// SetState moves a configured peer's session to state and signals Changed.
func (f *Fake) SetState(addr netip.Addr, state SessionState, lastError string) {
	f.mu.Lock()
	p, ok := f.peers[addr]
	if ok {
		p.State, p.Since = state, f.now()
		if lastError != "" {
			p.LastError = lastError
		}
		if state == StateEstablished {
			p.UpdatesSent = 0
			// GoBGP sends what is announced to a session as it comes up.
			if len(f.routes) > 0 && !f.holdUpdates {
				p.UpdatesSent++
			}
		}
	}
	f.mu.Unlock()
	if ok {
		f.signal()
	}
}

// Calls returns the calls made so far.
func (f *Fake) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// NextCall waits for the next call not yet taken and returns it.
func (f *Fake) NextCall(ctx context.Context) (string, error) {
	select {
	case c := <-f.callsCh:
		return c, nil
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// Routes returns what is announced: prefix to next hop.
func (f *Fake) Routes() map[netip.Prefix]netip.Addr {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[netip.Prefix]netip.Addr, len(f.routes))
	for p, nh := range f.routes {
		out[p] = nh
	}
	return out
}

func (f *Fake) record(method, line string) error {
	f.calls = append(f.calls, line)
	select {
	case f.callsCh <- line:
	default:
	}
	return f.fail[method]
}

func (f *Fake) signal() {
	select {
	case f.changed <- struct{}{}:
	default:
	}
}

// Start implements Speaker.
func (f *Fake) Start(_ context.Context, cfg Config) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.record("start", fmt.Sprintf("start as %d id %s", cfg.ASN, cfg.RouterID)); err != nil {
		return err
	}
	f.started = true
	return nil
}

// UpdatePeers implements Speaker: new peers start in StateActive.
func (f *Fake) UpdatePeers(_ context.Context, peers []Peer) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	line := "peers"
	for _, p := range peers {
		line += fmt.Sprintf(" %s/%d", p.Address, p.ASN)
	}
	if err := f.record("peers", line); err != nil {
		return err
	}
	if !f.started {
		return errNotStarted
	}
	keep := make(map[netip.Addr]bool)
	for _, p := range peers {
		keep[p.Address] = true
		if old, ok := f.peers[p.Address]; ok && old.ASN == p.ASN {
			continue
		}
		f.peers[p.Address] = &PeerStatus{Address: p.Address, ASN: p.ASN, State: StateActive, Since: f.now()}
	}
	for a := range f.peers {
		if !keep[a] {
			delete(f.peers, a)
		}
	}
	return nil
}

func (f *Fake) sendUpdate() {
	if f.holdUpdates {
		return
	}
	for _, p := range f.peers {
		if p.State == StateEstablished {
			p.UpdatesSent++
		}
	}
}

// Announce implements Speaker.
func (f *Fake) Announce(_ context.Context, prefix netip.Prefix, nextHop netip.Addr) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.record("announce", fmt.Sprintf("announce %s via %s", prefix, nextHop)); err != nil {
		return err
	}
	if !f.started {
		return errNotStarted
	}
	f.routes[prefix] = nextHop
	f.sendUpdate()
	return nil
}

// Withdraw implements Speaker.
func (f *Fake) Withdraw(_ context.Context, prefix netip.Prefix) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.record("withdraw", "withdraw "+prefix.String()); err != nil {
		return err
	}
	if !f.started {
		return errNotStarted
	}
	delete(f.routes, prefix)
	f.sendUpdate()
	return nil
}

// Peers implements Speaker.
func (f *Fake) Peers(context.Context) ([]PeerStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail["list"]; err != nil {
		return nil, err
	}
	out := make([]PeerStatus, 0, len(f.peers))
	for _, p := range f.peers {
		out = append(out, *p)
	}
	slices.SortFunc(out, func(a, b PeerStatus) int { return a.Address.Compare(b.Address) })
	return out, nil
}

// Changed implements Speaker.
func (f *Fake) Changed() <-chan struct{} { return f.changed }

// Stop implements Speaker: every session goes idle and the routes go.
func (f *Fake) Stop(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.record("stop", "stop"); err != nil {
		return err
	}
	f.started = false
	for _, p := range f.peers {
		p.State, p.Since = StateIdle, f.now()
	}
	clear(f.routes)
	return nil
}
