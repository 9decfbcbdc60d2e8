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

func (c *cli) edgeCmd() *cobra.Command {
	list := &cobra.Command{
		Use:   "list",
		Short: "List the cross-domain and connected-service edges",
		Long: `list lists every edge: an accredited diode, guard or access solution
between two network domains or regions, or a connected service reached
across a boundary, with the direction and label range it is approved for,
who accredited it, when that ends, and whether it is in force (revoked and
expired edges are listed too). Only catalogue administrators and security
auditors may read edges. -o yaml and -o json print the edge documents.`,
		Example: "  classroutectl edge list",
		Args:    args(0, ""),
		RunE: c.action(func(cmd *cobra.Command, _ []string) error {
			return c.call(func(ctx context.Context, cc *grpc.ClientConn) error {
				resp, err := pb.NewEdgeServiceClient(cc).ListEdges(ctx, &pb.ListEdgesRequest{})
				if err != nil {
					return err
				}
				if c.structured() {
					docs := make([]*convert.EdgeDoc, 0, len(resp.GetEdges()))
					for _, e := range resp.GetEdges() {
						docs = append(docs, convert.EdgeDocFromProto(e))
					}
					return convert.EncodeDoc(c.stdout, c.output, docs)
				}
				tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tKIND\tFROM\tTO\tDIRECTION\tRANGE\tEXPIRES\tIN FORCE\tAUTHORITY\t")
				for _, e := range resp.GetEdges() {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.GetId(), e.GetKind(), e.GetFrom(), e.GetTo(), e.GetDirection(),
						edgeRange(e), date(e.GetExpireTime()), edgeInForce(e), e.GetAuthority(), illustrative(e.GetIllustrative()))
				}
				return tw.Flush()
			})
		}),
	}
	get := &cobra.Command{
		Use:   "get ID",
		Short: "Show an edge",
		Long: `get shows one edge and the change that made it. -o yaml or -o json prints
its document: edit it and give it to edge propose -f.`,
		Example: `  classroutectl edge get aoai-gov-to-commercial
  classroutectl edge get aoai-gov-to-commercial -o yaml > edge.yaml`,
		Args: args(1, "one edge id"),
		RunE: c.action(func(cmd *cobra.Command, a []string) error {
			return c.call(func(ctx context.Context, cc *grpc.ClientConn) error {
				resp, err := pb.NewEdgeServiceClient(cc).GetEdge(ctx, &pb.GetEdgeRequest{Id: a[0]})
				if err != nil {
					return err
				}
				if c.structured() {
					return convert.EncodeDoc(c.stdout, c.output, convert.EdgeDocFromProto(resp.GetEdge()))
				}
				e := resp.GetEdge()
				tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintf(tw, "edge:\t%s (%s)\n", e.GetId(), e.GetKind())
				fmt.Fprintf(tw, "from → to:\t%s → %s, %s\n", e.GetFrom(), e.GetTo(), e.GetDirection())
				fmt.Fprintf(tw, "range:\t%s\n", edgeRange(e))
				fmt.Fprintf(tw, "authority:\t%s\n", e.GetAuthority())
				fmt.Fprintf(tw, "expires:\t%s\n", date(e.GetExpireTime()))
				fmt.Fprintf(tw, "in force:\t%s\n", edgeInForce(e))
				if e.GetIllustrative() {
					fmt.Fprintf(tw, "illustrative:\tyes: replace it with your own accredited edge\n")
				}
				if e.GetNotes() != "" {
					fmt.Fprintf(tw, "notes:\t%s\n", e.GetNotes())
				}
				fmt.Fprintf(tw, "change:\t%s\n", appliedBy(e.GetChangeId(), e.GetProposedBy(), e.GetApprovedBy()))
				return tw.Flush()
			})
		}),
	}
	var file, reason string
	propose := &cobra.Command{
		Use:   "propose -f EDGE.yaml",
		Short: "Propose a new edge, or a change of one",
		Long: `propose sends the edge of EDGE.yaml (one edge in the shape of
router/flow's data files, as edge get -o yaml prints it) as a two-person
change: a second catalogue administrator applies it with change approve
ID (or rejects it). Once applied, every live placement is re-checked.`,
		Example: `  classroutectl edge propose -f guard.yaml --reason "NCDSMO accreditation 2026-114"
  classroutectl change approve 20261203T142800-0123456789abcdef`,
		Args: args(0, ""),
		RunE: c.action(func(cmd *cobra.Command, _ []string) error {
			d, err := readDoc[convert.EdgeDoc](file)
			if err != nil {
				return err
			}
			return c.proposeEdge(convert.EdgeToProto(&d.Edge), false, reason)
		}),
	}
	propose.Flags().StringVarP(&file, "file", "f", "", "the edge document (YAML or JSON); - reads stdin")
	propose.Flags().StringVar(&reason, "reason", "", "why, for the approver and the audit trail")
	_ = propose.MarkFlagRequired("file")
	var rreason string
	revoke := &cobra.Command{
		Use:   "revoke ID",
		Short: "Propose revoking an edge",
		Long: `revoke proposes the edge ID as it is, revoked. A second catalogue
administrator approves it (change approve); then no flow crosses by it,
and every live placement is re-checked.`,
		Example: `  classroutectl edge revoke sipr-guard-1 --reason "accreditation suspended"`,
		Args:    args(1, "one edge id"),
		RunE: c.action(func(cmd *cobra.Command, a []string) error {
			var e *pb.Edge
			err := c.call(func(ctx context.Context, cc *grpc.ClientConn) error {
				resp, err := pb.NewEdgeServiceClient(cc).GetEdge(ctx, &pb.GetEdgeRequest{Id: a[0]})
				e = resp.GetEdge()
				return err
			})
			if err != nil {
				return err
			}
			d := convert.EdgeDocFromProto(e)
			d.Revoked = true
			return c.proposeEdge(convert.EdgeToProto(&d.Edge), false, rreason)
		}),
	}
	revoke.Flags().StringVar(&rreason, "reason", "", "why, for the approver and the audit trail")
	var wreason string
	withdraw := &cobra.Command{
		Use:   "withdraw ID",
		Short: "Propose removing an edge",
		Long: `withdraw proposes removing the edge ID. A second catalogue administrator
approves it (change approve); revoke instead keeps the record.`,
		Example: `  classroutectl edge withdraw sipr-guard-1 --reason "decommissioned"`,
		Args:    args(1, "one edge id"),
		RunE: c.action(func(cmd *cobra.Command, a []string) error {
			return c.proposeEdge(&pb.Edge{Id: a[0]}, true, wreason)
		}),
	}
	withdraw.Flags().StringVar(&wreason, "reason", "", "why, for the approver and the audit trail")
	return group("edge", "List, read and propose cross-domain and connected-service edges", list, get, propose, revoke, withdraw)
}

