package state

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/go-memdb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/classroute/classroute/router"
	"github.com/classroute/classroute/router/audit"
	"github.com/classroute/classroute/router/authz"
	"github.com/classroute/classroute/router/equiv"
	"github.com/classroute/classroute/router/marking"
)

// Equivalence entries are two-person data. The current version of each
// (from, to) pair is the record equivalences/<from>/<to>, cached like a
// region; every version applied is kept under
// equivalence-history/<from>/<to>/<version> (not cached), so that an
// entry's history can be shown. A change is a proposal under changes/
// (changes.go) carrying the whole entry at its next version; approval by
// a second administrator writes the entry and its history record in the
// transaction that marks the proposal applied, comparing that the pair
// is still the one proposed against. The cache builds the equiv.Table of
// the current versions whenever one changes (never per decision), and a
// change of any entry has the leading reconciler re-check every live
// placement (reconcile.go), as a change of a region's accreditation does
// for the placements there.

const (
	equivalencesDir   = "equivalences/"
	equivHistoryDir   = "equivalence-history/"
	equivSeededKey    = "seeded-equivalences"
	tableEquivalences = "equivalences"
)

func (k keys) equivalence(key equiv.Key) string {
	return k.prefix + equivalencesDir + string(key.From) + "/" + string(key.To)
}

func (k keys) equivHistory(key equiv.Key, version int) string {
	return fmt.Sprintf("%s%s%s/%s/%010d", k.prefix, equivHistoryDir, key.From, key.To, version)
}

func (k keys) equivHistoryOf(key equiv.Key) string {
	return k.prefix + equivHistoryDir + string(key.From) + "/" + string(key.To) + "/"
}

func (k keys) equivSeeded() string { return k.prefix + equivSeededKey }

// EquivalenceVersion is one version of an equivalence entry as applied:
// the entry, and the change that made it (none for the seeded defaults).
// Its json tags are the stored format of equivalences/ and
// equivalence-history/.
type EquivalenceVersion struct {
	equiv.Entry
	// Change is the id of the approved proposal (empty: seeded).
	Change     string    `json:"change,omitempty"`
	ProposedBy string    `json:"proposed_by,omitempty"`
	ApprovedBy string    `json:"approved_by,omitempty"`
	AppliedAt  time.Time `json:"applied_at,omitzero"`
	// Revision is the record's mod revision (not stored).
	Revision int64 `json:"-"`
}

// equivRecord is a cached entry: its key "FROM/TO" and current version.
type equivRecord struct {
	Key string
	V   *EquivalenceVersion
}

func equivalencesTableSchema() *memdb.TableSchema {
	return &memdb.TableSchema{
		Name: tableEquivalences,
		Indexes: map[string]*memdb.IndexSchema{
			indexID: {
				Name:    indexID,
				Unique:  true,
				Indexer: oneIndex[*equivRecord](func(r *equivRecord) string { return r.Key }),
			},
		},
	}
}

// equivID is the cache id of a pair: "FROM/TO".
func equivID(k equiv.Key) string { return string(k.From) + "/" + string(k.To) }

func equivTxn(tx *memdb.Txn, k equiv.Key) *equivRecord {
	raw, err := tx.First(tableEquivalences, indexID, equivID(k))
	if err != nil || raw == nil {
		return nil
	}
	return raw.(*equivRecord)
}

// buildEquivTxn builds the table of the cached entries.
func buildEquivTxn(tx *memdb.Txn) *equiv.Table {
	var es []equiv.Entry
	it, err := tx.Get(tableEquivalences, indexID)
	if err == nil {
		for raw := it.Next(); raw != nil; raw = it.Next() {
			es = append(es, raw.(*equivRecord).V.Entry)
		}
	}
	t, err := equiv.NewTable(es)
	if err != nil {
		panic(err) // one record per pair: the table's unique index
	}
	return &t
}

// decodeEquivalence reads an equivalences/ record; id is its "FROM/TO".
func decodeEquivalence(id string, val []byte, rev int64) (*equivRecord, error) {
	var v EquivalenceVersion
	if err := json.Unmarshal(val, &v); err != nil {
		return nil, err
	}
	if equivID(v.Key()) != id {
		return nil, fmt.Errorf("record names equivalence %s", v.Key())
	}
	// A record the API would refuse is never decided on.
	if err := v.Validate(marking.Parser{}); err != nil {
		return nil, err
	}
	v.Revision = rev
	return &equivRecord{Key: id, V: &v}, nil
}

// Equivalence returns the equivalence table in force: what every
// decision and re-check reads a label of one scheme into another with.
// It is built when the cached entries change, not per call.
func (s *Store) Equivalence() equiv.Table {
	if t := s.equivTable.Load(); t != nil {
		return *t
	}
	return equiv.Table{}
}

