package logbuf

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// writes records each write it is given.
type writes struct {
	calls []string
	err   error
}

func (w *writes) Write(p []byte) (int, error) {
	w.calls = append(w.calls, string(p))
	return len(p), w.err
}

func TestWriterGathersWhileHeld(t *testing.T) {
	out := &writes{}
	w := &Writer{Out: out}
	w.Write([]byte("before\n"))
	release := w.Hold()
	inner := w.Hold()
	for _, line := range []string{"a\n", "b\n"} {
		w.Write([]byte(line))
	}
	inner()
	w.Write([]byte("c\n"))
	if len(out.calls) != 1 {
		t.Fatalf("writes while held reached the output: %q", out.calls)
	}
	release()
	release() // a second release is a no-op
	w.Write([]byte("after\n"))
	want := []string{"before\n", "a\nb\nc\n", "after\n"}
	if strings.Join(out.calls, "|") != strings.Join(want, "|") {
		t.Fatalf("writes %q, want %q", out.calls, want)
	}
}

func TestWriterWritesA64KiBBurstWithoutWaitingForTheRelease(t *testing.T) {
	out := &writes{}
	w := &Writer{Out: out}
	release := w.Hold()
	line := bytes.Repeat([]byte("x"), 1023)
	line = append(line, '\n')
	for range 100 {
		w.Write(line)
	}
	if len(out.calls) != 1 || len(out.calls[0]) != 64*1024 {
		t.Fatalf("after 100 KiB held: %d writes (first %d bytes), want one of 64 KiB", len(out.calls), len(out.calls[0]))
	}
	release()
	if len(out.calls) != 2 || len(out.calls[0])+len(out.calls[1]) != 100*1024 {
		t.Fatalf("after the release: %d writes, want the rest in one", len(out.calls))
	}
}

func TestWriterReportsAGatheredWritesError(t *testing.T) {
	broken := errors.New("disk full")
	out := &writes{err: broken}
	w := &Writer{Out: out}
	release := w.Hold()
	w.Write([]byte("a\n"))
	release()
	out.err = nil
	if _, err := w.Write([]byte("b\n")); !errors.Is(err, broken) {
		t.Fatalf("the write after a failed flush: %v, want %v", err, broken)
	}
	if last := out.calls[len(out.calls)-1]; last != "b\n" {
		t.Fatalf("the write after a failed flush was not written: %q", out.calls)
	}
}
