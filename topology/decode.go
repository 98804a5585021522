package topology

import (
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Defaults of the optional keys; docs/configuration.md lists them too.
const (
	DefaultResyncInterval   = 30 * time.Second
	DefaultDrainTimeout     = 10 * time.Minute
	DefaultInterval         = 5 * time.Second
	DefaultConnectTimeout   = 5 * time.Second
	DefaultRetry            = 1
	DefaultDelayBeforeRetry = time.Second
	DefaultRise             = 1
	DefaultWeight           = 1
	DefaultScheduler        = "wrr"
	DefaultQuorum           = 1
	DefaultNotifyTimeout    = 10 * time.Second
	// MetricsOff turns the metrics endpoint off.
	MetricsOff = "off"
	// DefaultCheckMarkBase keeps the marks of the checks through the VIP
	// clear of the low bits that kube-proxy and Cilium use.
	DefaultCheckMarkBase = 0x4c560000
)

// DefaultMetricsAddress serves /metrics on loopback only: exposing it
// further is the operator's choice.
var DefaultMetricsAddress = netip.MustParseAddrPort("127.0.0.1:9967")

// fwmark decodes a firewall mark, in decimal or, as iptables and ip rule
// print them, in hex (0x4c560000). It leaves room for 65,536 real servers.
func (d *decoder) fwmark(n *yaml.Node, path string, dst *uint32) {
	v, ok := d.scalar(n, path)
	if !ok {
		return
	}
	m, err := strconv.ParseUint(v, 0, 32)
	if err != nil || (n.Tag != "!!int" && !strings.HasPrefix(v, "0x")) {
		d.problemf(n, "%s must be a firewall mark such as 0x4c560000 or 1280704512, not %q", path, v)
		return
	}
	if m == 0 || m > math.MaxUint32-65536 {
		d.problemf(n, "%s must be between 1 and %#x, not %#x", path, uint32(math.MaxUint32-65536), m)
		return
	}
	*dst = uint32(m)
}

// listenAddress decodes an IPv4 address and port to listen on, or "off".
func (d *decoder) listenAddress(n *yaml.Node, path string) netip.AddrPort {
	v, ok := d.scalar(n, path)
	if !ok || v == MetricsOff {
		return netip.AddrPort{}
	}
	ap, err := netip.ParseAddrPort(v)
	if err != nil || !ap.Addr().Is4() || ap.Port() == 0 {
		d.problemf(n, "%s must be an IPv4 address and port such as 127.0.0.1:9967, or off, not %q", path, v)
		return netip.AddrPort{}
	}
	return ap
}

// fields maps the keys of one mapping to their decoders.
type fields map[string]func(value *yaml.Node)

// mapping decodes a mapping node key by key. Unknown and repeated keys are
// problems; the decoders of known keys run in file order. It returns the
// keys present, to tell required keys and defaults apart.
func (d *decoder) mapping(n *yaml.Node, path string, fs fields) map[string]*yaml.Node {
	seen := make(map[string]*yaml.Node, len(n.Content)/2)
	if n.Kind != yaml.MappingNode {
		d.problemf(n, "%s must be a mapping of keys, not %s", path, describe(n))
		return seen
	}
	if !d.noHints {
		if d.levels == nil {
			d.levels = map[*yaml.Node]level{}
		}
		d.levels[n] = level{path: path, keys: fs}
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, value := n.Content[i], n.Content[i+1]
		decode, known := fs[key.Value]
		switch {
		case !known:
			// Reported at the end, when the mappings above it are known.
			d.unknown = append(d.unknown, unknownKey{key: key, parent: n, index: i, path: path, keys: fs})
		case seen[key.Value] != nil:
			d.problemf(key, "%s: key %q given twice (first on line %d)", path, key.Value, seen[key.Value].Line)
		default:
			seen[key.Value] = key
			decode(value)
		}
	}
	return seen
}

func sortedKeys(fs fields) []string {
	keys := make([]string, 0, len(fs))
	for k := range fs {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	case yaml.AliasNode:
		return "an alias"
	}
	if n.Tag == "!!null" {
		return "empty"
	}
	return fmt.Sprintf("%q", n.Value)
}

func (d *decoder) scalar(n *yaml.Node, path string) (string, bool) {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		d.problemf(n, "%s must be a single value, not %s", path, describe(n))
		return "", false
	}
	return n.Value, true
}

func (d *decoder) boolean(n *yaml.Node, path string, dst *bool) {
	v, ok := d.scalar(n, path)
	if !ok {
		return
	}
	if n.Tag != "!!bool" {
		hint := ""
		if v == "true" || v == "false" {
			hint = quotedHint(n, v)
		}
		d.problemf(n, "%s must be true or false, not %q%s", path, v, hint)
		return
	}
	*dst = v == "true" || v == "True" || v == "TRUE"
}

func (d *decoder) str(n *yaml.Node, path string, dst *string) {
	if v, ok := d.scalar(n, path); ok {
		*dst = v
	}
}

func (d *decoder) integer(n *yaml.Node, path string, lo, hi int64) (int64, bool) {
	v, ok := d.scalar(n, path)
	if !ok {
		return 0, false
	}
	i, err := strconv.ParseInt(v, 10, 64)
	if n.Tag != "!!int" || err != nil {
		hint := ""
		if err == nil {
			hint = quotedHint(n, v)
		}
		d.problemf(n, "%s must be a whole number, not %q%s", path, v, hint)
		return 0, false
	}
	if i < lo || i > hi {
		d.problemf(n, "%s must be between %d and %d, not %d", path, lo, hi, i)
		return 0, false
	}
	return i, true
}

