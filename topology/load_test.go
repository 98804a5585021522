package topology

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

const valid = `vip: 10.0.0.100
director:
  interface: eth0
services:
  - name: amqp
    port: 5672
    protocol: tcp
    scheduler: wrr
    forwarding: dr
    persistence_timeout: 50s
    check: {type: tcp, interval: 5s, connect_timeout: 3s, retry: 3, delay_before_retry: 3s, rise: 2}
  - name: management
    port: 15672
real_servers:
  - {name: n1, address: 10.0.0.2, weight: 1}
  - {name: n2, address: 10.0.0.3, weight: 2}
realserver:
  interface: eth0
`

func TestParseValid(t *testing.T) {
	topo, err := Parse("t.yaml", []byte(valid))
	if err != nil {
		t.Fatal(err)
	}
	if topo.VIP != netip.MustParseAddr("10.0.0.100") || topo.Director.Interface != "eth0" || topo.RealServer.Interface != "eth0" {
		t.Errorf("top level: %+v", topo)
	}
	amqp := topo.Services[0]
	wantCheck := Check{Name: "tcp", Type: CheckTCP, Port: 5672, Interval: 5 * time.Second, ConnectTimeout: 3 * time.Second, Retry: 3, DelayBeforeRetry: 3 * time.Second, Rise: 2}
	if amqp.Checks[0] != wantCheck || amqp.PersistenceTimeout != 50*time.Second || amqp.Scheduler != "wrr" || amqp.Forwarding != DirectRouting {
		t.Errorf("amqp: %+v", amqp)
	}
	if got := topo.RealServers[1]; got.Weight != 2 || got.Address != netip.MustParseAddr("10.0.0.3") {
		t.Errorf("n2: %+v", got)
	}
}

