package bgp

import (
	"fmt"
	"strings"
)

// Reason says why the VIP is announced or not.
type Reason string

// The reasons, in the order Decide considers them.
const (
	// ReasonStarting: the director has not reported its health yet.
	ReasonStarting Reason = "starting"
	// ReasonShutdown: the director is stopping (SIGTERM).
	ReasonShutdown Reason = "shutdown"
	// ReasonIPVSFailed: the last write of the IPVS table failed, so the
	// kernel may not forward what the routers would send.
	ReasonIPVSFailed Reason = "ipvs-failed"
	// ReasonNoServices: the VIP has no service to serve.
	ReasonNoServices Reason = "no-services"
	// ReasonQuorumLost: every service of the VIP is below its quorum.
	ReasonQuorumLost Reason = "quorum-lost"
	// ReasonHoldDown: servable again, but not for HoldDown yet.
	ReasonHoldDown Reason = "hold-down"
	// ReasonServing: announced.
	ReasonServing Reason = "serving"
)

// Health is what the director knows of its ability to serve the VIP.
type Health struct {
	// Stopping is set once the director has been told to stop.
	Stopping bool
	// IPVSError is the error of the last write of the IPVS table, nil if it
	// succeeded.
	IPVSError error
	// Services are the VIP's services.
	Services []ServiceHealth
}

// ServiceHealth is one service's quorum.
type ServiceHealth struct {
	Name string
	// Quorum is lvsdr's: enough healthy real servers out of maintenance
	// reach the service's quorum.
	Quorum bool
}

// Decision is whether to announce the VIP, and why.
type Decision struct {
	Announce bool
	Reason   Reason
	// Detail completes Reason for a person: the IPVS error, the services
	// below quorum.
	Detail string
}

// Decide is lvsdr's announcement policy: announce while not stopping, the
// IPVS table was written and at least one service has its quorum (see the
// package documentation for why not seesaw's "every service").
func Decide(h Health) Decision {
	switch {
	case h.Stopping:
		return Decision{Reason: ReasonShutdown}
	case h.IPVSError != nil:
		return Decision{Reason: ReasonIPVSFailed, Detail: h.IPVSError.Error()}
	case len(h.Services) == 0:
		return Decision{Reason: ReasonNoServices}
	}
	var below []string
	for _, s := range h.Services {
		if !s.Quorum {
			below = append(below, s.Name)
		}
	}
	if len(below) == len(h.Services) {
		return Decision{Reason: ReasonQuorumLost, Detail: "below quorum: " + strings.Join(below, ", ")}
	}
	d := Decision{Announce: true, Reason: ReasonServing}
	if len(below) > 0 {
		d.Detail = fmt.Sprintf("%d of %d services in quorum; below quorum: %s",
			len(h.Services)-len(below), len(h.Services), strings.Join(below, ", "))
	}
	return d
}
