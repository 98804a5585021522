package topology

import (
	"fmt"
	"os"
	"slices"
	"sort"

	"gopkg.in/yaml.v3"
)

// hostFile is a file the topology names that only the director uses: the
// notify hook, a check's password or CA file. The file is shared with the
// real servers, where these files do not exist.
type hostFile struct {
	line int
	// path is where the file is named, as in "director.notify.command[0]".
	path string
	file string
	// executable: the file is run, not read.
	executable bool
}

func (d *decoder) hostFile(n *yaml.Node, path, file string, executable bool) {
	if file == "" {
		return
	}
	line := 1
	if n != nil && n.Line > 0 {
		line = n.Line
	}
	d.hostFiles = append(d.hostFiles, hostFile{line: line, path: path, file: file, executable: executable})
}

// LoadDirector is Load followed by CheckDirectorHost: what the director
// validates before it uses a file.
func LoadDirector(path string) (*Topology, error) {
	return NewLoader().LoadDirector(path)
}

// CheckDirectorHost checks what the director needs from this host beyond
// the schema: that the notify hook is an executable file and that the
// checks' password and CA files can be read. Each problem names its line,
// as Parse's do, and the error wraps ErrInvalid.
func (t *Topology) CheckDirectorHost() error {
	var problems []Problem
	for _, f := range t.hostFiles {
		if msg := f.problem(); msg != "" {
			problems = append(problems, Problem{File: t.File, Line: f.line, Message: f.path + ": " + msg})
		}
	}
	if len(problems) == 0 {
		return nil
	}
	sort.SliceStable(problems, func(i, j int) bool { return problems[i].Line < problems[j].Line })
	// An override laid over several checks names the same file once per
	// check.
	return &ValidationError{Problems: slices.Compact(problems)}
}

// problem says what is wrong with the file on this host, or "".
func (f hostFile) problem() string {
	if f.executable {
		info, err := os.Stat(f.file)
		switch {
		case err != nil:
			return err.Error()
		case info.IsDir() || info.Mode().Perm()&0o111 == 0:
			return fmt.Sprintf("%s is not an executable file", f.file)
		}
		return ""
	}
	r, err := os.Open(f.file)
	if err != nil {
		return err.Error()
	}
	r.Close()
	return ""
}
