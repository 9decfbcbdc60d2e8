package state_test

import (
	"testing"
	"time"

	"github.com/classroute/classroute/router"
	"github.com/classroute/classroute/router/state"
)

// A store opened on an idle etcd (a daemon restarted with nothing written
// since) must stay ready: etcd sends no progress notification until its
// revision reaches the watch's start, so freshness cannot rest on those
// alone.
func TestIdleEtcdStaysFresh(t *testing.T) {
	m, _ := newMember(t)
	fast := []state.Option{state.WithStaleAfter(500 * time.Millisecond), state.WithProgressEvery(100 * time.Millisecond)}
	e := newEnv(t, m, fast...)
	e.seed([]router.Provider{provider("aws")},
		[]router.Region{secretRegion("aws", "us-isob-east-1", router.Resources{MilliCPU: 10000, MemoryMiB: 10000})},
		[]router.Tenant{army()})

	restarted := e.open(newClient(t, m), fast...)
	deadline := time.Now().Add(2 * time.Second) // four stale bounds with no write
	for time.Now().Before(deadline) {
		if err := restarted.Ready(); err != nil {
			t.Fatalf("store on an idle etcd: Ready() = %v; want nil", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := restarted.Place(t.Context(), "after-idle", secretWorkload(t, "after-idle")); err != nil {
		t.Fatalf("Place after an idle spell: %v", err)
	}
}
