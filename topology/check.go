package topology

import (
	"fmt"
	"slices"
	"time"

	"gopkg.in/yaml.v3"
)

// checks decodes the checks of a service, given as one `check` or a list of
// `checks`, and returns them with the node each came from (nil for the
// default check) so that real servers can override them. A check of type
// none is no check.
func (d *decoder) checks(one, list *yaml.Node, path string, s Service) ([]Check, []*yaml.Node) {
	if one != nil && list != nil {
		d.problemf(list, "%s: give check or checks, not both", path)
		return nil, nil
	}
	if list == nil {
		c := d.check(one, path+".check", s)
		if c.Type == CheckNone {
			return nil, nil
		}
		return []Check{c}, []*yaml.Node{one}
	}
	items := d.sequence(list, path+".checks")
	if len(items) == 0 && list.Kind == yaml.SequenceNode {
		d.problemf(list, "%s.checks is empty: leave it out for the default tcp check, or write check: {type: none}", path)
	}
	var checks []Check
	var nodes []*yaml.Node
	names := map[string]int{}
	for i, n := range items {
		c := d.check(n, fmt.Sprintf("%s.checks[%d]", path, i), s)
		if c.Type == CheckNone {
			d.problemf(n, "%s.checks[%d]: type none in a list of checks; write check: {type: none} to check nothing", path, i)
			continue
		}
		if first, dup := names[c.Name]; dup {
			d.problemf(n, "%s.checks[%d]: the name %q is already used by checks[%d]; give each check its own name", path, i, c.Name, first)
			continue
		}
		names[c.Name] = i
		checks = append(checks, c)
		nodes = append(nodes, n)
	}
	return checks, nodes
}

// overrides decodes a real server's check_overrides: service name → the
// check settings that differ for this real server. Each is laid over every
// check of the service, and the result is decoded and validated as a whole,
// with problems pointing at the override's lines.
func (d *decoder) overrides(t *Topology, rs RealServer, n *yaml.Node, path string, checkNodes map[string][]*yaml.Node) {
	if n.Kind != yaml.MappingNode {
		d.problemf(n, "%s must map service names to check settings, not %s", path, describe(n))
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, over := n.Content[i], n.Content[i+1]
		at := path + "." + key.Value
		si, known := t.index.services[key.Value]
		if !known {
			si = -1
		}
		switch {
		case si < 0:
			d.problemf(key, "%s: no service is named %q", path, key.Value)
			continue
		case !slices.Contains(t.Services[si].RealServers, rs.Name):
			d.problemf(key, "%s: %s is not a real server of service %s", path, rs.Name, key.Value)
			continue
		case len(t.Services[si].Checks) == 0:
			d.problemf(key, "%s: service %s has no check to override", path, key.Value)
			continue
		case over.Kind != yaml.MappingNode:
			d.problemf(over, "%s must be a mapping of check settings, not %s", at, describe(over))
			continue
		}
		if fixed := mappingValue(over, "name"); fixed != nil {
			d.problemf(fixed, "%s.name: a check's name is the service's to give, not overridable", at)
			continue
		}
		if fixed := mappingValue(over, "type"); fixed != nil {
			d.problemf(fixed, "%s.type: the type of a check is not overridable; give the service another check instead", at)
			continue
		}
		s := &t.Services[si]
		if _, dup := s.Overrides[rs.Name]; dup {
			d.problemf(key, "%s: service %s given twice", path, key.Value)
			continue
		}
		ownLines := map[int]bool{}
		markLines(over, ownLines)
		var checks []Check
		for _, base := range checkNodes[s.Name] {
			sub := &decoder{file: d.file}
			c := sub.check(overlay(base, over), at, *s)
			sub.flushUnknownKeys(nil)
			for _, p := range sub.problems {
				// The service's own lines were reported when it was decoded.
				if ownLines[p.Line] {
					d.problems = append(d.problems, p)
				}
			}
			for _, f := range sub.hostFiles {
				if ownLines[f.line] {
					d.hostFiles = append(d.hostFiles, f)
				}
			}
			checks = append(checks, c)
		}
		if s.Overrides == nil {
			s.Overrides = map[string][]Check{}
		}
		s.Overrides[rs.Name] = checks
	}
}

