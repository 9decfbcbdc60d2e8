package state

import (
	"bytes"
	"cmp"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/classroute/classroute/router/audit"
)

// The chainer: the follower of the audit trail that seals it into the
// hash chain of router/audit, whose doc says what the chain records and
// checkpoints hold, the rules an entry is judged by (audit.Judge), and
// what a verifier can and cannot detect.
//
// Entries are written unchained, in the transaction of the change they
// record (place.go, reconcile.go, ...): keeping a chain head that every
// Place transaction compares and rewrites would serialise all placements
// of all daemons on one key. Instead etcd's revision orders the entries:
// an entry's create revision, ties (one transaction writing several
// entries) broken by key. The chainer, run by the elected reconciler
// leader and fenced like its other writes, follows new entries in that
// order and appends one chain record per entry (audit-chain/<seq>).
// Every CheckpointEvery records or CheckpointInterval (when any record
// is new) it signs the head with the daemon's ed25519 key
// (audit-checkpoint/<seq>), and, given an anchor (classrouted
// --audit-checkpoint-dir), keeps a copy of each checkpoint outside etcd,
// once etcd has committed it.
//
// The chainer follows a watch, so an entry is chained within moments of
// its write, and at worst (no leader, a leader change) within the
// election's session TTL plus a catch-up read; a checkpoint covers it
// within CheckpointInterval of being chained. VerifyAudit reports
// entries newer than the chain head as not yet chained, not as
// tampering.
//
// Forged entries. The chainer first judges each entry against what
// every genuine entry is (audit.Judge). An entry that fails is chained
// all the same, with its fault in the record's tamper field, and
// reported: logged at error, counted (AuditObserver.Tampered;
// classroute_audit_tampered_total), and written into the log itself as
// a "tamper" entry by the reconciler (in the transaction of its flagged
// records, so the report and the flag land together, and the report is
// chained after them like any entry). Refusing to chain it would halt
// the chain at the first forgery, which a forger could then use to
// leave every later genuine entry unsealed; skipping it would leave
// nothing in the chain to say it was seen. Flagged, it keeps its place,
// its bytes stay sealed as evidence, the chain moves on, and VerifyAudit
// reports it (and the tamper entry) as a problem for ever after. The
// chainer likewise reports an entry changed or deleted after it was
// written (its watch sees it), at the start of each term a chain shorter
// than or different from its newest anchored checkpoint, and a
// checkpoint it signs that differs from the one anchored at the same seq
// (the log was cut and has grown again).

// AuditObserver is told what the chainer finds (the metrics exporter is
// one). Its methods must be fast and safe for concurrent use.
type AuditObserver interface {
	// Tampered: n more entries found forged, changed or deleted, or the
	// chain found cut short of its anchor.
	Tampered(n int)
	// Anchored: a checkpoint kept outside etcd, or err when it could not
	// be.
	Anchored(err error)
}

type nopAuditObserver struct{}

func (nopAuditObserver) Tampered(int)   {}
func (nopAuditObserver) Anchored(error) {}

// CheckpointAnchor keeps signed checkpoints outside etcd, where a forger
// with write access to etcd cannot reach them (AnchorDir is one).
type CheckpointAnchor interface {
	// Write keeps cp, once; it fails with audit.ErrAnchorMismatch when it
	// already holds another head at cp.Seq.
	Write(cp audit.Checkpoint) error
	// Newest returns the checkpoint of highest seq kept (nil: none).
	Newest() (*audit.Checkpoint, error)
}

// AuditChainConfig configures the chainer (ReconcilerConfig.Audit).
type AuditChainConfig struct {
	// Disabled turns the chainer off (benchmarks; a daemon must chain).
	Disabled bool
	// Key signs checkpoints; without one the chain has none, and
	// VerifyAudit cannot tell a log cut short.
	Key ed25519.PrivateKey
	// CheckpointEvery and CheckpointInterval: a checkpoint is signed
	// once this many records are unsigned (default 1000), or this long
	// after the last (default 10s) if any are.
	CheckpointEvery    int
	CheckpointInterval time.Duration
	// MaxSkew is how far an entry's time may trail the chain's clock or
	// lead the chainer's (default audit.DefaultMaxSkew): the largest
	// clock difference between two daemons, plus the time a write takes
	// to commit.
	MaxSkew time.Duration
	// Anchor, when set, is given each checkpoint once etcd has committed
	// it. A failure is logged and counted; it does not stop the chain.
	Anchor CheckpointAnchor
	// Observer is told of tampering and anchoring (default: none).
	Observer AuditObserver
}

