package state

import (
	"bytes"
	"cmp"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"hash"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// The audit trail is tamper-evident: a hash chain over every entry, with
// signed checkpoints of its head.
//
// Entries are written unchained, in the transaction of the change they
// record (place.go, reconcile.go, ...): keeping a chain head that every
// Place transaction compares and rewrites would serialise all placements
// of all daemons on one key. Instead etcd's revision orders the entries:
// an entry's create revision, ties (one transaction writing several
// entries) broken by key. The chainer, run by the elected reconciler
// leader and fenced like its other writes, follows new entries in that
// order and appends one chain record per entry:
//
//	audit-chain/<seq, 20 digits>  ChainRecord{seq, key, rev, entry_sha256, prev, time, tamper, hash}
//	v1: hash = SHA-256("classroute audit chain v1\x00" || seq || rev || len(key) || key || entry_sha256 || prev)
//	v2: hash = SHA-256("classroute audit chain v2\x00" || seq || rev || len(key) || key || entry_sha256 || prev
//	                   || time in Unix ns || len(tamper) || tamper)
//
// where entry_sha256 is the SHA-256 of the entry's exact stored bytes and
// prev the previous record's hash (32 zero bytes for seq 1). A record
// with neither time nor tamper (every record written before they were
// kept) is v1. Every CheckpointEvery records or CheckpointInterval (when
// any record is new) it signs the head with the daemon's ed25519 key:
//
//	audit-checkpoint/<seq>  Checkpoint{seq, hash, time, public_key, signature}
//	signature = Ed25519(key, "classroute audit checkpoint v1\x00" || seq || hash || time in Unix ns)
//
// and, given an anchor (classrouted --audit-checkpoint-dir), keeps a copy
// of each checkpoint outside etcd, once etcd has committed it.
//
// The chainer follows a watch, so an entry is chained within moments of
// its write, and at worst (no leader, a leader change) within the
// election's session TTL plus a catch-up read; a checkpoint covers it
// within CheckpointInterval of being chained. VerifyAudit reports
// entries newer than the chain head as not yet chained, not as
// tampering.
//
// Forged entries. Hashing what it finds would make the chainer vouch
// for an entry written straight into etcd by anyone with write access,
// dated whenever they like. So it first judges each entry against what
// every genuine entry is (judgeEntry):
//
//   - written once, in one transaction: its key's create revision is its
//     mod revision (version 1), and its value is an AuditEntry;
//   - under an id a daemon makes (auditIDs: <time, 16 hex>-<node, 8
//     hex>-<seq, 8+ hex>) whose time is the entry's Time to the
//     nanosecond;
//   - recording the revision its decision read, which is older than the
//     revision that wrote it: Revision < create revision;
//   - dated in order: no earlier than the chain's clock (the latest
//     Time of the genuine entries chained before it) less MaxSkew, and
//     no later than the chainer's own clock plus MaxSkew.
//
// MaxSkew (default 5s) covers the clock difference between any two
// daemons plus the time an entry's write takes to commit (an entry is
// dated before its transaction is sent). The chain's clock only ever
// moves forward and only on genuine entries, so a run of forgeries
// cannot step it back a little at a time, and a forgery dated far ahead
// cannot push the genuine entries after it out of order.
//
// An entry that fails is chained all the same, with its fault in the
// record's tamper field, and reported: logged at error, counted
// (AuditObserver.Tampered; classroute_audit_tampered_total), and
// written into the log itself as a "tamper" entry by the reconciler (in
// the transaction of its flagged records, so the report and the flag
// land together, and the report is chained after them like any entry).
// Refusing to chain it would halt the chain at the first forgery, which
// a forger could then use to leave every later genuine entry unsealed;
// skipping it would leave nothing in the chain to say it was seen.
// Flagged, it keeps its place, its bytes stay sealed as evidence, the
// chain moves on, and VerifyAudit reports it (and the tamper entry) as a
// problem for ever after. The chainer likewise reports an entry changed
// or deleted after it was written (its watch sees it), at the start of
// each term a chain shorter than or different from its newest anchored
// checkpoint, and a checkpoint it signs that differs from the one
// anchored at the same seq (the log was cut and has grown again).
//
// What a verifier holding the right public key can detect: an entry
// changed, deleted or rewritten (etcd's version of its key grows), an
// entry inserted among chained ones, an entry whose id, time, revision
// or place in the log disagree (above), chain records changed, removed
// or reordered, and a log cut short of its latest checkpoint, with
// forged or foreign checkpoints refused; with the checkpoints anchored
// outside etcd (VerifyAnchors), a log cut short, or cut and regrown,
// even when every checkpoint in etcd past the cut is gone too. What it
// cannot: an entry a forger with write access to etcd writes with an
// id, revision and time that pass the rules (a time within MaxSkew of
// the genuine entries about it) looks genuine, and so does one they
// delete and write again before it is chained while no chainer
// watches; an entry deleted before it was chained, while no chainer
// watched, leaves no trace; a cut past the newest checkpoint that
// reached the anchor is a log that merely ends early; and nothing holds
// once the signing key is known to the forger.

// ChainRecord is one link of the audit hash chain.
type ChainRecord struct {
	Seq uint64 `json:"seq"`
	// Key is the entry's id under audit/.
	Key string `json:"key"`
	// Rev is the etcd revision that created the entry.
	Rev         int64  `json:"rev"`
	EntrySHA256 string `json:"entry_sha256"`
	Prev        string `json:"prev"`
	// Time is the chain's clock after this record: the latest Time of
	// the genuine entries chained up to here. Zero before the first, and
	// in records written before it was kept.
	Time time.Time `json:"time,omitzero"`
	// Tamper, when set, is why the chainer judged the entry not genuine.
	Tamper string `json:"tamper,omitempty"`
	Hash   string `json:"hash"`
}

// Checkpoint is a signed chain head.
type Checkpoint struct {
	Seq       uint64    `json:"seq"`
	Hash      string    `json:"hash"`
	Time      time.Time `json:"time"`
	PublicKey []byte    `json:"public_key"`
	Signature []byte    `json:"signature"`
}

// chainHash is a v1 record's hash.
func chainHash(seq uint64, rev int64, key string, entry, prev []byte) []byte {
	return chainHasher("classroute audit chain v1\x00", seq, rev, key, entry, prev).Sum(nil)
}

func chainHasher(domain string, seq uint64, rev int64, key string, entry, prev []byte) hash.Hash {
	h := sha256.New()
	h.Write([]byte(domain))
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], seq)
	h.Write(n[:])
	binary.BigEndian.PutUint64(n[:], uint64(rev))
	h.Write(n[:])
	binary.BigEndian.PutUint64(n[:], uint64(len(key)))
	h.Write(n[:])
	h.Write([]byte(key))
	h.Write(entry)
	h.Write(prev)
	return h
}

