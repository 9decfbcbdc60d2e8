// Package feed streams the changes of the placements directory to one
// watcher each: the Watch API's feed. It is an etcd watch of its own, not
// the daemon's cache (router/state keeps that): the cache keeps only the
// latest state, while a feed must hand over every change exactly once
// across reconnects.
//
// The store it reads (router/state) is behind Source: the key layout and
// the record format stay there. feed imports etcd's client and router;
// it must not import router/state, router/server or go-memdb (a test
// enforces it).
package feed

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/classroute/classroute/router"
)

// Source is the store a feed reads: its etcd client, its key layout and
// record format, and the state of its cache.
type Source interface {
	// Dir is the etcd key prefix of tenant's placements, or of every
	// placement when tenant is empty or not a valid key part.
	Dir(tenant string) string
	// IsPlacement reports whether key is a placement record's key.
	IsPlacement(key string) bool
	// Legacy reports whether key is a placement key of the layout
	// before request ids were scoped to the tenant (a migration moves
	// those records; the move is no change of the placement).
	Legacy(key string) bool
	// Decode decodes a placement record, and checks that it names the
	// placement its key does.
	Decode(kv *mvccpb.KeyValue) (*router.Placement, error)
	// KV reads etcd; NewWatcher makes a watcher of the feed's own, so
	// that its progress requests reach only its own watch.
	KV() clientv3.KV
	NewWatcher() clientv3.Watcher
	// Revision is the revision the store's cache reflects.
	Revision() int64
	// Ready is nil while the store may answer (its cache is fresh).
	Ready() error
	// Done is closed when the store closes.
	Done() <-chan struct{}
}

// Defaults of Config.
const (
	DefaultProgressEvery = 10 * time.Second
	DefaultBuffer        = 4096
	DefaultOpTimeout     = 5 * time.Second
)

// Config is a feed's settings.
type Config struct {
	// ProgressEvery is how often a feed with nothing to send sends a
	// progress notice (default DefaultProgressEvery).
	ProgressEvery time.Duration
	// Buffer bounds how many events a feed queues for a slow client
	// before it ends with router.ErrWatcherTooSlow (default
	// DefaultBuffer).
	Buffer int
	// OpTimeout bounds each etcd request (default DefaultOpTimeout).
	OpTimeout time.Duration
	Log       *slog.Logger
}

func (c *Config) defaults() {
	if c.ProgressEvery <= 0 {
		c.ProgressEvery = DefaultProgressEvery
	}
	if c.Buffer <= 0 {
		c.Buffer = DefaultBuffer
	}
	if c.OpTimeout <= 0 {
		c.OpTimeout = DefaultOpTimeout
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
}

// unavailable is err from etcd as the feed returns it: ctx's error when
// ctx ended, router.ErrUnavailable otherwise.
func unavailable(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w (etcd: %v)", ctx.Err(), err)
	}
	return fmt.Errorf("%w: etcd: %w", router.ErrUnavailable, err)
}

// How a feed works.
//
// Start. Start(…, after) watches from after+1, so a client that
// resumes with the last revision it received neither misses nor repeats
// a change. after = 0 means the revision the cache reflects, not etcd's
// latest: a List answered by this daemon just before reflects that
// revision or an earlier one, whereas etcd's latest may be ahead of the
// cache, and starting there would skip the changes in between, which
// the List did not show. (A List's page carries its revision; watching
// from it closes even the gap between a List and a Watch.) A revision
// etcd has compacted, or not reached, is router.ErrRevisionOutOfRange.
//
// Grouping. Each batch holds every matching change of one revision. etcd
// delivers a revision's events in order, but the feed does not rely on
// them arriving in one response: the events of the latest revision seen
// are held until a later revision arrives, or a progress notification
// says etcd has sent everything up to it (the feed asks for one at once
// when it holds events).
//
// Progress. While nothing matches, the feed sends a progress notice (a
// batch without events, at the revision etcd vouched for) at most every
// Config.ProgressEvery, so a client resuming later starts from a
// recent revision, not one compaction has since removed.
//
// Memory. The feed never blocks on its client: it queues batches and
// the caller takes them with Next. When more than Config.Buffer events
// wait in the queue, the client is not keeping up, and waiting for it
// would make the etcd client buffer the watch without bound; so the feed
// stops watching and, once the client has taken what is queued (whole
// revisions), Next returns router.ErrWatcherTooSlow: the client resumes
// from the last revision it received. Notices are coalesced, never
// queued twice in a row.

// flushRetry is how often a feed holding the events of a revision asks
// etcd again for the progress notification that completes it (etcd
// drops a request while the watch is catching up).
const flushRetry = 50 * time.Millisecond

