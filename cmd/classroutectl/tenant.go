package main

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"

	pb "github.com/classroute/classroute/proto/classroute/v1"
	"github.com/classroute/classroute/router/convert"
)

func (c *cli) tenantCmd() *cobra.Command {
	var file, etag string
	get := &cobra.Command{
		Use:   "get ID",
		Short: "Show a tenant and its policy",
		Long: `get shows a tenant: its nation, sector, ceiling, region and provider
restrictions and members with their roles. -o yaml or -o json prints its
document, with its etag, which tenant put -f takes back.`,
		Example: `  classroutectl tenant get ke-moh -o yaml > t.yaml   # edit, then:
  classroutectl tenant put -f t.yaml`,
		Args: args(1, "one tenant id"),
		RunE: c.action(func(cmd *cobra.Command, a []string) error {
			return c.call(func(ctx context.Context, cc *grpc.ClientConn) error {
				resp, err := pb.NewCatalogServiceClient(cc).GetTenant(ctx, &pb.GetTenantRequest{Id: a[0]})
				if err != nil {
					return err
				}
				return c.printTenants([]*pb.Tenant{resp.GetTenant()}, true)
			})
		}),
	}
	put := &cobra.Command{
		Use:   "put -f TENANT.yaml",
		Short: "Create or replace a tenant (catalogue administrators)",
		Long: `put writes the tenant document of TENANT.yaml (what tenant get -o yaml
prints). With the etag it carries, the write fails (ABORTED) if the tenant
changed since it was read; remove the etag to overwrite.`,
		Example: "  classroutectl tenant put -f t.yaml",
		Args:    args(0, ""),
		RunE: c.action(func(cmd *cobra.Command, _ []string) error {
			d, err := readDoc[convert.TenantDoc](file)
			if err != nil {
				return err
			}
			return c.call(func(ctx context.Context, cc *grpc.ClientConn) error {
				resp, err := pb.NewCatalogServiceClient(cc).PutTenant(ctx, &pb.PutTenantRequest{Tenant: d.Proto()})
				if err != nil {
					return err
				}
				if c.structured() {
					return c.printTenants([]*pb.Tenant{resp.GetTenant()}, true)
				}
				fmt.Fprintf(c.stdout, "tenant %s stored (etag %s)\n", resp.GetTenant().GetId(), dash(resp.GetTenant().GetEtag()))
				return nil
			})
		}),
	}
	put.Flags().StringVarP(&file, "file", "f", "", "the tenant document (YAML or JSON); - reads stdin")
	_ = put.MarkFlagRequired("file")
	del := &cobra.Command{
		Use:   "delete ID",
		Short: "Delete a tenant with no live placements",
		Args:  args(1, "one tenant id"),
		RunE: c.action(func(cmd *cobra.Command, a []string) error {
			return c.call(func(ctx context.Context, cc *grpc.ClientConn) error {
				if _, err := pb.NewCatalogServiceClient(cc).DeleteTenant(ctx, &pb.DeleteTenantRequest{Id: a[0], Etag: etag}); err != nil {
					return err
				}
				fmt.Fprintf(c.stdout, "tenant %s deleted\n", a[0])
				return nil
			})
		}),
	}
	del.Flags().StringVar(&etag, "etag", "", "delete only if the tenant is still at this etag (tenant get -o wide, yaml or json shows it)")
	return group("tenant", "List, read and change tenants", c.tenantListCmd(), get, put, del)
}

func (c *cli) tenantListCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List tenants",
		Args:  args(0, ""),
		RunE: c.action(func(cmd *cobra.Command, _ []string) error {
			return c.call(func(ctx context.Context, cc *grpc.ClientConn) error {
				resp, err := pb.NewCatalogServiceClient(cc).ListTenants(ctx, &pb.ListTenantsRequest{})
				if err != nil {
					return err
				}
				return c.printTenants(resp.GetTenants(), false)
			})
		}),
	}
}

