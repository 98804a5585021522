package notify

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a log sink the hook's goroutine writes while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
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

func script(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "hook")
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestHookGetsTheEventInItsEnvironmentInOrder(t *testing.T) {
	out := filepath.Join(t.TempDir(), "events")
	hook := script(t, `echo "$1 $LVSDR_EVENT $LVSDR_SERVICE $LVSDR_NODE $LVSDR_CHECK $LVSDR_PREVIOUS_STATE>$LVSDR_STATE $LVSDR_ERROR" >>"$2"`+"\n")
	var logs syncBuffer
	h := Start([]string{hook, "argv-is-kept", out}, 5*time.Second, slog.New(slog.NewTextHandler(&logs, nil)))
	h.Send(Event{Kind: KindCheck, Service: "amqp", Node: "rmq_node1", Check: "tcp", Previous: "up", State: "down", Error: "connection refused", At: time.Now()})
	h.Send(Event{Kind: KindCheck, Service: "amqp", Node: "rmq_node1", Check: "tcp", Previous: "down", State: "up", At: time.Now()})
	h.Send(Event{Kind: KindQuorum, Service: "amqp", Previous: "regained", State: "lost", At: time.Now()})
	h.Close()
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatalf("the hook did not run: %v; log: %s", err, logs.String())
	}
	want := "argv-is-kept check amqp rmq_node1 tcp up>down connection refused\n" +
		"argv-is-kept check amqp rmq_node1 tcp down>up \n" +
		"argv-is-kept quorum amqp   regained>lost \n"
	if string(got) != want {
		t.Errorf("hook saw:\n%s\nwant:\n%s", got, want)
	}
}

func TestSlowHookIsKilledAndNeverBlocksSend(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "survived")
	// The hook's child would outlive a kill of the hook alone.
	hook := script(t, "(sleep 1; touch "+marker+") &\nsleep 30\n")
	var logs syncBuffer
	h := start([]string{hook}, 200*time.Millisecond, slog.New(slog.NewTextHandler(&logs, nil)), 2)
	defer h.Close()
	begin := time.Now()
	for i := 0; i < 5; i++ {
		h.Send(Event{Kind: KindCheck, Service: "amqp", Node: "n", State: "down"})
	}
	if took := time.Since(begin); took > 2*time.Second {
		t.Errorf("Send blocked for %s behind a slow hook", took)
	}
	if !strings.Contains(logs.String(), "notify queue full") {
		t.Errorf("a full queue is not logged: %s", logs.String())
	}
	// Let the first run time out, then drop the rest of the queue.
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logs.String(), "hook timed out and was killed") && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(logs.String(), "hook timed out and was killed") {
		t.Fatalf("no timeout logged: %s", logs.String())
	}
	time.Sleep(1500 * time.Millisecond)
	if _, err := os.Stat(marker); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the hook's child outlived the timeout (err %v)", err)
	}
}

func TestFailingHookIsLogged(t *testing.T) {
	var logs syncBuffer
	h := Start([]string{script(t, "echo broken >&2; exit 3\n")}, 5*time.Second, slog.New(slog.NewTextHandler(&logs, nil)))
	h.Send(Event{Kind: KindCheck, Service: "amqp", Node: "rmq_node2", State: "up"})
	h.Close()
	if s := logs.String(); !strings.Contains(s, "notify hook failed") || !strings.Contains(s, "exit status 3") || !strings.Contains(s, "broken") || !strings.Contains(s, "node=rmq_node2") {
		t.Errorf("log: %s", s)
	}
}

func TestStopBoundsTheWaitForASlowHook(t *testing.T) {
	var logs syncBuffer
	h := Start([]string{script(t, "sleep 30\n")}, 20*time.Second, slog.New(slog.NewTextHandler(&logs, nil)))
	for i := 0; i < 3; i++ {
		h.Send(Event{Kind: KindCheck, Service: "amqp", Node: "n", State: "down"})
	}
	begin := time.Now()
	h.Stop(200 * time.Millisecond)
	if took := time.Since(begin); took > 5*time.Second {
		t.Errorf("Stop took %s behind a hook that sleeps 30s, want about its 200ms grace", took)
	}
	if !strings.Contains(logs.String(), "events dropped at stop") || !strings.Contains(logs.String(), "dropped=2") {
		t.Errorf("log: %s", logs.String())
	}
	h.Send(Event{Kind: KindCheck}) // after Stop: ignored, no panic
}

func TestOnFailureIsToldOfFailedRunsOnly(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "fail")
	// The hook fails while the marker exists.
	hook := script(t, `test ! -e "`+marker+`"`+"\n")
	var failed []string
	var mu sync.Mutex
	h := Start([]string{hook}, 5*time.Second, slog.New(slog.NewTextHandler(&syncBuffer{}, nil)),
		OnFailure(func(e Event, err error) {
			mu.Lock()
			defer mu.Unlock()
			failed = append(failed, e.Node+": "+err.Error())
		}))
	h.Send(Event{Kind: KindCheck, Node: "ok-before"})
	h.Close()
	if err := os.WriteFile(marker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	h = Start([]string{hook}, 5*time.Second, slog.New(slog.NewTextHandler(&syncBuffer{}, nil)),
		OnFailure(func(e Event, err error) {
			mu.Lock()
			defer mu.Unlock()
			failed = append(failed, e.Node+": "+err.Error())
		}))
	h.Send(Event{Kind: KindCheck, Node: "n1"})
	h.Send(Event{Kind: KindCheck, Node: "n2"})
	h.Close()
	mu.Lock()
	defer mu.Unlock()
	if len(failed) != 2 || !strings.HasPrefix(failed[0], "n1: ") || !strings.Contains(failed[0], "exit status 1") || !strings.HasPrefix(failed[1], "n2: ") {
		t.Errorf("OnFailure saw %q, want n1 and n2 with exit status 1", failed)
	}
}
