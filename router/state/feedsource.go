package state

import (
	"context"
	"fmt"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/classroute/classroute/router"
	"github.com/classroute/classroute/router/feed"
)

// Defaults of the feed options.
const (
	DefaultWatchProgressEvery = feed.DefaultProgressEvery
	DefaultWatchBuffer        = feed.DefaultBuffer
)

// WithWatchProgressEvery sets how often a placement feed with nothing
// to send sends a progress notice (default DefaultWatchProgressEvery).
func WithWatchProgressEvery(d time.Duration) Option {
	return func(o *options) { o.watchProgressEvery = d }
}

// WithWatchBuffer bounds how many events a placement feed queues for a
// slow client before it ends with router.ErrWatcherTooSlow (default
// DefaultWatchBuffer).
func WithWatchBuffer(n int) Option { return func(o *options) { o.watchBuffer = n } }

// WatchPlacements starts a feed (package router/feed) of the placement
// changes after revision after (0: the revision the cache reflects) that
// f selects. The feed's first batch is a progress notice at the start
// revision. It ends when ctx ends, when Close is called, or on an error
// Next returns.
func (s *Store) WatchPlacements(ctx context.Context, f feed.Filter, after int64) (*feed.Feed, error) {
	cfg := feed.Config{ProgressEvery: s.watchProgressEvery, Buffer: s.watchBuffer, OpTimeout: s.opTimeout, Log: s.log}
	return feed.Start(ctx, feedSource{s}, cfg, f, after)
}

// feedSource is the store as a feed reads it: the key layout and the
// record format stay here.
type feedSource struct{ s *Store }

func (f feedSource) Dir(tenant string) string {
	dir := f.s.keys.prefix + placementsDir
	if validKeyPart(tenant) {
		dir += tenant + "/"
	}
	return dir
}

func (f feedSource) IsPlacement(key string) bool {
	k, _ := f.s.keys.parse(key)
	return k == kindPlacement
}

func (f feedSource) Legacy(key string) bool {
	_, ok := f.s.keys.legacyPlacement(key)
	return ok
}

func (f feedSource) Decode(kv *mvccpb.KeyValue) (*router.Placement, error) {
	_, id := f.s.keys.parse(string(kv.Key))
	p, err := decodePlacement(kv.Value)
	if err == nil && keyOf(p) != id {
		err = fmt.Errorf("record names placement %q", keyOf(p))
	}
	return p, err
}

func (f feedSource) KV() clientv3.KV              { return f.s.kv }
func (f feedSource) NewWatcher() clientv3.Watcher { return f.s.newWatch() }
func (f feedSource) Revision() int64              { return f.s.rev.current() }
func (f feedSource) Ready() error                 { return f.s.Ready() }
func (f feedSource) Done() <-chan struct{}        { return f.s.done }