// recordHash is the hash r must hold, given its entry's SHA-256 and the
// previous record's hash: v1 for a record with neither time nor tamper,
// else v2.
func recordHash(r *ChainRecord, entry, prev []byte) []byte {
	if r.Time.IsZero() && r.Tamper == "" {
		return chainHash(r.Seq, r.Rev, r.Key, entry, prev)
	}
	h := chainHasher("classroute audit chain v2\x00", r.Seq, r.Rev, r.Key, entry, prev)
	var n [8]byte
	if !r.Time.IsZero() {
		binary.BigEndian.PutUint64(n[:], uint64(r.Time.UnixNano()))
	}
	h.Write(n[:])
	binary.BigEndian.PutUint64(n[:], uint64(len(r.Tamper)))
	h.Write(n[:])
	h.Write([]byte(r.Tamper))
	return h.Sum(nil)
}

func sha256Of(b []byte) []byte {
	sum := sha256.Sum256(b)
	return sum[:]
}

func mustHex(s string) []byte {
	b, _ := hex.DecodeString(s)
	return b
}

func checkpointMessage(seq uint64, hash []byte, t time.Time) []byte {
	m := []byte("classroute audit checkpoint v1\x00")
	m = binary.BigEndian.AppendUint64(m, seq)
	m = append(m, hash...)
	return binary.BigEndian.AppendUint64(m, uint64(t.UnixNano()))
}