func (c *AuditChainConfig) defaults() {
	if c.CheckpointEvery <= 0 {
		c.CheckpointEvery = 1000
	}
	if c.CheckpointInterval <= 0 {
		c.CheckpointInterval = 10 * time.Second
	}
	if c.MaxSkew <= 0 {
		c.MaxSkew = audit.DefaultMaxSkew
	}
	if c.Observer == nil {
		c.Observer = nopAuditObserver{}
	}
}

// chainBatch is how many chain records one transaction writes (etcd
// refuses more than 128 operations by default), and chainBatchBytes
// about how many bytes (etcd refuses requests over 1.5 MiB by default;
// a forged key may be long).
const (
	chainBatch      = 100
	chainBatchBytes = 512 << 10
)

// tamperReasons is at most how many reasons one tamper entry lists, so
// that a flood of forgeries makes no outsized entry: the chainer logs
// every one, and VerifyAudit reports every one.
const tamperReasons = 10

// chainer is one term's follower of the audit trail.
type chainer struct {
	s   *Store
	f   fence
	cfg AuditChainConfig
	// The chain head: the last record's seq and hash, the entry it
	// chained, and the chain's clock.
	seq     uint64
	head    []byte
	lastRev int64
	lastKey string
	clock   time.Time
	// unsigned counts records past the last checkpoint.
	unsigned int
	lastCP   time.Time
}

// chainLag is how far the chainer is behind, for the metrics
// (Stats.AuditChainLag): since when the chain has lacked an entry
// written, as well as the chainer can tell. It is caught up (0) once it
// has chained every entry its catch-up read found and its watch has
// delivered; it is behind from the moment its watch delivers an entry
// until it has chained it, and, while it is not following the trail
// (starting a term, or failing and retrying), from the moment it
// stopped: entries written meanwhile are not yet seen, and count from
// then.
type chainLag struct {
	running atomic.Bool
	since   atomic.Int64 // UnixNano; 0: caught up
}

// behindFrom marks the chain behind since t, unless it already was.
func (l *chainLag) behindFrom(t time.Time) { l.since.CompareAndSwap(0, t.UnixNano()) }

// caughtUp marks the chain as holding every entry delivered.
func (l *chainLag) caughtUp() { l.since.Store(0) }

// lag is how far behind the chain is at now, and whether a chainer runs
// here to say.
func (l *chainLag) lag(now time.Time) (time.Duration, bool) {
	if !l.running.Load() {
		return 0, false
	}
	since := l.since.Load()
	if since == 0 {
		return 0, true
	}
	return max(now.Sub(time.Unix(0, since)), 0), true
}