func (c *cli) serviceCmd() *cobra.Command {
	list := &cobra.Command{
		Use:   "list",
		Short: "List the catalogue services dependencies may name",
		Long: `list lists every catalogue service (a data store, an API, a model
endpoint) with its label, region, network domain and operators. Only
catalogue administrators and security auditors may read them. -o yaml and
-o json print the service documents.`,
		Example: "  classroutectl service list",
		Args:    args(0, ""),
		RunE: c.action(func(cmd *cobra.Command, _ []string) error {
			return c.call(func(ctx context.Context, cc *grpc.ClientConn) error {
				resp, err := pb.NewEdgeServiceClient(cc).ListServices(ctx, &pb.ListServicesRequest{})
				if err != nil {
					return err
				}
				if c.structured() {
					docs := make([]*convert.ServiceDoc, 0, len(resp.GetServices()))
					for _, s := range resp.GetServices() {
						docs = append(docs, convert.ServiceDocFromProto(s))
					}
					return convert.EncodeDoc(c.stdout, c.output, docs)
				}
				tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "NAME\tLABEL\tREGION\tDOMAIN\tOPERATORS\tPERSONNEL\t")
				for _, s := range resp.GetServices() {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.GetName(), s.GetLabel(), s.GetRegion(), s.GetNetworkDomain(),
						strings.Join(s.GetOperatorNationalities(), ","), s.GetPersonnel(), illustrative(s.GetIllustrative()))
				}
				return tw.Flush()
			})
		}),
	}
	get := &cobra.Command{
		Use:     "get NAME",
		Short:   "Show a catalogue service",
		Long:    `get shows one catalogue service. -o yaml or -o json prints its document: edit it and give it to service propose -f.`,
		Example: "  classroutectl service get azure-openai-gov -o yaml > svc.yaml",
		Args:    args(1, "one service name"),
		RunE: c.action(func(cmd *cobra.Command, a []string) error {
			return c.call(func(ctx context.Context, cc *grpc.ClientConn) error {
				resp, err := pb.NewEdgeServiceClient(cc).GetService(ctx, &pb.GetServiceRequest{Name: a[0]})
				if err != nil {
					return err
				}
				if c.structured() {
					return convert.EncodeDoc(c.stdout, c.output, convert.ServiceDocFromProto(resp.GetService()))
				}
				s := resp.GetService()
				tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintf(tw, "service:\t%s\n", s.GetName())
				fmt.Fprintf(tw, "label:\t%s (%s)\n", s.GetLabel(), s.GetScheme())
				fmt.Fprintf(tw, "region:\t%s (%s)\n", s.GetRegion(), s.GetNetworkDomain())
				fmt.Fprintf(tw, "operators:\t%s, %s\n", strings.Join(s.GetOperatorNationalities(), ","), s.GetPersonnel())
				if s.GetIllustrative() {
					fmt.Fprintf(tw, "illustrative:\tyes: replace it with your own\n")
				}
				if s.GetNotes() != "" {
					fmt.Fprintf(tw, "notes:\t%s\n", s.GetNotes())
				}
				fmt.Fprintf(tw, "change:\t%s\n", appliedBy(s.GetChangeId(), s.GetProposedBy(), s.GetApprovedBy()))
				return tw.Flush()
			})
		}),
	}
	var file, reason string
	propose := &cobra.Command{
		Use:   "propose -f SERVICE.yaml",
		Short: "Propose a new catalogue service, or a change of one",
		Long: `propose sends the service of SERVICE.yaml (as service get -o yaml prints
it) as a two-person change: a second catalogue administrator applies it
with change approve ID (or rejects it).`,
		Example: `  classroutectl service propose -f svc.yaml --reason "new model endpoint"`,
		Args:    args(0, ""),
		RunE: c.action(func(cmd *cobra.Command, _ []string) error {
			d, err := readDoc[convert.ServiceDoc](file)
			if err != nil {
				return err
			}
			return c.proposeService(convert.ServiceToProto(&d.Service), false, reason)
		}),
	}
	propose.Flags().StringVarP(&file, "file", "f", "", "the service document (YAML or JSON); - reads stdin")
	propose.Flags().StringVar(&reason, "reason", "", "why, for the approver and the audit trail")
	_ = propose.MarkFlagRequired("file")
	var wreason string
	withdraw := &cobra.Command{
		Use:     "withdraw NAME",
		Short:   "Propose removing a catalogue service",
		Long:    `withdraw proposes removing the service NAME; a second catalogue administrator approves it (change approve).`,
		Example: `  classroutectl service withdraw azure-openai-commercial --reason "retired"`,
		Args:    args(1, "one service name"),
		RunE: c.action(func(cmd *cobra.Command, a []string) error {
			return c.proposeService(&pb.CatalogueService{Name: a[0]}, true, wreason)
		}),
	}
	withdraw.Flags().StringVar(&wreason, "reason", "", "why, for the approver and the audit trail")
	return group("service", "List, read and propose the catalogue services dependencies may name", list, get, propose, withdraw)
}

