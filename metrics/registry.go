package metrics

import (
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
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

// buildInfo is the constant 1 labelled with the version of the running
// binary, so that a fleet's versions show in one query.
func buildInfo() prometheus.Collector {
	version, goVersion := "unknown", "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		version, goVersion = bi.Main.Version, bi.GoVersion
		if version == "" {
			version = "unknown"
		}
	}
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace:   namespace,
		Name:        "build_info",
		Help:        "Always 1; its labels say which lvsdr build runs: the module version ((devel) for a build from a checkout) and the Go version.",
		ConstLabels: prometheus.Labels{"version": version, "go_version": goVersion},
	}, func() float64 { return 1 })
}
