package main

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/classroute/classroute/proto/classroute/v1"
	"github.com/classroute/classroute/router/convert"
)

func (c *cli) equivalenceCmd() *cobra.Command {
	list := &cobra.Command{
		Use:   "list",
		Short: "List the equivalence entries between classification schemes",
		Long: `list lists the current version of every equivalence entry: for a pair of
schemes (FROM→TO), at which level of TO a label of FROM is held, by which
agreement, and whether the entry is in force. A region accredited in
another scheme than a label's is eligible only through an entry in force;
entries are never inverted or chained. -o yaml and -o json print the
entry documents.`,
		Example: "  classroutectl equivalence list",
		Args:    args(0, ""),
		RunE: c.action(func(cmd *cobra.Command, _ []string) error {
			return c.call(func(ctx context.Context, cc *grpc.ClientConn) error {
				resp, err := pb.NewEquivalenceServiceClient(cc).ListEquivalences(ctx, &pb.ListEquivalencesRequest{})
				if err != nil {
					return err
				}
				if c.structured() {
					return convert.EncodeDoc(c.stdout, c.output, equivalenceDocs(resp.GetEntries()))
				}
				return c.printEquivalences(resp.GetEntries())
			})
		}),
	}
	var history bool
	get := &cobra.Command{
		Use:   "get FROM TO",
		Short: "Show an equivalence entry and its history",
		Long: `get shows the entry of the pair FROM→TO (schemes: US, GBR, AUS, NATO, CAN,
NZL, EU, KEN), row by row, and every version of it applied, with who
proposed and approved each. -o yaml or -o json prints the entry's
document (with --history, every version's): edit it, set version to the
next one (or remove it), and give it to equivalence propose -f.`,
		Example: `  classroutectl equivalence get GBR US
  classroutectl equivalence get GBR US -o yaml > gbr-us.yaml`,
		Args: args(2, "two schemes: FROM TO"),
		RunE: c.action(func(cmd *cobra.Command, a []string) error {
			return c.call(func(ctx context.Context, cc *grpc.ClientConn) error {
				resp, err := pb.NewEquivalenceServiceClient(cc).GetEquivalence(ctx, &pb.GetEquivalenceRequest{From: a[0], To: a[1]})
				if err != nil {
					return err
				}
				switch {
				case c.structured() && history:
					return convert.EncodeDoc(c.stdout, c.output, equivalenceDocs(resp.GetHistory()))
				case c.structured():
					return convert.EncodeDoc(c.stdout, c.output, convert.EquivalenceDocFromProto(resp.GetEntry()))
				}
				return c.printEquivalence(resp.GetEntry(), resp.GetHistory())
			})
		}),
	}
	get.Flags().BoolVar(&history, "history", false, "with -o yaml or json: every version, oldest first")
	var file, reason string
	propose := &cobra.Command{
		Use:   "propose -f ENTRY.yaml",
		Short: "Propose a new equivalence entry, or a change of one",
		Long: `propose sends the entry of ENTRY.yaml (one entry in the shape of the
default equivalence data, as equivalence get -o yaml prints it) as a
two-person change: a second catalogue administrator applies it with change
approve ID (or rejects it). version is the entry's next version; leave it
out for the next. withdrawn: true withdraws the entry. Once applied, every
live placement is re-checked against the new entry.`,
		Example: `  classroutectl equivalence propose -f gbr-us.yaml --reason "GSA annex 2026 signed"
  classroutectl change approve 20261203T142800-0123456789abcdef`,
		Args: args(0, ""),
		RunE: c.action(func(cmd *cobra.Command, _ []string) error {
			d, err := readDoc[convert.EquivalenceDoc](file)
			if err != nil {
				return err
			}
			return c.proposeEquivalence(d.Proto(), reason)
		}),
	}
	propose.Flags().StringVarP(&file, "file", "f", "", "the entry document (YAML or JSON); - reads stdin")
	propose.Flags().StringVar(&reason, "reason", "", "why, for the approver and the audit trail")
	_ = propose.MarkFlagRequired("file")
	var wreason string
	withdraw := &cobra.Command{
		Use:   "withdraw FROM TO",
		Short: "Propose withdrawing an equivalence entry",
		Long: `withdraw proposes the next version of the entry FROM→TO, withdrawn. A
second catalogue administrator approves it (change approve); then labels
of FROM are no longer held on regions accredited in TO through it, and
every placement that rested on it is moved or flagged.`,
		Example: `  classroutectl equivalence withdraw GBR US --reason "agreement suspended"`,
		Args:    args(2, "two schemes: FROM TO"),
		RunE: c.action(func(cmd *cobra.Command, a []string) error {
			var e *pb.EquivalenceEntry
			err := c.call(func(ctx context.Context, cc *grpc.ClientConn) error {
				resp, err := pb.NewEquivalenceServiceClient(cc).GetEquivalence(ctx, &pb.GetEquivalenceRequest{From: a[0], To: a[1]})
				e = resp.GetEntry()
				return err
			})
			if err != nil {
				return err
			}
			d := convert.EquivalenceDocFromProto(e)
			d.Version, d.Withdrawn = 0, true
			return c.proposeEquivalence(d.Proto(), wreason)
		}),
	}
	withdraw.Flags().StringVar(&wreason, "reason", "", "why, for the approver and the audit trail")
	return group("equivalence", "List, read and propose equivalences between classification schemes", list, get, propose, withdraw)
}

