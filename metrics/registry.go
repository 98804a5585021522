package metrics

import (
	"runtime"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/lvsdr/lvsdr/internal/version"
)

// NewRegistry returns a registry of the director's own, holding the Go
// runtime and process metrics (memory, file descriptors, goroutines: a leak
// shows there first) and lvsdr_build_info.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		buildInfo(),
	)
	return reg
}

// buildInfo is the constant 1 labelled with the build of the running
// binary, as --version prints it, so that a fleet's versions show in one
// query.
func buildInfo() prometheus.Collector {
	commit := version.Commit
	if commit == "" {
		commit = "unknown"
	}
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace:   namespace,
		Name:        "build_info",
		Help:        "Always 1; its labels say which lvsdr build runs: version (git describe, dev for an unstamped build), commit and the Go version.",
		ConstLabels: prometheus.Labels{"version": version.Version, "commit": commit, "goversion": runtime.Version()},
	}, func() float64 { return 1 })
}
