// Package healthcheck decides whether real servers should get traffic. A
// Prober answers one question once (does this port accept a connection?);
// the state machine in state.go turns a series of answers into up or down
// with keepalived's retry semantics plus rise; the Manager runs every
// target's checks on one scheduler over an injectable clock and reports
// transitions.
package healthcheck

import (
	"context"
	"net"
)

// Prober runs one probe. The context carries the probe's deadline (the
// check's connect_timeout).
type Prober interface {
	Probe(ctx context.Context) error
}

// dialerOr returns d, or a zero dialer when d is nil. Every prober takes an
// optional dialer so that a check can mark or bind its packets.
func dialerOr(d *net.Dialer) *net.Dialer {
	if d == nil {
		return &net.Dialer{}
	}
	return d
}
