package topology

import (
	"crypto/sha256"
	"fmt"
	"os"
	"runtime"
	"slices"
	"sort"
	"sync"

	"gopkg.in/yaml.v3"
)

// Loader parses topology files as Parse does, but cuts their long
// sequences into pieces (split.go) that it parses and decodes in parallel,
// and it keeps the pieces of the last file it parsed: a reload that changed
// one weight parses one piece again, not 10,000 real servers. Whatever the
// pieces find wrong, the file is parsed again whole, so that problems,
// their lines and their hints are exactly Parse's.
//
// A Loader serves one caller at a time (the director's loop); it locks
// around each parse.
type Loader struct {
	mu sync.Mutex
	// perPiece is the most items a piece holds; minItems the fewest items
	// a file needs to be cut at all; workers how many pieces decode at once.
	perPiece, minItems, workers int
	// pieces are those of the last file parsed, by key and text; file is
	// its name, which their warnings carry.
	pieces map[pieceKey]*decodedPiece
	file   string
}

// NewLoader returns a Loader with an empty memory of pieces.
func NewLoader() *Loader {
	return &Loader{perPiece: 128, minItems: 256, workers: runtime.GOMAXPROCS(0)}
}

// Load reads and parses the topology file at path, as Load does.
func (l *Loader) Load(path string) (*Topology, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read topology: %w", err)
	}
	return l.Parse(path, data)
}

// LoadDirector is Load followed by CheckDirectorHost, as LoadDirector.
func (l *Loader) LoadDirector(path string) (*Topology, error) {
	t, err := l.Load(path)
	if err != nil {
		return nil, err
	}
	if err := t.CheckDirectorHost(); err != nil {
		return nil, err
	}
	return t, nil
}

// pieceKey names a piece's decoding: the paths in its messages carry the
// index of its first item, so a piece that moved in its sequence is
// decoded again.
type pieceKey struct {
	seq   string
	first int
	text  string
}

// decodedPiece is what a piece decoded to: its nodes, for the checks that
// span pieces, and its entries.
type decodedPiece struct {
	// line is the file line the nodes, warnings and host files are
	// numbered for; a piece reused at another line is renumbered.
	line       int
	items      []*yaml.Node
	services   []Service
	checkNodes [][]*yaml.Node
	servers    []RealServer
	overrides  []*yaml.Node
	warnings   []Problem
	hostFiles  []hostFile
}

// Parse decodes and validates a topology as the package's Parse does.
func (l *Loader) Parse(file string, data []byte) (*Topology, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if file != l.file {
		l.pieces, l.file = nil, file
	}
	cut, ok := cutSequences(data, l.perPiece)
	if !ok || cut.items < l.minItems {
		return parseWhole(file, data)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(cut.skeleton, &root); err != nil || root.Kind != yaml.DocumentNode || len(root.Content) != 1 {
		return parseWhole(file, data)
	}
	decoded, next, ok := l.decodePieces(file, cut)
	if !ok || !graft(root.Content[0], cut, decoded) {
		return parseWhole(file, data)
	}
	d := &decoder{file: file, decoded: decoded}
	t := d.topology(root.Content[0])
	d.flushUnknownKeys(&root)
	if len(d.problems) > 0 {
		return parseWhole(file, data)
	}
	l.pieces = next
	return d.finish(t, data), nil
}

// decodePieces decodes the pieces it does not already hold, in parallel.
// It returns the pieces of each sequence in order, and the memory of
// pieces for the next parse; ok is false if a piece did not decode cleanly.
func (l *Loader) decodePieces(file string, cut cutFile) (map[string][]*decodedPiece, map[pieceKey]*decodedPiece, bool) {
	type job struct {
		seq string
		p   piece
		out **decodedPiece
	}
	decoded := map[string][]*decodedPiece{}
	next := make(map[pieceKey]*decodedPiece, len(l.pieces))
	var jobs []job
	for _, s := range cut.seqs {
		out := make([]*decodedPiece, len(s.pieces))
		decoded[s.key] = out
		for i, p := range s.pieces {
			if dp := l.pieces[pieceKey{s.key, p.first, string(p.text)}]; dp != nil {
				dp.renumber(p.line)
				out[i] = dp
				continue
			}
			jobs = append(jobs, job{s.key, p, &out[i]})
		}
	}
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		taken  int
		failed bool
	)
	for range min(l.workers, len(jobs)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				if taken == len(jobs) || failed {
					mu.Unlock()
					return
				}
				j := jobs[taken]
				taken++
				mu.Unlock()
				dp, ok := decodePiece(file, j.seq, j.p)
				if !ok {
					mu.Lock()
					failed = true
					mu.Unlock()
					return
				}
				*j.out = dp
			}
		}()
	}
	wg.Wait()
	if failed {
		return nil, nil, false
	}
	for _, s := range cut.seqs {
		for i, p := range s.pieces {
			next[pieceKey{s.key, p.first, string(p.text)}] = decoded[s.key][i]
		}
	}
	return decoded, next, true
}

