package bgp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/netip"
	"slices"
	"sync"
	"time"

	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	gobgp "github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"github.com/osrg/gobgp/v4/pkg/server"
)

// Session timers GoBGP would otherwise take from its defaults (120 s and
// 30 s): a director whose router comes back, or whose session was reset,
// should be back in seconds, not minutes.
const (
	connectRetry     = 5 * time.Second
	idleHoldAfterRst = 5 * time.Second
)

// GoBGP is the Speaker on an embedded GoBGP server. Only one may run per
// process: GoBGP keeps its route selection options in package variables.
//
// A race in GoBGP v4.8.0 (fsmHandler.loop): the server's handling of a
// session coming up, which sends the session the routes of the RIB, runs
// before the session is marked established, and an AddPath or DeletePath
// that runs in between skips the session. A lost announcement is repaired
// by announcing again, which the Controller does a second after a session
// comes up; a lost withdrawal stays with that router until the session
// ends (nothing cheaper than resetting the session repairs it). The window
// is a few instructions wide, and the Controller's withdrawals follow the
// director's health, not the sessions: only a coincidence meets it.
type GoBGP struct {
	log *slog.Logger

	mu      sync.Mutex
	srv     *server.BgpServer
	cfg     Config
	peers   map[netip.Addr]Peer
	tracked map[netip.Addr]trackedState
	changed chan struct{}
	cancel  context.CancelFunc
}

// trackedState is what GoBGP's peer events tell and its peer list does
// not keep in one place: when the state was entered and the last error.
type trackedState struct {
	state     SessionState
	since     time.Time
	lastError string
}

// NewGoBGP returns a speaker that logs GoBGP's warnings and errors to log
// (nil: nowhere).
func NewGoBGP(log *slog.Logger) *GoBGP {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &GoBGP{
		log:     log,
		peers:   make(map[netip.Addr]Peer),
		tracked: make(map[netip.Addr]trackedState),
		changed: make(chan struct{}, 1),
	}
}

// Start implements Speaker.
func (g *GoBGP) Start(ctx context.Context, cfg Config) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.srv != nil {
		return errors.New("BGP speaker already started")
	}
	if !cfg.RouterID.Is4() {
		return fmt.Errorf("router id %s: must be an IPv4 address", cfg.RouterID)
	}
	if cfg.ASN == 0 {
		return errors.New("no local ASN")
	}
	level := new(slog.LevelVar)
	level.Set(slog.LevelWarn)
	// GoBGP logs every peer's ups and downs at Info; the Controller logs
	// those once, in lvsdr's words. GoBGP's own level only serves its
	// SetLogLevel, so the handler filters.
	logger := slog.New(minLevel{g.log.Handler(), level}).With("component", "gobgp")
	srv := server.NewBgpServer(server.LoggerOption(logger, level))
	go srv.Serve()
	listen := int32(-1) // GoBGP's "do not listen"
	if cfg.ListenPort != 0 {
		listen = int32(cfg.ListenPort)
	}
	if err := srv.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{
		Asn:        cfg.ASN,
		RouterId:   cfg.RouterID.String(),
		ListenPort: listen,
	}}); err != nil {
		srv.Stop()
		return fmt.Errorf("start GoBGP: %w", err)
	}
	if err := onlyLocalRoutes(ctx, srv); err != nil {
		srv.Stop()
		return fmt.Errorf("set GoBGP import policy: %w", err)
	}
	watchCtx, cancel := context.WithCancel(context.Background())
	if err := srv.WatchEvent(watchCtx, server.WatchEventMessageCallbacks{OnPeerUpdate: g.onPeerEvent}, server.WatchPeer()); err != nil {
		cancel()
		srv.Stop()
		return fmt.Errorf("watch GoBGP peers: %w", err)
	}
	g.srv, g.cfg, g.cancel = srv, cfg, cancel
	return nil
}

// minLevel passes on the records at or above level.
type minLevel struct {
	slog.Handler
	level slog.Leveler
}

func (h minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.level.Level() && h.Handler.Enabled(ctx, l)
}

func (h minLevel) WithAttrs(attrs []slog.Attr) slog.Handler {
	return minLevel{h.Handler.WithAttrs(attrs), h.level}
}

func (h minLevel) WithGroup(name string) slog.Handler {
	return minLevel{h.Handler.WithGroup(name), h.level}
}

// onlyLocalRoutes keeps what the routers send out of the RIB: the director
// routes nothing, so their routes would only cost best-path work and could
// be advertised on to the other routers. GoBGP's global import policy also
// sees the paths added through its API, hence "accept local, reject the
// rest" rather than a plain reject.
func onlyLocalRoutes(ctx context.Context, srv *server.BgpServer) error {
	policy := &api.Policy{Name: "lvsdr-local-only", Statements: []*api.Statement{{
		Name:       "lvsdr-accept-local",
		Conditions: &api.Conditions{RouteType: api.Conditions_ROUTE_TYPE_LOCAL},
		Actions:    &api.Actions{RouteAction: api.RouteAction_ROUTE_ACTION_ACCEPT},
	}}}
	if err := srv.AddPolicy(ctx, &api.AddPolicyRequest{Policy: policy}); err != nil {
		return err
	}
	return srv.SetPolicyAssignment(ctx, &api.SetPolicyAssignmentRequest{Assignment: &api.PolicyAssignment{
		Name:          "global",
		Direction:     api.PolicyDirection_POLICY_DIRECTION_IMPORT,
		Policies:      []*api.Policy{{Name: policy.Name}},
		DefaultAction: api.RouteAction_ROUTE_ACTION_REJECT,
	}})
}

