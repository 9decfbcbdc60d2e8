package server_test

import (
	"crypto/ed25519"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/classroute/classroute/proto/classroute/v1"
)

// TestVerifyAuditAnchors checks that VerifyAudit takes anchored
// checkpoints, refuses malformed ones naming the field, and hands the
// rest to the store, which judges them against the log.
func TestVerifyAuditAnchors(t *testing.T) {
	e := newEnv(t)
	audit := pb.NewAuditServiceClient(e.conn)
	pub, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	good := func() *pb.AuditCheckpoint {
		return &pb.AuditCheckpoint{Seq: 5, Hash: strings.Repeat("ab", 32), Time: timestamppb.New(time.Now()),
			PublicKey: pub, Signature: make([]byte, 64)}
	}
	for _, tc := range []struct {
		name   string
		mutate func(a *pb.AuditCheckpoint)
		field  string
	}{
		{"no seq", func(a *pb.AuditCheckpoint) { a.Seq = 0 }, "anchors[1].seq"},
		{"short hash", func(a *pb.AuditCheckpoint) { a.Hash = "abcd" }, "anchors[1].hash"},
		{"upper-case hash", func(a *pb.AuditCheckpoint) { a.Hash = strings.ToUpper(a.Hash) }, "anchors[1].hash"},
		{"no time", func(a *pb.AuditCheckpoint) { a.Time = nil }, "anchors[1].time"},
		{"short key", func(a *pb.AuditCheckpoint) { a.PublicKey = a.PublicKey[:31] }, "anchors[1].public_key"},
		{"no signature", func(a *pb.AuditCheckpoint) { a.Signature = nil }, "anchors[1].signature"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := good()
			tc.mutate(bad)
			_, err := audit.VerifyAudit(as(t, asSecAud), &pb.VerifyAuditRequest{Anchors: []*pb.AuditCheckpoint{good(), bad}})
			wantField(t, err, tc.field)
		})
	}
	t.Run("too many", func(t *testing.T) {
		req := &pb.VerifyAuditRequest{}
		for range 10001 {
			req.Anchors = append(req.Anchors, good())
		}
		_, err := audit.VerifyAudit(as(t, asSecAud), req)
		wantContains(t, "anchors", wantField(t, err, "anchors"), "at most 10000")
	})
	t.Run("judged", func(t *testing.T) {
		resp, err := audit.VerifyAudit(as(t, asSecAud), &pb.VerifyAuditRequest{PublicKey: pub, Anchors: []*pb.AuditCheckpoint{good()}})
		if err != nil {
			t.Fatal(err)
		}
		if resp.GetOk() || len(resp.GetProblems()) != 1 ||
			!proto.Equal(resp.GetProblems()[0], &pb.AuditProblem{Seq: 5, Description: "checkpoint #5 anchored outside etcd: signature does not verify: forged"}) {
			t.Errorf("VerifyAudit with an unsigned anchor: %v; want it refused as forged", resp)
		}
	})
}
