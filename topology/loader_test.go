package topology

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// varied writes a valid file that uses what a piece's decoding carries out
// of the piece: warnings, host files, check nodes under overrides, sorry
// servers, weights per service, checks through the VIP, quorums. indent is
// that of the sequences' items; serversFirst puts real_servers before
// services.
func varied(t *testing.T, services, perService int, indent string, serversFirst bool) string {
	dir := t.TempDir()
	password := filepath.Join(dir, "password")
	if err := os.WriteFile(password, []byte("guest\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var svc, rs strings.Builder
	svc.WriteString("services:\n")
	for s := range services {
		fmt.Fprintf(&svc, "%[1]s- name: s%[2]d\n%[1]s  port: %[3]d\n", indent, s, 1+s)
		switch s % 4 {
		case 0:
			fmt.Fprintf(&svc, "%s  check: {type: tcp, interval: 1s, connect_timeout: 3s}   # warned\n", indent)
		case 1:
			fmt.Fprintf(&svc, "%[1]s  checks:\n%[1]s    - {name: amqp, type: amqp, username: guest, password_file: %[2]s}\n%[1]s    - {name: port, type: tcp, through_vip: true}\n", indent, password)
		case 2:
			fmt.Fprintf(&svc, "%[1]s  sorry_server: 10.254.0.1\n%[1]s  quorum: 2\n", indent)
		}
		fmt.Fprintf(&svc, "%s  real_servers:\n", indent)
		for r := range perService {
			if r == 0 {
				fmt.Fprintf(&svc, "%s    - {name: r%d, weight: 3}\n", indent, s*perService+r)
				continue
			}
			fmt.Fprintf(&svc, "%s    - r%d\n", indent, s*perService+r)
		}
		if s%5 == 0 {
			svc.WriteString("\n# between services\n")
		}
	}
	rs.WriteString("real_servers:\n")
	for r := range services * perService {
		fmt.Fprintf(&rs, "%[1]s- name: r%[2]d\n%[1]s  address: 10.%[3]d.%[4]d.%[5]d\n", indent, r, 1+r/65536, r/256%256, r%256)
		if s := r / perService; s%4 == 1 && r%perService == 1 {
			fmt.Fprintf(&rs, "%[1]s  check_overrides:\n%[1]s    s%[2]d: {connect_timeout: 2s, interval: 1s}\n", indent, s)
		}
	}
	head := "# a comment before it all\nvip: 10.255.255.254\ndirector:\n  interface: eth0\n"
	tail := "realserver:\n  interface: eth0\n"
	if serversFirst {
		return head + rs.String() + svc.String() + tail
	}
	return head + svc.String() + rs.String() + tail
}

// pieceLoader cuts files of any size into small pieces, so that every
// sequence spans several.
func pieceLoader() *Loader {
	l := NewLoader()
	l.perPiece, l.minItems = 7, 0
	return l
}

// sameAsWhole parses data with the loader and whole, and fails unless both
// give the same topology or the same error.
func sameAsWhole(t *testing.T, l *Loader, data string) *Topology {
	t.Helper()
	want, wantErr := parseWhole("t.yaml", []byte(data))
	got, err := l.Parse("t.yaml", []byte(data))
	if fmt.Sprint(err) != fmt.Sprint(wantErr) {
		t.Fatalf("loader: %v\nwhole file: %v", err, wantErr)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("the loader's topology differs from the whole file's:\n%+v\n%+v", got, want)
	}
	return got
}

func TestLoaderDecodesAsTheWholeFile(t *testing.T) {
	base := varied(t, 23, 3, "  ", false)
	cases := map[string]string{
		"generated, own":               string(generated("own", 40, 10)),
		"generated, shared":            string(generated("shared", 60, 5)),
		"varied":                       base,
		"CRLF":                         strings.ReplaceAll(base, "\n", "\r\n"),
		"no newline at the end":        strings.TrimSuffix(base, "\n"),
		"sequences at column 0":        varied(t, 23, 3, "", false),
		"real_servers first":           varied(t, 23, 3, "    ", true),
		"comment after the key":        strings.Replace(base, "services:\n", "services:   # the ports\n", 1),
		"comment at column 0 in items": strings.Replace(base, "\n  - name: r40\n", "\n# r40 is new\n  - name: r40\n", 1),
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			l := pieceLoader()
			topo := sameAsWhole(t, l, data)
			if len(l.pieces) == 0 {
				t.Fatal("the loader parsed the file whole: this case tests its pieces")
			}
			if name == "varied" && (len(topo.Warnings) == 0 || len(topo.hostFiles) == 0) {
				t.Fatalf("the varied file has %d warnings and %d host files: it no longer tests them", len(topo.Warnings), len(topo.hostFiles))
			}
		})
	}
}

