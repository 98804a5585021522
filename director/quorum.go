package director

import (
	"slices"

	"github.com/lvsdr/lvsdr/healthcheck"
	"github.com/lvsdr/lvsdr/notify"
	"github.com/lvsdr/lvsdr/topology"
)

// reportQuorum logs and notifies the services that lost or regained their
// quorum since the last reconcile. A service is judged only once every
// check of it has a result: at start every server is unknown, and that is
// not a lost quorum.
func (l *loop) reportQuorum(states map[healthcheck.Key]healthcheck.Status, health Health) {
	for _, s := range l.topo.Services {
		if !allKnown(s, states) {
			continue
		}
		lost := quorumLost(s, health, l.drained)
		was, judged := l.quorum[s.Name]
		l.quorum[s.Name] = lost
		l.obs.quorum.Set(s.Name, lost)
		if judged && was == lost || !judged && !lost {
			continue
		}
		state, previous := "regained", "lost"
		if lost {
			state, previous = "lost", "regained"
		}
		attrs := []any{"service", s.Name, "serving", serving(s, health, l.drained), "quorum", s.Quorum, "sorry_server", s.SorryServer != nil}
		if lost {
			l.Log.Warn("quorum lost", attrs...)
		} else {
			l.Log.Info("quorum regained", attrs...)
		}
		l.hook.Load().Send(notify.Event{Kind: notify.KindQuorum, Service: s.Name, State: state, Previous: previous, At: l.Clock.Now()})
	}
}

func allKnown(s topology.Service, states map[healthcheck.Key]healthcheck.Status) bool {
	for _, name := range s.RealServers {
		for _, c := range s.ChecksOf(name) {
			if st, ok := states[CheckKey(s.Name, name, c.Name)]; ok && st.State == healthcheck.Unknown {
				return false
			}
		}
	}
	return true
}

// setHook starts the notify hook of topology to, replacing the one of from
// if it changed. The old hook finishes its queue in the background.
func (d *Director) setHook(from, to *topology.Topology) {
	if from != nil && sameNotify(from.Director.Notify, to.Director.Notify) {
		return
	}
	var next *notify.Hook
	if n := to.Director.Notify; n != nil {
		next = notify.Start(n.Command, n.Timeout, d.Log, notify.OnFailure(d.obs.notifyFailed))
	}
	if old := d.hook.Swap(next); old != nil {
		go old.Close()
	}
}

func sameNotify(a, b *topology.Notify) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Timeout == b.Timeout && slices.Equal(a.Command, b.Command)
}
