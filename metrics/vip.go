package metrics

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

var vipHeldDesc = prometheus.NewDesc(namespace+"_vip_held",
	"Whether the VIP (local_address) is on this host: 1 yes, 0 no. A standalone director and a VRRP master should hold it (if one does not, someone removed it and the next resync binds it again, and /healthz says so); a VRRP backup should not.",
	[]string{labelLocalAddress}, nil)

// VIPHeld tells whether this host holds the VIP.
type VIPHeld struct {
	held    atomic.Bool
	catalog func() *Catalog
}

// NewVIPHeld registers lvsdr_vip_held with reg; catalog is the topology in
// force, which names the VIP.
func NewVIPHeld(reg prometheus.Registerer, catalog func() *Catalog) *VIPHeld {
	v := &VIPHeld{catalog: catalog}
	reg.MustRegister(v)
	return v
}

// Set records whether the VIP is on this host.
func (v *VIPHeld) Set(held bool) { v.held.Store(held) }

// Describe sends the descriptor of lvsdr_vip_held.
func (v *VIPHeld) Describe(ch chan<- *prometheus.Desc) { ch <- vipHeldDesc }

// Collect sends lvsdr_vip_held, once there is a topology.
func (v *VIPHeld) Collect(ch chan<- prometheus.Metric) {
	cat := v.catalog()
	if cat == nil {
		return
	}
	ch <- prometheus.MustNewConstMetric(vipHeldDesc, prometheus.GaugeValue, boolValue(v.held.Load()), cat.VIP.String())
}
