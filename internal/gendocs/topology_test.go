package gendocs

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestTopologyPageSetsEachBlock(t *testing.T) {
	md := "# Configuration reference\n\n" +
		"Intro with `code`, *emphasis*, a [link](operations.md#x) and\n" +
		"a [site](https://example.org) – a back\\slash.\n\n" +
		"## `director`\n\n" +
		"| key | default | keepalived | meaning |\n|---|---|---|---|\n" +
		"| `interface` | required | `virtual_ipaddress` | NIC that carries the VIP |\n" +
		"| `resync_interval` | `30s` | | how often; a `a|b` cell |\n\n" +
		"### `director.ha`\n\n" +
		"```yaml\ndirector:\n  interface: eth0\n.dot: first\n```\n\n" +
		"- one item\n  continued\n- two\n\n" +
		".starts with a dot\n"
	page := string(TopologyPage([]byte(md), time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)))
	for _, want := range []string{
		`.TH "LVSDR-TOPOLOGY" "5" "Nov 2026" "lvsdr" "lvsdr manual"` + "\n",
		".SH NAME\nlvsdr-topology \\- the YAML file",
		".SH DESCRIPTION\n.PP\nIntro with \\fBcode\\fR, \\fIemphasis\\fR, a link and a site <https://example.org> \\(en a back\\eslash.\n",
		".SH director\n",
		".TP\n\\fBinterface\\fR\n\\fIdefault:\\fR required\n.br\n\\fIkeepalived:\\fR \\fBvirtual_ipaddress\\fR\n.br\nNIC that carries the VIP\n",
		".TP\n\\fBresync_interval\\fR\n\\fIdefault:\\fR \\fB30s\\fR\n.br\nhow often; a \\fBa|b\\fR cell\n",
		".SS \\fBdirector.ha\\fR\n",
		".nf\ndirector:\n  interface: eth0\n\\&.dot: first\n.fi\n",
		".IP \\(bu 2\none item continued\n.IP \\(bu 2\ntwo\n",
		".PP\n\\&.starts with a dot\n",
		".SH SEE ALSO\n",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %q:\n%s", want, page)
		}
	}
	if strings.Contains(page, "# ") || strings.Contains(page, "Configuration reference") {
		t.Errorf("the document's title is in the page:\n%s", page)
	}
}

// The page is docs/configuration.md: every section and every key of its
// tables is in it, and groff, where this host has it, reads it without a
// warning.
func TestTopologyPageFromTheReference(t *testing.T) {
	t.Setenv("SOURCE_DATE_EPOCH", "1763208000")
	dir := t.TempDir()
	if err := WriteTopologyPage("../../docs/configuration.md", dir); err != nil {
		t.Fatal(err)
	}
	page, err := os.ReadFile(filepath.Join(dir, "lvsdr-topology.5"))
	if err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(page, []byte(`.TH "LVSDR-TOPOLOGY" "5" "Nov 2025"`)) {
		t.Errorf("page header: %s", bytes.SplitN(page, []byte("\n"), 2)[0])
	}
	headings, keys := 0, 0
	row := regexp.MustCompile("^\\| `([^`]+)` \\|")
	for _, line := range strings.Split(string(md), "\n") {
		if name, ok := strings.CutPrefix(line, "## "); ok {
			headings++
			if !bytes.Contains(page, []byte(".SH "+sectionName(name)+"\n")) {
				t.Errorf("no section %q", name)
			}
		}
		if m := row.FindStringSubmatch(line); m != nil {
			keys++
			if !bytes.Contains(page, []byte(".TP\n\\fB"+escape(m[1])+"\\fR\n")) {
				t.Errorf("no entry for %s", m[1])
			}
		}
	}
	if headings < 5 || keys < 50 {
		t.Errorf("only %d sections and %d keys in docs/configuration.md: the test reads it wrong", headings, keys)
	}
	if _, err := exec.LookPath("groff"); err == nil {
		cmd := exec.Command("groff", "-man", "-Tutf8", "-ww", "-z", filepath.Join(dir, "lvsdr-topology.5"))
		if out, err := cmd.CombinedOutput(); err != nil || len(out) > 0 {
			t.Errorf("groff: %v\n%s", err, out)
		}
	}
}