// verifyCheckpoint reports whether cp is signed by pub (nil: by the key
// it names), and if not, why, to follow "checkpoint #N".
func verifyCheckpoint(cp *Checkpoint, pub ed25519.PublicKey) (ok bool, why string) {
	h, err := hex.DecodeString(cp.Hash)
	switch {
	case pub != nil && !bytes.Equal(cp.PublicKey, pub):
		return false, " signed by another key"
	case err != nil || len(h) != sha256.Size || len(cp.PublicKey) != ed25519.PublicKeySize ||
		!ed25519.Verify(cp.PublicKey, checkpointMessage(cp.Seq, h, cp.Time), cp.Signature):
		return false, ": signature does not verify: forged"
	}
	return true, ""
}

// ParseAuditKey reads an ed25519 private key in PEM PKCS #8 (what
// `classroutectl audit keygen` and `openssl genpkey -algorithm ed25519`
// write).
func ParseAuditKey(pemBytes []byte) (ed25519.PrivateKey, error) {
	b, _ := pem.Decode(pemBytes)
	if b == nil || b.Type != "PRIVATE KEY" {
		return nil, errors.New("audit key: want a PEM PRIVATE KEY block (PKCS #8)")
	}
	k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("audit key: %w", err)
	}
	ek, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("audit key: %T, want ed25519", k)
	}
	return ek, nil
}

// ParseAuditPublicKey reads an ed25519 public key in PEM PKIX ("PUBLIC
// KEY", as `openssl pkey -pubout` writes).
func ParseAuditPublicKey(pemBytes []byte) (ed25519.PublicKey, error) {
	b, _ := pem.Decode(pemBytes)
	if b == nil || b.Type != "PUBLIC KEY" {
		return nil, errors.New("audit public key: want a PEM PUBLIC KEY block")
	}
	k, err := x509.ParsePKIXPublicKey(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("audit public key: %w", err)
	}
	ek, ok := k.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("audit public key: %T, want ed25519", k)
	}
	return ek, nil
}

// AuditTamper is the op of the reconciler's record of tampering it found
// in the log; its reasons say what ("<entry id>: why").
const AuditTamper = "tamper"

// DefaultAuditMaxSkew is the default clock-skew allowance between
// daemons (AuditChainConfig.MaxSkew, VerifyMaxSkew).
const DefaultAuditMaxSkew = 5 * time.Second

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
	// Write keeps cp, once; it fails with ErrAnchorMismatch when it
	// already holds another head at cp.Seq.
	Write(cp Checkpoint) error
	// Newest returns the checkpoint of highest seq kept (nil: none).
	Newest() (*Checkpoint, error)
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
	// lead the chainer's (default DefaultAuditMaxSkew): the largest
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
		c.MaxSkew = DefaultAuditMaxSkew
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

// judgeEntry is why an entry read from etcd cannot be genuine ("" when
// it may be), and the entry. id is its key under audit/; floor is the
// chain's clock before it (zero: none yet), ceil the clock it may not
// lead: the chainer's now, or for VerifyAudit the checkpoint that
// signed it. See "Forged entries" above.
func judgeEntry(id string, kv *mvccpb.KeyValue, floor, ceil time.Time, skew time.Duration) (AuditEntry, string) {
	var e AuditEntry
	if kv.Version != 1 || kv.ModRevision != kv.CreateRevision {
		return e, fmt.Sprintf("rewritten after it was written (created at revision %d, version %d written at revision %d)",
			kv.CreateRevision, kv.Version, kv.ModRevision)
	}
	idNanos, ok := auditIDNanos(id)
	if !ok {
		return e, "its id is not one the daemons write (<time>-<node>-<seq>, in hex)"
	}
	if err := json.Unmarshal(kv.Value, &e); err != nil {
		return e, fmt.Sprintf("unreadable: %v", err)
	}
	const layout = time.RFC3339Nano
	switch {
	case e.Time.UnixNano() != idNanos || e.Time.IsZero():
		return e, fmt.Sprintf("its id is dated %s but it says %s: not written as one", time.Unix(0, idNanos).UTC().Format(layout), e.Time.UTC().Format(layout))
	case e.Revision < 0 || e.Revision >= kv.CreateRevision:
		return e, fmt.Sprintf("it says its decision read revision %d, yet revision %d wrote it: not written by the transaction its revision says", e.Revision, kv.CreateRevision)
	case !floor.IsZero() && e.Time.Before(floor.Add(-skew)):
		return e, fmt.Sprintf("dated %s, %s before an entry chained before it (%s): back-dated beyond the %s clock-skew allowance",
			e.Time.UTC().Format(layout), floor.Sub(e.Time).Round(time.Millisecond), floor.UTC().Format(layout), skew)
	case e.Time.After(ceil.Add(skew)):
		return e, fmt.Sprintf("dated %s, %s after the chainer's clock (%s): from the future beyond the %s clock-skew allowance",
			e.Time.UTC().Format(layout), e.Time.Sub(ceil).Round(time.Millisecond), ceil.UTC().Format(layout), skew)
	}
	return e, ""
}

