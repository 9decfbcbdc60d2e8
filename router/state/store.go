// Package state keeps classroute's catalogue and placements in etcd and
// serves decisions from a go-memdb cache fed by an etcd watch.
//
// It owns the etcd key layout and record format (keys.go, codec.go; pinned
// by the golden records in testdata/stored), the cache that follows etcd
// (cachefeed.go, schema.go, view.go, intern.go), the committer that turns
// decisions into transactions (place.go, committer.go, batch.go), agent
// sessions and health, the leading reconciler (reconcile.go,
// reconcilebatch.go; its decisions are router.Reconcile's), the audit
// trail's writer, chainer and indexer (the trail's format is
// router/audit's), two-person changes, retention and seeding. It decides
// nothing itself: eligibility and scores are router's.
//
// It must not import the gRPC edge (router/server) or the API's
// generated code (proto/): the edge converts, the store stores
// (router/deps_test.go).
package state

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-memdb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.opentelemetry.io/otel/trace"

	"github.com/classroute/classroute/router"
	"github.com/classroute/classroute/router/audit"
	"github.com/classroute/classroute/router/equiv"
)

// Decider is what the store needs of the decision engine (router.Engine).
type Decider interface {
	// Place decides fast: Chosen and Scores, or Err.
	Place(router.Input) router.Decision
	// Plan decides and explains every region's verdict.
	Plan(router.Input) router.Decision
	// Recheck says whether a placed replica may stay in its region.
	Recheck(in router.Input, idx int) ([]router.Reason, bool)
	// Replace picks a region for one replica while the others stay.
	Replace(in router.Input, keep, avoid []int) (router.Replacement, error)
}

// Defaults of the options.
const (
	DefaultStaleAfter    = 5 * time.Second
	DefaultProgressEvery = time.Second
	DefaultMaxRetries    = 8
	DefaultOpTimeout     = 5 * time.Second
)

// Option configures a Store.
type Option func(*options)

type options struct {
	prefix         string
	log            *slog.Logger
	staleAfter     time.Duration
	progressEvery  time.Duration
	clock          func() time.Time
	maxRetries     int
	opTimeout      time.Duration
	beforeCommit   func(requestID string)      // tests only; see export_test.go
	beforeApply    func(watch context.Context) // tests only; see export_test.go
	afterSeedChunk func(chunk int)             // tests only; see export_test.go
	seedLeaseTTL   int64                       // seconds; see Seed
	loadByPages    bool                        // tests only: load as from an etcd without range streams

	watchProgressEvery time.Duration // see feedsource.go and router/feed
	watchBuffer        int
	observer           Observer     // see observe.go
	tracer             trace.Tracer // see trace.go

	refusalAudit RefusalAuditLimit // see auditlimit.go
}

// WithPrefix sets the etcd key prefix (default DefaultPrefix). It should
// end in "/".
func WithPrefix(p string) Option { return func(o *options) { o.prefix = p } }

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithStaleAfter bounds how long ago etcd must last have confirmed the
// cache's watch for the store to vouch for it (default DefaultStaleAfter).
func WithStaleAfter(d time.Duration) Option { return func(o *options) { o.staleAfter = d } }

// WithProgressEvery sets how often the store asks etcd to confirm the
// watch (default DefaultProgressEvery). Keep it well below the stale bound.
func WithProgressEvery(d time.Duration) Option { return func(o *options) { o.progressEvery = d } }

// WithClock sets the clock used for timestamps, accreditation expiry and
// staleness (default time.Now).
func WithClock(now func() time.Time) Option { return func(o *options) { o.clock = now } }

// WithMaxRetries bounds how many times a write that lost a race is
// re-decided and retried (default DefaultMaxRetries); then it fails with
// router.ErrConflict.
func WithMaxRetries(n int) Option { return func(o *options) { o.maxRetries = n } }

// WithOpTimeout bounds each etcd call and each wait for the cache
// (default DefaultOpTimeout), within the caller's context.
func WithOpTimeout(d time.Duration) Option { return func(o *options) { o.opTimeout = d } }

