package keepalived

import (
	"fmt"
	"strings"
	"testing"
)

// quorumConf is a virtual_server with a quorum and real servers of the
// given weights.
func quorumConf(quorum int, weights ...int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "virtual_server 10.0.0.100 80 {\n  protocol TCP\n  lb_algo wrr\n  lb_kind NAT\n  quorum %d\n", quorum)
	for i, w := range weights {
		fmt.Fprintf(&b, "  real_server 10.0.0.%d 80 {\n    weight %d\n  }\n", i+2, w)
	}
	b.WriteString("}\n")
	return b.String()
}

// keepalived's quorum is a sum of the weights of the real servers up,
// lvsdr's a count of real servers: the count is carried only where it
// means the same.
func TestQuorumConversion(t *testing.T) {
	tests := []struct {
		name    string
		conf    string
		want    int // the quorum in the YAML; 0 for none
		warning string
	}{
		{name: "weights of 1: the same number", conf: quorumConf(2, 1, 1, 1), want: 2},
		{name: "equal weights: rounded up", conf: quorumConf(3, 2, 2, 2), want: 2,
			warning: "quorum 3 carried as quorum: 2: keepalived's quorum is a sum of the weights of the real servers up, lvsdr's a count of real servers; every real server of tcp_80 weighs 2, so 2 of them make 3"},
		{name: "equal weights: exact", conf: quorumConf(10, 5, 5, 5), want: 2, warning: "quorum 10 carried as quorum: 2"},
		{name: "the virtual_server's weight, which its real servers take",
			conf: "virtual_server 10.0.0.100 80 {\n  protocol TCP\n  lb_kind NAT\n  weight 3\n  quorum 5\n  real_server 10.0.0.2 80 {\n  }\n  real_server 10.0.0.3 80 {\n  }\n}\n",
			want: 2, warning: "quorum 5 carried as quorum: 2|every real server of tcp_80 weighs 3"},
		{name: "different weights: refused", conf: quorumConf(4, 1, 2, 3),
			warning: "quorum 4 not carried: keepalived's quorum is a sum of the weights of the real servers up, lvsdr's a count of real servers, and no count means the same here: tcp_80 weighs 1, 2, 3, and 2 to 3 of them make 4, depending on which are up; set services[].quorum (tcp_80) by hand"},
		{name: "different weights, above their total", conf: quorumConf(9, 1, 2),
			warning: "quorum 9 (keepalived lowers it to 3, the total weight of the real servers) not carried|tcp_80 weighs 1, 2, and 2 to 2 of them make 3"},
		{name: "every weight 0", conf: quorumConf(1, 0, 0), warning: "quorum 1 not carried: every real server of tcp_80 has weight 0, so keepalived lowers its quorum to 0"},
		{name: "above the total weight: lowered, as keepalived does", conf: quorumConf(3, 1, 1), want: 2,
			warning: "quorum 3 (keepalived lowers it to 2, the total weight of the real servers) carried as quorum: 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := Convert("test.conf", []byte(tt.conf))
			if err != nil {
				t.Fatal(err)
			}
			quorumLine := fmt.Sprintf("    quorum: %d\n", tt.want)
			if has := strings.Contains(string(res.YAML), "    quorum: "); has != (tt.want != 0) || tt.want != 0 && !strings.Contains(string(res.YAML), quorumLine) {
				t.Errorf("want quorum %d in the YAML:\n%s", tt.want, res.YAML)
			}
			if tt.warning == "" && warned(res.Warnings, 0, "quorum") {
				t.Errorf("a quorum warning for a faithful conversion:\n%s", formatWarnings(res.Warnings))
			}
			if tt.warning != "" && !warned(res.Warnings, 5, strings.Split(tt.warning, "|")...) {
				t.Errorf("no warning on line 5 with %q:\n%s", tt.warning, formatWarnings(res.Warnings))
			}
			if len(res.Problems) > 0 {
				t.Errorf("problems %v", res.Problems)
			}
		})
	}
}
