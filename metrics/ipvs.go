package metrics

import (
	"log/slog"
	"net/netip"
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lvsdr/lvsdr/ipvsctl"
)

// counterDesc is one of the kernel's cumulative counters, for a service or a
// real server, with how to read it from Stats.
type counterDesc struct {
	desc *prometheus.Desc
	get  func(*ipvsctl.Stats) uint64
}

func counterDescs(level string, labels []string) []counterDesc {
	name := namespace + "_ipvs_" + level + "_"
	of := "a virtual service"
	if level == "real_server" {
		of = "a real server in a virtual service"
	}
	return []counterDesc{
		{prometheus.NewDesc(name+"connections_total", "Connections IPVS has scheduled to "+of+" since the service or real server was added to the kernel.", labels, nil),
			func(s *ipvsctl.Stats) uint64 { return s.Connections }},
		{prometheus.NewDesc(name+"packets_in_total", "Packets from clients that IPVS forwarded to "+of+".", labels, nil),
			func(s *ipvsctl.Stats) uint64 { return s.PacketsIn }},
		{prometheus.NewDesc(name+"packets_out_total", "Reply packets of "+of+" that went through the director; 0 with direct routing, where replies bypass it.", labels, nil),
			func(s *ipvsctl.Stats) uint64 { return s.PacketsOut }},
		{prometheus.NewDesc(name+"bytes_in_total", "Bytes from clients that IPVS forwarded to "+of+".", labels, nil),
			func(s *ipvsctl.Stats) uint64 { return s.BytesIn }},
		{prometheus.NewDesc(name+"bytes_out_total", "Reply bytes of "+of+" that went through the director; 0 with direct routing.", labels, nil),
			func(s *ipvsctl.Stats) uint64 { return s.BytesOut }},
	}
}

var (
	// The IPVS series carry, beside the names of the topology, the labels
	// of node_exporter's node_ipvs_backend_* (catalog.go) and check_service.
	serviceLabels    = []string{"service", labelCheckService, labelLocalAddress, labelLocalPort, labelProto, labelLocalMark}
	realServerLabels = []string{"service", "real_server", labelCheckService, labelLocalAddress, labelLocalPort, labelProto, labelLocalMark, labelRemoteAddress, labelRemotePort}

	serviceCounters    = counterDescs("service", serviceLabels)
	realServerCounters = counterDescs("real_server", realServerLabels)

	serviceInKernelDesc = prometheus.NewDesc(namespace+"_ipvs_service_in_kernel",
		"Whether the kernel has the virtual service that the topology declares: 1 yes, 0 missing (the next reconcile adds it back).",
		serviceLabels, nil)
	activeDesc = prometheus.NewDesc(namespace+"_ipvs_real_server_active_connections",
		"Connections to a real server that IPVS sees established now.", realServerLabels, nil)
	inactiveDesc = prometheus.NewDesc(namespace+"_ipvs_real_server_inactive_connections",
		"Connections to a real server that IPVS holds in another state (closing, or half-open); with direct routing IPVS sees only the client's side.",
		realServerLabels, nil)
	weightDesc = prometheus.NewDesc(namespace+"_ipvs_real_server_weight",
		"Scheduler weight of a real server in the kernel now; 0 takes no new connections (maintenance, drain on failure, leaving after a reload).",
		realServerLabels, nil)
	sorryActiveDesc = prometheus.NewDesc(namespace+"_sorry_server_active",
		"Whether the sorry server of a service takes its new clients now (it is in the kernel at a weight above 0): 1 yes, 0 no. Only for services with a sorry server.",
		append([]string{"service"}, serviceAddressLabels...), nil)
)

// IPVS reads the kernel's counters for the declared services when
// Prometheus scrapes, so the figures are the kernel's own at that moment,
// not a copy that ages between polls. The firewall-mark services of the
// checks through the VIP are reported too, labelled check_service="true"
// (and service="through_vip"): they carry probes, not clients, and alerts
// on weights leave them out by that label.
type IPVS struct {
	kernel  ipvsctl.Kernel
	catalog func() *Catalog
	log     *slog.Logger
	errors  prometheus.Counter

	// failing is whether the last scrape failed, to log a failure once and
	// not at every scrape.
	mu      sync.Mutex
	failing bool
}

// RegisterIPVS registers with reg a collector of the IPVS metrics of the
// services of catalog(), the topology in force (nil before there is one),
// read from kernel.
func RegisterIPVS(reg prometheus.Registerer, kernel ipvsctl.Kernel, catalog func() *Catalog, log *slog.Logger) *IPVS {
	c := &IPVS{
		kernel:  kernel,
		catalog: catalog,
		log:     log,
		errors: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace,
			Name:      "ipvs_scrape_errors_total",
			Help:      "Scrapes whose read of the IPVS table failed; that scrape has no lvsdr_ipvs_service_* or lvsdr_ipvs_real_server_* series. The director's log says why.",
		}),
	}
	reg.MustRegister(c)
	return c
}

