package director

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lvsdr/lvsdr/topology"
)

const statusFileYAML = `vip: 10.0.0.100
director: {interface: eth0}
services:
  - {name: amqp, port: 5672, scheduler: wrr, check: {type: tcp, interval: 5s, connect_timeout: 3s}}
real_servers:
  - {name: rmq_node1, address: 10.0.0.2, weight: 1}
  - {name: rmq_node2, address: 10.0.0.3, weight: 1}
realserver: {interface: eth0}
`

func TestStatusSaysWhetherTheFileOnDiskIsInForce(t *testing.T) {
	for _, tc := range []struct {
		name string
		// onDisk is the file after the director loaded statusFileYAML;
		// empty removes it.
		onDisk string
		want   FileReport
		line   string
	}{
		{name: "unchanged", onDisk: statusFileYAML, want: FileReport{InForce: true, Valid: true},
			line: "file FILE: in force"},
		{name: "a comment and spacing only", onDisk: "# edited\n" + strings.ReplaceAll(statusFileYAML, "weight: 1}", "weight:   1}"),
			want: FileReport{InForce: true, Valid: true}, line: "file FILE: in force"},
		{name: "a weight changed", onDisk: strings.Replace(statusFileYAML, "weight: 1}", "weight: 5}", 1),
			want: FileReport{Valid: true}, line: "file FILE differs from the topology in force: run director reload"},
		{name: "invalid", onDisk: strings.Replace(statusFileYAML, "scheduler: wrr", "scheduler: wwr", 1),
			want: FileReport{}, line: "file FILE differs from the topology in force and is invalid (a reload would refuse it):"},
		{name: "gone", want: FileReport{}, line: "file FILE differs from the topology in force and is invalid (a reload would refuse it):"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "topology.yaml")
			if err := os.WriteFile(path, []byte(statusFileYAML), 0o644); err != nil {
				t.Fatal(err)
			}
			inForce, err := topology.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			// The first look caches its verdict: the edit must still be seen.
			compareFile(inForce)
			if tc.onDisk == "" {
				os.Remove(path)
			} else if err := os.WriteFile(path, []byte(tc.onDisk), 0o644); err != nil {
				t.Fatal(err)
			}
			got := compareFile(inForce)
			if got.Path != path || got.InForce != tc.want.InForce || got.Valid != tc.want.Valid || (got.Error == "") != tc.want.Valid {
				t.Errorf("compareFile = %+v, want %+v", *got, tc.want)
			}
			var out bytes.Buffer
			writeFileAndReload(&out, Report{File: got})
			if line := strings.ReplaceAll(strings.SplitN(out.String(), "\n", 2)[0], path, "FILE"); line != tc.line {
				t.Errorf("status says %q, want %q", line, tc.line)
			}
			if !tc.want.Valid && !strings.Contains(out.String(), "\n  ") {
				t.Errorf("status does not say why the file is invalid:\n%s", out.String())
			}
		})
	}
}

func TestStatusLastReloadLine(t *testing.T) {
	at := statusNow.Add(-3 * time.Minute)
	for _, tc := range []struct {
		name    string
		running bool
		reload  *ReloadReport
		want    string
	}{
		{name: "no director", want: ""},
		{name: "none yet", running: true, want: "last reload: none since the director started\n"},
		{name: "ok", running: true, reload: &ReloadReport{Time: at, OK: true, Duration: 12345 * time.Microsecond},
			want: "last reload: 3m0s ago (2026-11-30T11:57:00Z): ok in 12ms\n"},
		{name: "quick", running: true, reload: &ReloadReport{Time: at, OK: true, Duration: 300 * time.Microsecond},
			want: "last reload: 3m0s ago (2026-11-30T11:57:00Z): ok in 300µs\n"},
		{name: "refused", running: true, reload: &ReloadReport{Time: at, Error: "topology.yaml:3: unknown key\ntopology.yaml:9: bad weight", Duration: 2 * time.Millisecond},
			want: "last reload: 3m0s ago (2026-11-30T11:57:00Z): FAILED after 2ms:\n  topology.yaml:3: unknown key\n  topology.yaml:9: bad weight\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			writeFileAndReload(&out, Report{Time: statusNow, DirectorRunning: tc.running, LastReload: tc.reload})
			if out.String() != tc.want {
				t.Errorf("got\n%q\nwant\n%q", out.String(), tc.want)
			}
		})
	}
}
