package keepalived

import (
	"bytes"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lvsdr/lvsdr/topology"
)

var update = flag.Bool("update", false, "rewrite testdata/*.yaml from the conversion")

// TestReferenceGolden pins the YAML itself: key order, durations and
// comments are what an operator reads and edits.
func TestReferenceGolden(t *testing.T) {
	data, err := os.ReadFile("testdata/reference.conf")
	if err != nil {
		t.Fatal(err)
	}
	res, err := Convert("reference.conf", data)
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile("testdata/reference.yaml", res.YAML, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile("testdata/reference.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(res.YAML, want) {
		t.Errorf("the conversion differs from testdata/reference.yaml (go test -update rewrites it):\n%s", res.YAML)
	}
}

// convert converts conf and validates the YAML as the director would.
func convert(t *testing.T, conf string) (*topology.Topology, []Warning, *Result) {
	t.Helper()
	res, err := Convert("test.conf", []byte(conf))
	if err != nil {
		t.Fatalf("convert: %v", err)
	}
	if len(res.Problems) > 0 {
		t.Fatalf("the converted topology is invalid: %v\n%s", res.Problems, res.YAML)
	}
	topo, err := topology.Parse("out.yaml", res.YAML)
	if err != nil {
		t.Fatalf("topology.Parse: %v\n%s", err, res.YAML)
	}
	return topo, res.Warnings, res
}

// warned returns the warnings on line whose message holds every fragment;
// line 0 matches any line.
func warned(ws []Warning, line int, fragments ...string) bool {
	for _, w := range ws {
		if line != 0 && w.Line != line {
			continue
		}
		all := true
		for _, f := range fragments {
			all = all && strings.Contains(w.Message, f)
		}
		if all {
			return true
		}
	}
	return false
}

func TestReference(t *testing.T) {
	data, err := os.ReadFile("testdata/reference.conf")
	if err != nil {
		t.Fatal(err)
	}
	res, err := Convert("testdata/reference.conf", data)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(res.YAML), "# converted from testdata/reference.conf by director import-keepalived\n") {
		t.Errorf("no header comment:\n%s", res.YAML)
	}
	topo, err := topology.Parse("reference.yaml", res.YAML)
	if err != nil {
		t.Fatalf("%v\n%s", err, res.YAML)
	}
	if topo.VIP != netip.MustParseAddr("192.168.0.100") {
		t.Errorf("VIP %s", topo.VIP)
	}
	if topo.Director.Interface != "eth0" || topo.RealServer.Interface != "eth0" {
		t.Errorf("interfaces: director %q, realserver %q", topo.Director.Interface, topo.RealServer.Interface)
	}
	if len(topo.Services) != 2 {
		t.Fatalf("%d services, want 2", len(topo.Services))
	}
	for i, want := range []struct {
		name string
		port uint16
	}{{"amqp", 5672}, {"management", 15672}} {
		s := topo.Services[i]
		if s.Name != want.name || s.Port != want.port || s.Protocol != topology.TCP || s.Scheduler != "wrr" ||
			s.Forwarding != topology.DirectRouting || s.PersistenceTimeout != 50*time.Second || s.OnFailure != topology.Remove {
			t.Errorf("service %d: %+v", i, s)
		}
		wantCheck := topology.Check{Name: "tcp", Type: topology.CheckTCP, Port: want.port, Interval: 6 * time.Second,
			ConnectTimeout: 3 * time.Second, Retry: 3, DelayBeforeRetry: 3 * time.Second, Rise: 1}
		if s.Checks[0] != wantCheck {
			t.Errorf("%s check:\n got %+v\nwant %+v", s.Name, s.Checks[0], wantCheck)
		}
		if len(s.RealServers) != 3 {
			t.Errorf("%s runs on %v, want all three", s.Name, s.RealServers)
		}
	}
	var addrs []string
	for _, rs := range topo.RealServers {
		addrs = append(addrs, rs.Address.String())
		if rs.Weight != 1 {
			t.Errorf("%s weight %d, want 1", rs.Name, rs.Weight)
		}
	}
	if !slices.Equal(addrs, []string{"192.168.0.2", "192.168.0.3", "192.168.0.4"}) {
		t.Errorf("real servers %v", addrs)
	}
	if !warned(res.Warnings, 15, "nb_get_retry is not a TCP_CHECK keyword in keepalived, which ignores it; carried as retry") {
		t.Errorf("no nb_get_retry warning on line 15: %v", res.Warnings)
	}
	if !warned(res.Warnings, 0, "director.interface", "eth0") || !warned(res.Warnings, 0, "realserver.interface", "eth0") {
		t.Errorf("no interface warnings: %v", res.Warnings)
	}
	if len(res.Problems) != 0 {
		t.Errorf("problems: %v", res.Problems)
	}
}

