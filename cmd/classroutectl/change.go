package main

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"

	pb "github.com/classroute/classroute/proto/classroute/v1"
	"github.com/classroute/classroute/router/convert"
)

func (c *cli) changeCmd() *cobra.Command {
	var state, note string
	list := &cobra.Command{
		Use:   "list",
		Short: "List two-person region, equivalence, edge and service changes",
		Args:  args(0, ""),
		RunE: c.action(func(cmd *cobra.Command, _ []string) error {
			return c.call(func(ctx context.Context, cc *grpc.ClientConn) error {
				resp, err := pb.NewChangeServiceClient(cc).ListChanges(ctx, &pb.ListChangesRequest{State: state})
				if err != nil {
					return err
				}
				if c.structured() {
					docs := make([]convert.ChangeDoc, 0, len(resp.GetChanges()))
					for _, ch := range resp.GetChanges() {
						d, err := convert.ChangeDocFromProto(ch)
						if err != nil {
							return err
						}
						docs = append(docs, d)
					}
					return convert.EncodeDoc(c.stdout, c.output, docs)
				}
				tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tSUBJECT\tKIND\tSTATE\tPROPOSED BY\tDECIDED BY\tFIELDS")
				for _, ch := range resp.GetChanges() {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", ch.GetId(), changeSubject(ch),
						ch.GetKind(), ch.GetState(), ch.GetProposedBy(), dash(ch.GetDecidedBy()), strings.Join(ch.GetFields(), ","))
				}
				return tw.Flush()
			})
		}),
	}
	list.Flags().StringVar(&state, "state", "", "only changes in this state: pending, applied, rejected or superseded")
	one := func(use, short, long string, do func(ctx context.Context, cl pb.ChangeServiceClient, id string) (*pb.RegionChange, error)) *cobra.Command {
		return &cobra.Command{
			Use:   use + " ID",
			Short: short,
			Long:  long,
			Args:  args(1, "one change id"),
			RunE: c.action(func(cmd *cobra.Command, a []string) error {
				return c.call(func(ctx context.Context, cc *grpc.ClientConn) error {
					ch, err := do(ctx, pb.NewChangeServiceClient(cc), a[0])
					if err != nil {
						return err
					}
					return c.printChange(ch)
				})
			}),
		}
	}
	get := one("get", "Show a change", "", func(ctx context.Context, cl pb.ChangeServiceClient, id string) (*pb.RegionChange, error) {
		r, err := cl.GetChange(ctx, &pb.GetChangeRequest{Id: id})
		return r.GetChange(), err
	})
	approve := one("approve", "Apply another administrator's proposal",
		"approve applies a pending proposal. The proposer may not approve their own: that is the point.",
		func(ctx context.Context, cl pb.ChangeServiceClient, id string) (*pb.RegionChange, error) {
			r, err := cl.ApproveChange(ctx, &pb.ApproveChangeRequest{Id: id})
			return r.GetChange(), err
		})
	reject := one("reject", "Reject a proposal (or withdraw your own)", "",
		func(ctx context.Context, cl pb.ChangeServiceClient, id string) (*pb.RegionChange, error) {
			r, err := cl.RejectChange(ctx, &pb.RejectChangeRequest{Id: id, Note: note})
			return r.GetChange(), err
		})
	reject.Flags().StringVar(&note, "note", "", "why, for the proposer and the audit trail")
	return group("change", "List, approve and reject two-person region, equivalence, edge and service changes", list, get, approve, reject)
}

// changeSubject names what a change changes: a region key, or an
// equivalence pair.
func changeSubject(ch *pb.RegionChange) string {
	if e := ch.GetEquivalence(); e != nil {
		return "equivalence " + pairName(e)
	}
	if e := ch.GetEdge(); e != nil {
		return "edge " + e.GetId()
	}
	if s := ch.GetService(); s != nil {
		return "service " + s.GetName()
	}
	return ch.GetRegion().GetProvider() + "/" + ch.GetRegion().GetId()
}

// propose sends a two-person region change.
func (c *cli) propose(r *pb.Region, reason string) error {
	r.Key, r.Used, r.Health = "", nil, nil
	return c.call(func(ctx context.Context, cc *grpc.ClientConn) error {
		resp, err := pb.NewChangeServiceClient(cc).ProposeRegionChange(ctx, &pb.ProposeRegionChangeRequest{Region: r, Reason: reason})
		if err != nil {
			return err
		}
		if err := c.printChange(resp.GetChange()); err != nil {
			return err
		}
		if !c.structured() {
			fmt.Fprintf(c.stdout, "\nA second catalogue administrator applies it with: classroutectl change approve %s\n", resp.GetChange().GetId())
		}
		return nil
	})
}

func (c *cli) printChange(ch *pb.RegionChange) error {
	if c.structured() {
		d, err := convert.ChangeDocFromProto(ch)
		if err != nil {
			return err
		}
		return convert.EncodeDoc(c.stdout, c.output, d)
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "change:\t%s\n", ch.GetId())
	switch {
	case ch.GetEquivalence() != nil:
		e := ch.GetEquivalence()
		fmt.Fprintf(tw, "equivalence:\t%s (%s)\n", pairName(e), rows(e))
	case ch.GetEdge() != nil:
		e := ch.GetEdge()
		fmt.Fprintf(tw, "edge:\t%s: %s %s → %s %s, %s, expires %s%s\n", e.GetId(), e.GetKind(), e.GetFrom(), e.GetTo(),
			e.GetDirection(), edgeRange(e), date(e.GetExpireTime()), withdrawn(ch))
	case ch.GetService() != nil:
		s := ch.GetService()
		fmt.Fprintf(tw, "service:\t%s: %s in %s%s\n", s.GetName(), s.GetLabel(), s.GetRegion(), withdrawn(ch))
	default:
		fmt.Fprintf(tw, "region:\t%s/%s\n", ch.GetRegion().GetProvider(), ch.GetRegion().GetId())
	}
	fmt.Fprintf(tw, "kind:\t%s (%s)\n", ch.GetKind(), strings.Join(ch.GetFields(), ", "))
	fmt.Fprintf(tw, "state:\t%s\n", ch.GetState())
	if ch.GetReason() != "" {
		fmt.Fprintf(tw, "reason:\t%s\n", ch.GetReason())
	}
	fmt.Fprintf(tw, "proposed by:\t%s at %s\n", ch.GetProposedBy(), ch.GetProposeTime().AsTime().UTC().Format(time.RFC3339))
	if ch.GetDecidedBy() != "" {
		fmt.Fprintf(tw, "decided by:\t%s at %s\n", ch.GetDecidedBy(), ch.GetDecideTime().AsTime().UTC().Format(time.RFC3339))
	}
	if ch.GetNote() != "" {
		fmt.Fprintf(tw, "note:\t%s\n", ch.GetNote())
	}
	return tw.Flush()
}

func withdrawn(ch *pb.RegionChange) string {
	if ch.GetWithdraw() {
		return " (withdrawn)"
	}
	return ""
}