// chainAudit chains the audit trail until ctx ends (leadership ends).
func (s *Store) chainAudit(ctx context.Context, f fence, cfg AuditChainConfig) {
	cfg.defaults()
	c := &chainer{s: s, f: f, cfg: cfg}
	backoff := 100 * time.Millisecond
	anchorChecked := false
	s.chainLag.caughtUp()
	s.chainLag.behindFrom(s.clock()) // until the first catch-up
	s.chainLag.running.Store(true)
	defer s.chainLag.running.Store(false)
	for ctx.Err() == nil {
		err := c.load(ctx)
		if err == nil && !anchorChecked {
			err = c.checkAnchor(ctx)
			anchorChecked = err == nil
		}
		if err == nil {
			err = c.follow(ctx)
		}
		if ctx.Err() != nil {
			return
		}
		s.chainLag.behindFrom(s.clock()) // not following: entries go unseen
		s.log.Warn("state: audit chainer", "err", err, "retry", backoff)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// load reads the chain head and the latest checkpoint.
func (c *chainer) load(ctx context.Context) error {
	s := c.s
	gctx, cancel := context.WithTimeout(ctx, s.opTimeout)
	defer cancel()
	opts := []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend), clientv3.WithLimit(1)}
	resp, err := s.kv.Txn(gctx).Then(
		clientv3.OpGet(s.keys.prefix+chainDir, clientv3.WithPrefix(), clientv3.WithCountOnly()),
		clientv3.OpGet(s.keys.prefix+checkpointDir, opts...),
	).Commit()
	if err != nil {
		return unavailable(ctx, err)
	}
	headKVs, err := c.headRecord(gctx, resp.Header.Revision, resp.Responses[0].GetResponseRange().Count)
	if err != nil {
		return unavailable(ctx, err)
	}
	c.seq, c.head, c.lastRev, c.lastKey, c.clock = 0, make([]byte, sha256.Size), 0, "", time.Time{}
	if kvs := headKVs; len(kvs) > 0 {
		var r audit.ChainRecord
		if err := json.Unmarshal(kvs[0].Value, &r); err != nil {
			return fmt.Errorf("chain head %s: %w", kvs[0].Key, err)
		}
		head, err := hex.DecodeString(r.Hash)
		if err != nil || len(head) != sha256.Size {
			return fmt.Errorf("chain head %s: bad hash", kvs[0].Key)
		}
		c.seq, c.head, c.lastRev, c.lastKey, c.clock = r.Seq, head, r.Rev, r.Key, r.Time
		if c.clock.IsZero() && r.Tamper == "" {
			// A v1 head: the chain's clock is its entry's time.
			gresp, err := s.kv.Get(gctx, s.keys.audit(r.Key))
			if err != nil {
				return unavailable(ctx, err)
			}
			var e audit.Entry
			if len(gresp.Kvs) == 1 && json.Unmarshal(gresp.Kvs[0].Value, &e) == nil {
				c.clock = e.Time
			}
		}
	}
	c.unsigned, c.lastCP = int(c.seq), time.Time{}
	if kvs := resp.Responses[1].GetResponseRange().Kvs; len(kvs) > 0 {
		var cp audit.Checkpoint
		if err := json.Unmarshal(kvs[0].Value, &cp); err != nil {
			return fmt.Errorf("checkpoint %s: %w", kvs[0].Key, err)
		}
		c.unsigned, c.lastCP = int(c.seq-min(cp.Seq, c.seq)), cp.Time
	}
	return nil
}

// headRecord returns the chain's last record (none when it is empty),
// read at rev, given how many records the chain holds. Their keys are
// their sequence numbers, from 1 with none missing unless records were
// deleted: then the n-th of n is the last, read alone. Otherwise it
// reads the chain sorted, which makes etcd read every record of it.
func (c *chainer) headRecord(ctx context.Context, rev, n int64) ([]*mvccpb.KeyValue, error) {
	s := c.s
	if n == 0 {
		return nil, nil
	}
	nth := s.keys.chain(uint64(n))
	resp, err := s.kv.Txn(ctx).Then(
		clientv3.OpGet(nth, clientv3.WithRev(rev)),
		clientv3.OpGet(nth+"\x00", clientv3.WithRange(clientv3.GetPrefixRangeEnd(s.keys.prefix+chainDir)), clientv3.WithCountOnly(), clientv3.WithRev(rev)),
	).Commit()
	if err != nil {
		return nil, err
	}
	if kvs := resp.Responses[0].GetResponseRange().Kvs; len(kvs) == 1 && resp.Responses[1].GetResponseRange().Count == 0 {
		return kvs, nil
	}
	sorted, err := s.kv.Get(ctx, s.keys.prefix+chainDir, clientv3.WithPrefix(), clientv3.WithRev(rev),
		clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend), clientv3.WithLimit(1))
	if err != nil {
		return nil, err
	}
	return sorted.Kvs, nil
}

