package topology

import "bytes"

// A file of 10,000 real servers is a few lines of settings and two long
// block sequences, services and real_servers. Parsing it whole with yaml.v3
// is most of a director's start and all of its reload. Cut at the items of
// those sequences, the file parses in pieces that run in parallel and that a
// reload need not parse again when their text did not change (Loader).
//
// The cut is made on the text, before any YAML is parsed, so it is kept to
// what YAML's block structure guarantees: at the top level (column 0), a
// key alone on its line opens a block sequence when the next line with
// content is "- " at some indent; a line at that indent starting with "- "
// opens the next item; a line with content at a smaller indent closes the
// sequence. Anything else (tabs, directives, several documents, a sequence
// key given twice) leaves the file uncut. A cut that would still be wrong
// (a quoted scalar or a flow collection running across an item's first
// line) leaves a piece that does not parse as exactly its items, and the
// Loader then parses the whole file as one.

// splitKeys are the top-level keys whose block sequences are cut.
var splitKeys = []string{"services", "real_servers"}

// cutFile is a file with its long sequences taken out.
type cutFile struct {
	// skeleton is the file with each cut sequence's lines emptied, line
	// numbers kept: the sequences' keys parse as empty values.
	skeleton []byte
	seqs     []cutSequence
	// items counts the items of every cut sequence.
	items int
}

// cutSequence is one top-level block sequence, in pieces of whole items.
type cutSequence struct {
	key string
	// keyLine is the line of the key; line and column are those of the
	// first item's "-", where yaml.v3 places the sequence.
	keyLine, line, column int
	pieces                []piece
}

// piece is a run of whole items of a sequence, as written in the file.
type piece struct {
	text []byte
	// line is the file's line of the piece's first line; first is the
	// index of its first item in the sequence; items is how many it has.
	line, first, items int
}

// cutSequences cuts the top-level block sequences of splitKeys into pieces
// of at most perPiece items. ok is false when the file is not cut.
func cutSequences(data []byte, perPiece int) (c cutFile, ok bool) {
	if perPiece < 1 || bytes.HasPrefix(data, []byte("\xef\xbb\xbf")) {
		return cutFile{}, false
	}
	var (
		seq     *cutSequence
		indent  int // the indent of the open sequence's "- "
		pending string
		keyLine int
		// start is the offset of the open piece, startLine its line,
		// items its item count, first the index of its first item.
		start, startLine, items, first int
		// blankFrom is where the open sequence's lines began, for the
		// skeleton; cuts are the ranges to empty.
		blankFrom int
		cuts      [][2]int
	)
	closePiece := func(end int) {
		if items > 0 {
			seq.pieces = append(seq.pieces, piece{text: data[start:end], line: startLine, first: first, items: items})
			first += items
		}
		items = 0
	}
	closeSeq := func(end int) {
		closePiece(end)
		c.seqs = append(c.seqs, *seq)
		cuts = append(cuts, [2]int{blankFrom, end})
		seq = nil
	}
	line := 0
	for off := 0; off < len(data); {
		line++
		end := bytes.IndexByte(data[off:], '\n')
		next := len(data)
		if end < 0 {
			end = len(data)
		} else {
			end += off
			next = end + 1
		}
		text := bytes.TrimRight(data[off:end], "\r")
		lineStart := off
		off = next
		if len(text) > 0 && text[0] == '\t' {
			return cutFile{}, false
		}
		col := 0
		for col < len(text) && text[col] == ' ' {
			col++
		}
		if col == len(text) || text[col] == '#' {
			// Blank and comment lines belong to whatever they are in.
			continue
		}
		if col < len(text) && text[col] == '\t' {
			return cutFile{}, false
		}
		item := text[col] == '-' && (col+1 == len(text) || text[col+1] == ' ')
		if seq != nil {
			switch {
			case col > indent:
				continue
			case col == indent && item:
				if items == perPiece {
					closePiece(lineStart)
				}
				if items == 0 {
					start, startLine = lineStart, line
				}
				items++
				continue
			}
			closeSeq(lineStart)
		}
		if pending != "" {
			key := pending
			pending = ""
			if item {
				for _, s := range c.seqs {
					if s.key == key {
						return cutFile{}, false
					}
				}
				seq = &cutSequence{key: key, keyLine: keyLine, line: line, column: col + 1}
				indent, first, items = col, 0, 1
				start, startLine, blankFrom = lineStart, line, lineStart
				continue
			}
		}
		if col > 0 {
			continue
		}
		if bytes.HasPrefix(text, []byte("---")) || bytes.HasPrefix(text, []byte("...")) || text[0] == '%' {
			return cutFile{}, false
		}
		pending, keyLine = splitKeyOf(text), line
	}
	if seq != nil {
		closeSeq(len(data))
	}
	if len(c.seqs) == 0 {
		return cutFile{}, false
	}
	skeleton := make([]byte, 0, len(data))
	from := 0
	for _, cut := range cuts {
		skeleton = append(skeleton, data[from:cut[0]]...)
		for range bytes.Count(data[cut[0]:cut[1]], []byte{'\n'}) {
			skeleton = append(skeleton, '\n')
		}
		from = cut[1]
	}
	c.skeleton = append(skeleton, data[from:]...)
	for _, s := range c.seqs {
		for _, p := range s.pieces {
			c.items += p.items
		}
	}
	return c, true
}

// splitKeyOf returns the key of splitKeys that a top-level line opens with
// nothing after it but a comment, or "".
func splitKeyOf(line []byte) string {
	for _, key := range splitKeys {
		rest, found := bytes.CutPrefix(line, []byte(key+":"))
		if !found {
			continue
		}
		rest = bytes.TrimLeft(rest, " ")
		if len(rest) == 0 || (rest[0] == '#' && len(rest) < len(line)-len(key)-1) {
			return key
		}
	}
	return ""
}
