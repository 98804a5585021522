package metrics

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

func TestServerServesMetricsAndHealth(t *testing.T) {
	reg := NewRegistry()
	cat := catalogOf(lab())
	q := NewQuorum(reg, func() *Catalog { return cat })
	q.Set("amqp", true)
	var unhealthy atomic.Pointer[error]
	health := func(context.Context) error {
		if err := unhealthy.Load(); err != nil {
			return *err
		}
		return nil
	}
	srv, err := Serve(netip.MustParseAddrPort("127.0.0.1:0"), reg, health, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	base := "http://" + srv.Addr().String()

	code, body := get(t, base+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("GET /metrics: %d\n%s", code, body)
	}
	for _, want := range []string{`lvsdr_quorum_lost{local_address="10.0.0.100",local_port="5672",proto="TCP",service="amqp"} 1`, "lvsdr_build_info{", "go_goroutines "} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}

	if code, body := get(t, base+"/healthz"); code != http.StatusOK || body != "ok\n" {
		t.Errorf("GET /healthz on a healthy director: %d %q, want 200 \"ok\"", code, body)
	}
	failed := errors.New("last reconcile (resync) failed: add service -t 10.0.0.100:5672: no answer from the kernel in time")
	unhealthy.Store(&failed)
	if code, body := get(t, base+"/healthz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "resync) failed") {
		t.Errorf("GET /healthz after a failed reconcile: %d %q, want 503 with the reason", code, body)
	}
}

func TestServerListenFailureNamesTheAddress(t *testing.T) {
	first, err := Serve(netip.MustParseAddrPort("127.0.0.1:0"), prometheus.NewRegistry(), func(context.Context) error { return nil }, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Stop()
	taken := netip.MustParseAddrPort(first.Addr().String())
	_, err = Serve(taken, prometheus.NewRegistry(), func(context.Context) error { return nil }, quiet)
	if want := "metrics on " + taken.String() + ": address already in use"; err == nil || err.Error() != want {
		t.Errorf("second listener on %s: %v, want %q", taken, err, want)
	}
}

func TestServerStopClosesTheListener(t *testing.T) {
	srv, err := Serve(netip.MustParseAddrPort("127.0.0.1:0"), prometheus.NewRegistry(), func(context.Context) error { return nil }, quiet)
	if err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	if _, err := http.Get("http://" + srv.Addr().String() + "/healthz"); err == nil {
		t.Error("the endpoint still answers after Stop")
	}
}