// Filter selects the placement changes a feed streams. Set fields
// must all match, on the placement before or after the change.
type Filter struct {
	Tenant string
	// Workload is a workload name.
	Workload string
	// Region is a region key: placements that name it among their
	// replicas or retiring copies (in any state, so that a release and a
	// deletion are seen too).
	Region string
}

func (f *Filter) match(p *router.Placement) bool {
	if f.Tenant != "" && p.Tenant != f.Tenant {
		return false
	}
	if f.Workload != "" && p.Workload.Name != f.Workload {
		return false
	}
	if f.Region == "" {
		return true
	}
	for _, r := range p.Regions {
		if r == f.Region {
			return true
		}
	}
	for _, r := range p.Retiring {
		if r.Region == f.Region {
			return true
		}
	}
	return false
}

// Event is one change of a placement.
type Event struct {
	Type router.EventType
	// Placement is the placement after the change; for router.EventDeleted,
	// the last version. Shared: never modify it.
	Placement *router.Placement
}

// Batch is every matching change of one etcd revision. A batch
// without events is a progress notice: nothing matching changed up to
// Revision.
type Batch struct {
	Revision int64
	Events   []Event
}

// Feed is one watcher's stream of placement changes. Next returns the
// batches in revision order; Close stops it.
type Feed struct {
	q      feedQueue
	cancel context.CancelFunc
	done   chan struct{}
}

// Next returns the next batch. When the feed has ended it returns why:
// router.ErrRevisionOutOfRange (compacted meanwhile),
// router.ErrWatcherTooSlow, router.ErrUnavailable (etcd or the store),
// or ctx's error.
func (f *Feed) Next(ctx context.Context) (Batch, error) { return f.q.next(ctx) }

// Close stops the feed and waits for it. It is safe to call more than once.
func (f *Feed) Close() {
	f.cancel()
	<-f.done
}

// Start starts a feed of the changes after revision after (0: the
// revision src's cache reflects) that f selects. The feed's first
// batch is a progress notice at the start revision. It ends when ctx
// ends, when Close is called, or on an error Next returns.
func Start(ctx context.Context, src Source, cfg Config, f Filter, after int64) (*Feed, error) {
	cfg.defaults()
	if after < 0 {
		return nil, router.Violations{{Field: "after_revision", Description: fmt.Sprintf("must not be negative, got %d", after)}}.Err()
	}
	if after < 0 {
		return nil, router.Violations{{Field: "after_revision", Description: fmt.Sprintf("must not be negative, got %d", after)}}.Err()
	}
	if err := src.Ready(); err != nil {
		return nil, err
	}
	if after == 0 {
		after = src.Revision()
	} else if err := checkStart(ctx, src, cfg, after); err != nil {
		return nil, err
	}

	fctx, cancel := context.WithCancel(ctx)
	w := src.NewWatcher()
	// RequireLeader: a member cut off from its cluster ends the feed
	// rather than serving it silently.
	wctx := clientv3.WithRequireLeader(fctx)
	// One tenant's directory when f names one: the feed's work follows
	// that tenant's writes, not everyone's (a tenant's user learns
	// nothing of the others' volume from it).
	dir := src.Dir(f.Tenant)
	wch := w.Watch(wctx, dir, clientv3.WithPrefix(), clientv3.WithRev(after+1),
		clientv3.WithPrevKV(), clientv3.WithProgressNotify(), clientv3.WithCreatedNotify())
	stop := func() {
		cancel()
		_ = w.Close()
	}
	// Wait for etcd to take the watch, so that a refusal is the call's error.
	t := time.NewTimer(cfg.OpTimeout)
	defer t.Stop()
	select {
	case resp, ok := <-wch:
		err := feedErr(&resp, after)
		if !ok {
			err = errors.New("watch closed")
		}
		if err == nil && !resp.Created {
			err = errors.New("watch answered before it was created")
		}
		if err != nil {
			stop()
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if errors.Is(err, router.ErrRevisionOutOfRange) {
				return nil, err
			}
			return nil, fmt.Errorf("%w: watch placements: %w", router.ErrUnavailable, err)
		}
	case <-t.C:
		stop()
		return nil, fmt.Errorf("%w: etcd did not take the watch within %v", router.ErrUnavailable, cfg.OpTimeout)
	}

	fd := &Feed{cancel: cancel, done: make(chan struct{})}
	fd.q.init(cfg.Buffer)
	r := &feedRun{src: src, cfg: cfg, filter: f, q: &fd.q, watcher: w, wctx: wctx, last: after, lastPush: time.Now()}
	r.q.push(Batch{Revision: after})
	go func() {
		defer close(fd.done)
		defer stop()
		r.q.end(r.run(fctx, wch))
	}()
	return fd, nil
}

