package metrics

import (
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/lvsdr/lvsdr/internal/version"
	"github.com/lvsdr/lvsdr/ipvsctl"
)

func TestMaintenanceHasASeriesPerRealServer(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	cat := catalogOf(lab())
	var drained map[string]bool
	RegisterMaintenance(reg, func() (map[string]bool, bool) { return drained, drained != nil }, func() *Catalog { return cat })
	if n, _ := testutil.GatherAndCount(reg); n != 0 {
		t.Errorf("%d series before maintenance is known, want none (not 0s that would read as out of maintenance)", n)
	}
	drained = map[string]bool{"n2": true}
	want := `
# HELP lvsdr_real_server_maintenance Whether a real server is in maintenance (director drain): 1 yes, at weight 0 in every service, 0 no. It stays so across restarts until director undrain.
# TYPE lvsdr_real_server_maintenance gauge
lvsdr_real_server_maintenance{real_server="n1",remote_address="10.0.0.2"} 0
lvsdr_real_server_maintenance{real_server="n2",remote_address="10.0.0.3"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
}

func TestReloadsCountEachOutcomeAndKeepTheLast(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	r := NewReloads(reg)
	if n, _ := testutil.GatherAndCount(reg, "lvsdr_last_reload_success"); n != 0 {
		t.Errorf("lvsdr_last_reload_success before any reload: %d series, want none", n)
	}
	at := time.Unix(1780000000, 500_000_000)
	r.Observe(at, true, 30*time.Millisecond)
	r.Observe(at.Add(time.Minute), false, 5*time.Millisecond)
	want := `
# HELP lvsdr_last_reload_duration_seconds How long the last reload took, from reading the file to the kernel programmed. Absent before the first.
# TYPE lvsdr_last_reload_duration_seconds gauge
lvsdr_last_reload_duration_seconds 0.005
# HELP lvsdr_last_reload_success Whether the last reload succeeded: 1 the new file is in force and the kernel agrees, 0 it was refused (the previous file stays in force) or the kernel refused some operations. Absent before the first.
# TYPE lvsdr_last_reload_success gauge
lvsdr_last_reload_success 0
# HELP lvsdr_last_reload_timestamp_seconds Unix time at which the last reload (SIGHUP, director reload, systemctl reload) began. Absent before the first.
# TYPE lvsdr_last_reload_timestamp_seconds gauge
lvsdr_last_reload_timestamp_seconds 1.7800000605e+09
# HELP lvsdr_reloads_total Reloads of the topology file, by result: success, or failure (the file was refused and the previous one stays in force, or the kernel refused some operations and the next resync retries).
# TYPE lvsdr_reloads_total counter
lvsdr_reloads_total{result="failure"} 1
lvsdr_reloads_total{result="success"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
}

func TestSorryServerAtWeightZeroIsNotActive(t *testing.T) {
	k, topo := programmed(t)
	amqp := ipvsctl.ServiceKey{Protocol: ipvsctl.TCP, Address: topo.VIP, Port: 5672}
	must(t, k.UpdateDestination(amqp, dest("10.0.0.9", 5672, 0)))
	reg := prometheus.NewPedanticRegistry()
	RegisterIPVS(reg, k, func() *Catalog { return catalogOf(topo) }, quiet)
	want := `
# HELP lvsdr_sorry_server_active Whether the sorry server of a service takes its new clients now (it is in the kernel at a weight above 0): 1 yes, 0 no. Only for services with a sorry server.
# TYPE lvsdr_sorry_server_active gauge
lvsdr_sorry_server_active{local_address="10.0.0.100",local_port="5672",proto="TCP",service="amqp"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "lvsdr_sorry_server_active"); err != nil {
		t.Error(err)
	}
}

func TestVIPHeldIsLabelledWithTheVIP(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	var cat *Catalog
	v := NewVIPHeld(reg, func() *Catalog { return cat })
	v.Set(true)
	if n, _ := testutil.GatherAndCount(reg); n != 0 {
		t.Errorf("%d series before there is a topology, want none", n)
	}
	cat = catalogOf(lab())
	want := `
# HELP lvsdr_vip_held Whether the VIP (local_address) is on this host: 1 yes, 0 no. A standalone director and a VRRP master should hold it (if one does not, someone removed it and the next resync binds it again, and /healthz says so); a VRRP backup should not.
# TYPE lvsdr_vip_held gauge
lvsdr_vip_held{local_address="10.0.0.100"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
}

func TestBuildInfoNamesTheBuild(t *testing.T) {
	was, wasCommit := version.Version, version.Commit
	t.Cleanup(func() { version.Version, version.Commit = was, wasCommit })
	version.Version, version.Commit = "v1.4.0-3-gabcdef0", "abcdef0123456789abcdef0123456789abcdef01"
	want := `
# HELP lvsdr_build_info Always 1; its labels say which lvsdr build runs: version (git describe, dev for an unstamped build), commit and the Go version.
# TYPE lvsdr_build_info gauge
lvsdr_build_info{commit="abcdef0123456789abcdef0123456789abcdef01",goversion="` + runtime.Version() + `",version="v1.4.0-3-gabcdef0"} 1
`
	if err := testutil.GatherAndCompare(NewRegistry(), strings.NewReader(want), "lvsdr_build_info"); err != nil {
		t.Error(err)
	}
}
