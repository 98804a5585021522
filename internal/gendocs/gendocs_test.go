package gendocs

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// tree is shaped like the binaries': a root with persistent flags, a
// subcommand with an argument, and a hidden one that must get no page.
func tree() *cobra.Command {
	root := &cobra.Command{Use: "tool", Short: "Do things to the kernel"}
	root.PersistentFlags().StringP("config", "c", "/etc/tool.yaml", "topology file")
	noop := func(*cobra.Command, []string) {}
	root.AddCommand(
		&cobra.Command{Use: "drain NAME", Short: "Drain one server", Run: noop},
		&cobra.Command{Use: "secret", Short: "Not for users", Hidden: true, Run: noop},
	)
	return root
}

func TestMan(t *testing.T) {
	t.Setenv("SOURCE_DATE_EPOCH", "1763208000") // 2025-11-15 12:00 UTC: November in every time zone
	dir := t.TempDir()
	if err := Man(tree(), dir); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if want := []string{"tool-drain.8", "tool.8"}; !slices.Equal(names, want) {
		t.Fatalf("pages %v, want %v", names, want)
	}
	page, err := os.ReadFile(filepath.Join(dir, "tool-drain.8"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`.TH "TOOL-DRAIN" "8" "Nov 2025" "lvsdr" "lvsdr manual"`,
		".SH NAME\ntool-drain - Drain one server\n",
		`\fBtool drain NAME [flags]\fP`,
		`\fB--config\fP="/etc/tool.yaml"`, // inherited from the root
		`\fBtool(8)\fP`,
	} {
		if !strings.Contains(string(page), want) {
			t.Errorf("tool-drain.8 lacks %q:\n%s", want, page)
		}
	}
	if strings.Contains(string(page), "Auto generated") {
		t.Errorf("tool-drain.8 has cobra's HISTORY section:\n%s", page)
	}
}

// The scripts must be what `tool completion SHELL` prints, so that the
// packaged files and the binary's own command agree.
func TestCompletionsMatchCompletionCommand(t *testing.T) {
	dir := t.TempDir()
	if err := WriteCompletions(tree(), dir); err != nil {
		t.Fatal(err)
	}
	for shell, file := range map[string]string{"bash": "bash/tool", "zsh": "zsh/_tool", "fish": "fish/tool.fish"} {
		got, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil {
			t.Fatal(err)
		}
		root := tree()
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetArgs([]string{"completion", shell})
		if err := root.Execute(); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, out.Bytes()) {
			t.Errorf("%s differs from `tool completion %s`", file, shell)
		}
	}
}

func TestRunUsage(t *testing.T) {
	for _, args := range [][]string{nil, {"extra"}, {"-man"}, {"-nope", "x"}} {
		var stderr bytes.Buffer
		if code := run(tree(), args, &stderr); code != 2 {
			t.Errorf("run %q: exit %d, want 2 (stderr %q)", args, code, stderr.String())
		}
	}
	dir := t.TempDir()
	var stderr bytes.Buffer
	if code := run(tree(), []string{"-man", filepath.Join(dir, "man"), "-completion", filepath.Join(dir, "comp")}, &stderr); code != 0 {
		t.Fatalf("run: exit %d: %s", code, stderr.String())
	}
	for _, f := range []string{"man/tool.8", "comp/bash/tool", "comp/zsh/_tool", "comp/fish/tool.fish"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Error(err)
		}
	}
}
