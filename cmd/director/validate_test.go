package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestValidateTakesTheFileAsArgument(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	bad := filepath.Join(dir, "bad.yaml")
	data, err := os.ReadFile("../../deploy/examples/rabbitmq.yaml")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(good, data, 0o644)
	os.WriteFile(bad, []byte(strings.Replace(string(data), "scheduler: wrr", "scheduler: wwr", 1)), 0o644)
	for _, tc := range []struct {
		name string
		args []string
		out  string // a prefix of the output
		err  string // a part of the error
	}{
		{name: "argument", args: []string{"validate", good}, out: good + ": valid: VIP 192.168.0.100"},
		{name: "--config", args: []string{"validate", "--config", good}, out: good + ": valid"},
		{name: "the argument is checked, not the default", args: []string{"validate", bad}, err: bad + ":"},
		{name: "both, the same file", args: []string{"validate", "--config", good, filepath.Join(dir, ".", "good.yaml")}, out: filepath.Join(dir, ".", "good.yaml") + ": valid"},
		{name: "both, different files", args: []string{"validate", "--config", bad, good}, err: "validate " + good + " and --config " + bad + ": give one file"},
		{name: "two arguments", args: []string{"validate", good, bad}, err: "accepts at most 1 arg"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := execute(tc.args...)
			switch {
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Errorf("error %v, want one with %q", err, tc.err)
			case tc.err != "" && strings.Contains(tc.err, "give one") && strings.Contains(err.Error(), "\n"):
				t.Errorf("error on more than one line: %v", err)
			case tc.err == "" && (err != nil || !strings.HasPrefix(out, tc.out)):
				t.Errorf("output %q, %v; want %q", out, err, tc.out)
			}
		})
	}
}

func TestValidatePrintsWarningsAndStillSucceeds(t *testing.T) {
	data, err := os.ReadFile("../../deploy/examples/rabbitmq.yaml")
	if err != nil {
		t.Fatal(err)
	}
	doubtful := strings.Replace(string(data), "interval: 5s", "interval: 1s", 1)
	if doubtful == string(data) {
		t.Fatal("the example has no interval: 5s to shorten")
	}
	file := filepath.Join(t.TempDir(), "topology.yaml")
	os.WriteFile(file, []byte(doubtful), 0o644)
	out, err := execute("validate", file)
	if err != nil {
		t.Fatalf("a doubtful file is still valid: %v", err)
	}
	if !strings.Contains(out, file+":") || !strings.Contains(out, ": warning: services[") || !strings.Contains(out, "is longer than interval 1s") {
		t.Errorf("no FILE:LINE: warning in:\n%s", out)
	}
	if !strings.Contains(out, file+": valid") {
		t.Errorf("validate did not say the file is valid:\n%s", out)
	}
}