// printTenants prints tenants: one document when one was asked for.
func (c *cli) printTenants(ts []*pb.Tenant, one bool) error {
	if c.structured() {
		docs := make([]convert.TenantDoc, 0, len(ts))
		for _, t := range ts {
			d, err := convert.TenantDocFromProto(t)
			if err != nil {
				return err
			}
			docs = append(docs, d)
		}
		if one && len(docs) == 1 {
			return convert.EncodeDoc(c.stdout, c.output, docs[0])
		}
		return convert.EncodeDoc(c.stdout, c.output, docs)
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	wide := c.output == "wide"
	if wide {
		fmt.Fprintln(tw, "TENANT\tNAME\tNATION\tSECTOR\tCEILING\tMEMBERS\tMAX PLACEMENTS\tETAG")
	} else {
		fmt.Fprintln(tw, "TENANT\tNAME\tNATION\tSECTOR")
	}
	for _, t := range ts {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s", t.GetId(), t.GetName(), t.GetNation(), t.GetSector())
		if wide {
			var members []string
			for _, m := range t.GetMembers() {
				members = append(members, m.GetName())
			}
			fmt.Fprintf(tw, "\t%s\t%s\t%d\t%s", t.GetCeiling(), dash(strings.Join(members, ",")), t.GetMaxPlacements(), dash(t.GetEtag()))
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}

func (c *cli) providerCmd() *cobra.Command {
	var file, etag string
	get := &cobra.Command{
		Use:   "get ID",
		Short: "Show a provider",
		Long:  "get shows a provider. -o yaml or -o json prints its document, with its etag, which provider put -f takes back.",
		Args:  args(1, "one provider id"),
		RunE: c.action(func(cmd *cobra.Command, a []string) error {
			return c.call(func(ctx context.Context, cc *grpc.ClientConn) error {
				resp, err := pb.NewCatalogServiceClient(cc).GetProvider(ctx, &pb.GetProviderRequest{Id: a[0]})
				if err != nil {
					return err
				}
				return c.printProviders([]*pb.Provider{resp.GetProvider()}, true)
			})
		}),
	}
	put := &cobra.Command{
		Use:   "put -f PROVIDER.yaml",
		Short: "Create or replace a provider",
		Long: `put writes the provider document of PROVIDER.yaml (what provider get -o yaml
prints). With the etag it carries, the write fails (ABORTED) if the
provider changed since it was read.`,
		Args: args(0, ""),
		RunE: c.action(func(cmd *cobra.Command, _ []string) error {
			d, err := readDoc[convert.ProviderDoc](file)
			if err != nil {
				return err
			}
			return c.call(func(ctx context.Context, cc *grpc.ClientConn) error {
				resp, err := pb.NewCatalogServiceClient(cc).PutProvider(ctx, &pb.PutProviderRequest{Provider: d.Proto()})
				if err != nil {
					return err
				}
				if c.structured() {
					return c.printProviders([]*pb.Provider{resp.GetProvider()}, true)
				}
				fmt.Fprintf(c.stdout, "provider %s stored (etag %s)\n", resp.GetProvider().GetId(), dash(resp.GetProvider().GetEtag()))
				return nil
			})
		}),
	}
	put.Flags().StringVarP(&file, "file", "f", "", "the provider document (YAML or JSON); - reads stdin")
	_ = put.MarkFlagRequired("file")
	del := &cobra.Command{
		Use:   "delete ID",
		Short: "Delete a provider that has no regions",
		Args:  args(1, "one provider id"),
		RunE: c.action(func(cmd *cobra.Command, a []string) error {
			return c.call(func(ctx context.Context, cc *grpc.ClientConn) error {
				if _, err := pb.NewCatalogServiceClient(cc).DeleteProvider(ctx, &pb.DeleteProviderRequest{Id: a[0], Etag: etag}); err != nil {
					return err
				}
				fmt.Fprintf(c.stdout, "provider %s deleted\n", a[0])
				return nil
			})
		}),
	}
	del.Flags().StringVar(&etag, "etag", "", "delete only if the provider is still at this etag (provider get -o wide, yaml or json shows it)")
	return group("provider", "List, read and change providers", c.providerListCmd(), get, put, del)
}

func (c *cli) providerListCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List providers",
		Args:  args(0, ""),
		RunE: c.action(func(cmd *cobra.Command, _ []string) error {
			return c.call(func(ctx context.Context, cc *grpc.ClientConn) error {
				resp, err := pb.NewCatalogServiceClient(cc).ListProviders(ctx, &pb.ListProvidersRequest{})
				if err != nil {
					return err
				}
				return c.printProviders(resp.GetProviders(), false)
			})
		}),
	}
}

func (c *cli) printProviders(ps []*pb.Provider, one bool) error {
	if c.structured() {
		docs := make([]convert.ProviderDoc, 0, len(ps))
		for _, p := range ps {
			d, err := convert.ProviderDocFromProto(p)
			if err != nil {
				return err
			}
			docs = append(docs, d)
		}
		if one && len(docs) == 1 {
			return convert.EncodeDoc(c.stdout, c.output, docs[0])
		}
		return convert.EncodeDoc(c.stdout, c.output, docs)
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	if c.output == "wide" {
		fmt.Fprintln(tw, "PROVIDER\tNAME\tJURISDICTION\tETAG")
	} else {
		fmt.Fprintln(tw, "PROVIDER\tNAME\tJURISDICTION")
	}
	for _, p := range ps {
		fmt.Fprintf(tw, "%s\t%s\t%s", p.GetId(), p.GetName(), p.GetJurisdiction())
		if c.output == "wide" {
			fmt.Fprintf(tw, "\t%s", dash(p.GetEtag()))
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}