func (g *GoBGP) onPeerEvent(ev *apiutil.WatchEventMessage_PeerEvent, at time.Time) {
	if ev.Type != apiutil.PEER_EVENT_STATE {
		return
	}
	addr := ev.Peer.State.NeighborAddress
	state := fsmState(ev.Peer.State.SessionState)
	g.mu.Lock()
	t, known := g.tracked[addr]
	if !known {
		// A late event of a peer removed since.
		g.mu.Unlock()
		return
	}
	// GoBGP gives a reason with every transition ("open-msg-received");
	// only the one that ended a session is an error.
	if t.state == StateEstablished && state != StateEstablished && ev.Peer.State.DisconnectMessage != "" {
		t.lastError = ev.Peer.State.DisconnectMessage
	}
	if t.state != state {
		t.state, t.since = state, at
	}
	g.tracked[addr] = t
	g.mu.Unlock()
	select {
	case g.changed <- struct{}{}:
	default:
	}
}

func fsmState(s gobgp.FSMState) SessionState {
	switch s {
	case gobgp.BGP_FSM_IDLE:
		return StateIdle
	case gobgp.BGP_FSM_CONNECT:
		return StateConnect
	case gobgp.BGP_FSM_ACTIVE:
		return StateActive
	case gobgp.BGP_FSM_OPENSENT:
		return StateOpenSent
	case gobgp.BGP_FSM_OPENCONFIRM:
		return StateOpenConfirm
	case gobgp.BGP_FSM_ESTABLISHED:
		return StateEstablished
	}
	return StateUnknown
}

func apiState(s api.PeerState_SessionState) SessionState {
	switch s {
	case api.PeerState_SESSION_STATE_IDLE:
		return StateIdle
	case api.PeerState_SESSION_STATE_CONNECT:
		return StateConnect
	case api.PeerState_SESSION_STATE_ACTIVE:
		return StateActive
	case api.PeerState_SESSION_STATE_OPENSENT:
		return StateOpenSent
	case api.PeerState_SESSION_STATE_OPENCONFIRM:
		return StateOpenConfirm
	case api.PeerState_SESSION_STATE_ESTABLISHED:
		return StateEstablished
	}
	return StateUnknown
}

func (g *GoBGP) server() (*server.BgpServer, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.srv == nil {
		return nil, errors.New("BGP speaker not started")
	}
	return g.srv, nil
}

// seconds rounds a timer up to GoBGP's whole seconds.
func seconds(d time.Duration) uint64 {
	return uint64(math.Ceil(d.Seconds()))
}

func (g *GoBGP) apiPeer(p Peer) *api.Peer {
	hold := p.HoldTime
	if hold == 0 {
		hold = g.cfg.HoldTime
	}
	if hold == 0 {
		hold = DefaultHoldTime
	}
	return &api.Peer{
		Conf: &api.PeerConf{
			NeighborAddress: p.Address.String(),
			PeerAsn:         p.ASN,
			AuthPassword:    p.Password,
		},
		Timers: &api.Timers{Config: &api.TimersConfig{
			HoldTime:               seconds(hold),
			KeepaliveInterval:      max(seconds(hold)/3, 1),
			ConnectRetry:           seconds(connectRetry),
			IdleHoldTimeAfterReset: seconds(idleHoldAfterRst),
		}},
		Transport: &api.Transport{RemotePort: uint32(p.Port)},
	}
}

// UpdatePeers implements Speaker.
func (g *GoBGP) UpdatePeers(ctx context.Context, peers []Peer) error {
	srv, err := g.server()
	if err != nil {
		return err
	}
	want := make(map[netip.Addr]Peer, len(peers))
	for _, p := range peers {
		if !p.Address.IsValid() {
			return errors.New("peer without an address")
		}
		if _, dup := want[p.Address]; dup {
			return fmt.Errorf("peer %s listed twice", p.Address)
		}
		want[p.Address] = p
	}
	g.mu.Lock()
	have := maps(g.peers)
	g.mu.Unlock()
	for addr, old := range have {
		if p, ok := want[addr]; ok && p == old {
			continue
		}
		if err := srv.DeletePeer(ctx, &api.DeletePeerRequest{Address: addr.String()}); err != nil {
			return fmt.Errorf("remove BGP peer %s: %w", addr, err)
		}
		g.forget(addr)
	}
	for addr, p := range want {
		if old, ok := have[addr]; ok && p == old {
			continue
		}
		// Known before GoBGP starts its session, so that no event of it
		// is taken for a stale one.
		g.mu.Lock()
		g.peers[addr] = p
		g.tracked[addr] = trackedState{state: StateIdle, since: time.Now()}
		g.mu.Unlock()
		if err := srv.AddPeer(ctx, &api.AddPeerRequest{Peer: g.apiPeer(p)}); err != nil {
			g.forget(addr)
			return fmt.Errorf("add BGP peer %s (AS %d): %w", addr, p.ASN, err)
		}
	}
	return nil
}

