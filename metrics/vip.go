package metrics

import "github.com/prometheus/client_golang/prometheus"

// NewVIPHeld registers lvsdr_vip_held with reg.
func NewVIPHeld(reg prometheus.Registerer) prometheus.Gauge {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: namespace,
		Name:      "vip_held",
		Help:      "Whether the VIP is on this host's director.interface: 1 yes, 0 no. A standalone director and a VRRP master should hold it (if one does not, someone removed it and the next resync binds it again, and /healthz says so); a VRRP backup should not.",
	})
	reg.MustRegister(g)
	return g
}
