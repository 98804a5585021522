// Package sysctl reads and writes kernel parameters under /proc/sys, and
// records and restores them, so that an agent can put back exactly what it
// found. The root is injectable: tests use a temporary directory.
package sysctl

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// DefaultRoot is where the kernel shows its parameters.
const DefaultRoot = "/proc/sys"

// FS reads and writes parameters under Root.
type FS struct {
	Root string
}

// Name builds a dotted parameter name from its parts. A part that holds a
// dot, such as the VLAN interface eth0.100, is written with a slash, as
// sysctl(8) does: Name("net", "ipv4", "conf", "eth0.100", "arp_ignore") is
// "net.ipv4.conf.eth0/100.arp_ignore".
func Name(parts ...string) string {
	escaped := make([]string, len(parts))
	for i, p := range parts {
		escaped[i] = strings.ReplaceAll(p, ".", "/")
	}
	return strings.Join(escaped, ".")
}

// path maps a dotted name to its file.
func (f FS) path(name string) string {
	parts := strings.Split(name, ".")
	for i, p := range parts {
		parts[i] = strings.ReplaceAll(p, "/", ".")
	}
	return filepath.Join(append([]string{f.Root}, parts...)...)
}

// Get returns the value of a parameter, trimmed.
func (f FS) Get(name string) (string, error) {
	data, err := os.ReadFile(f.path(name))
	if err != nil {
		return "", fmt.Errorf("read sysctl %s: %w", name, err)
	}
	return strings.TrimSpace(string(data)), nil
}

// Set writes a parameter unless it already has the value.
func (f FS) Set(name, value string) error {
	if cur, err := f.Get(name); err == nil && cur == value {
		return nil
	} else if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("set sysctl %s: %w", name, fs.ErrNotExist)
	}
	if err := os.WriteFile(f.path(name), []byte(value+"\n"), 0); err != nil {
		return fmt.Errorf("set sysctl %s=%s: %w", name, value, err)
	}
	return nil
}

// Snapshot is a set of recorded parameter values.
type Snapshot map[string]string

// Record reads the current values of the named parameters.
func (f FS) Record(names []string) (Snapshot, error) {
	snap := Snapshot{}
	for _, name := range names {
		v, err := f.Get(name)
		if err != nil {
			return nil, err
		}
		snap[name] = v
	}
	return snap, nil
}

// Restore writes back every recorded value, in name order, and reports every
// parameter it could not restore.
func (f FS) Restore(snap Snapshot) error {
	names := make([]string, 0, len(snap))
	for name := range snap {
		names = append(names, name)
	}
	slices.Sort(names)
	var errs []error
	for _, name := range names {
		if err := f.Set(name, snap[name]); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Save writes the snapshot to path atomically: a crash leaves the old file
// or the new one, never half of one.
func (s Snapshot) Save(path string) error {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("save %s: %w", path, err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("save %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("save %s: %w", path, err)
	}
	return nil
}

// LoadSnapshot reads a snapshot saved by Save. A missing file is an error
// wrapping fs.ErrNotExist.
func LoadSnapshot(path string) (Snapshot, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load recorded sysctls: %w", err)
	}
	var s Snapshot
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("load recorded sysctls from %s: %w", path, err)
	}
	return s, nil
}
