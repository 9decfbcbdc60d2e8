package state

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/classroute/classroute/router"
	"github.com/classroute/classroute/router/audit"
	"github.com/classroute/classroute/router/authz"
)

// Two-person region changes (see router.SecurityChanges), and, through
// the same proposals, equivalence changes (equivalence.go) and edge and
// service changes (flows.go). A proposal is
// a record under changes/<id> holding the whole proposed region and the
// mod revision of the region it would replace. Approval by a different
// principal writes the region in the same transaction that marks the
// proposal applied and appends the audit entry, comparing that the
// region is still the one proposed against: a proposal never overwrites
// a change made after it. Lowering or revoking an accreditation then
// re-routes through the reconciler like any other region change.

const changesDir = "changes/"

func (k keys) change(id string) string { return k.prefix + changesDir + id }

// ProposeRegionChange records a proposal to add r or to replace the
// region of r's key with it. It must change something that needs two
// people (router.SecurityChanges); an operational change is applied
// with PutRegion instead.
//
// With IfRevision, the proposal is of the region as the proposer read it:
// if the region changed since (or was created or deleted), it is
// router.ErrEtagMismatch, before anyone is asked to approve it.
func (s *Store) ProposeRegionChange(ctx context.Context, r *router.Region, reason string, opts ...WriteOption) (*router.Change, error) {
	if err := validateRegion(r); err != nil {
		return nil, err
	}
	if len(reason) > 1024 {
		return nil, router.Violations{{Field: "reason", Description: "at most 1024 bytes"}}.Err()
	}
	if err := s.Ready(); err != nil {
		return nil, err
	}
	o := writeOptions(opts)
	if err := s.awaitCondition(ctx, o); err != nil {
		return nil, err
	}
	var old *router.Region
	var base int64
	tx := s.db.Txn(false)
	if rec := regionTxn(tx, r.Key()); rec != nil {
		old, base = rec.Region, rec.Rev
	}
	prov := providerTxn(tx, r.Provider)
	tx.Abort()
	if err := o.mismatch("region "+r.Key(), base); err != nil {
		return nil, err
	}
	if prov == nil {
		return nil, router.Violations{{Field: "region.provider", Description: fmt.Sprintf("unknown provider %q: put the provider first", r.Provider)}}.Err()
	}
	fields := router.SecurityChanges(old, r)
	if len(fields) == 0 {
		return nil, router.Violations{{Field: "region", Description: "changes nothing that needs a second administrator; put it directly"}}.Err()
	}
	var id [8]byte
	_, _ = crand.Read(id[:])
	now := s.clock().UTC()
	c := &router.Change{
		ID:           fmt.Sprintf("%s-%s", now.Format("20060102T150405"), hex.EncodeToString(id[:])),
		Region:       *r,
		Kind:         router.ClassifyChange(old, r),
		Fields:       fields,
		Reason:       reason,
		BaseRevision: base,
		ProposedBy:   authz.Actor(ctx),
		ProposedAt:   now,
		State:        router.ChangePending,
	}
	return s.putProposal(ctx, c)
}

// putProposal stores a new proposal and its audit entry.
func (s *Store) putProposal(ctx context.Context, c *router.Change) (*router.Change, error) {
	cval, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	aop, err := s.auditOp(changeAudit(c, audit.OpChangeProposed, c.ProposedBy, c.ProposedAt, s.Revision()))
	if err != nil {
		return nil, err
	}
	resp, err := s.txn(ctx, func(ctx context.Context) (*clientv3.TxnResponse, error) {
		return s.kv.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(s.keys.change(c.ID)), "=", 0)).
			Then(clientv3.OpPut(s.keys.change(c.ID), string(cval)), aop).Commit()
	})
	if err != nil {
		return nil, fmt.Errorf("propose change of %s: %w", c.Subject(), err)
	}
	if !resp.Succeeded {
		return nil, fmt.Errorf("propose change of %s: %w: id collision", c.Subject(), router.ErrConflict)
	}
	c.Revision = resp.Header.Revision
	return c, nil
}

