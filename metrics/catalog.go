package metrics

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"sync"

	"github.com/lvsdr/lvsdr/ipvsctl"
)

// The address labels are node_exporter's (its ipvs collector's
// node_ipvs_backend_* series), with the same values, so that a PromQL join
// on them matches lvsdr's series with node_exporter's and with ipvsadm's
// lines: local_address and local_port are the VIP and the service's port,
// proto is TCP, UDP or FWM, local_mark a firewall mark as the kernel prints
// it (8 hex digits, empty for TCP and UDP), remote_address and remote_port
// the real server's.
const (
	labelLocalAddress  = "local_address"
	labelLocalPort     = "local_port"
	labelProto         = "proto"
	labelLocalMark     = "local_mark"
	labelRemoteAddress = "remote_address"
	labelRemotePort    = "remote_port"
	// labelCheckService is "true" on the firewall-mark services that carry
	// the checks through the VIP, so that alerts on weights or connections
	// can leave them out.
	labelCheckService = "check_service"
)

// ThroughVIPService is the service label of the firewall-mark services of
// the checks through the VIP; their real_server label names the real
// server each one routes to.
const ThroughVIPService = "through_vip"

// Catalog names what the collectors label: the services the topology in
// force declares, with their kernel keys, and its real servers by address.
// The director builds one per topology, so a scrape costs a read of the
// kernel and a walk of the table, nothing per lookup.
type Catalog struct {
	// VIP is the topology's virtual address.
	VIP      netip.Addr
	Services []CatalogService
	// Nodes names the real servers by address.
	Nodes map[netip.Addr]string

	// index is built on first use: a catalog is never changed once
	// published.
	once      sync.Once
	byService map[string]int
	addressOf map[string]netip.Addr
}

// CatalogService is one declared service and its kernel key.
type CatalogService struct {
	Name string
	// Key is a firewall mark for a service of the checks through the VIP
	// (Name ThroughVIPService).
	Key ipvsctl.ServiceKey
	// Sorry is the service's sorry server, the zero AddrPort for none.
	Sorry netip.AddrPort
}

// checkService reports whether s carries checks through the VIP rather
// than clients.
func (s CatalogService) checkService() bool { return s.Key.FWMark != 0 }

func (c *Catalog) index() {
	c.once.Do(func() {
		c.byService = make(map[string]int, len(c.Services))
		for i, s := range c.Services {
			if !s.checkService() {
				c.byService[s.Name] = i
			}
		}
		c.addressOf = make(map[string]netip.Addr, len(c.Nodes))
		for addr, name := range c.Nodes {
			c.addressOf[name] = addr
		}
	})
}

// service returns the declared service named name.
func (c *Catalog) service(name string) (CatalogService, bool) {
	if c == nil {
		return CatalogService{}, false
	}
	c.index()
	i, ok := c.byService[name]
	if !ok {
		return CatalogService{}, false
	}
	return c.Services[i], true
}

// address returns the address of the real server named name.
func (c *Catalog) address(name string) (netip.Addr, bool) {
	if c == nil {
		return netip.Addr{}, false
	}
	c.index()
	a, ok := c.addressOf[name]
	return a, ok
}

// serviceAddressLabels are the address labels of a service of the topology.
var serviceAddressLabels = []string{labelLocalAddress, labelLocalPort, labelProto}

// realServerAddressLabels are those of a real server in such a service.
var realServerAddressLabels = append(append([]string{}, serviceAddressLabels...), labelRemoteAddress, labelRemotePort)

// keyValues returns the values of local_address, local_port, proto and
// local_mark for a kernel service key, as node_exporter reads them from
// /proc/net/ip_vs.
func keyValues(k ipvsctl.ServiceKey) (local, port, proto, mark string) {
	if k.FWMark != 0 {
		return "", "0", "FWM", fmt.Sprintf("%08X", k.FWMark)
	}
	return k.Address.String(), strconv.Itoa(int(k.Port)), strings.ToUpper(string(k.Protocol)), ""
}

// serviceValues returns the values of serviceAddressLabels for the service
// named service; empty if the catalog does not know it.
func (c *Catalog) serviceValues(service string) []string {
	s, ok := c.service(service)
	if !ok {
		return []string{"", "", ""}
	}
	local, port, proto, _ := keyValues(s.Key)
	return []string{local, port, proto}
}

// realServerValues returns the values of realServerAddressLabels for the
// real server named node in the service named service. Its port is the
// service's: direct routing keeps the client's destination port.
func (c *Catalog) realServerValues(service, node string) []string {
	out := c.serviceValues(service)
	remote, remotePort := "", ""
	if a, ok := c.address(node); ok {
		remote = a.String()
		if s, ok := c.service(service); ok {
			remotePort = strconv.Itoa(int(s.Key.Port))
		}
	}
	return append(out, remote, remotePort)
}
