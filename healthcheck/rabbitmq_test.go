//go:build rabbitmq

package healthcheck

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/lvsdr/lvsdr/internal/clock"
)

// These tests run against a real RabbitMQ on loopback, started by
// test/rabbitmq/run.sh, and stop and start its app with rabbitmqctl.

func rabbitmqctl(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("rabbitmqctl", args...).CombinedOutput(); err != nil {
		t.Fatalf("rabbitmqctl %v: %v\n%s", args, err, out)
	}
}

func TestRabbitMQChecksFollowTheBroker(t *testing.T) {
	password := filepath.Join(t.TempDir(), "password")
	os.WriteFile(password, []byte("guest\n"), 0o600)
	probers := map[string]Prober{
		"amqp header":        &AMQPProber{Address: "127.0.0.1:5672"},
		"amqp open":          &AMQPProber{Address: "127.0.0.1:5672", Username: "guest", PasswordFile: password, VHost: "/"},
		"http port-listener": &HTTPProber{URL: "http://127.0.0.1:15672/api/health/checks/port-listener/5672", Username: "guest", PasswordFile: password, BodyContains: `"status":"ok"`},
	}
	for name, p := range probers {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		if err := p.Probe(ctx); err != nil {
			t.Errorf("%s against a running RabbitMQ: %v", name, err)
		}
		cancel()
	}

	// interval 1 s, connect_timeout 1 s, retry 1, delay 1 s: down within
	// 1 + 2×1 + 1 = 4 s of the broker stopping.
	const bound = 4 * time.Second
	transitions := make(chan Transition, 16)
	m := NewManager(clock.Real{}, func(tr Transition) { transitions <- tr })
	defer m.Stop()
	var targets []Target
	for name, p := range probers {
		targets = append(targets, Target{Key: Key{"rabbitmq", name, "probe"}, Prober: p, Interval: time.Second, ConnectTimeout: time.Second,
			Retry: 1, DelayBeforeRetry: time.Second, Rise: 2})
	}
	m.Update(targets)
	// await waits for every check to reach want, timing each from start:
	// the moment the broker was told to stop or start.
	await := func(want State, start time.Time, limit time.Duration) {
		t.Helper()
		pending := map[string]bool{}
		for name := range probers {
			pending[name] = true
		}
		timeout := time.After(limit - time.Since(start))
		for len(pending) > 0 {
			select {
			case tr := <-transitions:
				if tr.To == want && pending[tr.Key.RealServer] {
					delete(pending, tr.Key.RealServer)
					msg := fmt.Sprintf("%s %s %s after the broker was told to change (limit %s)", tr.Key, want, time.Since(start).Round(10*time.Millisecond), limit.Round(10*time.Millisecond))
					t.Log(msg)
					fmt.Println("RABBITMQ", msg)
				}
			case <-timeout:
				t.Fatalf("still not %s after %s: %v", want, limit, pending)
			}
		}
	}
	await(Up, time.Now(), 5*time.Second)
	stopped := time.Now()
	rabbitmqctl(t, "stop_app")
	defer exec.Command("rabbitmqctl", "start_app").Run()
	// stop_app returns once the broker is down; the bound runs from there,
	// with a second of slack for the slowest probe in flight.
	took := time.Since(stopped)
	t.Logf("rabbitmqctl stop_app took %s", took.Round(10*time.Millisecond))
	fmt.Printf("RABBITMQ rabbitmqctl stop_app took %s; the checks must be down within it + %s\n", took.Round(10*time.Millisecond), bound)
	await(Down, stopped, took+bound+time.Second)
	started := time.Now()
	rabbitmqctl(t, "start_app")
	await(Up, started, 30*time.Second)
}
