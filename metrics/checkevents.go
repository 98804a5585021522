package metrics

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lvsdr/lvsdr/healthcheck"
)

// probeBuckets cover a probe on a LAN (about a millisecond) up to the
// longest connect timeout worth having (10 s).
var probeBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// CheckEvents counts check state changes and times probes. Both come from
// the check manager's goroutines as they happen.
type CheckEvents struct {
	transitions *prometheus.CounterVec
	probes      *prometheus.HistogramVec

	// mu guards the label sets that have series, so that Retain can drop
	// those of checks a reload removed.
	mu        sync.Mutex
	keys      map[healthcheck.Key]bool
	probePair map[[2]string]bool
}

// NewCheckEvents registers lvsdr_check_transitions_total and
// lvsdr_check_duration_seconds with reg.
func NewCheckEvents(reg prometheus.Registerer) *CheckEvents {
	e := &CheckEvents{
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace,
			Name:      "check_transitions_total",
			Help:      "State changes of the health check of a real server in a service, by the state entered (up or down). A real server flapping shows as a fast-growing count.",
		}, []string{"service", "real_server", "check", "to"}),
		probes: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace,
			Name:      "check_duration_seconds",
			Help:      "Time taken by one probe of a health check (each retry is a probe), passing or failing; a failing probe that hits connect_timeout lasts that long.",
			Buckets:   probeBuckets,
		}, []string{"service", "check"}),
		keys:      map[healthcheck.Key]bool{},
		probePair: map[[2]string]bool{},
	}
	reg.MustRegister(e.transitions, e.probes)
	return e
}

// Transition counts a check entering state to.
func (e *CheckEvents) Transition(key healthcheck.Key, to healthcheck.State) {
	// Under mu, so that a concurrent Retain cannot miss the new series.
	e.mu.Lock()
	defer e.mu.Unlock()
	e.keys[key] = true
	e.transitions.WithLabelValues(key.Service, key.RealServer, key.Check, to.String()).Inc()
}

// Probe records the latency of one probe; it is a healthcheck.ProbeObserver.
func (e *CheckEvents) Probe(key healthcheck.Key, latency time.Duration, _ error) {
	pair := [2]string{key.Service, key.Check}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.probePair[pair] = true
	e.probes.WithLabelValues(key.Service, key.Check).Observe(latency.Seconds())
}

// Retain drops the series of every check not among keys, as after a reload
// that removed services, real servers or checks.
func (e *CheckEvents) Retain(keys []healthcheck.Key) {
	keep := make(map[healthcheck.Key]bool, len(keys))
	keepPair := make(map[[2]string]bool, len(keys))
	for _, k := range keys {
		keep[k] = true
		keepPair[[2]string{k.Service, k.Check}] = true
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for k := range e.keys {
		if !keep[k] {
			e.transitions.DeletePartialMatch(prometheus.Labels{"service": k.Service, "real_server": k.RealServer, "check": k.Check})
			delete(e.keys, k)
		}
	}
	for pair := range e.probePair {
		if !keepPair[pair] {
			e.probes.DeleteLabelValues(pair[0], pair[1])
			delete(e.probePair, pair)
		}
	}
}