func TestConvert(t *testing.T) {
	tests := []struct {
		name string
		conf string
		// check asserts the topology; warnings must each be present as
		// "line|fragment|fragment...".
		check    func(t *testing.T, topo *topology.Topology)
		warnings []string
		// absent are fragments no warning may hold.
		absent []string
		// inYAML are lines the YAML must hold, comments included.
		inYAML []string
	}{
		{
			name: "NAT with inhibit_on_failure",
			conf: `virtual_server 10.0.0.100 80 {
  delay_loop 10
  lb_algo rr
  lb_kind NAT
  protocol TCP
  real_server 10.0.0.2 80 {
    weight 3
    inhibit_on_failure
    TCP_CHECK {
      connect_timeout 2
    }
  }
}
`,
			check: func(t *testing.T, topo *topology.Topology) {
				s := topo.Services[0]
				if s.Name != "tcp_80" || s.Forwarding != topology.NAT || s.OnFailure != topology.Drain || s.Scheduler != "rr" {
					t.Errorf("service %+v", s)
				}
				if s.Checks[0].Interval != 10*time.Second || s.Checks[0].ConnectTimeout != 2*time.Second || s.Checks[0].Retry != 1 || s.Checks[0].DelayBeforeRetry != time.Second {
					t.Errorf("check %+v", s.Checks[0])
				}
				if topo.RealServers[0].Weight != 3 || topo.RealServer.Interface != "" {
					t.Errorf("real server %+v, agent %+v", topo.RealServers[0], topo.RealServer)
				}
			},
			absent: []string{"realserver.interface"},
		},
		{
			name: "quorum and sorry server",
			conf: `virtual_server 10.0.0.100 5672 {
  lb_algo wrr
  lb_kind DR
  quorum 2
  quorum_down /bin/true
  hysteresis 1
  sorry_server 10.0.0.9 5672
  real_server 10.0.0.2 5672 {
    TCP_CHECK {
      connect_timeout 3
    }
  }
  real_server 10.0.0.3 5672 {
    TCP_CHECK {
      connect_timeout 3
    }
  }
  protocol TCP
}
`,
			check: func(t *testing.T, topo *topology.Topology) {
				s := topo.Services[0]
				if s.Quorum != 2 || s.SorryServer == nil || s.SorryServer.Address != netip.MustParseAddr("10.0.0.9") || s.SorryServer.Port != 5672 {
					t.Errorf("quorum %d, sorry server %+v", s.Quorum, s.SorryServer)
				}
				if n := topo.Director.Notify; n == nil || !slices.Equal(n.Command, []string{"/bin/true"}) {
					t.Errorf("director.notify %+v, want quorum_down's script", n)
				}
			},
			warnings: []string{
				"5|quorum_down /bin/true carried as director.notify|when amqp loses its quorum|act only when LVSDR_EVENT=quorum, LVSDR_STATE=lost and LVSDR_SERVICE=amqp",
				"6|hysteresis not carried",
			},
		},
		{
			name: "HTTP_GET with path, status codes and virtualhost",
			conf: `virtual_server 10.0.0.100 15672 {
  delay_loop 5
  lb_algo wrr
  lb_kind DR
  real_server 10.0.0.2 15672 {
    HTTP_GET {
      url {
        path /api/health/checks/port-listener/5672
        status_code 200 204
        digest 9b3a0c85a887a256d6939da88aabd8cd
      }
      virtualhost rabbit.example
      connect_timeout 3
      nb_get_retry 2
    }
  }
}
`,
			check: func(t *testing.T, topo *topology.Topology) {
				c := topo.Services[0].Checks[0]
				if c.Type != topology.CheckHTTP || c.HTTP == nil {
					t.Fatalf("check %+v", c)
				}
				if c.HTTP.Path != "/api/health/checks/port-listener/5672" || !slices.Equal(c.HTTP.ExpectStatus, []int{200, 204}) ||
					c.HTTP.Scheme != "http" || c.HTTP.Headers["Host"] != "rabbit.example" {
					t.Errorf("http %+v", c.HTTP)
				}
				// nb_get_retry is HTTP_GET's own (older) word for retry, and
				// keepalived's HTTP_GET waits 3s before a retry by default.
				if c.Retry != 2 || c.DelayBeforeRetry != 3*time.Second || c.ConnectTimeout != 3*time.Second {
					t.Errorf("check %+v", c)
				}
			},
			warnings: []string{"10|digest not carried"},
			absent:   []string{"nb_get_retry"},
		},
		{
			name: "SSL_GET without status_code",
			conf: `virtual_server 10.0.0.100 443 {
  delay_loop 5
  lb_algo wrr
  lb_kind DR
  real_server 10.0.0.2 443 {
    SSL_GET {
      url {
        path /healthz
      }
      connect_port 15671
    }
  }
}
`,
			check: func(t *testing.T, topo *topology.Topology) {
				// https on SSL_GET's connect_port, never plain http.
				if p := topo.Services[0].Checks[0].Port; p != 15671 {
					t.Errorf("check port %d, want connect_port 15671", p)
				}
				h := topo.Services[0].Checks[0].HTTP
				if h == nil || h.Scheme != "https" || !h.TLSInsecureSkipVerify || !slices.Contains(h.ExpectStatus, 204) || slices.Contains(h.ExpectStatus, 301) {
					t.Errorf("http %+v", h)
				}
			},
			warnings: []string{"6|SSL_GET", "tls_insecure_skip_verify"},
		},
		{
			name: "keepalived's defaults where lvsdr's differ",
			conf: `virtual_server 10.0.0.100 8080 {
  persistence_timeout
  real_server 10.0.0.2 8080 {
    TCP_CHECK {
    }
  }
}
`,
			check: func(t *testing.T, topo *topology.Topology) {
				s := topo.Services[0]
				if s.Scheduler != "wlc" || s.Forwarding != topology.NAT || s.PersistenceTimeout != 6*time.Minute || s.Protocol != topology.UDP {
					t.Errorf("service %+v", s)
				}
				if s.Checks[0].Interval != topology.DefaultInterval {
					t.Errorf("interval %s, want lvsdr's default", s.Checks[0].Interval)
				}
			},
			warnings: []string{"1|no lb_algo|wlc", "1|no lb_kind|nat", "1|no delay_loop|60s", "1|has no protocol: keepalived programs it as UDP, so it is carried as udp"},
		},
		{
			name: "settings inherited from virtual_server and real_server",
			conf: `virtual_server 10.0.0.100 80 {
  lb_algo wrr
  lb_kind DR
  delay_loop 7
  retry 4
  real_server 10.0.0.2 80 {
    delay_before_retry 2
    TCP_CHECK {
      connect_timeout 1
    }
  }
}
`,
			check: func(t *testing.T, topo *topology.Topology) {
				c := topo.Services[0].Checks[0]
				if c.Interval != 7*time.Second || c.Retry != 4 || c.DelayBeforeRetry != 2*time.Second || c.ConnectTimeout != time.Second {
					t.Errorf("check %+v", c)
				}
			},
		},
		{
			name: "nb_get_retry beside retry in TCP_CHECK",
			conf: `virtual_server 10.0.0.100 80 {
  delay_loop 5
  lb_algo wrr
  lb_kind DR
  real_server 10.0.0.2 80 {
    TCP_CHECK {
      retry 2
      nb_get_retry 5
    }
  }
}
`,
			check: func(t *testing.T, topo *topology.Topology) {
				if r := topo.Services[0].Checks[0].Retry; r != 2 {
					t.Errorf("retry %d, want the retry keyword's 2", r)
				}
			},
			warnings: []string{"8|nb_get_retry is not a TCP_CHECK keyword|retry 2 of line 7"},
		},
		{
			name: "real servers merged by address, subsets and weights",
			conf: `virtual_server 10.0.0.100 5672 {
  delay_loop 5
  lb_algo wrr
  lb_kind DR
  real_server 10.0.0.2 5672 {
    weight 2
    TCP_CHECK {
    }
  }
  real_server 10.0.0.3 5672 {
    TCP_CHECK {
    }
  }
  protocol TCP
}
virtual_server 10.0.0.100 5671 {
  delay_loop 5
  lb_algo wrr
  lb_kind DR
  real_server 10.0.0.3 5671 {
    weight 5
    TCP_CHECK {
    }
  }
  protocol TCP
}
`,
			check: func(t *testing.T, topo *topology.Topology) {
				if len(topo.RealServers) != 2 || topo.RealServers[0].Name != "rs_10_0_0_2" || topo.RealServers[0].Weight != 2 || topo.RealServers[1].Weight != 1 {
					t.Errorf("real servers %+v", topo.RealServers)
				}
				amqp, amqps := topo.Services[0], topo.Services[1]
				if amqp.Name != "amqp" || len(amqp.RealServers) != 2 {
					t.Errorf("amqp %+v", amqp)
				}
				if amqps.Name != "amqps" || !slices.Equal(amqps.RealServers, []string{"rs_10_0_0_3"}) {
					t.Errorf("amqps %+v", amqps)
				}
				// keepalived's weight per virtual_server is kept: 1 in
				// amqp, 5 in amqps.
				for _, s := range []topology.Service{amqp, amqps} {
					for _, rs := range topo.Members(s) {
						want := map[string]uint16{"amqp/rs_10_0_0_2": 2, "amqp/rs_10_0_0_3": 1, "amqps/rs_10_0_0_3": 5}[s.Name+"/"+rs.Name]
						if rs.Weight != want {
							t.Errorf("%s weighs %d in %s, want %d as in keepalived.conf", rs.Name, rs.Weight, s.Name, want)
						}
					}
				}
			},
			inYAML: []string{"    real_servers: [{name: rs_10_0_0_3, weight: 5}]\n", "  - {name: rs_10_0_0_3, address: 10.0.0.3, weight: 1}\n"},
			absent: []string{"weight"},
		},
		{
			name: "real servers of one service with different checks",
			conf: `virtual_server 10.0.0.100 80 {
  delay_loop 5
  lb_algo wrr
  lb_kind DR
  real_server 10.0.0.2 80 {
    TCP_CHECK {
      connect_timeout 3
    }
  }
  real_server 10.0.0.3 80 {
    TCP_CHECK {
      connect_timeout 9
    }
  }
  real_server 10.0.0.4 80 {
  }
}
`,
			check: func(t *testing.T, topo *topology.Topology) {
				s := topo.Services[0]
				if c := s.Checks[0].ConnectTimeout; c != 3*time.Second {
					t.Errorf("connect_timeout %s, want the first server's 3s", c)
				}
				if c := s.ChecksOf("rs_10_0_0_3"); len(c) != 1 || c[0].ConnectTimeout != 9*time.Second || c[0].Interval != 5*time.Second {
					t.Errorf("10.0.0.3's checks %+v, want the service's with connect_timeout 9s as an override", c)
				}
				if c := s.ChecksOf("rs_10_0_0_4"); c[0].ConnectTimeout != 3*time.Second {
					t.Errorf("10.0.0.4's checks %+v", c)
				}
			},
			warnings: []string{"15|10.0.0.4 has no checker|unchecked"},
			absent:   []string{"differs"},
		},
		{
			name: "several checkers on each real server, and one that differs in type",
			conf: `virtual_server 10.0.0.100 5672 {
  delay_loop 5
  lb_algo wrr
  lb_kind DR
  real_server 10.0.0.2 5672 {
    TCP_CHECK {
      connect_timeout 3
    }
    HTTP_GET {
      url {
        path /api/health/checks/port-listener/5672
      }
      connect_port 15672
    }
  }
  real_server 10.0.0.3 5672 {
    TCP_CHECK {
      connect_timeout 3
    }
    TCP_CHECK {
      connect_port 15672
    }
  }
}
`,
			check: func(t *testing.T, topo *topology.Topology) {
				c := topo.Services[0].Checks
				if len(c) != 2 || c[0].Name != "tcp" || c[0].Type != topology.CheckTCP || c[1].Name != "http" || c[1].Port != 15672 ||
					c[1].HTTP == nil || c[1].HTTP.Path != "/api/health/checks/port-listener/5672" {
					t.Errorf("checks %+v", c)
				}
				if len(topo.Services[0].Overrides) != 0 {
					t.Errorf("overrides %+v", topo.Services[0].Overrides)
				}
			},
			warnings: []string{"20|the tcp check of real_server 10.0.0.3 differs from that of real_server 10.0.0.2 (line 5) in more than its settings"},
		},
		{
			name: "a virtual_server without real servers is skipped, as keepalived skips it",
			conf: `virtual_server 10.0.0.100 80 {
  delay_loop 5
  lb_algo wrr
  lb_kind DR
  real_server 10.0.0.2 80 {
    TCP_CHECK {
    }
  }
  real_server 10.0.0.3 80 {
    TCP_CHECK {
    }
  }
}
virtual_server 10.0.0.100 81 {
  lb_algo wrr
  lb_kind DR
}
`,
			check: func(t *testing.T, topo *topology.Topology) {
				if len(topo.Services) != 1 {
					t.Errorf("services %+v, want port 80's only", topo.Services)
				}
			},
			warnings: []string{"14|virtual_server 10.0.0.100 81 skipped: it has no real_server, and keepalived ignores such a virtual_server too"},
		},
		{
			name: "no checker at all",
			conf: `virtual_server 10.0.0.100 80 {
  lb_algo wrr
  lb_kind DR
  real_server 10.0.0.2 80 {
  }
}
`,
			check: func(t *testing.T, topo *topology.Topology) {
				if c := topo.Services[0].Checks; len(c) != 0 {
					t.Errorf("checks %+v, want none: keepalived keeps unchecked servers in", c)
				}
			},
			absent: []string{"delay_loop"},
		},
		{
			name: "a checker lvsdr lacks",
			conf: `virtual_server 10.0.0.100 80 {
  delay_loop 5
  lb_algo wrr
  lb_kind DR
  real_server 10.0.0.2 80 {
    MISC_CHECK {
      misc_path /usr/local/bin/check
    }
  }
}
`,
			check: func(t *testing.T, topo *topology.Topology) {
				if c := topo.Services[0].Checks[0]; c.Type != topology.CheckTCP || c.Interval != 5*time.Second {
					t.Errorf("check %+v, want a tcp check", c)
				}
			},
			warnings: []string{"6|MISC_CHECK not carried", "1|none of its checkers"},
		},
		{
			name: "vrrp_instance, global_defs and keywords not carried",
			conf: `global_defs {
  router_id LVS_1
}
vrrp_instance VI_1 {
  state MASTER
  unicast_src_ip 10.0.0.1
  unicast_peer { 10.0.0.2 }
  interface bond0
  virtual_router_id 51
  virtual_ipaddress {
    10.0.0.100/24 dev bond0
  }
}
virtual_server 10.0.0.100 80 {
  delay_loop 5
  lb_algo wrr
  lb_kind DR
  quorum 1
  sorry_server 10.0.0.9 80
  ha_suspend
  real_server 10.0.0.3 8080 {
    notify_up /bin/up
    notify_down "/bin/down >/dev/null"
    TCP_CHECK {
      connect_port 8081
      bindto 10.0.0.1
    }
  }
  protocol TCP
}
virtual_server fwmark 3 {
}
`,
			check: func(t *testing.T, topo *topology.Topology) {
				if topo.Director.Interface != "bond0" {
					t.Errorf("director.interface %q, want vrrp's bond0", topo.Director.Interface)
				}
				if h := topo.Director.HA; h == nil || h.VRID != 51 || len(h.Directors) != 2 || h.Directors[0].Name != "LVS_1" {
					t.Errorf("director.ha %+v, want VRID 51 with LVS_1 and its peer", h)
				}
				if len(topo.Services) != 1 || topo.Services[0].Checks[0].Port != 8081 {
					t.Errorf("services %+v", topo.Services)
				}
			},
			warnings: []string{
				"4|the priority of the peer 10.0.0.2 is in its own keepalived.conf|PLACEHOLDER",
				"11|virtual_ipaddress 10.0.0.100/24: lvsdr binds the VIP as 10.0.0.100/32, which brings no route|made 10.0.0.0/24 reachable through bond0|a connected route, with the VIP as a source address",
				"20|ha_suspend in virtual_server not carried",
				"21|port 8080 not carried",
				"22|notify_up /bin/up not carried|2 different scripts|when real server rs_10_0_0_3 of tcp_80 comes up|LVSDR_EVENT=check, LVSDR_STATE=up",
				"23|notify_down /bin/down >/dev/null not carried|LVSDR_STATE=down", "23|without a shell",
				"26|bindto in TCP_CHECK not carried",
				"31|virtual_server fwmark 3 skipped",
			},
			absent: []string{"director.interface set to", "router_id", "virtual_router_id", "not among the vrrp", "global_defs", "state"},
		},
		{
			name: "one notify script for every event becomes director.notify",
			conf: `virtual_server 10.0.0.100 80 {
  lb_algo wrr
  lb_kind DR
  quorum_up /bin/true
  real_server 10.0.0.2 80 {
    notify_up /bin/true
    notify_down "/bin/true" root
  }
  real_server 10.0.0.3 80 {
    notify_down /bin/true
  }
  protocol TCP
}
`,
			check: func(t *testing.T, topo *topology.Topology) {
				if n := topo.Director.Notify; n == nil || !slices.Equal(n.Command, []string{"/bin/true"}) {
					t.Errorf("director.notify %+v, want /bin/true", n)
				}
			},
			warnings: []string{
				"4|quorum_up /bin/true carried as director.notify|when tcp_80 regains its quorum|LVSDR_EVENT=quorum, LVSDR_STATE=regained and LVSDR_SERVICE=tcp_80",
				"6|notify_up /bin/true carried as director.notify|with only the arguments written after it|no arguments added|LVSDR_EVENT=check, LVSDR_STATE=up, LVSDR_SERVICE=tcp_80 and LVSDR_NODE=rs_10_0_0_2",
				"7|notify_down /bin/true carried|LVSDR_STATE=down",
				"7|notify_down: running it as user root not carried",
				"10|notify_down /bin/true carried",
			},
			absent: []string{"notify_up not carried"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			topo, _, res := convert(t, tt.conf)
			if tt.check != nil {
				tt.check(t, topo)
			}
			checkWarnings(t, res, tt.warnings, tt.absent, tt.inYAML)
			if t.Failed() {
				t.Logf("YAML:\n%s", res.YAML)
			}
		})
	}
}

