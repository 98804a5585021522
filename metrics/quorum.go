package metrics

import (
	"slices"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Quorum tells which services have lost their quorum.
type Quorum struct {
	lost    *prometheus.GaugeVec
	catalog func() *Catalog

	// mu guards services: the address label values of each service's
	// series, so that a reload's changes drop the old ones.
	mu       sync.Mutex
	services map[string][]string
}

// NewQuorum registers lvsdr_quorum_lost with reg; catalog is the topology
// in force, which gives the addresses.
func NewQuorum(reg prometheus.Registerer, catalog func() *Catalog) *Quorum {
	q := &Quorum{
		lost: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace,
			Name:      "quorum_lost",
			Help:      "Whether fewer real servers of a service are healthy and out of maintenance than its quorum: 1 lost (the sorry server, if any, takes new clients), 0 not. Absent until every check of the service has a result.",
		}, append([]string{"service"}, serviceAddressLabels...)),
		catalog:  catalog,
		services: map[string][]string{},
	}
	reg.MustRegister(q.lost)
	return q
}

// Set records whether service has lost its quorum.
func (q *Quorum) Set(service string, lost bool) {
	addrs := q.catalog().serviceValues(service)
	q.mu.Lock()
	defer q.mu.Unlock()
	if was, ok := q.services[service]; ok && !slices.Equal(was, addrs) {
		q.lost.DeleteLabelValues(append([]string{service}, was...)...)
	}
	q.services[service] = addrs
	q.lost.WithLabelValues(append([]string{service}, addrs...)...).Set(boolValue(lost))
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
	for s, addrs := range q.services {
		if !keep[s] {
			q.lost.DeleteLabelValues(append([]string{s}, addrs...)...)
			delete(q.services, s)
		}
	}
}
