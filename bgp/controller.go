package bgp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/lvsdr/lvsdr/internal/clock"
)

// Defaults of Options.
const (
	// DefaultHoldDown is how long the VIP must stay servable after a
	// withdrawal before it is announced again.
	DefaultHoldDown = 5 * time.Second
	// DefaultWithdrawWait bounds how long Stop waits for the withdrawal
	// to be written to the established sessions.
	DefaultWithdrawWait = 2 * time.Second
	// DefaultLinger is how long Stop leaves the routers to act on the
	// withdrawal before it closes the sessions.
	DefaultLinger = time.Second
	// DefaultRetryInterval is how soon a failed speaker call is retried.
	DefaultRetryInterval = time.Second
)

// pollInterval paces Stop's look at the UPDATE counters.
const pollInterval = 20 * time.Millisecond

// reassertDelay: this long after a session comes up, an announced VIP is
// announced again, for GoBGP's race described on the GoBGP type: a path
// added while a session comes up may miss it.
const reassertDelay = time.Second

// Options configure a Controller.
type Options struct {
	Speaker Speaker
	Config  Config
	Peers   []Peer
	// Prefix is what is announced: the VIP as a /32.
	Prefix netip.Prefix
	// NextHop is the route's next hop, the director's address on the
	// routers' network; invalid means each session's local address.
	NextHop netip.Addr
	// Clock defaults to the wall clock.
	Clock clock.Clock
	// Log defaults to discarding.
	Log *slog.Logger
	// OnEvent receives every announcement, withdrawal and peer session
	// change, on the controller's goroutine: it must not block
	// (notify.Hook.Send does not).
	OnEvent func(Event)
	// HoldDown: 0 means DefaultHoldDown, negative none.
	HoldDown time.Duration
	// WithdrawWait: 0 means DefaultWithdrawWait.
	WithdrawWait time.Duration
	// Linger: 0 means DefaultLinger, negative none.
	Linger time.Duration
	// RetryInterval: 0 means DefaultRetryInterval.
	RetryInterval time.Duration
}

// EventType is what an Event reports.
type EventType string

// The event types.
const (
	EventAnnounced EventType = "announced"
	EventWithdrawn EventType = "withdrawn"
	// EventPeer is a peer's session changing state.
	EventPeer EventType = "peer"
)

// Event is one change, for the notify hook and the log.
type Event struct {
	Type   EventType
	Prefix netip.Prefix
	// Reason and Detail: why it was announced or withdrawn.
	Reason Reason
	Detail string
	// Peer, State, Previous and Error describe an EventPeer: Error is why
	// the session went down.
	Peer            netip.Addr
	State, Previous SessionState
	Error           string
	At              time.Time
}

// Snapshot is the controller's state for status and metrics.
type Snapshot struct {
	Prefix    netip.Prefix
	NextHop   netip.Addr
	Announced bool
	// Reason is why the VIP is announced or not: ReasonServing while
	// announced, the withdrawal's reason otherwise, ReasonHoldDown while
	// servable but held down.
	Reason Reason
	Detail string
	// Since is when Announced last changed (the start, at first).
	Since time.Time
	// HoldDownUntil is when a held-down VIP will be announced if it stays
	// servable; zero otherwise.
	HoldDownUntil time.Time
	// LastError is the last speaker call's error, empty once one succeeds.
	LastError string
	Peers     []PeerStatus
}

// Controller announces and withdraws the VIP according to the director's
// Health, from one goroutine: Update and SetPeers never block, the last
// value wins.
type Controller struct {
	opts    Options
	clock   clock.Clock
	log     *slog.Logger
	speaker Speaker

	// mu guards the inputs waiting for the loop.
	mu        sync.Mutex
	health    *Health
	newPeers  []Peer
	peersSent bool
	kick      chan struct{}
	syncCh    chan chan struct{}
	stopCh    chan stopRequest
	done      chan struct{}
	stopErr   error

	snapMu sync.Mutex
	snap   Snapshot

	// The loop's own state.
	decision      Decision
	servableSince time.Time
	everAnnounced bool
	applied       bool
	since         time.Time
	holdUntil     time.Time
	retryAt       time.Time
	lastErr       string
	peersDirty    bool
	peerList      []PeerStatus
	peerStates    map[netip.Addr]SessionState
	reassertAt    time.Time
	wake          <-chan time.Time
	wakeAt        time.Time
}

