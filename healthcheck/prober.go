// Package healthcheck decides whether real servers should get traffic. A
// Prober answers one question once (does this port accept a connection?);
// the state machine in state.go turns a series of answers into up or down
// with keepalived's retry semantics plus rise; the Manager runs one loop per
// target on an injectable clock and reports transitions.
package healthcheck

import "context"

// Prober runs one probe. The context carries the probe's deadline (the
// check's connect_timeout).
type Prober interface {
	Probe(ctx context.Context) error
}
