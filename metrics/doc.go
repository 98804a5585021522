// Package metrics exposes a running director to Prometheus: the state of
// every health check and the latency of its probes, the kernel's IPVS
// counters read at scrape time, what each reconcile did and how long it
// took, and /healthz for a liveness probe.
//
// Every metric is named lvsdr_* and labelled, where it applies, with the
// names an operator knows from the topology file: service, real_server and
// check. The metrics live in a registry of the director's own, never in the
// global default one, so that a library's metrics cannot leak in and tests
// can build as many directors as they like.
//
// A check that has no result yet (state unknown) has no lvsdr_check_up
// series: Prometheus's "no data" says "not known" better than a 0 (which
// would read as down) or a NaN (which breaks sums and comparisons).
package metrics

// namespace prefixes every metric of lvsdr.
const namespace = "lvsdr"
