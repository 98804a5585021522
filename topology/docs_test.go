package topology

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// docsFile is the configuration reference that TestConfigurationDocIsInStepWithTheSchema
// keeps in step with the decoder.
const docsFile = "../docs/configuration.md"

// docsFixture is a valid topology that reaches every mapping of the schema.
// Each "#LEVEL" comment marks where an unknown key goes to probe that level;
// as comments they leave the document valid.
const docsFixture = `vip: 10.0.0.100
#top
director:
  interface: eth0
  notify:
    command: [/bin/true]
    #notify
  ha:
    vrid: 51
    directors:
      - name: lb1
        address: 10.0.0.10
        priority: 150
        #ha_director
      - {name: lb2, address: 10.0.0.11, priority: 100}
    #ha
  #director
services:
  - name: amqp
    port: 5672
    quorum: 1
    sorry_server:
      address: 10.0.0.9
      port: 5672
      #sorry_server
    checks:
      - type: amqp
        username: monitor
        password_file: PASSWORD
        #amqp
      - name: listener
        type: http
        port: 15672
        path: /api/health/checks/port-listener/5672
        #http
      - name: vip
        type: tcp
        through_vip: true
        #checks_item
    #service
  - name: management
    port: 15672
    check:
      type: tcp
      #check
    real_servers:
      - n1
      - name: n2
        weight: 5
        #member
real_servers:
  - name: n1
    address: 10.0.0.2
    check_overrides:
      amqp:
        connect_timeout: 9s
        #override
    #real_server
  - name: n2
    address: 10.0.0.3
realserver:
  interface: eth0
  #realserver
`

// haFixtureBlock is director.ha in docsFixture, which docsBGPFixture
// replaces: the two are not allowed together.
const haFixtureBlock = `  ha:
    vrid: 51
    directors:
      - name: lb1
        address: 10.0.0.10
        priority: 150
        #ha_director
      - {name: lb2, address: 10.0.0.11, priority: 100}
    #ha
`

// docsBGPFixture reaches director.bgp: docsFixture with bgp instead of ha
// and the schedulers bgp needs.
var docsBGPFixture = strings.NewReplacer(haFixtureBlock, `  bgp:
    asn: 65001
    peers:
      - address: 10.0.0.254
        asn: 65000
        #bgp_peer
    #bgp
`, "    port: 5672\n    quorum:", "    port: 5672\n    scheduler: mh\n    quorum:", "    port: 15672\n    check:", "    port: 15672\n    scheduler: sh\n    check:").Replace(docsFixture)

// Sections of docs/configuration.md, by their heading line.
const (
	secTop         = "## Top level"
	secDirector    = "## `director`"
	secNotify      = "### `director.notify`"
	secHA          = "### `director.ha`"
	secHADirector  = "#### `director.ha.directors[]`"
	secBGP         = "### `director.bgp`"
	secBGPPeer     = "#### `director.bgp.peers[]`"
	secService     = "## `services[]`"
	secSorry       = "### `services[].sorry_server`"
	secMember      = "### `services[].real_servers[]`"
	secCheck       = "## `services[].check` and `services[].checks[]`"
	secHTTP        = "### `type: http`"
	secAMQP        = "### `type: amqp`"
	secRealServer  = "## `real_servers[]`"
	secRealserver  = "## `realserver`"
	unknownKeyName = "zz_unknown"
)

// checkSections document the keys of a check, wherever it is written: under
// check, as an item of checks, or as a real server's check_overrides.
var checkSections = []string{secCheck, secHTTP, secAMQP}

// schemaLevels lists every mapping of the schema, the fixture marker that
// reaches it, and the sections of the doc that must document its keys.
var schemaLevels = []struct {
	name     string
	marker   string
	sections []string
	// bgp: the level is reached through docsBGPFixture.
	bgp bool
}{
	{"top level", "#top", []string{secTop}, false},
	{"director", "#director", []string{secDirector}, false},
	{"director.notify", "#notify", []string{secNotify}, false},
	{"director.ha", "#ha", []string{secHA}, false},
	{"director.ha.directors[]", "#ha_director", []string{secHADirector}, false},
	{"director.bgp", "#bgp", []string{secBGP}, true},
	{"director.bgp.peers[]", "#bgp_peer", []string{secBGPPeer}, true},
	{"services[]", "#service", []string{secService}, false},
	{"services[].sorry_server", "#sorry_server", []string{secSorry}, false},
	{"services[].real_servers[]", "#member", []string{secMember}, false},
	{"services[].check", "#check", checkSections, false},
	{"services[].checks[]", "#checks_item", checkSections, false},
	{"http check", "#http", checkSections, false},
	{"amqp check", "#amqp", checkSections, false},
	{"real_servers[]", "#real_server", []string{secRealServer}, false},
	{"real_servers[].check_overrides.SERVICE", "#override", checkSections, false},
	{"realserver", "#realserver", []string{secRealserver}, false},
}

