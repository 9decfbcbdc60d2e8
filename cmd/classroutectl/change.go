package main

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/grpc"

	pb "github.com/classroute/classroute/proto/classroute/v1"
)

// changeUsage documents the change command; it is part of usage.
const changeUsage = `  classroutectl change list [--state pending|applied|rejected]   two-person region changes
  classroutectl change get ID
  classroutectl change approve ID                      apply a proposal (not your own)
  classroutectl change reject ID [--note TEXT]         reject (or withdraw your own)
`

func (c *cli) change(fs *flag.FlagSet, args []string) error {
	st := fs.String("state", "", "")
	note := fs.String("note", "", "")
	pos, err := c.flags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return usageError{"change: want list, get, approve or reject"}
	}
	sub, pos := pos[0], pos[1:]
	if sub == "list" {
		if len(pos) != 0 {
			return usageError{"change list: no arguments"}
		}
		return c.call(func(ctx context.Context, cc *grpc.ClientConn) error {
			resp, err := pb.NewChangeServiceClient(cc).ListChanges(ctx, &pb.ListChangesRequest{State: *st})
			if err != nil {
				return err
			}
			if c.output == "json" {
				return c.printJSON(resp)
			}
			tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tREGION\tKIND\tSTATE\tPROPOSED BY\tDECIDED BY\tFIELDS")
			for _, ch := range resp.GetChanges() {
				fmt.Fprintf(tw, "%s\t%s/%s\t%s\t%s\t%s\t%s\t%s\n", ch.GetId(), ch.GetRegion().GetProvider(), ch.GetRegion().GetId(),
					ch.GetKind(), ch.GetState(), ch.GetProposedBy(), ch.GetDecidedBy(), strings.Join(ch.GetFields(), ","))
			}
			return tw.Flush()
		})
	}
	if len(pos) != 1 {
		return usageError{"change " + sub + ": want one change id"}
	}
	id := pos[0]
	return c.call(func(ctx context.Context, cc *grpc.ClientConn) error {
		client := pb.NewChangeServiceClient(cc)
		var ch *pb.RegionChange
		switch sub {
		case "get":
			r, err := client.GetChange(ctx, &pb.GetChangeRequest{Id: id})
			if err != nil {
				return err
			}
			ch = r.GetChange()
		case "approve":
			r, err := client.ApproveChange(ctx, &pb.ApproveChangeRequest{Id: id})
			if err != nil {
				return err
			}
			ch = r.GetChange()
		case "reject":
			r, err := client.RejectChange(ctx, &pb.RejectChangeRequest{Id: id, Note: *note})
			if err != nil {
				return err
			}
			ch = r.GetChange()
		default:
			return usageError{fmt.Sprintf("change: unknown subcommand %q", sub)}
		}
		return c.printChange(ch)
	})
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
		if c.output != "json" {
			fmt.Fprintf(c.stdout, "\nA second catalogue administrator applies it with: classroutectl change approve %s\n", resp.GetChange().GetId())
		}
		return nil
	})
}

func (c *cli) printChange(ch *pb.RegionChange) error {
	if c.output == "json" {
		return c.printJSON(ch)
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "change:\t%s\n", ch.GetId())
	fmt.Fprintf(tw, "region:\t%s/%s\n", ch.GetRegion().GetProvider(), ch.GetRegion().GetId())
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
