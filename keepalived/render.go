package keepalived

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/lvsdr/lvsdr/topology"
)

func strNode(v string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: v}
}

func intNode(v int) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.Itoa(v)}
}

// mapNode builds a mapping from key, value pairs, keeping their order: the
// order of docs/configuration.md.
func mapNode(flow bool, pairs ...any) *yaml.Node {
	n := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	if flow {
		n.Style = yaml.FlowStyle
	}
	for i := 0; i+1 < len(pairs); i += 2 {
		var v *yaml.Node
		switch x := pairs[i+1].(type) {
		case string:
			v = strNode(x)
		case int:
			v = intNode(x)
		case *yaml.Node:
			v = x
		default:
			panic(fmt.Sprintf("mapNode: %T", x))
		}
		n.Content = append(n.Content, strNode(pairs[i].(string)), v)
	}
	return n
}

func flowSeq(items ...*yaml.Node) *yaml.Node {
	return &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Style: yaml.FlowStyle, Content: items}
}

// render writes the topology as YAML, one top-level section after another
// with a blank line between them, since yaml.v3 writes none.
func (c *converter) render() ([]byte, error) {
	var out bytes.Buffer
	fmt.Fprintf(&out, "# converted from %s by director import-keepalived\n", c.file)
	if len(c.warnings) == 0 {
		out.WriteString("# docs/configuration.md describes every key\n")
	} else {
		// The warnings travel with the file, so that whoever installs it
		// sees what did not carry over, even when the import ran unattended.
		out.WriteString("# review these warnings of the conversion; docs/configuration.md describes every key\n")
		for _, w := range c.warnings {
			fmt.Fprintf(&out, "# warning: %s:%d: %s\n", w.File, w.Line, w.Message)
		}
		out.WriteByte('\n')
	}

	director := mapNode(false, "interface", c.directorIface)
	if c.directorIfaceFrom != "" {
		director.Content[1].LineComment = "from " + c.directorIfaceFrom
	} else {
		director.Content[1].LineComment = "check: the NIC that carries the VIP on the director"
	}
	if c.haConf != nil {
		director.Content = append(director.Content, strNode("ha"), c.haNode())
	}
	if c.notify != nil {
		var argv []*yaml.Node
		for _, a := range c.notify {
			argv = append(argv, strNode(a))
		}
		hook := mapNode(false, "command", flowSeq(argv...))
		director.Content = append(director.Content, strNode("notify"), hook)
		director.Content[len(director.Content)-2].HeadComment = "keepalived's notify scripts, run on every event: see the warnings"
	}
	sections := []*yaml.Node{
		mapNode(false, "vip", c.vip.String()),
		mapNode(false, "director", director),
		mapNode(false, "services", c.servicesNode()),
		mapNode(false, "real_servers", c.realServersNode()),
	}
	for _, s := range c.services {
		if s.forwarding == string(topology.DirectRouting) || s.forwarding == string(topology.Tunnel) {
			rs := mapNode(false, "interface", placeholderInterface)
			rs.Content[1].LineComment = "check: the real servers' NIC whose ARP replies for the VIP are suppressed"
			sections = append(sections, mapNode(false, "realserver", rs))
			break
		}
	}
	for i, section := range sections {
		if i > 0 {
			out.WriteByte('\n')
		}
		var buf bytes.Buffer
		enc := yaml.NewEncoder(&buf)
		enc.SetIndent(2)
		if err := enc.Encode(section); err != nil {
			return nil, err
		}
		if err := enc.Close(); err != nil {
			return nil, err
		}
		text := buf.String()
		if section.Content[0].Value == "services" {
			// A blank line before each service but the first, which the
			// comment naming its virtual_server heads.
			text = strings.Replace(text, "\n  # virtual_server ", "\n\n  # virtual_server ", -1)
			text = strings.Replace(text, "services:\n\n", "services:\n", 1)
		}
		out.WriteString(text)
	}
	return out.Bytes(), nil
}