var keyName = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

var knownKeys = regexp.MustCompile(`unknown key "` + unknownKeyName + `" \(known: ([^)]*)\)`)

// schemaKeys asks the decoder which keys a level knows: it feeds the fixture
// with an unknown key at that level and reads the list the error gives.
func schemaKeys(t *testing.T, doc, marker string) []string {
	t.Helper()
	if !strings.Contains(doc, marker+"\n") {
		t.Fatalf("fixture lacks %s", marker)
	}
	_, err := Parse("docs.yaml", []byte(strings.Replace(doc, marker+"\n", unknownKeyName+": 1\n", 1)))
	if err == nil {
		t.Fatalf("%s: an unknown key was accepted", marker)
	}
	matches := knownKeys.FindAllStringSubmatch(err.Error(), -1)
	if len(matches) == 0 {
		t.Fatalf("%s: no \"unknown key ... (known: ...)\" in:\n%v", marker, err)
	}
	for _, m := range matches[1:] {
		if m[1] != matches[0][1] {
			t.Fatalf("%s: two lists of known keys in:\n%v", marker, err)
		}
	}
	return strings.Split(matches[0][1], ", ")
}

// docKeys reads the keys each section of the doc documents. The rule: a
// section runs from its heading line to the next heading of any level; a
// key is documented when it is backquoted in the first cell of a table row
// of the section, a line that starts with "|" ("| `interval` | `5s` | ...",
// or several keys in one cell: "| `username`, `password_file` | ...").
// Backquoted words elsewhere (prose, other cells) document nothing, and
// fenced code blocks are skipped (their "# comments" are no headings).
func docKeys(text string) map[string][]string {
	sections := map[string][]string{}
	current := ""
	fenced := false
	tick := regexp.MustCompile("`([^`]+)`")
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimRight(line, " \t\r")
		if strings.HasPrefix(line, "```") {
			fenced = !fenced
			continue
		}
		if fenced {
			continue
		}
		if strings.HasPrefix(line, "#") {
			current = line
			if _, dup := sections[current]; !dup {
				sections[current] = []string{}
			}
			continue
		}
		if current == "" || !strings.HasPrefix(line, "|") {
			continue
		}
		cells := strings.Split(line, "|")
		if len(cells) < 3 {
			continue
		}
		for _, m := range tick.FindAllStringSubmatch(cells[1], -1) {
			sections[current] = append(sections[current], m[1])
		}
	}
	return sections
}

// TestConfigurationDocIsInStepWithTheSchema fails when a key the decoder
// knows is missing from docs/configuration.md, or when the doc documents a
// key the decoder does not know.
func TestConfigurationDocIsInStepWithTheSchema(t *testing.T) {
	password := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(password, []byte("secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	doc := strings.Replace(docsFixture, "PASSWORD", password, 1)
	bgpDoc := strings.Replace(docsBGPFixture, "PASSWORD", password, 1)
	for _, d := range []string{doc, bgpDoc} {
		if _, err := Parse("docs.yaml", []byte(d)); err != nil {
			t.Fatalf("the fixture must be valid:\n%v", err)
		}
	}
	data, err := os.ReadFile(docsFile)
	if err != nil {
		t.Fatal(err)
	}
	documented := docKeys(string(data))

	// known collects, per section, the keys of every level it documents.
	known := map[string][]string{}
	for _, level := range schemaLevels {
		fixture := doc
		if level.bgp {
			fixture = bgpDoc
		}
		keys := schemaKeys(t, fixture, level.marker)
		for _, key := range keys {
			if !keyName.MatchString(key) {
				t.Fatalf("%s: %q in %v does not look like a key", level.name, key, keys)
			}
		}
		var inDoc []string
		for _, sec := range level.sections {
			inDoc = append(inDoc, documented[sec]...)
			known[sec] = append(known[sec], keys...)
		}
		for _, key := range keys {
			if !slices.Contains(inDoc, key) {
				t.Errorf("%s: key %q is not documented: add a row \"| `%s` | ...\" under %s", level.name, key, key, strings.Join(quoted(level.sections), " or "))
			}
		}
	}
	for sec, keys := range known {
		rows, ok := documented[sec]
		switch {
		case !ok:
			t.Errorf("%s has no section %q (a heading line of exactly that text)", docsFile, sec)
		case len(rows) == 0:
			t.Errorf("%s: section %q documents no key in a table", docsFile, sec)
		}
		for _, row := range rows {
			if !slices.Contains(keys, row) {
				t.Errorf("%s: section %q documents %q, which the schema does not know there (known: %s)", docsFile, sec, row, strings.Join(keys, ", "))
			}
		}
	}
}

func quoted(list []string) []string {
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = "\"" + s + "\""
	}
	return out
}