func equivalenceDocs(es []*pb.EquivalenceEntry) []*convert.EquivalenceDoc {
	docs := make([]*convert.EquivalenceDoc, 0, len(es))
	for _, e := range es {
		docs = append(docs, convert.EquivalenceDocFromProto(e))
	}
	return docs
}

// proposeEquivalence sends a two-person equivalence change.
func (c *cli) proposeEquivalence(e *pb.EquivalenceEntry, reason string) error {
	return c.call(func(ctx context.Context, cc *grpc.ClientConn) error {
		resp, err := pb.NewChangeServiceClient(cc).ProposeEquivalenceChange(ctx, &pb.ProposeEquivalenceChangeRequest{Entry: e, Reason: reason})
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

// pairName is how an entry is named: "GBR→US v2".
func pairName(e *pb.EquivalenceEntry) string {
	return fmt.Sprintf("%s→%s v%d", e.GetFrom(), e.GetTo(), e.GetVersion())
}

func (c *cli) printEquivalences(es []*pb.EquivalenceEntry) error {
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FROM\tTO\tVERSION\tIN FORCE\tVALID\tROWS\tAGREEMENT\t")
	for _, e := range es {
		note := ""
		if e.GetIllustrative() {
			note = "illustrative"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n", e.GetFrom(), e.GetTo(), e.GetVersion(), inForce(e), validity(e),
			rows(e), e.GetAgreement(), note)
	}
	return tw.Flush()
}

func (c *cli) printEquivalence(e *pb.EquivalenceEntry, history []*pb.EquivalenceEntry) error {
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "entry:\t%s\n", pairName(e))
	fmt.Fprintf(tw, "agreement:\t%s\n", e.GetAgreement())
	fmt.Fprintf(tw, "in force:\t%s\n", inForce(e))
	fmt.Fprintf(tw, "valid:\t%s\n", validity(e))
	if e.GetIllustrative() {
		fmt.Fprintf(tw, "illustrative:\tyes: replace it with your own agreement's table\n")
	}
	if e.GetSource() != "" {
		fmt.Fprintf(tw, "source:\t%s\n", e.GetSource())
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(c.stdout)
	tw = tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "%s LEVEL\tWITH CAVEATS\t%s LEVEL\tNOTE\n", e.GetFrom(), e.GetTo())
	for _, m := range e.GetLevels() {
		to := m.GetTo()
		if m.GetNone() {
			to = "none (no equivalent)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", m.GetFrom(), dash(strings.Join(m.GetWithCaveats(), ",")), to, dash(m.GetNote()))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(c.stdout)
	tw = tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VERSION\tAPPLIED\tCHANGE\tPROPOSED BY\tAPPROVED BY\tWITHDRAWN")
	for _, h := range history {
		applied, change := "seeded", "-"
		if h.GetApplyTime() != nil {
			applied = h.GetApplyTime().AsTime().UTC().Format(time.RFC3339)
		}
		if h.GetChangeId() != "" {
			change = h.GetChangeId()
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%v\n", h.GetVersion(), applied, change, dash(h.GetProposedBy()), dash(h.GetApprovedBy()), h.GetWithdrawn())
	}
	return tw.Flush()
}

func inForce(e *pb.EquivalenceEntry) string {
	switch {
	case e.GetInForce():
		return "yes"
	case e.GetWithdrawn():
		return "no (withdrawn)"
	}
	return "no"
}

func validity(e *pb.EquivalenceEntry) string {
	if e.GetValidFrom() == nil && e.GetValidUntil() == nil {
		return "open"
	}
	return date(e.GetValidFrom()) + " to " + date(e.GetValidUntil())
}

func date(t *timestamppb.Timestamp) string {
	if t == nil {
		return "open"
	}
	return t.AsTime().UTC().Format(time.DateOnly)
}

// rows summarises an entry's rows: "SECRET→SECRET, OFFICIAL+SENSITIVE→none".
func rows(e *pb.EquivalenceEntry) string {
	var out []string
	for _, m := range e.GetLevels() {
		from := m.GetFrom()
		if len(m.GetWithCaveats()) > 0 {
			from += "+" + strings.Join(m.GetWithCaveats(), "+")
		}
		to := m.GetTo()
		if m.GetNone() {
			to = "none"
		}
		out = append(out, from+"→"+to)
	}
	return strings.Join(out, ", ")
}