// decodePiece parses a piece and decodes its items as the whole file's
// decoder would. ok is false if the piece is not exactly its items, or if
// anything in it is wrong: the whole file then says what.
func decodePiece(file, seq string, p piece) (*decodedPiece, bool) {
	var doc yaml.Node
	if err := yaml.Unmarshal(p.text, &doc); err != nil || doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, false
	}
	list := doc.Content[0]
	if list.Kind != yaml.SequenceNode || len(list.Content) != p.items {
		return nil, false
	}
	dp := &decodedPiece{line: p.line, items: list.Content}
	for _, n := range dp.items {
		shiftLines(n, p.line-1)
	}
	d := &decoder{file: file, checkNodes: map[string][]*yaml.Node{}, noHints: true}
	for k, n := range dp.items {
		switch seq {
		case "services":
			s := d.service(n, p.first+k)
			dp.services = append(dp.services, s)
			dp.checkNodes = append(dp.checkNodes, d.checkNodes[s.Name])
		case "real_servers":
			rs, overrides := d.realServer(n, p.first+k)
			dp.servers = append(dp.servers, rs)
			dp.overrides = append(dp.overrides, overrides)
		}
	}
	if len(d.problems) > 0 || len(d.unknown) > 0 {
		return nil, false
	}
	dp.warnings, dp.hostFiles = d.warnings, d.hostFiles
	return dp, true
}

// renumber moves a piece's lines to a new first line.
func (dp *decodedPiece) renumber(line int) {
	delta := line - dp.line
	if delta == 0 {
		return
	}
	for _, n := range dp.items {
		shiftLines(n, delta)
	}
	for i := range dp.warnings {
		dp.warnings[i].Line += delta
	}
	for i := range dp.hostFiles {
		dp.hostFiles[i].line += delta
	}
	dp.line = line
}

func shiftLines(n *yaml.Node, delta int) {
	if delta == 0 {
		return
	}
	n.Line += delta
	for _, c := range n.Content {
		shiftLines(c, delta)
	}
}

// graft puts the decoded pieces' items in the skeleton, in place of the
// empty values its sequences' keys were left with. It is false if the
// skeleton does not have them where the cut found them.
func graft(top *yaml.Node, cut cutFile, decoded map[string][]*decodedPiece) bool {
	if top.Kind != yaml.MappingNode {
		return false
	}
	for _, s := range cut.seqs {
		grafted := false
		for i := 0; i+1 < len(top.Content); i += 2 {
			key, value := top.Content[i], top.Content[i+1]
			if key.Value != s.key || key.Line != s.keyLine {
				continue
			}
			if value.Kind != yaml.ScalarNode || value.Tag != "!!null" || value.Value != "" || grafted {
				return false
			}
			list := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Line: s.line, Column: s.column}
			for _, dp := range decoded[s.key] {
				list.Content = append(list.Content, dp.items...)
			}
			top.Content[i+1] = list
			grafted = true
		}
		if !grafted {
			return false
		}
	}
	return true
}

// takeServices appends the decoded services of a sequence's pieces, each
// with a sorry server of its own: quorum fills in its port.
func (d *decoder) takeServices(t *Topology, pieces []*decodedPiece) {
	for _, dp := range pieces {
		for k, s := range dp.services {
			if s.SorryServer != nil {
				ss := *s.SorryServer
				s.SorryServer = &ss
			}
			t.Services = append(t.Services, s)
			d.checkNodes[s.Name] = dp.checkNodes[k]
		}
		d.warnings = append(d.warnings, dp.warnings...)
		d.hostFiles = append(d.hostFiles, dp.hostFiles...)
	}
}

// takeServers appends the decoded real servers of a sequence's pieces and
// their check_overrides nodes.
func (d *decoder) takeServers(t *Topology, overrides *[]*yaml.Node, pieces []*decodedPiece) {
	n := 0
	for _, dp := range pieces {
		n += len(dp.servers)
	}
	t.RealServers = slices.Grow(t.RealServers, n)
	*overrides = slices.Grow(*overrides, n)
	for _, dp := range pieces {
		t.RealServers = append(t.RealServers, dp.servers...)
		*overrides = append(*overrides, dp.overrides...)
		d.warnings = append(d.warnings, dp.warnings...)
		d.hostFiles = append(d.hostFiles, dp.hostFiles...)
	}
}

// finish completes a topology decoded without problems.
func (d *decoder) finish(t *Topology, data []byte) *Topology {
	t.hostFiles = d.hostFiles
	t.Digest = sha256.Sum256(data)
	sort.SliceStable(d.warnings, func(i, j int) bool { return d.warnings[i].Line < d.warnings[j].Line })
	t.Warnings = slices.Compact(d.warnings)
	return t
}
