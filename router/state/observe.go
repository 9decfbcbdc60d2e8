package state

import (
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-memdb"

	"github.com/classroute/classroute/router"
)

// Observer is told how long the store's decisions and commits take (the
// metrics exporter is one). Its methods run on the Place path: they must
// be fast and safe for concurrent use.
type Observer interface {
	// Decided: one Place decision (the engine, with this daemon's
	// reservations overlaid), refusals included.
	Decided(d time.Duration)
	// Committed: one Place commit, from queueing its transaction to
	// etcd's answer; ok is false when it lost a race or failed.
	Committed(d time.Duration, ok bool)
}

// WithObserver sets the store's observer (default: none).
func WithObserver(o Observer) Option { return func(o2 *options) { o2.observer = o } }

type nopObserver struct{}

func (nopObserver) Decided(time.Duration)         {}
func (nopObserver) Committed(time.Duration, bool) {}

// etcdSeen is what the freshness read (requestProgress) last learnt of
// etcd: its revision, and when it answered.
type etcdSeen struct {
	rev atomic.Int64
	at  atomic.Int64 // UnixNano
}

func (e *etcdSeen) saw(rev int64, at time.Time) {
	e.rev.Store(rev)
	e.at.Store(at.UnixNano())
}

// Stats is the state of a store as its metrics report it.
type Stats struct {
	// Ready: the store vouches for its cache (see Ready).
	Ready bool
	// EtcdReachable: the store's freshness read last had an answer from
	// etcd within the stale bound; EtcdRevision is etcd's revision then
	// (0: never answered).
	EtcdReachable bool
	EtcdRevision  int64
	// Revision is the revision the cache reflects.
	Revision int64
	// FreshnessAge is how long ago etcd last vouched for the cache.
	FreshnessAge time.Duration
	// LiveAgents counts the regions with a connected agent (live records).
	LiveAgents int
	// Stranded and Violating count the placements in those states.
	Stranded, Violating int
	// Leading: this store's reconciler is the elected leader.
	Leading bool
	// EtcdAlarms are the alarms etcd last reported ("nospace",
	// "corrupt"; see alarm.go).
	EtcdAlarms []string
	// AccreditationExpiry is how long until the nearest expiry of a
	// region's accreditation, among the catalogue's regions whose
	// accreditation is not revoked (negative once one has expired);
	// HasAccreditationExpiry is false when no region has one.
	AccreditationExpiry    time.Duration
	HasAccreditationExpiry bool
	// AuditChaining: this store runs the audit chainer (its reconciler
	// leads). AuditChainLag is then how far the chain is behind: how
	// long the oldest entry it lacks has been waiting, as the chainer
	// tells (see chainLag); 0 when it has chained every entry delivered.
	AuditChaining bool
	AuditChainLag time.Duration
}

// Stats reads the store's state for metrics, from one cache transaction.
// The counts walk their tables: call it on a scrape, not per request.
func (s *Store) Stats() Stats {
	now := s.clock()
	st := Stats{
		Ready:        s.Ready() == nil,
		EtcdRevision: s.etcd.rev.Load(),
		FreshnessAge: max(now.Sub(time.Unix(0, s.confirmed.Load())), 0),
		Leading:      s.Leading(),
		EtcdAlarms:   s.EtcdAlarms(),
	}
	if at := s.etcd.at.Load(); at != 0 {
		st.EtcdReachable = now.Sub(time.Unix(0, at)) <= s.staleAfter
	}
	tx := s.db.Txn(false)
	defer tx.Abort()
	var view *regionView
	st.Revision, view = revisionTxn(tx)
	for _, r := range view.states {
		a := r.Region.Accreditation
		if a.Revoked || a.Expires.IsZero() {
			continue
		}
		if d := a.Expires.Sub(now); !st.HasAccreditationExpiry || d < st.AccreditationExpiry {
			st.AccreditationExpiry, st.HasAccreditationExpiry = d, true
		}
	}
	st.AuditChainLag, st.AuditChaining = s.chainLag.lag(now)
	st.LiveAgents = countTxn(tx, tableLive, indexID)
	st.Stranded = countTxn(tx, tablePlacements, indexState, router.PlacementStranded.String())
	st.Violating = countTxn(tx, tablePlacements, indexState, router.PlacementViolation.String())
	return st
}

func countTxn(tx *memdb.Txn, table, index string, args ...any) int {
	it, err := tx.Get(table, index, args...)
	if err != nil {
		return 0
	}
	n := 0
	for raw := it.Next(); raw != nil; raw = it.Next() {
		n++
	}
	return n
}