// ApproveChange applies a pending proposal, of a region or of an
// equivalence entry. The approver (the caller's principal) must not be
// its proposer. It fails with router.ErrChangeNotPending when the
// proposal was decided already, or when its region (or equivalence
// entry) changed since it was proposed (it is then marked rejected as
// superseded: propose again).
func (s *Store) ApproveChange(ctx context.Context, id string) (*router.Change, error) {
	c, err := s.GetChange(ctx, id)
	if err != nil {
		return nil, err
	}
	if c.State != router.ChangePending {
		return nil, fmt.Errorf("change %s is %s: %w", id, c.State, router.ErrChangeNotPending)
	}
	who := authz.Actor(ctx)
	// Two people: compared by who they are (kind, tenant, name, region),
	// never by how an ID is spelled. A proposer recorded in a form that
	// cannot be read back cannot be told apart from the approver.
	proposer, err := authz.ParseActor(c.ProposedBy)
	if err != nil {
		return nil, fmt.Errorf("change %s: its proposer cannot be compared with the approver (%v); reject it and propose again: %w", id, err, router.ErrPermissionDenied)
	}
	if authz.FromContext(ctx).Same(proposer) {
		return nil, fmt.Errorf("change %s: its proposer %s may not approve it; a second administrator must: %w", id, who, router.ErrPermissionDenied)
	}
	now := s.clock().UTC()
	done := *c
	done.State, done.DecidedBy, done.DecidedAt = router.ChangeApplied, who, now
	if c.Equivalence != nil {
		return s.approveEquivalence(ctx, c, &done)
	}
	if c.Edge != nil || c.Service != nil {
		return s.approveFlow(ctx, c, &done)
	}
	cval, err := json.Marshal(&done)
	if err != nil {
		return nil, err
	}
	r := &c.Region
	val, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	zero, err := json.Marshal(usageValue{})
	if err != nil {
		return nil, err
	}
	aop, err := s.auditOp(changeAudit(&done, audit.OpChangeApproved, who, now, s.Revision()))
	if err != nil {
		return nil, err
	}
	key, ukey, pkey := s.keys.region(r.Key()), s.keys.usage(r.Key()), s.keys.provider(r.Provider)
	resp, err := s.txn(ctx, func(ctx context.Context) (*clientv3.TxnResponse, error) {
		return s.kv.Txn(ctx).
			If(
				clientv3.Compare(clientv3.ModRevision(s.keys.change(id)), "=", c.Revision),
				clientv3.Compare(clientv3.ModRevision(key), "=", c.BaseRevision),
				clientv3.Compare(clientv3.CreateRevision(pkey), ">", 0),
			).
			Then(
				clientv3.OpPut(key, string(val)),
				clientv3.OpTxn(
					[]clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(ukey), "=", 0)},
					[]clientv3.Op{clientv3.OpPut(ukey, string(zero))},
					nil),
				clientv3.OpPut(s.keys.change(id), string(cval)),
				aop,
			).
			Else(clientv3.OpGet(s.keys.change(id)), clientv3.OpGet(key, clientv3.WithKeysOnly()), clientv3.OpGet(pkey, clientv3.WithKeysOnly())).
			Commit()
	})
	if err != nil {
		return nil, fmt.Errorf("approve change %s: %w", id, err)
	}
	if resp.Succeeded {
		done.Revision = resp.Header.Revision
		return &done, s.waitCommitted(ctx, resp.Header.Revision)
	}
	// Why not: decided meanwhile, the provider is gone, or the region changed.
	return nil, s.refusedApproval(ctx, c, resp, "region "+r.Key(), func() error {
		if kvs := resp.Responses[2].GetResponseRange().GetKvs(); len(kvs) == 0 {
			return router.Violations{{Field: "region.provider", Description: fmt.Sprintf("unknown provider %q: put the provider first", r.Provider)}}.Err()
		}
		return nil
	})
}

