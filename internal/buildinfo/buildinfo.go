// Package buildinfo is the version stamp of the station's programs. Release builds set the
// variables with the linker (make dist: -X labelstation/internal/buildinfo.Version=...); a plain
// `go build` falls back to what the Go toolchain recorded from the VCS, so a developer binary
// still says which commit it is.
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Set by the linker.
var (
	Version = "dev"
	Commit  = ""
	Date    = ""
)

// Info is the stamp of the running binary.
type Info struct {
	Version string `json:"version"`
	Commit  string `json:"commit,omitempty"`
	Date    string `json:"date,omitempty"`
	Go      string `json:"go"`
	Arch    string `json:"arch"`
}

// Get returns the linker's stamp, completed from the toolchain's VCS record where unset.
func Get() Info {
	in := Info{Version: Version, Commit: Commit, Date: Date, Go: runtime.Version(), Arch: runtime.GOOS + "/" + runtime.GOARCH}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			switch {
			case s.Key == "vcs.revision" && in.Commit == "":
				in.Commit = s.Value
			case s.Key == "vcs.time" && in.Date == "":
				in.Date = s.Value
			case s.Key == "GOARM" && runtime.GOARCH == "arm":
				in.Arch += "v" + s.Value
			}
		}
	}
	return in
}

// String is the one line `--version` prints: "NAME VERSION (commit COMMIT, built DATE, go1.x linux/arm64)".
func (in Info) String() string {
	commit, date := in.Commit, in.Date
	if commit == "" {
		commit = "unknown"
	}
	if len(commit) > 12 {
		commit = commit[:12]
	}
	if date == "" {
		date = "unknown"
	}
	return fmt.Sprintf("%s (commit %s, built %s, %s %s)", in.Version, commit, date, in.Go, in.Arch)
}