// checkStart refuses a start revision etcd has compacted or not reached.
func checkStart(ctx context.Context, src Source, cfg Config, after int64) error {
	key := src.Dir("")
	gctx, cancel := context.WithTimeout(ctx, cfg.OpTimeout)
	defer cancel()
	resp, err := src.KV().Get(gctx, key, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		return unavailable(ctx, err)
	}
	if now := resp.Header.Revision; after > now {
		return fmt.Errorf("%w: revision %d is ahead of etcd's %d (another cluster's?): list again, then watch from the list's revision",
			router.ErrRevisionOutOfRange, after, now)
	} else if after == now {
		return nil
	}
	// A read at the first revision to send fails if it is compacted.
	_, err = src.KV().Get(gctx, key, clientv3.WithPrefix(), clientv3.WithCountOnly(), clientv3.WithRev(after+1))
	if errors.Is(err, rpctypes.ErrCompacted) {
		return fmt.Errorf("%w: changes after revision %d are compacted: list again, then watch from the list's revision",
			router.ErrRevisionOutOfRange, after)
	}
	if err != nil {
		return unavailable(ctx, err)
	}
	return nil
}

// feedErr says why a watch response ends a feed that has sent every
// change up to last, or nil.
func feedErr(resp *clientv3.WatchResponse, last int64) error {
	if resp.CompactRevision != 0 || errors.Is(resp.Err(), rpctypes.ErrCompacted) {
		return fmt.Errorf("%w: changes after revision %d are compacted (etcd keeps from %d): list again, then watch from the list's revision",
			router.ErrRevisionOutOfRange, last, resp.CompactRevision)
	}
	if err := resp.Err(); err != nil {
		return err
	}
	if resp.Canceled {
		return errors.New("watch canceled by etcd")
	}
	return nil
}

// feedRun is the state of one feed's goroutine.
type feedRun struct {
	src     Source
	cfg     Config
	filter  Filter
	q       *feedQueue
	watcher clientv3.Watcher
	wctx    context.Context // the watch's context, for progress requests

	// pending holds the matching events of revision pendingRev, the
	// latest seen, until that revision is known to be complete.
	pendingRev int64
	pending    []Event
	// moved holds the values of the legacy placement records that
	// revision pendingRev moved to their tenant's directory (see
	// migrate.go): the move is no change of the placement.
	moved    map[string]bool
	last     int64     // the revision of the last batch queued
	lastPush time.Time // when it was queued
}

