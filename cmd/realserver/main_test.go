package main

import (
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
