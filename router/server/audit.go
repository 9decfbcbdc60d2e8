package server

import (
	"context"
	"crypto/ed25519"
	"log/slog"
	"slices"
	"strings"
	"time"

	pb "github.com/classroute/classroute/proto/classroute/v1"
	"github.com/classroute/classroute/router"
	"github.com/classroute/classroute/router/audit"
	"github.com/classroute/classroute/router/convert"
	"github.com/classroute/classroute/router/state"
)

// AuditStore is what the audit service needs of the store.
type AuditStore interface {
	FindAudit(ctx context.Context, f state.AuditFilter) ([]audit.Record, string, error)
	VerifyAudit(ctx context.Context, pub ed25519.PublicKey, opts ...audit.VerifyOption) (*audit.Report, error)
}

// WithAuditPublicKey sets the key VerifyAudit checks checkpoints against
// when the caller names none.
func WithAuditPublicKey(pub ed25519.PublicKey) Option {
	return func(s *Server) { s.auditPub = pub }
}

// WithAuditMaxSkew sets the clock-skew allowance VerifyAudit judges the
// entries' times with: the chainer's (default audit.DefaultMaxSkew).
func WithAuditMaxSkew(d time.Duration) Option {
	return func(s *Server) { s.auditSkew = d }
}

// maxAnchors is how many anchored checkpoints one VerifyAudit call may
// check (about 2 MB of them).
const maxAnchors = 10000

// auditService implements the Audit service.
type auditService struct {
	pb.UnimplementedAuditServiceServer
	store AuditStore
	pub   ed25519.PublicKey
	skew  time.Duration
	log   *slog.Logger
	srv   *Server // for the caller's scope
}

// maxAuditFilterLen bounds each ListAudit filter: region keys, the
// longest values filtered on, are at most 127 bytes.
const maxAuditFilterLen = 256

// auditScope is the tenant the caller may see the audit entries of: a
// tenant's user (a tenant auditor) is held to its own tenant, with the
// regions it may not know of redacted from the entries; a security
// auditor sees all.
func (a *auditService) auditScope(ctx context.Context) (sc scope, err error) {
	return a.srv.scopeOf(ctx)
}

// redactReasons drops the reasons that name a region the caller may not
// know of ("provider/id: codes", as refusals record them), and says how
// many were dropped.
func redactReasons(reasons []string, known map[string]bool) []string {
	if known == nil {
		return reasons
	}
	// Dropped uncounted: a count of hidden regions is a figure the
	// caller may not have.
	out := make([]string, 0, len(reasons))
	for _, r := range reasons {
		if key, _, ok := strings.Cut(r, ": "); ok && strings.Count(key, "/") == 1 && !strings.Contains(key, " ") && !known[key] {
			continue
		}
		out = append(out, r)
	}
	return out
}