func (c *converter) servicesNode() *yaml.Node {
	seq := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
	for _, s := range c.services {
		pairs := []any{
			"name", s.name,
			"port", s.port,
			"protocol", s.protocol,
			"scheduler", s.scheduler,
			"forwarding", s.forwarding,
		}
		if s.persistence.set {
			pairs = append(pairs, "persistence_timeout", fmt.Sprintf("%ds", s.persistence.v))
		}
		pairs = append(pairs, "on_failure", string(s.onFailure))
		if s.quorum.set {
			pairs = append(pairs, "quorum", s.quorum.v)
		}
		if s.sorry != nil {
			pairs = append(pairs, "sorry_server", mapNode(true, "address", s.sorry.addr.String(), "port", s.sorry.port))
		}
		// No list means every real server: also what a virtual_server
		// without real_server blocks becomes, as lvsdr has no empty
		// service. A real server that weighs differently here than in
		// its first service is listed with this service's weight.
		ownWeights := false
		for i, m := range s.members {
			ownWeights = ownWeights || s.weights[i] != m.weight
		}
		if len(s.members) > 0 && (len(s.members) < len(c.servers) || ownWeights) {
			// Listed in the order of real_servers, as lvsdr reads them.
			var names []*yaml.Node
			for _, rs := range c.servers {
				for i, m := range s.members {
					switch {
					case m != rs:
					case s.weights[i] != rs.weight:
						names = append(names, mapNode(true, "name", rs.name, "weight", s.weights[i]))
					default:
						names = append(names, strNode(rs.name))
					}
				}
			}
			pairs = append(pairs, "real_servers", flowSeq(names...))
		}
		if len(s.extra) == 0 {
			pairs = append(pairs, "check", checkNode(s.check))
		} else {
			pairs = append(pairs, "checks", checksNode(append([]*check{s.check}, s.extra...)))
		}
		item := mapNode(false, pairs...)
		item.HeadComment = fmt.Sprintf("virtual_server %s %d, %s", c.vip, s.port, c.where(s.node))
		seq.Content = append(seq.Content, item)
	}
	return seq
}

// checksNode lists several checks, each named after its type (tcp, tcp_2,
// ...), as every check of a service needs its own name.
func checksNode(checks []*check) *yaml.Node {
	seq := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
	seen := map[string]int{}
	for _, ch := range checks {
		name := string(ch.typ)
		seen[name]++
		if n := seen[name]; n > 1 {
			name = fmt.Sprintf("%s_%d", name, n)
		}
		n := checkNode(ch)
		n.Content = append([]*yaml.Node{strNode("name"), strNode(name)}, n.Content...)
		seq.Content = append(seq.Content, n)
	}
	return seq
}

func checkNode(ch *check) *yaml.Node {
	if ch.typ == topology.CheckNone {
		n := mapNode(true, "type", string(ch.typ))
		n.LineComment = "keepalived had no checker: every real server stays in"
		return n
	}
	pairs := []any{"type", string(ch.typ)}
	if ch.port != 0 {
		pairs = append(pairs, "port", ch.port)
	}
	if ch.interval.set {
		pairs = append(pairs, "interval", formatDuration(ch.interval.v))
	}
	pairs = append(pairs,
		"connect_timeout", formatDuration(ch.connectTimeout),
		"retry", ch.retry,
		"delay_before_retry", formatDuration(ch.delayBeforeRetry))
	if ch.typ == topology.CheckHTTP {
		pairs = append(pairs, "path", ch.path, "scheme", ch.scheme)
		var codes []*yaml.Node
		for _, code := range ch.expectStatus {
			codes = append(codes, intNode(code))
		}
		pairs = append(pairs, "expect_status", flowSeq(codes...))
		if ch.host != "" {
			pairs = append(pairs, "headers", mapNode(true, "Host", ch.host))
		}
		if ch.tlsSkipVerify {
			pairs = append(pairs, "tls_insecure_skip_verify", boolNode(true))
		}
		if ch.tlsServerName != "" {
			pairs = append(pairs, "tls_server_name", ch.tlsServerName)
		}
	}
	return mapNode(false, pairs...)
}

