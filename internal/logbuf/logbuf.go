// Package logbuf lets a burst of log lines reach the log in a few writes
// instead of one write each: the director logs every kernel operation, and
// its start from empty at 10,000 real servers logs 11,000 of them, one
// write(2) each, which an emulated VM makes a visible part of the start.
package logbuf

import (
	"io"
	"sync"
)

// flushAt is how much a hold gathers before it writes anyway.
const flushAt = 64 << 10

// Writer passes every write through to Out at once, except while held:
// then writes gather, in order, and go out together when the last hold is
// released (or every 64 KiB). Lines are never held longer than the burst
// that holds them.
type Writer struct {
	Out io.Writer

	mu   sync.Mutex
	buf  []byte
	held int
	// err is the first error of a gathered write, returned by the next
	// write: a log's writer has nowhere else to say it.
	err error
}

// Write writes p, or gathers it while the writer is held.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.held == 0 {
		flushErr := w.flush()
		n, err := w.Out.Write(p)
		if err == nil {
			err = flushErr
		}
		return n, err
	}
	w.buf = append(w.buf, p...)
	if len(w.buf) >= flushAt {
		if err := w.flush(); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// Hold gathers writes until release is called; holds nest.
func (w *Writer) Hold() (release func()) {
	w.mu.Lock()
	w.held++
	w.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			w.mu.Lock()
			defer w.mu.Unlock()
			w.held--
			if w.held == 0 {
				w.err = w.flush()
			}
		})
	}
}

func (w *Writer) flush() error {
	if err := w.err; err != nil {
		w.err = nil
		return err
	}
	if len(w.buf) == 0 {
		return nil
	}
	_, err := w.Out.Write(w.buf)
	w.buf = w.buf[:0]
	if cap(w.buf) > 4*flushAt {
		// A burst's buffer is not kept for the quiet that follows.
		w.buf = nil
	}
	return err
}
