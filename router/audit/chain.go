package audit

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"time"
)

// The audit trail is tamper-evident: a hash chain over every entry, with
// signed checkpoints of its head.
//
// Entries are written unchained, in the transaction of the change they
// record; etcd's revision orders them: an entry's create revision, ties
// (one transaction writing several entries) broken by key. The chainer
// (router/state) follows new entries in that order and appends one
// chain record per entry:
//
//	audit-chain/<seq, 20 digits>  ChainRecord{seq, key, rev, entry_sha256, prev, time, tamper, hash}
//	v1: hash = SHA-256("classroute audit chain v1\x00" || seq || rev || len(key) || key || entry_sha256 || prev)
//	v2: hash = SHA-256("classroute audit chain v2\x00" || seq || rev || len(key) || key || entry_sha256 || prev
//	                   || time in Unix ns || len(tamper) || tamper)
//
// where entry_sha256 is the SHA-256 of the entry's exact stored bytes and
// prev the previous record's hash (32 zero bytes for seq 1). A record
// with neither time nor tamper (every record written before they were
// kept) is v1. The chainer signs the head with the daemon's ed25519 key
// now and then:
//
//	audit-checkpoint/<seq>  Checkpoint{seq, hash, time, public_key, signature}
//	signature = Ed25519(key, "classroute audit checkpoint v1\x00" || seq || hash || time in Unix ns)
//
// and, given an anchor (AnchorDir), keeps a copy of each checkpoint
// outside etcd, once etcd has committed it.
//
// Forged entries. Hashing what it finds would make the chainer vouch
// for an entry written straight into etcd by anyone with write access,
// dated whenever they like. So it first judges each entry against what
// every genuine entry is (Judge):
//
//   - written once, in one transaction: its key's create revision is its
//     mod revision (version 1), and its value is an Entry;
//   - under an id a daemon makes (IDs: <time, 16 hex>-<node, 8
//     hex>-<seq, 8+ hex>) whose time is the entry's Time to the
//     nanosecond;
//   - recording the revision its decision read, which is older than the
//     revision that wrote it: Revision < create revision;
//   - dated in order: no earlier than the chain's clock (the latest
//     Time of the genuine entries chained before it) less MaxSkew, and
//     no later than the chainer's own clock plus MaxSkew.
//
// MaxSkew (default DefaultMaxSkew) covers the clock difference between
// any two daemons plus the time an entry's write takes to commit (an
// entry is dated before its transaction is sent). The chain's clock
// only ever moves forward and only on genuine entries, so a run of
// forgeries cannot step it back a little at a time, and a forgery dated
// far ahead cannot push the genuine entries after it out of order.
//
// What a verifier holding the right public key can detect (Verify): an
// entry changed, deleted or rewritten (etcd's version of its key grows),
// an entry inserted among chained ones, an entry whose id, time,
// revision or place in the log disagree (above), chain records changed,
// removed or reordered, and a log cut short of its latest checkpoint,
// with forged or foreign checkpoints refused; with the checkpoints
// anchored outside etcd (VerifyAnchors), a log cut short, or cut and
// regrown, even when every checkpoint in etcd past the cut is gone too.
// What it cannot: an entry a forger with write access to etcd writes
// with an id, revision and time that pass the rules (a time within
// MaxSkew of the genuine entries about it) looks genuine, and so does
// one they delete and write again before it is chained while no chainer
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

// RecordHash is the hash r must hold, given its entry's SHA-256 and the
// previous record's hash: v1 for a record with neither time nor tamper,
// else v2.
func RecordHash(r *ChainRecord, entry, prev []byte) []byte {
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

// Link is the chain record that follows the record of hash prev (32 zero
// bytes for the first) at seq, for the entry whose exact stored bytes
// are entry, created at revision rev under id key, with the chain's
// clock after it and its fault ("" when judged genuine); and its hash,
// which is the next record's prev.
func Link(seq uint64, key string, rev int64, entry, prev []byte, clock time.Time, tamper string) (ChainRecord, []byte) {
	sum := sha256.Sum256(entry)
	r := ChainRecord{Seq: seq, Key: key, Rev: rev,
		EntrySHA256: hex.EncodeToString(sum[:]), Prev: hex.EncodeToString(prev), Time: clock.UTC(), Tamper: tamper}
	next := RecordHash(&r, sum[:], prev)
	r.Hash = hex.EncodeToString(next)
	return r, next
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

// Sign signs cp's seq, hash and time with key, and sets its public key
// and signature.
func (cp *Checkpoint) Sign(key ed25519.PrivateKey) {
	cp.PublicKey = key.Public().(ed25519.PublicKey)
	cp.Signature = ed25519.Sign(key, checkpointMessage(cp.Seq, mustHex(cp.Hash), cp.Time))
}

// VerifyCheckpoint reports whether cp is signed by pub (nil: by the key
// it names), and if not, why, to follow "checkpoint #N".
func VerifyCheckpoint(cp *Checkpoint, pub ed25519.PublicKey) (ok bool, why string) {
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

// DefaultMaxSkew is the default clock-skew allowance between daemons
// (the chainer's MaxSkew, VerifyMaxSkew).
const DefaultMaxSkew = 5 * time.Second

// StoredEntry is an entry as its store holds it: its id, its exact
// stored bytes, and etcd's account of its key: the revision that
// created it, the revision that last wrote it, and how many times it
// was written.
type StoredEntry struct {
	ID                                   string
	Value                                []byte
	CreateRevision, ModRevision, Version int64
}

// Judge is why an entry read from its store cannot be genuine ("" when
// it may be), and the entry. floor is the chain's clock before it
// (zero: none yet), ceil the clock it may not lead: the chainer's now,
// or for Verify the checkpoint that signed it. See "Forged entries"
// above.
func Judge(s *StoredEntry, floor, ceil time.Time, skew time.Duration) (Entry, string) {
	var e Entry
	if s.Version != 1 || s.ModRevision != s.CreateRevision {
		return e, fmt.Sprintf("rewritten after it was written (created at revision %d, version %d written at revision %d)",
			s.CreateRevision, s.Version, s.ModRevision)
	}
	idNanos, ok := IDNanos(s.ID)
	if !ok {
		return e, "its id is not one the daemons write (<time>-<node>-<seq>, in hex)"
	}
	if err := json.Unmarshal(s.Value, &e); err != nil {
		return e, fmt.Sprintf("unreadable: %v", err)
	}
	const layout = time.RFC3339Nano
	switch {
	case e.Time.UnixNano() != idNanos || e.Time.IsZero():
		return e, fmt.Sprintf("its id is dated %s but it says %s: not written as one", time.Unix(0, idNanos).UTC().Format(layout), e.Time.UTC().Format(layout))
	case e.Revision < 0 || e.Revision >= s.CreateRevision:
		return e, fmt.Sprintf("it says its decision read revision %d, yet revision %d wrote it: not written by the transaction its revision says", e.Revision, s.CreateRevision)
	case !floor.IsZero() && e.Time.Before(floor.Add(-skew)):
		return e, fmt.Sprintf("dated %s, %s before an entry chained before it (%s): back-dated beyond the %s clock-skew allowance",
			e.Time.UTC().Format(layout), floor.Sub(e.Time).Round(time.Millisecond), floor.UTC().Format(layout), skew)
	case e.Time.After(ceil.Add(skew)):
		return e, fmt.Sprintf("dated %s, %s after the chainer's clock (%s): from the future beyond the %s clock-skew allowance",
			e.Time.UTC().Format(layout), e.Time.Sub(ceil).Round(time.Millisecond), ceil.UTC().Format(layout), skew)
	}
	return e, ""
}
