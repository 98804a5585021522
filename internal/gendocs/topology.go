package gendocs

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// TopologySection is the manual section of the topology file's page: 5,
// file formats.
const TopologySection = "5"

// TopologyPageName is the page of the topology file: `man 5 lvsdr-topology`.
const TopologyPageName = "lvsdr-topology"

// TopologyPage turns docs/configuration.md into the section 5 page, so
// that the page and the reference are one text: the document's title
// gives way to NAME and SYNOPSIS, its introduction is the DESCRIPTION, each
// ## heading a section and each ### or #### a subsection. It reads the
// Markdown that document uses: paragraphs, fenced code, lists, and tables
// whose first column names a key (set as tagged paragraphs, which read
// better at 80 columns than a table of four).
func TopologyPage(markdown []byte, date time.Time) []byte {
	var out bytes.Buffer
	fmt.Fprintf(&out, ".TH %q %q %q %q %q\n", strings.ToUpper(TopologyPageName), TopologySection, date.Format("Jan 2006"), "lvsdr", "lvsdr manual")
	out.WriteString(".SH NAME\n" + TopologyPageName + ` \- the YAML file that describes an lvsdr deployment` + "\n")
	out.WriteString(".SH SYNOPSIS\n/etc/lvsdr/topology.yaml\n.SH DESCRIPTION\n")
	lines := strings.Split(strings.ReplaceAll(string(markdown), "\r\n", "\n"), "\n")
	for i := 0; i < len(lines); {
		line := lines[i]
		switch {
		case strings.TrimSpace(line) == "":
			i++
		case strings.HasPrefix(line, "# "):
			// The title: NAME says it.
			i++
		case strings.HasPrefix(line, "## "):
			out.WriteString(".SH " + sectionName(strings.TrimPrefix(line, "## ")) + "\n")
			i++
		case strings.HasPrefix(line, "### ") || strings.HasPrefix(line, "#### "):
			out.WriteString(".SS " + inline(strings.TrimLeft(line, "# "), false) + "\n")
			i++
		case strings.HasPrefix(line, "```"):
			out.WriteString(".PP\n.RS 4\n.nf\n")
			for i++; i < len(lines) && !strings.HasPrefix(lines[i], "```"); i++ {
				out.WriteString(literal(lines[i]) + "\n")
			}
			out.WriteString(".fi\n.RE\n")
			i++
		case strings.HasPrefix(line, "|"):
			var rows [][]string
			for ; i < len(lines) && strings.HasPrefix(lines[i], "|"); i++ {
				rows = append(rows, cells(lines[i]))
			}
			table(&out, rows)
		case strings.HasPrefix(line, "- "):
			for i < len(lines) && strings.HasPrefix(lines[i], "- ") {
				item := []string{strings.TrimPrefix(lines[i], "- ")}
				for i++; i < len(lines) && strings.HasPrefix(lines[i], "  ") && strings.TrimSpace(lines[i]) != ""; i++ {
					item = append(item, strings.TrimSpace(lines[i]))
				}
				out.WriteString(".IP \\(bu 2\n" + inline(strings.Join(item, " "), true) + "\n")
			}
		default:
			var para []string
			for ; i < len(lines) && strings.TrimSpace(lines[i]) != "" && !blockStart(lines[i]); i++ {
				para = append(para, strings.TrimSpace(lines[i]))
			}
			out.WriteString(".PP\n" + inline(strings.Join(para, " "), true) + "\n")
		}
	}
	out.WriteString(".SH SEE ALSO\n\\fBdirector\\fR(8), \\fBdirector-validate\\fR(8), \\fBrealserver\\fR(8)\n")
	return out.Bytes()
}

// sectionName is a ## heading as a section's name: in capitals as man
// pages have them, but a key in backquotes keeps its case, as the file
// must spell it.
func sectionName(heading string) string {
	parts := strings.Split(heading, "`")
	for i := range parts {
		if i%2 == 0 {
			parts[i] = strings.ToUpper(parts[i])
		}
		parts[i] = escape(parts[i])
	}
	name := strings.Join(parts, "")
	if strings.ContainsAny(name, " ") {
		return strconv.Quote(name)
	}
	return name
}

// blockStart tells a line that ends a paragraph by starting a block.
func blockStart(line string) bool {
	for _, p := range []string{"#", "```", "|", "- "} {
		if strings.HasPrefix(line, p) {
			return true
		}
	}
	return false
}

// cells splits a table row; a pipe inside backquotes is the cell's.
func cells(row string) []string {
	row = strings.TrimSpace(row)
	row = strings.TrimSuffix(strings.TrimPrefix(row, "|"), "|")
	var out []string
	var cell strings.Builder
	code := false
	for _, r := range row {
		switch {
		case r == '`':
			code = !code
		case r == '|' && !code:
			out = append(out, strings.TrimSpace(cell.String()))
			cell.Reset()
			continue
		}
		cell.WriteRune(r)
	}
	return append(out, strings.TrimSpace(cell.String()))
}

