//go:build e2e

package e2e

import (
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// metricsURL is the director's endpoint at the default metrics_address,
// inside its namespace.
const metricsURL = "http://127.0.0.1:9967"

// scrape fetches a path of the director's endpoint from inside its
// namespace; an error (the endpoint not up yet) is returned, not fatal. A
// status other than 200 is an error that quotes the body.
func (l *lab) scrape(path string) (string, error) {
	out, err := exec.Command("ip", "netns", "exec", l.ns["director"],
		"curl", "-sS", "--max-time", "5", "-w", "\n%{http_code}", metricsURL+path).Output()
	if err != nil {
		return "", fmt.Errorf("curl %s: %w", path, err)
	}
	i := strings.LastIndexByte(string(out), '\n')
	body, code := string(out[:i]), string(out[i+1:])
	if code != "200" {
		return body, fmt.Errorf("GET %s: status %s: %s", path, code, strings.TrimSpace(body))
	}
	return body, nil
}

// sample returns the value of the series of name whose labels include
// every "key=value" of labels, and whether there is one.
func sample(exposition, name string, labels ...string) (float64, bool) {
	for _, line := range strings.Split(exposition, "\n") {
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		series, value, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		matches := true
		for _, kv := range labels {
			k, v, _ := strings.Cut(kv, "=")
			if !strings.Contains(series, k+`="`+v+`"`) {
				matches = false
				break
			}
		}
		if !matches {
			continue
		}
		f, err := strconv.ParseFloat(value, 64)
		return f, err == nil
	}
	return 0, false
}

// waitMetric scrapes until ok holds of /metrics and returns that scrape;
// it fails the test after limit.
func (l *lab) waitMetric(what string, limit time.Duration, ok func(exposition string) bool) string {
	l.t.Helper()
	start := time.Now()
	var body string
	var err error
	for {
		if body, err = l.scrape("/metrics"); err == nil && ok(body) {
			return body
		}
		if time.Since(start) > limit {
			l.t.Fatalf("%s: not within %s (scrape error: %v); /metrics:\n%s\ndirector log:\n%s", what, limit, err, body, l.log("director"))
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func TestMetricsAndHealthzOfARunningDirector(t *testing.T) {
	needIPVS(t)
	l := up(t, [3]int{1, 1, 1})

	allUp := func(m string) bool {
		for _, svc := range []string{"amqp", "management"} {
			for _, node := range []string{"rs1", "rs2", "rs3"} {
				if v, ok := sample(m, "lvsdr_check_up", "service="+svc, "real_server="+node, "check=tcp"); !ok || v != 1 {
					return false
				}
			}
		}
		return true
	}
	m := l.waitMetric("lvsdr_check_up 1 for the 6 checks", 10*time.Second, allUp)
	if n := strings.Count(m, "\nlvsdr_check_up{"); n != 6 {
		t.Errorf("%d lvsdr_check_up series, want 6 (2 services × 3 real servers)", n)
	}
	if health, err := l.scrape("/healthz"); err != nil || health != "ok\n" {
		t.Errorf("/healthz: %q, %v; want ok", health, err)
	}

	l.stopProcess("listen-rs2-5672", syscall.SIGKILL)
	start := time.Now()
	rs2Down := func(m string) bool {
		v, ok := sample(m, "lvsdr_check_up", "service=amqp", "real_server=rs2", "check=tcp")
		return ok && v == 0
	}
	m = l.waitMetric("lvsdr_check_up 0 for amqp/rs2", checkBound+slack, rs2Down)
	t.Logf("lvsdr_check_up{amqp,rs2} went 0 after %s", time.Since(start).Round(10*time.Millisecond))
	if v, ok := sample(m, "lvsdr_check_up", "service=management", "real_server=rs2"); !ok || v != 1 {
		t.Errorf("management/rs2 check_up = %v (%v), want 1: only rs2's amqp listener died", v, ok)
	}
	if v, _ := sample(m, "lvsdr_check_transitions_total", "service=amqp", "real_server=rs2", "to=down"); v != 1 {
		t.Errorf("amqp/rs2 transitions to down = %v, want 1", v)
	}
	if _, ok := sample(m, "lvsdr_ipvs_real_server_weight", "service=amqp", "real_server=rs2"); ok {
		t.Errorf("amqp/rs2 still has a weight in the kernel after its check failed (on_failure: remove)")
	}
	if v, _ := sample(m, "lvsdr_ipvs_operations_total", "op=delete_destination"); v < 1 {
		t.Errorf("ipvs_operations_total{op=delete_destination} = %v, want rs2's deletion counted", v)
	}

	// Traffic: 10 short connections, and one held open.
	before, _ := sample(m, "lvsdr_ipvs_service_connections_total", "service=amqp")
	reached := count(l.connect(5672, sources(100, 110)))
	t.Logf("10 clients reached %v", reached)
	held, _ := l.holdConnection(subnet + ".150")
	traffic := func(m string) bool {
		total, _ := sample(m, "lvsdr_ipvs_service_connections_total", "service=amqp")
		active, _ := sample(m, "lvsdr_ipvs_real_server_active_connections", "service=amqp", "real_server="+held)
		return total >= before+11 && active >= 1
	}
	// The kernel folds its per-CPU counters into the totals every 2 s.
	m = l.waitMetric("11 amqp connections counted, one active on "+held, 10*time.Second, traffic)
	var perServer float64
	for _, node := range []string{"rs1", "rs3"} {
		v, _ := sample(m, "lvsdr_ipvs_real_server_connections_total", "service=amqp", "real_server="+node)
		perServer += v
	}
	total, _ := sample(m, "lvsdr_ipvs_service_connections_total", "service=amqp")
	in, _ := sample(m, "lvsdr_ipvs_service_packets_in_total", "service=amqp")
	out, _ := sample(m, "lvsdr_ipvs_service_packets_out_total", "service=amqp")
	msg := fmt.Sprintf("metrics after 11 clients: amqp connections_total %v (rs1+rs3 %v), packets in %v out %v, active on %s ≥ 1", total, perServer, in, out, held)
	t.Log(msg)
	fmt.Println("E2E", msg)
	if perServer < 11 {
		t.Errorf("rs1 and rs3 counted %v connections, want at least the 11 clients'", perServer)
	}
	if in == 0 || out != 0 {
		t.Errorf("amqp packets in %v, out %v: want incoming counted and no replies through the director (DR)", in, out)
	}
	if v, ok := sample(m, "lvsdr_ipvs_scrape_errors_total"); !ok || v != 0 {
		t.Errorf("lvsdr_ipvs_scrape_errors_total = %v (%v), want 0", v, ok)
	}
	if health, err := l.scrape("/healthz"); err != nil || health != "ok\n" {
		t.Errorf("/healthz with rs2 down: %q, %v; want ok (a failed check is not a failed director)", health, err)
	}
}
