package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	pb "github.com/classroute/classroute/proto/classroute/v1"
	"github.com/classroute/classroute/router"
	"github.com/classroute/classroute/router/client"
	"github.com/classroute/classroute/router/convert"
	"github.com/classroute/classroute/router/spec"
)

func (c *cli) placeCmd() *cobra.Command {
	var file, reqID string
	cmd := &cobra.Command{
		Use:   "place -f SPEC.yaml",
		Short: "Decide and commit a placement of a workload",
		Long: `place decides where the workload of SPEC.yaml may run and commits the
placement, or refuses with every region's reasons.

It prints the request id first. Every try carries that id, and the daemon
places a request id once: a try whose outcome is unknown (UNAVAILABLE,
ABORTED, a lost connection) is retried with the same id, and if the
command itself runs out of time, placing again with --request-id ID
answers with the placement made, never a second one.

SPEC.yaml is a workload spec (docs/workload-spec.md), or what
'placement spec ID' prints.`,
		Example: `  classroutectl place -f examples/kenya-health-records.yaml
  classroutectl place -f spec.yaml --request-id req-2f9c... -o json`,
		Args: args(0, ""),
		RunE: c.action(func(cmd *cobra.Command, _ []string) error {
			w, err := readSpec(file)
			if err != nil {
				return err
			}
			if reqID == "" {
				reqID = client.NewRequestID()
			}
			// The id first, where a script or a person finds it even if
			// the call never returns: on stdout for a table, on stderr
			// when stdout is a document.
			out := c.stdout
			if c.structured() {
				out = c.stderr
			}
			fmt.Fprintf(out, "request-id: %s\n", reqID)
			return c.with(func(ctx context.Context, cl *client.Client) error {
				placed, err := cl.Place(ctx, w, client.WithRequestID(reqID))
				if err != nil {
					var pe *client.PlaceError
					if errors.As(err, &pe) && pe.OutcomeUnknown() {
						fmt.Fprintf(c.stderr, "classroutectl: the outcome is unknown after %d tries; to learn it, place again with --request-id %s\n", pe.Attempts, pe.RequestID)
					}
					return err
				}
				if c.structured() {
					return c.printProto(&pb.PlaceResponse{Placement: placed.Placement})
				}
				c.printPlacement(placed.Placement)
				return nil
			})
		}),
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "the workload spec (YAML or JSON); - reads stdin")
	cmd.Flags().StringVar(&reqID, "request-id", "", "place under this request id (default: a new one): to retry a place whose outcome is unknown")
	_ = cmd.MarkFlagRequired("file")
	return cmd
}

func (c *cli) planCmd() *cobra.Command {
	var file string
	var exit bool
	cmd := &cobra.Command{
		Use:   "plan -f SPEC.yaml",
		Short: "Decide without committing: every region's verdict",
		Long: `plan decides where the workload of SPEC.yaml would go, commits nothing, and
prints every region's verdict: chosen, eligible (with its score) or
refused (with the reasons).

With --exit-code the exit status says the outcome, for pipelines: 0 the
workload is placeable, 1 it is refused, 2 the plan could not be made
(bad spec, daemon unreachable, denied).`,
		Example: `  classroutectl plan -f examples/kenya-wants-south-africa.yaml
  classroutectl plan -f spec.yaml --exit-code -o json > plan.json || echo refused`,
		Args: args(0, ""),
		RunE: c.action(func(cmd *cobra.Command, _ []string) error {
			err := c.plan(file)
			if exit && err != nil {
				var code exitCode
				if !errors.As(err, &code) {
					printError(c.stderr, err)
					return exitCode(2)
				}
			}
			if !exit {
				var code exitCode
				if errors.As(err, &code) {
					return nil // refused, but the caller did not ask
				}
			}
			return err
		}),
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "the workload spec (YAML or JSON); - reads stdin")
	cmd.Flags().BoolVar(&exit, "exit-code", false, "exit 0 when placeable, 1 when refused, 2 on error")
	_ = cmd.MarkFlagRequired("file")
	return cmd
}

// plan prints the plan of the spec in file; a refused plan is exitCode(1).
func (c *cli) plan(file string) error {
	w, err := readSpec(file)
	if err != nil {
		return err
	}
	return c.with(func(ctx context.Context, cl *client.Client) error {
		resp, err := cl.Plan(ctx, w)
		if err != nil {
			return err
		}
		if c.structured() {
			err = c.printProto(resp)
		} else {
			c.printPlan(resp)
		}
		if err == nil && resp.GetRefusal() != "" {
			return exitCode(1)
		}
		return err
	})
}

