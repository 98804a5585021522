package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// RegisterCheckLag registers with reg lvsdr_check_lag_seconds, read from
// lag at scrape time.
func RegisterCheckLag(reg prometheus.Registerer, lag func() time.Duration) {
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: namespace,
		Name:      "check_lag_seconds",
		Help:      "How late the checker started its probes over the last 10-20 s. A checker short of CPU stretches every interval evenly rather than failing servers; a lag near the check interval says it cannot keep up.",
	}, func() float64 { return lag().Seconds() }))
}