func formatWarnings(ws []Warning) string {
	var b strings.Builder
	for _, w := range ws {
		fmt.Fprintf(&b, "  %d: %s\n", w.Line, w.Message)
	}
	return b.String()
}

// A refused RabbitMQ endpoint is still written, and validation says why it
// cannot be used, so that the operator sees it rather than a silent swap.
func TestRefusedPathIsReported(t *testing.T) {
	conf := `virtual_server 10.0.0.100 15672 {
  delay_loop 5
  lb_algo wrr
  lb_kind DR
  real_server 10.0.0.2 15672 {
    HTTP_GET {
      url {
        path /api/aliveness-test/%2F
        status_code 200
      }
    }
  }
}
`
	res, err := Convert("test.conf", []byte(conf))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(res.YAML), "path: /api/aliveness-test/%2F") {
		t.Errorf("the path is not in the YAML:\n%s", res.YAML)
	}
	if len(res.Problems) != 1 || !strings.Contains(res.Problems[0].Message, "/api/aliveness-test") {
		t.Fatalf("problems %v, want the aliveness-test refusal", res.Problems)
	}
	if line := strings.Split(string(res.YAML), "\n")[res.Problems[0].Line-1]; !strings.Contains(line, "path:") {
		t.Errorf("the problem's line %d is %q, not the path", res.Problems[0].Line, line)
	}
}