func (c *cli) printPlan(resp *pb.PlanResponse) {
	fmt.Fprintf(c.stdout, "label:    %s\n", labelText(resp.GetLabel()))
	if rev := resp.GetRevision(); rev != 0 { // 0 for a tenant's users
		fmt.Fprintf(c.stdout, "revision: %d\n", rev)
	}
	if resp.GetRefusal() != "" {
		fmt.Fprintf(c.stdout, "refused:  %s\n", resp.GetRefusal())
	} else {
		fmt.Fprintf(c.stdout, "chosen:   %s\n", strings.Join(resp.GetChosen(), ", "))
	}
	fmt.Fprintln(c.stdout)
	printVerdicts(c.stdout, resp.GetRegions())
}

// readSpec reads a workload spec (YAML or JSON; "-" is stdin); unknown
// fields are errors.
func readSpec(path string) (*pb.Workload, error) {
	data, err := readInput(path)
	if err != nil {
		return nil, err
	}
	w, err := spec.Parse(data, path)
	if err != nil {
		return nil, err
	}
	pw := convert.WorkloadToProto(w)
	// A spec's scheme is as written: empty lets the daemon read the
	// label in the scheme its syntax names, or the tenant's.
	pw.Scheme = string(w.Scheme)
	return pw, nil
}

func (c *cli) placementCmd() *cobra.Command {
	return group("placement", "Read, list, release and watch placements",
		c.getCmd("get ID"), c.listCmd("list"), c.releaseCmd("release ID"), c.watchCmd("watch"), c.specCmd())
}

// shortcuts are the verbs of placements at the top level, as before the
// noun-verb forms, and the plural nouns listing the catalogue.
func (c *cli) shortcuts() []*cobra.Command {
	regions := c.regionListCmd()
	regions.Use, regions.Short = "regions", "List regions (region list)"
	providers := c.providerListCmd()
	providers.Use, providers.Short = "providers", "List providers (provider list)"
	tenants := c.tenantListCmd()
	tenants.Use, tenants.Short = "tenants", "List tenants (tenant list)"
	get, list, release, watch := c.getCmd("get ID"), c.listCmd("list"), c.releaseCmd("release ID"), c.watchCmd("watch")
	get.Short, list.Short, release.Short, watch.Short = "Show a placement (placement get)", "List placements (placement list)",
		"Release a placement (placement release)", "Stream placement changes (placement watch)"
	return []*cobra.Command{get, list, release, watch, regions, providers, tenants}
}

func (c *cli) getCmd(use string) *cobra.Command {
	return c.onePlacementCmd(use, "Show a placement", `get shows the placement with request id ID: where each replica runs, its
state, and anything the reconciler found (a region that no longer covers
it, a move under way).

--tenant names the tenant whose request id it is: a tenant's user may omit
it (its own tenant); others may omit it while one tenant only used the id.`,
		"  classroutectl placement get req-2f9c... --tenant ke-moh",
		func(ctx context.Context, cl *client.Client, id, tenant string) (proto.Message, *pb.Placement, error) {
			p, err := cl.Get(ctx, id, tenant)
			return &pb.GetResponse{Placement: p}, p, err
		})
}

func (c *cli) releaseCmd(use string) *cobra.Command {
	return c.onePlacementCmd(use, "Release a placement's capacity",
		"release releases the placement with request id ID (--tenant as for get). Releasing twice is harmless.", "",
		func(ctx context.Context, cl *client.Client, id, tenant string) (proto.Message, *pb.Placement, error) {
			p, err := cl.Release(ctx, id, tenant)
			return &pb.ReleaseResponse{Placement: p}, p, err
		})
}

