// Package keepalived reads keepalived.conf, with the files it includes, and
// converts its LVS virtual servers and the VIP's VRRP instance into an
// lvsdr YAML topology, so that a deployment can move from keepalived to
// lvsdr without retyping it. What lvsdr cannot carry, or carries with
// another meaning, is never dropped silently: each becomes a Warning with
// its file and line, printed and written at the top of the YAML.
package keepalived

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Node is one keepalived.conf statement: a keyword, its arguments, and the
// statements of its block when it opens one.
type Node struct {
	Keyword string
	Args    []string
	// File and Line are where the statement starts, for messages: File is
	// the file converted or one it includes.
	File string
	Line int
	// HasBlock tells "keyword { }" (an empty block) from "keyword".
	HasBlock bool
	Block    []*Node
	// seq is the statement's place in reading order, included files read
	// where they are included, for sorting messages.
	seq int
}

// Warning is something of the input that the conversion did not carry, or
// carried differently from keepalived.
type Warning struct {
	File    string
	Line    int
	Message string
	seq     int
}

// Error is input the importer cannot convert.
type Error struct {
	File    string
	Line    int
	Message string
}

// Error formats the problem as FILE:LINE: message.
func (e *Error) Error() string {
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
	file string
	line int
}

// reader reads keepalived.conf and the files it includes into one stream
// of tokens.
type reader struct {
	toks     []token
	warnings []Warning
}

// maxIncludeDepth bounds nested includes, so that a file including itself
// is an error rather than a loop.
const maxIncludeDepth = 16

func (r *reader) warnf(at token, format string, args ...any) {
	r.warnings = append(r.warnings, Warning{File: at.file, Line: at.line, Message: fmt.Sprintf(format, args...), seq: len(r.toks)})
}

// include reads the files that the include line at names, as keepalived
// does: pattern is the rest of the line, a glob(3) pattern with braces,
// relative to the directory of the file that includes it; a pattern that
// matches nothing is skipped.
func (r *reader) include(at token, pattern string, depth int) error {
	if pattern == "" {
		r.warnf(at, "include without a file pattern skipped")
		return nil
	}
	given := pattern
	if !filepath.IsAbs(pattern) {
		pattern = filepath.Join(filepath.Dir(at.file), pattern)
	}
	files, err := glob(pattern)
	if err != nil {
		return &Error{File: at.file, Line: at.line, Message: fmt.Sprintf("include %s: %v", given, err)}
	}
	if len(files) == 0 {
		r.warnf(at, "include %s matches no file (%s): skipped, as keepalived skips it (it logs that no config file matched); check the path", given, pattern)
		return nil
	}
	if depth >= maxIncludeDepth {
		return &Error{File: at.file, Line: at.line, Message: fmt.Sprintf("include %s: includes nested more than %d deep: does a file include itself?", given, maxIncludeDepth)}
	}
	for _, f := range files {
		if info, err := os.Stat(f); err == nil && (!info.Mode().IsRegular() || info.Mode().Perm()&0o111 != 0) {
			r.warnf(at, "include %s: %s skipped: keepalived reads no file that is executable or not a regular file", given, f)
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			return &Error{File: at.file, Line: at.line, Message: fmt.Sprintf("include %s: %v", given, err)}
		}
		if err := r.read(f, data, depth+1); err != nil {
			return err
		}
	}
	return nil
}

// glob expands pattern as keepalived's glob(3) call does (GLOB_BRACE and
// GLOB_MARK): each brace alternative in turn, each sorted; '*', '?' and
// '[...]' never match a leading dot; directories are left out.
func glob(pattern string) ([]string, error) {
	var files []string
	for _, p := range expandBraces(pattern) {
		p = filepath.Clean(p)
		matches, err := filepath.Glob(p)
		if err != nil {
			return nil, fmt.Errorf("pattern %s: %w", p, err)
		}
		for _, m := range matches {
			if info, err := os.Stat(m); err == nil && info.IsDir() || hiddenMatch(p, m) {
				continue
			}
			files = append(files, m)
		}
	}
	return files, nil
}

// hiddenMatch reports whether match has a dot file where pattern had a
// wildcard: glob(3) leaves those out, Go's filepath.Glob does not.
func hiddenMatch(pattern, match string) bool {
	pp := strings.Split(pattern, string(filepath.Separator))
	mm := strings.Split(match, string(filepath.Separator))
	if len(pp) != len(mm) {
		return false
	}
	for i := range mm {
		if strings.HasPrefix(mm[i], ".") && !strings.HasPrefix(pp[i], ".") {
			return true
		}
	}
	return false
}

