package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/lvsdr/lvsdr/healthcheck"
	"github.com/lvsdr/lvsdr/internal/clock"
)

// checksMain is the checker process: it starts the listener process, runs
// the checks and reports.
func checksMain(args []string) error {
	fs := flag.NewFlagSet("checks", flag.ContinueOnError)
	n := fs.Int("checks", 10000, "TCP checks to run, one target each")
	interval := fs.Duration("interval", time.Second, "check interval")
	duration := fs.Duration("duration", 30*time.Second, "measurement window")
	warmup := fs.Duration("warmup", 0, "time before the window; 0 means one interval (the staggered first checks) plus 5s")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the window to this file")
	floorFor := fs.Duration("floor", 10*time.Second, "after the window, run the bare syscalls of one check back to back this long against the same listeners (0: skip)")
	busy := fs.Int("busy", 0, "goroutines spinning beside the checker, warm-up and window: with GOMAXPROCS=1, an overload")
	remote := fs.String("remote", "", "check listeners already running on this address and the next ones, -per-node ports each from 20000, instead of starting the loopback listeners (the VM run's node namespaces)")
	perNode := fs.Int("per-node", 100, "ports of each -remote address")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *n <= 0 || *interval <= 0 || *duration <= 0 {
		return fmt.Errorf("-checks, -interval and -duration must be positive")
	}
	if *warmup == 0 {
		*warmup = *interval + 5*time.Second
	}

	// The listener holds n listening sockets and up to one accepted
	// connection each, the checker up to two sockets per target (one
	// connecting, one waiting for the server's FIN); twice that, since an
	// overloaded listener hit 2n+64 (EMFILE on accept). Set
	// before the listener starts: a child inherits a limit the program set
	// itself (Go gives children back the original soft limit otherwise).
	if err := raiseNofile(uint64(4**n+64), uint64(*n+64)); err != nil {
		return err
	}
	target := address
	lst := &listener{}
	if *remote != "" {
		first, err := netip.ParseAddr(*remote)
		if err != nil || !first.Is4() || *perNode <= 0 {
			return fmt.Errorf("-remote %q -per-node %d: want an IPv4 address and a positive count", *remote, *perNode)
		}
		target = func(i int) (netip.AddrPort, error) {
			a := first.As4()
			a[3] += byte(i / *perNode)
			return netip.AddrPortFrom(netip.AddrFrom4(a), uint16(firstPort+i%*perNode)), nil
		}
	} else {
		var err error
		if lst, err = startListener(*n); err != nil {
			return err
		}
		defer lst.stop()
	}

	var c counters
	targets := make([]healthcheck.Target, *n)
	for i := range targets {
		ap, err := target(i)
		if err != nil {
			return err
		}
		targets[i] = healthcheck.Target{
			Key:              healthcheck.Key{Service: "bench", RealServer: ap.String(), Check: "tcp"},
			Prober:           &healthcheck.TCPProber{Address: ap.String()},
			Interval:         *interval,
			ConnectTimeout:   time.Second,
			Retry:            1,
			DelayBeforeRetry: time.Second,
			Rise:             1,
			Initial:          healthcheck.Unknown,
		}
	}
	m := healthcheck.NewManager(clock.Real{}, func(t healthcheck.Transition) {
		c.transitions.Add(1)
		if t.To == healthcheck.Down {
			c.downs.Add(1)
		}
	})
	// Probes are counted as the director's metrics see them: every probe,
	// retries included, through the observer (a wrapping prober would
	// take the TCP checks off the fast path).
	m.OnProbe(func(_ healthcheck.Key, _ time.Duration, err error) {
		c.probes.Add(1)
		if err != nil {
			c.failures.Add(1)
			c.noteFailure(err)
		}
	})
	m.SetLogger(slog.New(slog.NewTextHandler(os.Stderr, nil)))
	stopBusy := spin(*busy)
	m.Update(targets)
	time.Sleep(*warmup)

	before, err := sample(lst.pid, &c)
	if err != nil {
		return err
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
	}
	time.Sleep(*duration)
	if *cpuprofile != "" {
		pprof.StopCPUProfile()
	}
	after, err := sample(lst.pid, &c)
	if err != nil {
		return err
	}
	// Read before Stop: the figures are those of a running checker.
	snap := m.Snapshot()
	lag := m.Lag()
	goroutines := runtime.NumGoroutine()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	status, err := readKeyed("/proc/self/status", ":")
	if err != nil {
		return err
	}
	m.Stop()
	stopBusy()

	var fl floorResult
	if *floorFor > 0 {
		if fl, err = floor(*n, *floorFor, target); err != nil {
			return err
		}
	}
	report(os.Stdout, reportInput{
		n: *n, interval: *interval, before: before, after: after,
		snap: snap, goroutines: goroutines, mem: &ms, status: status, c: &c,
		lag: lag, busy: *busy, floor: fl,
	})
	return nil
}

