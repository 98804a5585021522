package main

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/lvsdr/lvsdr/internal/version"
)

func TestVersionFlag(t *testing.T) {
	defer func(v, c string) { version.Version, version.Commit = v, c }(version.Version, version.Commit)
	version.Version, version.Commit = "v1.2.0-3-g4ccf147", "4ccf1470aa"
	out, err := execute("--version")
	if err != nil || out != "director v1.2.0-3-g4ccf147 (commit 4ccf1470aa)\n" {
		t.Errorf("--version: %q, %v", out, err)
	}
	version.Version, version.Commit = "dev", ""
	if out, _ := execute("--version"); out != "director dev\n" {
		t.Errorf("unstamped --version: %q", out)
	}
}

// TestBinariesAreStampedByTheLinker builds both commands as make build and
// the Debian package do, with the version given to the linker, and asks
// each for it: a renamed variable or package would leave "dev".
func TestBinariesAreStampedByTheLinker(t *testing.T) {
	goCmd, err := exec.LookPath("go")
	if err != nil {
		goCmd = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	dir := t.TempDir()
	ldflags := "-X github.com/lvsdr/lvsdr/internal/version.Version=v9.8.7-test -X github.com/lvsdr/lvsdr/internal/version.Commit=0123abc"
	build := exec.Command(goCmd, "build", "-ldflags", ldflags, "-o", dir+"/", "github.com/lvsdr/lvsdr/cmd/director", "github.com/lvsdr/lvsdr/cmd/realserver")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, name := range []string{"director", "realserver"} {
		out, err := exec.Command(filepath.Join(dir, name), "--version").CombinedOutput()
		if want := name + " v9.8.7-test (commit 0123abc)\n"; err != nil || string(out) != want {
			t.Errorf("%s --version: %q, %v; want %q", name, out, err, strings.TrimSpace(want))
		}
	}
}
