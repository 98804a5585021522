package ipvsctl

import (
	"errors"
	"fmt"
	"syscall"
	"time"
)

// A table of 10,000 real servers is 11,000 operations. Sent one request and
// one acknowledgement at a time, as ipvsadm and moby/ipvs do, the syscalls
// and the per-call work cost more than the kernel's own work. Generic
// netlink takes many messages in one datagram and handles them in order,
// during the send, answering only the failed ones unless asked for an
// acknowledgement; so a batch is one send and, normally, one receive: the
// acknowledgement of its last message, asked for to know the batch is done.
const (
	// batchMaxOps bounds the error replies one batch can queue (each is a
	// socket buffer of its own) well inside the receive buffer.
	batchMaxOps = 256
	// batchMaxBytes keeps a batch inside the default send buffer.
	batchMaxBytes = 48 << 10
	// batchReceiveBuffer is the receive buffer asked for: room for a whole
	// batch of failures.
	batchReceiveBuffer = 1 << 20

	nlmsgHeaderLen = 16
	nlmsgError     = 2
	nlmsgDone      = 3
	nlmFRequest    = 0x1
	nlmFAck        = 0x4
	nlmFDumpIntr   = 0x10
	nlmFDump       = 0x300
)

// opTransport carries netlink datagrams to the kernel and back.
type opTransport interface {
	// send writes one datagram of messages.
	send(b []byte, deadline time.Time) error
	// receive reads the next datagram of replies into buf.
	receive(buf []byte, deadline time.Time) (int, error)
}

// ipvsConn is lvsdr's generic netlink connection to IPVS: it writes
// operations in batches and reads the table with dumps.
type ipvsConn struct {
	t       opTransport
	family  uint16
	seq     uint32
	timeout time.Duration
	buf     []byte
	reply   []byte
}

// write runs ops in order and returns, for each, the kernel's errno (0 for
// success). err is set when the exchange itself failed (no answer in time,
// replies lost): then what the kernel did with the batch in flight is
// unknown, and so is every operation after it.
func (w *ipvsConn) write(ops []Op) (errnos []int32, err error) {
	errnos = make([]int32, len(ops))
	for first := 0; first < len(ops); {
		last, err := w.pack(ops, first)
		if err != nil {
			return errnos, err
		}
		if err := w.exchange(errnos, first, last); err != nil {
			return errnos, err
		}
		first = last + 1
	}
	w.seq += uint32(len(ops))
	return errnos, nil
}

// pack encodes ops from first on into w.buf, up to the batch bounds, and
// returns the index of the last one packed. Message i carries sequence
// number w.seq+i, so a reply names its operation.
func (w *ipvsConn) pack(ops []Op, first int) (int, error) {
	w.buf = w.buf[:0]
	last, lastAt := first, 0
	for i := first; i < len(ops) && i-first < batchMaxOps; i++ {
		payload, err := encodeOp(ops[i])
		if err != nil {
			return 0, err
		}
		if i > first && len(w.buf)+nlmsgHeaderLen+len(payload) > batchMaxBytes {
			break
		}
		lastAt = len(w.buf)
		w.buf = appendNlmsg(w.buf, w.family, nlmFRequest, w.seq+uint32(i), payload)
		last = i
	}
	// Only the last message asks for an acknowledgement: the others
	// answer only if they fail.
	native.PutUint16(w.buf[lastAt+6:], nlmFRequest|nlmFAck)
	return last, nil
}

// exchange sends w.buf and reads replies until the acknowledgement of
// its last message, recording the errno of every failed operation.
func (w *ipvsConn) exchange(errnos []int32, first, last int) error {
	deadline := time.Now().Add(w.timeout)
	if err := w.t.send(w.buf, deadline); err != nil {
		return fmt.Errorf("send %d IPVS operations: %w", last-first+1, err)
	}
	if cap(w.reply) == 0 {
		w.reply = make([]byte, 64<<10)
	}
	base := w.seq
	for {
		n, err := w.t.receive(w.reply[:cap(w.reply)], deadline)
		if err != nil {
			return fmt.Errorf("read the kernel's answer to %d IPVS operations: %w", last-first+1, err)
		}
		done, err := w.readReplies(w.reply[:n], errnos, base, first, last)
		if err != nil {
			return err
		}
		if done {
			return nil
		}
	}
}

// readReplies records the errors in one datagram of replies and reports
// whether it held the answer to the batch's last message.
func (w *ipvsConn) readReplies(b []byte, errnos []int32, base uint32, first, last int) (bool, error) {
	done := false
	for len(b) >= nlmsgHeaderLen {
		n := int(native.Uint32(b))
		if n < nlmsgHeaderLen || n > len(b) {
			return false, errors.New("malformed netlink reply from the kernel")
		}
		typ, seq := native.Uint16(b[4:]), native.Uint32(b[8:])
		i := int(seq - base)
		if typ == nlmsgError && i >= first && i <= last {
			if n < nlmsgHeaderLen+4 {
				return false, errors.New("short netlink error message")
			}
			errnos[i] = -int32(native.Uint32(b[nlmsgHeaderLen:]))
			if i == last {
				done = true
			}
		}
		b = b[min(nlmsgAlign(n), len(b)):]
	}
	return done, nil
}

// dump sends one dump request and hands the payload of each reply (after
// the netlink header) to each, until the kernel says the dump is done.
func (w *ipvsConn) dump(payload []byte, each func([]byte) error) error {
	seq := w.seq
	w.seq++
	w.buf = appendNlmsg(w.buf[:0], w.family, nlmFRequest|nlmFDump, seq, payload)
	deadline := time.Now().Add(w.timeout)
	if err := w.t.send(w.buf, deadline); err != nil {
		return err
	}
	if cap(w.reply) == 0 {
		w.reply = make([]byte, 64<<10)
	}
	for {
		n, err := w.t.receive(w.reply[:cap(w.reply)], deadline)
		if err != nil {
			return err
		}
		for b := w.reply[:n]; len(b) >= nlmsgHeaderLen; {
			size := int(native.Uint32(b))
			if size < nlmsgHeaderLen || size > len(b) {
				return errors.New("malformed netlink reply from the kernel")
			}
			typ, flags, rseq := native.Uint16(b[4:]), native.Uint16(b[6:]), native.Uint32(b[8:])
			msg := b[nlmsgHeaderLen:size]
			b = b[min(nlmsgAlign(size), len(b)):]
			if rseq != seq {
				continue
			}
			switch typ {
			case nlmsgDone:
				if flags&nlmFDumpIntr != 0 {
					return errDumpInterrupted
				}
				return nil
			case nlmsgError:
				if len(msg) < 4 {
					return errors.New("short netlink error message")
				}
				if errno := -int32(native.Uint32(msg)); errno != 0 {
					return syscall.Errno(errno)
				}
				return nil
			}
			if err := each(msg); err != nil {
				return err
			}
		}
	}
}

func appendNlmsg(b []byte, family, flags uint16, seq uint32, payload []byte) []byte {
	b = native.AppendUint32(b, uint32(nlmsgHeaderLen+len(payload)))
	b = native.AppendUint16(b, family)
	b = native.AppendUint16(b, flags)
	b = native.AppendUint32(b, seq)
	b = native.AppendUint32(b, 0) // port id: the kernel fills in ours
	b = append(b, payload...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

func nlmsgAlign(n int) int { return (n + 3) &^ 3 }
