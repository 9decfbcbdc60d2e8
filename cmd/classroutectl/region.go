package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"

	pb "github.com/classroute/classroute/proto/classroute/v1"
	"github.com/classroute/classroute/router/convert"
)

func (c *cli) regionCmd() *cobra.Command {
	var reason string
	status := func(verb, short string, to pb.RegionStatus) *cobra.Command {
		return &cobra.Command{
			Use:   verb + " KEY",
			Short: short,
			Long: short + `. It reads the region and writes it back with the etag read,
so it fails (ABORTED) rather than undo another administrator's edit made
in between: run it again.`,
			Example: "  classroutectl region " + verb + " aws/us-gov-west-1",
			Args:    args(1, "one region key provider/id"),
			RunE: c.action(func(cmd *cobra.Command, a []string) error {
				r, err := c.getRegion(a[0])
				if err != nil {
					return err
				}
				r.Status = to
				return c.putRegion(r)
			}),
		}
	}
	revoke := &cobra.Command{
		Use:   "revoke KEY",
		Short: "Propose revoking a region's accreditation",
		Long: `revoke proposes revoking the region's accreditation. A second catalogue
administrator approves it (change approve); then every placement there is
re-routed, or flagged where no region may take it.`,
		Example: `  classroutectl region revoke aws/us-gov-west-1 --reason "ATO lapsed"`,
		Args:    args(1, "one region key provider/id"),
		RunE: c.action(func(cmd *cobra.Command, a []string) error {
			r, err := c.getRegion(a[0])
			if err != nil {
				return err
			}
			if r.Accreditation == nil {
				r.Accreditation = &pb.Accreditation{}
			}
			r.Accreditation.Revoked = true
			return c.propose(r, reason)
		}),
	}
	revoke.Flags().StringVar(&reason, "reason", "", "why, for the approver and the audit trail")
	return group("region", "List, read, change and propose regions",
		c.regionListCmd(), c.regionGetCmd(), c.regionPutCmd(), c.regionProposeCmd(), c.regionDeleteCmd(),
		status("drain", "Drain a region: its placements move elsewhere", pb.RegionStatus_REGION_STATUS_DRAINING),
		status("activate", "Make a region active: it takes placements", pb.RegionStatus_REGION_STATUS_ACTIVE),
		status("offline", "Take a region offline: its placements are stranded until it returns or they move", pb.RegionStatus_REGION_STATUS_OFFLINE),
		revoke)
}

func (c *cli) regionListCmd() *cobra.Command {
	var provider string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List regions with accreditation and usage",
		Long: `list lists the regions you may know of: where each is, who operates it,
what it is accredited for, its status, its agent's health and its usage.
-o wide adds memory, GPUs, cost and etag; -o yaml and -o json print the
region documents (the catalogue's schema).`,
		Example: "  classroutectl region list --provider aws -o wide",
		Args:    args(0, ""),
		RunE: c.action(func(cmd *cobra.Command, _ []string) error {
			return c.call(func(ctx context.Context, cc *grpc.ClientConn) error {
				resp, err := pb.NewCatalogServiceClient(cc).ListRegions(ctx, &pb.ListRegionsRequest{Provider: provider})
				if err != nil {
					return err
				}
				if c.structured() {
					docs := make([]convert.RegionDoc, 0, len(resp.GetRegions()))
					for _, r := range resp.GetRegions() {
						d, err := convert.RegionDocFromProto(r)
						if err != nil {
							return err
						}
						docs = append(docs, d)
					}
					return convert.EncodeDoc(c.stdout, c.output, docs)
				}
				c.printRegions(resp.GetRegions())
				return nil
			})
		}),
	}
	cmd.Flags().StringVar(&provider, "provider", "", "only this provider's regions")
	return cmd
}

func (c *cli) printRegions(regions []*pb.Region) {
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	wide := c.output == "wide"
	head := "REGION\tCOUNTRY\tOPERATORS\tLEVEL\tDOMAIN\tPERSONNEL\tCUSTOMERS\tSTATUS\tHEALTH\tAGENT\tCPU USED/TOTAL\tEXPIRES"
	if wide {
		head += "\tMEMORY MIB USED/TOTAL\tGPU USED/TOTAL\tCOST\tETAG"
	}
	fmt.Fprintln(tw, head+"\t")
	for _, r := range regions {
		a := r.GetAccreditation()
		note := ""
		if r.GetIllustrative() {
			note = "illustrative"
		}
		expires := "-"
		if a.GetExpires() != nil {
			expires = a.GetExpires().AsTime().Format("2006-01-02")
		}
		health, agent := healthColumns(r.GetHealth())
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d/%d\t%s", r.GetKey(), r.GetCountry(),
			strings.Join(r.GetOperatorNationalities(), ","),
			enumName(a.GetMaxLevel().String(), "LEVEL_", " "),
			strings.ToLower(enumName(r.GetNetworkDomain().String(), "NETWORK_DOMAIN_", "-")),
			strings.ToLower(enumName(r.GetPersonnel().String(), "PERSONNEL_", "-")),
			strings.Join(r.GetCustomers(), ","),
			strings.ToLower(enumName(r.GetStatus().String(), "REGION_STATUS_", "-")),
			health, agent,
			r.GetUsed().GetMilliCpu(), r.GetCapacity().GetMilliCpu(), expires)
		if wide {
			fmt.Fprintf(tw, "\t%d/%d\t%d/%d\t%.2f\t%s", r.GetUsed().GetMemoryMib(), r.GetCapacity().GetMemoryMib(),
				r.GetUsed().GetGpu(), r.GetCapacity().GetGpu(), r.GetCost(), dash(r.GetEtag()))
		}
		fmt.Fprintf(tw, "\t%s\n", note)
	}
	tw.Flush()
}