func (a *auditService) ListAudit(ctx context.Context, req *pb.ListAuditRequest) (*pb.ListAuditResponse, error) {
	var v router.Violations
	if req.GetPageSize() < 0 || req.GetPageSize() > 1000 {
		v.Add("page_size", "must be 0 to 1000")
	}
	if req.Since != nil && req.Since.CheckValid() != nil {
		v.Add("since", "invalid timestamp")
	}
	if req.Until != nil && req.Until.CheckValid() != nil {
		v.Add("until", "invalid timestamp")
	}
	// Filters name stored values, all far shorter; and each is an index
	// key, whose length the caller must not choose freely.
	for _, f := range []struct{ field, value string }{
		{"tenant", req.GetTenant()}, {"workload", req.GetWorkload()}, {"region", req.GetRegion()}, {"op", req.GetOp()}, {"page_token", req.GetPageToken()},
	} {
		if len(f.value) > maxAuditFilterLen {
			v.Add(f.field, "longer than %d bytes", maxAuditFilterLen)
		}
	}
	if err := v.Err(); err != nil {
		return nil, toStatus(ctx, a.log, err)
	}
	f := state.AuditFilter{
		Tenant: req.GetTenant(), Workload: req.GetWorkload(), Region: req.GetRegion(), Op: req.GetOp(),
		Limit: int(req.GetPageSize()),
	}
	if req.Since != nil {
		f.Since = req.Since.AsTime()
	}
	if req.Until != nil {
		f.Until = req.Until.AsTime()
	}
	sc, err := a.auditScope(ctx)
	if err != nil {
		return nil, err
	}
	if f.Tenant, err = sc.tenantFilter(f.Tenant); err != nil {
		return nil, err
	}
	// An entry id counts the writing daemon's entries of every tenant,
	// and revisions count every write: a confined caller gets ids (and
	// page tokens) sealed for its tenant, and no revisions.
	if tok := req.GetPageToken(); tok != "" {
		if f.After, err = a.srv.openID(ctx, "page_token", sc, tok); err != nil {
			return nil, toStatus(ctx, a.log, err)
		}
	}
	known := sc.known
	if known != nil && f.Region != "" && !known[f.Region] {
		// A region the caller may not know of is answered as one that
		// does not exist, and with no more work: the store is not
		// asked, for either. (Its other filters read only its tenant's
		// index ranges: state.FindAudit.)
		return &pb.ListAuditResponse{}, nil
	}
	recs, next, err := a.store.FindAudit(ctx, f)
	if err != nil {
		return nil, toStatus(ctx, a.log, err)
	}
	resp := &pb.ListAuditResponse{}
	if next != "" {
		if resp.NextPageToken, err = a.srv.sealID(ctx, sc, next); err != nil {
			return nil, toStatus(ctx, a.log, err)
		}
	}
	for _, r := range recs {
		id, err := a.srv.sealID(ctx, sc, r.ID)
		if err != nil {
			return nil, toStatus(ctx, a.log, err)
		}
		out := convert.AuditEntryToProto(r)
		out.Id = id
		if sc.confined() {
			out.Revision, out.Written = 0, 0
			reasons := r.Entry.Reasons
			if r.Entry.Op != audit.OpRefuse && slices.ContainsFunc(r.Entry.Regions, func(k string) bool { return !known[k] }) {
				// What the reconciler found of a region the caller may no
				// longer know of (see scope.placement).
				reasons = []string{string(router.ReasonPolicy) + ": " + unavailableMessage(sc.tenantID)}
			}
			// Nor how many region verdicts went unrecorded: the count
			// could tell hidden regions apart.
			out.Reasons = redactReasons(reasons, known)
		}
		resp.Entries = append(resp.Entries, out)
	}
	return resp, nil
}

func (a *auditService) VerifyAudit(ctx context.Context, req *pb.VerifyAuditRequest) (*pb.VerifyAuditResponse, error) {
	pub := a.pub
	var v router.Violations
	if k := req.GetPublicKey(); len(k) > 0 {
		if len(k) != ed25519.PublicKeySize {
			v.Add("public_key", "want a 32-byte ed25519 public key")
		}
		pub = k
	}
	anchors, av := anchorsOf(req.GetAnchors())
	if err := append(v, av...).Err(); err != nil {
		return nil, toStatus(ctx, a.log, err)
	}
	rep, err := a.store.VerifyAudit(ctx, pub, audit.VerifyMaxSkew(a.skew), audit.VerifyAnchors(anchors))
	if err != nil {
		return nil, toStatus(ctx, a.log, err)
	}
	return convert.VerifyReportToProto(rep), nil
}

// anchorsOf reads the anchored checkpoints of a VerifyAudit request,
// naming the first few malformed ones.
func anchorsOf(in []*pb.AuditCheckpoint) ([]audit.Checkpoint, router.Violations) {
	if len(in) > maxAnchors {
		var v router.Violations
		v.Add("anchors", "at most %d per call: verify in several calls", maxAnchors)
		return nil, v
	}
	return convert.CheckpointsFromProto(in)
}