type stopRequest struct {
	ctx   context.Context
	reply chan error
}

// Start starts the speaker with its peers and the controller's loop. The
// VIP is announced once Update reports it servable.
func Start(ctx context.Context, opts Options) (*Controller, error) {
	if opts.Speaker == nil {
		return nil, errors.New("start BGP controller: no speaker")
	}
	if !opts.Prefix.IsValid() {
		return nil, errors.New("start BGP controller: no prefix to announce")
	}
	if opts.Clock == nil {
		opts.Clock = clock.Real{}
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	opts.HoldDown = orDefault(opts.HoldDown, DefaultHoldDown)
	opts.WithdrawWait = orDefault(opts.WithdrawWait, DefaultWithdrawWait)
	opts.Linger = orDefault(opts.Linger, DefaultLinger)
	opts.RetryInterval = orDefault(opts.RetryInterval, DefaultRetryInterval)
	c := &Controller{
		opts:       opts,
		clock:      opts.Clock,
		log:        opts.Log.With("prefix", opts.Prefix.String()),
		speaker:    opts.Speaker,
		kick:       make(chan struct{}, 1),
		syncCh:     make(chan chan struct{}),
		stopCh:     make(chan stopRequest),
		done:       make(chan struct{}),
		decision:   Decision{Reason: ReasonStarting},
		peerStates: make(map[netip.Addr]SessionState),
	}
	if err := c.speaker.Start(ctx, opts.Config); err != nil {
		return nil, fmt.Errorf("start BGP speaker as AS %d, router id %s: %w", opts.Config.ASN, opts.Config.RouterID, err)
	}
	if err := c.speaker.UpdatePeers(ctx, opts.Peers); err != nil {
		_ = c.speaker.Stop(ctx)
		return nil, fmt.Errorf("configure BGP peers: %w", err)
	}
	c.since = c.clock.Now()
	c.refreshPeers(ctx)
	c.publish()
	go c.loop()
	return c, nil
}

func orDefault(d, def time.Duration) time.Duration {
	switch {
	case d == 0:
		return def
	case d < 0:
		return 0
	}
	return d
}

// Update gives the controller the director's latest health.
func (c *Controller) Update(h Health) {
	h.Services = slices.Clone(h.Services)
	c.mu.Lock()
	c.health = &h
	c.mu.Unlock()
	c.poke()
}

// SetPeers replaces the peers (a reload).
func (c *Controller) SetPeers(peers []Peer) {
	c.mu.Lock()
	c.newPeers = slices.Clone(peers)
	c.peersSent = true
	c.mu.Unlock()
	c.poke()
}

func (c *Controller) poke() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// Snapshot returns the current state.
func (c *Controller) Snapshot() Snapshot {
	c.snapMu.Lock()
	defer c.snapMu.Unlock()
	s := c.snap
	s.Peers = slices.Clone(s.Peers)
	return s
}

// Stop withdraws the VIP, waits until the withdrawal has been written to
// every established session (at most WithdrawWait), leaves the routers
// Linger to act on it, then stops the speaker. ctx bounds the whole. A
// second Stop returns the first one's result.
func (c *Controller) Stop(ctx context.Context) error {
	reply := make(chan error, 1)
	select {
	case c.stopCh <- stopRequest{ctx: ctx, reply: reply}:
		return <-reply
	case <-c.done:
		return c.stopErr
	}
}

// sync returns once the loop has taken every input given before it, the
// peers' states and the clock's time into account (tests).
func (c *Controller) sync() {
	r := make(chan struct{})
	select {
	case c.syncCh <- r:
		<-r
	case <-c.done:
	}
}

func (c *Controller) loop() {
	defer close(c.done)
	ctx := context.Background()
	for {
		select {
		case <-c.kick:
		case <-c.speaker.Changed():
			c.refreshPeers(ctx)
		case <-c.wake:
			c.wake, c.wakeAt = nil, time.Time{}
		case r := <-c.syncCh:
			c.refreshPeers(ctx)
			c.step(ctx)
			close(r)
			continue
		case req := <-c.stopCh:
			err := c.shutdown(req.ctx)
			c.stopErr = err
			req.reply <- err
			return
		}
		c.step(ctx)
	}
}

// step takes the pending inputs and brings the speaker to what they ask.
func (c *Controller) step(ctx context.Context) {
	c.absorb()
	c.apply(ctx)
	c.publish()
}

func (c *Controller) absorb() {
	c.mu.Lock()
	h := c.health
	c.health = nil
	if c.peersSent {
		c.peersDirty = true
		c.peersSent = false
	}
	c.mu.Unlock()
	if h == nil {
		return
	}
	d := Decide(*h)
	if d.Announce && !c.decision.Announce {
		c.servableSince = c.clock.Now()
	}
	c.decision = d
}

func (c *Controller) apply(ctx context.Context) {
	now := c.clock.Now()
	if !c.retryAt.IsZero() && now.Before(c.retryAt) {
		c.schedule(c.retryAt)
		return
	}
	c.retryAt = time.Time{}
	if c.peersDirty {
		c.mu.Lock()
		peers := c.newPeers
		c.mu.Unlock()
		if err := c.speaker.UpdatePeers(ctx, peers); err != nil {
			c.failed(now, "update BGP peers", err)
			return
		}
		c.peersDirty = false
		c.refreshPeers(ctx)
	}
	want := c.decision.Announce
	c.holdUntil = time.Time{}
	if want && !c.applied && c.everAnnounced && c.opts.HoldDown > 0 {
		if until := c.servableSince.Add(c.opts.HoldDown); now.Before(until) {
			want = false
			c.holdUntil = until
			c.schedule(until)
		}
	}
	switch {
	case want == c.applied && c.applied && !c.reassertAt.IsZero() && !now.Before(c.reassertAt):
		if err := c.speaker.Announce(ctx, c.opts.Prefix, c.opts.NextHop); err != nil {
			c.failed(now, "announce", err)
			return
		}
		c.reassertAt = time.Time{}
		c.log.Debug("BGP: VIP announced again after a session came up")
	case want == c.applied:
	case want:
		if err := c.speaker.Announce(ctx, c.opts.Prefix, c.opts.NextHop); err != nil {
			c.failed(now, "announce", err)
			return
		}
		c.applied, c.everAnnounced, c.since = true, true, now
		c.log.Info("BGP: VIP announced", "next_hop", c.opts.NextHop.String(), "detail", c.decision.Detail)
		c.emit(Event{Type: EventAnnounced, Reason: ReasonServing, Detail: c.decision.Detail, At: now})
	default:
		if err := c.speaker.Withdraw(ctx, c.opts.Prefix); err != nil {
			c.failed(now, "withdraw", err)
			return
		}
		c.applied, c.since = false, now
		c.log.Warn("BGP: VIP withdrawn", "reason", string(c.decision.Reason), "detail", c.decision.Detail)
		c.emit(Event{Type: EventWithdrawn, Reason: c.decision.Reason, Detail: c.decision.Detail, At: now})
	}
	c.lastErr = ""
}

func (c *Controller) failed(now time.Time, what string, err error) {
	msg := fmt.Sprintf("%s: %v", what, err)
	if msg != c.lastErr {
		c.log.Error("BGP: "+what+" failed, retrying", "error", err.Error(), "every", c.opts.RetryInterval.String())
	}
	c.lastErr = msg
	c.retryAt = now.Add(c.opts.RetryInterval)
	c.schedule(c.retryAt)
}

// schedule makes the loop wake at the latest at 'at'. One timer is
// pending at a time: a later need waits for the earlier timer, which
// re-evaluates everything.
func (c *Controller) schedule(at time.Time) {
	if c.wake != nil && !c.wakeAt.After(at) {
		return
	}
	c.wake = c.clock.After(at.Sub(c.clock.Now()))
	c.wakeAt = at
}

func (c *Controller) emit(e Event) {
	e.Prefix = c.opts.Prefix
	if c.opts.OnEvent != nil {
		c.opts.OnEvent(e)
	}
}

// refreshPeers reads the sessions and reports the changes of state.
func (c *Controller) refreshPeers(ctx context.Context) {
	peers, err := c.speaker.Peers(ctx)
	if err != nil {
		c.log.Debug("BGP: read peers", "error", err.Error())
		return
	}
	now := c.clock.Now()
	seen := make(map[netip.Addr]bool, len(peers))
	for _, p := range peers {
		seen[p.Address] = true
		prev, known := c.peerStates[p.Address]
		c.peerStates[p.Address] = p.State
		if prev == p.State || (!known && p.State != StateEstablished) {
			continue
		}
		if !known {
			prev = StateUnknown
		}
		switch {
		case p.State == StateEstablished:
			c.log.Info("BGP: session established", "peer", p.Address.String(), "asn", p.ASN)
			c.reassertAt = now.Add(reassertDelay)
			c.schedule(c.reassertAt)
		case prev == StateEstablished:
			c.log.Warn("BGP: session down", "peer", p.Address.String(), "asn", p.ASN, "state", string(p.State), "error", p.LastError)
		}
		c.emit(Event{Type: EventPeer, Peer: p.Address, State: p.State, Previous: prev, Error: p.LastError, At: now})
	}
	for a := range c.peerStates {
		if !seen[a] {
			delete(c.peerStates, a)
		}
	}
	c.peerList = peers
}

func (c *Controller) publish() {
	s := Snapshot{
		Prefix:        c.opts.Prefix,
		NextHop:       c.opts.NextHop,
		Announced:     c.applied,
		Reason:        c.decision.Reason,
		Detail:        c.decision.Detail,
		Since:         c.since,
		HoldDownUntil: c.holdUntil,
		LastError:     c.lastErr,
		Peers:         slices.Clone(c.peerList),
	}
	if !c.holdUntil.IsZero() {
		s.Reason = ReasonHoldDown
	}
	c.snapMu.Lock()
	c.snap = s
	c.snapMu.Unlock()
}

// shutdown is Stop's work on the loop's goroutine.
func (c *Controller) shutdown(ctx context.Context) error {
	c.decision = Decision{Reason: ReasonShutdown}
	c.holdUntil = time.Time{}
	if c.applied {
		c.withdrawForStop(ctx)
	}
	c.publish()
	err := c.speaker.Stop(ctx)
	now := c.clock.Now()
	for i := range c.peerList {
		if c.peerList[i].State != StateIdle {
			c.peerList[i].State, c.peerList[i].Since = StateIdle, now
		}
	}
	c.publish()
	if err != nil {
		return fmt.Errorf("stop BGP speaker: %w", err)
	}
	return nil
}

// withdrawForStop withdraws the VIP and waits until the UPDATE has been
// written to every session that was established, then lingers. Stopping
// the speaker would withdraw it too (the routers drop a closed session's
// routes), but an explicit withdrawal first lets the routers move the
// flows while the sessions are still up, and also reaches routers that
// keep a closed session's routes for graceful restart.
func (c *Controller) withdrawForStop(ctx context.Context) {
	before := make(map[netip.Addr]uint64)
	if peers, err := c.speaker.Peers(ctx); err == nil {
		for _, p := range peers {
			if p.State == StateEstablished {
				before[p.Address] = p.UpdatesSent
			}
		}
	}
	now := c.clock.Now()
	if err := c.speaker.Withdraw(ctx, c.opts.Prefix); err != nil {
		c.lastErr = fmt.Sprintf("withdraw: %v", err)
		c.log.Error("BGP: withdraw before stopping failed; stopping the speaker closes the sessions instead", "error", err.Error())
		return
	}
	c.applied, c.since = false, now
	c.log.Info("BGP: VIP withdrawn", "reason", string(ReasonShutdown), "established_peers", len(before))
	c.emit(Event{Type: EventWithdrawn, Reason: ReasonShutdown, At: now})
	c.publish()
	if len(before) == 0 {
		return
	}
	deadline := now.Add(c.opts.WithdrawWait)
	for !c.withdrawalSent(ctx, before) {
		if !c.clock.Now().Before(deadline) {
			c.log.Warn("BGP: withdrawal not confirmed written to every session in time", "wait", c.opts.WithdrawWait.String())
			break
		}
		select {
		case <-c.clock.After(pollInterval):
		case <-ctx.Done():
			return
		}
	}
	if c.opts.Linger > 0 {
		select {
		case <-c.clock.After(c.opts.Linger):
		case <-ctx.Done():
		}
	}
}

// withdrawalSent tells whether every session in before has sent an UPDATE
// since, or is no longer established (then the router dropped the route
// with the session).
func (c *Controller) withdrawalSent(ctx context.Context, before map[netip.Addr]uint64) bool {
	peers, err := c.speaker.Peers(ctx)
	if err != nil {
		return false
	}
	now := make(map[netip.Addr]PeerStatus, len(peers))
	for _, p := range peers {
		now[p.Address] = p
	}
	for addr, sent := range before {
		p, ok := now[addr]
		if ok && p.State == StateEstablished && p.UpdatesSent <= sent {
			return false
		}
	}
	return true
}
