// Package notify runs the operator's hook on state changes, as keepalived's
// notify_up, notify_down and quorum_up/quorum_down scripts: the command is
// exec'd with an argv (no shell), what changed is in its environment, each
// run is bounded by a timeout, and the checks never wait for it.
package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// Kind says what an event is about; the hook reads it as LVSDR_EVENT.
type Kind string

// The kinds of event.
const (
	// KindCheck: a check of a real server changed state.
	KindCheck Kind = "check"
	// KindQuorum: a service lost or regained its quorum.
	KindQuorum Kind = "quorum"
	// KindMaintenance: `director drain` or `undrain` of a real server.
	KindMaintenance Kind = "maintenance"
	// KindRole: the director's VRRP role changed (master, backup, fault);
	// LVSDR_ERROR holds the reason.
	KindRole Kind = "role"
	// KindBGP: the VIP was announced or withdrawn (LVSDR_STATE announced
	// or withdrawn, LVSDR_ERROR the reason), or a BGP session changed
	// state (LVSDR_NODE the peer, LVSDR_STATE its state).
	KindBGP Kind = "bgp"
)

// Event is one state change.
type Event struct {
	Kind Kind
	// Service is empty for a maintenance event, which spans every service.
	Service string
	// Node is the real server, empty for a quorum event.
	Node string
	// Check names the check, empty but for a check event.
	Check string
	// State is up, down or unknown for a check; lost or regained for a
	// quorum; drained or undrained for maintenance.
	State, Previous string
	// Error is why a check failed, empty otherwise.
	Error string
	At    time.Time
}

// Env returns the event as the hook's environment variables.
func (e Event) Env() []string {
	return []string{
		"LVSDR_EVENT=" + string(e.Kind),
		"LVSDR_SERVICE=" + e.Service,
		"LVSDR_NODE=" + e.Node,
		"LVSDR_CHECK=" + e.Check,
		"LVSDR_STATE=" + e.State,
		"LVSDR_PREVIOUS_STATE=" + e.Previous,
		"LVSDR_ERROR=" + e.Error,
		"LVSDR_TIME=" + e.At.UTC().Format(time.RFC3339Nano),
	}
}

// QueueLength bounds the events waiting for the hook; beyond it events are
// dropped (and logged) rather than slowing the checks.
const QueueLength = 1024

// Hook runs a command once per event, one at a time and in order, so that a
// node's down is never reported after its next up.
type Hook struct {
	command []string
	timeout time.Duration
	log     *slog.Logger
	events  chan Event
	done    chan struct{}
	// ctx ends the hook for good: a run in progress is killed and the
	// queue is dropped.
	ctx    context.Context
	cancel context.CancelFunc
	// mu guards closed: a check may report a change while a reload
	// replaces the hook.
	mu     sync.Mutex
	closed bool
	// onFailure is told of every failed run, for the metrics; nil for
	// none.
	onFailure func(Event, error)
}

// Option changes how a hook runs.
type Option func(*Hook)

// OnFailure has f called, on the hook's goroutine, after every run that
// failed (non-zero exit, not started, or killed at its timeout), so that
// failures can be counted across the hooks that reloads replace. f must
// not block.
func OnFailure(f func(Event, error)) Option {
	return func(h *Hook) { h.onFailure = f }
}

// Start returns a running hook; Close stops it.
func Start(command []string, timeout time.Duration, log *slog.Logger, opts ...Option) *Hook {
	return start(command, timeout, log, QueueLength, opts...)
}

func start(command []string, timeout time.Duration, log *slog.Logger, queue int, opts ...Option) *Hook {
	h := &Hook{command: command, timeout: timeout, log: log, events: make(chan Event, queue), done: make(chan struct{})}
	for _, opt := range opts {
		opt(h)
	}
	h.ctx, h.cancel = context.WithCancel(context.Background())
	go h.loop()
	return h
}

// Send queues an event and returns at once; when the queue is full the event
// is dropped and logged.
func (h *Hook) Send(e Event) {
	if h == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	select {
	case h.events <- e:
	default:
		h.log.Warn("notify queue full, event dropped", "service", e.Service, "node", e.Node, "state", e.State)
	}
}

// Close lets the queued events run, then stops.
func (h *Hook) Close() { h.Stop(-1) }

// Stop takes no more events and lets the queued ones run for at most grace
// (forever if negative); then the run in progress is killed and the rest
// dropped, so that a slow hook cannot hold up the director's exit.
func (h *Hook) Stop(grace time.Duration) {
	if h == nil {
		return
	}
	h.mu.Lock()
	if !h.closed {
		h.closed = true
		close(h.events)
	}
	h.mu.Unlock()
	if grace >= 0 {
		select {
		case <-h.done:
		case <-time.After(grace):
			h.cancel()
		}
	}
	<-h.done
	h.cancel()
}

func (h *Hook) loop() {
	defer close(h.done)
	dropped := 0
	defer func() {
		if dropped > 0 {
			h.log.Warn("notify: events dropped at stop", "dropped", dropped)
		}
	}()
	for e := range h.events {
		if h.ctx.Err() != nil {
			dropped++
			continue
		}
		start := time.Now()
		err := h.run(e)
		attrs := []any{"service", e.Service, "node", e.Node, "state", e.State, "took", time.Since(start).Round(time.Millisecond)}
		if err != nil {
			h.log.Warn("notify hook failed", append(attrs, "error", err)...)
			if h.onFailure != nil {
				h.onFailure(e, err)
			}
			continue
		}
		h.log.Debug("notify hook ran", attrs...)
	}
}

// ErrTimeout means the hook ran past its timeout and was killed.
var ErrTimeout = errors.New("hook timed out and was killed")

// run execs the hook for one event. The hook gets its own process group so
// that a timeout kills whatever it started too.
func (h *Hook) run(e Event) error {
	ctx, cancel := context.WithTimeout(h.ctx, h.timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, h.command[0], h.command[1:]...)
	cmd.Env = append(os.Environ(), e.Env()...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	// A grandchild holding the output open must not keep us waiting.
	cmd.WaitDelay = time.Second
	out, err := cmd.CombinedOutput()
	if ctx.Err() == context.DeadlineExceeded {
		return fmt.Errorf("%s after %s: %w", h.command[0], h.timeout, ErrTimeout)
	}
	if err != nil {
		return fmt.Errorf("%s: %w: %s", h.command[0], err, truncate(out))
	}
	return nil
}

func truncate(out []byte) string {
	const max = 200
	if len(out) > max {
		return string(out[:max]) + "…"
	}
	return string(out)
}
