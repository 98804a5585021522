package healthcheck

import "time"

// State is what the checks say of a real server.
type State int

// States. Unknown is a server not checked yet.
const (
	Unknown State = iota
	Up
	Down
)

// String names the state as logs and status show it.
func (s State) String() string {
	switch s {
	case Up:
		return "up"
	case Down:
		return "down"
	}
	return "unknown"
}

// Status is the check state of one target.
type Status struct {
	State State
	// Since is when State was entered.
	Since time.Time
	// LastError is the error of the last failed check; nil after a pass.
	LastError error
	// Latency is how long the last probe took.
	Latency time.Duration
	// Lateness is how long after it was due the last probe started: zero
	// while the checker keeps up.
	Lateness time.Duration
	// Passes counts consecutive passing checks while Down, towards rise.
	Passes int
}

// Observe feeds the result of one check (a probe and its retries) into the
// state machine and reports whether the state changed. A failed check takes
// a server down at once: the retries already gave it its chances. A down
// server needs rise passing checks in a row to come back; an unknown one
// needs one.
func (s *Status) Observe(err error, rise int, now time.Time) bool {
	s.LastError = err
	if err != nil {
		s.Passes = 0
		return s.enter(Down, now)
	}
	if s.State == Down {
		s.Passes++
		if s.Passes < rise {
			return false
		}
	}
	s.Passes = 0
	return s.enter(Up, now)
}

func (s *Status) enter(state State, now time.Time) bool {
	if s.State == state {
		return false
	}
	s.State, s.Since = state, now
	return true
}
