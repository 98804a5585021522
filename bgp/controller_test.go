package bgp

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lvsdr/lvsdr/internal/clock"
)

var (
	vip     = netip.MustParsePrefix("192.0.2.10/32")
	nextHop = netip.MustParseAddr("10.9.0.2")
	router1 = netip.MustParseAddr("10.9.0.254")
	router2 = netip.MustParseAddr("10.9.0.253")

	serving   = Health{Services: []ServiceHealth{{Name: "amqp", Quorum: true}, {Name: "management", Quorum: true}}}
	oneDown   = Health{Services: []ServiceHealth{{Name: "amqp", Quorum: true}, {Name: "management"}}}
	allDown   = Health{Services: []ServiceHealth{{Name: "amqp"}, {Name: "management"}}}
	announce  = "announce 192.0.2.10/32 via 10.9.0.2"
	withdraw  = "withdraw 192.0.2.10/32"
	startLine = "start as 65001 id 10.9.0.2"
	peersLine = "peers 10.9.0.254/65000 10.9.0.253/65000"
)

type harness struct {
	c   *Controller
	sp  *Fake
	clk *clock.Fake

	mu     sync.Mutex
	events []Event
}

func newHarness(t *testing.T, tweak func(*Options)) *harness {
	t.Helper()
	h := &harness{clk: clock.NewFake(time.Date(2026, 11, 30, 2, 0, 0, 0, time.UTC))}
	h.sp = NewFake(h.clk.Now)
	opts := Options{
		Speaker: h.sp,
		Config:  Config{ASN: 65001, RouterID: nextHop},
		Peers:   []Peer{{Address: router1, ASN: 65000}, {Address: router2, ASN: 65000}},
		Prefix:  vip,
		NextHop: nextHop,
		Clock:   h.clk,
		OnEvent: func(e Event) {
			h.mu.Lock()
			h.events = append(h.events, e)
			h.mu.Unlock()
		},
	}
	if tweak != nil {
		tweak(&opts)
	}
	c, err := Start(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	h.c = c
	t.Cleanup(func() {
		ctx, cancel := context.WithCancel(context.Background())
		cancel() // nothing left to wait for
		_ = c.Stop(ctx)
	})
	return h
}

// update gives the controller h and waits until it has acted on it.
func (h *harness) update(health Health) {
	h.c.Update(health)
	h.c.sync()
}

// advance moves the clock and waits until the controller has acted.
func (h *harness) advance(d time.Duration) {
	h.clk.Advance(d)
	h.c.sync()
}

// wakesItself moves the clock by d and expects the controller to make
// the call want on its own timer, with no other input.
func (h *harness) wakesItself(t *testing.T, d time.Duration, want string) {
	t.Helper()
	if n := h.clk.Waiters(); n == 0 {
		t.Fatal("the controller set no timer to wake on")
	}
	h.clk.Advance(d)
	if got := h.nextCall(t); got != want {
		t.Fatalf("on its timer the controller called %q, want %q", got, want)
	}
	h.c.sync() // the snapshot is published once the call has returned
}

func (h *harness) takeEvents() []Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	e := h.events
	h.events = nil
	return e
}

func (h *harness) wantCalls(t *testing.T, want ...string) {
	t.Helper()
	if got := h.sp.Calls(); !slices.Equal(got, want) {
		t.Fatalf("speaker calls:\n got %q\nwant %q", got, want)
	}
}

func count(calls []string, line string) int {
	n := 0
	for _, c := range calls {
		if c == line {
			n++
		}
	}
	return n
}

func TestNothingAnnouncedBeforeHealthIsKnown(t *testing.T) {
	h := newHarness(t, nil)
	h.c.sync()
	h.wantCalls(t, startLine, peersLine)
	s := h.c.Snapshot()
	if s.Announced || s.Reason != ReasonStarting || len(s.Peers) != 2 {
		t.Fatalf("snapshot %+v, want not announced, starting, 2 peers", s)
	}
}

func TestAnnouncesAtStartWhenServing(t *testing.T) {
	h := newHarness(t, nil)
	start := h.clk.Now()
	h.update(serving)
	h.wantCalls(t, startLine, peersLine, announce)
	s := h.c.Snapshot()
	if !s.Announced || s.Reason != ReasonServing || !s.Since.Equal(start) || !s.HoldDownUntil.IsZero() {
		t.Fatalf("snapshot %+v", s)
	}
	ev := h.takeEvents()
	if len(ev) != 1 || ev[0].Type != EventAnnounced || ev[0].Prefix != vip || ev[0].Reason != ReasonServing {
		t.Fatalf("events %+v, want one announcement", ev)
	}
}

