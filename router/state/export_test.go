package state

import (
	"context"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/classroute/classroute/router/audit"
)

// Test hooks, compiled only into this package's tests.

// WithBeforeCommit calls f with the request id just before each Place
// commit transaction is sent: after the decision, so a test can change
// etcd between a decision and its commit.
func WithBeforeCommit(f func(requestID string)) Option {
	return func(o *options) { o.beforeCommit = f }
}

// InterruptWatch cancels the cache's watch and keeps it down until
// resume is called; then the store resumes watching from its revision,
// as after any broken watch.
func (s *Store) InterruptWatch() (resume func()) {
	hold := make(chan struct{})
	s.mu.Lock()
	s.hold = hold
	cancel := s.watchCancel
	s.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	return func() { close(hold) }
}

// WithBeforeApply calls f with the watch's context before the watch
// applies each batch of responses, so a test can stall the watch: f may
// block until the watch is cancelled.
func WithBeforeApply(f func(watch context.Context)) Option {
	return func(o *options) { o.beforeApply = f }
}

// WithAfterSeedChunk calls f after each seeding chunk commits.
func WithAfterSeedChunk(f func(chunk int)) Option {
	return func(o *options) { o.afterSeedChunk = f }
}

// WithSeedLeaseTTL sets the lease, in seconds, that holds the seeded
// marker while a seed is part-way.
func WithSeedLeaseTTL(seconds int64) Option {
	return func(o *options) { o.seedLeaseTTL = seconds }
}

// PassAs runs one reconcile pass as a leader whose election key is key
// with create revision rev: a former leader's, to show it is fenced.
func (s *Store) PassAs(ctx context.Context, key string, rev int64, cfg ReconcilerConfig) error {
	cfg.defaults()
	r := &reconciler{s: s, cfg: cfg, f: fence{key, rev}, lostAt: map[string]time.Time{}, lastSeen: map[string]time.Time{}}
	return r.pass(ctx)
}

// PurgeAs runs one purge batch of the records released no later than
// cutoff, and of each tenant's beyond its keep most recent, as a leader
// whose election key is key with create revision rev.
func (s *Store) PurgeAs(ctx context.Context, key string, rev int64, cutoff time.Time, keep int) (int, error) {
	return s.purgeDue(ctx, fence{key, rev}, purgePolicy{cutoff: cutoff, keep: keep})
}

// LeaderKey returns the current leader's election key and its create
// revision.
func (s *Store) LeaderKey(ctx context.Context) (string, int64, error) {
	resp, err := s.kv.Get(ctx, s.keys.election()+"/", clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByCreateRevision, clientv3.SortAscend), clientv3.WithLimit(1))
	if err != nil {
		return "", 0, err
	}
	if len(resp.Kvs) == 0 {
		return "", 0, nil
	}
	return string(resp.Kvs[0].Key), resp.Kvs[0].CreateRevision, nil
}

// AuditIndexed reports whether the audit index has a watermark.
func (s *Store) AuditIndexed(ctx context.Context) bool {
	st, err := s.AuditIndexState(ctx)
	return err == nil && st.Started
}

// AppendAudit writes entries as the store writes any, in one transaction.
func (s *Store) AppendAudit(ctx context.Context, es ...audit.Entry) error {
	return s.appendAudit(ctx, es...)
}

// FindAuditByScan is FindAudit as it was before the index: every entry
// of the time range read and matched.
func (s *Store) FindAuditByScan(ctx context.Context, f AuditFilter) ([]audit.Record, string, error) {
	q := &auditQuery{s: s, ctx: ctx}
	from, to := f.idRange()
	return q.scan(&f, from, to, min(max(f.Limit, 100), 1000), 500)
}

// IndexAs runs the audit indexer once, as a leader whose election key is
// key with create revision rev: it indexes the entries written after the
// watermark (the whole trail when there is none) and moves it.
func (s *Store) IndexAs(ctx context.Context, key string, rev int64) error {
	x := &indexer{s: s, f: fence{key, rev}, skew: audit.DefaultMaxSkew}
	found, err := x.load(ctx)
	if err != nil {
		return err
	}
	if !found {
		return x.pass(ctx, 0)
	}
	return x.pass(ctx, x.wm.Through)
}

// QueuedWrites counts the writes waiting in the committer: queued for a
// round, or joined to a write of the same key.
func (s *Store) QueuedWrites() int {
	c := &s.committer
	c.mu.Lock()
	defer c.mu.Unlock()
	n := len(c.queue)
	for _, w := range c.keys {
		n += len(w.followers)
	}
	return n
}