// proposeEdge sends a two-person edge change.
func (c *cli) proposeEdge(e *pb.Edge, withdraw bool, reason string) error {
	return c.call(func(ctx context.Context, cc *grpc.ClientConn) error {
		resp, err := pb.NewChangeServiceClient(cc).ProposeEdgeChange(ctx, &pb.ProposeEdgeChangeRequest{Edge: e, Withdraw: withdraw, Reason: reason})
		if err != nil {
			return err
		}
		return c.proposed(resp.GetChange())
	})
}

// proposeService sends a two-person catalogue service change.
func (c *cli) proposeService(s *pb.CatalogueService, withdraw bool, reason string) error {
	return c.call(func(ctx context.Context, cc *grpc.ClientConn) error {
		resp, err := pb.NewChangeServiceClient(cc).ProposeServiceChange(ctx, &pb.ProposeServiceChangeRequest{Service: s, Withdraw: withdraw, Reason: reason})
		if err != nil {
			return err
		}
		return c.proposed(resp.GetChange())
	})
}

// proposed prints a new proposal and how it is approved.
func (c *cli) proposed(ch *pb.RegionChange) error {
	if err := c.printChange(ch); err != nil {
		return err
	}
	if !c.structured() {
		fmt.Fprintf(c.stdout, "\nA second catalogue administrator applies it with: classroutectl change approve %s\n", ch.GetId())
	}
	return nil
}

func edgeRange(e *pb.Edge) string {
	return fmt.Sprintf("%s to %s (%s)", e.GetRangeLow(), e.GetRangeHigh(), e.GetRangeScheme())
}

func edgeInForce(e *pb.Edge) string {
	switch {
	case e.GetInForce():
		return "yes"
	case e.GetRevoked():
		return "no (revoked)"
	case e.GetExpireTime() != nil && !e.GetExpireTime().AsTime().After(time.Now()):
		return "no (expired)"
	}
	return "no"
}

func illustrative(b bool) string {
	if b {
		return "illustrative"
	}
	return ""
}

func appliedBy(change, proposer, approver string) string {
	if change == "" {
		return "seeded default"
	}
	return fmt.Sprintf("%s, proposed by %s, approved by %s", change, proposer, approver)
}
