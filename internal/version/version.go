// Package version is what this build of lvsdr is: stamped by the linker
// from `git describe` (make build, the Debian package), so that
// `director --version`, `realserver --version` and lvsdr_build_info name
// the code that runs, not the code someone thinks runs.
package version

import "runtime/debug"

// Version is `git describe --tags --always --dirty` of the build, or "dev"
// when the build was not stamped (go run, go test, a bare go build).
var Version = "dev"

// Commit is the full commit hash of the build: stamped with Version, else
// the one the Go toolchain recorded (a go build inside a git checkout),
// else "".
var Commit = ""

func init() {
	if Commit != "" {
		return
	}
	if info, ok := debug.ReadBuildInfo(); ok {
		Commit = fromBuildInfo(info)
	}
}

// fromBuildInfo is the commit the toolchain recorded, "+dirty" when the
// tree had changes.
func fromBuildInfo(info *debug.BuildInfo) string {
	var revision, modified string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			revision = s.Value
		case "vcs.modified":
			modified = s.Value
		}
	}
	if revision != "" && modified == "true" {
		revision += "+dirty"
	}
	return revision
}

// String is the version as --version prints it: "v1.2.0 (commit 4ccf147…)",
// or the version alone when no commit is known.
func String() string {
	if Commit == "" {
		return Version
	}
	return Version + " (commit " + Commit + ")"
}