// ListEquivalences returns the current version of every entry, from the
// cache, ordered by pair.
func (s *Store) ListEquivalences() []*EquivalenceVersion {
	tx := s.db.Txn(false)
	defer tx.Abort()
	var out []*EquivalenceVersion
	it, err := tx.Get(tableEquivalences, indexID)
	if err != nil {
		return nil
	}
	for raw := it.Next(); raw != nil; raw = it.Next() {
		out = append(out, raw.(*equivRecord).V)
	}
	return out
}

// GetEquivalence returns the current version of the entry of a pair
// (from the cache) and every version applied, oldest first (from etcd).
func (s *Store) GetEquivalence(ctx context.Context, k equiv.Key) (*EquivalenceVersion, []*EquivalenceVersion, error) {
	if !k.From.Valid() || !k.To.Valid() {
		return nil, nil, fmt.Errorf("equivalence %s: %w", k, router.ErrNotFound)
	}
	tx := s.db.Txn(false)
	rec := equivTxn(tx, k)
	tx.Abort()
	if rec == nil {
		return nil, nil, fmt.Errorf("equivalence %s: %w", k, router.ErrNotFound)
	}
	gctx, cancel := context.WithTimeout(ctx, s.opTimeout)
	resp, err := s.kv.Get(gctx, s.keys.equivHistoryOf(k), clientv3.WithPrefix())
	cancel()
	if err != nil {
		return nil, nil, unavailable(ctx, err)
	}
	var hist []*EquivalenceVersion
	for _, kv := range resp.Kvs {
		var v EquivalenceVersion
		if err := json.Unmarshal(kv.Value, &v); err != nil {
			s.log.Error("state: unreadable equivalence history record", "key", string(kv.Key), "err", err)
			continue
		}
		v.Revision = kv.ModRevision
		hist = append(hist, &v)
	}
	return rec.V, hist, nil
}

// ProposeEquivalenceChange records a proposal to add, change or withdraw
// (e.Withdrawn) the entry of e's pair. e is the whole entry as it should
// be; its version is the pair's next (the current version + 1, or 1 for
// a new pair): 0 is read as that, any other is refused. The entry is
// validated (equiv.Entry.Validate) and must change something.
func (s *Store) ProposeEquivalenceChange(ctx context.Context, e *equiv.Entry, reason string) (*router.Change, error) {
	if e == nil {
		return nil, router.Violations{{Field: "equivalence", Description: "required"}}.Err()
	}
	if len(reason) > 1024 {
		return nil, router.Violations{{Field: "reason", Description: "at most 1024 bytes"}}.Err()
	}
	if !e.From.Valid() || !e.To.Valid() {
		// The pair names the record: checked before anything is read.
		return nil, equivInvalid(e.Validate(marking.Parser{}))
	}
	if err := s.Ready(); err != nil {
		return nil, err
	}
	var old *EquivalenceVersion
	var base int64
	tx := s.db.Txn(false)
	if rec := equivTxn(tx, e.Key()); rec != nil {
		old, base = rec.V, rec.V.Revision
	}
	tx.Abort()
	next := 1
	if old != nil {
		next = old.Version + 1
	}
	ne := *e
	switch ne.Version {
	case 0:
		ne.Version = next
	case next:
	default:
		return nil, router.Violations{{Field: "equivalence.version", Description: fmt.Sprintf("%d; the next version of %s is %d (or leave it out)", e.Version, e.Key(), next)}}.Err()
	}
	if err := ne.Validate(marking.Parser{}); err != nil {
		return nil, equivInvalid(err)
	}
	var oldEntry *equiv.Entry
	if old != nil {
		oldEntry = &old.Entry
	}
	if old == nil && ne.Withdrawn {
		return nil, router.Violations{{Field: "equivalence.withdrawn", Description: fmt.Sprintf("there is no entry %s to withdraw", ne.Key())}}.Err()
	}
	fields := router.EquivalenceChanges(oldEntry, &ne)
	if len(fields) == 0 {
		return nil, router.Violations{{Field: "equivalence", Description: fmt.Sprintf("changes nothing of %s v%d", ne.Key(), old.Version)}}.Err()
	}
	var id [8]byte
	_, _ = crand.Read(id[:])
	now := s.clock().UTC()
	c := &router.Change{
		ID:           fmt.Sprintf("%s-%s", now.Format("20060102T150405"), hex.EncodeToString(id[:])),
		Equivalence:  &ne,
		Kind:         router.ClassifyEquivalenceChange(marking.Parser{}, oldEntry, &ne),
		Fields:       fields,
		Reason:       reason,
		BaseRevision: base,
		ProposedBy:   authz.Actor(ctx),
		ProposedAt:   now,
		State:        router.ChangePending,
	}
	return s.putProposal(ctx, c)
}

// equivInvalid turns an entry's validation error into INVALID_ARGUMENT:
// the message names each field at fault ("levels[0].to: ...").
func equivInvalid(err error) error {
	if err == nil {
		return nil
	}
	return router.Violations{{Field: "equivalence", Description: err.Error()}}.Err()
}

