package topology

import (
	"os"
	"path/filepath"

	"gopkg.in/yaml.v3"
)

// sorryServer decodes keepalived's sorry_server: an address, or a mapping of
// address and port.
func (d *decoder) sorryServer(n *yaml.Node, path string) *SorryServer {
	ss := &SorryServer{}
	if n.Kind == yaml.ScalarNode {
		d.ipv4(n, path, &ss.Address)
		return ss
	}
	present := d.mapping(n, path, fields{
		"address": func(v *yaml.Node) { d.ipv4(v, path+".address", &ss.Address) },
		"port": func(v *yaml.Node) {
			if p, ok := d.integer(v, path+".port", 1, 65535); ok {
				ss.Port = uint16(p)
			}
		},
	})
	if n.Kind == yaml.MappingNode && present["address"] == nil {
		d.problemf(n, "%s.address is required", path)
	}
	return ss
}

// quorum checks a service's quorum and sorry server against its real
// servers, once the subsets are known.
func (d *decoder) quorum(s *Service, n *yaml.Node, path string, t *Topology) {
	if q := mappingValue(n, "quorum"); q != nil && s.Quorum > len(s.RealServers) && len(s.RealServers) > 0 {
		d.problemf(q, "%s.quorum is %d but the service has %d real servers: it could never be met", path, s.Quorum, len(s.RealServers))
	}
	ss := s.SorryServer
	if ss == nil {
		return
	}
	at := mappingValue(n, "sorry_server")
	if ss.Port == 0 {
		ss.Port = s.Port
	}
	if ss.Port != s.Port && s.Forwarding != NAT {
		d.problemf(at, "%s.sorry_server.port %d differs from the service port %d: only nat forwarding can change the port", path, ss.Port, s.Port)
	}
	if !ss.Address.IsValid() {
		return
	}
	if ss.Address == t.VIP {
		d.problemf(at, "%s.sorry_server %s is the VIP", path, ss.Address)
	}
	for _, rs := range t.Members(*s) {
		if rs.Address == ss.Address {
			d.problemf(at, "%s.sorry_server %s is real server %s of the service: it would be down when it is needed", path, ss.Address, rs.Name)
		}
	}
}

// notify decodes the hook run on state changes. The command is checked
// here, so that a typo is found at validation rather than at the first
// failure it was meant to report.
func (d *decoder) notify(n *yaml.Node, path string) *Notify {
	h := &Notify{Timeout: DefaultNotifyTimeout}
	present := d.mapping(n, path, fields{
		"command": func(v *yaml.Node) {
			items := d.sequence(v, path+".command")
			for _, item := range items {
				var arg string
				d.str(item, path+".command[]", &arg)
				h.Command = append(h.Command, arg)
			}
			if v.Kind == yaml.SequenceNode && len(items) == 0 {
				d.problemf(v, "%s.command is empty: give the program and its arguments as a list", path)
			}
			if len(h.Command) > 0 {
				d.executable(items[0], path+".command[0]", h.Command[0])
			}
		},
		"timeout": func(v *yaml.Node) { d.positive(v, path+".timeout", &h.Timeout) },
	})
	if n.Kind == yaml.MappingNode && present["command"] == nil {
		d.problemf(n, "%s.command is required: the program and its arguments, as a list (no shell)", path)
	}
	return h
}

// executable checks that file is an absolute path to a program this user
// may run.
func (d *decoder) executable(n *yaml.Node, path, file string) {
	if !filepath.IsAbs(file) {
		d.problemf(n, "%s must be an absolute path (the hook runs without a shell or PATH lookup), not %q", path, file)
		return
	}
	info, err := os.Stat(file)
	switch {
	case err != nil:
		d.problemf(n, "%s: %v", path, err)
	case info.IsDir() || info.Mode().Perm()&0o111 == 0:
		d.problemf(n, "%s: %s is not an executable file", path, file)
	}
}