// refusedApproval says why an approval's transaction did not apply,
// from its Else reads (the change's record, then its subject's): the
// change was decided meanwhile; or check's error (nil: none); or its
// subject changed since the proposal, and the proposal is recorded
// rejected as superseded.
func (s *Store) refusedApproval(ctx context.Context, c *router.Change, resp *clientv3.TxnResponse, subject string, check func() error) error {
	if kvs := resp.Responses[0].GetResponseRange().GetKvs(); len(kvs) == 0 || kvs[0].ModRevision != c.Revision {
		return fmt.Errorf("change %s was decided meanwhile: %w", c.ID, router.ErrChangeNotPending)
	}
	if check != nil {
		if err := check(); err != nil {
			return err
		}
	}
	var cur int64
	if kvs := resp.Responses[1].GetResponseRange().GetKvs(); len(kvs) > 0 {
		cur = kvs[0].ModRevision
	}
	note := fmt.Sprintf("superseded: %s changed since the proposal (revision %d, now %d); propose again", subject, c.BaseRevision, cur)
	if _, err := s.decideChange(ctx, c, router.ChangeRejected, "system", note); err != nil {
		return err
	}
	return fmt.Errorf("change %s %s: %w", c.ID, note, router.ErrChangeNotPending)
}

// RejectChange rejects a pending proposal: any catalogue administrator,
// its proposer too (a withdrawal).
func (s *Store) RejectChange(ctx context.Context, id, note string) (*router.Change, error) {
	if len(note) > 1024 {
		return nil, router.Violations{{Field: "note", Description: "at most 1024 bytes"}}.Err()
	}
	c, err := s.GetChange(ctx, id)
	if err != nil {
		return nil, err
	}
	if c.State != router.ChangePending {
		return nil, fmt.Errorf("change %s is %s: %w", id, c.State, router.ErrChangeNotPending)
	}
	return s.decideChange(ctx, c, router.ChangeRejected, authz.Actor(ctx), note)
}

// decideChange marks a pending change decided without applying it.
func (s *Store) decideChange(ctx context.Context, c *router.Change, state, who, note string) (*router.Change, error) {
	now := s.clock().UTC()
	done := *c
	done.State, done.DecidedBy, done.DecidedAt, done.Note = state, who, now, note
	cval, err := json.Marshal(&done)
	if err != nil {
		return nil, err
	}
	aop, err := s.auditOp(changeAudit(&done, audit.OpChangeRejected, who, now, s.Revision()))
	if err != nil {
		return nil, err
	}
	resp, err := s.txn(ctx, func(ctx context.Context) (*clientv3.TxnResponse, error) {
		return s.kv.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(s.keys.change(c.ID)), "=", c.Revision)).
			Then(clientv3.OpPut(s.keys.change(c.ID), string(cval)), aop).Commit()
	})
	if err != nil {
		return nil, fmt.Errorf("decide change %s: %w", c.ID, err)
	}
	if !resp.Succeeded {
		return nil, fmt.Errorf("change %s was decided meanwhile: %w", c.ID, router.ErrChangeNotPending)
	}
	done.Revision = resp.Header.Revision
	return &done, nil
}

// GetChange reads a proposal from etcd.
func (s *Store) GetChange(ctx context.Context, id string) (*router.Change, error) {
	if !validKeyPart(id) {
		return nil, fmt.Errorf("change %q: %w", id, router.ErrNotFound)
	}
	gctx, cancel := context.WithTimeout(ctx, s.opTimeout)
	resp, err := s.kv.Get(gctx, s.keys.change(id))
	cancel()
	if err != nil {
		return nil, unavailable(ctx, err)
	}
	if len(resp.Kvs) == 0 {
		return nil, fmt.Errorf("change %q: %w", id, router.ErrNotFound)
	}
	return decodeChange(resp.Kvs[0].Value, resp.Kvs[0].ModRevision)
}