// onePlacementCmd is a command on one placement, named by its request id
// and --tenant, that prints the placement do returns (-o json|yaml: the
// response).
func (c *cli) onePlacementCmd(use, short, long, example string,
	do func(ctx context.Context, cl *client.Client, id, tenant string) (proto.Message, *pb.Placement, error)) *cobra.Command {
	var tenant string
	cmd := &cobra.Command{
		Use:     use,
		Short:   short,
		Long:    long,
		Example: example,
		Args:    args(1, "one placement id"),
		RunE: c.action(func(cmd *cobra.Command, a []string) error {
			return c.with(func(ctx context.Context, cl *client.Client) error {
				resp, p, err := do(ctx, cl, a[0], tenant)
				if err != nil {
					return err
				}
				if c.structured() {
					return c.printProto(resp)
				}
				c.printPlacement(p)
				return nil
			})
		}),
	}
	cmd.Flags().StringVar(&tenant, "tenant", "", "the tenant whose request id ID is")
	return cmd
}

// states are the values of --state.
var states = map[string]pb.PlacementState{
	"placed":    pb.PlacementState_PLACEMENT_STATE_PLACED,
	"released":  pb.PlacementState_PLACEMENT_STATE_RELEASED,
	"stranded":  pb.PlacementState_PLACEMENT_STATE_STRANDED,
	"violation": pb.PlacementState_PLACEMENT_STATE_VIOLATION,
}

func (c *cli) listCmd(use string) *cobra.Command {
	var req pb.ListRequest
	var state string
	var limit int
	var pageSize int32
	cmd := &cobra.Command{
		Use:   use,
		Short: "List placements",
		Long: `list lists placements, page after page by itself, until --limit placements
(0: all). --page-token fetches the one page it names instead, and prints
the token of the next.`,
		Example: `  classroutectl placement list --tenant ke-moh --state placed
  classroutectl placement list --region ke-gov/konza-1 --limit 20 -o wide`,
		Args: args(0, ""),
		RunE: c.action(func(cmd *cobra.Command, _ []string) error {
			if state != "" {
				st, ok := states[state]
				if !ok {
					return usageError{fmt.Sprintf("--state %q: want placed, released, stranded or violation", state)}
				}
				req.State = st
			}
			if limit < 0 || pageSize < 0 {
				return usageError{"--limit and --page-size must not be negative"}
			}
			req.PageSize = pageSize
			return c.with(func(ctx context.Context, cl *client.Client) error {
				var resp *pb.ListResponse
				if req.PageToken != "" {
					var err error
					if resp, err = cl.ListPage(ctx, &req); err != nil {
						return err
					}
				} else {
					// Page after page; the first page's revision and
					// resume token are where a watch follows the list
					// without a gap (ListResponse).
					page := proto.Clone(&req).(*pb.ListRequest)
					for {
						if limit > 0 {
							size := int32(100) // the daemon's default
							if pageSize > 0 {
								size = pageSize
							}
							left := int32(limit)
							if resp != nil {
								left -= int32(len(resp.Placements))
							}
							page.PageSize = min(size, left)
						}
						r, err := cl.ListPage(ctx, page)
						if err != nil {
							return err
						}
						if resp == nil {
							resp = &pb.ListResponse{Revision: r.GetRevision(), ResumeToken: r.GetResumeToken()}
						}
						resp.Placements = append(resp.Placements, r.GetPlacements()...)
						if limit > 0 && len(resp.Placements) >= limit {
							// Pages never run past the limit (see the page
							// size above): the next page's token goes on.
							resp.NextPageToken = r.GetNextPageToken()
							break
						}
						if page.PageToken = r.GetNextPageToken(); page.PageToken == "" {
							break
						}
					}
				}
				if c.structured() {
					return c.printProto(resp)
				}
				c.printPlacements(resp.GetPlacements())
				if t := resp.GetNextPageToken(); t != "" {
					fmt.Fprintf(c.stdout, "next page: --page-token %s\n", t)
				}
				return nil
			})
		}),
	}
	f := cmd.Flags()
	f.StringVar(&req.Tenant, "tenant", "", "only this tenant's placements")
	f.StringVar(&req.Region, "region", "", "only placements with a replica in this region (provider/id)")
	f.StringVar(&state, "state", "", "only placements in this state: placed, released, stranded or violation")
	f.IntVar(&limit, "limit", 0, "list at most this many (0: all)")
	f.Int32Var(&pageSize, "page-size", 0, "placements per call (0: the daemon's default)")
	f.StringVar(&req.PageToken, "page-token", "", "fetch only the page this token names (from a previous list)")
	return cmd
}

