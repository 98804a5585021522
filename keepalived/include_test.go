package keepalived

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lvsdr/lvsdr/topology"
)

// writeTree writes files (path → content) under a new directory and returns
// it.
func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// An include is read in its place, as keepalived's reader does: relative
// to the including file's directory, with glob(3)'s braces and sorting, no
// dot files, and inside a block as well as at the top.
func TestInclude(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"keepalived.conf": `include conf.d/*.conf
virtual_server 10.0.0.100 5672 {
  lb_algo wrr
  lb_kind NAT
  include rs/{one,two}.conf
}
include missing/*.conf
`,
		// Read in name order, a before b; the dot file and the directory
		// are left out, as glob(3) leaves them.
		"conf.d/b.conf":         "virtual_server 10.0.0.100 5671 {\n  lb_algo rr\n  lb_kind NAT\n  real_server 10.0.0.2 5671 {\n  }\n}\n",
		"conf.d/a.conf":         "global_defs {\n  router_id A\n}\ninclude ../more/extra.conf\n",
		"conf.d/.hidden.conf":   "virtual_server 10.0.0.100 9999 {\n}\n",
		"conf.d/sub.conf/x":     "",
		"more/extra.conf":       "static_ipaddress {\n}\n",
		"rs/one.conf":           "real_server 10.0.0.2 5672 {\n  weight 2\n}\n",
		"rs/two.conf":           "real_server 10.0.0.3 5672 {\n  notify_up /bin/true\n  bogus 1\n}\n",
		"rs/three.conf":         "real_server 10.0.0.4 5672 {\n}\n",
		"rs/not-included.conf2": "",
	})
	// keepalived skips an executable file, matched or not.
	exe := filepath.Join(dir, "conf.d/c.conf")
	if err := os.WriteFile(exe, []byte("virtual_server 10.0.0.100 6666 {\n  real_server 10.0.0.2 6666 {\n  }\n}\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	main := filepath.Join(dir, "keepalived.conf")
	data, err := os.ReadFile(main)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Convert(main, data)
	if err != nil {
		t.Fatalf("convert: %v", err)
	}
	topo := parseTopology(t, res)
	var ports []uint16
	for _, s := range topo.Services {
		ports = append(ports, s.Port)
	}
	// b.conf's service comes before keepalived.conf's own: it is included
	// on line 1.
	if !slices.Equal(ports, []uint16{5671, 5672}) {
		t.Errorf("service ports %v, want [5671 5672]: b.conf's, then keepalived.conf's", ports)
	}
	var addrs []string
	for _, rs := range topo.RealServers {
		addrs = append(addrs, rs.Address.String())
	}
	if !slices.Equal(addrs, []string{"10.0.0.2", "10.0.0.3"}) {
		t.Errorf("real servers %v, want rs/one.conf's and rs/two.conf's only", addrs)
	}
	// Warnings name the included file and its line, in reading order.
	want := []struct{ file, fragment string }{
		{"conf.d/a.conf", "router_id not carried: no vrrp_instance becomes director.ha"},
		{"more/extra.conf", "static_ipaddress block skipped"},
		{"keepalived.conf", "conf.d/c.conf skipped: keepalived reads no file that is executable"},
		{"rs/two.conf", "bogus in real_server not carried"},
		{"keepalived.conf", "include missing/*.conf matches no file"},
	}
	last := -1
	for _, w := range want {
		i := slices.IndexFunc(res.Warnings, func(got Warning) bool {
			return got.File == filepath.Join(dir, w.file) && strings.Contains(got.Message, w.fragment)
		})
		if i < 0 {
			t.Errorf("no warning in %s with %q:\n%s", w.file, w.fragment, formatWarnings(res.Warnings))
			continue
		}
		if i < last {
			t.Errorf("warning %q comes before an earlier file's: not in reading order:\n%s", w.fragment, formatWarnings(res.Warnings))
		}
		last = i
	}
	for _, w := range res.Warnings {
		if strings.Contains(w.Message, "9999") {
			t.Errorf("the dot file was read: %s", w.Message)
		}
	}
}

func TestIncludeLoop(t *testing.T) {
	dir := writeTree(t, map[string]string{"k.conf": "include k.conf\n"})
	main := filepath.Join(dir, "k.conf")
	_, err := Convert(main, []byte("include k.conf\n"))
	if err == nil || !strings.Contains(err.Error(), "nested more than 16 deep") {
		t.Fatalf("error %v, want the nesting bound", err)
	}
	if !strings.HasPrefix(err.Error(), main+":1: ") {
		t.Errorf("error %q does not start with the include's FILE:LINE", err)
	}
}

func TestExpandBraces(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"a.conf", []string{"a.conf"}},
		{"{a,b}.conf", []string{"a.conf", "b.conf"}},
		{"x{a,b{c,d}}y", []string{"xay", "xbcy", "xbdy"}},
		{"{a,b}{1,2}", []string{"a1", "a2", "b1", "b2"}},
		{"open{a,b", []string{"open{a,b"}},
		{"empty{}", []string{"empty{}"}},
		{`esc\{a,b}`, []string{`esc\{a,b}`}},
	}
	for _, tt := range tests {
		if got := expandBraces(tt.in); !slices.Equal(got, tt.want) {
			t.Errorf("expandBraces(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// parseTopology validates a conversion's YAML as the director would.
func parseTopology(t *testing.T, res *Result) *topology.Topology {
	t.Helper()
	if len(res.Problems) > 0 {
		t.Fatalf("the converted topology is invalid: %v\n%s", res.Problems, res.YAML)
	}
	topo, err := topology.Parse("out.yaml", res.YAML)
	if err != nil {
		t.Fatalf("topology.Parse: %v\n%s", err, res.YAML)
	}
	return topo
}
