package main

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lvsdr/lvsdr/realserver"
)

// TestTheSharedFileWithoutTheDirectorsFiles loads the reference file as the
// directors have it (a notify hook, a password file) on a node where
// neither exists: the agent takes it, as it must at boot.
func TestTheSharedFileWithoutTheDirectorsFiles(t *testing.T) {
	data, err := os.ReadFile("../../deploy/examples/rabbitmq.yaml")
	if err != nil {
		t.Fatal(err)
	}
	doc := strings.Replace(string(data), "director:\n", "director:\n  notify: {command: [/nonexistent/lvsdr-notify]}\n", 1)
	doc = strings.Replace(doc, "  - name: management\n    port: 15672\n",
		"  - name: management\n    port: 15672\n    checks: [{type: http, path: /api/health/checks/port-listener/5672, username: monitor, password_file: /nonexistent/mgmt.password}]\n", 1)
	doc = strings.Replace(doc, "    check: {type: tcp, interval: 5s, connect_timeout: 3s, retry: 3, delay_before_retry: 3s, rise: 2}\n\nreal_servers:", "\nreal_servers:", 1)
	if !strings.Contains(doc, "/nonexistent/lvsdr-notify") || !strings.Contains(doc, "/nonexistent/mgmt.password") {
		t.Fatal("deploy/examples/rabbitmq.yaml changed shape: update this test")
	}
	file := filepath.Join(t.TempDir(), "topology.yaml")
	if err := os.WriteFile(file, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := loadConfig(file)
	if err != nil {
		t.Fatalf("the agent refused the shared file:\n%v", err)
	}
	if want := (realserver.Config{VIP: netip.MustParseAddr("192.168.0.100"), Interface: "eth0"}); c != want {
		t.Errorf("config %+v, want %+v", c, want)
	}
}

// TestProblemsPrintedAsFileLine wants every line of a refused file to start
// with FILE:LINE, and other errors to name the command.
func TestProblemsPrintedAsFileLine(t *testing.T) {
	file := filepath.Join(t.TempDir(), "topology.yaml")
	if err := os.WriteFile(file, []byte("vip: 10.0.0.300\ndirector: {interface: eth0}\nservices: [{name: a, port: 0}]\nreal_servers: [{name: n1, address: 10.0.0.2}]\nrealserver: {interface: eth0}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := loadConfig(file)
	var out strings.Builder
	report(&out, err)
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("want 2 problems:\n%s", out.String())
	}
	for _, line := range lines {
		if !strings.HasPrefix(line, file+":") {
			t.Errorf("not FILE:LINE: %q", line)
		}
	}
	out.Reset()
	report(&out, errors.New("start: link eth9 not found"))
	if out.String() != "realserver: start: link eth9 not found\n" {
		t.Errorf("other errors: %q", out.String())
	}
	out.Reset()
	report(&out, realserver.ErrNotReady)
	if out.String() != "" {
		t.Errorf("not ready printed %q; status has said why", out.String())
	}
}