func (c *cli) printPlacements(ps []*pb.Placement) {
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	wide := c.output == "wide"
	if wide {
		fmt.Fprintln(tw, "ID\tTENANT\tWORKLOAD\tSTATE\tLABEL\tREGIONS\tREPLICAS\tMOVES\tCREATED\tDECIDED AT")
	} else {
		fmt.Fprintln(tw, "ID\tTENANT\tWORKLOAD\tSTATE\tLABEL\tREGIONS")
	}
	for _, p := range ps {
		var regions, replicas []string
		for _, a := range p.GetAssignments() {
			regions = append(regions, a.GetRegion())
			replicas = append(replicas, strings.TrimSpace(replicaNote(a)))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s", p.GetId(), p.GetTenant(), p.GetWorkload().GetName(),
			stateName(p.GetState()), labelText(p.GetLabel()), strings.Join(regions, ","))
		if wide {
			created := "-"
			if t := p.GetCreateTime(); t != nil {
				created = t.AsTime().UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "\t%s\t%d\t%s\t%d", dash(strings.Trim(strings.Join(replicas, ","), ",")), p.GetMoves(), created, p.GetDecidedAtRevision())
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
}

func (c *cli) watchCmd(use string) *cobra.Command {
	var req pb.WatchRequest
	cmd := &cobra.Command{
		Use:   use,
		Short: "Stream placement changes",
		Long: `watch streams placement changes, one line each: REVISION TYPE ID STATE
REGIONS (-o json: one WatchResponse per event per line, the last event of
each revision with the resume token that --after-token takes). After a
disconnect it resumes after the last change seen, so no change is lost or
printed twice, until interrupted. --timeout does not apply.`,
		Example: "  classroutectl placement watch --tenant ke-moh",
		Args:    args(0, ""),
		RunE: c.action(func(cmd *cobra.Command, _ []string) error {
			if req.AfterRevision < 0 || req.AfterRevision != 0 && req.ResumeToken != "" {
				return usageError{"--after must not be negative; set --after or --after-token, not both"}
			}
			cl, err := c.client()
			if err != nil {
				return err
			}
			ctx, stop := signalContext()
			defer stop()
			return c.hint(cl.Watch(ctx, &req, func(resp *pb.WatchResponse) error {
				for i := range resp.GetEvents() {
					if err := c.printEvent(resp, i); err != nil {
						return err // stdout closed
					}
				}
				return nil
			}, client.OnInterrupt(func(err error, in time.Duration) {
				st, _ := status.FromError(err)
				fmt.Fprintf(c.stderr, "classroutectl: watch interrupted (%s: %s); resuming in %v\n", st.Code(), st.Message(), in)
			})))
		}),
	}
	f := cmd.Flags()
	f.StringVar(&req.Tenant, "tenant", "", "only this tenant's placements")
	f.StringVar(&req.Workload, "workload", "", "only placements of this workload name")
	f.StringVar(&req.Region, "region", "", "only placements with a replica in this region (provider/id)")
	f.Int64Var(&req.AfterRevision, "after", 0, "replay changes after this etcd revision first")
	f.StringVar(&req.ResumeToken, "after-token", "", "resume after this token (from a previous watch)")
	return cmd
}

func (c *cli) specCmd() *cobra.Command {
	var tenant string
	cmd := &cobra.Command{
		Use:   "spec ID",
		Short: "Print a placement's workload spec, as place -f and plan -f read it",
		Long: `spec prints the workload spec of placement ID in the spec file's own schema
(YAML, or JSON with -o json): place -f and plan -f read it back unchanged.`,
		Example: "  classroutectl placement spec req-2f9c... > spec.yaml && classroutectl plan -f spec.yaml",
		Args:    args(1, "one placement id"),
		RunE: c.action(func(cmd *cobra.Command, a []string) error {
			return c.with(func(ctx context.Context, cl *client.Client) error {
				p, err := cl.Get(ctx, a[0], tenant)
				if err != nil {
					return err
				}
				var v router.Violations
				w := convert.WorkloadFromProto(p.GetWorkload(), &v)
				if err := v.Err(); err != nil {
					return err
				}
				format := "yaml"
				if c.output == "json" {
					format = "json"
				}
				return convert.EncodeDoc(c.stdout, format, w)
			})
		}),
	}
	cmd.Flags().StringVar(&tenant, "tenant", "", "the tenant whose request id ID is")
	return cmd
}
