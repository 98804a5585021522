package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/lvsdr/lvsdr/healthcheck"
)

var (
	checkUpDesc = prometheus.NewDesc(namespace+"_check_up",
		"Whether the health check of a real server in a service passes: 1 up, 0 down. "+
			"Absent while the check has no result yet (state unknown).",
		[]string{"service", "real_server", "check"}, nil)
	checkSinceDesc = prometheus.NewDesc(namespace+"_check_state_since_seconds",
		"Unix time at which the check entered its current state (up, down, or unknown for a check not run yet).",
		[]string{"service", "real_server", "check"}, nil)
)

// checkStates reports the state of every check at scrape time, straight
// from the check manager, so a check removed by a reload leaves no stale
// series behind.
type checkStates struct {
	snapshot func() map[healthcheck.Key]healthcheck.Status
}

// RegisterCheckStates registers with reg a collector of lvsdr_check_up and
// lvsdr_check_state_since_seconds; snapshot is the check manager's
// Snapshot, keyed by check.
func RegisterCheckStates(reg prometheus.Registerer, snapshot func() map[healthcheck.Key]healthcheck.Status) {
	reg.MustRegister(checkStates{snapshot: snapshot})
}

func (checkStates) Describe(ch chan<- *prometheus.Desc) {
	ch <- checkUpDesc
	ch <- checkSinceDesc
}

func (c checkStates) Collect(ch chan<- prometheus.Metric) {
	for key, st := range c.snapshot() {
		if up, known := upValue(st.State); known {
			ch <- prometheus.MustNewConstMetric(checkUpDesc, prometheus.GaugeValue, up, key.Service, key.RealServer, key.Check)
		}
		since := float64(st.Since.UnixNano()) / 1e9
		ch <- prometheus.MustNewConstMetric(checkSinceDesc, prometheus.GaugeValue, since, key.Service, key.RealServer, key.Check)
	}
}

func upValue(s healthcheck.State) (value float64, known bool) {
	switch s {
	case healthcheck.Up:
		return 1, true
	case healthcheck.Down:
		return 0, true
	}
	return 0, false
}
