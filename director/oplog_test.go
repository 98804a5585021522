package director

import (
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lvsdr/lvsdr/internal/logbuf"
	"github.com/lvsdr/lvsdr/topology"
)

func TestKernelOperationsAndStateChangesAreLoggedOnceWithNames(t *testing.T) {
	logs := &syncBuffer{}
	h := newHarness(t, reference())
	h.logs = logs
	h.start()
	h.advanceUntil(10*time.Second, has(amqpNode2))
	h.net.setDown(netip.MustParseAddrPort("10.0.0.3:5672"), true)
	h.advanceUntil(10*time.Second, not(has(amqpNode2)))
	h.stop()

	for _, want := range []string{
		`msg=ipvs service=amqp real_server=rmq_node2 op="-a -t 10.0.0.100:5672 -r 10.0.0.3:5672 -g -w 1" reason=check`,
		`msg=ipvs service=amqp real_server=rmq_node2 op="-d -t 10.0.0.100:5672 -r 10.0.0.3:5672" reason=check`,
		`msg=ipvs service=amqp op="-A -t 10.0.0.100:5672 -s wrr -p 50" reason=start`,
		`msg="check state changed" service=amqp real_server=rmq_node2 check=tcp from=up to=down`,
	} {
		if n := strings.Count(logs.String(), want); n != 1 {
			t.Errorf("logged %d times, want once: %s\nlog:\n%s", n, want, logs.String())
		}
	}
}

// syncBuffer is a log sink the director's goroutines write while the test
// reads.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestTheTopologysWarningsAreLoggedAtStart(t *testing.T) {
	topo := reference()
	topo.Warnings = []topology.Problem{{File: "t.yaml", Line: 11, Message: "warning: services[0] (amqp).check: connect_timeout 5s is longer than interval 2s"}}
	h := newHarness(t, topo)
	logs := &syncBuffer{}
	h.logs = logs
	h.start()
	h.settle()
	if !strings.Contains(logs.String(), `level=WARN msg="topology: services[0] (amqp).check: connect_timeout 5s is longer than interval 2s" file=t.yaml line=11`) {
		t.Errorf("the warning is not in the log:\n%s", logs.String())
	}
}

// writeLog keeps each write that reaches it apart.
type writeLog struct {
	syncBuffer
	writes []string
}

func (w *writeLog) Write(p []byte) (int, error) {
	w.mu.Lock()
	w.writes = append(w.writes, string(p))
	w.mu.Unlock()
	return w.syncBuffer.Write(p)
}

func TestAReconcilesOperationsReachTheLogInOneWrite(t *testing.T) {
	out := &writeLog{}
	held := &logbuf.Writer{Out: out}
	h := newHarness(t, reference())
	h.logs = held
	h.configure = func(cfg *Config) { cfg.HoldLog = held.Hold }
	h.start()
	h.settle()
	h.stop()
	// The start creates both services in one reconcile; their real servers
	// come in later ones, as their checks pass.
	const startOp = "msg=ipvs service="
	starts := 0
	for _, line := range strings.Split(out.String(), "\n") {
		if strings.Contains(line, startOp) && strings.HasSuffix(line, "reason=start") {
			starts++
		}
	}
	if starts < 2 {
		t.Fatalf("the start logged %d operations; the test needs several:\n%s", starts, out.String())
	}
	for _, w := range out.writes {
		if n := strings.Count(w, "reason=start\n"); n > 0 && n != starts {
			t.Errorf("a write carried %d of the start's %d operations, want all:\n%q", n, starts, out.writes)
		}
	}
}
