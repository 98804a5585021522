package bgp

import (
	"context"
	"net/netip"
	"time"
)

// DefaultHoldTime is the hold time of a peer that sets none, as GoBGP's and
// bird's default.
const DefaultHoldTime = 90 * time.Second

// Config is the speaker's own identity.
type Config struct {
	ASN      uint32
	RouterID netip.Addr
	// HoldTime applies to peers without one of their own; 0 means
	// DefaultHoldTime.
	HoldTime time.Duration
	// ListenPort, if set, also accepts the routers' connections on it
	// (normally 179). 0: the director only dials out, which needs no
	// listening socket and is enough, since a router accepts as well as
	// dials.
	ListenPort uint16
}

// Peer is one router the director announces to.
type Peer struct {
	Address netip.Addr
	ASN     uint32
	// Port is the router's BGP port; 0 means 179.
	Port uint16
	// Password turns on TCP MD5 signatures (RFC 2385) for the session.
	Password string
	// HoldTime 0 means Config.HoldTime.
	HoldTime time.Duration
}

// SessionState is a BGP session's state (RFC 4271 section 8).
type SessionState string

// The session states. StateUnknown is a peer the speaker does not report.
const (
	StateUnknown     SessionState = "unknown"
	StateIdle        SessionState = "idle"
	StateConnect     SessionState = "connect"
	StateActive      SessionState = "active"
	StateOpenSent    SessionState = "opensent"
	StateOpenConfirm SessionState = "openconfirm"
	StateEstablished SessionState = "established"
)

// PeerStatus is what a speaker knows of one peer's session.
type PeerStatus struct {
	Address netip.Addr
	ASN     uint32
	State   SessionState
	// Since is when the session entered State (for an established session,
	// how long it has been up).
	Since time.Time
	// LastError is why the session last went down, empty if it never did.
	LastError string
	// UpdatesSent counts the UPDATE messages written to the session since
	// it was established: it tells that a withdrawal has left the director.
	UpdatesSent uint64
}

// Speaker is a BGP speaker that announces prefixes with a next hop. Its
// methods are called from one goroutine (the Controller's); Peers may also
// be called from another.
type Speaker interface {
	// Start brings the speaker up with no peer and nothing announced.
	Start(ctx context.Context, cfg Config) error
	// UpdatePeers makes the set of peers exactly peers: new ones are added,
	// missing ones removed, changed ones re-created.
	UpdatePeers(ctx context.Context, peers []Peer) error
	// Announce advertises prefix to every peer, with nextHop as next hop;
	// an invalid or unspecified nextHop means each session's own local
	// address.
	Announce(ctx context.Context, prefix netip.Prefix, nextHop netip.Addr) error
	// Withdraw takes back an announced prefix.
	Withdraw(ctx context.Context, prefix netip.Prefix) error
	// Peers reports every configured peer, ordered by address.
	Peers(ctx context.Context) ([]PeerStatus, error)
	// Changed is signalled (coalesced) whenever a peer's session changes
	// state, so that the caller reads Peers again.
	Changed() <-chan struct{}
	// Stop closes every session (a Cease NOTIFICATION) and stops the
	// speaker; the routers drop whatever it announced.
	Stop(ctx context.Context) error
}
