package topology

import (
	"errors"
	"strings"
	"testing"
)

// TestYAMLMistakesExplained gives each mistake of issue 15 item 4 and wants
// the whole message: FILE:LINE at the line of the mistake, said once, with
// what to do. Problems of one line come in the order they are found, the
// unknown keys last.
func TestYAMLMistakesExplained(t *testing.T) {
	const head = "vip: 10.0.0.100\ndirector:\n  interface: eth0\n"
	const tail = "real_servers:\n  - {name: n1, address: 10.0.0.2}\nrealserver: {interface: eth0}\n"
	tests := []struct {
		name, doc string
		want      []string
	}{
		{"a key outdented out of a list", head + "services:\n  - name: amqp\n    port: 5672\n  - name: management\n    port: 15672\n    check: {type: tcp}\n  check: {type: tcp}\n" + tail, []string{
			`t.yaml:10: did not find expected '-' indicator: this line is inside the list that starts on line 5 but is not an item of it (an item starts with "- "): check its indentation`,
		}},
		{"a key outdented out of a list item", head + "services:\n  - name: amqp\n    port: 5672\nreal_servers:\n  - name: n1\n  address: 10.0.0.2\n", []string{
			`t.yaml:9: did not find expected '-' indicator: this line is inside the list that starts on line 8 but is not an item of it`,
		}},
		{"a line after a flow item", head + "services:\n  - {name: amqp, port: 5672}\nreal_servers:\n  - {name: n1, address: 10.0.0.2}\n   weight: 3\n", []string{
			`t.yaml:8: did not find expected '-' indicator: this line is inside the list that starts on line 7`,
		}},
		{"a tab", head + "services:\n  - name: amqp\n    port: 5672\n\tcheck: {type: tcp}\n" + tail, []string{
			`t.yaml:7: found a tab character that violates indentation: a tab indents this line; YAML indents with spaces only`,
		}},
		{"a key indented too deep", head + "services:\n  - name: amqp\n    port: 5672\n     protocol: tcp\n" + tail, []string{
			`t.yaml:7: mapping values are not allowed in this context: a key here is indented deeper than the keys above it`,
		}},
		{"an unclosed flow mapping", head + "services:\n  - name: amqp\n    port: 5672\n    check: {type: tcp\n" + tail, []string{
			`t.yaml:7: did not find expected ',' or '}': the { that opens on line 7 is not closed, or lacks a comma between two entries`,
		}},
		{"quoted numbers and booleans", head + "services:\n  - name: amqp\n    port: \"5672\"\n    persistence_timeout: '50'\n    check: {interval: \"5\", through_vip: \"true\"}\n" + tail, []string{
			`t.yaml:6: services[0] (amqp).port must be a whole number, not "5672": it is quoted: write 5672, not "5672"`,
			`t.yaml:7: services[0] (amqp).persistence_timeout must be a duration such as 3s, 1m30s or a whole number of seconds, not "50": it is quoted: write 50s, not "50"`,
			`t.yaml:8: services[0] (amqp).check.interval must be a duration such as 3s, 1m30s or a whole number of seconds, not "5": it is quoted: write 5s, not "5"`,
			`t.yaml:8: services[0] (amqp).check.through_vip must be true or false, not "true": it is quoted: write true, not "true"`,
		}},
		{"keys outdented out of a mapping", "vip: 10.0.0.100\ndirector:\n  interface: eth0\n  notify:\n    command: [/bin/true]\n  timeout: 5s\nresync_interval: 5s\nservices:\n- name: amqp\n  port: 5672\nscheduler: mh\n" + tail, []string{
			`t.yaml:6: director: unknown key "timeout": timeout is a key of director.notify (line 4), indented too little: indent it as the keys under that line (known: `,
			`t.yaml:7: the file: unknown key "resync_interval": resync_interval is a key of director (line 2), indented too little`,
			`t.yaml:11: the file: unknown key "scheduler": scheduler is a key of services[0] (amqp) (line 9), indented too little`,
		}},
		{"keys indented too deep", head + "  notify:\n    command: [/bin/true]\n    resync_interval: 5s\nservices:\n  - name: amqp\n    port: 5672\n    check:\n      type: tcp\n      quorum: 1\n" + tail, []string{
			`t.yaml:6: director.notify: unknown key "resync_interval": resync_interval is a key of director (line 3), around this mapping: indented too deep? (known: `,
			`t.yaml:12: services[0] (amqp).check: unknown key "quorum": quorum is a key of services[0] (amqp) (line 8), around this mapping: indented too deep? (known: `,
		}},
		{"did you mean", head + "services:\n  - name: amqp\n    port: 5672\n    protocl: tcp\n    scheduler: wwr\n    forwarding: DR\n    check: {nb_get_retry: 3, delay_loop: 6, conect_timeout: 3, type: TCP_CHECK}\n" + tail, []string{
			`t.yaml:7: services[0] (amqp): unknown key "protocl": did you mean "protocol"? (known: `,
			`t.yaml:8: services[0] (amqp).scheduler: unknown value "wwr": did you mean "wrr"? (one of rr wrr `,
			`t.yaml:9: services[0] (amqp).forwarding: unknown value "DR": did you mean "dr"? (one of dr nat tunnel)`,
			`t.yaml:10: services[0] (amqp).check.type: unknown value "TCP_CHECK": did you mean "tcp" (keepalived's TCP_CHECK)?`,
			`t.yaml:10: services[0] (amqp).check: unknown key "nb_get_retry": did you mean "retry" (keepalived's nb_get_retry)? (known: `,
			`t.yaml:10: services[0] (amqp).check: unknown key "delay_loop": did you mean "interval" (keepalived's delay_loop)?`,
			`t.yaml:10: services[0] (amqp).check: unknown key "conect_timeout": did you mean "connect_timeout"?`,
		}},
		{"an unknown key that resembles nothing", head + "services:\n  - name: amqp\n    port: 5672\n    colour: blue\n" + tail, []string{
			`t.yaml:7: services[0] (amqp): unknown key "colour" (known: check, checks,`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("t.yaml", []byte(tt.doc))
			var verr *ValidationError
			if !errors.As(err, &verr) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want a *ValidationError", err)
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tt.want) {
				t.Fatalf("%d problems, want %d:\n%v", len(lines), len(tt.want), err)
			}
			for i, want := range tt.want {
				if !strings.HasPrefix(lines[i], want) {
					t.Errorf("problem %d:\n%s\nwant it to start with:\n%s", i, lines[i], want)
				}
				if strings.Contains(lines[i], ": line ") {
					t.Errorf("problem %d gives its line twice: %s", i, lines[i])
				}
			}
		})
	}
}

