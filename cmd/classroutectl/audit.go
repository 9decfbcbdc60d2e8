package main

import (
	"cmp"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/classroute/classroute/proto/classroute/v1"
	"github.com/classroute/classroute/router/audit"
	"github.com/classroute/classroute/router/convert"
)

// auditUsage documents the audit command; it is part of usage.
func (c *cli) auditCmd() *cobra.Command {
	var req pb.ListAuditRequest
	var since, until, pubFile, anchorDir, out string
	var limit int
	list := &cobra.Command{
		Use:   "list",
		Short: "List audit entries, oldest first",
		Long: `list lists audit entries, oldest first. --since and --until take RFC 3339
or a duration ago (1h); --limit 0 is every one.`,
		Example: "  classroutectl audit list --tenant ke-moh --since 1h",
		Args:    args(0, ""),
		RunE: c.action(func(cmd *cobra.Command, _ []string) error {
			for _, t := range []struct {
				flag, v string
				dst     **timestamppb.Timestamp
			}{{"since", since, &req.Since}, {"until", until, &req.Until}} {
				if t.v == "" {
					continue
				}
				ts, err := parseWhen(t.v)
				if err != nil {
					return usageError{fmt.Sprintf("--%s: %v", t.flag, err)}
				}
				*t.dst = timestamppb.New(ts)
			}
			return c.auditList(&req, limit)
		}),
	}
	lf := list.Flags()
	lf.StringVar(&req.Tenant, "tenant", "", "only this tenant's entries")
	lf.StringVar(&req.Workload, "workload", "", "only entries of this workload")
	lf.StringVar(&req.Region, "region", "", "only entries naming this region")
	lf.StringVar(&req.Op, "op", "", "only entries of this operation (place, release, region-put, tamper, ...)")
	lf.StringVar(&since, "since", "", "only entries at or after this time")
	lf.StringVar(&until, "until", "", "only entries before this time")
	lf.IntVar(&limit, "limit", 100, "list at most this many (0: all)")
	verify := &cobra.Command{
		Use:   "verify",
		Short: "Check the whole audit log against its hash chain and signed checkpoints",
		Long: `verify checks the whole log against its hash chain, signed checkpoints and
the rules every genuine entry keeps (and the checkpoints classrouted
--audit-checkpoint-dir kept in --anchor DIR); exit 1 naming the first bad
entry.`,
		Args: args(0, ""),
		RunE: c.action(func(cmd *cobra.Command, _ []string) error {
			var pub []byte
			if pubFile != "" {
				data, err := os.ReadFile(pubFile)
				if err != nil {
					return err
				}
				k, err := audit.ParsePublicKey(data)
				if err != nil {
					return fmt.Errorf("%s: %w", pubFile, err)
				}
				pub = k
			}
			var anchors []audit.Checkpoint
			if anchorDir != "" {
				var err error
				if anchors, err = audit.AnchorDir(anchorDir).Read(); err != nil {
					return err
				}
				if len(anchors) == 0 {
					return fmt.Errorf("audit verify: --anchor %s holds no checkpoint to check the log against", anchorDir)
				}
			}
			return c.auditVerify(pub, anchors)
		}),
	}
	verify.Flags().StringVar(&pubFile, "pubkey", "", "ed25519 public key (PEM) the checkpoints must be signed with (default: the daemon's)")
	verify.Flags().StringVar(&anchorDir, "anchor", "", "directory of anchored checkpoints (classrouted --audit-checkpoint-dir) to check the log against")
	keygen := &cobra.Command{
		Use:   "keygen --out FILE",
		Short: "Write an ed25519 checkpoint signing key and FILE.pub",
		Long:  "keygen writes an ed25519 key (PKCS #8 PEM, mode 0600) for classrouted --audit-key, and its public half to FILE.pub. No daemon is involved.",
		Args:  args(0, ""),
		RunE: c.action(func(cmd *cobra.Command, _ []string) error {
			return auditKeygen(out)
		}),
	}
	keygen.Flags().StringVar(&out, "out", "", "the key file to write (it must not exist)")
	_ = keygen.MarkFlagRequired("out")
	return group("audit", "Read and verify the tamper-evident audit trail", list, verify, keygen)
}

// parseWhen reads RFC 3339, or a duration before now.
func parseWhen(s string) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		return time.Now().Add(-d), nil
	}
	return time.Parse(time.RFC3339, s)
}

