package ipvsctl

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"
)

// fakeGenl plays the kernel's side of a batch: it reads every message of a
// datagram in order, as netlink_rcv_skb does, and answers a message only
// when it fails or asks for an acknowledgement.
type fakeGenl struct {
	t *testing.T
	// fail gives the errno of the nth message it ever received (0: ok).
	fail func(n int, cmd uint8) syscall.Errno
	// received counts messages; sends counts datagrams and their sizes.
	received int
	sends    []int
	replies  [][]byte
	// timeout makes every receive time out.
	timeout bool
	// foreign, when set, is answered first, as a stray reply would be.
	foreign []byte
}

func (f *fakeGenl) send(b []byte, _ time.Time) error {
	n := 0
	for len(b) > 0 {
		size := int(native.Uint32(b))
		flags, seq := native.Uint16(b[6:]), native.Uint32(b[8:])
		cmd := b[nlmsgHeaderLen]
		if flags&nlmFRequest == 0 {
			f.t.Errorf("message %d is not a request", f.received)
		}
		b = b[nlmsgAlign(size):]
		ack := flags&nlmFAck != 0
		if ack != (len(b) == 0) {
			f.t.Errorf("message %d: ack asked %v, but it is the last of its datagram: %v", f.received, ack, len(b) == 0)
		}
		var errno syscall.Errno
		if f.fail != nil {
			errno = f.fail(f.received, cmd)
		}
		if errno != 0 || ack {
			r := native.AppendUint32(nil, nlmsgHeaderLen+4+nlmsgHeaderLen)
			r = native.AppendUint16(r, nlmsgError)
			r = native.AppendUint16(r, 0x100) // NLM_F_CAPPED
			r = native.AppendUint32(r, seq)
			r = native.AppendUint32(r, 1234)
			r = native.AppendUint32(r, uint32(-int32(errno)))
			r = append(r, make([]byte, nlmsgHeaderLen)...)
			f.replies = append(f.replies, r)
		}
		f.received++
		n++
	}
	f.sends = append(f.sends, n)
	return nil
}

func (f *fakeGenl) receive(buf []byte, _ time.Time) (int, error) {
	if f.timeout {
		return 0, ErrTimeout
	}
	if f.foreign != nil {
		n := copy(buf, f.foreign)
		f.foreign = nil
		return n, nil
	}
	if len(f.replies) == 0 {
		f.t.Fatal("read with no reply queued: the writer waits for an answer that never comes")
	}
	n := copy(buf, f.replies[0])
	f.replies = f.replies[1:]
	return n, nil
}

// batchOps is services of ten destinations each, as the diff lists them.
func batchOps(services int) []Op {
	var ops []Op
	for s := range services {
		svc := Service{Key: ServiceKey{Protocol: TCP, Address: netip.MustParseAddr("10.0.0.1"), Port: uint16(1000 + s)}, Scheduler: "wrr"}
		ops = append(ops, Op{Kind: AddService, Service: svc})
		for d := range 10 {
			ops = append(ops, Op{Kind: AddDestination, Service: svc, Destination: Destination{
				Address: netip.AddrFrom4([4]byte{10, 1, byte(s), byte(d)}), Port: svc.Key.Port, Weight: 1, Forwarding: DirectRouting}})
		}
	}
	return ops
}

func TestBatchWriterSendsManyOperationsPerDatagram(t *testing.T) {
	f := &fakeGenl{t: t}
	w := &ipvsConn{t: f, family: 42, timeout: time.Second}
	ops := batchOps(60) // 660 operations
	errnos, err := w.write(ops)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fmt.Sprint(f.sends), "[256 256 148]"; got != want {
		t.Errorf("datagrams of %s operations, want %s", got, want)
	}
	for i, e := range errnos {
		if e != 0 {
			t.Errorf("operation %d: errno %d", i, e)
		}
	}
	// A second write uses fresh sequence numbers: a late reply to the
	// first cannot be taken for an answer to the second.
	if w.seq != uint32(len(ops)) {
		t.Errorf("sequence after the write %d, want %d", w.seq, len(ops))
	}
}

func TestBatchWriterNamesTheOperationsThatFailed(t *testing.T) {
	ops := batchOps(30) // 330: two datagrams
	failures := map[int]syscall.Errno{5: syscall.EEXIST, 300: syscall.ENOENT, 329: syscall.ESRCH}
	f := &fakeGenl{t: t, fail: func(n int, _ uint8) syscall.Errno { return failures[n] }}
	w := &ipvsConn{t: f, family: 42, timeout: time.Second}
	errnos, err := w.write(ops)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range errnos {
		if syscall.Errno(e) != failures[i] {
			t.Errorf("operation %d: errno %d, want %d", i, e, failures[i])
		}
	}
}

func TestBatchWriterSkipsRepliesThatAreNotItsOwn(t *testing.T) {
	stray := native.AppendUint32(nil, nlmsgHeaderLen+4)
	stray = native.AppendUint16(stray, nlmsgError)
	stray = native.AppendUint16(stray, 0)
	stray = native.AppendUint32(stray, 99999) // no message of ours
	stray = native.AppendUint32(stray, 0)
	stray = native.AppendUint32(stray, 0xffffffea) // -EINVAL
	f := &fakeGenl{t: t, foreign: stray}
	w := &ipvsConn{t: f, family: 42, timeout: time.Second}
	errnos, err := w.write(batchOps(1))
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range errnos {
		if e != 0 {
			t.Errorf("operation %d took a stray reply's errno %d", i, e)
		}
	}
}

func TestBatchWriterReportsAnExchangeWithNoAnswer(t *testing.T) {
	f := &fakeGenl{t: t, timeout: true}
	w := &ipvsConn{t: f, family: 42, timeout: time.Second}
	if _, err := w.write(batchOps(1)); !errors.Is(err, ErrTimeout) {
		t.Errorf("got %v, want ErrTimeout", err)
	}
}

func TestJoinOpErrorsKeepsOnlyTheServiceOfDestinationsThatFollowedIt(t *testing.T) {
	ops := batchOps(2)
	results := make([]error, len(ops))
	results[0] = ErrExists // the first service
	for i := 1; i <= 10; i++ {
		results[i] = ErrNotFound // its destinations, refused with it
	}
	results[12] = ErrNotFound // a destination of the second, which was added
	err := joinOpErrors(ops, results, nil)
	lines := strings.Split(err.Error(), "\n")
	want := []string{
		"add service -t 10.0.0.1:1000: already exists",
		"add real server 10.1.1.0:1001 to -t 10.0.0.1:1001: not found",
	}
	if strings.Join(lines, "|") != strings.Join(want, "|") {
		t.Errorf("errors\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	if !errors.Is(err, ErrExists) {
		t.Error("the kernel's reason is lost")
	}
}
