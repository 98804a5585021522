package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/lvsdr/lvsdr/vrrp"
)

var (
	vrrpStateDesc = prometheus.NewDesc(namespace+"_vrrp_state",
		"The director's VRRP role: 1 for the state it is in (init, backup, master, fault), 0 for the others. Absent without director.ha.",
		[]string{"state"}, nil)
	vrrpPriorityDesc = prometheus.NewDesc(namespace+"_vrrp_priority",
		"The director's effective VRRP priority: the configured one, 1 while released (director ha release), 0 in fault.", nil, nil)
	vrrpTransitionsDesc = prometheus.NewDesc(namespace+"_vrrp_transitions_total",
		"VRRP role changes since the director started, the first one included.", nil, nil)
	vrrpSentDesc = prometheus.NewDesc(namespace+"_vrrp_adverts_sent_total",
		"VRRP adverts sent (one per peer in unicast).", nil, nil)
	vrrpSendErrorsDesc = prometheus.NewDesc(namespace+"_vrrp_advert_send_errors_total",
		"VRRP adverts the kernel refused to send.", nil, nil)
	vrrpReceivedDesc = prometheus.NewDesc(namespace+"_vrrp_adverts_received_total",
		"VRRP adverts received and accepted.", nil, nil)
	vrrpRejectedDesc = prometheus.NewDesc(namespace+"_vrrp_adverts_rejected_total",
		"VRRP adverts received and discarded, by reason. A steady count of address_mismatch or interval_mismatch means two routers of one VRID disagree, and both may be master.",
		[]string{"reason"}, nil)
)

// vrrpCollector reads the VRRP router's status at scrape time.
type vrrpCollector struct {
	status func() (vrrp.Status, bool)
}

// RegisterVRRP registers with reg the lvsdr_vrrp_* metrics, read from
// status, which reports false while the director runs without VRRP.
func RegisterVRRP(reg prometheus.Registerer, status func() (vrrp.Status, bool)) {
	reg.MustRegister(vrrpCollector{status: status})
}

func (vrrpCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{vrrpStateDesc, vrrpPriorityDesc, vrrpTransitionsDesc, vrrpSentDesc, vrrpSendErrorsDesc, vrrpReceivedDesc, vrrpRejectedDesc} {
		ch <- d
	}
}

func (c vrrpCollector) Collect(ch chan<- prometheus.Metric) {
	st, ok := c.status()
	if !ok {
		return
	}
	for _, s := range []vrrp.State{vrrp.StateInit, vrrp.StateBackup, vrrp.StateMaster, vrrp.StateFault} {
		ch <- prometheus.MustNewConstMetric(vrrpStateDesc, prometheus.GaugeValue, boolValue(st.State == s), s.String())
	}
	ch <- prometheus.MustNewConstMetric(vrrpPriorityDesc, prometheus.GaugeValue, float64(st.Priority))
	ch <- prometheus.MustNewConstMetric(vrrpTransitionsDesc, prometheus.CounterValue, float64(st.Transitions))
	ch <- prometheus.MustNewConstMetric(vrrpSentDesc, prometheus.CounterValue, float64(st.Sent))
	ch <- prometheus.MustNewConstMetric(vrrpSendErrorsDesc, prometheus.CounterValue, float64(st.SendErrors))
	ch <- prometheus.MustNewConstMetric(vrrpReceivedDesc, prometheus.CounterValue, float64(st.Received))
	for _, reason := range vrrp.RejectReasons {
		ch <- prometheus.MustNewConstMetric(vrrpRejectedDesc, prometheus.CounterValue, float64(st.Rejected[reason]), reason)
	}
}
