package metrics

import (
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lvsdr/lvsdr/healthcheck"
)

// probeBuckets cover a probe on a LAN (about a millisecond) up to the
// longest connect timeout worth having (10 s).
var probeBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// CheckEvents counts check state changes and times probes, per check of
// each real server. Both come from the check manager's goroutines as they
// happen.
type CheckEvents struct {
	transitions *prometheus.CounterVec
	probes      *prometheus.HistogramVec
	catalog     func() *Catalog

	// mu guards series: the address label values each check's series
	// were made with, so that Retain can drop those of checks a reload
	// removed or of real servers whose address it changed.
	mu     sync.Mutex
	series map[healthcheck.Key][]string
	// observers are the histograms of the checks, with the catalog they
	// were found under: every probe records its latency, and looking the
	// series up by its labels each time cost more than the probe's own
	// work in the checker.
	observers map[healthcheck.Key]probeObserver
}

type probeObserver struct {
	catalog  *Catalog
	observer prometheus.Observer
}

// NewCheckEvents registers lvsdr_check_transitions_total and
// lvsdr_check_duration_seconds with reg; catalog is the topology in force,
// which gives the addresses.
func NewCheckEvents(reg prometheus.Registerer, catalog func() *Catalog) *CheckEvents {
	e := &CheckEvents{
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace,
			Name:      "check_transitions_total",
			Help:      "State changes of the health check of a real server in a service, by the state entered (up or down). A real server flapping shows as a fast-growing count.",
		}, append(slices.Clone(checkLabels), "to")),
		probes: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace,
			Name:      "check_duration_seconds",
			Help:      "Time taken by one probe of the health check of a real server in a service (each retry is a probe), passing or failing; a failing probe that hits connect_timeout lasts that long.",
			Buckets:   probeBuckets,
		}, checkLabels),
		catalog:   catalog,
		series:    map[healthcheck.Key][]string{},
		observers: map[healthcheck.Key]probeObserver{},
	}
	reg.MustRegister(e.transitions, e.probes)
	return e
}

// Transition counts a check entering state to.
func (e *CheckEvents) Transition(key healthcheck.Key, to healthcheck.State) {
	// Under mu, so that a concurrent Retain cannot miss the new series.
	e.mu.Lock()
	defer e.mu.Unlock()
	e.transitions.WithLabelValues(append(e.labels(key), to.String())...).Inc()
}

// Probe records the latency of one probe; it is a healthcheck.ProbeObserver.
func (e *CheckEvents) Probe(key healthcheck.Key, latency time.Duration, _ error) {
	cat := e.catalog()
	e.mu.Lock()
	defer e.mu.Unlock()
	// The addresses of a check change only with the catalog (a reload).
	o, ok := e.observers[key]
	if !ok || o.catalog != cat {
		o = probeObserver{catalog: cat, observer: e.probes.WithLabelValues(e.labels(key)...)}
		e.observers[key] = o
	}
	o.observer.Observe(latency.Seconds())
}

// labels returns the label values of key's series now, first dropping the
// series it had under other addresses. Call it under mu.
func (e *CheckEvents) labels(key healthcheck.Key) []string {
	addrs := e.catalog().realServerValues(key.Service, key.RealServer)
	if was, ok := e.series[key]; ok && !slices.Equal(was, addrs) {
		e.drop(key, was)
	}
	e.series[key] = addrs
	return append([]string{key.Service, key.RealServer, key.Check}, addrs...)
}

// drop deletes the series of key made with the address values addrs.
func (e *CheckEvents) drop(key healthcheck.Key, addrs []string) {
	labels := prometheus.Labels{"service": key.Service, "real_server": key.RealServer, "check": key.Check}
	for i, name := range realServerAddressLabels {
		labels[name] = addrs[i]
	}
	e.transitions.DeletePartialMatch(labels)
	e.probes.Delete(labels)
	delete(e.series, key)
	delete(e.observers, key)
}

// Retain drops the series of every check not among keys, as after a reload
// that removed services, real servers or checks, and those made under an
// address the catalog in force no longer gives.
func (e *CheckEvents) Retain(keys []healthcheck.Key) {
	keep := make(map[healthcheck.Key]bool, len(keys))
	for _, k := range keys {
		keep[k] = true
	}
	cat := e.catalog()
	e.mu.Lock()
	defer e.mu.Unlock()
	for k, addrs := range e.series {
		if !keep[k] || !slices.Equal(addrs, cat.realServerValues(k.Service, k.RealServer)) {
			e.drop(k, addrs)
		}
	}
}
