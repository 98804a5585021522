package bgp

import (
	"errors"
	"testing"
)

func TestDecide(t *testing.T) {
	amqp := ServiceHealth{Name: "amqp", Quorum: true}
	mgmt := ServiceHealth{Name: "management", Quorum: true}
	amqpDown := ServiceHealth{Name: "amqp"}
	mgmtDown := ServiceHealth{Name: "management"}
	ipvsErr := errors.New("netlink: operation not permitted")
	tests := []struct {
		name string
		in   Health
		want Decision
	}{
		{"every service in quorum", Health{Services: []ServiceHealth{amqp, mgmt}},
			Decision{Announce: true, Reason: ReasonServing}},
		{"one of two below quorum still serves", Health{Services: []ServiceHealth{amqp, mgmtDown}},
			Decision{Announce: true, Reason: ReasonServing, Detail: "1 of 2 services in quorum; below quorum: management"}},
		{"every service below quorum", Health{Services: []ServiceHealth{amqpDown, mgmtDown}},
			Decision{Reason: ReasonQuorumLost, Detail: "below quorum: amqp, management"}},
		{"the only service below quorum", Health{Services: []ServiceHealth{amqpDown}},
			Decision{Reason: ReasonQuorumLost, Detail: "below quorum: amqp"}},
		{"no service", Health{}, Decision{Reason: ReasonNoServices}},
		{"IPVS write failed", Health{IPVSError: ipvsErr, Services: []ServiceHealth{amqp}},
			Decision{Reason: ReasonIPVSFailed, Detail: ipvsErr.Error()}},
		{"IPVS failure outranks quorum loss", Health{IPVSError: ipvsErr, Services: []ServiceHealth{amqpDown}},
			Decision{Reason: ReasonIPVSFailed, Detail: ipvsErr.Error()}},
		{"stopping outranks everything", Health{Stopping: true, IPVSError: ipvsErr, Services: []ServiceHealth{amqp}},
			Decision{Reason: ReasonShutdown}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Decide(tt.in); got != tt.want {
				t.Errorf("Decide = %+v, want %+v", got, tt.want)
			}
		})
	}
}