// checkAnchor compares the chain with the newest checkpoint anchored
// outside etcd, and reports a chain cut short of it or rewritten.
func (c *chainer) checkAnchor(ctx context.Context) error {
	if c.cfg.Anchor == nil {
		return nil
	}
	a, err := c.cfg.Anchor.Newest()
	if err != nil {
		c.s.log.Error("state: audit checkpoint anchor unreadable", "err", err)
		c.cfg.Observer.Anchored(err)
		return nil
	}
	if a == nil {
		return nil
	}
	var why string
	if a.Seq > c.seq {
		why = fmt.Sprintf("log truncated: checkpoint #%d anchored outside etcd signs %d entries, the chain holds %d", a.Seq, a.Seq, c.seq)
	} else {
		gctx, cancel := context.WithTimeout(ctx, c.s.opTimeout)
		resp, err := c.s.kv.Get(gctx, c.s.keys.chain(a.Seq))
		cancel()
		if err != nil {
			return unavailable(ctx, err)
		}
		var r audit.ChainRecord
		if len(resp.Kvs) != 1 || json.Unmarshal(resp.Kvs[0].Value, &r) != nil || r.Hash != a.Hash {
			why = fmt.Sprintf("chain record #%d does not match the checkpoint anchored outside etcd: the log was rewritten", a.Seq)
		}
	}
	if why == "" {
		return nil
	}
	return c.report(ctx, []string{why})
}

// report records tampering found outside the chaining of new entries:
// logged, counted, and written as a tamper entry.
func (c *chainer) report(ctx context.Context, reasons []string) error {
	for _, r := range reasons {
		c.s.log.Error("state: audit tampering", "what", r)
	}
	op, err := c.tamperOp(reasons)
	if err != nil {
		return err
	}
	resp, err := c.s.txn(ctx, func(ctx context.Context) (*clientv3.TxnResponse, error) {
		return c.s.kv.Txn(ctx).If(c.f.cmp()).Then(op).Commit()
	})
	if err != nil {
		return err
	}
	if !resp.Succeeded {
		return errors.New("leadership lost")
	}
	c.cfg.Observer.Tampered(len(reasons))
	return nil
}

// tamperOp is the tamper entry that reports reasons, at most
// tamperReasons of them.
func (c *chainer) tamperOp(reasons []string) (clientv3.Op, error) {
	if n := len(reasons) - tamperReasons; n > 0 {
		reasons = append(reasons[:tamperReasons:tamperReasons], fmt.Sprintf("and %d more, each in the chainer's log and in VerifyAudit's report", n))
	}
	return c.s.auditOp(audit.Entry{Op: audit.OpTamper, Actor: actorReconciler, Reasons: reasons, Revision: c.s.Revision()})
}

// follow chains what was written since the head, then follows a watch
// of the audit directory, checkpointing as it goes.
func (c *chainer) follow(ctx context.Context) error {
	s := c.s
	rev, err := c.catchUp(ctx)
	if err != nil {
		return err
	}
	s.chainLag.caughtUp()
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wch := s.watcher.Watch(wctx, s.keys.audit(""), clientv3.WithPrefix(), clientv3.WithRev(rev+1))
	t := time.NewTicker(max(c.cfg.CheckpointInterval/4, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			if err := c.maybeCheckpoint(ctx); err != nil {
				return err
			}
		case wr, ok := <-wch:
			s.chainLag.behindFrom(s.clock())
			// Take every response already waiting, so that a storm of
			// entries is chained in few transactions.
			var kvs []*mvccpb.KeyValue
			var changed []string
			for {
				if !ok {
					return errors.New("audit watch closed")
				}
				if err := wr.Err(); err != nil {
					return fmt.Errorf("audit watch: %w", err)
				}
				for _, ev := range wr.Events {
					name := audit.PrintableID(strings.TrimPrefix(string(ev.Kv.Key), s.keys.audit("")))
					switch {
					case ev.IsCreate():
						kvs = append(kvs, ev.Kv)
					case ev.Type == mvccpb.DELETE:
						changed = append(changed, fmt.Sprintf("%s: deleted at revision %d", name, ev.Kv.ModRevision))
					default:
						changed = append(changed, fmt.Sprintf("%s: rewritten at revision %d after it was written at revision %d",
							name, ev.Kv.ModRevision, ev.Kv.CreateRevision))
					}
				}
				if len(kvs) >= 10*chainBatch {
					break
				}
				var waiting bool
				select {
				case wr, ok = <-wch:
					waiting = true
				default:
				}
				if !waiting {
					break
				}
			}
			if err := c.append(ctx, kvs); err != nil {
				return err
			}
			s.chainLag.caughtUp()
			// Entries are written once: anything else is tampering
			// (VerifyAudit finds it too).
			if len(changed) > 0 {
				if err := c.report(ctx, changed); err != nil {
					return err
				}
			}
		}
	}
}

