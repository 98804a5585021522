package ipvsctl

import (
	"errors"
	"fmt"
	"sync"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// SyncNetlink is the SyncDaemons of the running kernel, in the network
// namespace of the process. Each call opens its own netlink socket (no
// sequence numbers shared with moby/ipvs's handle), runs one at a time, and
// gives up at a deadline: a lost reply ends in ErrTimeout, not a hang.
type SyncNetlink struct {
	mu      sync.Mutex
	family  uint16
	timeout time.Duration
}

// OpenSyncDaemons looks up the kernel's IPVS generic netlink family;
// ErrNoIPVS if the kernel has none.
func OpenSyncDaemons(timeout time.Duration) (*SyncNetlink, error) {
	f, err := netlink.GenlFamilyGet("IPVS")
	if err != nil {
		if errors.Is(err, syscall.ENOENT) {
			return nil, ErrNoIPVS
		}
		return nil, fmt.Errorf("look up the IPVS netlink family: %w", err)
	}
	return &SyncNetlink{family: f.ID, timeout: timeout}, nil
}

// Daemons lists the running sync daemons, master first.
func (s *SyncNetlink) Daemons() ([]SyncDaemon, error) {
	msgs, err := s.request(encodeDaemonCmd(ipvsCmdGetDaemon, SyncDaemon{}), unix.NLM_F_DUMP)
	if err != nil {
		return nil, fmt.Errorf("list IPVS sync daemons: %w", err)
	}
	out := make([]SyncDaemon, 0, len(msgs))
	for _, m := range msgs {
		d, err := decodeDaemon(m)
		if err != nil {
			return nil, fmt.Errorf("list IPVS sync daemons: %w", err)
		}
		out = append(out, d)
	}
	return out, nil
}

// StartDaemon starts a sync daemon; ErrExists if one of its role runs.
func (s *SyncNetlink) StartDaemon(d SyncDaemon) error {
	if err := d.Validate(); err != nil {
		return err
	}
	_, err := s.request(encodeDaemonCmd(ipvsCmdNewDaemon, d), unix.NLM_F_ACK)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, syscall.EEXIST):
		err = fmt.Errorf("%w: a %s sync daemon already runs (%w)", ErrExists, d.Role, err)
	case errors.Is(err, syscall.ENODEV):
		err = fmt.Errorf("no interface %s in this network namespace: %w", d.Interface, err)
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		err = fmt.Errorf("interface %s has no address to send from: %w", d.Interface, err)
	}
	return fmt.Errorf("start %s: %w", d, err)
}

// StopDaemon stops the sync daemon of a role; ErrNotFound if none runs.
func (s *SyncNetlink) StopDaemon(role SyncRole) error {
	_, err := s.request(encodeDaemonCmd(ipvsCmdDelDaemon, SyncDaemon{Role: role}), unix.NLM_F_ACK)
	if errors.Is(err, syscall.ESRCH) {
		err = fmt.Errorf("%w: no %s sync daemon runs (%w)", ErrNotFound, role, err)
	}
	if err != nil {
		return fmt.Errorf("stop the %s sync daemon: %w", role, err)
	}
	return nil
}

// request sends one generic netlink message of the IPVS family and returns
// the payloads of the replies (after the netlink header) until the
// acknowledgement or the end of the dump.
func (s *SyncNetlink) request(payload []byte, flags int) ([][]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	deadline := time.Now().Add(s.timeout)
	sock, err := nl.Subscribe(unix.NETLINK_GENERIC)
	if err != nil {
		return nil, fmt.Errorf("open a generic netlink socket: %w", err)
	}
	defer sock.Close()
	req := nl.NewNetlinkRequest(int(s.family), flags)
	req.AddRawData(payload)
	sock.SetSendTimeout(timeval(s.timeout))
	if err := sock.Send(req); err != nil {
		return nil, timeoutError(err, s.timeout)
	}
	pid, err := sock.GetPid()
	if err != nil {
		return nil, err
	}
	var out [][]byte
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return nil, fmt.Errorf("%w (%s)", ErrTimeout, s.timeout)
		}
		sock.SetReceiveTimeout(timeval(left))
		msgs, from, err := sock.Receive()
		if err != nil {
			return nil, timeoutError(err, s.timeout)
		}
		if from.Pid != nl.PidKernel {
			continue
		}
		for _, m := range msgs {
			if m.Header.Seq != req.Seq || m.Header.Pid != pid {
				continue
			}
			switch m.Header.Type {
			case unix.NLMSG_DONE:
				return out, nil
			case unix.NLMSG_ERROR:
				if len(m.Data) < 4 {
					return nil, errors.New("short netlink error message")
				}
				if errno := int32(native.Uint32(m.Data)); errno != 0 {
					return nil, syscall.Errno(-errno)
				}
				return out, nil
			}
			out = append(out, m.Data)
			if m.Header.Flags&unix.NLM_F_MULTI == 0 {
				return out, nil
			}
		}
	}
}

// timeval converts a time left to a socket timeout, rounded up to a
// millisecond: a zero timeval would mean no deadline at all.
func timeval(d time.Duration) *unix.Timeval {
	tv := unix.NsecToTimeval(max(d, time.Millisecond).Nanoseconds())
	return &tv
}

// timeoutError names the deadline the socket reports as EAGAIN.
func timeoutError(err error, timeout time.Duration) error {
	if errors.Is(err, unix.EAGAIN) {
		return fmt.Errorf("%w (%s)", ErrTimeout, timeout)
	}
	return err
}
