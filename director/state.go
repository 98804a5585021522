package director

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/lvsdr/lvsdr/ipvsctl"
	"github.com/lvsdr/lvsdr/topology"
)

// StateFile records which kernel services this director created, so that a
// service removed from the file while the director was stopped is still
// deleted at the next start, and a foreign service is never taken for ours.
type StateFile struct {
	// Path is the file; empty keeps no record (previews).
	Path string
}

type stateService struct {
	Protocol topology.Protocol `json:"protocol"`
	Address  netip.Addr        `json:"address"`
	Port     uint16            `json:"port"`
}

type stateDoc struct {
	Services []stateService `json:"services"`
}

// Owned returns the services recorded; none if there is no file yet.
func (s StateFile) Owned() ([]ipvsctl.ServiceKey, error) {
	if s.Path == "" {
		return nil, nil
	}
	data, err := os.ReadFile(s.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read state: %w", err)
	}
	var doc stateDoc
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("read state %s: %w", s.Path, err)
	}
	keys := make([]ipvsctl.ServiceKey, len(doc.Services))
	for i, svc := range doc.Services {
		keys[i] = ipvsctl.ServiceKey{Protocol: svc.Protocol, Address: svc.Address, Port: svc.Port}
	}
	return keys, nil
}

// Record replaces the recorded services, atomically.
func (s StateFile) Record(keys []ipvsctl.ServiceKey) error {
	if s.Path == "" {
		return nil
	}
	doc := stateDoc{Services: make([]stateService, len(keys))}
	for i, k := range keys {
		doc.Services[i] = stateService{Protocol: k.Protocol, Address: k.Address, Port: k.Port}
	}
	data, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(s.Path), 0o755); err != nil {
		return fmt.Errorf("record state: %w", err)
	}
	tmp := s.Path + ".tmp"
	if err := os.WriteFile(tmp, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("record state: %w", err)
	}
	if err := os.Rename(tmp, s.Path); err != nil {
		return fmt.Errorf("record state: %w", err)
	}
	return nil
}