func (c *converter) realServersNode() *yaml.Node {
	seq := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
	for _, rs := range c.servers {
		if len(rs.overrides) == 0 {
			seq.Content = append(seq.Content, mapNode(true, "name", rs.name, "address", rs.addr.String(), "weight", rs.weight))
			continue
		}
		var overrides []any
		for _, o := range rs.overrides {
			overrides = append(overrides, o.service, mapNode(true, o.pairs...))
		}
		seq.Content = append(seq.Content, mapNode(false, "name", rs.name, "address", rs.addr.String(), "weight", rs.weight,
			"check_overrides", mapNode(false, overrides...)))
	}
	return seq
}

// checkDiff returns the settings of o that differ from base, as key-value
// pairs for check_overrides; false when they differ in what an override
// cannot carry (the type, the scheme, TLS).
func checkDiff(base, o *check) ([]any, bool) {
	if base.typ != o.typ || base.scheme != o.scheme || base.tlsSkipVerify != o.tlsSkipVerify || base.tlsServerName != o.tlsServerName || base.host != o.host {
		return nil, false
	}
	var pairs []any
	if base.port != o.port {
		pairs = append(pairs, "port", o.port)
	}
	if base.interval != o.interval && o.interval.set {
		pairs = append(pairs, "interval", formatDuration(o.interval.v))
	}
	if base.connectTimeout != o.connectTimeout {
		pairs = append(pairs, "connect_timeout", formatDuration(o.connectTimeout))
	}
	if base.retry != o.retry {
		pairs = append(pairs, "retry", o.retry)
	}
	if base.delayBeforeRetry != o.delayBeforeRetry {
		pairs = append(pairs, "delay_before_retry", formatDuration(o.delayBeforeRetry))
	}
	if base.path != o.path {
		pairs = append(pairs, "path", o.path)
	}
	if !slices.Equal(base.expectStatus, o.expectStatus) {
		var codes []*yaml.Node
		for _, code := range o.expectStatus {
			codes = append(codes, intNode(code))
		}
		pairs = append(pairs, "expect_status", flowSeq(codes...))
	}
	return pairs, true
}

// haNode writes director.ha in the order of docs/configuration.md; the
// keys keepalived.conf did not set are left to their defaults, but for
// version, advert_interval, unicast and preempt, which must match on every
// director and are written out so that the peers can be compared.
func (c *converter) haNode() *yaml.Node {
	h := c.haConf
	advert := keepalivedAdvertInterval
	if h.advert.set {
		advert = h.advert.v
	}
	pairs := []any{
		"vrid", h.vrid,
		"version", h.version,
		"advert_interval", formatDuration(advert),
		"unicast", boolNode(h.unicast),
		"preempt", boolNode(h.preempt),
	}
	if h.preemptDelay.set {
		pairs = append(pairs, "preempt_delay", formatDuration(h.preemptDelay.v))
	}
	if h.garpRepeat.set {
		pairs = append(pairs, "garp_repeat", h.garpRepeat.v)
	}
	if h.garpDelay.set {
		pairs = append(pairs, "garp_delay", formatDuration(h.garpDelay.v))
	}
	if h.garpRefresh.set {
		pairs = append(pairs, "garp_refresh", formatDuration(h.garpRefresh.v))
	}
	if h.sync {
		pairs = append(pairs, "connection_sync", boolNode(true))
		if h.syncID.set {
			pairs = append(pairs, "sync_id", h.syncID.v)
		}
		if h.syncGroup != "" {
			pairs = append(pairs, "sync_group", h.syncGroup)
		}
		if h.syncPort.set {
			pairs = append(pairs, "sync_port", h.syncPort.v)
		}
	}
	seq := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
	for _, d := range h.directors {
		entry := []any{"name", d.name}
		if d.addr.IsValid() {
			entry = append(entry, "address", d.addr.String())
		}
		entry = append(entry, "priority", d.priority)
		item := mapNode(true, entry...)
		item.LineComment = d.comment
		seq.Content = append(seq.Content, item)
	}
	pairs = append(pairs, "directors", seq)
	return mapNode(false, pairs...)
}

func boolNode(v bool) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: strconv.FormatBool(v)}
}
