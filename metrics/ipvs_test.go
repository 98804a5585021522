package metrics

import (
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/lvsdr/lvsdr/ipvsctl"
	"github.com/lvsdr/lvsdr/topology"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// lab is two services on two real servers at VIP 10.0.0.100.
func lab() *topology.Topology {
	return &topology.Topology{
		VIP: netip.MustParseAddr("10.0.0.100"),
		Services: []topology.Service{
			{Name: "amqp", Port: 5672, Protocol: topology.TCP, Scheduler: "wrr", Forwarding: topology.DirectRouting, RealServers: []string{"n1", "n2"}},
			{Name: "management", Port: 15672, Protocol: topology.TCP, Scheduler: "wrr", Forwarding: topology.DirectRouting, RealServers: []string{"n1", "n2"}},
		},
		RealServers: []topology.RealServer{
			{Name: "n1", Address: netip.MustParseAddr("10.0.0.2"), Weight: 1},
			{Name: "n2", Address: netip.MustParseAddr("10.0.0.3"), Weight: 2},
		},
	}
}

func dest(addr string, port, weight uint16) ipvsctl.Destination {
	return ipvsctl.Destination{Address: netip.MustParseAddr(addr), Port: port, Weight: weight, Forwarding: ipvsctl.DirectRouting}
}

// programmed is lab's amqp service in a fake kernel with traffic on n1,
// n2 at weight 0, a sorry server, a firewall-mark check service and a
// foreign service; management is missing.
func programmed(t *testing.T) (*ipvsctl.FakeKernel, *topology.Topology) {
	t.Helper()
	topo := lab()
	k := ipvsctl.NewFakeKernel()
	amqp := ipvsctl.ServiceKey{Protocol: ipvsctl.TCP, Address: topo.VIP, Port: 5672}
	must(t, k.AddService(ipvsctl.Service{Key: amqp, Scheduler: "wrr",
		Stats: &ipvsctl.Stats{Connections: 30, PacketsIn: 3000, BytesIn: 300000}}))
	n1, n2, sorry := dest("10.0.0.2", 5672, 1), dest("10.0.0.3", 5672, 0), dest("10.0.0.9", 5672, 1)
	for _, d := range []ipvsctl.Destination{n1, n2, sorry} {
		must(t, k.AddDestination(amqp, d))
	}
	k.SetStats(amqp, n1, ipvsctl.Stats{ActiveConns: 7, InactiveConns: 2, Connections: 25, PacketsIn: 2500, BytesIn: 250000})
	k.SetStats(amqp, n2, ipvsctl.Stats{Connections: 5, PacketsIn: 500, BytesIn: 50000})
	mark := ipvsctl.ServiceKey{FWMark: 1001}
	must(t, k.AddService(ipvsctl.Service{Key: mark, Scheduler: "rr"}))
	must(t, k.AddDestination(mark, dest("10.0.0.2", 0, 1)))
	foreign := ipvsctl.ServiceKey{Protocol: ipvsctl.TCP, Address: netip.MustParseAddr("10.9.9.9"), Port: 80}
	must(t, k.AddService(ipvsctl.Service{Key: foreign, Scheduler: "rr"}))
	must(t, k.AddDestination(foreign, dest("10.0.0.2", 80, 1)))
	return k, topo
}

// catalogOf is what the director builds from lab(): amqp has the sorry
// server 10.0.0.9:5672 and n1 is checked through the VIP with mark 1001.
func catalogOf(topo *topology.Topology) *Catalog {
	c := &Catalog{VIP: topo.VIP, Nodes: map[netip.Addr]string{}}
	for _, s := range topo.Services {
		cs := CatalogService{Name: s.Name, Key: ipvsctl.ServiceKey{Protocol: ipvsctl.TCP, Address: topo.VIP, Port: s.Port}}
		if s.Name == "amqp" {
			cs.Sorry = netip.MustParseAddrPort("10.0.0.9:5672")
		}
		c.Services = append(c.Services, cs)
	}
	for _, rs := range topo.RealServers {
		c.Nodes[rs.Address] = rs.Name
	}
	c.Services = append(c.Services, CatalogService{Name: ThroughVIPService, Key: ipvsctl.ServiceKey{FWMark: 1001}})
	return c
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestIPVSReportsTheDeclaredServicesByName(t *testing.T) {
	k, topo := programmed(t)
	reg := prometheus.NewPedanticRegistry()
	RegisterIPVS(reg, k, func() *Catalog { return catalogOf(topo) }, quiet)

	want := `
# HELP lvsdr_ipvs_real_server_active_connections Connections to a real server that IPVS sees established now.
# TYPE lvsdr_ipvs_real_server_active_connections gauge
lvsdr_ipvs_real_server_active_connections{check_service="false",local_address="10.0.0.100",local_mark="",local_port="5672",proto="TCP",real_server="n1",remote_address="10.0.0.2",remote_port="5672",service="amqp"} 7
lvsdr_ipvs_real_server_active_connections{check_service="false",local_address="10.0.0.100",local_mark="",local_port="5672",proto="TCP",real_server="n2",remote_address="10.0.0.3",remote_port="5672",service="amqp"} 0
# HELP lvsdr_ipvs_real_server_connections_total Connections IPVS has scheduled to a real server in a virtual service since the service or real server was added to the kernel.
# TYPE lvsdr_ipvs_real_server_connections_total counter
lvsdr_ipvs_real_server_connections_total{check_service="false",local_address="10.0.0.100",local_mark="",local_port="5672",proto="TCP",real_server="n1",remote_address="10.0.0.2",remote_port="5672",service="amqp"} 25
lvsdr_ipvs_real_server_connections_total{check_service="false",local_address="10.0.0.100",local_mark="",local_port="5672",proto="TCP",real_server="n2",remote_address="10.0.0.3",remote_port="5672",service="amqp"} 5
# HELP lvsdr_ipvs_real_server_inactive_connections Connections to a real server that IPVS holds in another state (closing, or half-open); with direct routing IPVS sees only the client's side.
# TYPE lvsdr_ipvs_real_server_inactive_connections gauge
lvsdr_ipvs_real_server_inactive_connections{check_service="false",local_address="10.0.0.100",local_mark="",local_port="5672",proto="TCP",real_server="n1",remote_address="10.0.0.2",remote_port="5672",service="amqp"} 2
lvsdr_ipvs_real_server_inactive_connections{check_service="false",local_address="10.0.0.100",local_mark="",local_port="5672",proto="TCP",real_server="n2",remote_address="10.0.0.3",remote_port="5672",service="amqp"} 0
# HELP lvsdr_ipvs_real_server_weight Scheduler weight of a real server in the kernel now; 0 takes no new connections (maintenance, drain on failure, leaving after a reload).
# TYPE lvsdr_ipvs_real_server_weight gauge
lvsdr_ipvs_real_server_weight{check_service="false",local_address="10.0.0.100",local_mark="",local_port="5672",proto="TCP",real_server="10.0.0.9:5672",remote_address="10.0.0.9",remote_port="5672",service="amqp"} 1
lvsdr_ipvs_real_server_weight{check_service="false",local_address="10.0.0.100",local_mark="",local_port="5672",proto="TCP",real_server="n1",remote_address="10.0.0.2",remote_port="5672",service="amqp"} 1
lvsdr_ipvs_real_server_weight{check_service="false",local_address="10.0.0.100",local_mark="",local_port="5672",proto="TCP",real_server="n2",remote_address="10.0.0.3",remote_port="5672",service="amqp"} 0
lvsdr_ipvs_real_server_weight{check_service="true",local_address="",local_mark="000003E9",local_port="0",proto="FWM",real_server="n1",remote_address="10.0.0.2",remote_port="0",service="through_vip"} 1
# HELP lvsdr_ipvs_scrape_errors_total Scrapes whose read of the IPVS table failed; that scrape has no lvsdr_ipvs_service_* or lvsdr_ipvs_real_server_* series. The director's log says why.
# TYPE lvsdr_ipvs_scrape_errors_total counter
lvsdr_ipvs_scrape_errors_total 0
# HELP lvsdr_ipvs_service_bytes_in_total Bytes from clients that IPVS forwarded to a virtual service.
# TYPE lvsdr_ipvs_service_bytes_in_total counter
lvsdr_ipvs_service_bytes_in_total{check_service="false",local_address="10.0.0.100",local_mark="",local_port="5672",proto="TCP",service="amqp"} 300000
# HELP lvsdr_ipvs_service_connections_total Connections IPVS has scheduled to a virtual service since the service or real server was added to the kernel.
# TYPE lvsdr_ipvs_service_connections_total counter
lvsdr_ipvs_service_connections_total{check_service="false",local_address="10.0.0.100",local_mark="",local_port="5672",proto="TCP",service="amqp"} 30
# HELP lvsdr_ipvs_service_in_kernel Whether the kernel has the virtual service that the topology declares: 1 yes, 0 missing (the next reconcile adds it back).
# TYPE lvsdr_ipvs_service_in_kernel gauge
lvsdr_ipvs_service_in_kernel{check_service="false",local_address="10.0.0.100",local_mark="",local_port="15672",proto="TCP",service="management"} 0
lvsdr_ipvs_service_in_kernel{check_service="false",local_address="10.0.0.100",local_mark="",local_port="5672",proto="TCP",service="amqp"} 1
lvsdr_ipvs_service_in_kernel{check_service="true",local_address="",local_mark="000003E9",local_port="0",proto="FWM",service="through_vip"} 1
# HELP lvsdr_sorry_server_active Whether the sorry server of a service takes its new clients now (it is in the kernel at a weight above 0): 1 yes, 0 no. Only for services with a sorry server.
# TYPE lvsdr_sorry_server_active gauge
lvsdr_sorry_server_active{local_address="10.0.0.100",local_port="5672",proto="TCP",service="amqp"} 1
`
	names := []string{
		"lvsdr_ipvs_real_server_active_connections", "lvsdr_ipvs_real_server_connections_total",
		"lvsdr_ipvs_real_server_inactive_connections", "lvsdr_ipvs_real_server_weight",
		"lvsdr_ipvs_service_bytes_in_total", "lvsdr_ipvs_service_connections_total",
		"lvsdr_ipvs_service_in_kernel", "lvsdr_ipvs_scrape_errors_total", "lvsdr_sorry_server_active",
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}
	// The foreign service is not ours to report: every series is of a
	// declared service (the firewall-mark check service is one, labelled
	// check_service="true" and with the kernel's 8-hex-digit mark, as
	// node_exporter reads /proc/net/ip_vs).
	n, err := testutil.GatherAndCount(reg, "lvsdr_ipvs_real_server_packets_in_total")
	if err != nil || n != 2 {
		t.Errorf("packets_in series: %d (%v), want 2 (n1 and n2 of amqp; the sorry server has no counters here)", n, err)
	}
}

func TestIPVSCountersAreReadAtScrapeTime(t *testing.T) {
	k, topo := programmed(t)
	reg := prometheus.NewRegistry()
	RegisterIPVS(reg, k, func() *Catalog { return catalogOf(topo) }, quiet)
	amqp := ipvsctl.ServiceKey{Protocol: ipvsctl.TCP, Address: topo.VIP, Port: 5672}
	read := func() float64 {
		t.Helper()
		mfs, err := reg.Gather()
		must(t, err)
		for _, mf := range mfs {
			if mf.GetName() != "lvsdr_ipvs_real_server_connections_total" {
				continue
			}
			for _, m := range mf.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "real_server" && l.GetValue() == "n1" {
						return m.GetCounter().GetValue()
					}
				}
			}
		}
		t.Fatal("no connections_total for n1")
		return 0
	}
	if got := read(); got != 25 {
		t.Fatalf("n1 connections_total = %v, want 25", got)
	}
	k.SetStats(amqp, dest("10.0.0.2", 5672, 1), ipvsctl.Stats{Connections: 40})
	if got := read(); got != 40 {
		t.Errorf("after more traffic n1 connections_total = %v, want the kernel's 40 at once", got)
	}
}

// failingKernel fails to list the real servers of any service.
type failingKernel struct{ *ipvsctl.FakeKernel }

func (failingKernel) Destinations(ipvsctl.ServiceKey) ([]ipvsctl.Destination, error) {
	return nil, errors.New("netlink: no answer")
}

func TestIPVSScrapeErrorReportsNothingButTheCount(t *testing.T) {
	k, topo := programmed(t)
	reg := prometheus.NewRegistry()
	RegisterIPVS(reg, failingKernel{k}, func() *Catalog { return catalogOf(topo) }, quiet)
	for range 2 {
		if _, err := reg.Gather(); err != nil {
			t.Fatal(err)
		}
	}
	mfs, err := reg.Gather()
	must(t, err)
	for _, mf := range mfs {
		if mf.GetName() == "lvsdr_ipvs_scrape_errors_total" {
			if v := mf.GetMetric()[0].GetCounter().GetValue(); v != 3 {
				t.Errorf("scrape errors = %v after 3 failed scrapes", v)
			}
			continue
		}
		t.Errorf("a failed scrape reported %s", mf.GetName())
	}
}
