package topology

import (
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