func maps(m map[netip.Addr]Peer) map[netip.Addr]Peer {
	out := make(map[netip.Addr]Peer, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func (g *GoBGP) forget(addr netip.Addr) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.peers, addr)
	delete(g.tracked, addr)
}

// path is the route for prefix; a withdrawal needs no next hop.
func path(prefix netip.Prefix, nextHop netip.Addr) (*apiutil.Path, error) {
	if !prefix.Addr().Is4() {
		return nil, fmt.Errorf("%s: only IPv4 prefixes are announced", prefix)
	}
	nlri, err := gobgp.NewIPAddrPrefix(prefix.Masked())
	if err != nil {
		return nil, fmt.Errorf("prefix %s: %w", prefix, err)
	}
	if !nextHop.IsValid() {
		// GoBGP puts each session's local address in place of 0.0.0.0.
		nextHop = netip.IPv4Unspecified()
	}
	if !nextHop.Is4() {
		return nil, fmt.Errorf("next hop %s: must be IPv4 for %s", nextHop, prefix)
	}
	nh, err := gobgp.NewPathAttributeNextHop(nextHop)
	if err != nil {
		return nil, fmt.Errorf("next hop %s: %w", nextHop, err)
	}
	return &apiutil.Path{
		Family: gobgp.RF_IPv4_UC,
		Nlri:   nlri,
		Attrs:  []gobgp.PathAttributeInterface{gobgp.NewPathAttributeOrigin(gobgp.BGP_ORIGIN_ATTR_TYPE_IGP), nh},
	}, nil
}

// Announce implements Speaker.
func (g *GoBGP) Announce(_ context.Context, prefix netip.Prefix, nextHop netip.Addr) error {
	srv, err := g.server()
	if err != nil {
		return err
	}
	p, err := path(prefix, nextHop)
	if err != nil {
		return err
	}
	if _, err := srv.AddPath(apiutil.AddPathRequest{Paths: []*apiutil.Path{p}}); err != nil {
		return fmt.Errorf("announce %s: %w", prefix, err)
	}
	return nil
}

// Withdraw implements Speaker.
func (g *GoBGP) Withdraw(_ context.Context, prefix netip.Prefix) error {
	srv, err := g.server()
	if err != nil {
		return err
	}
	p, err := path(prefix, netip.Addr{})
	if err != nil {
		return err
	}
	if err := srv.DeletePath(apiutil.DeletePathRequest{Paths: []*apiutil.Path{p}}); err != nil {
		return fmt.Errorf("withdraw %s: %w", prefix, err)
	}
	return nil
}

// Peers implements Speaker.
func (g *GoBGP) Peers(ctx context.Context) ([]PeerStatus, error) {
	srv, err := g.server()
	if err != nil {
		return nil, err
	}
	var out []PeerStatus
	err = srv.ListPeer(ctx, &api.ListPeerRequest{}, func(p *api.Peer) {
		if p.Conf == nil || p.State == nil {
			return
		}
		addr, err := netip.ParseAddr(p.Conf.NeighborAddress)
		if err != nil {
			return
		}
		st := PeerStatus{Address: addr, ASN: p.Conf.PeerAsn, State: apiState(p.State.SessionState)}
		if m := p.State.Messages; m != nil && m.Sent != nil {
			st.UpdatesSent = m.Sent.Update
		}
		out = append(out, st)
	})
	if err != nil {
		return nil, fmt.Errorf("list BGP peers: %w", err)
	}
	g.mu.Lock()
	for i := range out {
		// The state, its time and the reason a session ended come
		// together from GoBGP's events; its list may be a moment ahead
		// of them, without the reason yet.
		if t, ok := g.tracked[out[i].Address]; ok {
			out[i].State, out[i].Since, out[i].LastError = t.state, t.since, t.lastError
		}
	}
	g.mu.Unlock()
	slices.SortFunc(out, func(a, b PeerStatus) int { return a.Address.Compare(b.Address) })
	return out, nil
}

// Changed implements Speaker.
func (g *GoBGP) Changed() <-chan struct{} { return g.changed }

// Stop implements Speaker: GoBGP sends every peer a Cease NOTIFICATION
// (peer de-configured) and closes the sessions.
func (g *GoBGP) Stop(ctx context.Context) error {
	g.mu.Lock()
	srv, cancel := g.srv, g.cancel
	g.srv, g.cancel = nil, nil
	g.mu.Unlock()
	if srv == nil {
		return nil
	}
	done := make(chan error, 1)
	go func() {
		done <- srv.StopBgp(context.Background(), &api.StopBgpRequest{})
		cancel()
	}()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("stop GoBGP: %w", err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("stop GoBGP: %w", ctx.Err())
	}
}