// spin starts n goroutines that burn CPU until the returned func is called.
func spin(n int) (stop func()) {
	var done atomic.Bool
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			x := 0
			for !done.Load() {
				for i := range 1000 {
					x += i
				}
			}
			_ = x
		}()
	}
	return func() { done.Store(true); wg.Wait() }
}

// counters are shared by every target's prober and the notify callback.
type counters struct {
	probes, failures   atomic.Int64
	transitions, downs atomic.Int64

	mu sync.Mutex
	// errs counts failures by message, to tell a timeout from a refusal
	// from a local port shortage.
	errs map[string]int
}

func (c *counters) noteFailure(err error) {
	if err == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.errs == nil {
		c.errs = map[string]int{}
	}
	msg := err.Error()
	// One target's address makes every message different; keep the cause.
	if i := strings.LastIndex(msg, ": "); i >= 0 {
		msg = msg[i+2:]
	}
	c.errs[msg]++
}

// listener is the listener process.
type listener struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	pid   int
}

func startListener(n int) (*listener, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("listener: %w", err)
	}
	cmd := exec.Command(self, "listen", "-checks", strconv.Itoa(n))
	cmd.Stderr = os.Stderr
	// Should the checker die without cleaning up, the kernel ends the
	// listener too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("listener: %w", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("listener: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("listener: %w", err)
	}
	l := &listener{cmd: cmd, stdin: stdin, pid: cmd.Process.Pid}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if strings.TrimSpace(line) != "ready" {
		l.stop()
		return nil, fmt.Errorf("listener did not get ready (read %q): %v", line, err)
	}
	return l, nil
}

// stop closes the listener's stdin, which ends it, and reaps it.
func (l *listener) stop() {
	l.stdin.Close()
	done := make(chan struct{})
	go func() { l.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		l.cmd.Process.Kill()
		<-done
	}
}

// raiseNofile raises the open-file limit to want, or as near as the hard
// limit allows without CAP_SYS_RESOURCE, and fails below least. In flight
// are far fewer connections than targets unless the checker is overloaded,
// so least (every listening socket, and some) is what is needed.
func raiseNofile(want, least uint64) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("getrlimit nofile: %w", err)
	}
	if lim.Max < want {
		raised := syscall.Rlimit{Cur: want, Max: want}
		if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised) == nil {
			return nil
		}
	}
	if lim.Max < least {
		return fmt.Errorf("open-file limit: hard limit %d is below the %d needed, and raising it failed (run as root)", lim.Max, least)
	}
	// Set it even when it is high enough: children then inherit this
	// limit, not the one the program started with.
	lim.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("setrlimit nofile %d: %w", lim.Cur, err)
	}
	return nil
}

// userHZ is the unit of utime and stime in /proc/PID/stat: the kernel
// exports them in USER_HZ, which is 100 whatever the kernel's own HZ.
const userHZ = 100

// snapshot is what is read at each end of the window.
type snapshot struct {
	wall                    time.Time
	selfCPU, selfSys        time.Duration
	listenerTicks           int64
	machineBusy, machineAll int64
	probes, failures        int64
	trans, downs            int64
	numGC                   uint32
	mallocs                 uint64
	// sched is the runtime's histogram of how long goroutines waited
	// runnable before they ran: the checker's own queueing.
	sched   metrics.Float64Histogram
	netstat map[string]int64
}

func sample(listenerPID int, c *counters) (snapshot, error) {
	var s snapshot
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return s, fmt.Errorf("getrusage: %w", err)
	}
	s.wall = time.Now()
	s.selfCPU = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	s.selfSys = time.Duration(ru.Stime.Nano())
	var err error
	if listenerPID != 0 {
		if s.listenerTicks, err = procTicks(listenerPID); err != nil {
			return s, err
		}
	}
	if s.machineBusy, s.machineAll, err = machineTicks(); err != nil {
		return s, err
	}
	if s.netstat, err = tcpExt(); err != nil {
		return s, err
	}
	s.probes, s.failures = c.probes.Load(), c.failures.Load()
	s.trans, s.downs = c.transitions.Load(), c.downs.Load()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	s.numGC = ms.NumGC
	s.mallocs = ms.Mallocs
	m := []metrics.Sample{{Name: "/sched/latencies:seconds"}}
	metrics.Read(m)
	if m[0].Value.Kind() == metrics.KindFloat64Histogram {
		h := m[0].Value.Float64Histogram()
		s.sched = metrics.Float64Histogram{Counts: append([]uint64(nil), h.Counts...), Buckets: h.Buckets}
	}
	return s, nil
}