func TestWithdrawsOnlyWhenEveryServiceIsBelowQuorum(t *testing.T) {
	h := newHarness(t, nil)
	h.update(serving)
	h.update(oneDown)
	h.wantCalls(t, startLine, peersLine, announce)
	if s := h.c.Snapshot(); !s.Announced || !strings.Contains(s.Detail, "management") {
		t.Fatalf("one service below quorum: snapshot %+v, want announced naming management", s)
	}
	h.clk.Advance(time.Second)
	h.update(allDown)
	h.wantCalls(t, startLine, peersLine, announce, withdraw)
	s := h.c.Snapshot()
	if s.Announced || s.Reason != ReasonQuorumLost || !s.Since.Equal(h.clk.Now()) {
		t.Fatalf("snapshot %+v, want withdrawn for quorum-lost now", s)
	}
	ev := h.takeEvents()
	if last := ev[len(ev)-1]; last.Type != EventWithdrawn || last.Reason != ReasonQuorumLost || last.Detail != "below quorum: amqp, management" {
		t.Fatalf("last event %+v, want withdrawn for quorum-lost", last)
	}
}

func TestWithdrawsWhenIPVSWritesFail(t *testing.T) {
	h := newHarness(t, nil)
	h.update(serving)
	failing := serving
	failing.IPVSError = errors.New("set weight: no such device")
	h.update(failing)
	h.wantCalls(t, startLine, peersLine, announce, withdraw)
	if s := h.c.Snapshot(); s.Reason != ReasonIPVSFailed || s.Detail != "set weight: no such device" {
		t.Fatalf("snapshot %+v, want ipvs-failed with the error", s)
	}
}

func TestReannouncesAfterHoldDown(t *testing.T) {
	h := newHarness(t, nil)
	h.update(serving)
	h.update(allDown)
	h.clk.Advance(time.Second)
	back := h.clk.Now()
	h.update(serving)
	s := h.c.Snapshot()
	if s.Announced || s.Reason != ReasonHoldDown || !s.HoldDownUntil.Equal(back.Add(DefaultHoldDown)) {
		t.Fatalf("servable again: snapshot %+v, want held down until %v", s, back.Add(DefaultHoldDown))
	}
	h.advance(DefaultHoldDown - time.Millisecond)
	h.wantCalls(t, startLine, peersLine, announce, withdraw)
	h.drainCalls(t, 4)
	h.wakesItself(t, time.Millisecond, announce)
	if s := h.c.Snapshot(); !s.Announced || s.Reason != ReasonServing || !s.HoldDownUntil.IsZero() {
		t.Fatalf("after hold-down: snapshot %+v", s)
	}
}

func TestFlappingIsDamped(t *testing.T) {
	h := newHarness(t, nil)
	h.update(serving)
	// A check flapping every second for ten seconds.
	for i := range 10 {
		if i%2 == 0 {
			h.update(allDown)
		} else {
			h.update(serving)
		}
		h.advance(time.Second)
	}
	h.update(serving)
	calls := h.sp.Calls()
	if count(calls, withdraw) != 1 || count(calls, announce) != 1 {
		t.Fatalf("flapping: %q, want the first announcement and one withdrawal", calls)
	}
	h.advance(DefaultHoldDown)
	if got := count(h.sp.Calls(), announce); got != 2 {
		t.Fatalf("stable for the hold-down: %d announcements, want 2", got)
	}
}

func TestNoHoldDownWhenDisabled(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.HoldDown = -1 })
	h.update(serving)
	h.update(allDown)
	h.update(serving)
	h.wantCalls(t, startLine, peersLine, announce, withdraw, announce)
}

func TestAnnounceIsRetriedAfterAnError(t *testing.T) {
	h := newHarness(t, nil)
	h.sp.Fail("announce", errors.New("server stopped"))
	h.update(serving)
	if s := h.c.Snapshot(); s.Announced || s.LastError != "announce: server stopped" {
		t.Fatalf("snapshot %+v, want not announced with the error", s)
	}
	h.sp.Fail("announce", nil)
	h.advance(DefaultRetryInterval - time.Millisecond)
	if got := count(h.sp.Calls(), announce); got != 1 {
		t.Fatalf("retried before the interval: %d attempts", got)
	}
	h.drainCalls(t, 3) // start, peers, the failed announcement
	h.wakesItself(t, time.Millisecond, announce)
	if s := h.c.Snapshot(); !s.Announced || s.LastError != "" {
		t.Fatalf("after the retry: snapshot %+v", s)
	}
}

