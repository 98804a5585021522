package sysctl

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// fakeProc makes a /proc/sys look-alike with the given values.
func fakeProc(t *testing.T, values map[string]string) FS {
	t.Helper()
	f := FS{Root: t.TempDir()}
	for name, v := range values {
		p := f.path(name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(v+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func TestNameAndPathKeepDotsInInterfaceNames(t *testing.T) {
	name := Name("net", "ipv4", "conf", "eth0.100", "arp_ignore")
	if name != "net.ipv4.conf.eth0/100.arp_ignore" {
		t.Errorf("Name = %q", name)
	}
	f := FS{Root: "/proc/sys"}
	if got := f.path(name); got != "/proc/sys/net/ipv4/conf/eth0.100/arp_ignore" {
		t.Errorf("path = %q", got)
	}
}

func TestGetSet(t *testing.T) {
	f := fakeProc(t, map[string]string{"net.ipv4.conf.all.arp_ignore": "0"})
	if v, err := f.Get("net.ipv4.conf.all.arp_ignore"); err != nil || v != "0" {
		t.Fatalf("Get = %q, %v", v, err)
	}
	if err := f.Set("net.ipv4.conf.all.arp_ignore", "1"); err != nil {
		t.Fatal(err)
	}
	if v, _ := f.Get("net.ipv4.conf.all.arp_ignore"); v != "1" {
		t.Errorf("after Set: %q", v)
	}
	err := f.Set("net.ipv4.conf.nosuch.arp_ignore", "1")
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Set of a missing key: %v, want fs.ErrNotExist", err)
	}
	if _, err := os.Stat(f.path("net.ipv4.conf.nosuch.arp_ignore")); err == nil {
		t.Errorf("Set created a missing key")
	}
}

func TestRecordSaveLoadRestore(t *testing.T) {
	names := []string{"net.ipv4.conf.all.arp_ignore", "net.ipv4.conf.eth0.arp_ignore", "net.ipv4.conf.eth0.arp_announce"}
	f := fakeProc(t, map[string]string{names[0]: "0", names[1]: "2", names[2]: "1"})
	snap, err := f.Record(names)
	if err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(t.TempDir(), "sub", "record.json")
	if err := snap.Save(state); err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		f.Set(n, "7")
	}
	loaded, err := LoadSnapshot(state)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Restore(loaded); err != nil {
		t.Fatal(err)
	}
	for n, want := range map[string]string{names[0]: "0", names[1]: "2", names[2]: "1"} {
		if v, _ := f.Get(n); v != want {
			t.Errorf("%s restored to %q, want %q (the recorded value)", n, v, want)
		}
	}
	if _, err := f.Record(append(names, "net.ipv4.conf.nosuch.rp_filter")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Record of a missing key: %v", err)
	}
	if _, err := LoadSnapshot(filepath.Join(t.TempDir(), "none.json")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("LoadSnapshot of a missing file: %v", err)
	}
}