// overlay returns a mapping with the keys of base, those of over replacing
// them, at over's line.
func overlay(base, over *yaml.Node) *yaml.Node {
	merged := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: over.Line, Column: over.Column}
	overridden := map[string]bool{}
	for i := 0; i+1 < len(over.Content); i += 2 {
		overridden[over.Content[i].Value] = true
	}
	if base != nil && base.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(base.Content); i += 2 {
			if !overridden[base.Content[i].Value] {
				merged.Content = append(merged.Content, base.Content[i], base.Content[i+1])
			}
		}
	}
	merged.Content = append(merged.Content, over.Content...)
	return merged
}

func markLines(n *yaml.Node, lines map[int]bool) {
	lines[n.Line] = true
	for _, c := range n.Content {
		markLines(c, lines)
	}
}

// The shortest check interval and connect_timeout accepted. keepalived
// takes any delay_loop and connect_timeout down to a microsecond; no
// operator means one: below MinCheckInterval a check probes every real
// server more than ten times a second, a load on the servers and on the
// director with nothing gained (a failover takes at least one interval plus
// a connect_timeout, and IPVS moves only new connections anyway). Below
// MinConnectTimeout a timeout fails servers whose answer is merely queued
// behind other packets.
const (
	MinCheckInterval  = 100 * time.Millisecond
	MinConnectTimeout = 10 * time.Millisecond
)