// Store is classroute's state: the catalogue (providers, regions,
// tenants), the usage of every region and the placements, kept in etcd
// and cached in memory. Reads come from the cache. Every write is one
// compare-and-swap in etcd that compares the revisions of what it read
// (placements from concurrent Place calls are committed together by the
// committer; see committer.go), and returns once the cache reflects it.
// A Store is safe for concurrent use; Close stops it.
type Store struct {
	cli *clientv3.Client
	kv  clientv3.KV
	// newLease makes a lease client of its own (Seed's), closed after
	// use so that its keep-alive goroutines end with it.
	newLease func() clientv3.Lease
	// newWatch makes a watcher of its own (a placement feed's), so
	// that its progress requests reach only its own watch.
	newWatch func() clientv3.Watcher
	watcher  clientv3.Watcher
	engine   Decider
	keys     keys
	options

	db        *memdb.MemDB
	rev       revisionWaiters
	committer committer // commits placements (committer.go)
	auditID   audit.IDs
	trail     auditTrail // the audit index and refusal bounds (auditindex.go, auditlimit.go)

	resumeKey []byte // see ResumeKey

	// Health of the cache, read by Ready on every decision.
	loaded    atomic.Bool  // the first load is done
	live      atomic.Bool  // the watch is established and has not broken
	confirmed atomic.Int64 // clock time (UnixNano) etcd last answered the watch
	etcd      etcdSeen     // what the freshness read last saw, for metrics
	chainLag  chainLag     // how far the audit chainer is behind, for metrics

	alarms atomic.Pointer[[]string] // etcd's alarms as last polled, read by Ready too (alarm.go)

	kick   chan struct{} // asks for a progress request now
	cancel context.CancelFunc
	done   chan struct{} // closed when the background goroutines have exited

	leading atomic.Bool // this store's reconciler is the elected leader
	changes changeFeed  // what the cache's changes touched, for the leading reconciler

	equivTable atomic.Pointer[equiv.Table] // the cached equivalence entries' table (equivalence.go)
	flows      atomic.Pointer[flowData]    // the cached edges and services (flows.go)

	mu          sync.Mutex
	watchCancel context.CancelFunc // cancels the current watch
	hold        chan struct{}      // tests: hold the watch down until closed
}