var separatorRow = regexp.MustCompile(`^:?-+:?$`)

// table sets a Markdown table as tagged paragraphs: the first cell is the
// tag, the others follow under it, each named by its column unless it is
// the last, the meaning, which reads as prose.
func table(out *bytes.Buffer, rows [][]string) {
	if len(rows) < 2 || !separatorRow.MatchString(rows[1][0]) {
		// Not a table this converter knows: keep its text.
		for _, r := range rows {
			out.WriteString(".PP\n" + inline(strings.Join(r, " "), true) + "\n")
		}
		return
	}
	head := rows[0]
	for _, r := range rows[2:] {
		out.WriteString(".TP\n" + inline(r[0], false) + "\n")
		var parts []string
		for j := 1; j < len(r) && j < len(head); j++ {
			if r[j] == "" {
				continue
			}
			if j == len(head)-1 && strings.EqualFold(head[j], "meaning") {
				parts = append(parts, inline(r[j], true))
				continue
			}
			parts = append(parts, "\\fI"+escape(strings.ReplaceAll(head[j], "`", ""))+":\\fR "+inline(r[j], true))
		}
		out.WriteString(strings.Join(parts, "\n.br\n") + "\n")
	}
}

var (
	link     = regexp.MustCompile(`\[([^\]]+)\]\(([^)]+)\)`)
	strong   = regexp.MustCompile(`\*\*([^*]+)\*\*`)
	emphasis = regexp.MustCompile(`\*([^*\s][^*]*)\*`)
)

// inline sets a line of Markdown text: `code` in bold, *emphasis* in
// italics, links as their text (a web address kept beside it). Escapes
// make the text roff's, and a line that would start with a control
// character starts with \& instead.
func inline(s string, prose bool) string {
	var out strings.Builder
	parts := strings.Split(s, "`")
	for i, p := range parts {
		if i%2 == 1 && i < len(parts)-1 {
			out.WriteString(`\fB` + escape(p) + `\fR`)
			continue
		}
		if i%2 == 1 {
			// An unclosed backquote is text.
			p = "`" + p
		}
		p = escape(p)
		p = link.ReplaceAllStringFunc(p, func(m string) string {
			sub := link.FindStringSubmatch(m)
			if strings.HasPrefix(sub[2], "http://") || strings.HasPrefix(sub[2], "https://") {
				return sub[1] + " <" + sub[2] + ">"
			}
			return sub[1]
		})
		p = strong.ReplaceAllString(p, `\fB$1\fR`)
		p = emphasis.ReplaceAllString(p, `\fI$1\fR`)
		out.WriteString(p)
	}
	text := out.String()
	if !prose {
		text = strings.ReplaceAll(text, `\fB`, "")
		text = strings.ReplaceAll(text, `\fR`, "")
		text = `\fB` + text + `\fR`
	}
	if strings.HasPrefix(text, ".") || strings.HasPrefix(text, "'") {
		text = `\&` + text
	}
	return text
}

// literal is a line of a code block: escaped, kept as it is.
func literal(s string) string {
	s = escape(s)
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
		s = `\&` + s
	}
	return s
}

// glyphs are the characters of the document outside ASCII, as roff
// names them, so that the page needs no preprocessor for its encoding.
var glyphs = strings.NewReplacer(
	`\`, `\e`, "–", `\(en`, "—", `\(em`, "→", `\(->`, "−", `\-`, "×", `\(mu`, "…", "...",
	"≤", `\(<=`, "≥", `\(>=`, "’", "'", "“", `\(lq`, "”", `\(rq`,
)

func escape(s string) string { return glyphs.Replace(s) }

// WriteTopologyPage reads the Markdown reference at source and writes the
// page into dir as lvsdr-topology.5, dated as the section 8 pages are:
// SOURCE_DATE_EPOCH when set (reproducible packages), else today.
func WriteTopologyPage(source, dir string) error {
	markdown, err := os.ReadFile(source)
	if err != nil {
		return err
	}
	date := time.Now().UTC()
	if epoch := os.Getenv("SOURCE_DATE_EPOCH"); epoch != "" {
		secs, err := strconv.ParseInt(epoch, 10, 64)
		if err != nil {
			return fmt.Errorf("SOURCE_DATE_EPOCH %q: %w", epoch, err)
		}
		date = time.Unix(secs, 0).UTC()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, TopologyPageName+"."+TopologySection), TopologyPage(markdown, date), 0o644)
}
