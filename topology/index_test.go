package topology

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// generated writes a valid topology of services × perService real servers
// in one of two shapes. own: every service has real servers of its own (the
// keepalived user's 1,000 ports × 10 servers). shared: every service has
// the same few nodes (RabbitMQ's shape), checked through the VIP.
func generated(shape string, services, perService int) []byte {
	var b strings.Builder
	b.WriteString("vip: 10.255.255.254\ndirector:\n  interface: eth0\nservices:\n")
	servers := perService
	if shape == "own" {
		servers = services * perService
	}
	for s := range services {
		fmt.Fprintf(&b, "  - name: s%d\n    port: %d\n", s, 1+s)
		switch {
		case shape == "own":
			b.WriteString("    check: {type: none}\n    real_servers: [")
			for r := range perService {
				if r > 0 {
					b.WriteString(", ")
				}
				fmt.Fprintf(&b, "r%d", s*perService+r)
			}
			b.WriteString("]\n")
		case s%2 == 0:
			// Every other service checks through the VIP, so that CheckMark
			// has both answers to give.
			b.WriteString("    check: {type: tcp, through_vip: true}\n")
		}
	}
	b.WriteString("real_servers:\n")
	for r := range servers {
		fmt.Fprintf(&b, "  - {name: r%d, address: 10.%d.%d.%d}\n", r, 1+r/65536, r/256%256, r%256)
	}
	b.WriteString("realserver:\n  interface: eth0\n")
	return []byte(b.String())
}

// linear holds the definitions of the lookups, as scans.
type linear struct{ t *Topology }

func (l linear) realServer(name string) (RealServer, bool) {
	i := slices.IndexFunc(l.t.RealServers, func(rs RealServer) bool { return rs.Name == name })
	if i < 0 {
		return RealServer{}, false
	}
	return l.t.RealServers[i], true
}

func (l linear) service(name string) (Service, bool) {
	i := slices.IndexFunc(l.t.Services, func(s Service) bool { return s.Name == name })
	if i < 0 {
		return Service{}, false
	}
	return l.t.Services[i], true
}

// agree fails when an indexed lookup of t differs from its scan.
func agree(t *testing.T, topo *Topology, names []string) {
	t.Helper()
	l := linear{topo}
	for _, name := range names {
		mark, ok := topo.CheckMark(name)
		wantMark, wantOK := topo.checkMarkScan(name)
		if mark != wantMark || ok != wantOK {
			t.Errorf("CheckMark(%q) = %#x %v, the scan says %#x %v", name, mark, ok, wantMark, wantOK)
		}
		rs, ok := topo.RealServerByName(name)
		wantRS, wantOK := l.realServer(name)
		if rs != wantRS || ok != wantOK {
			t.Errorf("RealServerByName(%q) = %+v %v, the scan says %+v %v", name, rs, ok, wantRS, wantOK)
		}
		s, ok := topo.ServiceByName(name)
		wantS, wantOK := l.service(name)
		if s.Name != wantS.Name || s.Port != wantS.Port || ok != wantOK {
			t.Errorf("ServiceByName(%q) = %v %v, the scan says %v %v", name, s, ok, wantS, wantOK)
		}
	}
	for _, s := range topo.Services {
		var want []RealServer
		for _, name := range s.RealServers {
			if rs, ok := l.realServer(name); ok {
				want = append(want, rs)
			}
		}
		if got := topo.Members(s); !slices.Equal(got, want) {
			t.Errorf("Members(%s) = %v, want %v", s.Name, got, want)
		}
	}
}

func TestIndexedLookupsAgreeWithScans(t *testing.T) {
	for _, shape := range []string{"own", "shared"} {
		t.Run(shape, func(t *testing.T) {
			topo, err := Parse("g.yaml", generated(shape, 20, 5))
			if err != nil {
				t.Fatal(err)
			}
			if topo.currentIndex() == nil {
				t.Fatal("Parse left no index")
			}
			names := []string{"nobody", ""}
			for _, rs := range topo.RealServers {
				names = append(names, rs.Name)
			}
			for _, s := range topo.Services {
				names = append(names, s.Name)
			}
			agree(t, topo, names)
			marks := 0
			for _, rs := range topo.RealServers {
				if _, ok := topo.CheckMark(rs.Name); ok {
					marks++
				}
			}
			if want := map[string]int{"own": 0, "shared": 5}[shape]; marks != want {
				t.Errorf("%d real servers have a check mark, want %d", marks, want)
			}

			// Edits in place, then Reindex: the index follows.
			topo.Services[1].Checks = []Check{{Name: "tcp", Type: CheckTCP, ThroughVIP: true}}
			topo.Services[1].RealServers = topo.Services[1].RealServers[:2]
			topo.Reindex()
			agree(t, topo, names)

			// Slices replaced or resized without Reindex: scans, never a
			// stale answer.
			for _, edit := range []func(*Topology){
				func(t *Topology) { t.Services = t.Services[:1] },
				func(t *Topology) { t.RealServers = t.RealServers[:len(t.RealServers)-1] },
				func(t *Topology) { t.RealServers = slices.Delete(slices.Clone(t.RealServers), 0, 1) },
				func(t *Topology) { t.Services = slices.Clone(t.Services)[1:] },
				// The same lengths, other slices: positions moved.
				func(t *Topology) { t.RealServers = slices.Clone(t.RealServers); slices.Reverse(t.RealServers) },
				func(t *Topology) { t.Services = slices.Clone(t.Services); slices.Reverse(t.Services) },
			} {
				next := *topo
				edit(&next)
				if next.currentIndex() != nil {
					t.Fatal("an index of other slices is still used")
				}
				agree(t, &next, names)
			}
		})
	}
}