// catchUp chains every entry created after the head, read at one
// revision, and returns that revision. It finds them by their keys
// alone (etcd keeps those, with their revisions, in memory) and reads
// the values of those only: after a restart, none or a few of a trail
// of millions.
func (c *chainer) catchUp(ctx context.Context) (int64, error) {
	s := c.s
	from, end := s.keys.audit(""), clientv3.GetPrefixRangeEnd(s.keys.audit(""))
	gctx, cancel := context.WithTimeout(ctx, s.opTimeout)
	resp, err := s.kv.Get(gctx, from, clientv3.WithCountOnly())
	cancel()
	if err != nil {
		return 0, unavailable(ctx, err)
	}
	rev := resp.Header.Revision
	var keys []string
	streamed, err := s.streamRecords(ctx, rev, from, end, func(kvs []*mvccpb.KeyValue) bool {
		for _, kv := range kvs {
			if c.after(kv.CreateRevision, string(kv.Key)) {
				keys = append(keys, string(kv.Key))
			}
		}
		return true
	}, clientv3.WithKeysOnly())
	if err != nil {
		return 0, err
	}
	if !streamed {
		return c.catchUpByPages(ctx)
	}
	var kvs []*mvccpb.KeyValue
	for len(keys) > 0 {
		n := min(len(keys), maxTxnOps)
		ops := make([]clientv3.Op, n)
		for i, k := range keys[:n] {
			ops[i] = clientv3.OpGet(k, clientv3.WithRev(rev))
		}
		keys = keys[n:]
		resp, err := s.txn(ctx, func(ctx context.Context) (*clientv3.TxnResponse, error) {
			return s.kv.Txn(ctx).Then(ops...).Commit()
		})
		if err != nil {
			return 0, err
		}
		for _, r := range resp.Responses {
			kvs = append(kvs, r.GetResponseRange().GetKvs()...)
		}
	}
	return rev, c.append(ctx, kvs)
}

