// Package bgp announces the VIP to the routers over BGP, so that several
// directors serve it at once and the routers spread flows over them with
// ECMP (issue 13). It has three parts:
//
//   - Speaker, the BGP session itself: GoBGP embedded in the process
//     (NewGoBGP), or Fake for tests. It speaks only to the configured
//     peers, dials out to them, announces and withdraws one prefix with a
//     given next hop, and keeps the routes they send out of its RIB (GoBGP
//     still holds them in its Adj-RIB-In: the routers should send the
//     directors nothing, bird's `export none`).
//   - Decide, the announcement policy, a pure function from the director's
//     Health to a Decision with a typed Reason.
//   - Controller, one goroutine that turns Health updates into Announce and
//     Withdraw calls, damps flapping, withdraws gracefully on Stop and
//     publishes a Snapshot and Events for status, metrics and the notify
//     hook.
//
// # When lvsdr announces the VIP
//
// The VIP /32 is announced, with the director's own address as next hop,
// while all of these hold (Decide):
//
//   - the director is not stopping (SIGTERM withdraws first);
//   - the last write of the IPVS table succeeded;
//   - at least one service of the VIP has its quorum (lvsdr's quorum: the
//     count of its healthy real servers out of maintenance reaches the
//     service's quorum, one unless set).
//
// Seesaw is the reference and differs on the last point: it announces an
// anycast VIP only while every service of the VIP is healthy. lvsdr keeps
// the VIP while any service can be served, because every director of an
// ECMP group checks the same real servers: a service that lost quorum on
// one director has lost it on all of them, and withdrawing the whole VIP
// everywhere because, say, the management port (15672) is down would take
// AMQP (5672) down with it. A service below quorum is handled as without
// BGP (its sorry server, or no destination); the VIP is withdrawn when no
// service of it can be served, and then every director withdraws it and
// the routers drop the route instead of sending clients into a black hole.
//
// A withdrawal takes effect at once. The first announcement after start is
// also immediate; after a withdrawal the VIP must stay servable for
// Options.HoldDown (default 5 s) before it is announced again, so a
// flapping check costs the routers one withdrawal and one announcement
// rather than a route flap per check interval (routers that damp flaps,
// RFC 2439, would otherwise suppress the route for many minutes).
//
// # GoBGP version
//
// GoBGP v4 (github.com/osrg/gobgp/v4, v4.8.0) rather than v3.37.0:
//   - a smaller tree: 109 modules in the build list and 257 edges in
//     `go mod graph` against v3's 144 and 2,134; v4 no longer pulls in
//     logrus, hcl, ini or the old golang/protobuf, and its netlink, x/sys
//     and protobuf versions are the ones lvsdr already uses;
//   - it logs through log/slog (server.LoggerOption), lvsdr's logger, where
//     v3 needs a logrus adapter;
//   - its library API takes Go types (netip.Addr, bgp.NLRI, apiutil.Path)
//     rather than protobuf Any messages for paths;
//   - v3 is the previous major line; new work lands in v4.
//
// v4's library API has moved between minor releases, which is why nothing
// outside gobgp.go imports it: the rest of lvsdr sees only Speaker.
package bgp
