package server

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/classroute/classroute/router/authz"
)

// clock is a limiter's clock, moved by hand.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func caller(id, tenant, name string) context.Context {
	return authz.NewContext(context.Background(), &authz.Principal{ID: id, Kind: authz.KindTenant, Tenant: tenant, Name: name})
}

// Idle buckets go at the next sweep: the limiter's memory follows the
// callers active lately, not every caller ever seen.
func TestLimiterEvictsIdleBuckets(t *testing.T) {
	c := &clock{t: time.Unix(1e9, 0)}
	l := newLimiter(IdentityLimits{Plan: Rate{PerSecond: 10, Burst: 5}}, nil)
	l.now = c.now
	for i := range 1000 {
		if w := l.take(caller(fmt.Sprint(i), "t", fmt.Sprint("u", i)), limitPlan); w != 0 {
			t.Fatalf("caller %d's first call waits %v", i, w)
		}
	}
	if n := len(l.buckets); n != 1000 {
		t.Fatalf("%d buckets; want 1000", n)
	}
	c.t = c.t.Add(sweepEvery) // long enough for every bucket to refill
	l.take(caller("x", "t", "x"), limitPlan)
	if n := len(l.buckets); n != 1 {
		t.Errorf("%d buckets after the sweep; want 1 (the caller just seen)", n)
	}
}

// A caller is its principal's kind, tenant, name and region, not the
// spelling of its ID: two certificates of one identity share one bucket.
func TestLimiterKeysOnPrincipal(t *testing.T) {
	c := &clock{t: time.Unix(1e9, 0)}
	l := newLimiter(IdentityLimits{Plan: Rate{PerSecond: 1, Burst: 1}}, nil)
	l.now = c.now
	if w := l.take(caller("spiffe://td/tenant/ke-moh/user/amina", "ke-moh", "amina"), limitPlan); w != 0 {
		t.Fatalf("first call waits %v", w)
	}
	if w := l.take(caller("spiffe://td/tenant/ke-moh/user/amin%61", "ke-moh", "amina"), limitPlan); w != time.Second {
		t.Errorf("the same principal under another spelling waits %v; want 1s", w)
	}
	if w := l.take(caller("spiffe://td/tenant/nld-mod/user/amina", "nld-mod", "amina"), limitPlan); w != 0 {
		t.Errorf("another tenant's amina waits %v; want 0", w)
	}
}

// A stream is counted out exactly once, however often its release is
// called, and a caller with none open holds no memory.
func TestStreamReleaseOnce(t *testing.T) {
	l := newLimiter(IdentityLimits{Streams: 2}, nil)
	ctx := caller("a", "t", "a")
	r1, err := l.openStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := l.openStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.openStream(ctx); err == nil {
		t.Fatal("a third stream admitted")
	}
	r1()
	r1()
	r1()
	if n := l.streams[identity{kind: authz.KindTenant, tenant: "t", name: "a"}]; n != 1 {
		t.Errorf("%d streams counted after releasing one three times; want 1", n)
	}
	r2()
	if len(l.streams) != 0 {
		t.Errorf("stream counts %v after every stream ended; want none", l.streams)
	}
}
