package state_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/classroute/classroute/router"
	"github.com/classroute/classroute/router/audit"
	"github.com/classroute/classroute/router/authz"
	"github.com/classroute/classroute/router/state"
)

// AckNeeded says, writing nothing, whether Ack would write: not for an
// ack that says what the replica entry says, nor for a retiring copy's
// ACCEPTED or RUNNING; and it refuses what Ack refuses.
func TestAgentAckNeeded(t *testing.T) {
	e := agentEnv(t)
	ctx := context.Background()
	w := secretWorkload(t, "w")
	w.Replicas = 2
	if _, err := e.store.Place(ctx, "two", w); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.Place(ctx, "gone", secretWorkload(t, "w1")); err != nil {
		t.Fatal(err)
	}
	east, west := "aws/secret-east", "azure/secret-west"
	a := e.connect(e.store, east, "agent-1")
	if err := a.Ack(ctx, "us-army", "two", router.ReplicaRunning, "pid 42"); err != nil {
		t.Fatal(err)
	}
	gone := mustGet(t, e.store, "gone")
	if _, err := e.store.Release(ctx, "us-army", "gone"); err != nil {
		t.Fatal(err)
	}
	// A placement that moved from east to west: a retiring copy in east.
	moved := *gone
	moved.ID, moved.State, moved.Regions, moved.Replicas = "moved", router.PlacementPlaced, []string{west}, nil
	moved.Retiring = []router.Retiring{{Region: east, MovedTo: west, Since: time.Now().UTC()}}
	waitFor(t, e.store, e.putJSON("placements/us-army/moved", &moved))

	tests := []struct {
		name          string
		tenant, id    string
		st            router.ReplicaState
		detail        string
		wantTenant    string
		want          bool
		wantErr       error
		wantViolation string
	}{
		{"what the entry says", "us-army", "two", router.ReplicaRunning, "pid 42", "us-army", false, nil, ""},
		{"what the entry says, no tenant", "", "two", router.ReplicaRunning, "pid 42", "us-army", false, nil, ""},
		{"another detail", "us-army", "two", router.ReplicaRunning, "pid 43", "us-army", true, nil, ""},
		{"another state", "us-army", "two", router.ReplicaFailed, "pid 42", "us-army", true, nil, ""},
		{"another state, no tenant", "", "two", router.ReplicaAccepted, "", "us-army", true, nil, ""},
		{"retiring copy running", "us-army", "moved", router.ReplicaRunning, "", "us-army", false, nil, ""},
		{"retiring copy failed (audited)", "us-army", "moved", router.ReplicaFailed, "", "us-army", true, nil, ""},
		{"unknown placement", "us-army", "no-such", router.ReplicaRunning, "", "", false, router.ErrNotFound, ""},
		{"another tenant's id", "us-navy", "two", router.ReplicaRunning, "", "", false, router.ErrNotFound, ""},
		{"released", "us-army", "gone", router.ReplicaRunning, "", "", false, router.ErrNotAssigned, ""},
		{"pending", "us-army", "two", router.ReplicaPending, "", "", false, nil, "ack.state"},
		{"long detail", "us-army", "two", router.ReplicaRunning, strings.Repeat("x", state.MaxAgentDetailLen+1), "", false, nil, "ack.detail"},
	}
	before := e.revisionOf(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tenant, need, err := a.AckNeeded(ctx, tt.tenant, tt.id, tt.st, tt.detail)
			var invalid *router.InvalidError
			switch {
			case tt.wantViolation != "":
				if !errors.As(err, &invalid) || invalid.Violations[0].Field != tt.wantViolation {
					t.Errorf("got %v; want an InvalidError on %s", err, tt.wantViolation)
				}
			case tt.wantErr != nil:
				if !errors.Is(err, tt.wantErr) {
					t.Errorf("got %v; want %v", err, tt.wantErr)
				}
			case err != nil || tenant != tt.wantTenant || need != tt.want:
				t.Errorf("AckNeeded = %q, %v, %v; want %q, %v", tenant, need, err, tt.wantTenant, tt.want)
			}
		})
	}
	if after := e.revisionOf(t); after != before {
		t.Errorf("AckNeeded wrote: etcd moved from revision %d to %d", before, after)
	}
}

// revisionOf is etcd's current revision.
func (e *env) revisionOf(tb testing.TB) int64 {
	tb.Helper()
	resp, err := e.other.Get(context.Background(), "revision-probe")
	if err != nil {
		tb.Fatal(err)
	}
	return resp.Header.Revision
}

// An agent's FAILED acks write the placement each time its detail
// changes, but audit entries only within the agent's audit bound; the
// rest are counted, by placement, in replica-failed-summary entries, so
// every failure is on the trail exactly once.
func TestAgentAckFailedAuditBounded(t *testing.T) {
	limit := state.RefusalAuditLimit{PerSecond: 1, Burst: 3, SummaryAfter: 200 * time.Millisecond}
	e := agentEnv(t, state.WithRefusalAuditLimit(limit), state.WithProgressEvery(20*time.Millisecond))
	ctx := context.Background()
	p, err := e.store.Place(ctx, "one", secretWorkload(t, "w"))
	if err != nil {
		t.Fatal(err)
	}
	region := p.Regions[0]
	agent, err := authz.ParseID("spiffe://classroute.test/agent/"+region, "classroute.test")
	if err != nil {
		t.Fatal(err)
	}
	actx := authz.NewContext(ctx, agent)
	a := e.connect(e.store, region, "agent-1")
	const n = 20
	start := time.Now()
	for i := range n {
		if err := a.Ack(actx, "us-army", "one", router.ReplicaFailed, fmt.Sprintf("attempt %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	elapsed := time.Since(start)
	if got := mustGet(t, e.store, "one").Replica(0); got.State != router.ReplicaFailed || got.Detail != fmt.Sprintf("attempt %d", n-1) {
		t.Errorf("replica %+v; want failed with the last ack's detail", got)
	}
	var one, counted int64
	var sums []audit.Entry
	for deadline := time.Now().Add(5 * time.Second); ; {
		one, counted, sums = 0, 0, nil
		for _, r := range allAudit(t, e.store) {
			switch x := r.Entry; x.Op {
			case audit.OpReplicaFailed:
				one++
			case audit.OpReplicaFailedSummary:
				counted += x.Count
				sums = append(sums, x)
			}
		}
		if one+counted >= n || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("%d FAILED acks in %v: %d audited one by one, %d counted in %d summaries", n, elapsed.Round(time.Millisecond), one, counted, len(sums))
	if bound := int64(limit.Burst) + int64(limit.PerSecond*elapsed.Seconds()) + 1; one > bound {
		t.Errorf("%d replica-failed entries; want at most %d (the agent's audit bound)", one, bound)
	}
	if one+counted != n {
		t.Errorf("%d audited one by one and %d counted; want %d in all", one, counted, n)
	}
	for _, x := range sums {
		if x.Actor != authz.Actor(actx) || x.Tenant != "us-army" || !slices.Equal(x.Regions, []string{region}) ||
			!strings.HasPrefix(x.Reasons[0], fmt.Sprintf("%d further acknowledgements of a failed replica by %s for tenant us-army between ", x.Count, x.Actor)) ||
			!slices.Contains(x.Reasons, fmt.Sprintf("placement one in %s: %d", region, x.Count)) {
			t.Errorf("summary %+v", x)
		}
	}
}