func TestSuggest(t *testing.T) {
	tests := []struct {
		word       string
		candidates []string
		want       string
	}{
		{"DR", []string{"dr", "nat", "tunnel"}, "dr"},
		{"TUN", []string{"dr", "nat", "tunnel"}, "tunnel"},
		{"wwr", Schedulers, "wrr"},
		{"wlcc", Schedulers, "wlc"},
		// Two candidates one typo away: no guess.
		{"lbc", Schedulers, ""},
		{"fastest", Schedulers, ""},
		{"nb_get_retry", []string{"retry", "rise"}, "retry"},
		// keepalived's name, when lvsdr's is not known here: no guess.
		{"nb_get_retry", []string{"rise"}, ""},
		{"intreval", []string{"interval", "retry"}, "interval"},
		{"x", []string{"vip"}, ""},
	}
	for _, tt := range tests {
		if got := Suggest(tt.word, tt.candidates); got != tt.want {
			t.Errorf("Suggest(%q) = %q, want %q", tt.word, got, tt.want)
		}
	}
	for _, tt := range []struct {
		a, b string
		want int
	}{{"", "abc", 3}, {"abc", "abc", 0}, {"protocl", "protocol", 1}, {"wrr", "rwr", 1}, {"kitten", "sitting", 3}} {
		if got := editDistance(tt.a, tt.b); got != tt.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}
