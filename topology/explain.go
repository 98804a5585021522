package topology

import (
	"bytes"
	"fmt"
	"slices"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// syntaxProblem turns a YAML syntax error into a problem at the line of the
// mistake, with a hint. yaml.v3 reports the line where the enclosing block
// starts (for some errors counted from 0), so a key outdented on line 10 of
// a list that starts on line 5 is reported on line 4; the line of the
// mistake is found by parsing prefixes of the file: it is the first line
// from which every prefix fails as the whole file does.
func syntaxProblem(file string, data []byte, err error) Problem {
	msg, reported := splitYAMLError(err)
	lines := bytes.SplitAfter(data, []byte("\n"))
	failsAlike := func(k int) bool {
		var n yaml.Node
		err := yaml.Unmarshal(bytes.Join(lines[:k], nil), &n)
		if err == nil {
			return false
		}
		m, l := splitYAMLError(err)
		return m == msg && l == reported
	}
	line := sort.Search(len(lines), func(i int) bool { return failsAlike(i + 1) }) + 1
	if line > len(lines) {
		// Not found by prefixes (an error only the whole file has): the
		// line yaml.v3 gives, or the first.
		line = max(reported, 1)
	}
	text := ""
	if line <= len(lines) {
		text = string(lines[line-1])
	}
	return Problem{File: file, Line: line, Message: explainSyntax(msg, text, reported)}
}

// splitYAMLError splits "yaml: line 4: did not find ..." into the message
// and the line, 0 when there is none.
func splitYAMLError(err error) (string, int) {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	var line int
	if _, scanErr := fmt.Sscanf(msg, "line %d:", &line); scanErr == nil {
		msg = strings.TrimSpace(msg[strings.Index(msg, ":")+1:])
	}
	return msg, line
}

// explainSyntax adds to yaml.v3's message what an operator does about it.
// reported is the line yaml.v3 gave: for the parser's errors, the 0-based
// line where the enclosing block starts, that is the 1-based line before.
func explainSyntax(msg, text string, reported int) string {
	start := reported + 1
	switch {
	case strings.HasPrefix(strings.TrimLeft(text, " "), "\t") || strings.Contains(msg, "tab character"):
		return msg + ": a tab indents this line; YAML indents with spaces only"
	case msg == "did not find expected '-' indicator" && reported > 0:
		return fmt.Sprintf("%s: this line is inside the list that starts on line %d but is not an item of it (an item starts with \"- \"): check its indentation", msg, start)
	case msg == "did not find expected key":
		return msg + ": this line is not a key of the mapping around it: check its indentation against the keys above it"
	case msg == "mapping values are not allowed in this context":
		return msg + ": a key here is indented deeper than the keys above it, or a value holds \": \" unquoted: check the indentation, or quote the value"
	case msg == "could not find expected ':'":
		return msg + ": each line of a mapping is a key, a colon and a space, then the value"
	case (msg == "did not find expected ',' or '}'" || msg == "did not find expected ',' or ']'") && reported > 0:
		closing := msg[len(msg)-2 : len(msg)-1]
		return fmt.Sprintf("%s: the %s that opens on line %d is not closed, or lacks a comma between two entries", msg, map[string]string{"}": "{", "]": "["}[closing], start)
	}
	return msg
}

// quotedHint returns why a quoted scalar was refused where an unquoted one
// would do, e.g. `quoted: write 5s, not "5"`; "" when the value is not
// quoted or would be wrong unquoted too.
func quotedHint(n *yaml.Node, unquoted string) string {
	if n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) == 0 {
		return ""
	}
	return fmt.Sprintf(": it is quoted: write %s, not %q", unquoted, n.Value)
}

// keepalivedKeys maps keepalived's names to lvsdr's, for did-you-mean.
var keepalivedKeys = map[string]string{
	"nb_get_retry":        "retry",
	"delay_loop":          "interval",
	"connect_port":        "port",
	"lb_algo":             "scheduler",
	"lb_kind":             "forwarding",
	"inhibit_on_failure":  "on_failure",
	"real_server":         "real_servers",
	"virtual_server":      "services",
	"notify_up":           "notify",
	"notify_down":         "notify",
	"virtual_router_id":   "vrid",
	"advert_int":          "advert_interval",
	"vrrp_version":        "version",
	"nopreempt":           "preempt",
	"unicast_peer":        "unicast",
	"garp_master_repeat":  "garp_repeat",
	"garp_master_delay":   "garp_delay",
	"garp_master_refresh": "garp_refresh",
	"lvs_sync_daemon":     "connection_sync",
	"url":                 "path",
	"status_code":         "expect_status",
	"lb_algo_flags":       "scheduler_flags",
}

// keepalivedValues maps keepalived's values to lvsdr's.
var keepalivedValues = map[string]string{
	"tun":       "tunnel",
	"tcp_check": "tcp",
	"http_get":  "http",
	"ssl_get":   "http",
}