func (c *cli) regionGetCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "get KEY",
		Short: "Show a region",
		Long: `get shows one region. -o yaml or -o json prints its document, in the
catalogue's schema with its etag: edit it and give it to region put -f
(operational changes) or region propose -f (accreditation changes).`,
		Example: `  classroutectl region get aws/us-gov-west-1 -o yaml > r.yaml
  classroutectl region put -f r.yaml`,
		Args: args(1, "one region key provider/id"),
		RunE: c.action(func(cmd *cobra.Command, a []string) error {
			r, err := c.getRegion(a[0])
			if err != nil {
				return err
			}
			if c.structured() {
				d, err := convert.RegionDocFromProto(r)
				if err != nil {
					return err
				}
				return convert.EncodeDoc(c.stdout, c.output, d)
			}
			c.printRegions([]*pb.Region{r})
			return nil
		}),
	}
}

func (c *cli) getRegion(key string) (*pb.Region, error) {
	var r *pb.Region
	err := c.call(func(ctx context.Context, cc *grpc.ClientConn) error {
		resp, err := pb.NewCatalogServiceClient(cc).GetRegion(ctx, &pb.GetRegionRequest{Key: key})
		r = resp.GetRegion()
		return err
	})
	return r, err
}

// readDoc reads one document of type T from file ("-": stdin).
func readDoc[T any](file string) (T, error) {
	data, err := readInput(file)
	if err != nil {
		var zero T
		return zero, err
	}
	return convert.DecodeDoc[T](data, file)
}

// readInput reads a file, or stdin for "-", up to the largest document.
func readInput(file string) ([]byte, error) {
	if file == "-" {
		return io.ReadAll(io.LimitReader(os.Stdin, convert.MaxDocSize+1))
	}
	return os.ReadFile(file)
}

func (c *cli) regionPutCmd() *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "put -f REGION.yaml",
		Short: "Apply an operational change to a region (status, capacity, cost, ...)",
		Long: `put writes the region document of REGION.yaml (what region get -o yaml or
-o json prints). Operational fields need one administrator; what a region
is accredited for, who operates it and where are changed by proposal
(region propose) and a second administrator's approval.

With the etag the document carries, the write fails (ABORTED) if the
region changed since it was read; remove the etag to overwrite.`,
		Example: "  classroutectl region put -f r.yaml",
		Args:    args(0, ""),
		RunE: c.action(func(cmd *cobra.Command, _ []string) error {
			d, err := readDoc[convert.RegionDoc](file)
			if err != nil {
				return err
			}
			return c.putRegion(d.WriteProto())
		}),
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "the region document (YAML or JSON); - reads stdin")
	_ = cmd.MarkFlagRequired("file")
	return cmd
}

func (c *cli) regionProposeCmd() *cobra.Command {
	var file, reason string
	cmd := &cobra.Command{
		Use:   "propose -f REGION.yaml",
		Short: "Propose a new region or a change of what one is accredited for",
		Long: `propose sends the region document of REGION.yaml as a two-person change: a
second catalogue administrator applies it with change approve ID (or
rejects it). A proposal whose region changes before approval is
superseded.`,
		Example: `  classroutectl region propose -f new-region.yaml --reason "ATO granted 2026-11-30"`,
		Args:    args(0, ""),
		RunE: c.action(func(cmd *cobra.Command, _ []string) error {
			d, err := readDoc[convert.RegionDoc](file)
			if err != nil {
				return err
			}
			return c.propose(d.WriteProto(), reason)
		}),
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "the region document (YAML or JSON); - reads stdin")
	cmd.Flags().StringVar(&reason, "reason", "", "why, for the approver and the audit trail")
	_ = cmd.MarkFlagRequired("file")
	return cmd
}

func (c *cli) regionDeleteCmd() *cobra.Command {
	var etag string
	cmd := &cobra.Command{
		Use:   "delete KEY",
		Short: "Delete a region no placement uses",
		Args:  args(1, "one region key provider/id"),
		RunE: c.action(func(cmd *cobra.Command, a []string) error {
			return c.call(func(ctx context.Context, cc *grpc.ClientConn) error {
				if _, err := pb.NewCatalogServiceClient(cc).DeleteRegion(ctx, &pb.DeleteRegionRequest{Key: a[0], Etag: etag}); err != nil {
					return err
				}
				fmt.Fprintf(c.stdout, "region %s deleted\n", a[0])
				return nil
			})
		}),
	}
	cmd.Flags().StringVar(&etag, "etag", "", "delete only if the region is still at this etag (region get -o wide, yaml or json shows it)")
	return cmd
}

// putRegion writes r (with its etag, if any) and prints the result.
func (c *cli) putRegion(r *pb.Region) error {
	// Output-only fields are not the caller's to set.
	r.Key, r.Used, r.Health = "", nil, nil
	return c.call(func(ctx context.Context, cc *grpc.ClientConn) error {
		resp, err := pb.NewCatalogServiceClient(cc).PutRegion(ctx, &pb.PutRegionRequest{Region: r})
		if err != nil {
			return err
		}
		if c.structured() {
			d, err := convert.RegionDocFromProto(resp.GetRegion())
			if err != nil {
				return err
			}
			return convert.EncodeDoc(c.stdout, c.output, d)
		}
		fmt.Fprintf(c.stdout, "region %s/%s stored at revision %d (status %s, revoked %v, etag %s)\n",
			resp.GetRegion().GetProvider(), resp.GetRegion().GetId(), resp.GetRevision(),
			strings.ToLower(enumName(resp.GetRegion().GetStatus().String(), "REGION_STATUS_", "-")),
			resp.GetRegion().GetAccreditation().GetRevoked(), dash(resp.GetRegion().GetEtag()))
		return nil
	})
}
