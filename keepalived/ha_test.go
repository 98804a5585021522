package keepalived

import (
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lvsdr/lvsdr/topology"
)

// haService is a virtual_server of the VIP 10.0.0.100, appended to the
// VRRP settings of each test.
const haService = `virtual_server 10.0.0.100 5672 {
  protocol TCP
  lb_algo wrr
  lb_kind DR
  real_server 10.0.0.2 5672 {
  }
}
`

// unicastPair ends a vrrp_instance of the VIP whose director is 10.0.0.10,
// with 10.0.0.11 as its unicast peer, then adds haService.
const unicastPair = `  unicast_src_ip 10.0.0.10
  unicast_peer {
    10.0.0.11
  }
  virtual_ipaddress {
    10.0.0.100
  }
}
` + haService

// pair is the directors of unicastPair with their priorities.
func pair(self, peer uint8) []topology.HADirector {
	return []topology.HADirector{
		{Name: "lb_10_0_0_10", Address: netip.MustParseAddr("10.0.0.10"), Priority: self},
		{Name: "lb_10_0_0_11", Address: netip.MustParseAddr("10.0.0.11"), Priority: peer},
	}
}

func TestHA(t *testing.T) {
	tests := []struct {
		name string
		conf string
		opts Options
		want *topology.HA // nil: no director.ha
		// warnings, absent and inYAML as in TestConvert.
		warnings, absent, inYAML []string
		// problems are fragments of the validation's problems, in order.
		problems []string
	}{
		{
			name: "everything keepalived.conf says",
			conf: `global_defs {
  router_id lb1
  vrrp_version 3
  lvs_sync_daemon bond0 VI_1 id 7 maxlen 1400
  vrrp_garp_master_repeat 3
}
vrrp_instance VI_1 {
  state BACKUP
  interface bond0
  virtual_router_id 51
  priority 150
  advert_int 0.1
  nopreempt
  preempt_delay 5
  unicast_src_ip 10.0.0.10
  unicast_peer {
    10.0.0.11
  }
  authentication {
    auth_type PASS
    auth_pass secret
  }
  track_script {
    chk_rabbit
  }
  notify_master /bin/true
  garp_master_delay 2
  virtual_ipaddress {
    10.0.0.100/32 dev bond0
    10.0.0.200/32 dev bond0
  }
  lvs_sync_daemon_interface eth9
}
` + haService,
			opts: Options{Peers: map[netip.Addr]int{netip.MustParseAddr("10.0.0.11"): 100}},
			want: &topology.HA{VRID: 51, Version: 3, AdvertInterval: 100 * time.Millisecond, Unicast: true, Preempt: false,
				GARPRepeat: 3, GARPDelay: 2 * time.Second, ConnectionSync: true, SyncID: 7,
				Directors: []topology.HADirector{
					{Name: "lb1", Address: netip.MustParseAddr("10.0.0.10"), Priority: 150},
					{Name: "lb_10_0_0_11", Address: netip.MustParseAddr("10.0.0.11"), Priority: 100},
				}},
			warnings: []string{
				"4|lvs_sync_daemon: maxlen 1400 not carried",
				"7|virtual_ipaddress lists 10.0.0.200/32 besides the VIP|both become master",
				"14|preempt_delay not carried: with nopreempt",
				"19|authentication not carried: VRRPv3 has none",
				"23|track_script not carried",
				"26|notify_master /bin/true carried as director.notify|when instance VI_1 becomes MASTER|act only when LVSDR_EVENT=role and LVSDR_STATE=master",
				"32|lvs_sync_daemon_interface ignored: global_defs' lvs_sync_daemon wins",
			},
			absent: []string{"PLACEHOLDER", "state", "garp", "vrrp_version", "router_id", "own address", "multicast"},
		},
		{
			name: "keepalived's defaults; a peer's priority is a loud placeholder",
			conf: `vrrp_instance VI_1 {
  interface eth1
  virtual_router_id 7
` + unicastPair,
			want: &topology.HA{VRID: 7, Version: 2, AdvertInterval: time.Second, Unicast: true, Preempt: true,
				Directors: pair(100, 100)},
			warnings: []string{"1|the priority of the peer 10.0.0.11 is in its own keepalived.conf, not this one: 100 is written as a PLACEHOLDER|--peer 10.0.0.11=PRIORITY"},
			inYAML: []string{
				"    vrid: 7\n    version: 2\n    advert_interval: 1s\n    unicast: true\n    preempt: true\n",
				"      - {name: lb_10_0_0_11, address: 10.0.0.11, priority: 100} # PLACEHOLDER priority: set the peer's own, from its keepalived.conf\n",
			},
		},
		{
			name: "multicast: the directors come from the options",
			conf: `vrrp_instance VI_1 {
  interface eth1
  virtual_router_id 7
  priority 90
  virtual_ipaddress {
    10.0.0.100 dev bond0
  }
  lvs_sync_daemon_interface bond0
  authentication {
    auth_type PASS
  }
  notify /bin/true
}
` + haService,
			opts: Options{DirectorAddress: netip.MustParseAddr("10.0.0.12"),
				Peers: map[netip.Addr]int{netip.MustParseAddr("10.0.0.11"): 120, netip.MustParseAddr("10.0.0.10"): 150}},
			want: &topology.HA{VRID: 7, Version: 2, AdvertInterval: time.Second, Preempt: true, ConnectionSync: true, SyncID: 7,
				Directors: []topology.HADirector{
					{Name: "lb_10_0_0_12", Address: netip.MustParseAddr("10.0.0.12"), Priority: 90},
					{Name: "lb_10_0_0_10", Address: netip.MustParseAddr("10.0.0.10"), Priority: 150},
					{Name: "lb_10_0_0_11", Address: netip.MustParseAddr("10.0.0.11"), Priority: 120},
				}},
			warnings: []string{
				"1|vrrp_instance VI_1 runs on eth1, and lvsdr sends and receives VRRP on director.interface, bond0",
				"9|authentication not carried: VRRPv2's authentication is gone|discards lvsdr's adverts and both become master",
				"12|notify /bin/true carried as director.notify|on every VRRP state change of instance VI_1, adding INSTANCE VI_1 and the new state|act only when LVSDR_EVENT=role, with the new role in LVSDR_STATE",
			},
			absent: []string{"PLACEHOLDER", "unicast_peer", "own address", "lvs_sync_daemon"},
		},
		{
			name: "multicast without options: what is missing is said, and validation refuses it",
			conf: `vrrp_instance VI_1 {
  interface eth1
  virtual_router_id 7
  virtual_ipaddress {
    10.0.0.100
  }
}
` + haService,
			warnings: []string{
				"1|vrrp_instance VI_1 does not say this director's own address (no unicast_src_ip)|--director-address",
				"1|vrrp_instance VI_1 does not name the other directors (VRRP by multicast)|--peer ADDRESS=PRIORITY",
			},
			inYAML:   []string{"      - {name: this_director, priority: 100} # CHECK: add this director's address on director.interface\n"},
			problems: []string{"address is required", "lists 1 director"},
		},
		{
			name: "keepalived's rules: state MASTER is priority 255, preempts at once; VRRPv2 rounds the interval",
			conf: `vrrp_instance VI_1 {
  state MASTER
  interface eth1
  virtual_router_id 9
  advert_int 1.6
  nopreempt
  preempt_delay 3
` + unicastPair,
			opts: Options{Peers: map[netip.Addr]int{netip.MustParseAddr("10.0.0.11"): 100}},
			want: &topology.HA{VRID: 9, Version: 2, AdvertInterval: 2 * time.Second, Unicast: true, Preempt: true,
				Directors: pair(255, 100)},
			warnings: []string{
				"5|advert_int 1.6s carried as 2s: VRRPv2 counts whole seconds, and keepalived rounds it too",
				"6|nopreempt not carried: keepalived ignores it with state MASTER",
				"7|preempt_delay not carried: keepalived ignores it with state MASTER",
			},
		},
		{
			name: "only the VIP's instance is carried",
			conf: `vrrp_instance OTHER {
  interface eth1
  virtual_router_id 8
  virtual_ipaddress {
    10.0.0.150
  }
}
vrrp_instance NO_ID {
  interface eth1
  virtual_ipaddress {
    10.0.0.100
  }
}
global_defs {
  router_id lb1
}
` + haService,
			warnings: []string{
				"1|vrrp_instance OTHER skipped: its virtual_ipaddress does not hold the VIP 10.0.0.100",
				"8|vrrp_instance NO_ID has no virtual_router_id, which keepalived requires: not carried as director.ha",
				"15|router_id not carried: no vrrp_instance becomes director.ha",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := tt.opts.Convert("test.conf", []byte(tt.conf))
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				if t.Failed() {
					t.Logf("warnings:\n%s\nYAML:\n%s", formatWarnings(res.Warnings), res.YAML)
				}
			}()
			if len(res.Problems) != len(tt.problems) {
				t.Fatalf("problems %v, want %q", res.Problems, tt.problems)
			}
			for i, p := range tt.problems {
				if !strings.Contains(res.Problems[i].Message, p) {
					t.Errorf("problem %q, want %q", res.Problems[i].Message, p)
				}
			}
			if len(tt.problems) == 0 {
				topo := parseTopology(t, res)
				switch h := topo.Director.HA; {
				case tt.want == nil && h != nil:
					t.Errorf("director.ha %+v, want none", h)
				case tt.want != nil && h == nil:
					t.Errorf("no director.ha, want %+v", tt.want)
				case tt.want != nil:
					want := *tt.want
					// The topology's defaults, which the conversion leaves be.
					want.SyncGroup, want.SyncPort = topology.DefaultSyncGroup, topology.DefaultSyncPort
					if want.GARPRepeat == 0 {
						want.GARPRepeat = topology.DefaultGARPRepeat
					}
					if want.GARPDelay == 0 {
						want.GARPDelay = topology.DefaultGARPDelay
					}
					if want.SyncID == 0 {
						want.SyncID = want.VRID
					}
					got := *h
					if !slices.Equal(got.Directors, want.Directors) {
						t.Errorf("directors\n got %+v\nwant %+v", got.Directors, want.Directors)
					}
					got.Directors, want.Directors = nil, nil
					if !reflect.DeepEqual(got, want) {
						t.Errorf("director.ha\n got %+v\nwant %+v", got, want)
					}
				}
			}
			checkWarnings(t, res, tt.warnings, tt.absent, tt.inYAML)
		})
	}
}

