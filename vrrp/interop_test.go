//go:build vrrpinterop

package vrrp

// The interop proof against Debian's keepalived 2.2.7: test/vrrp/run.sh
// makes two network namespaces joined by a veth pair, runs this test binary
// in one (an lvsdr Router on a RawConn) and keepalived in the other (started
// and killed by the test with `ip netns exec`). Each mode checks both
// directions: each side accepts the other's adverts (the backup stays
// backup), exactly one master, takeover on death (kill -9) and on priority 0
// (lvsdr's shutdown, keepalived's SIGTERM). Takeover times are printed.

import (
	"bufio"
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/lvsdr/lvsdr/internal/clock"
)

type interopEnv struct {
	iface, kaNS, kaIface, bridgeNS, cutPort, workdir string
	local, kaAddr                                    netip.Addr
}

type interopMode struct {
	name     string
	version  int
	interval time.Duration
	unicast  bool
}

var interopVIPs = []netip.Addr{netip.MustParseAddr("10.99.0.100"), netip.MustParseAddr("10.99.0.101")}

func TestInterop(t *testing.T) {
	env := interopEnv{
		iface: os.Getenv("VRRP_IFACE"), kaNS: os.Getenv("VRRP_KA_NS"), kaIface: os.Getenv("VRRP_KA_IFACE"),
		bridgeNS: os.Getenv("VRRP_BRIDGE_NS"), cutPort: os.Getenv("VRRP_CUT_PORT"), workdir: os.Getenv("VRRP_WORKDIR"),
	}
	if env.kaNS == "" {
		t.Skip("run by test/vrrp/run.sh (network namespaces, keepalived)")
	}
	env.local = netip.MustParseAddr(os.Getenv("VRRP_LOCAL"))
	env.kaAddr = netip.MustParseAddr(os.Getenv("VRRP_KA_ADDR"))
	var results []string
	for _, m := range []interopMode{
		{"v2-1s-multicast", 2, time.Second, false},
		{"v2-1s-unicast", 2, time.Second, true},
		{"v3-100ms-multicast", 3, 100 * time.Millisecond, false},
		{"v3-100ms-unicast", 3, 100 * time.Millisecond, true},
	} {
		t.Run(m.name, func(t *testing.T) { results = append(results, interopMode1(t, env, m)...) })
	}
	fmt.Printf("\nVRRP takeover against keepalived 2.2.7: from the kill or stop of the master to the\n")
	fmt.Printf("backup's first advert as master (keepalived's, seen on the wire) or transition (lvsdr's);\n")
	fmt.Printf("bound: Master_Down_Interval after the master's last advert, or Skew_Time after its priority 0.\n")
	fmt.Printf("| mode | event | takeover | bound |\n|---|---|---|---|\n")
	for _, r := range results {
		fmt.Println(r)
	}
}

