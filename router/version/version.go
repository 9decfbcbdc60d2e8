// Package version says which build of classroute is running: the module
// version, the VCS revision and the Go toolchain, read from the binary's
// build information (debug.ReadBuildInfo), so every binary reports the
// same thing without link-time flags.
package version

import (
	"fmt"
	"runtime/debug"
)

// Release is the version of this source tree, as CHANGELOG.md names it.
// A binary built from a tagged module reports the module's version
// instead; one built from a checkout reports Release.
const Release = "v0.12.0"

// Info is one binary's build.
type Info struct {
	// Version is the module version ("v0.11.0"), or Release for a build
	// from a source checkout ("(devel)" in the build information).
	Version string
	// Revision is the VCS commit the binary was built from, with
	// "-dirty" when the tree had uncommitted changes; "unknown" when the
	// build recorded none (go run, go test, -buildvcs=false).
	Revision string
	// GoVersion is the toolchain that built the binary.
	GoVersion string
}

// Get returns this binary's build.
func Get() Info {
	info := Info{Version: Release, Revision: "unknown", GoVersion: "unknown"}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return info
	}
	info.GoVersion = bi.GoVersion
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		info.Version = v
	}
	dirty := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			info.Revision = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if dirty && info.Revision != "unknown" {
		info.Revision += "-dirty"
	}
	return info
}

// String is the line "--version" prints: "NAME v0.11.0 (revision abc123, go1.26.8)".
func (i Info) String() string {
	return fmt.Sprintf("%s (revision %s, %s)", i.Version, i.Revision, i.GoVersion)
}