func TestLoaderWordsProblemsAsTheWholeFile(t *testing.T) {
	base := varied(t, 23, 3, "  ", false)
	cases := map[string]string{
		"bad address in a piece":          strings.Replace(base, "address: 10.1.0.40\n", "address: 10.1.0.400\n", 1),
		"unknown key in a piece":          strings.Replace(base, "    port: 9\n", "    port: 9\n    weigth: 2\n", 1),
		"indented too little":             strings.Replace(base, "    port: 9\n", "    port: 9\n   quorum: 2\n", 1),
		"duplicate across pieces":         strings.Replace(base, "name: r60\n", "name: r3\n", 1),
		"override of a missing service":   strings.Replace(base, "      s1: {", "      s99: {", 1),
		"quorum above the members":        strings.Replace(base, "    quorum: 2\n", "    quorum: 9\n", 1),
		"sorry server is a member":        strings.Replace(base, "sorry_server: 10.254.0.1", "sorry_server: 10.1.0.7", 1),
		"a quoted scalar across items":    strings.Replace(base, "  - name: r5\n", "  - name: \"r5\n  - x\"\n", 1),
		"alias to an earlier piece":       strings.Replace(strings.Replace(base, "  - name: s0\n", "  - name: s0\n    protocol: &proto tcp\n", 1), "  - name: s20\n", "  - name: s20\n    protocol: *proto\n", 1),
		"flow sequence":                   strings.Replace(base, "realserver:\n", "", 1) + "realserver: {interface: eth0}\n",
		"tab in an item":                  strings.Replace(base, "    port: 9\n", "\tport: 9\n", 1),
		"two documents":                   base + "---\nvip: 10.0.0.1\n",
		"services twice":                  base + "services:\n  - {name: x, port: 1}\n",
		"key at the sequence's indent":    strings.Replace(base, "real_servers:\n  - name: r0\n", "real_servers:\n  - name: r0\n  weight: 2\n", 1),
		"a sequence key with a value":     strings.Replace(base, "real_servers:\n  - name: r0\n", "real_servers: []\n  - name: r0\n", 1),
		"empty file":                      "",
		"only the sequences, no director": "services:\n  - {name: a, port: 1}\nreal_servers:\n  - {name: r, address: 10.0.0.1}\n",
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			sameAsWhole(t, pieceLoader(), data)
		})
	}
}

func TestLoaderParsesAgainOnlyThePiecesThatChanged(t *testing.T) {
	base := varied(t, 23, 3, "  ", false)
	l := pieceLoader()
	sameAsWhole(t, l, base)
	held := len(l.pieces)
	steps := []struct {
		name    string
		edit    func(string) string
		decoded int // pieces decoded again
	}{
		{"unchanged", func(s string) string { return s }, 0},
		{"one weight", func(s string) string {
			return strings.Replace(s, "{name: r30, weight: 3}", "{name: r30, weight: 7}", 1)
		}, 1},
		{"lines added above every piece", func(s string) string { return "# two more\n# lines\n" + s }, 0},
		{"a real server added at the end", func(s string) string {
			return strings.Replace(s, "realserver:\n", "  - {name: extra, address: 10.200.0.1}\nrealserver:\n", 1)
		}, 1},
		{"a service added first: every service moves", func(s string) string {
			return strings.Replace(s, "services:\n", "services:\n  - {name: first, port: 9999, real_servers: [r0]}\n", 1)
		}, 4},
		{"a broken file keeps the pieces", func(s string) string { return strings.Replace(s, "port: 9999", "port: 99999", 1) }, 0},
	}
	data := base
	for _, step := range steps {
		data = step.edit(data)
		before := l.pieces
		decodes := countDecodes(l, func() { sameAsWhole(t, l, data) })
		if step.name == "a broken file keeps the pieces" {
			if !reflect.DeepEqual(keysOf(before), keysOf(l.pieces)) {
				t.Errorf("%s: the loader forgot the last good file's pieces", step.name)
			}
			continue
		}
		if decodes != step.decoded {
			t.Errorf("%s: %d pieces decoded, want %d (of %d)", step.name, decodes, step.decoded, held)
		}
	}
}

