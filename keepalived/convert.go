package keepalived

import (
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"time"

	"github.com/lvsdr/lvsdr/topology"
)

// keepalived's defaults where they differ from lvsdr's, from its sources
// (check_data.c, check_api.c, check_http.c, ipvswrapper.h, libipvs.h).
const (
	keepalivedDelayLoop          = 60 * time.Second
	keepalivedScheduler          = "wlc"
	keepalivedForwarding         = "nat"
	keepalivedHTTPDelayBefore    = 3 * time.Second
	keepalivedPersistenceDefault = 360 // seconds, persistence_timeout without a value
	keepalivedAdvertInterval     = time.Second
)

// placeholderInterface is written where keepalived.conf does not say which
// NIC to use; a warning asks the operator to check it.
const placeholderInterface = "eth0"

// Result is a conversion: the YAML topology and what did not carry over.
type Result struct {
	YAML []byte
	// Warnings are in reading order, an included file where it is included.
	Warnings []Warning
	// Problems are what topology.Parse finds wrong in YAML; their lines are
	// lines of YAML. The conversion writes what keepalived.conf says even
	// when lvsdr refuses it (a RabbitMQ path that cannot judge one node, an
	// unknown scheduler), so that the operator sees why.
	Problems []topology.Problem
}

type opt[T any] struct {
	v   T
	set bool
}

func some[T any](v T) opt[T] { return opt[T]{v: v, set: true} }

// or returns the value when set, else fallback.
func (o opt[T]) or(fallback opt[T]) opt[T] {
	if o.set {
		return o
	}
	return fallback
}

type converter struct {
	file     string
	warnings []Warning

	vip     netip.Addr
	vipNode *Node

	options Options
	globals globals
	// haConf is director.ha; nil when no vrrp_instance carries the VIP.
	haConf *haConfig

	vrrpInstances []*vrrpInstance
	vips          []vipEntry
	// directorIface is director.interface; directorIfaceFrom, what in
	// keepalived.conf it comes from, empty for the placeholder.
	directorIface     string
	directorIfaceFrom string

	// notifies are the scripts keepalived runs on events; notify, the
	// one carried as director.notify.
	notifies []notifyScript
	notify   []string

	services []*service
	servers  []*realServer
	byAddr   map[netip.Addr]*realServer
}

// Convert turns keepalived.conf, read from file, into an lvsdr topology. The
// Result holds the warnings even when an error stops the conversion.
func Convert(file string, data []byte) (*Result, error) {
	return Options{}.Convert(file, data)
}

// Convert is Convert with what keepalived.conf does not say.
func (o Options) Convert(file string, data []byte) (*Result, error) {
	nodes, warnings, err := Parse(file, data)
	if err != nil {
		return &Result{Warnings: warnings}, err
	}
	c := &converter{file: file, warnings: warnings, options: o, byAddr: map[netip.Addr]*realServer{}}
	res := &Result{}
	err = c.convert(nodes)
	sort.SliceStable(c.warnings, func(i, j int) bool { return c.warnings[i].seq < c.warnings[j].seq })
	res.Warnings = c.warnings
	if err != nil {
		return res, err
	}
	res.YAML, err = c.render()
	if err != nil {
		return res, fmt.Errorf("%s: write the YAML topology: %w", file, err)
	}
	if _, err := topology.Parse(file, res.YAML); err != nil {
		var ve *topology.ValidationError
		if !errors.As(err, &ve) {
			return res, fmt.Errorf("%s: validate the converted topology: %w", file, err)
		}
		res.Problems = ve.Problems
	}
	return res, nil
}

func (c *converter) convert(nodes []*Node) error {
	for _, n := range nodes {
		switch n.Keyword {
		case "virtual_server":
			if err := c.virtualServer(n); err != nil {
				return err
			}
		case "vrrp_instance":
			c.vrrpInstance(n)
		case "global_defs":
			c.globalDefs(n)
		default:
			if n.HasBlock {
				c.warnf(n, "%s block skipped: lvsdr has no equivalent", strings.TrimSpace(n.Keyword+" "+strings.Join(n.Args, " ")))
			} else {
				c.warnf(n, "%s not carried: lvsdr has no equivalent", n.Keyword)
			}
		}
	}
	if len(c.services) == 0 {
		return c.errorf(&Node{File: c.file, Line: 1}, "no virtual_server IP PORT block to convert")
	}
	c.interfaces()
	c.ha()
	c.notifyHook()
	return nil
}