func TestParseOptions(t *testing.T) {
	o, err := ParseOptions("10.0.0.10", []string{"10.0.0.11=150", "10.0.0.12=1"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[netip.Addr]int{netip.MustParseAddr("10.0.0.11"): 150, netip.MustParseAddr("10.0.0.12"): 1}
	if o.DirectorAddress != netip.MustParseAddr("10.0.0.10") || !reflect.DeepEqual(o.Peers, want) {
		t.Errorf("options %+v", o)
	}
	for _, bad := range []struct {
		address string
		peers   []string
		want    string
	}{
		{"lb1", nil, `--director-address "lb1" is not an IPv4 address`},
		{"", []string{"10.0.0.11"}, `--peer "10.0.0.11": want ADDRESS=PRIORITY`},
		{"", []string{"10.0.0.11=256"}, `--peer "10.0.0.11=256": want ADDRESS=PRIORITY`},
		{"", []string{"10.0.0.11=0"}, `--peer "10.0.0.11=0"`},
		{"", []string{"lb2=100"}, `--peer "lb2=100"`},
		{"", []string{"10.0.0.11=100", "10.0.0.11=90"}, "--peer 10.0.0.11 given twice"},
	} {
		if _, err := ParseOptions(bad.address, bad.peers); err == nil || !strings.HasPrefix(err.Error(), bad.want) {
			t.Errorf("ParseOptions(%q, %q): %v, want %q", bad.address, bad.peers, err, bad.want)
		}
	}
}
