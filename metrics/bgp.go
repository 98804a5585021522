package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/lvsdr/lvsdr/bgp"
)

var (
	bgpAnnouncedDesc = prometheus.NewDesc(namespace+"_bgp_announced",
		"Whether this director announces the VIP over BGP: 1 yes, 0 withdrawn (the reason label says why). Absent without director.bgp.",
		[]string{"prefix", "reason"}, nil)
	bgpSessionDesc = prometheus.NewDesc(namespace+"_bgp_session_established",
		"Whether the BGP session with a router is established: 1 yes, 0 no (the state label says where it stands).",
		[]string{"peer", "state"}, nil)
)

// bgpCollector reads the BGP controller's snapshot at scrape time.
type bgpCollector struct {
	snapshot func() (bgp.Snapshot, bool)
}

// RegisterBGP registers with reg the lvsdr_bgp_* metrics, read from
// snapshot, which reports false while the director runs without BGP.
func RegisterBGP(reg prometheus.Registerer, snapshot func() (bgp.Snapshot, bool)) {
	reg.MustRegister(bgpCollector{snapshot: snapshot})
}

func (bgpCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- bgpAnnouncedDesc
	ch <- bgpSessionDesc
}

func (c bgpCollector) Collect(ch chan<- prometheus.Metric) {
	s, ok := c.snapshot()
	if !ok {
		return
	}
	ch <- prometheus.MustNewConstMetric(bgpAnnouncedDesc, prometheus.GaugeValue, boolValue(s.Announced), s.Prefix.String(), string(s.Reason))
	for _, p := range s.Peers {
		ch <- prometheus.MustNewConstMetric(bgpSessionDesc, prometheus.GaugeValue, boolValue(p.State == bgp.StateEstablished), p.Address.String(), string(p.State))
	}
}
