package director

import (
	"fmt"
	"maps"
	"slices"
)

// The sysctls that connection sync and BGP need are set while the topology
// asks for them. The values found before are recorded first (in the state
// file, so that a restart does not take the director's own values for
// them) and put back when the topology no longer asks, as the real-server
// agent does with its own.

// modeSysctls are the sysctls the topology in force wants, by name.
func (l *loop) modeSysctls() map[string]string {
	want := map[string]string{}
	for _, kv := range append(syncSysctls(l.topo), bgpSysctls(l.topo)...) {
		want[kv[0]] = kv[1]
	}
	return want
}

// convergeModeSysctls records, sets and restores the mode sysctls.
func (l *loop) convergeModeSysctls() error {
	want := l.modeSysctls()
	getter, canRecord := l.Sysctl.(interface{ Get(string) (string, error) })
	for _, name := range slices.Sorted(maps.Keys(want)) {
		if _, recorded := l.sysctlsFound[name]; !recorded && canRecord {
			v, err := getter.Get(name)
			if err != nil {
				return fmt.Errorf("record %s: %w", name, err)
			}
			if l.sysctlsFound == nil {
				l.sysctlsFound = map[string]string{}
			}
			l.sysctlsFound[name] = v
		}
		if err := l.Sysctl.Set(name, want[name]); err != nil {
			return err
		}
	}
	for _, name := range slices.Sorted(maps.Keys(l.sysctlsFound)) {
		if _, wanted := want[name]; wanted {
			continue
		}
		if err := l.Sysctl.Set(name, l.sysctlsFound[name]); err != nil {
			return fmt.Errorf("restore %s: %w", name, err)
		}
		l.Log.Info("sysctl restored to the value found", "name", name, "value", l.sysctlsFound[name])
		delete(l.sysctlsFound, name)
	}
	if len(l.sysctlsFound) == 0 {
		l.sysctlsFound = nil
	}
	return nil
}