// expandBraces writes out the first brace group of p with its alternatives,
// recursively: "a{b,c{d,e}}f" is abf, acdf, acef. An unclosed brace or "{}"
// is literal, as in glob(3).
func expandBraces(p string) []string {
	open, depth := -1, 0
	var commas []int
	for i := 0; i < len(p); i++ {
		switch p[i] {
		case '\\':
			i++
		case '{':
			if depth == 0 {
				open, commas = i, nil
			}
			depth++
		case ',':
			if depth == 1 {
				commas = append(commas, i)
			}
		case '}':
			if depth == 0 {
				continue
			}
			depth--
			if depth > 0 || i == open+1 {
				continue
			}
			prefix, suffix := p[:open], p[i+1:]
			bounds := append(append([]int{open}, commas...), i)
			var out []string
			for k := 0; k+1 < len(bounds); k++ {
				out = append(out, expandBraces(prefix+p[bounds[k]+1:bounds[k+1]]+suffix)...)
			}
			return out
		}
	}
	return []string{p}
}

// tokenize splits keepalived.conf the way keepalived's own reader does: a
// '#' or '!' outside double quotes starts a comment wherever it is, "\#" and
// "\!" are those characters, a trailing '\' continues the line, a quoted
// string is one word without its quotes, and '{' and '}' stand alone even
// when glued to a word.
func (r *reader) read(file string, data []byte, depth int) error {
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
		var toks []token
		var cur strings.Builder
		inWord := false
		flush := func() {
			if inWord {
				toks = append(toks, token{kind: tokWord, text: cur.String(), file: file, line: lineNo})
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
					return &Error{File: file, Line: lineNo, Message: fmt.Sprintf("unterminated quote: %s", strings.TrimSpace(text[j:]))}
				}
				toks = append(toks, token{kind: tokWord, text: text[j+1 : j+1+end], file: file, line: lineNo})
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
				toks = append(toks, token{kind: kind, text: string(c), file: file, line: lineNo})
			case c == ' ' || c == '\t' || c == '\f' || c == '\v' || c == '\r':
				flush()
			default:
				cur.WriteByte(c)
				inWord = true
			}
		}
		flush()
		// keepalived reads an include line's files in its place, so
		// that one may hold statements of an enclosing block.
		if len(toks) > 0 && toks[0].kind == tokWord && toks[0].text == "include" {
			// The pattern is the rest of the line as written: braces in
			// it are glob(3)'s.
			rest := strings.TrimSpace(text[:commentStart(text)])
			pattern := strings.TrimSpace(strings.TrimPrefix(rest, "include"))
			if err := r.include(toks[0], pattern, depth); err != nil {
				return err
			}
			continue
		}
		r.toks = append(r.toks, toks...)
		r.toks = append(r.toks, token{kind: tokEOL, file: file, line: lineNo})
	}
	return nil
}

// inComment reports whether a line's trailing backslash sits inside a
// comment, where it continues nothing.
func inComment(text string) bool {
	return commentStart(text) < len(text)
}

// commentStart is where the comment of a line starts: its first '#' or '!'
// outside double quotes and not escaped; len(text) when it has none.
func commentStart(text string) int {
	quoted := false
	for j := 0; j < len(text); j++ {
		switch c := text[j]; {
		case c == '"':
			quoted = !quoted
		case c == '\\':
			j++
		case (c == '#' || c == '!') && !quoted:
			return j
		}
	}
	return len(text)
}

// Parse reads keepalived.conf, read from file, into its statements. A
// statement ends at the end of its line or at a brace; a '{' alone on the
// line after a keyword opens that keyword's block, as keepalived allows. An
// include line is replaced by the statements of the files it names.
func Parse(file string, data []byte) ([]*Node, []Warning, error) {
	r := &reader{}
	if err := r.read(file, data, 0); err != nil {
		return nil, r.warnings, err
	}
	toks := r.toks
	warnings := r.warnings
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
		parent.Block = append(parent.Block, stmt)
		last = stmt
		stmt = nil
	}
	for i, t := range toks {
		switch t.kind {
		case tokWord:
			if stmt == nil {
				stmt = &Node{Keyword: t.text, File: t.file, Line: t.line, seq: i}
				last = nil
			} else {
				stmt.Args = append(stmt.Args, t.text)
			}
		case tokEOL:
			end()
		case tokOpen:
			owner := stmt
			if owner == nil {
				if last == nil || last.HasBlock {
					return nil, warnings, &Error{File: t.file, Line: t.line, Message: "'{' opens a block but no keyword comes before it"}
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
				return nil, warnings, &Error{File: t.file, Line: t.line, Message: "unbalanced '}': no block is open here"}
			}
			last = stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			// A block's owner takes no second block.
		}
	}
	end()
	if len(stack) > 1 {
		unclosed := stack[len(stack)-1]
		return nil, warnings, &Error{File: unclosed.File, Line: unclosed.Line, Message: fmt.Sprintf("the block of %s opened here is never closed: a '}' is missing", unclosed.Keyword)}
	}
	return root.Block, warnings, nil
}
