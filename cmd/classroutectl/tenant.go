package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"

	"google.golang.org/grpc"
	"gopkg.in/yaml.v3"

	pb "github.com/classroute/classroute/proto/classroute/v1"
	"github.com/classroute/classroute/router"
	"github.com/classroute/classroute/router/convert"
)

// tenantUsage documents the tenant command; it is part of usage.
const tenantUsage = `  classroutectl tenant get ID                          print a tenant and its policy as YAML (ceiling,
                                                       region/provider restrictions, members and their roles)
  classroutectl tenant put -f TENANT.yaml              replace it (catalogue administrators)
`

func (c *cli) tenant(fs *flag.FlagSet, args []string) error {
	file := fs.String("f", "", "")
	pos, err := c.flags(fs, args)
	if err != nil {
		return err
	}
	switch {
	case len(pos) == 1 && pos[0] == "put" && *file != "":
		data, err := os.ReadFile(*file)
		if err != nil {
			return err
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		var t router.Tenant
		if err := dec.Decode(&t); err != nil {
			return fmt.Errorf("%s: %w", *file, err)
		}
		return c.call(func(ctx context.Context, cc *grpc.ClientConn) error {
			resp, err := pb.NewCatalogServiceClient(cc).PutTenant(ctx, &pb.PutTenantRequest{Tenant: convert.TenantToProto(&t)})
			if err != nil {
				return err
			}
			if c.output == "json" {
				return c.printJSON(resp)
			}
			fmt.Fprintf(c.stdout, "tenant %s stored\n", t.ID)
			return nil
		})
	case len(pos) == 2 && pos[0] == "get":
		return c.call(func(ctx context.Context, cc *grpc.ClientConn) error {
			resp, err := pb.NewCatalogServiceClient(cc).GetTenant(ctx, &pb.GetTenantRequest{Id: pos[1]})
			if err != nil {
				return err
			}
			if c.output == "json" {
				return c.printJSON(resp)
			}
			var v router.Violations
			t := convert.TenantFromProto(resp.GetTenant(), &v)
			if err := v.Err(); err != nil {
				return err
			}
			out, err := yaml.Marshal(t)
			if err != nil {
				return err
			}
			_, err = c.stdout.Write(out)
			return err
		})
	}
	return usageError{"tenant: want get ID, or put -f TENANT.yaml"}
}
