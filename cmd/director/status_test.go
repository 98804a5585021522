package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lvsdr/lvsdr/director"
	"github.com/lvsdr/lvsdr/internal/clock"
)

// statusDirector answers GET /v1/status on a control socket with report,
// as a running director does.
func statusDirector(t *testing.T, report director.Report) string {
	t.Helper()
	socket := filepath.Join(t.TempDir(), "director.sock")
	ln, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /v1/status", director.StatusHandler(func() (director.Report, error) { return report, nil }, slog.New(slog.DiscardHandler)))
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return socket
}

func twoServiceReport() director.Report {
	nodes := []director.ServerReport{{Name: "rmq_node1", Address: "10.0.0.2:5672"}, {Name: "rmq_node2", Address: "10.0.0.3:5672"}}
	return director.Report{DirectorRunning: true, VIP: "10.0.0.100", Services: []director.ServiceReport{
		{Name: "amqp", Address: "10.0.0.100:5672", RealServers: nodes},
		{Name: "management", Address: "10.0.0.100:15672", RealServers: nodes[:1]},
	}}
}

func TestStatusFlagsFilterTableAndJSON(t *testing.T) {
	socket := statusDirector(t, twoServiceReport())
	for _, tc := range []struct {
		args []string
		want string // services and their nodes, as service:node,node;...
		err  string
	}{
		{want: "amqp:rmq_node1,rmq_node2;management:rmq_node1"},
		{args: []string{"--service", "management"}, want: "management:rmq_node1"},
		{args: []string{"--node", "rmq_node2"}, want: "amqp:rmq_node2"},
		{args: []string{"--node", "rmq_node1,rmq_node2", "--service", "amqp"}, want: "amqp:rmq_node1,rmq_node2"},
		{args: []string{"--node", "rmq_node2", "--node", "rmq_node1"}, want: "amqp:rmq_node1,rmq_node2;management:rmq_node1"},
		{args: []string{"--service", "managment"}, err: `service "managment": not in the topology: did you mean "management"?`},
		{args: []string{"-o", "yaml"}, err: "-o yaml: want table or json"},
		{args: []string{"5s"}, err: `unexpected argument "5s": status takes none (an interval goes after --watch)`},
		{args: []string{"--watch", "soon"}, err: "--watch soon: want an interval such as 2s"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			args := append([]string{"status", "--control-socket", socket}, tc.args...)
			js, err := execute(append(args, "-o", "json")...)
			if tc.err != "" {
				if _, err := execute(args...); err == nil || err.Error() != tc.err {
					t.Errorf("error %v, want %s", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var r director.Report
			if err := json.Unmarshal([]byte(js), &r); err != nil {
				t.Fatalf("%v\n%s", err, js)
			}
			var got []string
			for _, s := range r.Services {
				var names []string
				for _, rs := range s.RealServers {
					names = append(names, rs.Name)
				}
				got = append(got, s.Name+":"+strings.Join(names, ","))
			}
			if strings.Join(got, ";") != tc.want {
				t.Errorf("JSON shows %s, want %s", strings.Join(got, ";"), tc.want)
			}
			table, err := execute(args...)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range strings.Split(tc.want, ";") {
				service, nodes, _ := strings.Cut(s, ":")
				if !strings.Contains(table, "\n"+service+"  ") {
					t.Errorf("the table lacks %s:\n%s", service, table)
				}
				if got := strings.Count(table, "  rmq_node"); got != strings.Count(tc.want, "rmq_node") {
					t.Errorf("the table shows %d real server lines, want %s:\n%s", got, nodes, table)
				}
			}
		})
	}
}

func TestWatchRedrawsEveryIntervalUntilInterrupted(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 11, 30, 5, 0, 0, 0, time.UTC))
	ctx, cancel := context.WithCancel(context.Background())
	var out bytes.Buffer
	frames := make(chan int, 10)
	n := 0
	draw := func(w io.Writer) error {
		n++
		frames <- n
		if n == 2 {
			return errors.New("no director is running")
		}
		fmt.Fprintf(w, "frame %d\n", n)
		return nil
	}
	done := make(chan error, 1)
	go func() { done <- watchStatus(ctx, &out, clk, 3*time.Second, true, true, draw) }()
	<-frames
	clk.BlockUntil(1)
	clk.Advance(2 * time.Second)
	clk.BlockUntil(1)
	if len(frames) != 0 {
		t.Fatal("a frame before the interval")
	}
	clk.Advance(time.Second)
	<-frames
	clk.BlockUntil(1)
	clk.Advance(3 * time.Second)
	<-frames
	clk.BlockUntil(1)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	want := "\033[H\033[2Jevery 3s until interrupted: director status  2026-11-30T05:00:00Z\n\nframe 1\n" +
		"\033[H\033[2Jevery 3s until interrupted: director status  2026-11-30T05:00:03Z\n\ndirector: no director is running\n" +
		"\033[H\033[2Jevery 3s until interrupted: director status  2026-11-30T05:00:06Z\n\nframe 3\n"
	if out.String() != want {
		t.Errorf("frames:\n%q\nwant\n%q", out.String(), want)
	}
}

func TestWatchEndsOnAnUnknownName(t *testing.T) {
	clk := clock.NewFake(time.Now())
	done := make(chan error, 1)
	go func() {
		done <- watchStatus(context.Background(), io.Discard, clk, time.Second, false, false, func(io.Writer) error {
			return fmt.Errorf("service %q: %w", "x", director.ErrUnknownName)
		})
	}()
	parked := make(chan struct{})
	go func() { clk.BlockUntil(1); close(parked) }()
	select {
	case err := <-done:
		if !errors.Is(err, director.ErrUnknownName) {
			t.Errorf("watch with an unknown name: %v", err)
		}
	case <-parked:
		t.Error("the watch went on waiting for the next frame")
	}
}
