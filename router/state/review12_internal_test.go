package state

import (
	"testing"

	"github.com/classroute/classroute/router"
	"github.com/classroute/classroute/router/marking"
)

// Review12: the intern table of parsed labels keys US banners by the
// banner and other schemes' by scheme+"\x00"+banner, in one map, so a
// US record whose banner is "KEN\x00CONFIDENTIAL" finds the Kenyan
// label's entry and "parses" (ok, with a zero US label). Reachable only
// through a record written behind the API's back (the API refuses such
// a banner), and Reconcile's LabelString check then flags it; the keys
// should still not share a space.
func TestReview12InternLabelKeysDoNotCollide(t *testing.T) {
	ken := &router.Workload{Scheme: marking.KEN, Banner: "CONFIDENTIAL"}
	if !intern.setLabel(ken) {
		t.Fatal("KEN CONFIDENTIAL does not parse")
	}
	us := &router.Workload{Banner: "KEN\x00CONFIDENTIAL"}
	if intern.setLabel(us) {
		t.Errorf("a US banner %q parses (label %v): it found the KEN label's intern entry", us.Banner, us.Label)
	}
}
