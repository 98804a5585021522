package healthcheck

import (
	"errors"
	"testing"
	"time"
)

func TestStatusObserve(t *testing.T) {
	fail := errors.New("connection refused")
	tests := []struct {
		name    string
		initial State
		rise    int
		results []error
		want    []State // the state after each result
	}{
		{"unknown up on first pass", Unknown, 3, []error{nil}, []State{Up}},
		{"unknown down on first failed check", Unknown, 3, []error{fail}, []State{Down}},
		{"up down on one failed check", Up, 2, []error{nil, fail}, []State{Up, Down}},
		{"down needs rise passes", Down, 3, []error{nil, nil, nil}, []State{Down, Down, Up}},
		{"a failure resets rise", Down, 2, []error{nil, fail, nil, nil}, []State{Down, Down, Down, Up}},
		{"rise 1 comes back at once", Down, 1, []error{nil}, []State{Up}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := Status{State: tt.initial}
			now := time.Unix(0, 0)
			for i, err := range tt.results {
				now = now.Add(time.Second)
				before := st.State
				changed := st.Observe(err, tt.rise, now)
				if st.State != tt.want[i] {
					t.Fatalf("after result %d (%v): state %s, want %s", i, err, st.State, tt.want[i])
				}
				if changed != (before != st.State) {
					t.Errorf("result %d: changed = %v, state %s → %s", i, changed, before, st.State)
				}
				if changed && st.Since != now {
					t.Errorf("result %d: Since = %v, want %v", i, st.Since, now)
				}
			}
		})
	}
}