// duration decodes a Go duration ("3s") or, as keepalived writes them, a
// whole number of seconds ("3").
func (d *decoder) duration(n *yaml.Node, path string, dst *time.Duration) bool {
	v, ok := d.scalar(n, path)
	if !ok {
		return false
	}
	var dur time.Duration
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil && n.Tag == "!!int" {
		if secs > math.MaxInt64/int64(time.Second) {
			d.problemf(n, "%s: %d seconds is too long", path, secs)
			return false
		}
		dur = time.Duration(secs) * time.Second
	} else if dur, err = time.ParseDuration(v); err != nil {
		hint := ""
		if _, intErr := strconv.ParseUint(v, 10, 32); intErr == nil {
			hint = quotedHint(n, v+"s")
		}
		d.problemf(n, "%s must be a duration such as 3s, 1m30s or a whole number of seconds, not %q%s", path, v, hint)
		return false
	}
	if dur < 0 {
		d.problemf(n, "%s must not be negative, not %s", path, v)
		return false
	}
	*dst = dur
	return true
}

// ipv4 decodes one unicast IPv4 address.
func (d *decoder) ipv4(n *yaml.Node, path string, dst *netip.Addr) {
	v, ok := d.scalar(n, path)
	if !ok {
		return
	}
	if strings.Contains(v, "/") {
		d.problemf(n, "%s must be one address, not the prefix %q: write it without /%s", path, v, v[strings.Index(v, "/")+1:])
		return
	}
	addr, err := netip.ParseAddr(v)
	switch {
	case err != nil:
		d.problemf(n, "%s must be an IPv4 address, not %q", path, v)
	case addr.Is6() && !addr.Is4In6():
		d.problemf(n, "%s: IPv6 addresses are not supported yet, not %q", path, v)
	case addr.IsUnspecified(), addr.IsLoopback(), addr.IsMulticast(), addr == netip.AddrFrom4([4]byte{255, 255, 255, 255}), addr.IsLinkLocalUnicast():
		d.problemf(n, "%s must be a unicast address that hosts can reach, not %s", path, v)
	default:
		*dst = addr.Unmap()
	}
}

func (d *decoder) oneOf(n *yaml.Node, path string, allowed []string, dst *string) {
	v, ok := d.scalar(n, path)
	if !ok {
		return
	}
	if !slices.Contains(allowed, v) {
		d.problemf(n, "%s: unknown value %q%s (one of %s)", path, v, didYouMean(v, allowed), strings.Join(allowed, " "))
		return
	}
	*dst = v
}

func (d *decoder) sequence(n *yaml.Node, path string) []*yaml.Node {
	if n.Kind != yaml.SequenceNode {
		d.problemf(n, "%s must be a list, not %s", path, describe(n))
		return nil
	}
	return n.Content
}

// name decodes a name that appears in status output and check keys.
func (d *decoder) name(n *yaml.Node, path string, dst *string) {
	v, ok := d.scalar(n, path)
	if !ok {
		return
	}
	if v == "" || strings.ContainsAny(v, "/ \t\n") {
		d.problemf(n, "%s must be a non-empty name without spaces or '/', not %q", path, v)
		return
	}
	*dst = v
}

// iface decodes a Linux network interface name.
func (d *decoder) iface(n *yaml.Node, path string, dst *string) {
	v, ok := d.scalar(n, path)
	if !ok {
		return
	}
	if v == "" || len(v) > 15 || v == "." || v == ".." || strings.ContainsAny(v, "/: \t\n") {
		d.problemf(n, "%s must be a network interface name (1 to 15 characters, no '/', ':' or spaces), not %q", path, v)
		return
	}
	*dst = v
}

// readable records a file named in the topology that the director reads,
// for CheckDirectorHost to find a typo at validation rather than at every
// check.
func (d *decoder) readable(n *yaml.Node, path, file string) {
	d.hostFile(n, path, file, false)
}

// refusedPaths are RabbitMQ health endpoints that must not decide whether one
// node gets clients.
var refusedPaths = []struct{ prefix, why string }{
	{"/api/health/checks/alarms", "it reports alarms anywhere in the cluster, so every node fails at once"},
	{"/api/health/checks/node-is-quorum-critical", "it fails when taking the node down would lose quorum, so both survivors of a three-node cluster with one node down fail"},
	{"/api/aliveness-test", "it is a no-op in recent RabbitMQ and was removed"},
}

// httpPath decodes the path of an http check, refusing RabbitMQ endpoints
// that answer for the cluster rather than the node.
func (d *decoder) httpPath(n *yaml.Node, path string, dst *string) {
	v, ok := d.scalar(n, path)
	if !ok {
		return
	}
	if !strings.HasPrefix(v, "/") {
		d.problemf(n, "%s must start with /, not %q", path, v)
		return
	}
	for _, r := range refusedPaths {
		if strings.HasPrefix(v, r.prefix) {
			d.problemf(n, "%s: %s cannot judge one node: %s; use /api/health/checks/port-listener/5672 (or /api/health/checks/ready-to-serve-clients on RabbitMQ 3.12+)", path, r.prefix, r.why)
			return
		}
	}
	*dst = v
}