// Open loads the state under the prefix from etcd, starts the watch that
// keeps the cache current, moves placement records of the legacy layout
// (see migrate.go), and returns once the store is Ready or ctx ends. The client stays the caller's: close it after the Store.
func Open(ctx context.Context, cli *clientv3.Client, engine Decider, opts ...Option) (*Store, error) {
	if cli == nil || engine == nil {
		return nil, errors.New("state: Open needs an etcd client and an engine")
	}
	o := options{
		prefix:        DefaultPrefix,
		staleAfter:    DefaultStaleAfter,
		progressEvery: DefaultProgressEvery,
		clock:         time.Now,
		maxRetries:    DefaultMaxRetries,
		opTimeout:     DefaultOpTimeout,
		seedLeaseTTL:  defaultSeedLeaseTTL,

		watchProgressEvery: DefaultWatchProgressEvery,
		watchBuffer:        DefaultWatchBuffer,
		observer:           nopObserver{},
		tracer:             defaultTracer(),
		refusalAudit:       DefaultRefusalAuditLimit,
	}
	for _, opt := range opts {
		opt(&o)
	}
	if o.log == nil {
		o.log = slog.New(slog.DiscardHandler)
	}
	if o.observer == nil {
		o.observer = nopObserver{}
	}
	if o.tracer == nil {
		o.tracer = defaultTracer()
	}
	if o.prefix == "" || o.staleAfter <= 0 || o.progressEvery <= 0 || o.maxRetries < 0 || o.opTimeout <= 0 ||
		o.watchProgressEvery <= 0 || o.watchBuffer <= 0 {
		return nil, fmt.Errorf("state: invalid options (prefix %q, stale after %v, progress every %v, max retries %d, op timeout %v, watch progress every %v, watch buffer %d)",
			o.prefix, o.staleAfter, o.progressEvery, o.maxRetries, o.opTimeout, o.watchProgressEvery, o.watchBuffer)
	}
	if err := o.refusalAudit.validate(); err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	s := &Store{
		cli:      cli,
		kv:       cli.KV,
		newLease: func() clientv3.Lease { return clientv3.NewLease(cli) },
		newWatch: func() clientv3.Watcher { return clientv3.NewWatcher(cli) },
		watcher:  clientv3.NewWatcher(cli),
		engine:   engine,
		keys:     keys{prefix: o.prefix},
		options:  o,
		db:       newDB(),
		kick:     make(chan struct{}, 1),
		done:     make(chan struct{}),
	}
	s.committer.init(s)
	var node [4]byte
	_, _ = crand.Read(node[:])
	s.auditID.Node = hex.EncodeToString(node[:])

	var err error
	if s.resumeKey, err = s.loadResumeKey(ctx); err != nil {
		s.watcher.Close()
		return nil, fmt.Errorf("state: resume token key: %w", err)
	}
	rev, legacy, err := s.load(ctx)
	if err != nil {
		s.watcher.Close()
		return nil, fmt.Errorf("state: load: %w", err)
	}
	if err := s.initAuditIndex(ctx); err != nil {
		s.watcher.Close()
		return nil, fmt.Errorf("state: audit index: %w", err)
	}
	bg, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	var wg sync.WaitGroup
	wg.Go(func() { s.run(bg, rev) })
	wg.Go(func() { s.requestProgress(bg) })
	for range senders {
		wg.Go(func() { s.committer.run(bg) })
	}
	wg.Go(func() { s.flushRefusals(bg) })
	wg.Go(func() { s.watchAlarms(bg) })
	go func() { wg.Wait(); close(s.done) }()

	for s.Ready() != nil {
		select {
		case <-ctx.Done():
			s.Close()
			return nil, fmt.Errorf("state: %w: watch not established: %w", router.ErrUnavailable, ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
	// Serve no placement before the legacy records are where the
	// cache can see them (migrate.go).
	moved, err := s.migrateLegacy(ctx, legacy)
	if err == nil && moved != 0 {
		err = s.waitCommitted(ctx, moved)
	}
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("state: move legacy placement records: %w", err)
	}
	return s, nil
}

// Close stops the watch and the background goroutines and waits for
// them. It is safe to call more than once. Afterwards Ready reports
// ErrUnavailable.
func (s *Store) Close() error {
	s.cancel()
	err := s.watcher.Close()
	<-s.done
	s.rev.close()
	return err
}

// Done is closed once the store has stopped.
func (s *Store) Done() <-chan struct{} { return s.done }

// Ready returns nil while the store can vouch for its cache and etcd
// takes writes: it is loaded, its watch on etcd is established, etcd
// confirmed the watch within the stale bound, and etcd has raised no
// alarm (NOSPACE: its database is full; see alarm.go). Otherwise it
// returns an error wrapping router.ErrUnavailable that says why, and
// decisions are refused.
func (s *Store) Ready() error {
	select {
	case <-s.done:
		return fmt.Errorf("%w: store closed", router.ErrUnavailable)
	default:
	}
	if !s.loaded.Load() {
		return fmt.Errorf("%w: cache not loaded", router.ErrUnavailable)
	}
	if a := s.alarms.Load(); a != nil && len(*a) > 0 {
		return alarmErr(*a)
	}
	if !s.live.Load() {
		return fmt.Errorf("%w: watch on etcd broken, re-establishing", router.ErrUnavailable)
	}
	if age := s.clock().Sub(time.Unix(0, s.confirmed.Load())); age > s.staleAfter {
		return fmt.Errorf("%w: etcd last confirmed the cache %v ago (bound %v)",
			router.ErrUnavailable, age.Round(time.Millisecond), s.staleAfter)
	}
	return nil
}

// Revision is the etcd revision the cache reflects.
func (s *Store) Revision() int64 { return s.rev.current() }

// WaitFor blocks until the cache reflects etcd revision rev, ctx ends, or
// the store closes.
func (s *Store) WaitFor(ctx context.Context, rev int64) error {
	ch := s.rev.wait(rev)
	if ch == nil {
		return nil
	}
	// Our own writes arrive as watch events at once; a revision made
	// only by keys outside the prefix arrives with a progress
	// notification, so ask for one if the wait is not over soon.
	t := time.NewTimer(10 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ch:
			if s.rev.current() >= rev {
				return nil
			}
			return fmt.Errorf("%w: store closed", router.ErrUnavailable)
		case <-t.C:
			select {
			case s.kick <- struct{}{}:
			default:
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// waitCommitted waits, within the op timeout, for the cache to reflect a
// write this store committed at rev.
func (s *Store) waitCommitted(ctx context.Context, rev int64) error {
	wctx, cancel := context.WithTimeout(ctx, s.opTimeout)
	defer cancel()
	if err := s.WaitFor(wctx, rev); err != nil {
		// No revision in the message: it reaches tenant users, whom a
		// revision would tell how many writes others made.
		s.log.Warn("state: committed, cache not caught up", "revision", rev, "err", err)
		if ctx.Err() != nil {
			return fmt.Errorf("committed, cache not caught up: %w", ctx.Err())
		}
		return fmt.Errorf("%w: committed, but the cache has not caught up: %w", router.ErrUnavailable, err)
	}
	return nil
}

// txn runs one etcd call within the op timeout and maps its failure:
// the caller's context ending is reported as such, anything else as
// router.ErrUnavailable.
func (s *Store) txn(ctx context.Context, call func(context.Context) (*clientv3.TxnResponse, error)) (*clientv3.TxnResponse, error) {
	cctx, cancel := context.WithTimeout(ctx, s.opTimeout)
	defer cancel()
	resp, err := call(cctx)
	if err != nil {
		return nil, unavailable(ctx, err)
	}
	return resp, nil
}

func unavailable(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w (etcd: %v)", ctx.Err(), err)
	}
	return fmt.Errorf("%w: etcd: %w", router.ErrUnavailable, err)
}

// retry runs attempt, a compare-and-swap, until it commits, fails, or
// has lost maxRetries+1 races. After a lost race it waits for the cache
// to reflect the revision that beat it, so the next attempt reads fresh
// state, and backs off a little.
func (s *Store) retry(ctx context.Context, what string, attempt func(context.Context) (committed bool, rev int64, err error)) error {
	for i := 0; ; i++ {
		ok, rev, err := attempt(ctx)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if ok {
			return s.waitCommitted(ctx, rev)
		}
		if i >= s.maxRetries {
			return fmt.Errorf("%s: %w: lost %d races", what, router.ErrConflict, i+1)
		}
		if err := s.afterConflict(ctx, rev, i); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
	}
}

// afterConflict waits for the cache to reach rev, then sleeps a short
// jittered backoff that grows with the attempt.
func (s *Store) afterConflict(ctx context.Context, rev int64, attempt int) error {
	if err := s.waitCommitted(ctx, rev); err != nil {
		return err
	}
	ceiling := time.Millisecond << min(attempt, 5) // 1ms .. 32ms
	t := time.NewTimer(rand.N(ceiling))
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// revisionWaiters tracks the revision the cache reflects and wakes the
// goroutines waiting for a revision when the cache reaches it. Waking
// only those (rather than all waiters on every change) keeps many
// concurrent placements from stampeding on each watch event.
type revisionWaiters struct {
	mu      sync.Mutex
	rev     atomic.Int64
	closed  bool
	waiters map[int64][]chan struct{}
	minWait int64 // lowest revision waited for, or 0
}

func (w *revisionWaiters) current() int64 { return w.rev.Load() }

// wait returns nil if the cache reflects rev, or a channel closed when it does.
func (w *revisionWaiters) wait(rev int64) <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.rev.Load() >= rev {
		return nil
	}
	ch := make(chan struct{})
	if w.closed {
		close(ch)
		return ch
	}
	if w.waiters == nil {
		w.waiters = make(map[int64][]chan struct{})
	}
	w.waiters[rev] = append(w.waiters[rev], ch)
	if w.minWait == 0 || rev < w.minWait {
		w.minWait = rev
	}
	return ch
}

// advance records that the cache reflects rev and wakes its waiters.
func (w *revisionWaiters) advance(rev int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if rev <= w.rev.Load() {
		return
	}
	w.rev.Store(rev)
	if w.minWait == 0 || rev < w.minWait {
		return
	}
	w.minWait = 0
	for r, chs := range w.waiters {
		if r > rev {
			if w.minWait == 0 || r < w.minWait {
				w.minWait = r
			}
			continue
		}
		for _, ch := range chs {
			close(ch)
		}
		delete(w.waiters, r)
	}
}

// close wakes every waiter; later waits return at once.
func (w *revisionWaiters) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closed = true
	for r, chs := range w.waiters {
		for _, ch := range chs {
			close(ch)
		}
		delete(w.waiters, r)
	}
	w.minWait = 0
}