func TestPeerEvents(t *testing.T) {
	h := newHarness(t, nil)
	h.sp.SetState(router1, StateEstablished, "")
	h.c.sync()
	h.sp.SetState(router1, StateActive, "hold timer expired")
	h.c.sync()
	var peerEvents []Event
	for _, e := range h.takeEvents() {
		if e.Type == EventPeer {
			peerEvents = append(peerEvents, e)
		}
	}
	if len(peerEvents) != 2 {
		t.Fatalf("peer events %+v, want up then down", peerEvents)
	}
	up, down := peerEvents[0], peerEvents[1]
	if up.Peer != router1 || up.State != StateEstablished || up.Previous != StateActive {
		t.Errorf("up event %+v", up)
	}
	if down.State != StateActive || down.Previous != StateEstablished || down.Error != "hold timer expired" {
		t.Errorf("down event %+v", down)
	}
	s := h.c.Snapshot()
	if s.Peers[1].Address != router1 || s.Peers[1].State != StateActive || s.Peers[1].LastError != "hold timer expired" {
		t.Errorf("snapshot peers %+v", s.Peers)
	}
}

func TestAnnouncesAgainAfterASessionComesUp(t *testing.T) {
	h := newHarness(t, nil)
	h.update(serving)
	h.sp.SetState(router1, StateEstablished, "")
	h.c.sync()
	h.drainCalls(t, 3)
	h.wakesItself(t, reassertDelay, announce)
	h.advance(time.Hour)
	if got := count(h.sp.Calls(), announce); got != 2 {
		t.Fatalf("%d announcements, want the first and one after the session came up", got)
	}
	if ev := h.takeEvents(); count(eventTypes(ev), string(EventAnnounced)) != 1 {
		t.Fatalf("events %+v: announcing again is no new announcement", ev)
	}
}

func TestNoAnnouncementAfterASessionComesUpWhileWithdrawn(t *testing.T) {
	h := newHarness(t, nil)
	h.update(allDown)
	h.sp.SetState(router1, StateEstablished, "")
	h.c.sync()
	h.advance(reassertDelay)
	h.wantCalls(t, startLine, peersLine)
}

func eventTypes(ev []Event) []string {
	var out []string
	for _, e := range ev {
		out = append(out, string(e.Type))
	}
	return out
}

func TestSetPeers(t *testing.T) {
	h := newHarness(t, nil)
	h.c.SetPeers([]Peer{{Address: router1, ASN: 65010}})
	h.c.sync()
	h.wantCalls(t, startLine, peersLine, "peers 10.9.0.254/65010")
	if s := h.c.Snapshot(); len(s.Peers) != 1 || s.Peers[0].ASN != 65010 {
		t.Fatalf("snapshot peers %+v", s.Peers)
	}
}

// stop runs Stop in the background.
func (h *harness) stop() <-chan error {
	done := make(chan error, 1)
	go func() { done <- h.c.Stop(context.Background()) }()
	return done
}

func (h *harness) nextCall(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := h.sp.NextCall(ctx)
	if err != nil {
		t.Fatal("no speaker call:", err)
	}
	return c
}

// establish brings a session up once the VIP is announced, and lets the
// announcement that follows a session's start (reassertDelay) happen, so
// that no timer of it is left pending.
func (h *harness) establish(t *testing.T, addr netip.Addr) {
	t.Helper()
	h.sp.SetState(addr, StateEstablished, "")
	h.c.sync()
	h.drainCalls(t, len(h.sp.Calls()))
	h.wakesItself(t, reassertDelay, announce)
	if n := h.clk.Waiters(); n != 0 {
		t.Fatalf("%d timers pending after the session came up", n)
	}
}

// waitTimer returns once Stop waits on the clock, and fails the test if
// Stop returns instead.
func (h *harness) waitTimer(t *testing.T, done <-chan error) {
	t.Helper()
	blocked := make(chan struct{})
	go func() {
		h.clk.BlockUntil(1)
		close(blocked)
	}()
	select {
	case <-blocked:
	case err := <-done:
		t.Fatalf("Stop returned (%v) without waiting on the clock", err)
	}
}

