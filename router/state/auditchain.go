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
//	audit-chain/<seq, 20 digits>  ChainRecord{seq, key, rev, entry_sha256, prev, hash}
//	hash = SHA-256("classroute audit chain v1\x00" || seq || rev || len(key) || key || entry_sha256 || prev)
//
// where entry_sha256 is the SHA-256 of the entry's exact stored bytes and
// prev the previous record's hash (32 zero bytes for seq 1). Every
// CheckpointEvery records or CheckpointInterval (when any record is new)
// it signs the head with the daemon's ed25519 key:
//
//	audit-checkpoint/<seq>  Checkpoint{seq, hash, time, public_key, signature}
//	signature = Ed25519(key, "classroute audit checkpoint v1\x00" || seq || hash || time in Unix ns)
//
// The chainer follows a watch, so an entry is chained within moments of
// its write, and at worst (no leader, a leader change) within the
// election's session TTL plus a catch-up read; a checkpoint covers it
// within CheckpointInterval of being chained. VerifyAudit reports
// entries newer than the chain head as not yet chained, not as
// tampering.
//
// What a verifier holding the right public key can detect: an entry
// changed, deleted or rewritten (etcd's version of its key grows), an
// entry inserted among chained ones, chain records changed, removed or
// reordered, and a log cut short of its latest checkpoint, with forged
// or foreign checkpoints refused. What it cannot: changes to entries not
// yet chained, and a cut that also removes every checkpoint past the
// cut (the records after the last surviving checkpoint). Pinning the
// latest checkpoint outside etcd (a copy of `classroutectl audit verify`
// output) closes the second.

// ChainRecord is one link of the audit hash chain.
type ChainRecord struct {
	Seq uint64 `json:"seq"`
	// Key is the entry's id under audit/.
	Key string `json:"key"`
	// Rev is the etcd revision that created the entry.
	Rev         int64  `json:"rev"`
	EntrySHA256 string `json:"entry_sha256"`
	Prev        string `json:"prev"`
	Hash        string `json:"hash"`
}

// Checkpoint is a signed chain head.
type Checkpoint struct {
	Seq       uint64    `json:"seq"`
	Hash      string    `json:"hash"`
	Time      time.Time `json:"time"`
	PublicKey []byte    `json:"public_key"`
	Signature []byte    `json:"signature"`
}

func chainHash(seq uint64, rev int64, key string, entry, prev []byte) []byte {
	h := sha256.New()
	h.Write([]byte("classroute audit chain v1\x00"))
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
}

func (c *AuditChainConfig) defaults() {
	if c.CheckpointEvery <= 0 {
		c.CheckpointEvery = 1000
	}
	if c.CheckpointInterval <= 0 {
		c.CheckpointInterval = 10 * time.Second
	}
}

// chainBatch is how many chain records one transaction writes (etcd
// refuses more than 128 operations by default).
const chainBatch = 100

// chainer is one term's follower of the audit trail.
type chainer struct {
	s   *Store
	f   fence
	cfg AuditChainConfig
	// The chain head: the last record's seq and hash, and the entry it
	// chained.
	seq     uint64
	head    []byte
	lastRev int64
	lastKey string
	// unsigned counts records past the last checkpoint.
	unsigned int
	lastCP   time.Time
}

