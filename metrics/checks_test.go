package metrics

import (
	"errors"
	"strings"
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
	RegisterCheckStates(reg, func() map[healthcheck.Key]healthcheck.Status { return snapshot })
	want := `
# HELP lvsdr_check_up Whether the health check of a real server in a service passes: 1 up, 0 down. Absent while the check has no result yet (state unknown).
# TYPE lvsdr_check_up gauge
lvsdr_check_up{check="tcp",real_server="n1",service="amqp"} 1
lvsdr_check_up{check="tcp",real_server="n2",service="amqp"} 0
# HELP lvsdr_check_state_since_seconds Unix time at which the check entered its current state (up, down, or unknown for a check not run yet).
# TYPE lvsdr_check_state_since_seconds gauge
lvsdr_check_state_since_seconds{check="tcp",real_server="n1",service="amqp"} 1.7672256005e+09
lvsdr_check_state_since_seconds{check="tcp",real_server="n2",service="amqp"} 1.7672256015e+09
lvsdr_check_state_since_seconds{check="tcp",real_server="n1",service="management"} 1.7672256025e+09
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
	e := NewCheckEvents(reg)
	e.Transition(healthcheck.Key{Service: "amqp", RealServer: "n1", Check: "tcp"}, healthcheck.Up)
	e.Transition(healthcheck.Key{Service: "amqp", RealServer: "n1", Check: "tcp"}, healthcheck.Down)
	e.Transition(healthcheck.Key{Service: "amqp", RealServer: "n1", Check: "tcp"}, healthcheck.Up)
	e.Transition(healthcheck.Key{Service: "amqp", RealServer: "n2", Check: "tcp"}, healthcheck.Up)
	e.Probe(healthcheck.Key{Service: "amqp", RealServer: "n1", Check: "tcp"}, 3*time.Millisecond, nil)
	e.Probe(healthcheck.Key{Service: "amqp", RealServer: "n2", Check: "tcp"}, 2*time.Second, errors.New("i/o timeout"))
	e.Probe(healthcheck.Key{Service: "management", RealServer: "n1", Check: "http"}, 40*time.Millisecond, nil)

	if got := testutil.ToFloat64(e.transitions.WithLabelValues("amqp", "n1", "tcp", "up")); got != 2 {
		t.Errorf("amqp/n1 transitions to up = %v, want 2", got)
	}
	if got := testutil.ToFloat64(e.transitions.WithLabelValues("amqp", "n1", "tcp", "down")); got != 1 {
		t.Errorf("amqp/n1 transitions to down = %v, want 1", got)
	}
	want := `
# HELP lvsdr_check_duration_seconds Time taken by one probe of a health check (each retry is a probe), passing or failing; a failing probe that hits connect_timeout lasts that long.
# TYPE lvsdr_check_duration_seconds histogram
lvsdr_check_duration_seconds_bucket{check="tcp",service="amqp",le="0.001"} 0
lvsdr_check_duration_seconds_bucket{check="tcp",service="amqp",le="0.0025"} 0
lvsdr_check_duration_seconds_bucket{check="tcp",service="amqp",le="0.005"} 1
lvsdr_check_duration_seconds_bucket{check="tcp",service="amqp",le="0.01"} 1
lvsdr_check_duration_seconds_bucket{check="tcp",service="amqp",le="0.025"} 1
lvsdr_check_duration_seconds_bucket{check="tcp",service="amqp",le="0.05"} 1
lvsdr_check_duration_seconds_bucket{check="tcp",service="amqp",le="0.1"} 1
lvsdr_check_duration_seconds_bucket{check="tcp",service="amqp",le="0.25"} 1
lvsdr_check_duration_seconds_bucket{check="tcp",service="amqp",le="0.5"} 1
lvsdr_check_duration_seconds_bucket{check="tcp",service="amqp",le="1"} 1
lvsdr_check_duration_seconds_bucket{check="tcp",service="amqp",le="2.5"} 2
lvsdr_check_duration_seconds_bucket{check="tcp",service="amqp",le="5"} 2
lvsdr_check_duration_seconds_bucket{check="tcp",service="amqp",le="10"} 2
lvsdr_check_duration_seconds_bucket{check="tcp",service="amqp",le="+Inf"} 2
lvsdr_check_duration_seconds_sum{check="tcp",service="amqp"} 2.003
lvsdr_check_duration_seconds_count{check="tcp",service="amqp"} 2
lvsdr_check_duration_seconds_bucket{check="http",service="management",le="0.001"} 0
lvsdr_check_duration_seconds_bucket{check="http",service="management",le="0.0025"} 0
lvsdr_check_duration_seconds_bucket{check="http",service="management",le="0.005"} 0
lvsdr_check_duration_seconds_bucket{check="http",service="management",le="0.01"} 0
lvsdr_check_duration_seconds_bucket{check="http",service="management",le="0.025"} 0
lvsdr_check_duration_seconds_bucket{check="http",service="management",le="0.05"} 1
lvsdr_check_duration_seconds_bucket{check="http",service="management",le="0.1"} 1
lvsdr_check_duration_seconds_bucket{check="http",service="management",le="0.25"} 1
lvsdr_check_duration_seconds_bucket{check="http",service="management",le="0.5"} 1
lvsdr_check_duration_seconds_bucket{check="http",service="management",le="1"} 1
lvsdr_check_duration_seconds_bucket{check="http",service="management",le="2.5"} 1
lvsdr_check_duration_seconds_bucket{check="http",service="management",le="5"} 1
lvsdr_check_duration_seconds_bucket{check="http",service="management",le="10"} 1
lvsdr_check_duration_seconds_bucket{check="http",service="management",le="+Inf"} 1
lvsdr_check_duration_seconds_sum{check="http",service="management"} 0.04
lvsdr_check_duration_seconds_count{check="http",service="management"} 1
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
		t.Errorf("%d probe histograms after the reload, want amqp/tcp's alone", n)
	}
}
