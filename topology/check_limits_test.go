package topology

import (
	"strings"
	"testing"
)

// Intervals and timeouts that only hurt are refused, with the line and the
// reason; the shortest meant ones pass.
func TestCheckIntervalAndTimeoutLimits(t *testing.T) {
	const fixture = "{type: amqp, interval: 2s}"
	tests := []struct {
		name, check, want string
	}{
		{"an interval of 1ns", "{type: amqp, interval: 1ns}", `t.yaml:11: services[0] (amqp).checks[0].interval: 1ns is a probe storm`},
		{"an interval just below the floor", "{type: amqp, interval: 99ms}", `checks[0].interval: 99ms is a probe storm, not a check (every real server probed more than 10 times a second); use 100ms or more`},
		{"the shortest interval", "{type: amqp, interval: 100ms}", ``},
		{"keepalived's whole seconds", "{type: amqp, interval: 1}", ``},
		{"a connect_timeout of 1ms", "{type: amqp, connect_timeout: 1ms}", `t.yaml:11: services[0] (amqp).checks[0].connect_timeout: 1ms fails healthy servers`},
		{"the shortest connect_timeout", "{type: amqp, connect_timeout: 10ms}", ``},
		{"zero stays its own problem", "{type: amqp, interval: 0s}", `checks[0].interval must be above zero`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.Contains(several, fixture) {
				t.Fatalf("fixture lacks %q", fixture)
			}
			_, err := Parse("t.yaml", []byte(strings.Replace(several, fixture, tt.check, 1)))
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("error %v, want it to contain %q", err, tt.want)
			case tt.want != "" && strings.Contains(tt.check, "0s") && strings.Contains(err.Error(), "probe storm"):
				t.Errorf("zero reported twice: %v", err)
			}
		})
	}
	// A real server's override is held to the same limits, at its line.
	_, err := Parse("t.yaml", []byte(strings.Replace(several, "connect_timeout: 9s", "connect_timeout: 5ms", 1)))
	if err == nil || !strings.Contains(err.Error(), "t.yaml:20: real_servers[1] (n2).check_overrides.amqp.connect_timeout: 5ms fails healthy servers") {
		t.Errorf("override below the limit: %v", err)
	}
}
