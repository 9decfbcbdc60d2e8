package convert

import (
	"crypto/ed25519"
	"encoding/hex"
	"fmt"
	"slices"

	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/classroute/classroute/proto/classroute/v1"
	"github.com/classroute/classroute/router"
	"github.com/classroute/classroute/router/audit"
)

// AuditEntryToProto converts a stored audit entry as a caller who may
// see everything sees it: its id, its revisions, and, when the entry
// left region verdicts unrecorded (past its size bound), a last reason
// saying how many. The gRPC edge seals the id and redacts the rest for a
// caller held to one tenant.
func AuditEntryToProto(r audit.Record) *pb.AuditEntry {
	e := &r.Entry
	reasons := e.Reasons
	if e.ReasonsOmitted != 0 {
		reasons = append(slices.Clip(reasons), fmt.Sprintf("(%d more regions not recorded)", e.ReasonsOmitted))
	}
	return &pb.AuditEntry{
		Id: r.ID, Time: timestamppb.New(e.Time), Op: e.Op, Actor: e.Actor, RequestId: e.RequestID,
		Tenant: e.Tenant, Workload: e.Workload, Label: e.Label, Regions: e.Regions, Scores: e.Scores,
		Reasons: reasons, Revision: e.Revision, Provider: e.Provider, Before: e.Before, After: e.After,
		Written: r.Written,
	}
}

// CheckpointToProto converts a signed checkpoint of the audit chain.
func CheckpointToProto(cp audit.Checkpoint) *pb.AuditCheckpoint {
	return &pb.AuditCheckpoint{Seq: cp.Seq, Hash: cp.Hash, Time: timestamppb.New(cp.Time), PublicKey: cp.PublicKey, Signature: cp.Signature}
}

// maxReportedAnchorProblems is how many malformed anchors
// CheckpointsFromProto names before it stops reading.
const maxReportedAnchorProblems = 10

// CheckpointsFromProto reads the anchored checkpoints a caller sends to
// be checked, as anchors[i]: each must be well formed (a positive seq,
// a hash of 64 lower-case hex digits, a valid time, an ed25519 key and
// signature of the right sizes). The first few malformed ones are
// named; their signatures are the verifier's to judge.
func CheckpointsFromProto(in []*pb.AuditCheckpoint) ([]audit.Checkpoint, router.Violations) {
	var v router.Violations
	out := make([]audit.Checkpoint, 0, len(in))
	for i, a := range in {
		if len(v) >= maxReportedAnchorProblems {
			break
		}
		field := fmt.Sprintf("anchors[%d].", i)
		h, err := hex.DecodeString(a.GetHash())
		switch {
		case a.GetSeq() == 0:
			v.Add(field+"seq", "must be positive")
		case err != nil || len(h) != 32 || hex.EncodeToString(h) != a.GetHash():
			v.Add(field+"hash", "want 64 lower-case hex digits")
		case a.GetTime().CheckValid() != nil:
			v.Add(field+"time", "invalid timestamp")
		case len(a.GetPublicKey()) != ed25519.PublicKeySize:
			v.Add(field+"public_key", "want a 32-byte ed25519 public key")
		case len(a.GetSignature()) != ed25519.SignatureSize:
			v.Add(field+"signature", "want a 64-byte ed25519 signature")
		default:
			out = append(out, audit.Checkpoint{Seq: a.GetSeq(), Hash: a.GetHash(), Time: a.GetTime().AsTime(),
				PublicKey: a.GetPublicKey(), Signature: a.GetSignature()})
		}
	}
	return out, v
}

// maxReportedProblems is how many of a verification's problems
// VerifyReportToProto lists; a warning says when there were more.
const maxReportedProblems = 100

// VerifyReportToProto converts the verifier's judgement of the audit
// trail.
func VerifyReportToProto(rep *audit.Report) *pb.VerifyAuditResponse {
	resp := &pb.VerifyAuditResponse{
		Ok: rep.OK(), Revision: rep.Revision, Entries: int64(rep.Entries), Chained: int64(rep.Chained),
		Unchained: int64(rep.Unchained), Warnings: rep.Warnings,
	}
	if cp := rep.Checkpoint; cp != nil {
		resp.Checkpoint = CheckpointToProto(*cp)
	}
	for i, p := range rep.Problems {
		if i == maxReportedProblems {
			resp.Warnings = append(resp.Warnings, "more problems not listed")
			break
		}
		resp.Problems = append(resp.Problems, &pb.AuditProblem{Seq: p.Seq, Entry: p.Entry, Description: p.What})
	}
	return resp
}
