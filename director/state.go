package director

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"

	"github.com/lvsdr/lvsdr/ipvsctl"
)

// StateFile keeps what the director must remember across restarts: which
// kernel services it created (so that a service removed from the file while
// the director was stopped is still deleted at the next start, and a foreign
// service is never taken for ours), and which real servers an operator put
// in maintenance.
type StateFile struct {
	// Path is the file; empty keeps no record (previews).
	Path string
}

// State is the content of the state file.
type State struct {
	Owned []ipvsctl.ServiceKey
	// Maintenance names the real servers drained by `director drain`.
	Maintenance []string
	// FoundSysctls holds the values that the sysctls of connection sync
	// and BGP had before the director changed them, to put back when the
	// topology no longer wants them; nil while they are untouched.
	FoundSysctls map[string]string
}

// Drained returns the real servers in maintenance as a set.
func (s State) Drained() map[string]bool { return s.maintenance() }

// maintenance returns the drained real servers as a set.
func (s State) maintenance() map[string]bool {
	set := make(map[string]bool, len(s.Maintenance))
	for _, name := range s.Maintenance {
		set[name] = true
	}
	return set
}

type stateService struct {
	Protocol ipvsctl.Protocol `json:"protocol,omitempty"`
	Address  netip.Addr       `json:"address,omitzero"`
	Port     uint16           `json:"port,omitempty"`
	// FWMark keys the firewall-mark services of the checks through the VIP.
	FWMark uint32 `json:"fwmark,omitempty"`
}

type stateDoc struct {
	Services    []stateService `json:"services"`
	Maintenance []string       `json:"maintenance,omitempty"`
	// FoundSysctls are the values found before the director changed them.
	FoundSysctls map[string]string `json:"sysctls_found,omitempty"`
}

// Load reads the state; an empty one if there is no file yet.
func (s StateFile) Load() (State, error) {
	if s.Path == "" {
		return State{}, nil
	}
	data, err := os.ReadFile(s.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return State{}, nil
	}
	if err != nil {
		return State{}, fmt.Errorf("read state: %w", err)
	}
	var doc stateDoc
	if err := json.Unmarshal(data, &doc); err != nil {
		return State{}, fmt.Errorf("read state %s: %w", s.Path, err)
	}
	st := State{Maintenance: doc.Maintenance, FoundSysctls: doc.FoundSysctls}
	for _, svc := range doc.Services {
		st.Owned = append(st.Owned, ipvsctl.ServiceKey{Protocol: svc.Protocol, Address: svc.Address, Port: svc.Port, FWMark: svc.FWMark})
	}
	return st, nil
}

// Save replaces the state, atomically.
func (s StateFile) Save(st State) error {
	if s.Path == "" {
		return nil
	}
	doc := stateDoc{Services: make([]stateService, len(st.Owned)), Maintenance: slices.Sorted(slices.Values(st.Maintenance)), FoundSysctls: st.FoundSysctls}
	for i, k := range st.Owned {
		doc.Services[i] = stateService{Protocol: k.Protocol, Address: k.Address, Port: k.Port, FWMark: k.FWMark}
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
