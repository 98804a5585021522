package keepalived

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// dump writes statements compactly: keyword(args)@line {children}.
func dump(nodes []*Node) string {
	var parts []string
	for _, n := range nodes {
		s := fmt.Sprintf("%s%q@%d", n.Keyword, n.Args, n.Line)
		if n.HasBlock {
			s += "{" + dump(n.Block) + "}"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, " ")
}

func TestParse(t *testing.T) {
	tests := []struct {
		name, in, want string
		warnings       []string
	}{
		{
			name: "comments anywhere outside quotes",
			in:   "# whole line\n! bang line\nlb_algo wrr # trailing\nlb_kind DR! glued\n",
			want: `lb_algo["wrr"]@3 lb_kind["DR"]@4`,
		},
		{
			name: "escaped comment characters and quotes",
			in:   "path \"/a b#c\" x\\#y\n",
			want: `path["/a b#c" "x#y"]@1`,
		},
		{
			name: "nested blocks",
			in:   "virtual_server 10.0.0.1 80 {\n  real_server 10.0.0.2 80 {\n    TCP_CHECK {\n      connect_port 80\n    }\n  }\n}\n",
			want: `virtual_server["10.0.0.1" "80"]@1{real_server["10.0.0.2" "80"]@2{TCP_CHECK[]@3{connect_port["80"]@4}}}`,
		},
		{
			name: "brace on the next line, glued braces, one-line block",
			in:   "global_defs\n{\n  router_id x\n}\nHTTP_GET{url { path / }}\nempty {}\n",
			want: `global_defs[]@1{router_id["x"]@3} HTTP_GET[]@5{url[]@5{path["/"]@5}} empty[]@6{}`,
		},
		{
			name: "continued line",
			in:   "notify_up /bin/a \\\n  arg\nweight 2\n",
			want: `notify_up["/bin/a" "arg"]@1 weight["2"]@3`,
		},
		{
			name:     "an include that matches nothing is skipped",
			in:       "include /nonexistent/keepalived/*.conf\nweight 1\n",
			want:     `weight["1"]@2`,
			warnings: []string{"1: include /nonexistent/keepalived/*.conf matches no file"},
		},
		{
			name: "CRLF line ends",
			in:   "a 1\r\nb {\r\n c\r\n}\r\n",
			want: `a["1"]@1 b[]@2{c[]@3}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nodes, warnings, err := Parse("test.conf", []byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if got := dump(nodes); got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
			var got []string
			for _, w := range warnings {
				got = append(got, fmt.Sprintf("%d: %s", w.Line, w.Message))
			}
			if len(got) != len(tt.warnings) {
				t.Fatalf("warnings %q, want %q", got, tt.warnings)
			}
			for i := range got {
				if !strings.HasPrefix(got[i], tt.warnings[i]) {
					t.Errorf("warning %q, want it to start with %q", got[i], tt.warnings[i])
				}
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, in string
		line     int
		message  string
	}{
		{"extra closing brace", "a {\n}\n}\n", 3, "unbalanced '}'"},
		{"block never closed", "x 1\nvirtual_server 10.0.0.1 80 {\n  real_server 10.0.0.2 80 {\n  }\n", 2, "virtual_server opened here is never closed"},
		{"unterminated quote", "a\npath \"/x\n", 2, "unterminated quote"},
		{"brace without keyword", "{\n}\n", 1, "no keyword"},
		{"second block for one keyword", "a {\n}\n{\n}\n", 3, "no keyword"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := Parse("test.conf", []byte(tt.in))
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v, want an *Error", err)
			}
			if e.Line != tt.line || !strings.Contains(e.Message, tt.message) {
				t.Errorf("error at line %d %q, want line %d containing %q", e.Line, e.Message, tt.line, tt.message)
			}
			if !strings.HasPrefix(err.Error(), fmt.Sprintf("test.conf:%d: ", tt.line)) {
				t.Errorf("error text %q does not start with its line", err)
			}
		})
	}
}
