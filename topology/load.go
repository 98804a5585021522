package topology

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// ErrInvalid is wrapped by every error that reports a problem in a file.
var ErrInvalid = errors.New("invalid topology")

// Problem is one thing wrong in a topology file.
type Problem struct {
	File    string
	Line    int
	Message string
}

// String formats the problem as FILE:LINE: message.
func (p Problem) String() string {
	return fmt.Sprintf("%s:%d: %s", p.File, p.Line, p.Message)
}

// ValidationError lists every problem of a file, in line order.
type ValidationError struct {
	Problems []Problem
}

// Error prints one problem per line.
func (e *ValidationError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// Unwrap makes errors.Is(err, ErrInvalid) true.
func (e *ValidationError) Unwrap() error { return ErrInvalid }

// Load reads, decodes and validates the topology file at path: the schema,
// the same on every host. The director adds CheckDirectorHost (LoadDirector
// does both); the real-server agent, which has neither hook nor password
// files, does not.
func Load(path string) (*Topology, error) {
	return NewLoader().Load(path)
}

// Parse decodes and validates a topology; file names it in messages. Every
// problem is reported, not only the first. A large file is parsed in
// parallel pieces (Loader).
func Parse(file string, data []byte) (*Topology, error) {
	return NewLoader().Parse(file, data)
}

// parseWhole parses the file as one document: small files, files the
// Loader does not cut, and files with problems, whose messages it words.
func parseWhole(file string, data []byte) (*Topology, error) {
	d := &decoder{file: file}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		d.problems = append(d.problems, syntaxProblem(file, data, err))
		return nil, d.err()
	}
	if root.Kind == 0 || len(root.Content) == 0 {
		d.problemf(&root, "the file is empty: it must declare vip, director, services and real_servers")
		return nil, d.err()
	}
	t := d.topology(root.Content[0])
	d.flushUnknownKeys(&root)
	if err := d.err(); err != nil {
		return nil, err
	}
	return d.finish(t, data), nil
}

type decoder struct {
	file     string
	problems []Problem
	// hostFiles are the files the director reads, for CheckDirectorHost.
	hostFiles []hostFile
	// levels are the mappings read, and unknown the keys they did not
	// know, for the hints of flushUnknownKeys.
	levels map[*yaml.Node]level
	// warnings are settings accepted but doubtful, as keepalived would
	// have accepted them without a word.
	warnings []Problem
	unknown  []unknownKey
	// checkNodes keeps the check nodes of each service, by service name,
	// for the real servers' check_overrides.
	checkNodes map[string][]*yaml.Node
	// decoded are the pieces of the top-level sequences that a Loader
	// decoded ahead, by key.
	decoded map[string][]*decodedPiece
	// noHints skips what only the hints of unknown keys need: a piece's
	// decoder, whose file is parsed again whole if it finds a problem.
	noHints bool
}

func (d *decoder) problemf(n *yaml.Node, format string, args ...any) {
	line := 1
	if n != nil && n.Line > 0 {
		line = n.Line
	}
	d.problems = append(d.problems, Problem{File: d.file, Line: line, Message: fmt.Sprintf(format, args...)})
}

func (d *decoder) warnf(n *yaml.Node, format string, args ...any) {
	line := 1
	if n != nil && n.Line > 0 {
		line = n.Line
	}
	d.warnings = append(d.warnings, Problem{File: d.file, Line: line, Message: "warning: " + fmt.Sprintf(format, args...)})
}

func (d *decoder) err() error {
	if len(d.problems) == 0 {
		return nil
	}
	sort.SliceStable(d.problems, func(i, j int) bool { return d.problems[i].Line < d.problems[j].Line })
	// An override laid over several checks finds its own mistake once per
	// check.
	return &ValidationError{Problems: slices.Compact(d.problems)}
}