// auditIDNanos reads the time, in Unix ns, of an id auditIDs makes:
// <16 hex>-<8 hex>-<8 to 16 hex>.
func auditIDNanos(id string) (int64, bool) {
	ts, rest, ok1 := strings.Cut(id, "-")
	node, seq, ok2 := strings.Cut(rest, "-")
	if !ok1 || !ok2 || len(ts) != 16 || len(node) != 8 || len(seq) < 8 || len(seq) > 16 || !isLowerHex(ts+node+seq) {
		return 0, false
	}
	ns, err := strconv.ParseUint(ts, 16, 64)
	if err != nil || ns > math.MaxInt64 {
		return 0, false
	}
	return int64(ns), true
}

func isLowerHex(s string) bool {
	for _, c := range []byte(s) {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// entryName is an entry id fit for a log line or a tamper record: a
// forged one may be long or unprintable.
func entryName(id string) string {
	if len(id) <= 64 && strings.IndexFunc(id, func(r rune) bool { return r < '!' || r > '~' }) < 0 {
		return id
	}
	return fmt.Sprintf("%.64q", id)
}

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

// chainAudit chains the audit trail until ctx ends (leadership ends).
func (s *Store) chainAudit(ctx context.Context, f fence, cfg AuditChainConfig) {
	cfg.defaults()
	c := &chainer{s: s, f: f, cfg: cfg}
	backoff := 100 * time.Millisecond
	anchorChecked := false
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
		var r ChainRecord
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
			var e AuditEntry
			if len(gresp.Kvs) == 1 && json.Unmarshal(gresp.Kvs[0].Value, &e) == nil {
				c.clock = e.Time
			}
		}
	}
	c.unsigned, c.lastCP = int(c.seq), time.Time{}
	if kvs := resp.Responses[1].GetResponseRange().Kvs; len(kvs) > 0 {
		var cp Checkpoint
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
		var r ChainRecord
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
	return c.s.auditOp(AuditEntry{Op: AuditTamper, Actor: actorReconciler, Reasons: reasons, Revision: c.s.Revision()})
}

// follow chains what was written since the head, then follows a watch
// of the audit directory, checkpointing as it goes.
func (c *chainer) follow(ctx context.Context) error {
	s := c.s
	rev, err := c.catchUp(ctx)
	if err != nil {
		return err
	}
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
					name := entryName(strings.TrimPrefix(string(ev.Kv.Key), s.keys.audit("")))
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
		var last ChainRecord
		var faults []string
		ops := make([]clientv3.Op, 0, chainBatch+1)
		now, size, n := c.s.clock(), 0, 0
		for ; n < len(kvs) && len(ops) < chainBatch && size < chainBatchBytes; n++ {
			kv := kvs[n]
			key := strings.TrimPrefix(string(kv.Key), c.s.keys.audit(""))
			if !c.after(kv.CreateRevision, string(kv.Key)) {
				continue // already chained (a watch replaying the head's revision)
			}
			e, fault := judgeEntry(key, kv, clock, now, c.cfg.MaxSkew)
			if fault == "" && e.Time.After(clock) {
				clock = e.Time
			}
			sum := sha256.Sum256(kv.Value)
			seq++
			last = ChainRecord{Seq: seq, Key: key, Rev: kv.CreateRevision,
				EntrySHA256: hex.EncodeToString(sum[:]), Prev: hex.EncodeToString(head), Time: clock.UTC(), Tamper: fault}
			next := recordHash(&last, sum[:], head)
			last.Hash = hex.EncodeToString(next)
			val, err := json.Marshal(last)
			if err != nil {
				return err
			}
			ops = append(ops, clientv3.OpPut(c.s.keys.chain(seq), string(val)))
			size += len(val)
			head = next
			if fault != "" {
				faults = append(faults, entryName(key)+": "+fault)
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
	cp := Checkpoint{Seq: c.seq, Hash: hex.EncodeToString(c.head), Time: now,
		PublicKey: c.cfg.Key.Public().(ed25519.PublicKey),
		Signature: ed25519.Sign(c.cfg.Key, checkpointMessage(c.seq, c.head, now))}
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
	case errors.Is(err, ErrAnchorMismatch):
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

// AuditReport is what VerifyAudit found.
type AuditReport struct {
	// Revision is the etcd revision the log was read at.
	Revision int64
	// Entries, Chained and Unchained count the audit entries, the chain
	// records verified, and the entries newer than the chain head (not
	// yet chained: not a fault).
	Entries, Chained, Unchained int
	// Checkpoint is the latest checkpoint whose signature verified.
	Checkpoint *Checkpoint
	// Anchors counts the anchored checkpoints checked (VerifyAnchors).
	Anchors int
	// Problems are what is wrong, in log order: Problems[0] names the
	// first bad entry. None means the log verified.
	Problems []AuditProblem
	// Warnings are limits of the verification (no key, no checkpoint).
	Warnings []string
}

// OK reports whether the log verified.
func (r *AuditReport) OK() bool { return len(r.Problems) == 0 }

// AuditProblem is one fault found in the log.
type AuditProblem struct {
	// Seq is the position in the chain where the fault is (1 is the
	// first entry).
	Seq uint64
	// Entry is the id of the entry at fault, when known ("" when the
	// entry is gone with its chain record).
	Entry string
	What  string
}

func (p AuditProblem) String() string {
	if p.Entry == "" {
		return fmt.Sprintf("#%d: %s", p.Seq, p.What)
	}
	return fmt.Sprintf("#%d %s: %s", p.Seq, p.Entry, p.What)
}

// VerifyOption configures VerifyAudit.
type VerifyOption func(*verifyConfig)

type verifyConfig struct {
	skew    time.Duration
	anchors []Checkpoint
}

// VerifyMaxSkew sets the clock-skew allowance the entries' times are
// judged with (default DefaultAuditMaxSkew): the chainer's MaxSkew.
func VerifyMaxSkew(d time.Duration) VerifyOption {
	return func(c *verifyConfig) {
		if d > 0 {
			c.skew = d
		}
	}
}

// VerifyAnchors checks the log against checkpoints kept outside etcd
// (AnchorDir.Read): each must be signed by the verifying key, and the
// chain must hold its head at its seq, so that a log cut short is found
// even when every checkpoint past the cut is gone from etcd too.
func VerifyAnchors(cps []Checkpoint) VerifyOption {
	return func(c *verifyConfig) { c.anchors = cps }
}

// VerifyAudit walks the whole audit log, read at one revision, and
// checks it against its hash chain, against the checkpoints signed by
// pub (nil: checkpoint signatures are not checked against a trusted key,
// which the report warns of), and each entry against the rules the
// chainer judges it by. It returns an error only when it cannot read the
// log.
func (s *Store) VerifyAudit(ctx context.Context, pub ed25519.PublicKey, opts ...VerifyOption) (*AuditReport, error) {
	cfg := verifyConfig{skew: DefaultAuditMaxSkew}
	for _, o := range opts {
		o(&cfg)
	}
	now := s.clock()
	rep := &AuditReport{}
	read := func(dir string) ([]*mvccpb.KeyValue, error) {
		var out []*mvccpb.KeyValue
		from, end := s.keys.prefix+dir, clientv3.GetPrefixRangeEnd(s.keys.prefix+dir)
		for {
			gctx, cancel := context.WithTimeout(ctx, s.opTimeout)
			resp, err := s.kv.Get(gctx, from, clientv3.WithRange(end), clientv3.WithLimit(1000), clientv3.WithRev(rep.Revision))
			cancel()
			if err != nil {
				return nil, unavailable(ctx, err)
			}
			rep.Revision = resp.Header.Revision
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
	rep.Entries = len(entryKVs)
	entries := make(map[string]*mvccpb.KeyValue, len(entryKVs))
	for _, kv := range entryKVs {
		entries[strings.TrimPrefix(string(kv.Key), s.keys.audit(""))] = kv
	}
	bad := func(seq uint64, entry, format string, args ...any) {
		rep.Problems = append(rep.Problems, AuditProblem{Seq: seq, Entry: entry, What: fmt.Sprintf(format, args...)})
	}

	// The checkpoints, read first: an entry may not lead the time of the
	// checkpoint that signed it.
	var cps []Checkpoint
	var unreadable []string
	for _, kv := range cpKVs {
		var cp Checkpoint
		if err := json.Unmarshal(kv.Value, &cp); err != nil {
			unreadable = append(unreadable, fmt.Sprintf("checkpoint %s unreadable: %v", kv.Key, err))
			continue
		}
		if string(kv.Key) != s.keys.checkpoint(cp.Seq) {
			bad(cp.Seq, "", "checkpoint %s holds checkpoint #%d: forged", kv.Key, cp.Seq)
			continue
		}
		cps = append(cps, cp)
	}
	signed := make([]string, len(cps)) // "" when cps[i] verifies, else why not
	var times []Checkpoint             // the checkpoints that verify, by seq
	for i := range cps {
		var ok bool
		if ok, signed[i] = verifyCheckpoint(&cps[i], pub); ok {
			times = append(times, cps[i])
		}
	}
	ceil := func(seq uint64) time.Time {
		i, _ := slices.BinarySearchFunc(times, seq, func(cp Checkpoint, seq uint64) int { return cmp.Compare(cp.Seq, seq) })
		if i < len(times) {
			return times[i].Time
		}
		return now
	}

	// The chain, in key order. After a fault the walk resynchronises
	// on the record read, so that one fault is reported once.
	prev := make([]byte, sha256.Size)
	hashes := make(map[uint64][]byte, len(chainKVs))
	chained := make(map[string]bool, len(chainKVs))
	var seq uint64 // the position of the record read
	var lastRev int64
	var lastKey string
	var clock time.Time // the chain's clock: see judgeEntry
	resync := false
	for _, kv := range chainKVs {
		want := seq + 1
		var r ChainRecord
		pos, perr := strconv.ParseUint(strings.TrimPrefix(string(kv.Key), s.keys.prefix+chainDir), 10, 64)
		if perr != nil || string(kv.Key) != s.keys.chain(pos) {
			bad(want, "", "unexpected key %s among the chain records", kv.Key)
			resync = true
			continue
		}
		seq = pos
		if err := json.Unmarshal(kv.Value, &r); err != nil {
			bad(pos, "", "chain record #%d unreadable: %v", pos, err)
			resync = true
			continue
		}
		h, herr := hex.DecodeString(r.Hash)
		es, eerr := hex.DecodeString(r.EntrySHA256)
		fault := true
		e := entries[r.Key]
		switch {
		case pos != want:
			bad(want, "", "entries and chain records #%d to #%d missing: deleted", want, pos-1)
		case r.Seq != pos:
			bad(pos, "", "chain record #%d holds record #%d (entry %s): chain records reordered", pos, r.Seq, r.Key)
		case !resync && r.Prev != hex.EncodeToString(prev):
			bad(pos, r.Key, "chain record #%d does not follow #%d: chain records replaced or reordered", pos, pos-1)
		case herr != nil || eerr != nil || !bytes.Equal(recordHash(&r, es, mustHex(r.Prev)), h):
			bad(pos, r.Key, "chain record #%d altered: its hash does not match its contents", pos)
		case r.Rev < lastRev || r.Rev == lastRev && r.Key <= lastKey:
			bad(pos, r.Key, "entry chained out of order (revision %d after %d)", r.Rev, lastRev)
		case e == nil:
			bad(pos, r.Key, "entry deleted")
		case !bytes.Equal(sha256Of(e.Value), es):
			bad(pos, r.Key, "entry altered: its contents do not match the chain")
		case r.Tamper != "":
			bad(pos, r.Key, "%s (flagged by the chainer)", r.Tamper)
		case e.CreateRevision != r.Rev || e.Version != 1:
			bad(pos, r.Key, "entry rewritten after it was chained (created at revision %d, version %d; chained at %d)", e.CreateRevision, e.Version, r.Rev)
		default:
			fault = false
			// The chain holds the entry as written: is it genuine?
			ae, why := judgeEntry(r.Key, e, clock, ceil(pos), cfg.skew)
			switch {
			case why != "":
				bad(pos, r.Key, "%s", why)
			case ae.Op == AuditTamper:
				bad(pos, r.Key, "the chainer found tampering: %s", strings.Join(ae.Reasons, "; "))
			}
			if why == "" && ae.Time.After(clock) {
				clock = ae.Time
			}
		}
		resync = fault
		prev = h
		hashes[pos] = h
		chained[r.Key] = true
		lastRev, lastKey = max(lastRev, r.Rev), r.Key
	}
	rep.Chained = int(seq)

	// Entries not in the chain: newer than its head they are not yet
	// chained, and judged as the chainer will; older, they were slipped
	// in.
	var tail []*mvccpb.KeyValue
	for _, kv := range entryKVs {
		key := strings.TrimPrefix(string(kv.Key), s.keys.audit(""))
		if chained[key] {
			continue
		}
		if kv.CreateRevision > lastRev || kv.CreateRevision == lastRev && key > lastKey {
			rep.Unchained++
			tail = append(tail, kv)
			continue
		}
		bad(seq+1, key, "entry not in the chain though older than its head (created at revision %d): inserted", kv.CreateRevision)
	}
	slices.SortFunc(tail, func(a, b *mvccpb.KeyValue) int {
		return cmp.Or(cmp.Compare(a.CreateRevision, b.CreateRevision), bytes.Compare(a.Key, b.Key))
	})
	for _, kv := range tail {
		key := strings.TrimPrefix(string(kv.Key), s.keys.audit(""))
		ae, why := judgeEntry(key, kv, clock, now, cfg.skew)
		if why != "" {
			bad(seq+1, key, "%s (not yet chained)", why)
			continue
		}
		if ae.Time.After(clock) {
			clock = ae.Time
		}
	}

	// Checkpoints: each signed by pub, each matching the chain; the
	// latest bounds the chain's length.
	for _, u := range unreadable {
		bad(seq+1, "", "%s", u)
	}
	for i := range cps {
		cp := &cps[i]
		if why := signed[i]; why != "" {
			bad(cp.Seq, "", "checkpoint #%d%s", cp.Seq, why)
			continue
		}
		switch {
		case cp.Seq > seq:
			bad(seq+1, "", "log truncated: checkpoint #%d signs %d entries, the chain holds %d", cp.Seq, cp.Seq, seq)
		case !bytes.Equal(hashes[cp.Seq], mustHex(cp.Hash)):
			bad(cp.Seq, "", "checkpoint #%d does not match chain record #%d", cp.Seq, cp.Seq)
		}
		rep.Checkpoint = cp
	}

	// Anchors: each signed by pub, each held by the chain and by etcd's
	// checkpoints.
	inEtcd := make(map[uint64]string, len(cps))
	for _, cp := range cps {
		inEtcd[cp.Seq] = cp.Hash
	}
	for i := range cfg.anchors {
		a := &cfg.anchors[i]
		rep.Anchors++
		if ok, why := verifyCheckpoint(a, pub); !ok {
			bad(a.Seq, "", "checkpoint #%d anchored outside etcd%s", a.Seq, why)
			continue
		}
		h, ok := inEtcd[a.Seq]
		switch {
		case a.Seq > seq:
			bad(seq+1, "", "log truncated: checkpoint #%d anchored outside etcd signs %d entries, the chain holds %d", a.Seq, a.Seq, seq)
		case !bytes.Equal(hashes[a.Seq], mustHex(a.Hash)):
			bad(a.Seq, "", "chain record #%d does not match the checkpoint anchored outside etcd: the log was rewritten", a.Seq)
		case !ok:
			bad(a.Seq, "", "checkpoint #%d anchored outside etcd is missing from etcd: deleted", a.Seq)
		case h != a.Hash:
			bad(a.Seq, "", "checkpoint #%d in etcd does not match its anchor", a.Seq)
		}
	}
	if pub == nil {
		rep.Warnings = append(rep.Warnings, "no public key given: checkpoint signatures are not checked against a trusted key")
	}
	if rep.Checkpoint == nil && seq > 0 {
		rep.Warnings = append(rep.Warnings, "no signed checkpoint: a log cut short cannot be detected")
	}
	slices.SortStableFunc(rep.Problems, func(a, b AuditProblem) int { return cmp.Compare(a.Seq, b.Seq) })
	return rep, nil
}
