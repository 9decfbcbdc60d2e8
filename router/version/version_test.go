package version

import (
	"strings"
	"testing"
)

func TestGetNamesARelease(t *testing.T) {
	i := Get()
	if !strings.HasPrefix(i.Version, "v") {
		t.Fatalf("Version = %q, want a semantic version starting with v", i.Version)
	}
	if i.GoVersion == "" || i.Revision == "" {
		t.Fatalf("Get() = %+v: empty fields", i)
	}
	if s := i.String(); !strings.Contains(s, i.Version) || !strings.Contains(s, i.GoVersion) {
		t.Fatalf("String() = %q, want the version and toolchain", s)
	}
}
