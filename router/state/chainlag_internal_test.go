package state

import (
	"testing"
	"time"
)

// The chainer's lag: absent where no chainer runs, 0 once caught up,
// and otherwise counted from the oldest moment the chain fell behind
// (a later entry, or a retry, does not restart it).
func TestChainLag(t *testing.T) {
	at := func(s int) time.Time { return time.Date(2026, 12, 3, 12, 0, s, 0, time.UTC) }
	var l chainLag
	if _, ok := l.lag(at(0)); ok {
		t.Fatal("a store with no chainer reports a lag")
	}
	l.running.Store(true)
	l.behindFrom(at(0)) // the term starts
	if d, ok := l.lag(at(3)); !ok || d != 3*time.Second {
		t.Errorf("before the first catch-up: %v, %v; want 3s", d, ok)
	}
	l.caughtUp()
	if d, _ := l.lag(at(10)); d != 0 {
		t.Errorf("caught up: %v; want 0", d)
	}
	l.behindFrom(at(10)) // an entry delivered
	l.behindFrom(at(12)) // another, or a failure: the oldest counts
	if d, _ := l.lag(at(15)); d != 5*time.Second {
		t.Errorf("behind since 10s, at 15s: %v; want 5s", d)
	}
	if d, _ := l.lag(at(9)); d != 0 {
		t.Errorf("a clock behind the mark: %v; want 0, never negative", d)
	}
	l.caughtUp()
	l.running.Store(false)
	if _, ok := l.lag(at(20)); ok {
		t.Error("after the term a lag is reported")
	}
}
