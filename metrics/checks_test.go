package metrics

import (
	"errors"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/lvsdr/lvsdr/healthcheck"
)

func TestCheckStatesReportUpDownAndLeaveUnknownOut(t *testing.T) {
	since := time.Unix(1767225600, 500_000_000)
	snapshot := map[healthcheck.Key]healthcheck.Status{
		healthcheck.Key{Service: "amqp", RealServer: "n1", Check: "tcp"}:       {State: healthcheck.Up, Since: since},
		healthcheck.Key{Service: "amqp", RealServer: "n2", Check: "tcp"}:       {State: healthcheck.Down, Since: since.Add(time.Second), LastError: errors.New("refused")},
		healthcheck.Key{Service: "management", RealServer: "n1", Check: "tcp"}: {State: healthcheck.Unknown, Since: since.Add(2 * time.Second)},
	}
	reg := prometheus.NewPedanticRegistry()
	cat := catalogOf(lab())
	RegisterCheckStates(reg, func() map[healthcheck.Key]healthcheck.Status { return snapshot }, func() *Catalog { return cat })
	want := `
# HELP lvsdr_check_up Whether the health check of a real server in a service passes: 1 up, 0 down. Absent while the check has no result yet (state unknown).
# TYPE lvsdr_check_up gauge
lvsdr_check_up{check="tcp",local_address="10.0.0.100",local_port="5672",proto="TCP",real_server="n1",remote_address="10.0.0.2",remote_port="5672",service="amqp"} 1
lvsdr_check_up{check="tcp",local_address="10.0.0.100",local_port="5672",proto="TCP",real_server="n2",remote_address="10.0.0.3",remote_port="5672",service="amqp"} 0
# HELP lvsdr_check_state_since_timestamp_seconds Unix time at which the check entered its current state (up, down, or unknown for a check not run yet).
# TYPE lvsdr_check_state_since_timestamp_seconds gauge
lvsdr_check_state_since_timestamp_seconds{check="tcp",local_address="10.0.0.100",local_port="5672",proto="TCP",real_server="n1",remote_address="10.0.0.2",remote_port="5672",service="amqp"} 1.7672256005e+09
lvsdr_check_state_since_timestamp_seconds{check="tcp",local_address="10.0.0.100",local_port="5672",proto="TCP",real_server="n2",remote_address="10.0.0.3",remote_port="5672",service="amqp"} 1.7672256015e+09
lvsdr_check_state_since_timestamp_seconds{check="tcp",local_address="10.0.0.100",local_port="15672",proto="TCP",real_server="n1",remote_address="10.0.0.2",remote_port="15672",service="management"} 1.7672256025e+09
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Error(err)
	}

	// Read at scrape time: a check that went away is gone from the next
	// scrape.
	delete(snapshot, healthcheck.Key{Service: "amqp", RealServer: "n2", Check: "tcp"})
	if n, _ := testutil.GatherAndCount(reg, "lvsdr_check_up"); n != 1 {
		t.Errorf("%d lvsdr_check_up series after amqp/n2 went, want 1", n)
	}
}

func TestCheckEventsCountTransitionsAndTimeProbes(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	cat := catalogOf(lab())
	var catMu sync.Mutex
	e := NewCheckEvents(reg, func() *Catalog { catMu.Lock(); defer catMu.Unlock(); return cat })
	e.Transition(healthcheck.Key{Service: "amqp", RealServer: "n1", Check: "tcp"}, healthcheck.Up)
	e.Transition(healthcheck.Key{Service: "amqp", RealServer: "n1", Check: "tcp"}, healthcheck.Down)
	e.Transition(healthcheck.Key{Service: "amqp", RealServer: "n1", Check: "tcp"}, healthcheck.Up)
	e.Transition(healthcheck.Key{Service: "amqp", RealServer: "n2", Check: "tcp"}, healthcheck.Up)
	e.Probe(healthcheck.Key{Service: "amqp", RealServer: "n1", Check: "tcp"}, 3*time.Millisecond, nil)
	e.Probe(healthcheck.Key{Service: "amqp", RealServer: "n2", Check: "tcp"}, 2*time.Second, errors.New("i/o timeout"))
	e.Probe(healthcheck.Key{Service: "management", RealServer: "n1", Check: "http"}, 40*time.Millisecond, nil)

	n1 := []string{"amqp", "n1", "tcp", "10.0.0.100", "5672", "TCP", "10.0.0.2", "5672"}
	if got := testutil.ToFloat64(e.transitions.WithLabelValues(append(n1, "up")...)); got != 2 {
		t.Errorf("amqp/n1 transitions to up = %v, want 2", got)
	}
	if got := testutil.ToFloat64(e.transitions.WithLabelValues(append(n1, "down")...)); got != 1 {
		t.Errorf("amqp/n1 transitions to down = %v, want 1", got)
	}
	want := `
# HELP lvsdr_check_duration_seconds Time taken by one probe of the health check of a real server in a service (each retry is a probe), passing or failing; a failing probe that hits connect_timeout lasts that long.
# TYPE lvsdr_check_duration_seconds histogram
lvsdr_check_duration_seconds_bucket{check="tcp",local_address="10.0.0.100",local_port="5672",proto="TCP",real_server="n1",remote_address="10.0.0.2",remote_port="5672",service="amqp",le="0.001"} 0
lvsdr_check_duration_seconds_bucket{check="tcp",local_address="10.0.0.100",local_port="5672",proto="TCP",real_server="n1",remote_address="10.0.0.2",remote_port="5672",service="amqp",le="0.0025"} 0
lvsdr_check_duration_seconds_bucket{check="tcp",local_address="10.0.0.100",local_port="5672",proto="TCP",real_server="n1",remote_address="10.0.0.2",remote_port="5672",service="amqp",le="0.005"} 1
lvsdr_check_duration_seconds_bucket{check="tcp",local_address="10.0.0.100",local_port="5672",proto="TCP",real_server="n1",remote_address="10.0.0.2",remote_port="5672",service="amqp",le="0.01"} 1
lvsdr_check_duration_seconds_bucket{check="tcp",local_address="10.0.0.100",local_port="5672",proto="TCP",real_server="n1",remote_address="10.0.0.2",remote_port="5672",service="amqp",le="0.025"} 1
lvsdr_check_duration_seconds_bucket{check="tcp",local_address="10.0.0.100",local_port="5672",proto="TCP",real_server="n1",remote_address="10.0.0.2",remote_port="5672",service="amqp",le="0.05"} 1
lvsdr_check_duration_seconds_bucket{check="tcp",local_address="10.0.0.100",local_port="5672",proto="TCP",real_server="n1",remote_address="10.0.0.2",remote_port="5672",service="amqp",le="0.1"} 1
lvsdr_check_duration_seconds_bucket{check="tcp",local_address="10.0.0.100",local_port="5672",proto="TCP",real_server="n1",remote_address="10.0.0.2",remote_port="5672",service="amqp",le="0.25"} 1
lvsdr_check_duration_seconds_bucket{check="tcp",local_address="10.0.0.100",local_port="5672",proto="TCP",real_server="n1",remote_address="10.0.0.2",remote_port="5672",service="amqp",le="0.5"} 1
lvsdr_check_duration_seconds_bucket{check="tcp",local_address="10.0.0.100",local_port="5672",proto="TCP",real_server="n1",remote_address="10.0.0.2",remote_port="5672",service="amqp",le="1"} 1
lvsdr_check_duration_seconds_bucket{check="tcp",local_address="10.0.0.100",local_port="5672",proto="TCP",real_server="n1",remote_address="10.0.0.2",remote_port="5672",service="amqp",le="2.5"} 1
lvsdr_check_duration_seconds_bucket{check="tcp",local_address="10.0.0.100",local_port="5672",proto="TCP",real_server="n1",remote_address="10.0.0.2",remote_port="5672",service="amqp",le="5"} 1
lvsdr_check_duration_seconds_bucket{check="tcp",local_address="10.0.0.100",local_port="5672",proto="TCP",real_server="n1",remote_address="10.0.0.2",remote_port="5672",service="amqp",le="10"} 1
lvsdr_check_duration_seconds_bucket{check="tcp",local_address="10.0.0.100",local_port="5672",proto="TCP",real_server="n1",remote_address="10.0.0.2",remote_port="5672",service="amqp",le="+Inf"} 1
lvsdr_check_duration_seconds_sum{check="tcp",local_address="10.0.0.100",local_port="5672",proto="TCP",real_server="n1",remote_address="10.0.0.2",remote_port="5672",service="amqp"} 0.003
lvsdr_check_duration_seconds_count{check="tcp",local_address="10.0.0.100",local_port="5672",proto="TCP",real_server="n1",remote_address="10.0.0.2",remote_port="5672",service="amqp"} 1
lvsdr_check_duration_seconds_bucket{check="tcp",local_address="10.0.0.100",local_port="5672",proto="TCP",real_server="n2",remote_address="10.0.0.3",remote_port="5672",service="amqp",le="0.001"} 0
lvsdr_check_duration_seconds_bucket{check="tcp",local_address="10.0.0.100",local_port="5672",proto="TCP",real_server="n2",remote_address="10.0.0.3",remote_port="5672",service="amqp",le="0.0025"} 0
lvsdr_check_duration_seconds_bucket{check="tcp",local_address="10.0.0.100",local_port="5672",proto="TCP",real_server="n2",remote_address="10.0.0.3",remote_port="5672",service="amqp",le="0.005"} 0
lvsdr_check_duration_seconds_bucket{check="tcp",local_address="10.0.0.100",local_port="5672",proto="TCP",real_server="n2",remote_address="10.0.0.3",remote_port="5672",service="amqp",le="0.01"} 0
lvsdr_check_duration_seconds_bucket{check="tcp",local_address="10.0.0.100",local_port="5672",proto="TCP",real_server="n2",remote_address="10.0.0.3",remote_port="5672",service="amqp",le="0.025"} 0
lvsdr_check_duration_seconds_bucket{check="tcp",local_address="10.0.0.100",local_port="5672",proto="TCP",real_server="n2",remote_address="10.0.0.3",remote_port="5672",service="amqp",le="0.05"} 0
lvsdr_check_duration_seconds_bucket{check="tcp",local_address="10.0.0.100",local_port="5672",proto="TCP",real_server="n2",remote_address="10.0.0.3",remote_port="5672",service="amqp",le="0.1"} 0
lvsdr_check_duration_seconds_bucket{check="tcp",local_address="10.0.0.100",local_port="5672",proto="TCP",real_server="n2",remote_address="10.0.0.3",remote_port="5672",service="amqp",le="0.25"} 0
lvsdr_check_duration_seconds_bucket{check="tcp",local_address="10.0.0.100",local_port="5672",proto="TCP",real_server="n2",remote_address="10.0.0.3",remote_port="5672",service="amqp",le="0.5"} 0
lvsdr_check_duration_seconds_bucket{check="tcp",local_address="10.0.0.100",local_port="5672",proto="TCP",real_server="n2",remote_address="10.0.0.3",remote_port="5672",service="amqp",le="1"} 0
lvsdr_check_duration_seconds_bucket{check="tcp",local_address="10.0.0.100",local_port="5672",proto="TCP",real_server="n2",remote_address="10.0.0.3",remote_port="5672",service="amqp",le="2.5"} 1
lvsdr_check_duration_seconds_bucket{check="tcp",local_address="10.0.0.100",local_port="5672",proto="TCP",real_server="n2",remote_address="10.0.0.3",remote_port="5672",service="amqp",le="5"} 1
lvsdr_check_duration_seconds_bucket{check="tcp",local_address="10.0.0.100",local_port="5672",proto="TCP",real_server="n2",remote_address="10.0.0.3",remote_port="5672",service="amqp",le="10"} 1
lvsdr_check_duration_seconds_bucket{check="tcp",local_address="10.0.0.100",local_port="5672",proto="TCP",real_server="n2",remote_address="10.0.0.3",remote_port="5672",service="amqp",le="+Inf"} 1
lvsdr_check_duration_seconds_sum{check="tcp",local_address="10.0.0.100",local_port="5672",proto="TCP",real_server="n2",remote_address="10.0.0.3",remote_port="5672",service="amqp"} 2
lvsdr_check_duration_seconds_count{check="tcp",local_address="10.0.0.100",local_port="5672",proto="TCP",real_server="n2",remote_address="10.0.0.3",remote_port="5672",service="amqp"} 1
lvsdr_check_duration_seconds_bucket{check="http",local_address="10.0.0.100",local_port="15672",proto="TCP",real_server="n1",remote_address="10.0.0.2",remote_port="15672",service="management",le="0.001"} 0
lvsdr_check_duration_seconds_bucket{check="http",local_address="10.0.0.100",local_port="15672",proto="TCP",real_server="n1",remote_address="10.0.0.2",remote_port="15672",service="management",le="0.0025"} 0
lvsdr_check_duration_seconds_bucket{check="http",local_address="10.0.0.100",local_port="15672",proto="TCP",real_server="n1",remote_address="10.0.0.2",remote_port="15672",service="management",le="0.005"} 0
lvsdr_check_duration_seconds_bucket{check="http",local_address="10.0.0.100",local_port="15672",proto="TCP",real_server="n1",remote_address="10.0.0.2",remote_port="15672",service="management",le="0.01"} 0
lvsdr_check_duration_seconds_bucket{check="http",local_address="10.0.0.100",local_port="15672",proto="TCP",real_server="n1",remote_address="10.0.0.2",remote_port="15672",service="management",le="0.025"} 0
lvsdr_check_duration_seconds_bucket{check="http",local_address="10.0.0.100",local_port="15672",proto="TCP",real_server="n1",remote_address="10.0.0.2",remote_port="15672",service="management",le="0.05"} 1
lvsdr_check_duration_seconds_bucket{check="http",local_address="10.0.0.100",local_port="15672",proto="TCP",real_server="n1",remote_address="10.0.0.2",remote_port="15672",service="management",le="0.1"} 1
lvsdr_check_duration_seconds_bucket{check="http",local_address="10.0.0.100",local_port="15672",proto="TCP",real_server="n1",remote_address="10.0.0.2",remote_port="15672",service="management",le="0.25"} 1
lvsdr_check_duration_seconds_bucket{check="http",local_address="10.0.0.100",local_port="15672",proto="TCP",real_server="n1",remote_address="10.0.0.2",remote_port="15672",service="management",le="0.5"} 1
lvsdr_check_duration_seconds_bucket{check="http",local_address="10.0.0.100",local_port="15672",proto="TCP",real_server="n1",remote_address="10.0.0.2",remote_port="15672",service="management",le="1"} 1
lvsdr_check_duration_seconds_bucket{check="http",local_address="10.0.0.100",local_port="15672",proto="TCP",real_server="n1",remote_address="10.0.0.2",remote_port="15672",service="management",le="2.5"} 1
lvsdr_check_duration_seconds_bucket{check="http",local_address="10.0.0.100",local_port="15672",proto="TCP",real_server="n1",remote_address="10.0.0.2",remote_port="15672",service="management",le="5"} 1
lvsdr_check_duration_seconds_bucket{check="http",local_address="10.0.0.100",local_port="15672",proto="TCP",real_server="n1",remote_address="10.0.0.2",remote_port="15672",service="management",le="10"} 1
lvsdr_check_duration_seconds_bucket{check="http",local_address="10.0.0.100",local_port="15672",proto="TCP",real_server="n1",remote_address="10.0.0.2",remote_port="15672",service="management",le="+Inf"} 1
lvsdr_check_duration_seconds_sum{check="http",local_address="10.0.0.100",local_port="15672",proto="TCP",real_server="n1",remote_address="10.0.0.2",remote_port="15672",service="management"} 0.04
lvsdr_check_duration_seconds_count{check="http",local_address="10.0.0.100",local_port="15672",proto="TCP",real_server="n1",remote_address="10.0.0.2",remote_port="15672",service="management"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "lvsdr_check_duration_seconds"); err != nil {
		t.Error(err)
	}

	// A reload keeps amqp/n1 alone: the series of the others go.
	e.Retain([]healthcheck.Key{healthcheck.Key{Service: "amqp", RealServer: "n1", Check: "tcp"}})
	if n, _ := testutil.GatherAndCount(reg, "lvsdr_check_transitions_total"); n != 2 {
		t.Errorf("%d transition series after the reload, want amqp/n1's 2 (to up, to down)", n)
	}
	if n, _ := testutil.GatherAndCount(reg, "lvsdr_check_duration_seconds"); n != 1 {
		t.Errorf("%d probe histograms after the reload, want amqp/n1/tcp's alone", n)
	}

	// A reload gives n1 another address: its series go at once, and the
	// next probe starts them under the new one.
	moved := lab()
	moved.RealServers[0].Address = netip.MustParseAddr("10.0.0.12")
	catMu.Lock()
	cat = catalogOf(moved)
	catMu.Unlock()
	e.Retain([]healthcheck.Key{healthcheck.Key{Service: "amqp", RealServer: "n1", Check: "tcp"}})
	if n, _ := testutil.GatherAndCount(reg, "lvsdr_check_transitions_total", "lvsdr_check_duration_seconds"); n != 0 {
		t.Errorf("%d series left under n1's old address", n)
	}
	e.Probe(healthcheck.Key{Service: "amqp", RealServer: "n1", Check: "tcp"}, time.Millisecond, nil)
	mfs, err := reg.Gather()
	if err != nil || len(mfs) != 1 || len(mfs[0].GetMetric()) != 1 {
		t.Fatalf("after a probe at the new address: %v (%v), want one histogram", mfs, err)
	}
	for _, l := range mfs[0].GetMetric()[0].GetLabel() {
		if l.GetName() == "remote_address" && l.GetValue() != "10.0.0.12" {
			t.Errorf("n1's probe histogram has remote_address %q, want the new 10.0.0.12", l.GetValue())
		}
	}
}