func TestDefaults(t *testing.T) {
	topo, err := Parse("t.yaml", []byte(valid))
	if err != nil {
		t.Fatal(err)
	}
	mgmt := topo.Services[1]
	want := Service{
		Name: "management", Port: 15672, Protocol: TCP, Scheduler: "wrr", Forwarding: DirectRouting,
		OnFailure: Remove, RealServers: []string{"n1", "n2"},
		Checks: []Check{{Name: "tcp", Type: CheckTCP, Port: 15672, Interval: 5 * time.Second, ConnectTimeout: 5 * time.Second,
			Retry: 1, DelayBeforeRetry: time.Second, Rise: 1}},
	}
	if mgmt.Checks[0] != want.Checks[0] || !slices.Equal(mgmt.RealServers, want.RealServers) || mgmt.Scheduler != want.Scheduler ||
		mgmt.Protocol != want.Protocol || mgmt.OnFailure != want.OnFailure || mgmt.PersistenceTimeout != 0 {
		t.Errorf("defaults:\n got %+v %+v\nwant %+v %+v", mgmt, mgmt.Checks, want, want.Checks)
	}
	if topo.Director.ResyncInterval != 30*time.Second || topo.Director.DrainTimeout != 10*time.Minute {
		t.Errorf("director defaults: %+v", topo.Director)
	}
	udp, err := Parse("t.yaml", []byte(strings.Replace(valid, "port: 15672", "port: 53\n    protocol: udp", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if c := udp.Services[1].Checks; len(c) != 0 {
		t.Errorf("udp service checks default to %+v, want none", c)
	}
}

func TestKeepalivedStyleSecondsAndSubset(t *testing.T) {
	doc := strings.Replace(valid, "check: {type: tcp, interval: 5s, connect_timeout: 3s, retry: 3, delay_before_retry: 3s, rise: 2}",
		"check: {interval: 6, connect_timeout: 3, delay_before_retry: 2, port: 5673}\n    real_servers: [n2]\n    on_failure: drain", 1)
	doc = strings.Replace(doc, "persistence_timeout: 50s", "persistence_timeout: 50", 1)
	topo, err := Parse("t.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	s := topo.Services[0]
	if s.Checks[0].Interval != 6*time.Second || s.Checks[0].ConnectTimeout != 3*time.Second || s.Checks[0].DelayBeforeRetry != 2*time.Second ||
		s.Checks[0].Port != 5673 || s.PersistenceTimeout != 50*time.Second || s.OnFailure != Drain {
		t.Errorf("service: %+v", s)
	}
	if got := topo.Members(s); len(got) != 1 || got[0].Name != "n2" {
		t.Errorf("members: %+v", got)
	}
}

func TestAServiceGivesItsOwnWeight(t *testing.T) {
	doc := strings.Replace(valid, "  - name: management\n    port: 15672\n",
		"  - name: management\n    port: 15672\n    real_servers: [n1, {name: n2, weight: 7}]\n", 1)
	topo, err := Parse("t.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	weights := func(s Service) map[string]uint16 {
		out := map[string]uint16{}
		for _, rs := range topo.Members(s) {
			out[rs.Name] = rs.Weight
		}
		return out
	}
	amqp, management := topo.Services[0], topo.Services[1]
	if got := weights(management); got["n1"] != 1 || got["n2"] != 7 {
		t.Errorf("management weighs %v, want n1 1 (its own) and n2 7 (the service's)", got)
	}
	if got := weights(amqp); got["n2"] != 2 {
		t.Errorf("amqp weighs %v, want n2 at its own 2", got)
	}
	if rs, _ := topo.RealServerByName("n2"); rs.Weight != 2 {
		t.Errorf("the real server's own weight became %d", rs.Weight)
	}

	for _, tc := range []struct{ entry, want string }{
		{"{name: n2, weight: 70000}", `t.yaml:14: services[1] (management).real_servers[].weight must be between 0 and 65535, not 70000`},
		{"{weight: 3}", `t.yaml:14: services[1] (management).real_servers[].name is required`},
		{"{name: n2, wieght: 3}", `t.yaml:14: services[1] (management).real_servers[]: unknown key "wieght"`},
		{"{name: n9, weight: 3}", `n9`},
	} {
		bad := strings.Replace(doc, "{name: n2, weight: 7}", tc.entry, 1)
		if _, err := Parse("t.yaml", []byte(bad)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q", tc.entry, err, tc.want)
		}
	}
}

// TestProblems feeds one bad input each and expects its FILE:LINE: message.
func TestProblems(t *testing.T) {
	replace := func(old, new string) string {
		if !strings.Contains(valid, old) {
			t.Fatalf("fixture lacks %q", old)
		}
		return strings.Replace(valid, old, new, 1)
	}
	tests := []struct {
		name string
		doc  string
		want string
	}{
		{"unknown top-level key", valid + "vips: 10.0.0.1\n", `t.yaml:19: the file: unknown key "vips"`},
		{"unknown service key", replace("    protocol: tcp", "    protocl: tcp"), `t.yaml:7: services[0] (amqp): unknown key "protocl"`},
		{"unknown check key", replace("rise: 2}", "rise: 2, nb_get_retry: 3}"), `t.yaml:11: services[0] (amqp).check: unknown key "nb_get_retry"`},
		{"duplicate key", replace("    port: 5672", "    port: 5672\n    port: 5673"), `t.yaml:7: services[0] (amqp): key "port" given twice (first on line 6)`},
		{"vip is a prefix", replace("vip: 10.0.0.100", "vip: 10.0.0.100/24"), `t.yaml:1: vip must be one address, not the prefix "10.0.0.100/24"`},
		{"vip is a name", replace("vip: 10.0.0.100", "vip: rabbit.example"), `t.yaml:1: vip must be an IPv4 address, not "rabbit.example"`},
		{"vip is ipv6", replace("vip: 10.0.0.100", "vip: \"2001:db8::1\""), `t.yaml:1: vip: IPv6 addresses are not supported yet`},
		{"vip is a list", replace("vip: 10.0.0.100", "vip: [10.0.0.100, 10.0.0.101]"), `t.yaml:1: vip must be a single value, not a list`},
		{"vip unspecified", replace("vip: 10.0.0.100", "vip: 0.0.0.0"), `t.yaml:1: vip must be a unicast address`},
		{"vip missing", replace("vip: 10.0.0.100\n", ""), `t.yaml:1: vip is required`},
		{"bad real-server address", replace("address: 10.0.0.3", "address: 10.0.0.300"), `t.yaml:16: real_servers[1] (n2).address must be an IPv4 address, not "10.0.0.300"`},
		{"real server is the VIP", replace("address: 10.0.0.3", "address: 10.0.0.100"), `t.yaml:16: real_servers[1] (n2): address 10.0.0.100 is the VIP`},
		{"port zero", replace("port: 5672", "port: 0"), `t.yaml:6: services[0] (amqp).port must be between 1 and 65535, not 0`},
		{"port too big", replace("port: 5672", "port: 65536"), `t.yaml:6: services[0] (amqp).port must be between 1 and 65535, not 65536`},
		{"port not a number", replace("port: 5672", "port: amqp"), `t.yaml:6: services[0] (amqp).port must be a whole number, not "amqp"`},
		{"port missing", replace("    port: 15672\n", ""), `t.yaml:12: services[1] (management).port is required`},
		{"weight too big", replace("weight: 2", "weight: 70000"), `t.yaml:16: real_servers[1] (n2).weight must be between 0 and 65535, not 70000`},
		{"weight negative", replace("weight: 2", "weight: -1"), `real_servers[1] (n2).weight must be between 0 and 65535, not -1`},
		{"weight fraction", replace("weight: 2", "weight: 1.5"), `real_servers[1] (n2).weight must be a whole number, not "1.5"`},
		{"bad duration", replace("interval: 5s", "interval: 5 seconds"), `t.yaml:11: services[0] (amqp).check.interval must be a duration such as 3s`},
		{"negative duration", replace("connect_timeout: 3s", "connect_timeout: -3s"), `services[0] (amqp).check.connect_timeout must not be negative`},
		{"zero interval", replace("interval: 5s", "interval: 0"), `services[0] (amqp).check.interval must be above zero`},
		{"fractional persistence", replace("persistence_timeout: 50s", "persistence_timeout: 1500ms"), `t.yaml:10: services[0] (amqp).persistence_timeout must be whole seconds`},
		{"unknown scheduler", replace("scheduler: wrr", "scheduler: fastest"), `t.yaml:8: services[0] (amqp).scheduler: unknown value "fastest" (one of rr wrr`},
		{"unknown forwarding", replace("forwarding: dr", "forwarding: direct"), `t.yaml:9: services[0] (amqp).forwarding: unknown value "direct" (one of dr nat tunnel)`},
		{"unknown protocol", replace("protocol: tcp", "protocol: sctp"), `services[0] (amqp).protocol: unknown value "sctp" (one of tcp udp)`},
		{"unknown check type", replace("type: tcp", "type: smtp"), `services[0] (amqp).check.type: unknown value "smtp" (one of tcp http amqp none)`},
		{"rise zero", replace("rise: 2", "rise: 0"), `services[0] (amqp).check.rise must be between 1 and 100, not 0`},
		{"retry negative", replace("retry: 3", "retry: -1"), `services[0] (amqp).check.retry must be between 0 and 100, not -1`},
		{"duplicate service name", replace("name: management", "name: amqp"), `t.yaml:12: services[1]: name "amqp" is already used by services[0]`},
		{"duplicate service port", replace("port: 15672", "port: 5672"), `t.yaml:12: services[1] (management): tcp port 5672 is already used by services[0]`},
		{"duplicate real-server name", replace("name: n2", "name: n1"), `t.yaml:16: real_servers[1]: name "n1" is already used by real_servers[0]`},
		{"duplicate real-server address", replace("address: 10.0.0.3", "address: 10.0.0.2"), `t.yaml:16: real_servers[1] (n2): address 10.0.0.2 is already used by real_servers[0]`},
		{"subset names an unknown server", replace("    port: 15672", "    port: 15672\n    real_servers: [n1, n9]"), `t.yaml:14: services[1] (management).real_servers: no real server is named "n9"`},
		{"subset names a server twice", replace("    port: 15672", "    port: 15672\n    real_servers: [n1, n1]"), `services[1] (management).real_servers lists "n1" twice`},
		{"empty subset", replace("    port: 15672", "    port: 15672\n    real_servers: []"), `services[1] (management).real_servers is empty`},
		{"no services", replace(valid[strings.Index(valid, "  - name: amqp"):strings.Index(valid, "real_servers:\n")], ""), `services must be a list, not empty`},
		{"services not a list", replace("services:\n", "services: amqp\nx:\n"), `services must be a list, not "amqp"`},
		{"director interface missing", replace("director:\n  interface: eth0", "director:\n  resync_interval: 10s"), `t.yaml:3: director.interface is required`},
		{"bad interface name", replace("director:\n  interface: eth0", "director:\n  interface: a-very-long-interface-name"), `director.interface must be a network interface name`},
		{"realserver interface missing with dr", replace("realserver:\n  interface: eth0\n", ""), `realserver.interface is required with dr or tunnel forwarding`},
		{"bad name", replace("name: n2", "name: \"node 2\""), `real_servers[1] (node 2).name must be a non-empty name without spaces or '/'`},
		{"yaml syntax", replace("vip: 10.0.0.100", "vip: [10.0.0.100"), `t.yaml:`},
		{"empty file", "# only a comment\n", `t.yaml:1: the file is empty`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("t.yaml", []byte(tt.doc))
			if err == nil {
				t.Fatalf("no error; want %q", tt.want)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error does not wrap ErrInvalid: %v", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error:\n%s\nwant it to contain:\n%s", err, tt.want)
			}
		})
	}
}

func TestEveryProblemIsReported(t *testing.T) {
	doc := strings.NewReplacer("scheduler: wrr", "scheduler: fastest", "weight: 2", "weight: 70000", "vip: 10.0.0.100", "vip: 10.0.0.100/24").Replace(valid)
	_, err := Parse("t.yaml", []byte(doc))
	var verr *ValidationError
	if !errors.As(err, &verr) {
		t.Fatalf("error %v is not a *ValidationError", err)
	}
	var lines []int
	for _, p := range verr.Problems {
		lines = append(lines, p.Line)
	}
	if !slices.Equal(lines, []int{1, 8, 16}) {
		t.Errorf("problems on lines %v, want 1, 8, 16:\n%s", lines, err)
	}
}

func TestExampleIsTheReferenceDesign(t *testing.T) {
	topo, err := Load("../deploy/examples/rabbitmq.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if topo.VIP != netip.MustParseAddr("192.168.0.100") || len(topo.Services) != 2 || len(topo.RealServers) != 3 {
		t.Fatalf("example: %+v", topo)
	}
	for i, port := range []uint16{5672, 15672} {
		s := topo.Services[i]
		c := s.Checks[0]
		if s.Port != port || s.Scheduler != "wrr" || s.Forwarding != DirectRouting || s.PersistenceTimeout != 50*time.Second ||
			c.Type != CheckTCP || c.ConnectTimeout != 3*time.Second || c.Retry != 3 || c.DelayBeforeRetry != 3*time.Second || len(s.RealServers) != 3 {
			t.Errorf("service %d: %+v", i, s)
		}
	}
	for i, rs := range topo.RealServers {
		if rs.Address != netip.AddrFrom4([4]byte{192, 168, 0, byte(2 + i)}) || rs.Weight != 1 {
			t.Errorf("real server %d: %+v", i, rs)
		}
	}
	if got := topo.Services[0].Checks[0].DetectionBound(); got != 26*time.Second {
		t.Errorf("detection bound = %s, want 26s (5 + 4×3 + 3×3)", got)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load("/nonexistent/topology.yaml")
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/topology.yaml") {
		t.Errorf("Load of a missing file: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(valid))
	f.Add([]byte("vip: [\n"))
	f.Add([]byte("services: {a: 1}\nreal_servers: 3\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		topo, err := Parse("f.yaml", data)
		if err == nil && (topo == nil || !topo.VIP.IsValid() || len(topo.Services) == 0) {
			t.Errorf("accepted an incomplete topology: %+v", topo)
		}
	})
}

func TestHTTPAndAMQPChecks(t *testing.T) {
	password := filepath.Join(t.TempDir(), "password")
	os.WriteFile(password, []byte("secret\n"), 0o600)
	withCheck := func(check string) string {
		return strings.Replace(valid, "    port: 15672\n", "    port: 15672\n    check: "+check+"\n", 1)
	}
	good := withCheck(`{type: http, path: /api/health/checks/port-listener/5672, expect_status: [200, 204], body_contains: ok, headers: {Host: rmq}, username: monitor, password_file: ` + password + `, scheme: https, tls_insecure_skip_verify: true}`)
	topo, err := Parse("t.yaml", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	h := topo.Services[1].Checks[0].HTTP
	if h == nil || h.Path != "/api/health/checks/port-listener/5672" || h.Scheme != "https" || !slices.Equal(h.ExpectStatus, []int{200, 204}) ||
		h.Username != "monitor" || h.PasswordFile != password || !h.TLSInsecureSkipVerify || h.Headers["Host"] != "rmq" {
		t.Errorf("http check: %+v", h)
	}
	topo, err = Parse("t.yaml", []byte(withCheck(`{type: amqp, port: 5672}`)))
	if err != nil {
		t.Fatal(err)
	}
	if a := topo.Services[1].Checks[0].AMQP; a == nil || a.VHost != "/" || a.Username != "" || topo.Services[1].Checks[0].Port != 5672 {
		t.Errorf("amqp check: %+v", a)
	}

	tests := []struct{ check, want string }{
		{`{type: http, path: /api/health/checks/alarms}`, "every node fails at once; use /api/health/checks/port-listener/5672"},
		{`{type: http, path: /api/health/checks/node-is-quorum-critical}`, "both survivors of a three-node cluster"},
		{`{type: http, path: /api/aliveness-test/%2F}`, "is a no-op in recent RabbitMQ"},
		{`{type: http}`, "check.path is required for an http check"},
		{`{type: http, path: health}`, "must start with /"},
		{`{type: http, path: /, username: monitor}`, "username and password_file go together"},
		{`{type: tcp, path: /}`, "check.path is a setting of http checks, and this check is tcp"},
		{`{type: amqp, vhost: /, expect_status: [200]}`, "check.expect_status is a setting of http checks, and this check is amqp"},
		{`{type: http, path: /, expect_status: [700]}`, "expect_status[] must be between 100 and 599"},
		{`{type: tcp, username: u, password_file: ` + password + `}`, "check.username is a setting of http and amqp checks"},
	}
	for _, tt := range tests {
		_, err := Parse("t.yaml", []byte(withCheck(tt.check)))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("check %s: error %v, want %q", tt.check, err, tt.want)
		}
	}
}

func TestEveryExampleIsValid(t *testing.T) {
	files, err := filepath.Glob("../deploy/examples/*.yaml")
	if err != nil || len(files) < 2 {
		t.Fatalf("examples: %v %v", files, err)
	}
	for _, f := range files {
		// As the director validates them: the hooks they name exist.
		if _, err := LoadDirector(f); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

func TestAConnectTimeoutLongerThanTheIntervalIsAcceptedWithAWarning(t *testing.T) {
	for _, tc := range []struct {
		check string
		want  []string
	}{
		{"interval: 5s, connect_timeout: 3s", nil},
		{"interval: 5s, connect_timeout: 5s", nil},
		{"interval: 2s, connect_timeout: 5s", []string{"t.yaml:11: warning: services[0] (amqp).check: connect_timeout 5s is longer than interval 2s (keepalived accepts it too)"}},
	} {
		doc := strings.Replace(valid, "interval: 5s, connect_timeout: 3s", tc.check, 1)
		topo, err := Parse("t.yaml", []byte(doc))
		if err != nil {
			t.Fatalf("%s: %v", tc.check, err)
		}
		var got []string
		for _, w := range topo.Warnings {
			got = append(got, w.String())
		}
		if len(got) != len(tc.want) {
			t.Errorf("%s: warnings %q, want %q", tc.check, got, tc.want)
			continue
		}
		for i := range got {
			if !strings.HasPrefix(got[i], tc.want[i]) {
				t.Errorf("%s: warning %q, want it to start %q", tc.check, got[i], tc.want[i])
			}
		}
	}
}