// check decodes one check of a service; n is nil for the default check.
func (d *decoder) check(n *yaml.Node, path string, s Service) Check {
	c := Check{
		Type:             CheckTCP,
		Port:             s.Port,
		Interval:         DefaultInterval,
		ConnectTimeout:   DefaultConnectTimeout,
		Retry:            DefaultRetry,
		DelayBeforeRetry: DefaultDelayBeforeRetry,
		Rise:             DefaultRise,
	}
	if s.Protocol == UDP {
		// A TCP connect says nothing about a UDP port.
		c.Type = CheckNone
	}
	if n == nil {
		c.Name = string(c.Type)
		return c
	}
	var h HTTPCheck
	var a AMQPCheck
	// keysOf records which type-specific keys were given, to refuse them on
	// another type.
	typed := map[string]CheckType{}
	only := func(t CheckType, key string, decode func(v *yaml.Node)) func(v *yaml.Node) {
		return func(v *yaml.Node) { typed[key] = t; decode(v) }
	}
	var username, passwordFile string
	var usernameNode, passwordNode *yaml.Node
	var throughVIP *yaml.Node
	present := d.mapping(n, path, fields{
		"name": func(v *yaml.Node) { d.name(v, path+".name", &c.Name) },
		"through_vip": func(v *yaml.Node) {
			throughVIP = v
			d.boolean(v, path+".through_vip", &c.ThroughVIP)
		},
		"type": func(v *yaml.Node) {
			d.oneOf(v, path+".type", []string{string(CheckTCP), string(CheckHTTP), string(CheckAMQP), string(CheckNone)}, (*string)(&c.Type))
		},
		"port": func(v *yaml.Node) {
			if p, ok := d.integer(v, path+".port", 0, 65535); ok && p != 0 {
				c.Port = uint16(p)
			}
		},
		"interval": func(v *yaml.Node) {
			d.positive(v, path+".interval", &c.Interval)
			if c.Interval < MinCheckInterval {
				d.problemf(v, "%s: %s is a probe storm, not a check (every real server probed more than 10 times a second); use %s or more", path+".interval", c.Interval, MinCheckInterval)
			}
		},
		"connect_timeout": func(v *yaml.Node) {
			d.positive(v, path+".connect_timeout", &c.ConnectTimeout)
			if c.ConnectTimeout < MinConnectTimeout {
				d.problemf(v, "%s: %s fails healthy servers (a round trip on a busy LAN takes longer); use %s or more", path+".connect_timeout", c.ConnectTimeout, MinConnectTimeout)
			}
		},
		"retry": func(v *yaml.Node) {
			if r, ok := d.integer(v, path+".retry", 0, 100); ok {
				c.Retry = int(r)
			}
		},
		"delay_before_retry": func(v *yaml.Node) { d.duration(v, path+".delay_before_retry", &c.DelayBeforeRetry) },
		"rise": func(v *yaml.Node) {
			if r, ok := d.integer(v, path+".rise", 1, 100); ok {
				c.Rise = int(r)
			}
		},
		"path": only(CheckHTTP, "path", func(v *yaml.Node) { d.httpPath(v, path+".path", &h.Path) }),
		"scheme": only(CheckHTTP, "scheme", func(v *yaml.Node) {
			d.oneOf(v, path+".scheme", []string{"http", "https"}, &h.Scheme)
		}),
		"expect_status": only(CheckHTTP, "expect_status", func(v *yaml.Node) {
			for _, sn := range d.sequence(v, path+".expect_status") {
				if code, ok := d.integer(sn, path+".expect_status[]", 100, 599); ok {
					h.ExpectStatus = append(h.ExpectStatus, int(code))
				}
			}
		}),
		"body_contains": only(CheckHTTP, "body_contains", func(v *yaml.Node) { d.str(v, path+".body_contains", &h.BodyContains) }),
		"headers": only(CheckHTTP, "headers", func(v *yaml.Node) {
			if v.Kind != yaml.MappingNode {
				d.problemf(v, "%s.headers must be a mapping of header names to values, not %s", path, describe(v))
				return
			}
			h.Headers = map[string]string{}
			for i := 0; i+1 < len(v.Content); i += 2 {
				d.str(v.Content[i+1], path+".headers."+v.Content[i].Value, new(string))
				h.Headers[v.Content[i].Value] = v.Content[i+1].Value
			}
		}),
		"tls_insecure_skip_verify": only(CheckHTTP, "tls_insecure_skip_verify", func(v *yaml.Node) {
			d.boolean(v, path+".tls_insecure_skip_verify", &h.TLSInsecureSkipVerify)
		}),
		"tls_server_name": only(CheckHTTP, "tls_server_name", func(v *yaml.Node) { d.str(v, path+".tls_server_name", &h.TLSServerName) }),
		"tls_ca_file": only(CheckHTTP, "tls_ca_file", func(v *yaml.Node) {
			d.str(v, path+".tls_ca_file", &h.TLSCAFile)
			d.readable(v, path+".tls_ca_file", h.TLSCAFile)
		}),
		"vhost": only(CheckAMQP, "vhost", func(v *yaml.Node) { d.str(v, path+".vhost", &a.VHost) }),
		"username": func(v *yaml.Node) {
			usernameNode = v
			d.str(v, path+".username", &username)
		},
		"password_file": func(v *yaml.Node) {
			passwordNode = v
			d.str(v, path+".password_file", &passwordFile)
			d.readable(v, path+".password_file", passwordFile)
		},
	})
	for key, t := range typed {
		if c.Type != t {
			d.problemf(present[key], "%s.%s is a setting of %s checks, and this check is %s", path, key, t, c.Type)
		}
	}
	if (usernameNode == nil) != (passwordNode == nil) {
		at := usernameNode
		if at == nil {
			at = passwordNode
		}
		d.problemf(at, "%s: username and password_file go together", path)
	}
	if usernameNode != nil && c.Type != CheckHTTP && c.Type != CheckAMQP {
		d.problemf(usernameNode, "%s.username is a setting of http and amqp checks, and this check is %s", path, c.Type)
	}
	if c.ThroughVIP && (s.Forwarding != DirectRouting || s.Protocol != TCP || c.Type == CheckNone) {
		d.problemf(throughVIP, "%s.through_vip needs a tcp, http or amqp check of a tcp service with dr forwarding (this one: %s %s, %s check)", path, s.Protocol, s.Forwarding, c.Type)
	}
	if c.Name == "" {
		c.Name = string(c.Type)
	}
	switch c.Type {
	case CheckHTTP:
		if present["path"] == nil {
			d.problemf(n, "%s.path is required for an http check, e.g. /api/health/checks/port-listener/5672", path)
		}
		if h.Scheme == "" {
			h.Scheme = "http"
		}
		if len(h.ExpectStatus) == 0 {
			h.ExpectStatus = []int{200}
		}
		h.Username, h.PasswordFile = username, passwordFile
		c.HTTP = &h
	case CheckAMQP:
		if a.VHost == "" {
			a.VHost = "/"
		}
		a.Username, a.PasswordFile = username, passwordFile
		c.AMQP = &a
	}
	if c.Type != CheckNone && c.ConnectTimeout > c.Interval {
		at := present["connect_timeout"]
		if at == nil {
			at = present["interval"]
		}
		d.warnf(at, "%s: connect_timeout %s is longer than interval %s (keepalived accepts it too): a probe that waits for its timeout outlasts the interval, so a dead server is found later than the interval says", path, c.ConnectTimeout, c.Interval)
	}
	return c
}