// catchUpByPages is catchUp from an etcd without range streams: it
// reads the whole trail, a page at a time.
func (c *chainer) catchUpByPages(ctx context.Context) (int64, error) {
	s := c.s
	from, end := s.keys.audit(""), clientv3.GetPrefixRangeEnd(s.keys.audit(""))
	var rev int64
	var kvs []*mvccpb.KeyValue
	for {
		gctx, cancel := context.WithTimeout(ctx, s.opTimeout)
		resp, err := s.kv.Get(gctx, from, clientv3.WithRange(end), clientv3.WithLimit(1000), clientv3.WithRev(rev))
		cancel()
		if err != nil {
			return 0, unavailable(ctx, err)
		}
		rev = resp.Header.Revision
		for _, kv := range resp.Kvs {
			if c.after(kv.CreateRevision, string(kv.Key)) {
				kvs = append(kvs, kv)
			}
		}
		if !resp.More || len(resp.Kvs) == 0 {
			break
		}
		from = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
	return rev, c.append(ctx, kvs)
}

func (c *chainer) after(rev int64, key string) bool {
	return rev > c.lastRev || rev == c.lastRev && strings.TrimPrefix(key, c.s.keys.audit("")) > c.lastKey
}

// append judges and chains kvs, in (create revision, key) order, in
// fenced transactions of at most chainBatch records; the entries judged
// not genuine are flagged, and reported by a tamper entry in the same
// transaction.
func (c *chainer) append(ctx context.Context, kvs []*mvccpb.KeyValue) error {
	slices.SortFunc(kvs, func(a, b *mvccpb.KeyValue) int {
		return cmp.Or(cmp.Compare(a.CreateRevision, b.CreateRevision), bytes.Compare(a.Key, b.Key))
	})
	for len(kvs) > 0 {
		seq, head, clock := c.seq, c.head, c.clock
		var last audit.ChainRecord
		var faults []string
		ops := make([]clientv3.Op, 0, chainBatch+1)
		now, size, n := c.s.clock(), 0, 0
		for ; n < len(kvs) && len(ops) < chainBatch && size < chainBatchBytes; n++ {
			kv := kvs[n]
			key := strings.TrimPrefix(string(kv.Key), c.s.keys.audit(""))
			if !c.after(kv.CreateRevision, string(kv.Key)) {
				continue // already chained (a watch replaying the head's revision)
			}
			se := storedEntry(key, kv)
			e, fault := audit.Judge(&se, clock, now, c.cfg.MaxSkew)
			if fault == "" && e.Time.After(clock) {
				clock = e.Time
			}
			seq++
			var next []byte
			last, next = audit.Link(seq, key, kv.CreateRevision, kv.Value, head, clock, fault)
			val, err := json.Marshal(last)
			if err != nil {
				return err
			}
			ops = append(ops, clientv3.OpPut(c.s.keys.chain(seq), string(val)))
			size += len(val)
			head = next
			if fault != "" {
				faults = append(faults, audit.PrintableID(key)+": "+fault)
			}
		}
		kvs = kvs[n:]
		if len(ops) == 0 {
			continue
		}
		records := len(ops)
		if len(faults) > 0 {
			op, err := c.tamperOp(faults)
			if err != nil {
				return err
			}
			ops = append(ops, op)
		}
		resp, err := c.s.txn(ctx, func(ctx context.Context) (*clientv3.TxnResponse, error) {
			return c.s.kv.Txn(ctx).If(
				c.f.cmp(),
				clientv3.Compare(clientv3.CreateRevision(c.s.keys.chain(c.seq+1)), "=", 0),
			).Then(ops...).Commit()
		})
		if err != nil {
			return err
		}
		if !resp.Succeeded {
			return errors.New("chain head moved or leadership lost")
		}
		c.seq, c.head, c.lastRev, c.lastKey, c.clock = seq, head, last.Rev, last.Key, clock
		for _, f := range faults {
			c.s.log.Error("state: audit tampering: entry chained flagged", "what", f)
		}
		if len(faults) > 0 {
			c.cfg.Observer.Tampered(len(faults))
		}
		c.unsigned += records
		if c.unsigned >= c.cfg.CheckpointEvery {
			if err := c.checkpoint(ctx); err != nil {
				return err
			}
		}
	}
	return nil
}

func (c *chainer) maybeCheckpoint(ctx context.Context) error {
	if c.unsigned > 0 && c.s.clock().Sub(c.lastCP) >= c.cfg.CheckpointInterval {
		return c.checkpoint(ctx)
	}
	return nil
}

// checkpoint signs the chain head, when the chainer has a key, and
// anchors it outside etcd, when it has an anchor.
func (c *chainer) checkpoint(ctx context.Context) error {
	if c.cfg.Key == nil || c.seq == 0 {
		return nil
	}
	now := c.s.clock().UTC()
	cp := audit.Checkpoint{Seq: c.seq, Hash: hex.EncodeToString(c.head), Time: now}
	cp.Sign(c.cfg.Key)
	val, err := json.Marshal(cp)
	if err != nil {
		return err
	}
	key := c.s.keys.checkpoint(c.seq)
	resp, err := c.s.txn(ctx, func(ctx context.Context) (*clientv3.TxnResponse, error) {
		return c.s.kv.Txn(ctx).If(c.f.cmp()).Then(clientv3.OpPut(key, string(val))).Commit()
	})
	if err != nil {
		return err
	}
	if !resp.Succeeded {
		return errors.New("leadership lost")
	}
	c.unsigned, c.lastCP = 0, now
	if c.cfg.Anchor == nil {
		return nil
	}
	switch err := c.cfg.Anchor.Write(cp); {
	case errors.Is(err, audit.ErrAnchorMismatch):
		// The anchor signed another head at this seq: the chain was cut
		// and has grown again.
		c.cfg.Observer.Anchored(err)
		return c.report(ctx, []string{fmt.Sprintf("checkpoint #%d does not match the one anchored outside etcd: the log was rewritten (%v)", cp.Seq, err)})
	case err != nil:
		c.s.log.Error("state: audit checkpoint not anchored", "seq", cp.Seq, "err", err)
		c.cfg.Observer.Anchored(err)
	default:
		c.cfg.Observer.Anchored(nil)
	}
	return nil
}

// VerifyAudit walks the whole audit log, read at one revision, and
// checks it with audit.Verify: against its hash chain, against the
// checkpoints signed by pub (nil: checkpoint signatures are not checked
// against a trusted key, which the report warns of), and each entry
// against the rules the chainer judges it by. It returns an error only
// when it cannot read the log.
func (s *Store) VerifyAudit(ctx context.Context, pub ed25519.PublicKey, opts ...audit.VerifyOption) (*audit.Report, error) {
	now := s.clock()
	var rev int64
	read := func(dir string) ([]*mvccpb.KeyValue, error) {
		var out []*mvccpb.KeyValue
		from, end := s.keys.prefix+dir, clientv3.GetPrefixRangeEnd(s.keys.prefix+dir)
		for {
			gctx, cancel := context.WithTimeout(ctx, s.opTimeout)
			resp, err := s.kv.Get(gctx, from, clientv3.WithRange(end), clientv3.WithLimit(1000), clientv3.WithRev(rev))
			cancel()
			if err != nil {
				return nil, unavailable(ctx, err)
			}
			rev = resp.Header.Revision
			out = append(out, resp.Kvs...)
			if !resp.More || len(resp.Kvs) == 0 {
				return out, nil
			}
			from = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
		}
	}
	entryKVs, err := read(auditDir)
	if err != nil {
		return nil, err
	}
	chainKVs, err := read(chainDir)
	if err != nil {
		return nil, err
	}
	cpKVs, err := read(checkpointDir)
	if err != nil {
		return nil, err
	}
	log := &audit.Log{
		Entries:     make([]audit.StoredEntry, len(entryKVs)),
		Chain:       make([]audit.StoredRecord, len(chainKVs)),
		Checkpoints: make([]audit.StoredRecord, len(cpKVs)),
	}
	for i, kv := range entryKVs {
		log.Entries[i] = storedEntry(strings.TrimPrefix(string(kv.Key), s.keys.audit("")), kv)
	}
	for i, kv := range chainKVs {
		log.Chain[i] = storedRecord(kv, s.keys.prefix+chainDir, s.keys.chain)
	}
	for i, kv := range cpKVs {
		log.Checkpoints[i] = storedRecord(kv, s.keys.prefix+checkpointDir, s.keys.checkpoint)
	}
	rep := audit.Verify(log, pub, now, opts...)
	rep.Revision = rev
	return rep, nil
}

// storedEntry is the audit entry of id as etcd holds it, for audit.Judge.
func storedEntry(id string, kv *mvccpb.KeyValue) audit.StoredEntry {
	return audit.StoredEntry{ID: id, Value: kv.Value, CreateRevision: kv.CreateRevision, ModRevision: kv.ModRevision, Version: kv.Version}
}

// storedRecord is a chain record or checkpoint as etcd holds it, under
// dir, whose keys key makes: named by its key when that is key(seq).
func storedRecord(kv *mvccpb.KeyValue, dir string, key func(seq uint64) string) audit.StoredRecord {
	r := audit.StoredRecord{Key: string(kv.Key), Value: kv.Value}
	pos, err := strconv.ParseUint(strings.TrimPrefix(string(kv.Key), dir), 10, 64)
	if err == nil && string(kv.Key) == key(pos) {
		r.Seq, r.Named = pos, true
	}
	return r
}