// ListChanges reads the proposals, newest first; state filters them
// when not empty.
func (s *Store) ListChanges(ctx context.Context, state string, limit int) ([]*router.Change, error) {
	if limit <= 0 || limit > 1000 {
		limit = 1000
	}
	gctx, cancel := context.WithTimeout(ctx, s.opTimeout)
	resp, err := s.kv.Get(gctx, s.keys.change(""), clientv3.WithPrefix())
	cancel()
	if err != nil {
		return nil, unavailable(ctx, err)
	}
	var out []*router.Change
	for _, kv := range resp.Kvs {
		c, err := decodeChange(kv.Value, kv.ModRevision)
		if err != nil {
			s.log.Error("state: unreadable change record", "key", string(kv.Key), "err", err)
			continue
		}
		if state == "" || c.State == state {
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(a, b *router.Change) int { return strings.Compare(b.ID, a.ID) })
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

func decodeChange(val []byte, rev int64) (*router.Change, error) {
	var c router.Change
	if err := json.Unmarshal(val, &c); err != nil {
		return nil, err
	}
	c.Revision = rev
	return &c, nil
}

func changeAudit(c *router.Change, op, who string, now time.Time, rev int64) audit.Entry {
	reasons := []string{"kind: " + string(c.Kind), "fields: " + strings.Join(c.Fields, ", "), "proposed by: " + c.ProposedBy}
	if c.Reason != "" {
		reasons = append(reasons, "reason: "+c.Reason)
	}
	if c.Note != "" {
		reasons = append(reasons, "note: "+c.Note)
	}
	if c.Equivalence != nil {
		reasons = append(reasons, equivalenceAudit(c.Equivalence))
		return audit.Entry{Time: now, Op: op, Actor: who, RequestID: c.ID, Reasons: reasons, Revision: rev}
	}
	if c.Edge != nil || c.Service != nil {
		reasons = append(reasons, flowAudit(c))
		return audit.Entry{Time: now, Op: op, Actor: who, RequestID: c.ID, Reasons: reasons, Revision: rev}
	}
	a := &c.Region.Accreditation
	reasons = append(reasons, fmt.Sprintf("accreditation: %s, IL%d, revoked %v, expires %s", a.MaxLevel, a.ImpactLevel, a.Revoked, a.Expires.Format(time.DateOnly)))
	return audit.Entry{Time: now, Op: op, Actor: who, RequestID: c.ID, Regions: []string{c.Region.Key()}, Reasons: reasons, Revision: rev}
}

// PutRegionOperational replaces a region with a change that needs one
// administrator: nothing router.SecurityChanges names differs from the
// region as it is. A new region, or any security-relevant change, is
// router.ErrTwoPersonRequired (propose it). The check and the write are
// one transaction comparing the region's mod revision, so a proposal
// approved meanwhile is never overwritten with the old facts.
func (s *Store) PutRegionOperational(ctx context.Context, r *router.Region, opts ...WriteOption) (int64, error) {
	if err := validateRegion(r); err != nil {
		return 0, err
	}
	o := writeOptions(opts)
	if err := s.awaitCondition(ctx, o); err != nil {
		return 0, err
	}
	var rev int64
	err := s.retry(ctx, "put region "+r.Key(), func(ctx context.Context) (bool, int64, error) {
		if err := s.Ready(); err != nil {
			return false, 0, err
		}
		tx := s.db.Txn(false)
		rec := regionTxn(tx, r.Key())
		tx.Abort()
		if rec == nil {
			if o.ifRev != 0 {
				return false, 0, o.mismatch("region "+r.Key(), 0)
			}
			return false, 0, fmt.Errorf("region %s is new: %w: propose it (classroutectl region propose)", r.Key(), router.ErrTwoPersonRequired)
		}
		if err := o.mismatch("region "+r.Key(), rec.Rev); err != nil {
			return false, 0, err
		}
		if f := router.SecurityChanges(rec.Region, r); len(f) > 0 {
			return false, 0, fmt.Errorf("region %s: changing %s %w: propose it (classroutectl region propose)",
				r.Key(), strings.Join(f, ", "), router.ErrTwoPersonRequired)
		}
		val, err := json.Marshal(r)
		if err != nil {
			return false, 0, err
		}
		aop, err := s.auditOp(audit.Entry{Op: audit.OpRegionPut, Actor: authz.Actor(ctx), Regions: []string{r.Key()}, Revision: s.Revision(),
			Before: AccreditationSummary(&rec.Region.Accreditation), After: AccreditationSummary(&r.Accreditation)})
		if err != nil {
			return false, 0, err
		}
		resp, err := s.txn(ctx, func(ctx context.Context) (*clientv3.TxnResponse, error) {
			return s.kv.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(s.keys.region(r.Key())), "=", rec.Rev)).
				Then(clientv3.OpPut(s.keys.region(r.Key()), string(val)), aop).Commit()
		})
		if err != nil {
			return false, 0, err
		}
		rev = resp.Header.Revision
		return resp.Succeeded, rev, nil
	})
	return rev, err
}