func keysOf(m map[pieceKey]*decodedPiece) map[pieceKey]bool {
	keys := map[pieceKey]bool{}
	for k := range m {
		keys[k] = true
	}
	return keys
}

// countDecodes counts the pieces the loader did not hold before parse.
func countDecodes(l *Loader, parse func()) int {
	held := map[*decodedPiece]bool{}
	for _, dp := range l.pieces {
		held[dp] = true
	}
	parse()
	n := 0
	for _, dp := range l.pieces {
		if !held[dp] {
			n++
		}
	}
	return n
}

func TestLoaderForgetsThePiecesOfAnotherFile(t *testing.T) {
	data := varied(t, 23, 3, "  ", false)
	l := pieceLoader()
	sameAsWhole(t, l, data)
	other, err := l.Parse("other.yaml", []byte(data))
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range other.Warnings {
		if w.File != "other.yaml" {
			t.Fatalf("a warning of other.yaml names %s: %s", w.File, w)
		}
	}
}

func TestLoaderTopologiesShareNoSorryServer(t *testing.T) {
	data := varied(t, 23, 3, "  ", false)
	l := pieceLoader()
	first := sameAsWhole(t, l, data)
	second := sameAsWhole(t, l, data)
	for i, s := range first.Services {
		if s.SorryServer != nil && s.SorryServer == second.Services[i].SorryServer {
			t.Fatalf("%s: two parses share a sorry server, which the second parse writes to", s.Name)
		}
	}
}

func TestCutSequences(t *testing.T) {
	cases := []struct {
		name   string
		data   string
		ok     bool
		pieces map[string][]int // items per piece, by key
	}{
		{"two sequences", "vip: 1\nservices:\n  - a\n  - b\n  - c\nreal_servers:\n  - x\n", true, map[string][]int{"services": {2, 1}, "real_servers": {1}}},
		{"item lines and nested lists", "services:\n  - name: a\n    list:\n    - 1\n    - 2\n  - b\n", true, map[string][]int{"services": {2}}},
		{"column 0", "services:\n- a\n- b\n- c\nvip: 1\n", true, map[string][]int{"services": {2, 1}}},
		{"other keys are not cut", "director:\n  - a\n  - b\n", false, nil},
		{"flow", "services: [a, b]\n", false, nil},
		{"mapping", "services:\n  a: 1\n", false, nil},
		{"tab", "services:\n  - a\n\t- b\n", false, nil},
		{"document marker", "---\nservices:\n  - a\n", false, nil},
		{"directive", "%YAML 1.2\nservices:\n  - a\n", false, nil},
		{"twice", "services:\n  - a\nservices:\n  - b\n", false, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cut, ok := cutSequences([]byte(c.data), 2)
			if ok != c.ok {
				t.Fatalf("ok = %v, want %v", ok, c.ok)
			}
			if !ok {
				return
			}
			got := map[string][]int{}
			for _, s := range cut.seqs {
				for _, p := range s.pieces {
					got[s.key] = append(got[s.key], p.items)
				}
			}
			if !reflect.DeepEqual(got, c.pieces) {
				t.Errorf("pieces %v, want %v", got, c.pieces)
			}
			if strings.Count(string(cut.skeleton), "\n") != strings.Count(c.data, "\n") {
				t.Errorf("the skeleton has %d lines, the file %d:\n%s", strings.Count(string(cut.skeleton), "\n"), strings.Count(c.data, "\n"), cut.skeleton)
			}
		})
	}
}

// FuzzLoader checks that whatever the text, the loader decodes what the
// whole file decodes: go test -fuzz FuzzLoader ./topology
func FuzzLoader(f *testing.F) {
	f.Add(string(generated("shared", 12, 3)))
	f.Add("vip: 10.0.0.1\ndirector: {interface: eth0}\nrealserver: {interface: eth0}\nservices:\n- {name: a, port: 1}\n- name: b\n  port: 2\nreal_servers:\n  - {name: r, address: 10.0.0.2}\n  - name: \"q\n  - x\"\n")
	f.Fuzz(func(t *testing.T, data string) {
		want, wantErr := parseWhole("t.yaml", []byte(data))
		got, err := pieceLoader().Parse("t.yaml", []byte(data))
		if fmt.Sprint(err) != fmt.Sprint(wantErr) || !reflect.DeepEqual(got, want) {
			t.Fatalf("loader: %v %+v\nwhole: %v %+v", err, got, wantErr, want)
		}
	})
}
