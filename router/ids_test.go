package router

import (
	"strings"
	"testing"
)

func TestIdentifierShapes(t *testing.T) {
	long := func(n int) string { return strings.Repeat("a", n) }
	for _, tc := range []struct {
		name  string
		valid func(string) bool
		in    string
		want  bool
	}{
		{"id", ValidID, "us-gov-west-1", true},
		{"id at its bound", ValidID, long(MaxIDLen), true},
		{"id over its bound", ValidID, long(MaxIDLen + 1), false},
		{"id uppercase", ValidID, "US", false},
		{"id empty", ValidID, "", false},
		{"id slash", ValidID, "a/b", false},
		{"region key", ValidRegionKey, "aws/us-gov-west-1", true},
		{"region key without provider", ValidRegionKey, "/x", false},
		{"region key of three parts", ValidRegionKey, "a/b/c", false},
		{"workload name", ValidWorkloadName, "Analytic_1.v2-x", true},
		{"workload name over its bound", ValidWorkloadName, long(MaxNameLen + 1), false},
		{"workload name with a colon", ValidWorkloadName, "a:b", false},
		{"request id with a colon", ValidRequestID, "job:42", true},
		{"request id with a slash", ValidRequestID, "a/b", false},
		{"request id with a control character", ValidRequestID, "a\x00b", false},
		{"agent id with an at", ValidAgentID, "agent@konza-1", true},
		{"agent id with a space", ValidAgentID, "agent 1", false},
		{"member name", validMemberName, "jane.doe", true},
		{"member name dot", validMemberName, ".", false},
		{"member name dot dot", validMemberName, "..", false},
	} {
		if got := tc.valid(tc.in); got != tc.want {
			t.Errorf("%s: %q valid %v; want %v", tc.name, tc.in, got, tc.want)
		}
	}
}

func TestClip(t *testing.T) {
	if got := Clip("short", 10); got != "short" {
		t.Errorf("Clip(short) = %q", got)
	}
	got := Clip(strings.Repeat("x", 100), 10)
	if got != "xxxxxxx..." || len(got) > 10 {
		t.Errorf("Clip of 100 bytes to 10 = %q", got)
	}
	// A cut inside a multi-byte rune leaves valid UTF-8.
	if got := Clip("ééééé", 6); got != "é..." {
		t.Errorf("Clip(ééééé, 6) = %q; want %q", got, "é...")
	}
}
