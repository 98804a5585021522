package keepalived

import (
	"fmt"
	"strings"
)

// warnf records something of keepalived.conf not carried, or carried
// differently, at the statement n.
func (c *converter) warnf(n *Node, format string, args ...any) {
	c.warnings = append(c.warnings, Warning{File: n.File, Line: n.Line, Message: fmt.Sprintf(format, args...), seq: n.seq})
}

// errorf is input that stops the conversion, as FILE:LINE: message.
func (c *converter) errorf(n *Node, format string, args ...any) error {
	return &Error{File: n.File, Line: n.Line, Message: fmt.Sprintf(format, args...)}
}

// where names the place of statement n in a message: "line N" in the file
// converted, "FILE:N" in a file it includes.
func (c *converter) where(n *Node) string {
	if n.File == c.file {
		return fmt.Sprintf("line %d", n.Line)
	}
	return fmt.Sprintf("%s:%d", n.File, n.Line)
}

// notCarried warns about a keyword lvsdr has no place for.
func (c *converter) notCarried(n *Node, where string) {
	what := n.Keyword
	if n.HasBlock {
		what += " block"
	}
	c.warnf(n, "%s in %s not carried: lvsdr has no equivalent", what, where)
}

// extraArgs warns about words after the ones a keyword takes: keepalived
// reads one keyword per statement, so "connect_timeout 3 retry 3" on one
// line sets no retry.
func (c *converter) extraArgs(n *Node, want int) {
	if len(n.Args) > want {
		c.warnf(n, "%s: %q after its value ignored, as keepalived does (one keyword per line)", n.Keyword, strings.Join(n.Args[want:], " "))
	}
}
