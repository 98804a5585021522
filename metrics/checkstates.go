package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/lvsdr/lvsdr/healthcheck"
)

// checkLabels label every series of one check: its names in the topology
// and the addresses of the real server it checks in its service.
var checkLabels = append([]string{"service", "real_server", "check"}, realServerAddressLabels...)

var (
	checkUpDesc = prometheus.NewDesc(namespace+"_check_up",
		"Whether the health check of a real server in a service passes: 1 up, 0 down. "+
			"Absent while the check has no result yet (state unknown).",
		checkLabels, nil)
	checkSinceDesc = prometheus.NewDesc(namespace+"_check_state_since_timestamp_seconds",
		"Unix time at which the check entered its current state (up, down, or unknown for a check not run yet).",
		checkLabels, nil)
)

// checkStates reports the state of every check at scrape time, straight
// from the check manager, so a check removed by a reload leaves no stale
// series behind.
type checkStates struct {
	snapshot func() map[healthcheck.Key]healthcheck.Status
	catalog  func() *Catalog
}

// RegisterCheckStates registers with reg a collector of lvsdr_check_up and
// lvsdr_check_state_since_timestamp_seconds; snapshot is the check
// manager's Snapshot, keyed by check, and catalog the topology in force,
// which gives the addresses.
func RegisterCheckStates(reg prometheus.Registerer, snapshot func() map[healthcheck.Key]healthcheck.Status, catalog func() *Catalog) {
	reg.MustRegister(checkStates{snapshot: snapshot, catalog: catalog})
}

func (checkStates) Describe(ch chan<- *prometheus.Desc) {
	ch <- checkUpDesc
	ch <- checkSinceDesc
}

func (c checkStates) Collect(ch chan<- prometheus.Metric) {
	cat := c.catalog()
	for key, st := range c.snapshot() {
		labels := append([]string{key.Service, key.RealServer, key.Check}, cat.realServerValues(key.Service, key.RealServer)...)
		if up, known := upValue(st.State); known {
			ch <- prometheus.MustNewConstMetric(checkUpDesc, prometheus.GaugeValue, up, labels...)
		}
		since := float64(st.Since.UnixNano()) / 1e9
		ch <- prometheus.MustNewConstMetric(checkSinceDesc, prometheus.GaugeValue, since, labels...)
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
