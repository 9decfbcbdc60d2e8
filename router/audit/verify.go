package audit

import (
	"bytes"
	"cmp"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Report is what Verify found.
type Report struct {
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
	Problems []Problem
	// Warnings are limits of the verification (no key, no checkpoint).
	Warnings []string
}

// OK reports whether the log verified.
func (r *Report) OK() bool { return len(r.Problems) == 0 }

// Problem is one fault found in the log.
type Problem struct {
	// Seq is the position in the chain where the fault is (1 is the
	// first entry).
	Seq uint64
	// Entry is the id of the entry at fault, when known ("" when the
	// entry is gone with its chain record).
	Entry string
	What  string
}

func (p Problem) String() string {
	if p.Entry == "" {
		return fmt.Sprintf("#%d: %s", p.Seq, p.What)
	}
	return fmt.Sprintf("#%d %s: %s", p.Seq, p.Entry, p.What)
}

// VerifyOption configures Verify.
type VerifyOption func(*verifyConfig)

type verifyConfig struct {
	skew    time.Duration
	anchors []Checkpoint
}

// VerifyMaxSkew sets the clock-skew allowance the entries' times are
// judged with (default DefaultMaxSkew): the chainer's MaxSkew.
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

// StoredRecord is a chain record or a checkpoint as its store holds it:
// its key, the seq that key names when it is the key of one (Named;
// false for a key that is not), and its stored bytes.
type StoredRecord struct {
	Key   string
	Seq   uint64
	Named bool
	Value []byte
}

// Log is the whole audit log as read from its store at one revision.
type Log struct {
	// Entries, Chain and Checkpoints are the audit entries, the chain
	// records and the checkpoints, each in key order.
	Entries     []StoredEntry
	Chain       []StoredRecord
	Checkpoints []StoredRecord
}

// Verify checks log against its hash chain, against the checkpoints
// signed by pub (nil: checkpoint signatures are not checked against a
// trusted key, which the report warns of), and each entry against the
// rules the chainer judges it by (Judge), with now the verifier's clock.
// The report's Revision is left for the caller, who read the log.
func Verify(log *Log, pub ed25519.PublicKey, now time.Time, opts ...VerifyOption) *Report {
	cfg := verifyConfig{skew: DefaultMaxSkew}
	for _, o := range opts {
		o(&cfg)
	}
	rep := &Report{Entries: len(log.Entries)}
	entries := make(map[string]*StoredEntry, len(log.Entries))
	for i := range log.Entries {
		entries[log.Entries[i].ID] = &log.Entries[i]
	}
	bad := func(seq uint64, entry, format string, args ...any) {
		rep.Problems = append(rep.Problems, Problem{Seq: seq, Entry: entry, What: fmt.Sprintf(format, args...)})
	}

	// The checkpoints, read first: an entry may not lead the time of the
	// checkpoint that signed it.
	var cps []Checkpoint
	var unreadable []string
	for _, kv := range log.Checkpoints {
		var cp Checkpoint
		if err := json.Unmarshal(kv.Value, &cp); err != nil {
			unreadable = append(unreadable, fmt.Sprintf("checkpoint %s unreadable: %v", kv.Key, err))
			continue
		}
		if !kv.Named || kv.Seq != cp.Seq {
			bad(cp.Seq, "", "checkpoint %s holds checkpoint #%d: forged", kv.Key, cp.Seq)
			continue
		}
		cps = append(cps, cp)
	}
	signed := make([]string, len(cps)) // "" when cps[i] verifies, else why not
	var times []Checkpoint             // the checkpoints that verify, by seq
	for i := range cps {
		var ok bool
		if ok, signed[i] = VerifyCheckpoint(&cps[i], pub); ok {
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
	hashes := make(map[uint64][]byte, len(log.Chain))
	chained := make(map[string]bool, len(log.Chain))
	var seq uint64 // the position of the record read
	var lastRev int64
	var lastKey string
	var clock time.Time // the chain's clock: see Judge
	resync := false
	for _, kv := range log.Chain {
		want := seq + 1
		var r ChainRecord
		if !kv.Named {
			bad(want, "", "unexpected key %s among the chain records", kv.Key)
			resync = true
			continue
		}
		pos := kv.Seq
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
		case herr != nil || eerr != nil || !bytes.Equal(RecordHash(&r, es, mustHex(r.Prev)), h):
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
			ae, why := Judge(e, clock, ceil(pos), cfg.skew)
			switch {
			case why != "":
				bad(pos, r.Key, "%s", why)
			case ae.Op == OpTamper:
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
	var tail []*StoredEntry
	for i := range log.Entries {
		kv := &log.Entries[i]
		if chained[kv.ID] {
			continue
		}
		if kv.CreateRevision > lastRev || kv.CreateRevision == lastRev && kv.ID > lastKey {
			rep.Unchained++
			tail = append(tail, kv)
			continue
		}
		bad(seq+1, kv.ID, "entry not in the chain though older than its head (created at revision %d): inserted", kv.CreateRevision)
	}
	slices.SortFunc(tail, func(a, b *StoredEntry) int {
		return cmp.Or(cmp.Compare(a.CreateRevision, b.CreateRevision), strings.Compare(a.ID, b.ID))
	})
	for _, kv := range tail {
		ae, why := Judge(kv, clock, now, cfg.skew)
		if why != "" {
			bad(seq+1, kv.ID, "%s (not yet chained)", why)
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
		if ok, why := VerifyCheckpoint(a, pub); !ok {
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
	slices.SortStableFunc(rep.Problems, func(a, b Problem) int { return cmp.Compare(a.Seq, b.Seq) })
	return rep
}