func (h *harness) drainCalls(t *testing.T, n int) {
	for range n {
		h.nextCall(t)
	}
}

func TestStopWithdrawsThenLingersThenStops(t *testing.T) {
	h := newHarness(t, nil)
	h.update(serving)
	h.establish(t, router1)
	done := h.stop()
	if c := h.nextCall(t); c != withdraw {
		t.Fatalf("first call of Stop: %q, want the withdrawal", c)
	}
	h.waitTimer(t, done) // the linger
	if c := h.sp.Calls(); c[len(c)-1] != withdraw {
		t.Fatalf("the speaker stopped before the routers were given a moment: %q", c)
	}
	h.clk.Advance(DefaultLinger)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	h.wantCalls(t, startLine, peersLine, announce, announce, withdraw, "stop")
	s := h.c.Snapshot()
	if s.Announced || s.Reason != ReasonShutdown {
		t.Fatalf("snapshot %+v, want withdrawn for shutdown", s)
	}
	for _, p := range s.Peers {
		if p.State != StateIdle {
			t.Errorf("peer %s still %s after Stop", p.Address, p.State)
		}
	}
	ev := h.takeEvents()
	if last := ev[len(ev)-1]; last.Type != EventWithdrawn || last.Reason != ReasonShutdown {
		t.Fatalf("last event %+v, want the shutdown withdrawal", last)
	}
	if err := h.c.Stop(context.Background()); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	h.c.Update(serving) // after Stop: ignored, must not block
	h.wantCalls(t, startLine, peersLine, announce, announce, withdraw, "stop")
}

func TestStopWaitsForTheUpdateAtMostWithdrawWait(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.Linger = -1 })
	h.update(serving)
	h.establish(t, router1)
	h.sp.HoldUpdates(true)
	done := h.stop()
	h.nextCall(t) // the withdrawal
	h.waitTimer(t, done)
	h.clk.Advance(DefaultWithdrawWait / 2)
	h.waitTimer(t, done) // still polling
	if c := h.sp.Calls(); c[len(c)-1] != withdraw {
		t.Fatalf("stopped before the UPDATE was sent or the bound: %q", c)
	}
	h.clk.Advance(DefaultWithdrawWait / 2)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if c := h.sp.Calls(); c[len(c)-1] != "stop" {
		t.Fatalf("calls %q, want stop at the bound", c)
	}
}

func TestStopWaitsUntilTheUpdateIsSent(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.Linger = -1 })
	h.update(serving)
	h.establish(t, router1)
	h.sp.HoldUpdates(true)
	stopAt := h.clk.Now()
	done := h.stop()
	h.nextCall(t)
	h.waitTimer(t, done)
	// The socket drains: the UPDATE leaves on the next look.
	h.sp.HoldUpdates(false)
	h.sp.mu.Lock()
	h.sp.peers[router1].UpdatesSent++
	h.sp.mu.Unlock()
	h.clk.Advance(pollInterval)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if elapsed := h.clk.Now().Sub(stopAt); elapsed >= DefaultWithdrawWait {
		t.Fatalf("Stop waited for the bound (%v) although the UPDATE was sent", elapsed)
	}
}

func TestStopWithNoEstablishedSessionDoesNotWait(t *testing.T) {
	h := newHarness(t, nil)
	h.update(serving)
	if err := h.c.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	h.wantCalls(t, startLine, peersLine, announce, withdraw, "stop")
}

func TestStopWhenNotAnnouncedOnlyStops(t *testing.T) {
	h := newHarness(t, nil)
	h.sp.SetState(router1, StateEstablished, "")
	h.update(allDown)
	if err := h.c.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	h.wantCalls(t, startLine, peersLine, "stop")
}

func TestStartFailsWhenTheSpeakerCannotStart(t *testing.T) {
	sp := NewFake(time.Now)
	sp.Fail("start", errors.New("address in use"))
	_, err := Start(context.Background(), Options{Speaker: sp, Prefix: vip, Config: Config{ASN: 65001, RouterID: nextHop}})
	if err == nil || !strings.Contains(err.Error(), "address in use") || !strings.Contains(err.Error(), "AS 65001") {
		t.Fatalf("Start: %v, want the speaker's error with context", err)
	}
}