// approveEquivalence applies a pending equivalence proposal c as done
// (see ApproveChange).
func (s *Store) approveEquivalence(ctx context.Context, c, done *router.Change) (*router.Change, error) {
	id, e := c.ID, c.Equivalence
	v := EquivalenceVersion{Entry: *e, Change: c.ID, ProposedBy: c.ProposedBy, ApprovedBy: done.DecidedBy, AppliedAt: done.DecidedAt}
	val, err := json.Marshal(&v)
	if err != nil {
		return nil, err
	}
	cval, err := json.Marshal(done)
	if err != nil {
		return nil, err
	}
	aop, err := s.auditOp(changeAudit(done, audit.OpChangeApproved, done.DecidedBy, done.DecidedAt, s.Revision()))
	if err != nil {
		return nil, err
	}
	key, hkey := s.keys.equivalence(e.Key()), s.keys.equivHistory(e.Key(), e.Version)
	resp, err := s.txn(ctx, func(ctx context.Context) (*clientv3.TxnResponse, error) {
		return s.kv.Txn(ctx).
			If(
				clientv3.Compare(clientv3.ModRevision(s.keys.change(id)), "=", c.Revision),
				clientv3.Compare(clientv3.ModRevision(key), "=", c.BaseRevision),
			).
			Then(
				clientv3.OpPut(key, string(val)),
				clientv3.OpPut(hkey, string(val)),
				clientv3.OpPut(s.keys.change(id), string(cval)),
				aop,
			).
			Else(clientv3.OpGet(s.keys.change(id)), clientv3.OpGet(key, clientv3.WithKeysOnly())).
			Commit()
	})
	if err != nil {
		return nil, fmt.Errorf("approve change %s: %w", id, err)
	}
	if resp.Succeeded {
		done.Revision = resp.Header.Revision
		return done, s.waitCommitted(ctx, resp.Header.Revision)
	}
	return nil, s.refusedApproval(ctx, c, resp, "equivalence "+e.Key().String(), nil)
}

// equivalenceAudit is what the audit entry of an equivalence change
// says of the entry.
func equivalenceAudit(e *equiv.Entry) string {
	var rows []string
	for _, m := range e.Levels {
		to := m.To
		if m.None {
			to = "none"
		}
		from := m.From
		if len(m.WithCaveats) > 0 {
			from += " with " + strings.Join(m.WithCaveats, ",")
		}
		rows = append(rows, from+"→"+to)
	}
	s := fmt.Sprintf("equivalence: %s v%d (%s): %s", e.Key(), e.Version, e.Agreement, strings.Join(rows, "; "))
	if !e.ValidFrom.IsZero() || !e.ValidUntil.IsZero() {
		s += fmt.Sprintf(", valid %s to %s", dateOrOpen(e.ValidFrom), dateOrOpen(e.ValidUntil))
	}
	if e.Withdrawn {
		s += ", withdrawn"
	}
	return s
}

func dateOrOpen(t time.Time) string {
	if t.IsZero() {
		return "open"
	}
	return t.UTC().Format(time.DateOnly)
}

// seedEquivalences writes entries, each as its pair's current version
// and first history record, unless equivalences were seeded before: the
// marker seeded-equivalences is created in the same transaction (create
// revision 0), so a later start never overwrites what operators changed.
// A pair that already has a record keeps it. It is apart from the
// catalogue's marker so that a store seeded before equivalences were
// stored gets the defaults once too.
func (s *Store) seedEquivalences(ctx context.Context, entries []equiv.Entry) (int64, error) {
	mval, err := json.Marshal(seedMarker{State: "complete"})
	if err != nil {
		return 0, err
	}
	ops := []clientv3.Op{clientv3.OpPut(s.keys.equivSeeded(), string(mval))}
	for i := range entries {
		e := &entries[i]
		if err := e.Validate(marking.Parser{}); err != nil {
			return 0, fmt.Errorf("seed equivalences: %w", err)
		}
		val, err := json.Marshal(&EquivalenceVersion{Entry: *e})
		if err != nil {
			return 0, err
		}
		key := s.keys.equivalence(e.Key())
		ops = append(ops, clientv3.OpTxn(
			[]clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(key), "=", 0)},
			[]clientv3.Op{clientv3.OpPut(key, string(val)), clientv3.OpPut(s.keys.equivHistory(e.Key(), e.Version), string(val))},
			nil))
	}
	if len(ops) > seedChunkOps {
		return 0, fmt.Errorf("seed equivalences: %d entries; at most %d", len(entries), seedChunkOps-1)
	}
	resp, err := s.txn(ctx, func(ctx context.Context) (*clientv3.TxnResponse, error) {
		return s.kv.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(s.keys.equivSeeded()), "=", 0)).Then(ops...).Commit()
	})
	if err != nil {
		return 0, fmt.Errorf("seed equivalences: %w", err)
	}
	if !resp.Succeeded {
		return 0, nil
	}
	return resp.Header.Revision, nil
}
