package metrics

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/lvsdr/lvsdr/ipvsctl"
)

func TestReconcilesCountOperationsErrorsAndDrift(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	r := NewReconciles(reg)
	// Every reason and operation has a series from the start.
	if n := testutil.CollectAndCount(r.errors); n != len(Reasons) {
		t.Errorf("%d reconcile_errors_total series at start, want one per reason (%d)", n, len(Reasons))
	}
	if n := testutil.CollectAndCount(r.ops); n != 6 {
		t.Errorf("%d ipvs_operations_total series at start, want 6", n)
	}

	r.Observe("start", 3*time.Millisecond, []ipvsctl.Op{
		{Kind: ipvsctl.AddService}, {Kind: ipvsctl.AddDestination}, {Kind: ipvsctl.AddDestination},
	}, nil)
	r.Observe("check", time.Millisecond, []ipvsctl.Op{{Kind: ipvsctl.DeleteDestination}}, errors.New("delete real server: not found"))
	r.Drift(2)

	for op, want := range map[string]float64{"add_service": 1, "add_destination": 2, "delete_destination": 1, "update_destination": 0} {
		if got := testutil.ToFloat64(r.ops.WithLabelValues(op)); got != want {
			t.Errorf("ipvs_operations_total{op=%q} = %v, want %v", op, got, want)
		}
	}
	if got := testutil.ToFloat64(r.errors.WithLabelValues("check")); got != 1 {
		t.Errorf("reconcile_errors_total{reason=check} = %v, want 1", got)
	}
	if got := testutil.ToFloat64(r.errors.WithLabelValues("start")); got != 0 {
		t.Errorf("reconcile_errors_total{reason=start} = %v, want 0", got)
	}
	if got := testutil.ToFloat64(r.drift); got != 2 {
		t.Errorf("drift_operations = %v, want 2", got)
	}
	if n, err := testutil.GatherAndCount(reg, "lvsdr_reconcile_duration_seconds"); err != nil || n != len(Reasons) {
		t.Errorf("%d reconcile_duration_seconds histograms (%v), want one per reason", n, err)
	}
}

func TestQuorumRetainDropsRemovedServices(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	cat := catalogOf(lab())
	q := NewQuorum(reg, func() *Catalog { return cat })
	q.Set("amqp", true)
	q.Set("management", false)
	if got := testutil.ToFloat64(q.lost.WithLabelValues("amqp", "10.0.0.100", "5672", "TCP")); got != 1 {
		t.Errorf("quorum_lost{amqp} = %v, want 1", got)
	}
	q.Retain([]string{"amqp"})
	if n := testutil.CollectAndCount(q.lost); n != 1 {
		t.Errorf("%d quorum_lost series after management was removed, want 1", n)
	}
	// A reload moves the VIP: amqp's series moves with it, none is left
	// under the old address.
	moved := lab()
	moved.VIP = netip.MustParseAddr("10.0.0.200")
	cat = catalogOf(moved)
	q.Set("amqp", false)
	want := `
# HELP lvsdr_quorum_lost Whether fewer real servers of a service are healthy and out of maintenance than its quorum: 1 lost (the sorry server, if any, takes new clients), 0 not. Absent until every check of the service has a result.
# TYPE lvsdr_quorum_lost gauge
lvsdr_quorum_lost{local_address="10.0.0.200",local_port="5672",proto="TCP",service="amqp"} 0
`
	if err := testutil.CollectAndCompare(q.lost, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
}
