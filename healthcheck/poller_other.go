//go:build !linux

package healthcheck

// tcpFast is the fast path's form of a TCP check: Linux only.
type tcpFast struct{}

// newPoller returns the clock's scheduler: the epoll fast path is Linux's.
func newPoller(m *Manager) poller { return newChanPoller(m.clock) }
