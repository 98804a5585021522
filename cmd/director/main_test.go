package main

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/lvsdr/lvsdr/director"
)

// fakeDirector answers on a control socket as a running director would:
// its checks, and reloads with refuse's reason (accepted when empty).
func fakeDirector(t *testing.T, refuse string) (socket string, reloads *int) {
	t.Helper()
	socket = filepath.Join(t.TempDir(), "director.sock")
	ln, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	reloads = new(int)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/checks", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("[]")) })
	mux.HandleFunc("POST /v1/reload", func(w http.ResponseWriter, _ *http.Request) {
		*reloads++
		if refuse != "" {
			http.Error(w, refuse, http.StatusUnprocessableEntity)
		}
	})
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return socket, reloads
}

// execute runs the director command with args and returns its output.
func execute(args ...string) (string, error) {
	root := rootCommand()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), err
}

func TestReloadSaysWhatTheDirectorDecided(t *testing.T) {
	reason := "checks through the VIP: eth0 has no IPv4 address but the VIP to send checks from"
	refusing, reloads := fakeDirector(t, reason)
	_, err := execute("reload", "--control-socket", refusing)
	if !errors.Is(err, director.ErrReloadRefused) || !strings.Contains(err.Error(), reason) || strings.Contains(err.Error(), "\n") {
		t.Errorf("refused reload: %v; want one line with ErrReloadRefused and %q", err, reason)
	}
	if *reloads != 1 {
		t.Errorf("%d reload requests, want 1", *reloads)
	}

	accepting, _ := fakeDirector(t, "")
	if out, err := execute("reload", "--control-socket", accepting); err != nil || !strings.Contains(out, "reloaded") {
		t.Errorf("accepted reload: %q, %v", out, err)
	}

	if _, err := execute("reload", "--control-socket", filepath.Join(t.TempDir(), "none.sock")); !errors.Is(err, director.ErrNoDirector) {
		t.Errorf("reload without a director: %v, want ErrNoDirector", err)
	}
}

func TestOneShotCommandsRefuseUnderARunningDirector(t *testing.T) {
	socket, _ := fakeDirector(t, "")
	// The refusal comes before the file is read or the kernel opened: this
	// machine has no IPVS, and the file does not exist.
	missing := filepath.Join(t.TempDir(), "missing.yaml")
	for _, cmd := range []string{"apply", "cleanup"} {
		_, err := execute(cmd, "--config", missing, "--control-socket", socket)
		if !errors.Is(err, director.ErrDirectorRunning) {
			t.Errorf("%s under a running director: %v, want ErrDirectorRunning", cmd, err)
		}
		// --force goes on, to the missing file.
		if _, err := execute(cmd, "--force", "--config", missing, "--control-socket", socket); err == nil || errors.Is(err, director.ErrDirectorRunning) {
			t.Errorf("%s --force: %v, want the missing file's error", cmd, err)
		}
	}

	// A preview changes nothing, so it runs under a director.
	config := filepath.Join(t.TempDir(), "topology.yaml")
	os.WriteFile(config, []byte(`vip: 10.77.0.250
director: {interface: lo}
services: [{name: amqp, port: 5672}]
real_servers: [{name: rs1, address: 10.77.0.11}]
realserver: {interface: lo}
`), 0o644)
	out, err := execute("apply", "--dry-run", "--empty-kernel", "--config", config, "--control-socket", socket, "--state-dir", t.TempDir())
	if err != nil || !strings.Contains(out, "-A -t 10.77.0.250:5672") {
		t.Errorf("apply --dry-run under a director: %q, %v", out, err)
	}
}

// systemd hears each state on NOTIFY_SOCKET, a reload with the monotonic
// time that Type=notify units need since systemd 253.
func TestSystemdNotifySendsTheStateAndTheReloadTime(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	t.Setenv("NOTIFY_SOCKET", path)
	notify := systemdNotify(slog.New(slog.NewTextHandler(io.Discard, nil)))
	read := func() string {
		t.Helper()
		buf := make([]byte, 256)
		conn.SetReadDeadline(time.Now().Add(5 * time.Second)) // a hang guard
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		return string(buf[:n])
	}
	notify("READY=1")
	if got := read(); got != "READY=1" {
		t.Errorf("READY=1 sent as %q", got)
	}
	notify("RELOADING=1")
	if got := read(); !regexp.MustCompile(`^RELOADING=1\nMONOTONIC_USEC=[0-9]+\n$`).MatchString(got) {
		t.Errorf("RELOADING=1 sent as %q, want it with MONOTONIC_USEC", got)
	}
}
