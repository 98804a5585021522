package keepalived

import (
	"fmt"
	"strings"
)

// warnf records something of keepalived.conf not carried, or carried
// differently, at its line.
func (c *converter) warnf(line int, format string, args ...any) {
	c.warnings = append(c.warnings, Warning{Line: line, Message: fmt.Sprintf(format, args...)})
}

// errorf is input that stops the conversion, as FILE:LINE: message.
func (c *converter) errorf(line int, format string, args ...any) error {
	return &Error{File: c.file, Line: line, Message: fmt.Sprintf(format, args...)}
}

// notCarried warns about a keyword lvsdr has no place for.
func (c *converter) notCarried(n *Node, where string) {
	what := n.Keyword
	if n.HasBlock {
		what += " block"
	}
	c.warnf(n.Line, "%s in %s not carried: lvsdr has no equivalent", what, where)
}

// extraArgs warns about words after the ones a keyword takes: keepalived
// reads one keyword per statement, so "connect_timeout 3 retry 3" on one
// line sets no retry.
func (c *converter) extraArgs(n *Node, want int) {
	if len(n.Args) > want {
		c.warnf(n.Line, "%s: %q after its value ignored, as keepalived does (one keyword per line)", n.Keyword, strings.Join(n.Args[want:], " "))
	}
}