// procTicks returns a process's user+system CPU time, all threads, in
// USER_HZ ticks.
func procTicks(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("listener cpu: %w", err)
	}
	// The command name may hold spaces; the fields count from after it.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("listener cpu: short /proc/%d/stat", pid)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("listener cpu: /proc/%d/stat: utime %q stime %q", pid, f[11], f[12])
	}
	return utime + stime, nil
}

// machineTicks returns the busy and total ticks of all CPUs from /proc/stat.
// The kernel's side of loopback TCP is charged partly to softirq time, not
// always to either process, so the machine's figure is the whole bill.
func machineTicks() (busy, all int64, err error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, fmt.Errorf("machine cpu: %w", err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0, 0, fmt.Errorf("machine cpu: unexpected /proc/stat line %q", line)
	}
	// user nice system idle iowait irq softirq steal
	for i, v := range f[1:9] {
		t, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("machine cpu: /proc/stat: %w", err)
		}
		all += t
		if i != 3 && i != 4 {
			busy += t
		}
	}
	return busy, all, nil
}

// tcpExt returns the TcpExt counters of this network namespace.
func tcpExt() (map[string]int64, error) {
	b, err := os.ReadFile("/proc/net/netstat")
	if err != nil {
		return nil, fmt.Errorf("tcp counters: %w", err)
	}
	lines := strings.Split(string(b), "\n")
	for i := 0; i+1 < len(lines); i += 2 {
		names, values := strings.Fields(lines[i]), strings.Fields(lines[i+1])
		if len(names) == 0 || names[0] != "TcpExt:" || len(names) != len(values) {
			continue
		}
		out := make(map[string]int64, len(names))
		for j := 1; j < len(names); j++ {
			v, _ := strconv.ParseInt(values[j], 10, 64)
			out[names[j]] = v
		}
		return out, nil
	}
	return nil, fmt.Errorf("tcp counters: no TcpExt in /proc/net/netstat")
}

// readKeyed reads "key<sep> value" lines, such as /proc/self/status.
func readKeyed(path, sep string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	out := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, sep); ok {
			out[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return out, nil
}

// kib parses "1234 kB".
func kib(s string) float64 {
	v, _ := strconv.ParseFloat(strings.TrimSuffix(s, " kB"), 64)
	return v
}

func readTrim(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "?"
	}
	return strings.Join(strings.Fields(string(b)), "-")
}

type reportInput struct {
	n             int
	interval      time.Duration
	before, after snapshot
	snap          map[healthcheck.Key]healthcheck.Status
	goroutines    int
	mem           *runtime.MemStats
	status        map[string]string
	c             *counters
	lag           time.Duration
	busy          int
	floor         floorResult
}

