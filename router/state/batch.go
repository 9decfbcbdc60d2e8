package state

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Placement commits are sent in batches: the compare-and-swap of each
// placement becomes one nested transaction of a single etcd transaction,
//
//	Txn().Then(
//	    OpTxn(cmps₁, ops₁, [get placement₁]),
//	    OpTxn(cmps₂, ops₂, [get placement₂]),
//	    ...)
//
// etcd evaluates every nested transaction's compares against the state
// before the transaction and applies the writes of those that hold, so
// each placement succeeds or fails on its own compares exactly as if it
// were sent alone, and all that succeed share one revision. Batching
// matters because etcd's cost is mostly per request (a raft proposal and
// its apply), not per key. The members of a batch write disjoint keys:
// the reservations hold each region and each request id for one
// in-flight commit of this daemon, and audit keys are unique; so no
// member's writes change what another compares.
//
// committers senders each take what is queued (up to the limits) and
// send it; while they are all waiting on etcd, new commits queue up and
// go together in the next batch. A commit that finds nothing in flight
// is sent at once by its own goroutine.
const (
	committers = 4
	// maxTxnOps is etcd's default limit of operations per transaction
	// level (--max-txn-ops); a nested transaction may hold at most
	// maxTxnOps minus the operations of the level above it.
	maxTxnOps = 128
	// maxBatchBytes keeps a batch well under etcd's default request
	// limit of 1.5 MiB (--max-request-bytes).
	maxBatchBytes = 512 << 10
)

// commitReq is one placement's compare-and-swap, queued for a batch.
type commitReq struct {
	cmps  []clientv3.Cmp
	ops   []clientv3.Op
	els   []clientv3.Op
	size  int // bytes of the values written
	width int // the most operations it has at one level

	abandoned atomic.Bool // the caller stopped waiting: do not send
	done      chan struct{}
	resp      *etcdserverpb.TxnResponse // this member's nested response
	rev       int64                     // the batch's revision
	err       error
}

// commitQueue holds the commits waiting for a sender.
type commitQueue struct {
	mu    sync.Mutex
	queue []*commitReq
	wake  chan struct{}
	// inflight counts the batches sent and not yet answered.
	inflight atomic.Int32
}

func (q *commitQueue) init() { q.wake = make(chan struct{}, committers) }

func (q *commitQueue) push(r *commitReq) {
	q.mu.Lock()
	q.queue = append(q.queue, r)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default: // every sender is already awake
	}
}

// take removes the next batch from the queue: as many commits as fit
// etcd's limits, in arrival order.
func (q *commitQueue) take() []*commitReq {
	q.mu.Lock()
	defer q.mu.Unlock()
	n, width, size := 0, 0, 0
	for _, r := range q.queue {
		w, sz := max(width, r.width), size+r.size
		if n > 0 && (n+1+w > maxTxnOps || sz > maxBatchBytes) {
			break
		}
		n, width, size = n+1, w, sz
	}
	batch := q.queue[:n:n]
	q.queue = q.queue[n:]
	if len(q.queue) == 0 {
		q.queue = nil // let the backing array go
	}
	return batch
}

// commitBatched queues r for a batch and waits for its result, or for ctx.
func (s *Store) commitBatched(ctx context.Context, r *commitReq) error {
	r.done = make(chan struct{})
	r.width = max(len(r.cmps), len(r.ops), len(r.els))
	if s.commits.inflight.CompareAndSwap(0, 1) {
		// Nothing in flight: nothing to batch with. Send it from here
		// and save the two goroutine hand-offs.
		s.sendBatch(ctx, []*commitReq{r})
		s.commits.inflight.Add(-1)
		return nil
	}
	s.commits.push(r)
	select {
	case <-r.done:
		return nil
	case <-ctx.Done():
		// If it was not sent yet, it will not be. If it was, it may
		// commit: like any call abandoned in flight. The caller's
		// request id makes a retry safe.
		r.abandoned.Store(true)
		return ctx.Err()
	}
}

// sendCommits is one sender: it sends batches until ctx ends.
func (s *Store) sendCommits(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			for batch := s.commits.take(); len(batch) > 0; batch = s.commits.take() {
				for _, r := range batch {
					r.err = errClosed
					close(r.done)
				}
			}
			return
		case <-s.commits.wake:
		}
		for batch := s.commits.take(); len(batch) > 0; batch = s.commits.take() {
			s.commits.inflight.Add(1)
			s.sendBatch(ctx, batch)
			s.commits.inflight.Add(-1)
		}
	}
}

var errClosed = errors.New("store closed")

// sendBatch sends one batch and hands each member its result. A batch
// etcd refuses as a whole (too large, or a duplicate key, which would be
// a bug) is sent again one member at a time, so one member cannot fail
// the others.
func (s *Store) sendBatch(ctx context.Context, batch []*commitReq) {
	live := batch[:0:0]
	for _, r := range batch {
		if r.abandoned.Load() {
			r.err = context.Canceled
			close(r.done)
			continue
		}
		live = append(live, r)
	}
	if len(live) == 0 {
		return
	}
	ops := make([]clientv3.Op, len(live))
	for i, r := range live {
		ops[i] = clientv3.OpTxn(r.cmps, r.ops, r.els)
	}
	tctx, cancel := context.WithTimeout(ctx, s.opTimeout)
	resp, err := s.kv.Txn(tctx).Then(ops...).Commit()
	cancel()
	if err != nil && len(live) > 1 && (errors.Is(err, rpctypes.ErrTooManyOps) ||
		errors.Is(err, rpctypes.ErrRequestTooLarge) || errors.Is(err, rpctypes.ErrDuplicateKey)) {
		s.log.Warn("state: etcd refused a batch of placements; sending them one by one", "size", len(live), "err", err)
		for _, r := range live {
			s.sendBatch(ctx, []*commitReq{r})
		}
		return
	}
	for i, r := range live {
		switch {
		case err != nil:
			r.err = err
		case i >= len(resp.Responses) || resp.Responses[i].GetResponseTxn() == nil:
			r.err = errors.New("etcd answered a batch without a response for each member")
		default:
			r.resp, r.rev = resp.Responses[i].GetResponseTxn(), resp.Header.Revision
		}
		close(r.done)
	}
}