// Describe sends every descriptor the collector can emit.
func (c *IPVS) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range append(serviceCounters, realServerCounters...) {
		ch <- d.desc
	}
	ch <- serviceInKernelDesc
	ch <- activeDesc
	ch <- inactiveDesc
	ch <- weightDesc
	ch <- sorryActiveDesc
	c.errors.Describe(ch)
}

// Collect reads the kernel and sends its figures; after a failed read it
// sends only the error count, never a part of the table.
func (c *IPVS) Collect(ch chan<- prometheus.Metric) {
	defer c.errors.Collect(ch)
	cat := c.catalog()
	if cat == nil {
		return
	}
	metrics, err := c.read(cat)
	c.noteResult(err)
	if err != nil {
		c.errors.Inc()
		return
	}
	for _, m := range metrics {
		ch <- m
	}
}

// read returns the metrics of the declared services, or an error and none.
func (c *IPVS) read(cat *Catalog) ([]prometheus.Metric, error) {
	keys := make([]ipvsctl.ServiceKey, len(cat.Services))
	for i, s := range cat.Services {
		keys[i] = s.Key
	}
	table, err := ipvsctl.Read(c.kernel, keys)
	if err != nil {
		return nil, err
	}
	var out []prometheus.Metric
	for _, s := range cat.Services {
		vs, ok := table.Find(s.Key)
		local, port, proto, mark := keyValues(s.Key)
		checkService := strconv.FormatBool(s.checkService())
		svc := []string{s.Name, checkService, local, port, proto, mark}
		out = append(out, prometheus.MustNewConstMetric(serviceInKernelDesc, prometheus.GaugeValue, boolValue(ok), svc...))
		if s.Sorry.IsValid() {
			out = append(out, prometheus.MustNewConstMetric(sorryActiveDesc, prometheus.GaugeValue, boolValue(ok && sorryActive(vs, s.Sorry)), s.Name, local, port, proto))
		}
		if !ok {
			continue
		}
		if st := vs.Service.Stats; st != nil {
			for _, d := range serviceCounters {
				out = append(out, prometheus.MustNewConstMetric(d.desc, prometheus.CounterValue, float64(d.get(st)), svc...))
			}
		}
		seen := map[string]bool{}
		for _, dst := range vs.Destinations {
			node := realServerLabel(cat.Nodes, s, dst)
			if seen[node] {
				// Two destinations under one label would make the whole
				// scrape fail; the endpoint tells them apart.
				node = dst.Endpoint().String()
			}
			seen[node] = true
			labels := []string{s.Name, node, checkService, local, port, proto, mark, dst.Address.String(), strconv.Itoa(int(dst.Port))}
			out = append(out, prometheus.MustNewConstMetric(weightDesc, prometheus.GaugeValue, float64(dst.Weight), labels...))
			st := dst.Stats
			if st == nil {
				continue
			}
			out = append(out,
				prometheus.MustNewConstMetric(activeDesc, prometheus.GaugeValue, float64(st.ActiveConns), labels...),
				prometheus.MustNewConstMetric(inactiveDesc, prometheus.GaugeValue, float64(st.InactiveConns), labels...))
			for _, d := range realServerCounters {
				out = append(out, prometheus.MustNewConstMetric(d.desc, prometheus.CounterValue, float64(d.get(st)), labels...))
			}
		}
	}
	return out, nil
}

// sorryActive reports whether the sorry server is among the destinations
// of vs at a weight that takes new clients.
func sorryActive(vs ipvsctl.VirtualServer, sorry netip.AddrPort) bool {
	for _, dst := range vs.Destinations {
		if dst.Endpoint() == sorry && dst.Weight > 0 {
			return true
		}
	}
	return false
}

// realServerLabel names a destination as the topology does. A destination
// the topology does not name (the sorry server, or a real server a reload
// removed that is draining) is labelled by its endpoint, "10.0.0.9:5672".
func realServerLabel(nodes map[netip.Addr]string, s CatalogService, dst ipvsctl.Destination) string {
	if name, ok := nodes[dst.Address]; ok && dst.Port == s.Key.Port {
		return name
	}
	return dst.Endpoint().String()
}

// noteResult logs when reading the kernel starts failing and when it
// recovers, rather than at every scrape.
func (c *IPVS) noteResult(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case err != nil && !c.failing:
		c.log.Warn("metrics: read the IPVS table", "error", err)
	case err == nil && c.failing:
		c.log.Info("metrics: the IPVS table reads again")
	}
	c.failing = err != nil
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
