package topology

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// shared is the reference design as operators deploy it: the same file on
// the directors and on the RabbitMQ nodes, with a notify hook and a
// management check whose password and CA files exist on the directors only.
func shared(t *testing.T, hook, password, ca string) string {
	t.Helper()
	data, err := os.ReadFile("../deploy/examples/rabbitmq.yaml")
	if err != nil {
		t.Fatal(err)
	}
	doc := strings.Replace(string(data), "  interface: eth0            # NIC that carries the VIP on the director\n",
		"  interface: eth0\n  notify: {command: ["+hook+", --from-lvsdr]}\n", 1)
	mgmt := "    check: {type: tcp, interval: 5s, connect_timeout: 3s, retry: 3, delay_before_retry: 3s, rise: 2}\n\nreal_servers:"
	if !strings.Contains(doc, mgmt) || !strings.Contains(doc, "  - {name: rmq_node3, address: 192.168.0.4, weight: 1}\n") {
		t.Fatal("deploy/examples/rabbitmq.yaml changed shape: update this test")
	}
	doc = strings.Replace(doc, mgmt, "    check: {type: http, path: /api/health/checks/port-listener/5672, scheme: https, tls_ca_file: "+ca+
		", username: monitor, password_file: "+password+"}\n\nreal_servers:", 1)
	// An override names its own password file.
	doc = strings.Replace(doc, "  - {name: rmq_node3, address: 192.168.0.4, weight: 1}\n",
		"  - name: rmq_node3\n    address: 192.168.0.4\n    check_overrides:\n      management: {password_file: "+password+".node3}\n", 1)
	file := filepath.Join(t.TempDir(), "topology.yaml")
	if err := os.WriteFile(file, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}

// lineOf returns the line of the file that contains s.
func lineOf(t *testing.T, file, s string) int {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for i, line := range strings.Split(string(data), "\n") {
		if strings.Contains(line, s) {
			return i + 1
		}
	}
	t.Fatalf("%s lacks %q", file, s)
	return 0
}

func TestTheSharedFileLoadsOnARealServerAndIsRefusedOnADirectorWithoutItsFiles(t *testing.T) {
	file := shared(t, "/nonexistent/lvsdr-notify", "/nonexistent/mgmt.password", "/nonexistent/ca.pem")

	// The real-server agent: the schema only.
	topo, err := Load(file)
	if err != nil {
		t.Fatalf("the agent's Load refused the shared file:\n%v", err)
	}
	if topo.RealServer.Interface != "eth0" || topo.Director.Notify == nil {
		t.Fatalf("loaded %+v", topo)
	}

	// The director: the schema and its own files, each at its line.
	hook, check, override := lineOf(t, file, "notify:"), lineOf(t, file, "password_file: /nonexistent/mgmt.password}"), lineOf(t, file, ".node3}")
	want := []string{
		file + ":" + strconv.Itoa(hook) + ": director.notify.command[0]: stat /nonexistent/lvsdr-notify: no such file or directory",
		file + ":" + strconv.Itoa(check) + ": services[1] (management).check.tls_ca_file: open /nonexistent/ca.pem: no such file or directory",
		file + ":" + strconv.Itoa(check) + ": services[1] (management).check.password_file: open /nonexistent/mgmt.password: no such file or directory",
		file + ":" + strconv.Itoa(override) + ": real_servers[2] (rmq_node3).check_overrides.management.password_file: open /nonexistent/mgmt.password.node3: no such file or directory",
	}
	for name, err := range map[string]error{"LoadDirector": second(LoadDirector(file)), "CheckDirectorHost": topo.CheckDirectorHost()} {
		if !errors.Is(err, ErrInvalid) {
			t.Fatalf("%s: err = %v, want ErrInvalid", name, err)
		}
		if got := strings.Split(err.Error(), "\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("%s:\n%s\nwant:\n%s", name, err, strings.Join(want, "\n"))
		}
	}

	// With the files in place the director takes it too.
	dir := t.TempDir()
	hookFile, password, ca := filepath.Join(dir, "hook"), filepath.Join(dir, "password"), filepath.Join(dir, "ca.pem")
	for _, f := range []string{hookFile, password, password + ".node3", ca} {
		if err := os.WriteFile(f, []byte("x\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := LoadDirector(shared(t, hookFile, password, ca)); err != nil {
		t.Errorf("LoadDirector with every file present: %v", err)
	}
}

func TestDirectorHostProblems(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "hook")
	if err := os.WriteFile(script, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ old, new, want string }{
		{"command: [/bin/true, --flag]", "command: [/nonexistent/hook]", `t.yaml:4: director.notify.command[0]: stat /nonexistent/hook: no such file or directory`},
		{"command: [/bin/true, --flag]", "command: [" + script + "]", `t.yaml:4: director.notify.command[0]: ` + script + ` is not an executable file`},
		{"command: [/bin/true, --flag]", "command: [" + dir + "]", `t.yaml:4: director.notify.command[0]: ` + dir + ` is not an executable file`},
		{"{type: amqp, interval: 2s}", "{type: amqp, username: u, password_file: /nonexistent/p}", `t.yaml:11: services[0] (amqp).checks[0].password_file: open /nonexistent/p: no such file or directory`},
		{"{type: amqp, interval: 2s}", "{type: amqp, interval: 2s}", ``},
	}
	for _, tt := range tests {
		topo, err := Parse("t.yaml", []byte(strings.Replace(several, tt.old, tt.new, 1)))
		if err != nil {
			t.Fatalf("%s: the schema refused it: %v", tt.new, err)
		}
		err = topo.CheckDirectorHost()
		if tt.want == "" {
			if err != nil {
				t.Errorf("%s: %v", tt.new, err)
			}
			continue
		}
		if !errors.Is(err, ErrInvalid) || err.Error() != tt.want {
			t.Errorf("%s:\n%v\nwant:\n%s", tt.new, err, tt.want)
		}
	}
}

func second[T any](_ T, err error) error { return err }
