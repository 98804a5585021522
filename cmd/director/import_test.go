package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runImport runs director import-keepalived with args and returns its
// stderr and error.
func runImport(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := importKeepalivedCommand()
	var stdout, stderr bytes.Buffer
	cmd.SetOut(&stdout)
	cmd.SetErr(&stderr)
	cmd.SetArgs(args)
	err := cmd.Execute()
	return stderr.String(), err
}

// -o never replaces a file, perhaps the topology in force, unless forced.
func TestImportKeepalivedOutputNotOverwritten(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "keepalived.conf")
	out := filepath.Join(dir, "topology.yaml")
	data := "virtual_server 10.0.0.100 80 {\n  lb_algo wrr\n  lb_kind NAT\n  real_server 10.0.0.2 80 {\n  }\n}\n"
	if err := os.WriteFile(conf, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(out, []byte("in force\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	_, err := runImport(t, conf, "-o", out)
	if err == nil || !strings.Contains(err.Error(), "exists: not overwritten (add --force to replace it)") {
		t.Fatalf("error %v, want a refusal to overwrite", err)
	}
	if got, _ := os.ReadFile(out); string(got) != "in force\n" {
		t.Fatalf("the existing file was changed to:\n%s", got)
	}

	if stderr, err := runImport(t, conf, "-o", out, "--force"); err != nil {
		t.Fatalf("with --force: %v\n%s", err, stderr)
	}
	got, _ := os.ReadFile(out)
	if !strings.Contains(string(got), "vip: 10.0.0.100") {
		t.Fatalf("--force did not write the topology:\n%s", got)
	}

	fresh := filepath.Join(dir, "new.yaml")
	if stderr, err := runImport(t, conf, "-o", fresh); err != nil {
		t.Fatalf("a new file: %v\n%s", err, stderr)
	}
	if got, _ := os.ReadFile(fresh); !strings.Contains(string(got), "vip: 10.0.0.100") {
		t.Fatalf("new file:\n%s", got)
	}
}

// The flags give director.ha what keepalived.conf does not say.
func TestImportKeepalivedHAFlags(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "keepalived.conf")
	data := `vrrp_instance VI_1 {
  interface eth1
  virtual_router_id 51
  priority 150
  virtual_ipaddress {
    10.0.0.100
  }
}
virtual_server 10.0.0.100 80 {
  lb_algo wrr
  lb_kind NAT
  real_server 10.0.0.2 80 {
  }
}
`
	if err := os.WriteFile(conf, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "topology.yaml")
	if stderr, err := runImport(t, conf, "-o", out, "--director-address", "10.0.0.10", "--peer", "10.0.0.11=100"); err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	got, _ := os.ReadFile(out)
	for _, want := range []string{
		"      - {name: lb_10_0_0_10, address: 10.0.0.10, priority: 150} # this director\n",
		"      - {name: lb_10_0_0_11, address: 10.0.0.11, priority: 100}\n",
	} {
		if !strings.Contains(string(got), want) {
			t.Errorf("the topology lacks %q:\n%s", want, got)
		}
	}
	if _, err := runImport(t, conf, "--peer", "10.0.0.11"); err == nil || !strings.Contains(err.Error(), "want ADDRESS=PRIORITY") {
		t.Errorf("a bad --peer: %v", err)
	}
}
