//go:build e2e

package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// rabbitBound bounds the wait for RabbitMQ in the emulated VM, where it
// was measured to open its port after about 2 minutes on an otherwise
// idle machine; LVSDR_E2E_RABBIT_WAIT overrides it.
func rabbitBound() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("LVSDR_E2E_RABBIT_WAIT")); err == nil {
		return d
	}
	return 480 * time.Second
}

// startRabbit starts Debian's rabbitmq-server in a host's namespace as the
// rabbitmq user, everything it writes in a tmpfs directory of its own (the
// VM's root is read-only), and returns when it was started. The directory
// and every process left in the namespace go at the test's end.
func (s *syncLab) startRabbit(host string) time.Time {
	s.t.Helper()
	if _, err := os.Stat("/usr/lib/rabbitmq/bin/rabbitmq-server"); err != nil {
		s.t.Skip("rabbitmq-server is not installed on the host (test/rabbitmq/run.sh installs it)")
	}
	dir, err := os.MkdirTemp("/tmp", "lvsdr-rabbitmq-")
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() {
		for _, f := range strings.Fields(run(s.t, "ip", "netns", "pids", s.ns[host])) {
			if pid, err := strconv.Atoi(f); err == nil {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		os.RemoveAll(dir)
	})
	cookie := make([]byte, 16)
	rand.Read(cookie)
	files := map[string]string{
		"rabbitmq.conf":     "listeners.tcp.default = 5672\nloopback_users = none\n",
		"rabbitmq-env.conf": "NODENAME=rabbit@localhost\n",
		"enabled_plugins":   "[].\n",
		".erlang.cookie":    strings.ToUpper(hex.EncodeToString(cookie)),
	}
	for name, text := range files {
		mode := os.FileMode(0o644)
		if name == ".erlang.cookie" {
			mode = 0o400
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), mode); err != nil {
			s.t.Fatal(err)
		}
	}
	for _, sub := range []string{"mnesia", "log"} {
		if err := os.Mkdir(filepath.Join(dir, sub), 0o755); err != nil {
			s.t.Fatal(err)
		}
	}
	os.Chmod(dir, 0o755)
	run(s.t, "chown", "-R", "rabbitmq:rabbitmq", dir)
	env := []string{"HOME=" + dir, "RABBITMQ_CONFIG_FILE=" + filepath.Join(dir, "rabbitmq.conf"),
		"RABBITMQ_CONF_ENV_FILE=" + filepath.Join(dir, "rabbitmq-env.conf"), "RABBITMQ_MNESIA_BASE=" + filepath.Join(dir, "mnesia"),
		"RABBITMQ_LOG_BASE=" + filepath.Join(dir, "log"), "RABBITMQ_ENABLED_PLUGINS_FILE=" + filepath.Join(dir, "enabled_plugins")}
	s.rabbitDir = dir
	at := time.Now()
	s.start("rabbitmq", host, env, "setpriv", "--reuid=rabbitmq", "--regid=rabbitmq", "--init-groups", "/usr/lib/rabbitmq/bin/rabbitmq-server")
	return at
}

// rabbitDiagnosis says what RabbitMQ was doing: its output, the last lines
// of its log and the processes of its namespace.
func (s *syncLab) rabbitDiagnosis(host string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "--- rabbitmq-server output:\n%s\n", tail(s.log("rabbitmq"), 30))
	logs, _ := filepath.Glob(filepath.Join(s.rabbitDir, "log", "*.log"))
	for _, l := range logs {
		data, _ := os.ReadFile(l)
		fmt.Fprintf(&b, "--- %s:\n%s\n", l, tail(string(data), 30))
	}
	files, _ := exec.Command("find", s.rabbitDir, "-ls").CombinedOutput()
	fmt.Fprintf(&b, "--- %s:\n%s", s.rabbitDir, files)
	out, _ := exec.Command("sh", "-c", "for p in $(ip netns pids "+s.ns[host]+"); do ps -o pid=,etime=,time=,args= -p $p; done").CombinedOutput()
	fmt.Fprintf(&b, "--- processes in %s:\n%s", host, out)
	return b.String()
}

// inRules says whether an ipvsadm -Sn rule is among rules.
func inRules(rules []string, rule string) bool { return slices.Contains(rules, rule) }

// selfPath is the test binary, which plays the clients.
func (s *syncLab) selfPath() string {
	self, err := os.Executable()
	if err != nil {
		s.t.Fatal(err)
	}
	return self
}

// amqpState is what the syncamqp role said.
type amqpState struct {
	connected   string // "LOCAL REMOTE"
	connectedAt time.Time
	closed      string
	published   int
	confirmed   int
	consumed    int
	stalls      []connGap
	// final is its last line; confirmedFinal the confirmed count in it.
	final          string
	confirmedFinal int
}

// amqp parses the syncamqp role's log.
func (s *syncLab) amqp(name string) amqpState {
	var a amqpState
	for _, line := range strings.Split(s.log(name), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 4 && f[0] == "connected":
			a.connected = f[1] + " → " + f[2]
			ns, _ := strconv.ParseInt(f[3], 10, 64)
			a.connectedAt = time.Unix(0, ns)
		case len(f) > 0 && f[0] == "CLOSED":
			a.closed = line
		case len(f) == 6 && f[0] == "stat":
			a.published, _ = strconv.Atoi(f[2])
			a.confirmed, _ = strconv.Atoi(f[3])
			a.consumed, _ = strconv.Atoi(f[5])
		case len(f) == 3 && f[0] == "stall":
			ns, _ := strconv.ParseInt(f[1], 10, 64)
			ms, _ := strconv.Atoi(f[2])
			a.stalls = append(a.stalls, connGap{"amqp", time.Unix(0, ns), time.Duration(ms) * time.Millisecond})
		case len(f) > 0 && f[0] == "final":
			a.final = line
			for _, kv := range f[1:] {
				k, v, _ := strings.Cut(kv, "=")
				switch k {
				case "published":
					a.published, _ = strconv.Atoi(v)
				case "confirmed":
					a.confirmedFinal, _ = strconv.Atoi(v)
				}
			}
		}
	}
	return a
}

// longestStall is the longest gap between confirms at or after t (zero if
// none was over a second).
func (a amqpState) longestStall(t time.Time) time.Duration {
	var longest time.Duration
	for _, g := range a.stalls {
		if !g.at.Before(t) {
			longest = max(longest, g.stall)
		}
	}
	return longest
}
