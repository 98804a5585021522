package metrics

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

var (
	maintenanceDesc = prometheus.NewDesc(namespace+"_real_server_maintenance",
		"Whether a real server is in maintenance (director drain): 1 yes, at weight 0 in every service, 0 no. It stays so across restarts until director undrain.",
		[]string{"real_server", labelRemoteAddress}, nil)
	lastReloadTimeDesc = prometheus.NewDesc(namespace+"_last_reload_timestamp_seconds",
		"Unix time at which the last reload (SIGHUP, director reload, systemctl reload) began. Absent before the first.", nil, nil)
	lastReloadDurationDesc = prometheus.NewDesc(namespace+"_last_reload_duration_seconds",
		"How long the last reload took, from reading the file to the kernel programmed. Absent before the first.", nil, nil)
	lastReloadSuccessDesc = prometheus.NewDesc(namespace+"_last_reload_success",
		"Whether the last reload succeeded: 1 the new file is in force and the kernel agrees, 0 it was refused (the previous file stays in force) or the kernel refused some operations. Absent before the first.", nil, nil)
)

// RegisterMaintenance registers with reg lvsdr_real_server_maintenance, one
// series per real server of catalog(), read from drained (the real servers
// in maintenance, by name, and false while that is not known yet) at
// scrape time.
func RegisterMaintenance(reg prometheus.Registerer, drained func() (map[string]bool, bool), catalog func() *Catalog) {
	reg.MustRegister(maintenance{drained: drained, catalog: catalog})
}

type maintenance struct {
	drained func() (map[string]bool, bool)
	catalog func() *Catalog
}

func (maintenance) Describe(ch chan<- *prometheus.Desc) { ch <- maintenanceDesc }

func (m maintenance) Collect(ch chan<- prometheus.Metric) {
	cat := m.catalog()
	drained, known := m.drained()
	if cat == nil || !known {
		return
	}
	for addr, name := range cat.Nodes {
		ch <- prometheus.MustNewConstMetric(maintenanceDesc, prometheus.GaugeValue, boolValue(drained[name]), name, addr.String())
	}
}

// Reloads records how reloads went.
type Reloads struct {
	total *prometheus.CounterVec

	mu   sync.Mutex
	last *reload
}

type reload struct {
	at   time.Time
	ok   bool
	took time.Duration
}

// NewReloads registers lvsdr_reloads_total and the lvsdr_last_reload_*
// gauges with reg.
func NewReloads(reg prometheus.Registerer) *Reloads {
	r := &Reloads{total: prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace,
		Name:      "reloads_total",
		Help:      "Reloads of the topology file, by result: success, or failure (the file was refused and the previous one stays in force, or the kernel refused some operations and the next resync retries).",
	}, []string{"result"})}
	// Both series from the start, so that increase() and alerts see 0.
	r.total.WithLabelValues("success")
	r.total.WithLabelValues("failure")
	reg.MustRegister(r.total, r)
	return r
}

// Observe records a reload that began at at, took took and succeeded if ok.
func (r *Reloads) Observe(at time.Time, ok bool, took time.Duration) {
	result := "failure"
	if ok {
		result = "success"
	}
	r.total.WithLabelValues(result).Inc()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.last = &reload{at: at, ok: ok, took: took}
}

// Describe sends the descriptors of the lvsdr_last_reload_* gauges.
func (r *Reloads) Describe(ch chan<- *prometheus.Desc) {
	ch <- lastReloadTimeDesc
	ch <- lastReloadDurationDesc
	ch <- lastReloadSuccessDesc
}

// Collect sends the lvsdr_last_reload_* gauges after the first reload.
func (r *Reloads) Collect(ch chan<- prometheus.Metric) {
	r.mu.Lock()
	last := r.last
	r.mu.Unlock()
	if last == nil {
		return
	}
	ch <- prometheus.MustNewConstMetric(lastReloadTimeDesc, prometheus.GaugeValue, float64(last.at.UnixNano())/1e9)
	ch <- prometheus.MustNewConstMetric(lastReloadDurationDesc, prometheus.GaugeValue, last.took.Seconds())
	ch <- prometheus.MustNewConstMetric(lastReloadSuccessDesc, prometheus.GaugeValue, boolValue(last.ok))
}

// NewNotifyFailures registers lvsdr_notify_hook_failures_total with reg.
func NewNotifyFailures(reg prometheus.Registerer) prometheus.Counter {
	c := prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: namespace,
		Name:      "notify_hook_failures_total",
		Help:      "Runs of the notify hook (director.notify) that failed: it exited non-zero, could not be started, or ran past its timeout and was killed. The director's log has each one's error.",
	})
	reg.MustRegister(c)
	return c
}