func TestIndexOfATopologyBuiltByHand(t *testing.T) {
	topo := &Topology{
		Director:    Director{CheckMarkBase: 100},
		RealServers: []RealServer{{Name: "a"}, {Name: "b"}},
		Services:    []Service{{Name: "s", RealServers: []string{"b"}, Checks: []Check{{ThroughVIP: true}}}},
	}
	if mark, ok := topo.CheckMark("b"); mark != 102 || !ok {
		t.Errorf("without an index: CheckMark(b) = %d %v, want 102 true", mark, ok)
	}
	topo.Reindex()
	if mark, ok := topo.CheckMark("b"); mark != 102 || !ok {
		t.Errorf("indexed: CheckMark(b) = %d %v, want 102 true", mark, ok)
	}
	if _, ok := topo.CheckMark("a"); ok {
		t.Error("indexed: a has a check mark")
	}
	// The base is read at the lookup, as the scan does.
	topo.Director.CheckMarkBase = 200
	if mark, _ := topo.CheckMark("b"); mark != 202 {
		t.Errorf("after a new base: CheckMark(b) = %d, want 202", mark)
	}
}

// BenchmarkParse and BenchmarkLookups report ns per real server, so that a
// cost growing faster than the file shows as a growing figure:
// go test -run '^$' -bench . ./topology/
// BenchmarkParse parses a file whole (parseWhole), in parallel pieces
// (Parse, as a start does), and again after one weight changed with the
// pieces of the last parse at hand (a Loader, as a reload does).
func BenchmarkParse(b *testing.B) {
	for _, size := range []int{1000, 10000, 40000} {
		for _, shape := range []string{"own", "shared"} {
			data, servers := generated(shape, size/10, 10), size
			if shape == "shared" {
				data, servers = generated(shape, size/5, 5), 5
			}
			// A weight in the middle of the real servers, as an edit.
			at := bytes.Index(data, []byte(fmt.Sprintf("{name: r%d,", servers/2)))
			edited := slices.Concat(data[:at], []byte("{weight: 7, "), data[at+1:])
			ways := []struct {
				name  string
				parse func(i int) (*Topology, error)
			}{
				{"whole", func(int) (*Topology, error) { return parseWhole("g.yaml", data) }},
				{"pieces", func(int) (*Topology, error) { return Parse("g.yaml", data) }},
				{"reload", func() func(int) (*Topology, error) {
					l := NewLoader()
					return func(i int) (*Topology, error) {
						if i%2 == 0 {
							return l.Parse("g.yaml", edited)
						}
						return l.Parse("g.yaml", data)
					}
				}()},
			}
			for _, way := range ways {
				b.Run(fmt.Sprintf("%s/%s/%d", way.name, shape, size), func(b *testing.B) {
					b.SetBytes(int64(len(data)))
					for i := 0; b.Loop(); i++ {
						if _, err := way.parse(i); err != nil {
							b.Fatal(err)
						}
					}
					b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(size), "ns/realserver")
				})
			}
		}
	}
}

// BenchmarkLookups runs what the desired table does once per reconcile:
// every service's members and, for each, its check mark; plus a lookup by
// name of every real server and service.
func BenchmarkLookups(b *testing.B) {
	for _, size := range []int{1000, 10000, 40000} {
		for _, shape := range []string{"own", "shared"} {
			data := generated(shape, size/10, 10)
			if shape == "shared" {
				data = generated(shape, size/5, 5)
			}
			topo, err := Parse("g.yaml", data)
			if err != nil {
				b.Fatal(err)
			}
			b.Run(fmt.Sprintf("%s/%d", shape, size), func(b *testing.B) {
				for b.Loop() {
					for _, s := range topo.Services {
						if _, ok := topo.ServiceByName(s.Name); !ok {
							b.Fatal(s.Name)
						}
						for _, rs := range topo.Members(s) {
							topo.CheckMark(rs.Name)
							topo.RealServerByName(rs.Name)
						}
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(size), "ns/realserver")
			})
		}
	}
}