func interopMode1(t *testing.T, env interopEnv, m interopMode) []string {
	var results []string
	record := func(event string, took, bound time.Duration) {
		line := fmt.Sprintf("| %s | %s | %.3f s | %.3f s |", m.name, event, took.Seconds(), bound.Seconds())
		t.Log(line)
		results = append(results, line)
	}
	observe := 3 * m.interval
	if observe < time.Second {
		observe = time.Second
	}
	mdi := func(prio int) time.Duration { return masterDownFor(prio, m.interval) }
	skew := func(prio int) time.Duration { return time.Duration(256-prio) * m.interval / 256 }
	w := watchWire(t, env)
	defer w.conn.Close()
	var kaLogs []string
	defer func() { checkKeepalivedLogs(t, kaLogs) }()
	cut := func(down bool) {
		state := "up"
		if down {
			state = "down"
		}
		if out, err := exec.Command("ip", "-n", env.bridgeNS, "link", "set", env.cutPort, state).CombinedOutput(); err != nil {
			t.Fatalf("link %s: %v %s", state, err, out)
		}
	}

	// A. lvsdr master (150), keepalived backup (100).
	l := startLvsdr(t, env, m, 150)
	defer func() { l.stop(false) }()
	l.waitState(t, StateMaster, time.Time{}, mdi(150)+2*time.Second)
	k := startKeepalived(t, env, m, 100)
	defer func() { k.stop(t, syscall.SIGKILL); kaLogs = append(kaLogs, k.lines()...) }()
	k.waitState(t, "BACKUP", time.Time{}, 5*time.Second)
	time.Sleep(observe)
	oneMaster(t, l, k, "lvsdr")

	// Split brain: cut off, keepalived becomes master too; healed, it
	// yields and lvsdr re-announces.
	cutAt := time.Now()
	cut(true)
	k.waitState(t, "MASTER", cutAt, mdi(100)+2*time.Second)
	healAt := time.Now()
	cut(false)
	k.waitState(t, "BACKUP", healAt, 2*time.Second)
	time.Sleep(observe)
	oneMaster(t, l, k, "lvsdr")
	// keepalived yields when it hears lvsdr; if lvsdr heard keepalived
	// first, it re-announces.
	if w.seenAdvert(env.kaAddr, healAt) {
		l.waitReannounce(t, healAt, 0)
		t.Log("split brain healed: keepalived yielded, lvsdr heard it and re-announced")
	} else {
		t.Log("split brain healed: keepalived yielded on lvsdr's first advert, before sending one")
	}

	// lvsdr dies: no priority 0; keepalived takes over after its master
	// down interval.
	dead := time.Now()
	l.stop(true)
	at := w.firstAdvert(t, env.kaAddr, dead, mdi(100)+2*time.Second)
	record("lvsdr master killed → keepalived", at.Sub(dead), mdi(100))
	k.waitState(t, "MASTER", dead, time.Second)

	// lvsdr returns and preempts; then leaves with priority 0.
	l = startLvsdr(t, env, m, 150)
	l.waitState(t, StateMaster, time.Time{}, mdi(150)+2*time.Second)
	k.waitState(t, "BACKUP", at, 2*time.Second)
	time.Sleep(observe)
	oneMaster(t, l, k, "lvsdr")
	left := time.Now()
	l.stop(false)
	at = w.firstAdvert(t, env.kaAddr, left, mdi(100)+2*time.Second)
	record("lvsdr master stopped (priority 0) → keepalived", at.Sub(left), skew(100))
	k.waitState(t, "MASTER", left, time.Second)

	// B. keepalived master (150), lvsdr backup (100).
	k.stop(t, syscall.SIGTERM)
	kaLogs = append(kaLogs, k.lines()...)
	k = startKeepalived(t, env, m, 150)
	k.waitState(t, "MASTER", time.Time{}, mdi(150)+3*time.Second)
	l = startLvsdr(t, env, m, 100)
	time.Sleep(observe)
	oneMaster(t, l, k, "keepalived")
	if st := l.r.Status(); st.MasterAddr != env.kaAddr || st.Received == 0 || len(st.Rejected) != 0 {
		t.Fatalf("lvsdr backup of keepalived: %+v", st)
	}

	// Split brain: lvsdr cut off becomes master; healed, it yields.
	cutAt = time.Now()
	cut(true)
	l.waitState(t, StateMaster, cutAt, mdi(100)+2*time.Second)
	healAt = time.Now()
	cut(false)
	l.waitState(t, StateBackup, healAt, 2*time.Second)
	time.Sleep(observe)
	oneMaster(t, l, k, "keepalived")

	dead = time.Now()
	k.stop(t, syscall.SIGKILL)
	tr := l.waitState(t, StateMaster, dead, mdi(100)+2*time.Second)
	record("keepalived master killed → lvsdr", tr.At.Sub(dead), mdi(100))
	if tr.Reason != ReasonMasterDown {
		t.Errorf("lvsdr took over: %s", tr.Reason)
	}

	kaLogs = append(kaLogs, k.lines()...)
	k = startKeepalived(t, env, m, 150)
	k.waitState(t, "MASTER", time.Time{}, mdi(150)+3*time.Second)
	l.waitState(t, StateBackup, dead, 2*time.Second)
	time.Sleep(observe)
	oneMaster(t, l, k, "keepalived")
	left = time.Now()
	k.stop(t, syscall.SIGTERM)
	tr = l.waitState(t, StateMaster, left, mdi(100)+2*time.Second)
	record("keepalived master stopped (SIGTERM, priority 0) → lvsdr", tr.At.Sub(left), skew(100))
	if tr.Reason != ReasonPriorityZero {
		t.Errorf("lvsdr took over: %s", tr.Reason)
	}
	if st := l.r.Status(); len(st.Rejected) != 0 {
		t.Errorf("lvsdr rejected keepalived's adverts: %v", st.Rejected)
	}
	return results
}

// checkKeepalivedLogs fails on any line where keepalived says it discarded
// a packet (of lvsdr's: it is the only other sender), but for a master's
// discarding of a lower priority's advert while a split brain heals.
func checkKeepalivedLogs(t *testing.T, lines []string) {
	for _, line := range lines {
		l := strings.ToLower(line)
		if strings.Contains(l, "received lower priority") {
			continue
		}
		for _, word := range []string{"invalid", "mismatch", "wrong", "bad ", "discard", "ignor", "error"} {
			if strings.Contains(l, word) {
				t.Errorf("keepalived: %s", line)
				break
			}
		}
	}
}