func TestConvertErrors(t *testing.T) {
	tests := []struct {
		name, conf string
		want       string
	}{
		{
			name: "two VIPs",
			conf: "virtual_server 10.0.0.100 80 {\n  real_server 10.0.0.2 80 {\n  }\n}\nvirtual_server 10.0.0.101 80 {\n  real_server 10.0.0.2 80 {\n  }\n}\n",
			want: "test.conf:5: virtual_server 10.0.0.101: lvsdr carries one VIP per topology, and line 1 declared 10.0.0.100",
		},
		{
			name: "no virtual_server",
			conf: "global_defs {\n}\nvirtual_server fwmark 1 {\n}\n",
			want: "test.conf:1: no virtual_server IP PORT block to convert",
		},
		{
			name: "syntax error carries the file",
			conf: "virtual_server 10.0.0.100 80 {\n}\n}\n",
			want: "test.conf:3: unbalanced '}'",
		},
		{
			name: "bad real server address",
			conf: "virtual_server 10.0.0.100 80 {\n  real_server node1 80 {\n  }\n}\n",
			want: `test.conf:2: real_server: "node1" is not an IP address`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := Convert("test.conf", []byte(tt.conf))
			if err == nil {
				t.Fatalf("no error; YAML:\n%s", res.YAML)
			}
			if !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("error %q, want it to start with %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q spans several lines", err)
			}
		})
	}
}

