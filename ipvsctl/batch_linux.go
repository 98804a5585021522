package ipvsctl

import (
	"errors"
	"fmt"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// netlinkSocket is a generic netlink socket of our own for the batched
// writes: moby/ipvs's handle sends one message per call and cannot batch.
type netlinkSocket struct {
	fd int
}

func openNetlinkSocket() (*netlinkSocket, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_GENERIC)
	if err != nil {
		return nil, fmt.Errorf("open a generic netlink socket: %w", err)
	}
	// Room for a whole batch of failures: FORCE needs CAP_NET_ADMIN, which
	// the director has; without it the default buffer holds most batches,
	// and a lost reply fails the exchange rather than passing unnoticed.
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, batchReceiveBuffer) != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, batchReceiveBuffer)
	}
	// Error replies without a copy of the request: smaller, and we only
	// need their sequence number.
	_ = unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_CAP_ACK, 1)
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("bind a generic netlink socket: %w", err)
	}
	return &netlinkSocket{fd: fd}, nil
}

func (s *netlinkSocket) close() { unix.Close(s.fd) }

func (s *netlinkSocket) send(b []byte, deadline time.Time) error {
	return s.retry(unix.SO_SNDTIMEO, deadline, func() error {
		return unix.Sendto(s.fd, b, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
	})
}

func (s *netlinkSocket) receive(buf []byte, deadline time.Time) (int, error) {
	var n int
	err := s.retry(unix.SO_RCVTIMEO, deadline, func() error {
		var from unix.Sockaddr
		var err error
		n, from, err = unix.Recvfrom(s.fd, buf, 0)
		if err == nil {
			if nl, ok := from.(*unix.SockaddrNetlink); !ok || nl.Pid != 0 {
				return unix.EINTR // not from the kernel: read on
			}
		}
		return err
	})
	return n, err
}

// retry runs a blocking call with the socket's timeout set to what is left
// of the deadline. A socket with a timeout is not restarted after a signal
// (Go preempts goroutines with one), so EINTR means call again.
func (s *netlinkSocket) retry(opt int, deadline time.Time, call func() error) error {
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return ErrTimeout
		}
		if err := unix.SetsockoptTimeval(s.fd, unix.SOL_SOCKET, opt, timeval(left)); err != nil {
			return err
		}
		err := call()
		switch {
		case err == nil:
			return nil
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.EAGAIN):
			return ErrTimeout
		}
		return err
	}
}

// withConn runs fn on the handle's own connection, opening it first if
// needed. After a failed exchange the socket is dropped: replies still on
// their way must not be read as the answers to the next request.
func (n *Netlink) withConn(fn func(c *ipvsConn) error) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.conn == nil {
		sock, err := openNetlinkSocket()
		if err != nil {
			return err
		}
		n.socket = sock
		n.conn = &ipvsConn{t: sock, family: n.family, timeout: n.timeout}
	}
	err := fn(n.conn)
	var errno syscall.Errno
	if err != nil && !errors.As(err, &errno) {
		n.socket.close()
		n.socket, n.conn = nil, nil
		if errors.Is(err, ErrTimeout) {
			err = fmt.Errorf("%w (%s)", err, n.timeout)
		}
	}
	return err
}

// applyBatch writes ops in batches.
func (n *Netlink) applyBatch(ops []Op) ([]error, error) {
	var errnos []int32
	err := n.withConn(func(c *ipvsConn) (err error) {
		errnos, err = c.write(ops)
		return err
	})
	results := make([]error, len(ops))
	for i, errno := range errnos {
		if errno != 0 {
			results[i] = kernelOpError(ops[i], syscall.Errno(errno))
		}
	}
	return results, err
}

// Services lists every virtual service in the kernel.
func (n *Netlink) Services() ([]Service, error) {
	var out []Service
	err := n.withConn(func(c *ipvsConn) error {
		return c.dump(encodeDumpServices(), func(reply []byte) error {
			s, err := decodeService(reply)
			if err == nil {
				out = append(out, s)
			}
			return err
		})
	})
	if err != nil {
		return nil, translate(err)
	}
	return out, nil
}

// Destinations lists the destinations of one service.
func (n *Netlink) Destinations(key ServiceKey) ([]Destination, error) {
	af := uint16(afInet)
	if key.FWMark == 0 && key.Address.Is6() {
		af = afInet6
	}
	var out []Destination
	err := n.withConn(func(c *ipvsConn) error {
		return c.dump(encodeDumpDestinations(key), func(reply []byte) error {
			d, err := decodeDestination(reply, af)
			if err == nil {
				out = append(out, d)
			}
			return err
		})
	})
	if err != nil {
		return nil, translate(err)
	}
	return out, nil
}

// kernelOpError gives an errno of the kernel the meaning the per-call
// methods give it.
func kernelOpError(op Op, errno syscall.Errno) error {
	err := translate(errno)
	switch op.Kind {
	case AddService, UpdateService:
		return schedulerError(op.Service, err)
	case UpdateDestination, DeleteDestination:
		return destinationError(err)
	}
	return err
}