func (r *feedRun) run(ctx context.Context, wch clientv3.WatchChan) error {
	every := r.cfg.ProgressEvery
	tick := time.NewTicker(every)
	defer tick.Stop()
	flush := time.NewTimer(flushRetry)
	flush.Stop()
	defer flush.Stop()
	for {
		select {
		case resp, ok := <-wch:
			if !ok {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				return fmt.Errorf("%w: placement watch closed", router.ErrUnavailable)
			}
			had := len(r.pending) > 0
			if err := r.handle(&resp); err != nil {
				return err
			}
			if len(r.pending) > 0 && !had {
				r.requestProgress()
				flush.Reset(flushRetry)
			}
		case <-flush.C:
			if len(r.pending) > 0 {
				r.requestProgress()
				flush.Reset(flushRetry)
			}
		case <-tick.C:
			if time.Since(r.lastPush) >= every {
				r.requestProgress()
			}
		case <-r.src.Done():
			return fmt.Errorf("%w: store closed", router.ErrUnavailable)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// requestProgress asks etcd for a progress notification on the feed's
// watch stream.
func (r *feedRun) requestProgress() {
	ctx, cancel := context.WithTimeout(r.wctx, r.cfg.OpTimeout)
	defer cancel()
	if err := r.watcher.RequestProgress(ctx); err != nil && r.wctx.Err() == nil {
		r.cfg.Log.Debug("feed: placement feed progress request", "err", err)
	}
}

// handle takes one watch response.
func (r *feedRun) handle(resp *clientv3.WatchResponse) error {
	if err := feedErr(resp, r.last); err != nil {
		if errors.Is(err, router.ErrRevisionOutOfRange) {
			return err
		}
		return fmt.Errorf("%w: placement watch: %w", router.ErrUnavailable, err)
	}
	switch {
	case resp.Created:
		return nil
	case resp.IsProgressNotify():
		// etcd has sent every event up to this revision.
		rev := resp.Header.Revision
		if r.pendingRev <= rev {
			if err := r.flush(); err != nil {
				return err
			}
		}
		if rev > r.last && time.Since(r.lastPush) >= r.cfg.ProgressEvery {
			return r.push(Batch{Revision: rev})
		}
		return nil
	}
	for _, ev := range resp.Events {
		if rev := ev.Kv.ModRevision; rev != r.pendingRev {
			// A later revision: the held one is complete.
			if err := r.flush(); err != nil {
				return err
			}
			r.pendingRev = rev
			clear(r.moved)
		}
		if src := r.src; src.Legacy(string(ev.Kv.Key)) && ev.Type == clientv3.EventTypeDelete && ev.PrevKv != nil {
			// A migration deletes the legacy record before it
			// writes the same value under the new key.
			if r.moved == nil {
				r.moved = make(map[string]bool)
			}
			r.moved[string(ev.PrevKv.Value)] = true
			continue
		}
		if pe, ok := r.event(ev); ok {
			r.pending = append(r.pending, pe)
		}
	}
	return nil
}

// flush queues the held revision's events, if any.
func (r *feedRun) flush() error {
	if len(r.pending) == 0 {
		return nil
	}
	b := Batch{Revision: r.pendingRev, Events: r.pending}
	r.pending = nil
	return r.push(b)
}

func (r *feedRun) push(b Batch) error {
	if !r.q.push(b) {
		return fmt.Errorf("%w: more than %d changes wait for the client; resume after revision %d",
			router.ErrWatcherTooSlow, r.q.max, r.last)
	}
	r.last, r.lastPush = b.Revision, time.Now()
	return nil
}

// event turns one etcd event into a placement event, if it is about a
// placement the filter selects. A record that does not decode is
// skipped and logged.
func (r *feedRun) event(ev *clientv3.Event) (Event, bool) {
	if !r.src.IsPlacement(string(ev.Kv.Key)) {
		return Event{}, false
	}
	var prev *router.Placement
	if ev.PrevKv != nil {
		prev = r.decode(ev.PrevKv)
	}
	if ev.Type == clientv3.EventTypeDelete {
		if prev == nil {
			r.cfg.Log.Warn("feed: placement feed: deletion without a readable previous version; skipped",
				"key", string(ev.Kv.Key), "revision", ev.Kv.ModRevision)
			return Event{}, false
		}
		return Event{Type: router.EventDeleted, Placement: prev}, r.filter.match(prev)
	}
	if ev.Kv.CreateRevision == ev.Kv.ModRevision && r.moved[string(ev.Kv.Value)] {
		return Event{}, false // migrated, unchanged
	}
	cur := r.decode(ev.Kv)
	if cur == nil || !(r.filter.match(cur) || prev != nil && r.filter.match(prev)) {
		return Event{}, false
	}
	typ := router.EventUpdated
	switch {
	case ev.Kv.CreateRevision == ev.Kv.ModRevision:
		typ = router.EventPlaced
	case cur.State == router.PlacementReleased && (prev == nil || prev.State != router.PlacementReleased):
		typ = router.EventReleased
	}
	return Event{Type: typ, Placement: cur}, true
}

func (r *feedRun) decode(kv *mvccpb.KeyValue) *router.Placement {
	p, err := r.src.Decode(kv)
	if err != nil {
		r.cfg.Log.Warn("feed: placement feed: skipping unreadable record", "key", string(kv.Key), "revision", kv.ModRevision, "err", err)
		return nil
	}
	return p
}

// feedQueue holds the batches a feed has made and its client has not
// taken, and then why the feed ended.
type feedQueue struct {
	mu     sync.Mutex
	items  []Batch
	events int // events in items
	max    int
	err    error
	wake   chan struct{}
}

func (q *feedQueue) init(max int) {
	q.max = max
	q.wake = make(chan struct{}, 1)
}

func (q *feedQueue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// push queues b and reports whether it fit. A notice right after a
// notice replaces it. A batch larger than the bound is taken when
// nothing else waits, so that one large revision cannot stall a feed.
func (q *feedQueue) push(b Batch) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := len(q.items)
	if len(b.Events) == 0 && n > 0 && len(q.items[n-1].Events) == 0 {
		q.items[n-1] = b
		return true
	}
	if len(b.Events) > 0 && q.events > 0 && q.events+len(b.Events) > q.max {
		return false
	}
	q.items = append(q.items, b)
	q.events += len(b.Events)
	q.signal()
	return true
}

// end records why the feed ended; Next returns it once the queue is empty.
func (q *feedQueue) end(err error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.err == nil {
		q.err = err
	}
	q.signal()
}

func (q *feedQueue) next(ctx context.Context) (Batch, error) {
	for {
		q.mu.Lock()
		if len(q.items) > 0 {
			b := q.items[0]
			q.items[0] = Batch{}
			q.items = q.items[1:]
			if len(q.items) == 0 {
				q.items = nil // let the backing array go
			}
			q.events -= len(b.Events)
			q.mu.Unlock()
			return b, nil
		}
		err := q.err
		q.mu.Unlock()
		if err != nil {
			return Batch{}, err
		}
		select {
		case <-q.wake:
		case <-ctx.Done():
			return Batch{}, ctx.Err()
		}
	}
}
