package metrics

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Quorum tells which services have lost their quorum.
type Quorum struct {
	lost *prometheus.GaugeVec

	mu       sync.Mutex
	services map[string]bool
}

// NewQuorum registers lvsdr_quorum_lost with reg.
func NewQuorum(reg prometheus.Registerer) *Quorum {
	q := &Quorum{
		lost: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace,
			Name:      "quorum_lost",
			Help:      "Whether fewer real servers of a service are healthy and out of maintenance than its quorum: 1 lost (the sorry server, if any, takes new clients), 0 not. Absent until every check of the service has a result.",
		}, []string{"service"}),
		services: map[string]bool{},
	}
	reg.MustRegister(q.lost)
	return q
}

// Set records whether service has lost its quorum.
func (q *Quorum) Set(service string, lost bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.services[service] = true
	q.lost.WithLabelValues(service).Set(boolValue(lost))
}

// Retain drops the series of the services not among names, as after a
// reload that removed some.
func (q *Quorum) Retain(names []string) {
	keep := make(map[string]bool, len(names))
	for _, n := range names {
		keep[n] = true
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	for s := range q.services {
		if !keep[s] {
			q.lost.DeleteLabelValues(s)
			delete(q.services, s)
		}
	}
}