// Suggest returns the candidate that word most likely meant, or "": the
// same word in another case, keepalived's name for it, or one a typo or two
// away (none when two are as near). The decoder's hints and the names
// `director status` refuses share it.
func Suggest(word string, candidates []string) string {
	lower := strings.ToLower(word)
	for _, c := range candidates {
		if strings.ToLower(c) == lower {
			return c
		}
	}
	for _, alias := range []map[string]string{keepalivedKeys, keepalivedValues} {
		if c, ok := alias[lower]; ok && slices.Contains(candidates, c) {
			return c
		}
	}
	best, bestDistance, tie := "", 3, false
	for _, c := range candidates {
		d := editDistance(lower, strings.ToLower(c))
		switch {
		case d < bestDistance:
			best, bestDistance, tie = c, d, false
		case d == bestDistance:
			tie = true
		}
	}
	// One typo for short words, two for longer ones; none when two
	// candidates are as close.
	if best == "" || tie || bestDistance > max(1, min(2, len(lower)/4)) {
		return ""
	}
	return best
}

// didYouMean formats a suggestion for a message, or "".
func didYouMean(word string, candidates []string) string {
	c := Suggest(word, candidates)
	if c == "" {
		return ""
	}
	if alias, ok := keepalivedKeys[strings.ToLower(word)]; ok && alias == c {
		return fmt.Sprintf(": did you mean %q (keepalived's %s)?", c, word)
	}
	if alias, ok := keepalivedValues[strings.ToLower(word)]; ok && alias == c {
		return fmt.Sprintf(": did you mean %q (keepalived's %s)?", c, word)
	}
	return fmt.Sprintf(": did you mean %q?", c)
}

// editDistance is the optimal string alignment distance: insertions,
// deletions, substitutions and swaps of two neighbours each cost one.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev2 := make([]int, len(rb)+1)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)]
}

// level is a mapping the decoder read, for the hints of keys outdented out
// of it.
type level struct {
	path string
	keys fields
}

// unknownKey is a key a mapping does not know, reported once the whole file
// is read, when the mappings before it can tell where it belongs.
type unknownKey struct {
	key    *yaml.Node
	parent *yaml.Node
	index  int
	path   string
	keys   fields
}

// flushUnknownKeys reports the unknown keys, each with a did-you-mean or,
// when a mapping just above it or around it knows the key, an indentation
// hint. root is the document, nil for an override's checks.
func (d *decoder) flushUnknownKeys(root *yaml.Node) {
	var parents map[*yaml.Node]*yaml.Node
	if len(d.unknown) > 0 && root != nil {
		parents = map[*yaml.Node]*yaml.Node{}
		linkParents(root, parents)
	}
	for _, u := range d.unknown {
		known := sortedKeys(u.keys)
		hint := d.outdented(u)
		if hint == "" {
			hint = d.indentedTooDeep(u, parents)
		}
		if hint == "" {
			hint = didYouMean(u.key.Value, known)
		}
		d.problemf(u.key, "%s: unknown key %q%s (known: %s)", u.path, u.key.Value, hint, strings.Join(known, ", "))
	}
	d.unknown = nil
}

func linkParents(n *yaml.Node, parents map[*yaml.Node]*yaml.Node) {
	for _, c := range n.Content {
		parents[c] = n
		linkParents(c, parents)
	}
}

// indentedTooDeep returns a hint when the key is one of a mapping around
// the one it is in: indented too deep, it went into the mapping above it.
func (d *decoder) indentedTooDeep(u unknownKey, parents map[*yaml.Node]*yaml.Node) string {
	for n := parents[u.parent]; n != nil; n = parents[n] {
		l, ok := d.levels[n]
		if !ok {
			continue
		}
		if _, known := l.keys[u.key.Value]; known {
			return fmt.Sprintf(": %s is a key of %s (line %d), around this mapping: indented too deep?", u.key.Value, l.path, n.Line)
		}
	}
	return ""
}

// outdented returns a hint when the key is one of a mapping that ends just
// above it: indented too little, it left that mapping for this one.
func (d *decoder) outdented(u unknownKey) string {
	if u.index < 2 {
		return ""
	}
	// v is a value above the key, and line the line that opens it: its key
	// or its "- ".
	v, line := u.parent.Content[u.index-1], u.parent.Content[u.index-2].Line
	for len(v.Content) > 0 {
		switch v.Kind {
		case yaml.MappingNode:
			if l, ok := d.levels[v]; ok {
				if _, known := l.keys[u.key.Value]; known {
					return fmt.Sprintf(": %s is a key of %s (line %d), indented too little: indent it as the keys under that line", u.key.Value, l.path, line)
				}
			}
			v, line = v.Content[len(v.Content)-1], v.Content[len(v.Content)-2].Line
		case yaml.SequenceNode:
			v, line = v.Content[len(v.Content)-1], v.Content[len(v.Content)-1].Line
		default:
			return ""
		}
	}
	return ""
}