// chainAudit chains the audit trail until ctx ends (leadership ends).
func (s *Store) chainAudit(ctx context.Context, f fence, cfg AuditChainConfig) {
	cfg.defaults()
	c := &chainer{s: s, f: f, cfg: cfg}
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := c.load(ctx)
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
		clientv3.OpGet(s.keys.prefix+chainDir, opts...),
		clientv3.OpGet(s.keys.prefix+checkpointDir, opts...),
	).Commit()
	if err != nil {
		return unavailable(ctx, err)
	}
	c.seq, c.head, c.lastRev, c.lastKey = 0, make([]byte, sha256.Size), 0, ""
	if kvs := resp.Responses[0].GetResponseRange().Kvs; len(kvs) > 0 {
		var r ChainRecord
		if err := json.Unmarshal(kvs[0].Value, &r); err != nil {
			return fmt.Errorf("chain head %s: %w", kvs[0].Key, err)
		}
		head, err := hex.DecodeString(r.Hash)
		if err != nil || len(head) != sha256.Size {
			return fmt.Errorf("chain head %s: bad hash", kvs[0].Key)
		}
		c.seq, c.head, c.lastRev, c.lastKey = r.Seq, head, r.Rev, r.Key
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
			for {
				if !ok {
					return errors.New("audit watch closed")
				}
				if err := wr.Err(); err != nil {
					return fmt.Errorf("audit watch: %w", err)
				}
				for _, ev := range wr.Events {
					if ev.IsCreate() {
						kvs = append(kvs, ev.Kv)
					} else {
						// Entries are written once: anything else is
						// tampering, which VerifyAudit reports.
						s.log.Warn("state: audit entry changed after it was written", "key", string(ev.Kv.Key), "type", ev.Type.String())
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
		}
	}
}

// catchUp chains every entry created after the head, read at one
// revision, and returns that revision.
func (c *chainer) catchUp(ctx context.Context) (int64, error) {
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

// after reports whether an entry created at rev with etcd key key comes
// after the chain head.
func (c *chainer) after(rev int64, key string) bool {
	return rev > c.lastRev || rev == c.lastRev && strings.TrimPrefix(key, c.s.keys.audit("")) > c.lastKey
}

// append chains kvs, in (create revision, key) order, in fenced
// transactions of chainBatch records.
func (c *chainer) append(ctx context.Context, kvs []*mvccpb.KeyValue) error {
	slices.SortFunc(kvs, func(a, b *mvccpb.KeyValue) int {
		return cmp.Or(cmp.Compare(a.CreateRevision, b.CreateRevision), bytes.Compare(a.Key, b.Key))
	})
	for len(kvs) > 0 {
		n := min(len(kvs), chainBatch)
		seq, head := c.seq, c.head
		var last ChainRecord
		ops := make([]clientv3.Op, 0, n)
		for _, kv := range kvs[:n] {
			key := strings.TrimPrefix(string(kv.Key), c.s.keys.audit(""))
			if !c.after(kv.CreateRevision, string(kv.Key)) {
				continue // already chained (a watch replaying the head's revision)
			}
			sum := sha256.Sum256(kv.Value)
			seq++
			next := chainHash(seq, kv.CreateRevision, key, sum[:], head)
			last = ChainRecord{Seq: seq, Key: key, Rev: kv.CreateRevision,
				EntrySHA256: hex.EncodeToString(sum[:]), Prev: hex.EncodeToString(head), Hash: hex.EncodeToString(next)}
			val, err := json.Marshal(last)
			if err != nil {
				return err
			}
			ops = append(ops, clientv3.OpPut(c.s.keys.chain(seq), string(val)))
			head = next
		}
		kvs = kvs[n:]
		if len(ops) == 0 {
			continue
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
		c.seq, c.head, c.lastRev, c.lastKey = seq, head, last.Rev, last.Key
		c.unsigned += len(ops)
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

// checkpoint signs the chain head, when the chainer has a key.
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

// VerifyAudit walks the whole audit log, read at one revision, and
// checks it against its hash chain and against the checkpoints signed by
// pub (nil: checkpoint signatures are not checked, which the report
// warns of). It returns an error only when it cannot read the log.
func (s *Store) VerifyAudit(ctx context.Context, pub ed25519.PublicKey) (*AuditReport, error) {
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

	// The chain, in key order. After a fault the walk resynchronises
	// on the record read, so that one fault is reported once.
	prev := make([]byte, sha256.Size)
	hashes := make(map[uint64][]byte, len(chainKVs))
	chained := make(map[string]bool, len(chainKVs))
	var seq uint64 // the position of the record read
	var lastRev int64
	var lastKey string
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
		switch e := entries[r.Key]; {
		case pos != want:
			bad(want, "", "entries and chain records #%d to #%d missing: deleted", want, pos-1)
		case r.Seq != pos:
			bad(pos, "", "chain record #%d holds record #%d (entry %s): chain records reordered", pos, r.Seq, r.Key)
		case !resync && r.Prev != hex.EncodeToString(prev):
			bad(pos, r.Key, "chain record #%d does not follow #%d: chain records replaced or reordered", pos, pos-1)
		case herr != nil || eerr != nil || !bytes.Equal(chainHash(r.Seq, r.Rev, r.Key, es, mustHex(r.Prev)), h):
			bad(pos, r.Key, "chain record #%d altered: its hash does not match its contents", pos)
		case r.Rev < lastRev || r.Rev == lastRev && r.Key <= lastKey:
			bad(pos, r.Key, "entry chained out of order (revision %d after %d)", r.Rev, lastRev)
		case e == nil:
			bad(pos, r.Key, "entry deleted")
		case !bytes.Equal(sha256Of(e.Value), es):
			bad(pos, r.Key, "entry altered: its contents do not match the chain")
		case e.CreateRevision != r.Rev || e.Version != 1:
			bad(pos, r.Key, "entry rewritten after it was chained (created at revision %d, version %d; chained at %d)", e.CreateRevision, e.Version, r.Rev)
		default:
			fault = false
		}
		resync = fault
		prev = h
		hashes[pos] = h
		chained[r.Key] = true
		lastRev, lastKey = max(lastRev, r.Rev), r.Key
	}
	rep.Chained = int(seq)

	// Entries not in the chain: newer than its head they are not yet
	// chained; older, they were slipped in.
	for _, kv := range entryKVs {
		key := strings.TrimPrefix(string(kv.Key), s.keys.audit(""))
		if chained[key] {
			continue
		}
		if kv.CreateRevision > lastRev || kv.CreateRevision == lastRev && key > lastKey {
			rep.Unchained++
			continue
		}
		bad(seq+1, key, "entry not in the chain though older than its head (created at revision %d): inserted", kv.CreateRevision)
	}

	// Checkpoints: each signed by pub, each matching the chain; the
	// latest bounds the chain's length.
	for _, kv := range cpKVs {
		var cp Checkpoint
		if err := json.Unmarshal(kv.Value, &cp); err != nil {
			bad(seq+1, "", "checkpoint %s unreadable: %v", kv.Key, err)
			continue
		}
		h, _ := hex.DecodeString(cp.Hash)
		switch {
		case pub != nil && !bytes.Equal(cp.PublicKey, pub):
			bad(cp.Seq, "", "checkpoint #%d signed by another key", cp.Seq)
			continue
		case len(cp.PublicKey) != ed25519.PublicKeySize || string(kv.Key) != s.keys.checkpoint(cp.Seq) ||
			!ed25519.Verify(cp.PublicKey, checkpointMessage(cp.Seq, h, cp.Time), cp.Signature):
			bad(cp.Seq, "", "checkpoint #%d: signature does not verify: forged", cp.Seq)
			continue
		case cp.Seq > seq:
			bad(seq+1, "", "log truncated: checkpoint #%d signs %d entries, the chain holds %d", cp.Seq, cp.Seq, seq)
		case !bytes.Equal(hashes[cp.Seq], h):
			bad(cp.Seq, "", "checkpoint #%d does not match chain record #%d", cp.Seq, cp.Seq)
		}
		rep.Checkpoint = &cp
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
