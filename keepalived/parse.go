// Package keepalived reads keepalived.conf and converts its LVS virtual
// servers into an lvsdr YAML topology, so that a deployment can move from
// keepalived to lvsdr without retyping it. What lvsdr cannot carry is never
// dropped silently: each such keyword becomes a Warning with its line.
package keepalived

import (
	"fmt"
	"strings"
)

// Node is one keepalived.conf statement: a keyword, its arguments, and the
// statements of its block when it opens one.
type Node struct {
	Keyword string
	Args    []string
	// Line is where the statement starts, for messages.
	Line int
	// HasBlock tells "keyword { }" (an empty block) from "keyword".
	HasBlock bool
	Block    []*Node
}

// Warning is something of the input that the conversion did not carry, or
// carried differently from keepalived.
type Warning struct {
	Line    int
	Message string
}

// Error is input the importer cannot convert; File is empty for Parse.
type Error struct {
	File    string
	Line    int
	Message string
}

// Error formats the problem as FILE:LINE: message.
func (e *Error) Error() string {
	if e.File == "" {
		return fmt.Sprintf("line %d: %s", e.Line, e.Message)
	}
	return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Message)
}

type tokenKind int

const (
	tokWord tokenKind = iota
	tokOpen
	tokClose
	tokEOL
)

type token struct {
	kind tokenKind
	text string
	line int
}

// tokenize splits keepalived.conf the way keepalived's own reader does: a
// '#' or '!' outside double quotes starts a comment wherever it is, "\#" and
// "\!" are those characters, a trailing '\' continues the line, a quoted
// string is one word without its quotes, and '{' and '}' stand alone even
// when glued to a word.
func tokenize(data []byte) ([]token, error) {
	var toks []token
	lines := strings.Split(strings.ReplaceAll(string(data), "\r\n", "\n"), "\n")
	for i := 0; i < len(lines); i++ {
		lineNo := i + 1
		text := lines[i]
		// A continued line is one statement for keepalived; it keeps the
		// number of its first line.
		for strings.HasSuffix(text, "\\") && !strings.HasSuffix(text, "\\\\") && i+1 < len(lines) && !inComment(text) {
			i++
			text = strings.TrimSuffix(text, "\\") + " " + lines[i]
		}
		var cur strings.Builder
		inWord := false
		flush := func() {
			if inWord {
				toks = append(toks, token{kind: tokWord, text: cur.String(), line: lineNo})
				cur.Reset()
				inWord = false
			}
		}
	scan:
		for j := 0; j < len(text); j++ {
			c := text[j]
			switch {
			case c == '"':
				flush()
				end := strings.IndexByte(text[j+1:], '"')
				if end < 0 {
					return nil, &Error{Line: lineNo, Message: fmt.Sprintf("unterminated quote: %s", strings.TrimSpace(text[j:]))}
				}
				toks = append(toks, token{kind: tokWord, text: text[j+1 : j+1+end], line: lineNo})
				j += end + 1
			case c == '\\' && j+1 < len(text) && (text[j+1] == '#' || text[j+1] == '!'):
				cur.WriteByte(text[j+1])
				inWord = true
				j++
			case c == '#' || c == '!':
				break scan
			case c == '{' || c == '}':
				flush()
				kind := tokOpen
				if c == '}' {
					kind = tokClose
				}
				toks = append(toks, token{kind: kind, text: string(c), line: lineNo})
			case c == ' ' || c == '\t' || c == '\f' || c == '\v' || c == '\r':
				flush()
			default:
				cur.WriteByte(c)
				inWord = true
			}
		}
		flush()
		toks = append(toks, token{kind: tokEOL, line: lineNo})
	}
	return toks, nil
}

// inComment reports whether a line's trailing backslash sits inside a
// comment, where it continues nothing.
func inComment(text string) bool {
	quoted := false
	for j := 0; j < len(text); j++ {
		switch c := text[j]; {
		case c == '"':
			quoted = !quoted
		case c == '\\':
			j++
		case (c == '#' || c == '!') && !quoted:
			return true
		}
	}
	return false
}

// Parse reads keepalived.conf into its statements. A statement ends at the
// end of its line or at a brace; a '{' alone on the line after a keyword
// opens that keyword's block, as keepalived allows. include statements are
// not followed: each becomes a warning.
func Parse(data []byte) ([]*Node, []Warning, error) {
	toks, err := tokenize(data)
	if err != nil {
		return nil, nil, err
	}
	var warnings []Warning
	root := &Node{}
	stack := []*Node{root}
	var stmt *Node
	// last is the latest statement closed by an end of line at the current
	// level: a '{' on the next line belongs to it.
	var last *Node
	end := func() {
		if stmt == nil {
			return
		}
		parent := stack[len(stack)-1]
		if stmt.Keyword == "include" {
			warnings = append(warnings, Warning{Line: stmt.Line, Message: fmt.Sprintf("include %s not followed: convert the included file on its own and merge the result by hand", strings.Join(stmt.Args, " "))})
		} else {
			parent.Block = append(parent.Block, stmt)
		}
		last = stmt
		stmt = nil
	}
	for _, t := range toks {
		switch t.kind {
		case tokWord:
			if stmt == nil {
				stmt = &Node{Keyword: t.text, Line: t.line}
				last = nil
			} else {
				stmt.Args = append(stmt.Args, t.text)
			}
		case tokEOL:
			end()
		case tokOpen:
			owner := stmt
			if owner == nil {
				if last == nil || last.HasBlock || last.Keyword == "include" {
					return nil, nil, &Error{Line: t.line, Message: "'{' opens a block but no keyword comes before it"}
				}
				owner = last
			} else {
				end()
			}
			owner.HasBlock = true
			stack = append(stack, owner)
			last = nil
		case tokClose:
			end()
			if len(stack) == 1 {
				return nil, nil, &Error{Line: t.line, Message: "unbalanced '}': no block is open here"}
			}
			last = stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			// A block's owner takes no second block.
		}
	}
	end()
	if len(stack) > 1 {
		unclosed := stack[len(stack)-1]
		return nil, nil, &Error{Line: unclosed.Line, Message: fmt.Sprintf("the block of %s opened here is never closed: a '}' is missing", unclosed.Keyword)}
	}
	return root.Block, warnings, nil
}
