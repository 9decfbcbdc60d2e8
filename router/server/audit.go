package server

import (
	"context"
	"crypto/ed25519"
	"log/slog"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/classroute/classroute/proto/classroute/v1"
	"github.com/classroute/classroute/router"
	"github.com/classroute/classroute/router/state"
)

// AuditStore is what the audit service needs of the store.
type AuditStore interface {
	FindAudit(ctx context.Context, f state.AuditFilter) ([]state.AuditRecord, string, error)
	VerifyAudit(ctx context.Context, pub ed25519.PublicKey) (*state.AuditReport, error)
}

// WithAuditPublicKey sets the key VerifyAudit checks checkpoints against
// when the caller names none.
func WithAuditPublicKey(pub ed25519.PublicKey) Option {
	return func(s *Server) { s.auditPub = pub }
}

// auditService implements the Audit service.
type auditService struct {
	pb.UnimplementedAuditServiceServer
	store AuditStore
	pub   ed25519.PublicKey
	log   *slog.Logger
}

// registerAudit adds the audit service when the store keeps an audit
// trail.
func (s *Server) registerAudit(g *grpc.Server) {
	if as, ok := s.store.(AuditStore); ok {
		pb.RegisterAuditServiceServer(g, &auditService{store: as, pub: s.auditPub, log: s.log})
	}
}

// auditScope is the tenant the caller may see the audit entries of: ""
// for all.
//
// TODO(issue 4 part 2): a tenant auditor is held to its own tenant here;
// a security auditor sees all.
func auditScope(ctx context.Context) (tenant string, restricted bool) {
	return "", false
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
	if err := v.Err(); err != nil {
		return nil, toStatus(ctx, a.log, err)
	}
	f := state.AuditFilter{
		Tenant: req.GetTenant(), Workload: req.GetWorkload(), Region: req.GetRegion(), Op: req.GetOp(),
		After: req.GetPageToken(), Limit: int(req.GetPageSize()),
	}
	if req.Since != nil {
		f.Since = req.Since.AsTime()
	}
	if req.Until != nil {
		f.Until = req.Until.AsTime()
	}
	if tenant, ok := auditScope(ctx); ok {
		if f.Tenant != "" && f.Tenant != tenant {
			return &pb.ListAuditResponse{}, nil
		}
		f.Tenant = tenant
	}
	recs, next, err := a.store.FindAudit(ctx, f)
	if err != nil {
		return nil, toStatus(ctx, a.log, err)
	}
	resp := &pb.ListAuditResponse{NextPageToken: next}
	for _, r := range recs {
		e := r.Entry
		resp.Entries = append(resp.Entries, &pb.AuditEntry{
			Id: r.ID, Time: timestamppb.New(e.Time), Op: e.Op, Actor: e.Actor, RequestId: e.RequestID,
			Tenant: e.Tenant, Workload: e.Workload, Label: e.Label, Regions: e.Regions, Scores: e.Scores,
			Reasons: e.Reasons, Revision: e.Revision, Provider: e.Provider, Before: e.Before, After: e.After,
			Written: r.Written,
		})
	}
	return resp, nil
}

func (a *auditService) VerifyAudit(ctx context.Context, req *pb.VerifyAuditRequest) (*pb.VerifyAuditResponse, error) {
	pub := a.pub
	if k := req.GetPublicKey(); len(k) > 0 {
		if len(k) != ed25519.PublicKeySize {
			return nil, toStatus(ctx, a.log, router.Violations{{Field: "public_key", Description: "want a 32-byte ed25519 public key"}}.Err())
		}
		pub = k
	}
	rep, err := a.store.VerifyAudit(ctx, pub)
	if err != nil {
		return nil, toStatus(ctx, a.log, err)
	}
	resp := &pb.VerifyAuditResponse{
		Ok: rep.OK(), Revision: rep.Revision, Entries: int64(rep.Entries), Chained: int64(rep.Chained),
		Unchained: int64(rep.Unchained), Warnings: rep.Warnings,
	}
	if cp := rep.Checkpoint; cp != nil {
		resp.Checkpoint = &pb.AuditCheckpoint{Seq: cp.Seq, Hash: cp.Hash, Time: timestamppb.New(cp.Time), PublicKey: cp.PublicKey}
	}
	for i, p := range rep.Problems {
		if i == 100 {
			resp.Warnings = append(resp.Warnings, "more problems not listed")
			break
		}
		resp.Problems = append(resp.Problems, &pb.AuditProblem{Seq: p.Seq, Entry: p.Entry, Description: p.What})
	}
	return resp, nil
}
