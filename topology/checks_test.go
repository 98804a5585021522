package topology

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// several has two checks on amqp, quorum and a sorry server, a hook, and
// per-real-server overrides.
const several = `vip: 10.0.0.100
director:
  interface: eth0
  notify: {command: [/bin/true, --flag]}
services:
  - name: amqp
    port: 5672
    quorum: 2
    sorry_server: 10.0.0.9
    checks:
      - {type: amqp, interval: 2s}
      - {name: listener, type: http, port: 15672, path: /api/health/checks/port-listener/5672, through_vip: true}
  - name: management
    port: 15672
real_servers:
  - {name: n1, address: 10.0.0.2}
  - name: n2
    address: 10.0.0.3
    check_overrides:
      amqp: {connect_timeout: 9s, port: 5673}
  - {name: n3, address: 10.0.0.4}
realserver:
  interface: eth0
`

func TestSeveralChecksOverridesQuorumAndNotify(t *testing.T) {
	topo, err := Parse("t.yaml", []byte(several))
	if err != nil {
		t.Fatal(err)
	}
	amqp := topo.Services[0]
	if len(amqp.Checks) != 2 || amqp.Checks[0].Name != "amqp" || amqp.Checks[1].Name != "listener" {
		t.Fatalf("checks %+v", amqp.Checks)
	}
	if !amqp.Checks[1].ThroughVIP || amqp.Checks[0].ThroughVIP || amqp.Checks[1].Port != 15672 {
		t.Errorf("through_vip/port: %+v", amqp.Checks)
	}
	n2 := amqp.ChecksOf("n2")
	if len(n2) != 2 {
		t.Fatalf("n2 checks %+v", n2)
	}
	for i, c := range n2 {
		if c.ConnectTimeout != 9*time.Second || c.Port != 5673 || c.Name != amqp.Checks[i].Name || c.Type != amqp.Checks[i].Type {
			t.Errorf("n2 check %d = %+v, want the service's with connect_timeout 9s and port 5673", i, c)
		}
	}
	if n2[0].Interval != 2*time.Second || n2[1].HTTP == nil || n2[1].HTTP.Path != "/api/health/checks/port-listener/5672" || !n2[1].ThroughVIP {
		t.Errorf("an override keeps the service's other settings: %+v %+v", n2[0], n2[1])
	}
	if n1 := amqp.ChecksOf("n1"); n1[0].ConnectTimeout != DefaultConnectTimeout {
		t.Errorf("n1 is not overridden: %+v", n1)
	}
	if amqp.Quorum != 2 || amqp.SorryServer == nil || *amqp.SorryServer != (SorryServer{Address: netip.MustParseAddr("10.0.0.9"), Port: 5672}) {
		t.Errorf("quorum %d sorry %+v", amqp.Quorum, amqp.SorryServer)
	}
	if mgmt := topo.Services[1]; mgmt.Quorum != 1 || mgmt.SorryServer != nil || len(mgmt.Checks) != 1 {
		t.Errorf("management defaults: %+v", mgmt)
	}
	if n := topo.Director.Notify; n == nil || len(n.Command) != 2 || n.Command[0] != "/bin/true" || n.Timeout != DefaultNotifyTimeout {
		t.Errorf("notify %+v", n)
	}
	// Only n1..n3 of amqp are probed through the VIP, each with its own mark.
	for i, name := range []string{"n1", "n2", "n3"} {
		mark, ok := topo.CheckMark(name)
		if !ok || mark != DefaultCheckMarkBase+uint32(i)+1 {
			t.Errorf("mark of %s = %#x %v", name, mark, ok)
		}
	}
	noVIP, err := Parse("t.yaml", []byte(strings.Replace(several, ", through_vip: true", "", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := noVIP.CheckMark("n1"); ok {
		t.Error("a topology without through_vip checks marks nothing")
	}
}

func TestSeveralChecksProblems(t *testing.T) {
	replace := func(old, new string) string {
		if !strings.Contains(several, old) {
			t.Fatalf("fixture lacks %q", old)
		}
		return strings.Replace(several, old, new, 1)
	}
	tests := []struct {
		name string
		doc  string
		want string
	}{
		{"check and checks", replace("    quorum: 2\n", "    check: {type: tcp}\n"), `t.yaml:11: services[0] (amqp): give check or checks, not both`},
		{"two checks of one name", replace("{type: amqp, interval: 2s}", "{name: listener, type: amqp}"), `t.yaml:12: services[0] (amqp).checks[1]: the name "listener" is already used by checks[0]; give each check its own name`},
		{"same type twice unnamed", strings.Replace(replace("{type: amqp, interval: 2s}", "{type: http, path: /x}"), "name: listener, ", "", 1), `t.yaml:12: services[0] (amqp).checks[1]: the name "http" is already used by checks[0]`},
		{"none in a list", replace("{type: amqp, interval: 2s}", "{type: none}"), `t.yaml:11: services[0] (amqp).checks[0]: type none in a list of checks`},
		{"empty checks", replace("    checks:\n      - {type: amqp, interval: 2s}\n      - {name: listener, type: http, port: 15672, path: /api/health/checks/port-listener/5672, through_vip: true}\n", "    checks: []\n"), `t.yaml:10: services[0] (amqp).checks is empty`},
		{"through_vip with nat", replace("    quorum: 2\n", "    quorum: 2\n    forwarding: nat\n"), `services[0] (amqp).checks[1].through_vip needs a tcp, http or amqp check of a tcp service with dr forwarding (this one: tcp nat, http check)`},
		{"through_vip not a bool", replace("through_vip: true", "through_vip: yes"), `services[0] (amqp).checks[1].through_vip must be true or false, not "yes"`},
		{"quorum above members", replace("quorum: 2", "quorum: 4"), `t.yaml:8: services[0] (amqp).quorum is 4 but the service has 3 real servers: it could never be met`},
		{"quorum zero", replace("quorum: 2", "quorum: 0"), `t.yaml:8: services[0] (amqp).quorum must be between 1 and`},
		{"sorry server is a member", replace("sorry_server: 10.0.0.9", "sorry_server: 10.0.0.4"), `t.yaml:9: services[0] (amqp).sorry_server 10.0.0.4 is real server n3 of the service`},
		{"sorry server is the vip", replace("sorry_server: 10.0.0.9", "sorry_server: 10.0.0.100"), `services[0] (amqp).sorry_server 10.0.0.100 is the VIP`},
		{"sorry server port with dr", replace("sorry_server: 10.0.0.9", "sorry_server: {address: 10.0.0.9, port: 8080}"), `services[0] (amqp).sorry_server.port 8080 differs from the service port 5672: only nat forwarding can change the port`},
		{"sorry server not an address", replace("sorry_server: 10.0.0.9", "sorry_server: sorry.example"), `services[0] (amqp).sorry_server must be an IPv4 address, not "sorry.example"`},
		{"override of an unknown service", replace("      amqp: {connect_timeout", "      amqps: {connect_timeout"), `t.yaml:20: real_servers[1] (n2).check_overrides: no service is named "amqps"`},
		{"override with a bad value", replace("connect_timeout: 9s", "connect_timeout: 9 seconds"), `t.yaml:20: real_servers[1] (n2).check_overrides.amqp.connect_timeout must be a duration`},
		{"override with an unknown key", replace("connect_timeout: 9s", "connect_timout: 9s"), `t.yaml:20: real_servers[1] (n2).check_overrides.amqp: unknown key "connect_timout"`},
		{"override of the type", replace("connect_timeout: 9s", "type: tcp"), `t.yaml:20: real_servers[1] (n2).check_overrides.amqp.type: the type of a check is not overridable`},
		{"override of an unchecked service", replace("      amqp: {connect_timeout: 9s, port: 5673}", "      management: {connect_timeout: 9s}") + "", ``},
		{"override for a non-member", strings.Replace(replace("  - name: management\n    port: 15672\n", "  - name: management\n    port: 15672\n    real_servers: [n1]\n"), "amqp: {connect_timeout: 9s, port: 5673}", "management: {connect_timeout: 9s}", 1), `real_servers[1] (n2).check_overrides: n2 is not a real server of service management`},
		{"notify not absolute", replace("command: [/bin/true, --flag]", "command: [true]"), `t.yaml:4: director.notify.command[0] must be an absolute path (the hook runs without a shell or PATH lookup), not "true"`},
		{"notify without command", replace("notify: {command: [/bin/true, --flag]}", "notify: {timeout: 5s}"), `t.yaml:4: director.notify.command is required`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("t.yaml", []byte(tt.doc))
			if tt.want == "" {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error:\n%v\nwant it to contain:\n%s", err, tt.want)
			}
		})
	}
}

func TestDirectorMetricsAddressAndMarkBase(t *testing.T) {
	address := func(d Director) any { return d.MetricsAddress }
	base := func(d Director) any { return d.CheckMarkBase }
	tests := []struct {
		value string
		got   func(Director) any
		want  any
		err   string
	}{
		{"", address, DefaultMetricsAddress, ""},
		{"metrics_address: 0.0.0.0:9100", address, netip.MustParseAddrPort("0.0.0.0:9100"), ""},
		{"metrics_address: off", address, netip.AddrPort{}, ""},
		{"metrics_address: localhost:9100", address, nil, `t.yaml:4: director.metrics_address must be an IPv4 address and port such as 127.0.0.1:9967, or off, not "localhost:9100"`},
		{"metrics_address: 127.0.0.1", address, nil, `director.metrics_address must be an IPv4 address and port`},
		{"", base, uint32(DefaultCheckMarkBase), ""},
		{"check_fwmark_base: 0x10000", base, uint32(0x10000), ""},
		{"check_fwmark_base: 4096", base, uint32(4096), ""},
		{"check_fwmark_base: 0", base, nil, "director.check_fwmark_base must be between 1 and 0xfffeffff, not 0x0"},
		{"check_fwmark_base: 0xffffffff", base, nil, "director.check_fwmark_base must be between 1 and 0xfffeffff"},
		{"check_fwmark_base: mark", base, nil, `director.check_fwmark_base must be a firewall mark such as 0x4c560000 or 1280704512, not "mark"`},
	}
	for _, tt := range tests {
		doc := strings.Replace(several, "  notify: {command: [/bin/true, --flag]}\n", "  "+tt.value+"\n", 1)
		topo, err := Parse("t.yaml", []byte(doc))
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%q: err %v, want %s", tt.value, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%q: %v", tt.value, err)
		}
		if got := tt.got(topo.Director); got != tt.want {
			t.Errorf("%q: %v, want %v", tt.value, got, tt.want)
		}
	}
}