// report prints the figures as key=value lines, one topic a line.
// checker_sys_share_pct is the part of the checker's CPU spent in the kernel
// (on loopback the whole TCP handshake runs in the connecting process).
// rest_machine_pct is the machine's busy share charged to neither process:
// other programs on this shared machine, and kernel work (loopback softirq)
// accounted apart from both.
func report(w io.Writer, in reportInput) {
	b, a := in.before, in.after
	wall := a.wall.Sub(b.wall).Seconds()
	probes := a.probes - b.probes
	selfCPU := (a.selfCPU - b.selfCPU).Seconds()
	listenerCPU := float64(a.listenerTicks-b.listenerTicks) / userHZ
	cores := float64(runtime.NumCPU())
	machine := 100 * float64(a.machineBusy-b.machineBusy) / float64(a.machineAll-b.machineAll)

	up := 0
	lat := make([]time.Duration, 0, len(in.snap))
	for _, st := range in.snap {
		if st.State == healthcheck.Up {
			up++
		}
		lat = append(lat, st.Latency)
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) float64 {
		if len(lat) == 0 {
			return 0
		}
		return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000
	}
	delta := func(name string) int64 { return a.netstat[name] - b.netstat[name] }
	perProbe := 0.0
	if probes > 0 {
		perProbe = 1e6 * selfCPU / float64(probes)
	}

	fmt.Fprintf(w, "checks=%d interval=%v window=%.0fs probes=%d probes_per_s=%.1f expected_per_s=%.1f failures=%d transitions=%d downs=%d up=%d\n",
		in.n, in.interval, wall, probes, float64(probes)/wall, float64(in.n)/in.interval.Seconds(),
		a.failures-b.failures, a.trans-b.trans, a.downs-b.downs, up)
	fmt.Fprintf(w, "checker_cpu_core_pct=%.1f checker_cpu_machine_pct=%.1f checker_cpu_us_per_probe=%.1f listener_cpu_core_pct=%.1f listener_cpu_machine_pct=%.1f machine_busy_pct=%.1f cores=%d\n",
		100*selfCPU/wall, 100*selfCPU/wall/cores, perProbe,
		100*listenerCPU/wall, 100*listenerCPU/wall/cores, machine, runtime.NumCPU())
	fmt.Fprintf(w, "checker_sys_share_pct=%.1f rest_machine_pct=%.1f\n",
		100*(a.selfSys-b.selfSys).Seconds()/selfCPU, machine-100*(selfCPU+listenerCPU)/wall/cores)
	fmt.Fprintf(w, "rss_mib=%.1f hwm_mib=%.1f rss_kib_per_check=%.1f goroutines=%d heap_inuse_mib=%.1f stack_inuse_mib=%.1f go_sys_mib=%.1f gc_per_s=%.1f\n",
		kib(in.status["VmRSS"])/1024, kib(in.status["VmHWM"])/1024, kib(in.status["VmRSS"])/float64(in.n), in.goroutines,
		float64(in.mem.HeapInuse)/(1<<20), float64(in.mem.StackInuse)/(1<<20), float64(in.mem.Sys)/(1<<20),
		float64(a.numGC-b.numGC)/wall)
	maxLate := time.Duration(0)
	for _, st := range in.snap {
		maxLate = max(maxLate, st.Lateness)
	}
	fmt.Fprintf(w, "lag_ms=%.1f last_lateness_max_ms=%.1f busy_goroutines=%d gomaxprocs=%d allocs_per_probe=%.2f\n",
		float64(in.lag.Microseconds())/1000, float64(maxLate.Microseconds())/1000, in.busy, runtime.GOMAXPROCS(0),
		float64(a.mallocs-b.mallocs)/max(1, float64(probes)))
	if f := in.floor; f.probes > 0 {
		floorUS := 1e6 * f.cpu.Seconds() / float64(f.probes)
		ratio := 0.0
		if floorUS > 0 {
			ratio = perProbe / floorUS
		}
		fmt.Fprintf(w, "floor_probes=%d floor_failures=%d floor_probes_per_s=%.0f floor_cpu_us_per_probe=%.1f floor_sys_share_pct=%.1f checker_vs_floor=%.2f\n",
			f.probes, f.failures, float64(f.probes)/f.wall.Seconds(), floorUS, 100*f.sys.Seconds()/f.cpu.Seconds(), ratio)
	}
	fmt.Fprintf(w, "latency_p50_ms=%.3f latency_p99_ms=%.3f latency_max_ms=%.3f sched_wait_p50_ms=%.3f sched_wait_p99_ms=%.3f\n",
		pct(0.5), pct(0.99), pct(1), schedPct(b.sched, a.sched, 0.5), schedPct(b.sched, a.sched, 0.99))
	fmt.Fprintf(w, "tw_sockets=%s tw_overflow=%d listen_overflows=%d listen_drops=%d port_range=%s max_tw_buckets=%s tw_reuse=%s\n",
		timeWait(), delta("TCPTimeWaitOverflow"), delta("ListenOverflows"), delta("ListenDrops"),
		readTrim("/proc/sys/net/ipv4/ip_local_port_range"), readTrim("/proc/sys/net/ipv4/tcp_max_tw_buckets"),
		readTrim("/proc/sys/net/ipv4/tcp_tw_reuse"))
	in.c.mu.Lock()
	defer in.c.mu.Unlock()
	if len(in.c.errs) > 0 {
		msgs := make([]string, 0, len(in.c.errs))
		for m, k := range in.c.errs {
			msgs = append(msgs, fmt.Sprintf("%dx %q", k, m))
		}
		sort.Strings(msgs)
		fmt.Fprintf(w, "# errors since start (warm-up included): %s\n", strings.Join(msgs, ", "))
	}
}

// schedPct returns the p quantile, in milliseconds, of the scheduling
// latencies recorded between two reads of the runtime's histogram.
func schedPct(before, after metrics.Float64Histogram, p float64) float64 {
	if len(after.Counts) == 0 || len(before.Counts) != len(after.Counts) {
		return -1
	}
	var total uint64
	for i := range after.Counts {
		total += after.Counts[i] - before.Counts[i]
	}
	want := uint64(p * float64(total))
	var seen uint64
	for i := range after.Counts {
		seen += after.Counts[i] - before.Counts[i]
		if seen > want {
			// The bucket's upper bound: the histogram says no more.
			return 1000 * after.Buckets[i+1]
		}
	}
	return -1
}

// timeWait returns the TIME_WAIT sockets of this namespace from
// /proc/net/sockstat ("TCP: inuse 5 orphan 0 tw 123 alloc 8 mem 1").
func timeWait() string {
	b, err := os.ReadFile("/proc/net/sockstat")
	if err != nil {
		return "?"
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && f[0] == "TCP:" {
			for i := 1; i+1 < len(f); i += 2 {
				if f[i] == "tw" {
					return f[i+1]
				}
			}
		}
	}
	return "?"
}
