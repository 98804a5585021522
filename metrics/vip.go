package metrics

import "github.com/prometheus/client_golang/prometheus"

// NewVIPHeld registers lvsdr_vip_held with reg.
func NewVIPHeld(reg prometheus.Registerer) prometheus.Gauge {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: namespace,
		Name:      "vip_held",
		Help:      "Whether this host holds the VIP it should hold: 1 yes, 0 no (removed by someone else; the next resync binds it again).",
	})
	reg.MustRegister(g)
	return g
}
