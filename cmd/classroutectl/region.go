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

// regionUsage documents the region command; it is part of usage.
const regionUsage = `  classroutectl region get KEY                         print a region as YAML (edit it, then region put)
  classroutectl region put -f REGION.yaml              an operational change (status, capacity, cost, ...)
  classroutectl region propose -f REGION.yaml [--reason R]   add a region or change its accreditation: needs a
                                                       second administrator's 'change approve'
  classroutectl region drain|activate|offline KEY      set a region's status; placements leave a drained region
  classroutectl region revoke KEY [--reason R]         propose revoking its accreditation; once approved,
                                                       its placements are re-routed
`

// region runs "region SUB ...". Changes are read-modify-write of the
// whole record through PutRegion; the reconciler re-routes what no
// longer qualifies.
func (c *cli) region(fs *flag.FlagSet, args []string) error {
	file := fs.String("f", "", "")
	reason := fs.String("reason", "", "")
	pos, err := c.flags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return usageError{"region: want get, put, propose, drain, activate, offline or revoke"}
	}
	sub, pos := pos[0], pos[1:]
	switch sub {
	case "put", "propose":
		if *file == "" || len(pos) != 0 {
			return usageError{"region " + sub + ": want -f REGION.yaml"}
		}
		data, err := os.ReadFile(*file)
		if err != nil {
			return err
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		var r router.Region
		if err := dec.Decode(&r); err != nil {
			return fmt.Errorf("%s: %w", *file, err)
		}
		if sub == "propose" {
			return c.propose(convert.RegionToProto(router.RegionState{Region: &r}), *reason)
		}
		return c.putRegion(convert.RegionToProto(router.RegionState{Region: &r}))
	case "get", "drain", "activate", "offline", "revoke":
		if len(pos) != 1 {
			return usageError{"region " + sub + ": want one region key provider/id"}
		}
	default:
		return usageError{fmt.Sprintf("region: unknown subcommand %q", sub)}
	}
	var r *pb.Region
	err = c.call(func(ctx context.Context, cc *grpc.ClientConn) error {
		resp, err := pb.NewCatalogServiceClient(cc).GetRegion(ctx, &pb.GetRegionRequest{Key: pos[0]})
		r = resp.GetRegion()
		return err
	})
	if err != nil {
		return err
	}
	switch sub {
	case "get":
		if c.output == "json" {
			return c.printJSON(r)
		}
		var v router.Violations
		rr := convert.RegionFromProto(r, &v)
		if err := v.Err(); err != nil {
			return err
		}
		out, err := yaml.Marshal(rr)
		if err != nil {
			return err
		}
		_, err = c.stdout.Write(out)
		return err
	case "drain":
		r.Status = pb.RegionStatus_REGION_STATUS_DRAINING
	case "activate":
		r.Status = pb.RegionStatus_REGION_STATUS_ACTIVE
	case "offline":
		r.Status = pb.RegionStatus_REGION_STATUS_OFFLINE
	case "revoke":
		if r.Accreditation == nil {
			r.Accreditation = &pb.Accreditation{}
		}
		r.Accreditation.Revoked = true
		return c.propose(r, *reason)
	}
	return c.putRegion(r)
}

func (c *cli) putRegion(r *pb.Region) error {
	// Output-only fields are not the caller's to set.
	r.Key, r.Used, r.Health = "", nil, nil
	return c.call(func(ctx context.Context, cc *grpc.ClientConn) error {
		resp, err := pb.NewCatalogServiceClient(cc).PutRegion(ctx, &pb.PutRegionRequest{Region: r})
		if err != nil {
			return err
		}
		if c.output == "json" {
			return c.printJSON(resp)
		}
		fmt.Fprintf(c.stdout, "region %s/%s stored at revision %d (status %s, revoked %v)\n",
			resp.GetRegion().GetProvider(), resp.GetRegion().GetId(), resp.GetRevision(),
			resp.GetRegion().GetStatus(), resp.GetRegion().GetAccreditation().GetRevoked())
		return nil
	})
}