func (c *cli) auditList(req *pb.ListAuditRequest, limit int) error {
	var entries []*pb.AuditEntry
	err := c.call(func(ctx context.Context, cc *grpc.ClientConn) error {
		cl := pb.NewAuditServiceClient(cc)
		for {
			req.PageSize = 1000
			if limit > 0 {
				req.PageSize = int32(min(limit-len(entries), 1000))
			}
			resp, err := cl.ListAudit(ctx, req)
			if err != nil {
				return err
			}
			entries = append(entries, resp.GetEntries()...)
			req.PageToken = resp.GetNextPageToken()
			if req.PageToken == "" || limit > 0 && len(entries) >= limit {
				return nil
			}
		}
	})
	if err != nil {
		return err
	}
	if c.structured() {
		return c.printProto(&pb.ListAuditResponse{Entries: entries, NextPageToken: req.PageToken})
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tOP\tACTOR\tTENANT\tWORKLOAD\tREQUEST\tREGIONS\tDETAIL")
	for _, e := range entries {
		detail := strings.Join(e.GetReasons(), "; ")
		if e.GetBefore() != "" || e.GetAfter() != "" {
			detail = fmt.Sprintf("%s -> %s", dash(e.GetBefore()), dash(e.GetAfter()))
		}
		if e.GetProvider() != "" {
			detail = "provider " + e.GetProvider()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.GetTime().AsTime().UTC().Format(time.RFC3339Nano), e.GetOp(), e.GetActor(),
			dash(e.GetTenant()), dash(e.GetWorkload()), dash(e.GetRequestId()), dash(strings.Join(e.GetRegions(), ",")), detail)
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// maxAnchorsPerCall is how many anchored checkpoints one VerifyAudit call
// carries (the daemon takes at most 10,000).
const maxAnchorsPerCall = 5000

func (c *cli) auditVerify(pub []byte, anchors []audit.Checkpoint) error {
	nAnchors, newest := len(anchors), uint64(0)
	for _, a := range anchors {
		newest = max(newest, a.Seq)
	}
	var resp *pb.VerifyAuditResponse
	err := c.call(func(ctx context.Context, cc *grpc.ClientConn) error {
		cl := pb.NewAuditServiceClient(cc)
		// Each call walks the whole log: many anchors take several.
		seen := map[string]bool{}
		for first := true; first || len(anchors) > 0; first = false {
			req := &pb.VerifyAuditRequest{PublicKey: pub}
			for _, a := range anchors[:min(len(anchors), maxAnchorsPerCall)] {
				req.Anchors = append(req.Anchors, convert.CheckpointToProto(a))
			}
			anchors = anchors[len(req.Anchors):]
			r, err := cl.VerifyAudit(ctx, req)
			if err != nil {
				return err
			}
			if resp == nil {
				resp = r
			} else {
				resp.Ok = resp.Ok && r.GetOk()
			}
			for _, p := range r.GetProblems() {
				if k := problemString(p); !seen[k] {
					seen[k] = true
					if resp != r {
						resp.Problems = append(resp.Problems, p)
					}
				}
			}
		}
		slices.SortStableFunc(resp.Problems, func(a, b *pb.AuditProblem) int { return cmp.Compare(a.GetSeq(), b.GetSeq()) })
		return nil
	})
	if err != nil {
		return err
	}
	if c.structured() {
		if err := c.printProto(resp); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(c.stdout, "revision %d: %d entries, %d chained, %d not yet chained\n",
			resp.GetRevision(), resp.GetEntries(), resp.GetChained(), resp.GetUnchained())
		if cp := resp.GetCheckpoint(); cp != nil {
			fmt.Fprintf(c.stdout, "latest checkpoint: #%d %s at %s\n", cp.GetSeq(), cp.GetHash(), cp.GetTime().AsTime().UTC().Format(time.RFC3339))
		}
		if n := nAnchors; n > 0 {
			fmt.Fprintf(c.stdout, "anchored checkpoints: %d checked, the newest #%d\n", n, newest)
		}
		for _, w := range resp.GetWarnings() {
			fmt.Fprintf(c.stdout, "warning: %s\n", w)
		}
		for _, p := range resp.GetProblems() {
			fmt.Fprintf(c.stdout, "BAD %s\n", problemString(p))
		}
	}
	if !resp.GetOk() {
		first := resp.GetProblems()[0]
		return fmt.Errorf("audit log tampered: first bad entry %s", problemString(first))
	}
	if len(resp.GetWarnings()) == 0 && !c.structured() {
		fmt.Fprintln(c.stdout, "ok")
	}
	return nil
}

func problemString(p *pb.AuditProblem) string {
	if p.GetEntry() == "" {
		return fmt.Sprintf("#%d: %s", p.GetSeq(), p.GetDescription())
	}
	return fmt.Sprintf("#%d %s: %s", p.GetSeq(), p.GetEntry(), p.GetDescription())
}

// auditKeygen writes a new ed25519 key to out (PKCS #8 PEM, mode 0600)
// and its public half to out.pub (PKIX PEM). The same as
//
//	openssl genpkey -algorithm ed25519 -out FILE
//	openssl pkey -in FILE -pubout -out FILE.pub
func auditKeygen(out string) error {
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	pder, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	err = pem.Encode(f, &pem.Block{Type: "PRIVATE KEY", Bytes: der})
	err = errors.Join(err, f.Close())
	if err != nil {
		return err
	}
	return os.WriteFile(out+".pub", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pder}), 0o644)
}
