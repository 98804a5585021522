package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lvsdr/lvsdr/ipvsctl"
)

// Reasons are why the director reconciles; each has its series from the
// start, so that rate() and alerts see 0 rather than nothing.
var Reasons = []string{"start", "check", "resync", "reload", "maintenance"}

// opNames name the kernel operations as the metrics label them.
var opNames = map[ipvsctl.OpKind]string{
	ipvsctl.AddService:        "add_service",
	ipvsctl.UpdateService:     "update_service",
	ipvsctl.DeleteService:     "delete_service",
	ipvsctl.AddDestination:    "add_destination",
	ipvsctl.UpdateDestination: "update_destination",
	ipvsctl.DeleteDestination: "delete_destination",
}

// reconcileBuckets span a diff against memory that needs no operation (well
// under a millisecond) to a slow netlink call (the director gives the kernel
// a few seconds).
var reconcileBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// Reconciles records what each reconcile did to the kernel.
type Reconciles struct {
	duration *prometheus.HistogramVec
	ops      *prometheus.CounterVec
	errors   *prometheus.CounterVec
	drift    prometheus.Gauge
}

// NewReconciles registers the reconcile metrics with reg.
func NewReconciles(reg prometheus.Registerer) *Reconciles {
	r := &Reconciles{
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace,
			Name:      "reconcile_duration_seconds",
			Help:      "Time to bring the kernel's IPVS table to the desired one (read if needed, diff, apply), by reason: start, check (a check changed state), resync (the periodic repair of drift), reload, maintenance (drain or undrain).",
			Buckets:   reconcileBuckets,
		}, []string{"reason"}),
		ops: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace,
			Name:      "ipvs_operations_total",
			Help:      "IPVS operations the director ran, by kind (add_service, update_service, delete_service, add_destination, update_destination, delete_destination); the failed ones are counted here too and show in lvsdr_reconcile_errors_total.",
		}, []string{"op"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace,
			Name:      "reconcile_errors_total",
			Help:      "Reconciles that failed, by reason: the kernel refused an operation or could not be read, or the state file could not be written. The next resync retries.",
		}, []string{"reason"}),
		drift: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace,
			Name:      "drift_operations",
			Help:      "IPVS operations the last resync needed to bring the kernel back to the desired table: changes made by hand or by another program (and retries of failed operations). Draining real servers that the resync deletes on schedule are not counted. 0 when the kernel had not drifted.",
		}),
	}
	reg.MustRegister(r.duration, r.ops, r.errors, r.drift)
	for _, reason := range Reasons {
		r.duration.WithLabelValues(reason)
		r.errors.WithLabelValues(reason)
	}
	for _, name := range opNames {
		r.ops.WithLabelValues(name)
	}
	return r
}

// Observe records one reconcile: why it ran, how long its kernel step took,
// the operations it ran and how it ended.
func (r *Reconciles) Observe(reason string, took time.Duration, ops []ipvsctl.Op, err error) {
	r.duration.WithLabelValues(reason).Observe(took.Seconds())
	for _, op := range ops {
		r.ops.WithLabelValues(opName(op.Kind)).Inc()
	}
	if err != nil {
		r.errors.WithLabelValues(reason).Inc()
	}
}

// Failed counts a reconcile that failed after its kernel step, as when the
// state file could not be written.
func (r *Reconciles) Failed(reason string) {
	r.errors.WithLabelValues(reason).Inc()
}

// Drift records how many operations the last resync needed beyond those it
// was scheduled to run.
func (r *Reconciles) Drift(ops int) {
	r.drift.Set(float64(ops))
}

func opName(k ipvsctl.OpKind) string {
	if name, ok := opNames[k]; ok {
		return name
	}
	return "unknown"
}