// checkWarnings asserts the warnings of a conversion: each of want,
// "line|fragment|fragment..." (line 0 or none for any line), is there;
// none holds a fragment of absent; each is a comment of the YAML too; and
// the YAML holds every text of inYAML.
func checkWarnings(t *testing.T, res *Result, want, absent, inYAML []string) {
	t.Helper()
	ws := res.Warnings
	for _, w := range want {
		parts := strings.Split(w, "|")
		line := 0
		if n, err := strconv.Atoi(parts[0]); err == nil {
			line, parts = n, parts[1:]
		}
		if !warned(ws, line, parts...) {
			t.Errorf("no warning on line %d with %q; got:\n%s", line, parts, formatWarnings(ws))
		}
	}
	// Every warning travels in the YAML too.
	for _, w := range ws {
		if line := fmt.Sprintf("# warning: %s:%d: %s\n", w.File, w.Line, w.Message); !strings.Contains(string(res.YAML), line) {
			t.Errorf("the YAML lacks the comment %q", line)
		}
	}
	for _, line := range inYAML {
		if !strings.Contains(string(res.YAML), line) {
			t.Errorf("the YAML lacks %q", line)
		}
	}
	for _, a := range absent {
		if warned(ws, 0, a) {
			t.Errorf("a warning holds %q:\n%s", a, formatWarnings(ws))
		}
	}
}

// director.interface is where keepalived puts the VIP: the dev of its
// virtual_ipaddress line, else its vrrp_instance's interface.
func TestDirectorInterface(t *testing.T) {
	tests := []struct {
		name, addresses, want string
	}{
		// The /24 is another address's: the VIP's has none, so /32.
		{"the dev of the VIP, not the VRRP interface", "10.0.0.50/24 dev eth1\n    10.0.0.100 dev bond0 label bond0:vip", "bond0"},
		{"the VRRP interface when the VIP has no dev", "10.0.0.100/32", "eth1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conf := "vrrp_instance VI_1 {\n  interface eth1\n  virtual_ipaddress {\n    " + tt.addresses + "\n  }\n}\n" +
				"virtual_server 10.0.0.100 80 {\n  protocol TCP\n  lb_kind NAT\n  real_server 10.0.0.2 80 {\n  }\n}\n"
			topo, _, res := convert(t, conf)
			if topo.Director.Interface != tt.want {
				t.Errorf("director.interface %q, want %q", topo.Director.Interface, tt.want)
			}
			checkWarnings(t, res, nil, []string{"binds the VIP as", "director.interface set to"}, nil)
		})
	}
}