// wire records the adverts seen on lvsdr's interface, to time keepalived's
// takeover by its first advert rather than by its log.
type wire struct {
	conn *RawConn
	mu   sync.Mutex
	seen []wireAdvert
}

type wireAdvert struct {
	at   time.Time
	src  netip.Addr
	prio uint8
}

func watchWire(t *testing.T, env interopEnv) *wire {
	t.Helper()
	c, err := Listen(env.iface, netip.Addr{})
	if err != nil {
		t.Fatal(err)
	}
	w := &wire{conn: c}
	go func() {
		for {
			p, err := c.Receive()
			if err != nil {
				return
			}
			now := time.Now()
			if a, err := Unmarshal(p.Payload, p.Src, p.Dst); err == nil {
				w.mu.Lock()
				w.seen = append(w.seen, wireAdvert{now, p.Src, a.Priority})
				w.mu.Unlock()
			}
		}
	}()
	return w
}

// seenAdvert is whether src advertised as master after.
func (w *wire) seenAdvert(src netip.Addr, after time.Time) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, a := range w.seen {
		if a.src == src && a.prio > 0 && !a.at.Before(after) {
			return true
		}
	}
	return false
}

// firstAdvert is when src first advertised as master (priority > 0) after.
func (w *wire) firstAdvert(t *testing.T, src netip.Addr, after time.Time, timeout time.Duration) time.Time {
	t.Helper()
	giveUp := time.Now().Add(timeout)
	for time.Now().Before(giveUp) {
		w.mu.Lock()
		for _, a := range w.seen {
			if a.src == src && a.prio > 0 && !a.at.Before(after) {
				w.mu.Unlock()
				return a.at
			}
		}
		w.mu.Unlock()
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("no advert from %v within %v", src, timeout)
	return time.Time{}
}

// oneMaster checks that exactly one of the pair is master, the one named.
func oneMaster(t *testing.T, l *lvsdrRouter, k *keepalivedProc, want string) {
	t.Helper()
	ls, ks := l.r.Status().State, k.state()
	lm, km := ls == StateMaster, ks == "MASTER"
	if lm == km || (want == "lvsdr") != lm {
		t.Fatalf("lvsdr %v, keepalived %s: want %s alone master", ls, ks, want)
	}
}

// lvsdrRouter is a Router on a RawConn whose sends can be cut, to die as a
// killed process would: silently.
type lvsdrRouter struct {
	r      *Router
	dead   *atomic.Bool
	cancel context.CancelFunc
	done   chan struct{}

	mu  sync.Mutex
	got []Transition
}

type cuttableConn struct {
	Conn
	dead *atomic.Bool
}

func (c cuttableConn) Send(b []byte, dst netip.Addr) error {
	if c.dead.Load() {
		return nil
	}
	return c.Conn.Send(b, dst)
}

func startLvsdr(t *testing.T, env interopEnv, m interopMode, prio int) *lvsdrRouter {
	t.Helper()
	raw, err := Listen(env.iface, netip.Addr{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{VRID: 51, Version: m.version, Interval: m.interval, Priority: prio, Preempt: true, Addresses: interopVIPs}
	if m.unicast {
		cfg.Unicast, cfg.Peers = true, []netip.Addr{env.kaAddr}
	}
	l := &lvsdrRouter{dead: &atomic.Bool{}, done: make(chan struct{})}
	l.r, err = New(cfg, cuttableConn{raw, l.dead}, clock.Real{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	l.cancel = cancel
	go l.r.Run(ctx)
	go func() {
		for tr := range l.r.Transitions() {
			l.mu.Lock()
			l.got = append(l.got, tr)
			l.mu.Unlock()
		}
		close(l.done)
	}()
	return l
}

// stop ends the router: with dead, without a word (kill -9).
func (l *lvsdrRouter) stop(dead bool) {
	if dead {
		l.dead.Store(true)
	}
	l.cancel()
	<-l.done
}

func (l *lvsdrRouter) waitState(t *testing.T, s State, after time.Time, timeout time.Duration) Transition {
	t.Helper()
	giveUp := time.Now().Add(timeout)
	for time.Now().Before(giveUp) {
		l.mu.Lock()
		for _, tr := range l.got {
			if tr.To == s && tr.From != tr.To && !tr.At.Before(after) {
				l.mu.Unlock()
				return tr
			}
		}
		l.mu.Unlock()
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("lvsdr never became %v within %v: %+v", s, timeout, l.r.Status())
	return Transition{}
}

// waitReannounce waits for a split-brain re-announcement.
func (l *lvsdrRouter) waitReannounce(t *testing.T, after time.Time, timeout time.Duration) {
	t.Helper()
	giveUp := time.Now().Add(timeout)
	for first := true; first || time.Now().Before(giveUp); first = false {
		l.mu.Lock()
		for _, tr := range l.got {
			if tr.From == StateMaster && tr.To == StateMaster && tr.Reason == ReasonSplitBrain && !tr.At.Before(after) {
				l.mu.Unlock()
				return
			}
		}
		l.mu.Unlock()
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("lvsdr did not re-announce within %v: %+v", timeout, l.r.Status())
}

// keepalivedProc is keepalived's VRRP process in the other namespace, its
// state read from its log.
type keepalivedProc struct {
	cmd    *exec.Cmd
	exited chan struct{}

	mu     sync.Mutex
	states []kaState
	log    []string
}

type kaState struct {
	state string
	at    time.Time
}

var kaRun atomic.Int32

func startKeepalived(t *testing.T, env interopEnv, m interopMode, prio int) *keepalivedProc {
	t.Helper()
	n := kaRun.Add(1)
	dir := filepath.Join(env.workdir, fmt.Sprintf("ka%d", n))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var uni string
	if m.unicast {
		uni = fmt.Sprintf("unicast_src_ip %v\n    unicast_peer {\n        %v\n    }", env.kaAddr, env.local)
	}
	conf := fmt.Sprintf(`global_defs {
    vrrp_version %d
}
vrrp_instance VI_1 {
    state BACKUP
    interface %s
    virtual_router_id 51
    priority %d
    advert_int %g
    %s
    virtual_ipaddress {
        %v/32
        %v/32
    }
}
`, m.version, env.kaIface, prio, m.interval.Seconds(), uni, interopVIPs[0], interopVIPs[1])
	confPath := filepath.Join(dir, "keepalived.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ip", "netns", "exec", env.kaNS, "keepalived", "--dont-fork", "--log-console",
		"--vrrp", "-f", confPath, "-p", filepath.Join(dir, "keepalived.pid"), "-r", filepath.Join(dir, "vrrp.pid"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	k := &keepalivedProc{cmd: cmd, exited: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			line := sc.Text()
			now := time.Now()
			k.mu.Lock()
			k.log = append(k.log, line)
			for _, s := range []string{"MASTER", "BACKUP", "FAULT"} {
				if strings.Contains(line, "Entering "+s+" STATE") {
					k.states = append(k.states, kaState{s, now})
				}
			}
			k.mu.Unlock()
		}
		r.Close()
	}()
	go func() { cmd.Wait(); close(k.exited) }()
	return k
}

func (k *keepalivedProc) lines() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]string(nil), k.log...)
}

func (k *keepalivedProc) state() string {
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.states) == 0 {
		return "none"
	}
	return k.states[len(k.states)-1].state
}

func (k *keepalivedProc) waitState(t *testing.T, s string, after time.Time, timeout time.Duration) time.Time {
	t.Helper()
	giveUp := time.Now().Add(timeout)
	for time.Now().Before(giveUp) {
		k.mu.Lock()
		for _, st := range k.states {
			if st.state == s && !st.at.Before(after) {
				k.mu.Unlock()
				return st.at
			}
		}
		k.mu.Unlock()
		time.Sleep(5 * time.Millisecond)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	t.Fatalf("keepalived never entered %s within %v; its log:\n%s", s, timeout, strings.Join(k.log, "\n"))
	return time.Time{}
}

// stop signals keepalived: SIGTERM to its parent (which has its VRRP child
// send priority 0), or SIGKILL to its whole process group at once, so that
// the child cannot say anything either.
func (k *keepalivedProc) stop(t *testing.T, sig syscall.Signal) {
	select {
	case <-k.exited:
		return
	default:
	}
	pid := k.cmd.Process.Pid
	if sig == syscall.SIGKILL {
		pid = -pid
	}
	if err := syscall.Kill(pid, sig); err != nil {
		t.Errorf("signal keepalived: %v", err)
	}
	select {
	case <-k.exited:
	case <-time.After(10 * time.Second):
		syscall.Kill(-k.cmd.Process.Pid, syscall.SIGKILL)
		<-k.exited
	}
}
