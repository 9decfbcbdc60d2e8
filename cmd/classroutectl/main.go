// Command classroutectl is the command-line client of classrouted.
package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	pb "github.com/classroute/classroute/proto/classroute/v1"
	"github.com/classroute/classroute/router/authz"
	"github.com/classroute/classroute/router/convert"
	"github.com/classroute/classroute/router/spec"
)

const usage = `classroutectl talks to classrouted.

Usage:
  classroutectl place -f SPEC.yaml [--request-id ID]   decide and commit a placement
  classroutectl plan -f SPEC.yaml                      decide without committing; every region's verdict
  classroutectl get ID [--tenant T]                    show a placement: request id ID of tenant T
                                                       (a tenant's user: its own tenant; others may
                                                       omit it while one tenant only used the id)
  classroutectl list [--tenant T] [--region P/ID] [--state placed|released|stranded|violation] [--page-size N] [--page-token T]
  classroutectl release ID [--tenant T]                release a placement's capacity (--tenant as for get)
  classroutectl watch [--tenant T] [--workload W] [--region P/ID] [--after REV | --after-token TOKEN]
                                                       stream placement changes, one line each:
                                                       REVISION TYPE ID STATE REGIONS (-o json: one
                                                       WatchResponse per event); after a disconnect it
                                                       resumes after the last change seen, until
                                                       interrupted
  classroutectl regions [--provider P]                 list regions with accreditation and usage
  classroutectl providers                              list providers
  classroutectl tenants                                list tenants
` + regionUsage + agentUsage + auditUsage + certsUsage + `  classroutectl label check 'BANNER'                   parse a banner marking; print its canonical form

Flags for every command:
  --server ADDR   classrouted address (default $CLASSROUTE_SERVER or 127.0.0.1:7400)
  -o FORMAT       table (default) or json
  --timeout D     per-call deadline (default 30s)
  --as NAME       who you are to a daemon in its loopback development mode
                  (default $CLASSROUTE_AS), e.g. to propose as one administrator
                  and approve as another
  --tls-ca F      CA certificate (PEM) the server's certificate must chain to;
                  set, the connection is TLS (default $CLASSROUTE_TLS_CA)
  --tls-cert F    client certificate (PEM): your identity, one SPIFFE ID
                  (default $CLASSROUTE_TLS_CERT)
  --tls-key F     its private key (default $CLASSROUTE_TLS_KEY)

Exit status: 0 on success, 1 when the server refuses or fails (the status
message is printed), 2 on a usage error.
`

// cli is one invocation: parsed flags and output streams.
type cli struct {
	server string
	// tlsCA, tlsCert and tlsKey make the connection mutual TLS.
	tlsCA, tlsCert, tlsKey string
	output                 string
	timeout                time.Duration
	stdout                 io.Writer
	stderr                 io.Writer
	// as names the caller in the daemon's loopback development mode
	// (--as NAME), to try two-person changes alone.
	as string
}

type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stdout, usage)
		return 0
	}
	err := dispatch(args, stdout, stderr)
	var ue usageError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprint(stdout, usage)
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "classroutectl: %s\n\n%s", ue.msg, usage)
		return 2
	default:
		printError(stderr, err)
		return 1
	}
}

// flags parses a subcommand's flags, which may sit before or after its
// positional arguments, and returns the positional ones.
func (c *cli) flags(fs *flag.FlagSet, args []string) ([]string, error) {
	fs.SetOutput(io.Discard)
	def := os.Getenv("CLASSROUTE_SERVER")
	if def == "" {
		def = "127.0.0.1:7400"
	}
	fs.StringVar(&c.server, "server", def, "")
	fs.StringVar(&c.output, "o", "table", "")
	fs.DurationVar(&c.timeout, "timeout", 30*time.Second, "")
	fs.StringVar(&c.as, "as", os.Getenv("CLASSROUTE_AS"), "")
	fs.StringVar(&c.tlsCA, "tls-ca", os.Getenv("CLASSROUTE_TLS_CA"), "")
	fs.StringVar(&c.tlsCert, "tls-cert", os.Getenv("CLASSROUTE_TLS_CERT"), "")
	fs.StringVar(&c.tlsKey, "tls-key", os.Getenv("CLASSROUTE_TLS_KEY"), "")
	pos, err := parse(fs, args)
	if err != nil {
		return nil, err
	}
	if c.output != "table" && c.output != "json" {
		return nil, usageError{fmt.Sprintf("-o %q: want table or json", c.output)}
	}
	if (c.tlsCert == "") != (c.tlsKey == "") {
		return nil, usageError{"--tls-cert and --tls-key go together"}
	}
	if c.tlsCert != "" && c.tlsCA == "" {
		return nil, usageError{"--tls-cert needs --tls-ca: the CA that signed the server's certificate"}
	}
	return pos, nil
}

// parse parses fs's flags, which may sit before or after the positional
// arguments, and returns the positional ones.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	fs.SetOutput(io.Discard)
	var pos []string
	for {
		if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
			return nil, err // -h: the usage, on stdout
		} else if err != nil {
			return nil, usageError{fs.Name() + ": " + err.Error()}
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func dispatch(args []string, stdout, stderr io.Writer) error {
	c := &cli{stdout: stdout, stderr: stderr}
	cmd, args := args[0], args[1:]
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	switch cmd {
	case "place", "plan":
		file := fs.String("f", "", "")
		reqID := fs.String("request-id", "", "")
		if _, err := c.flags(fs, args); err != nil {
			return err
		}
		if *file == "" {
			return usageError{cmd + ": -f SPEC.yaml is required"}
		}
		w, err := readSpec(*file)
		if err != nil {
			return err
		}
		if cmd == "plan" {
			return c.plan(w)
		}
		return c.place(w, *reqID)
	case "get", "release":
		tenant := fs.String("tenant", "", "")
		pos, err := c.flags(fs, args)
		if err != nil {
			return err
		}
		if len(pos) != 1 {
			return usageError{cmd + ": want exactly one placement id"}
		}
		return c.getOrRelease(cmd, *tenant, pos[0])
	case "list":
		var req pb.ListRequest
		fs.StringVar(&req.Tenant, "tenant", "", "")
		fs.StringVar(&req.Region, "region", "", "")
		state := fs.String("state", "", "")
		pageSize := fs.Int("page-size", 0, "")
		fs.StringVar(&req.PageToken, "page-token", "", "")
		if _, err := c.flags(fs, args); err != nil {
			return err
		}
		switch *state {
		case "":
		case "placed":
			req.State = pb.PlacementState_PLACEMENT_STATE_PLACED
		case "released":
			req.State = pb.PlacementState_PLACEMENT_STATE_RELEASED
		case "stranded":
			req.State = pb.PlacementState_PLACEMENT_STATE_STRANDED
		case "violation":
			req.State = pb.PlacementState_PLACEMENT_STATE_VIOLATION
		default:
			return usageError{fmt.Sprintf("list: --state %q: want placed, released, stranded or violation", *state)}
		}
		req.PageSize = int32(*pageSize)
		return c.list(&req)
	case "watch":
		var req pb.WatchRequest
		fs.StringVar(&req.Tenant, "tenant", "", "")
		fs.StringVar(&req.Workload, "workload", "", "")
		fs.StringVar(&req.Region, "region", "", "")
		fs.Int64Var(&req.AfterRevision, "after", 0, "")
		fs.StringVar(&req.ResumeToken, "after-token", "", "")
		pos, err := c.flags(fs, args)
		if err != nil {
			return err
		}
		if len(pos) > 0 || req.AfterRevision < 0 || req.AfterRevision != 0 && req.ResumeToken != "" {
			return usageError{"watch: takes no arguments; --after must not be negative; set --after or --after-token, not both"}
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		return c.watch(ctx, &req)
	case "regions":
		provider := fs.String("provider", "", "")
		if _, err := c.flags(fs, args); err != nil {
			return err
		}
		return c.regions(*provider)
	case "providers", "tenants":
		if _, err := c.flags(fs, args); err != nil {
			return err
		}
		return c.catalog(cmd)
	case "region":
		return c.region(fs, args)
	case "change":
		return c.change(fs, args)
	case "tenant":
		return c.tenant(fs, args)
	case "agent":
		return c.agent(fs, args)
	case "audit":
		return c.audit(fs, args)
	case "certs":
		return c.certs(fs, args)
	case "label":
		pos, err := c.flags(fs, args)
		if err != nil {
			return err
		}
		if len(pos) != 2 || pos[0] != "check" {
			return usageError{"label: want: label check 'BANNER'"}
		}
		return c.checkLabel(pos[1])
	}
	return usageError{fmt.Sprintf("unknown command %q", cmd)}
}

// readSpec reads a workload spec; unknown fields are errors.
func readSpec(path string) (*pb.Workload, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	w, err := spec.Parse(data, path)
	if err != nil {
		return nil, err
	}
	return convert.WorkloadToProto(w), nil
}

func (c *cli) conn() (*grpc.ClientConn, error) {
	creds, err := c.creds()
	if err != nil {
		return nil, err
	}
	return grpc.NewClient(c.server,
		grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20)),
		grpc.WithChainUnaryInterceptor(c.devAsUnary), grpc.WithChainStreamInterceptor(c.devAsStream))
}

// devAsUnary and devAsStream send --as NAME to a development-mode daemon.
func (c *cli) devAsUnary(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	if c.as != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, authz.DevAsHeader, c.as)
	}
	return invoker(ctx, method, req, reply, cc, opts...)
}

func (c *cli) devAsStream(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	if c.as != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, authz.DevAsHeader, c.as)
	}
	return streamer(ctx, desc, cc, method, opts...)
}

// creds are the transport credentials: plaintext without --tls-ca, else
// TLS 1.3 verifying the server against --tls-ca and presenting
// --tls-cert (the caller's identity) when given.
func (c *cli) creds() (credentials.TransportCredentials, error) {
	if c.tlsCA == "" {
		return insecure.NewCredentials(), nil
	}
	pem, err := os.ReadFile(c.tlsCA)
	if err != nil {
		return nil, fmt.Errorf("--tls-ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("--tls-ca %s: no PEM certificate", c.tlsCA)
	}
	tc := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS13}
	if c.tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(c.tlsCert, c.tlsKey)
		if err != nil {
			return nil, fmt.Errorf("--tls-cert/--tls-key: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return credentials.NewTLS(tc), nil
}

// call runs f with a connection and a deadline.
func (c *cli) call(f func(ctx context.Context, cc *grpc.ClientConn) error) error {
	cc, err := c.conn()
	if err != nil {
		return err
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	return c.hint(f(ctx, cc))
}

// hint adds to a connection failure what is most likely wrong with the
// TLS flags: a TLS 1.3 server refuses a missing client certificate only
// after the handshake, which the caller sees as a broken connection.
func (c *cli) hint(err error) error {
	st, ok := status.FromError(err)
	if !ok || st.Code() != codes.Unavailable {
		return err
	}
	switch {
	case c.tlsCA == "":
		return status.Error(codes.Unavailable, st.Message()+" (if the server speaks mutual TLS, give --tls-ca, --tls-cert and --tls-key)")
	case c.tlsCert == "":
		return status.Error(codes.Unavailable, st.Message()+" (the server may require a client certificate: give --tls-cert and --tls-key)")
	}
	return err
}

func (c *cli) printJSON(m proto.Message) error {
	b, err := protojson.MarshalOptions{Multiline: true, Indent: "  ", EmitUnpopulated: false}.Marshal(m)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(c.stdout, string(b))
	return err
}

func newRequestID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "req-" + hex.EncodeToString(b[:])
}

func (c *cli) place(w *pb.Workload, reqID string) error {
	if reqID == "" {
		reqID = newRequestID()
	}
	return c.call(func(ctx context.Context, cc *grpc.ClientConn) error {
		resp, err := pb.NewPlacementServiceClient(cc).Place(ctx, &pb.PlaceRequest{RequestId: reqID, Workload: w})
		if err != nil {
			return err
		}
		if c.output == "json" {
			return c.printJSON(resp)
		}
		c.printPlacement(resp.GetPlacement())
		return nil
	})
}

func (c *cli) plan(w *pb.Workload) error {
	return c.call(func(ctx context.Context, cc *grpc.ClientConn) error {
		resp, err := pb.NewPlacementServiceClient(cc).Plan(ctx, &pb.PlanRequest{Workload: w})
		if err != nil {
			return err
		}
		if c.output == "json" {
			return c.printJSON(resp)
		}
		fmt.Fprintf(c.stdout, "label:    %s\n", resp.GetLabel().GetBanner())
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
		return nil
	})
}

// printVerdicts prints one row per region: eligible first, as the server orders them.
func printVerdicts(out io.Writer, verdicts []*pb.RegionVerdict) {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "REGION\tVERDICT\tSCORE\tREASONS")
	replica := 0
	for _, v := range verdicts {
		verdict, score := "refused", "-"
		switch {
		case v.GetChosen():
			replica++
			verdict = fmt.Sprintf("chosen #%d", replica)
		case v.GetEligible():
			verdict = "eligible"
		}
		if v.GetEligible() {
			score = fmt.Sprintf("%.3f", v.GetScore())
		}
		var why []string
		for _, r := range v.GetReasons() {
			why = append(why, r.GetCode()+": "+r.GetMessage())
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", v.GetRegion(), verdict, score, strings.Join(why, "; "))
	}
	tw.Flush()
}

func (c *cli) printPlacement(p *pb.Placement) {
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "placement:\t%s\n", p.GetId())
	fmt.Fprintf(tw, "workload:\t%s\n", p.GetWorkload().GetName())
	fmt.Fprintf(tw, "tenant:\t%s\n", p.GetTenant())
	fmt.Fprintf(tw, "label:\t%s\n", p.GetLabel().GetBanner())
	fmt.Fprintf(tw, "state:\t%s\n", stateName(p.GetState()))
	for i, a := range p.GetAssignments() {
		fmt.Fprintf(tw, "replica %d:\t%s\t(score %.3f)%s\n", i+1, a.GetRegion(), a.GetScore(), replicaNote(a))
	}
	for _, is := range p.GetIssues() {
		kind := "must move"
		switch {
		case is.GetViolation() && is.GetStranded():
			kind = "VIOLATION, stranded"
		case is.GetViolation():
			kind = "VIOLATION"
		case is.GetStranded():
			kind = "stranded"
		}
		fmt.Fprintf(tw, "issue:\t%s\t%s since %s\n", is.GetRegion(), kind, is.GetSince().AsTime().UTC().Format(time.RFC3339))
		for _, r := range is.GetReasons() {
			fmt.Fprintf(tw, "\t  %s\t%s\n", r.GetCode(), r.GetMessage())
		}
	}
	for _, r := range p.GetRetiring() {
		fmt.Fprintf(tw, "retiring copy:\t%s\tmoved to %s; released once that copy is confirmed\n", r.GetRegion(), r.GetMovedTo())
	}
	if n := p.GetMoves(); n > 0 {
		fmt.Fprintf(tw, "moves:\t%d\n", n)
	}
	fmt.Fprintf(tw, "decided at revision:\t%d\n", p.GetDecidedAtRevision())
	if t := p.GetCreateTime(); t != nil {
		fmt.Fprintf(tw, "created:\t%s\n", t.AsTime().UTC().Format(time.RFC3339))
	}
	if t := p.GetReleaseTime(); t != nil {
		fmt.Fprintf(tw, "released:\t%s\n", t.AsTime().UTC().Format(time.RFC3339))
	}
	tw.Flush()
}

// enumName turns an API enum name into the domain's spelling:
// LEVEL_TOP_SECRET -> TOP SECRET, PERSONNEL_CLEARED_SECRET -> CLEARED-SECRET.
func enumName(name, prefix, sep string) string {
	return strings.ReplaceAll(strings.TrimPrefix(name, prefix), "_", sep)
}

// usaFirst orders nations as a REL TO list does: USA, then the rest.
func usaFirst(nations []string) []string {
	out := make([]string, 0, len(nations))
	for _, n := range nations {
		if n == "USA" {
			out = append(out, n)
		}
	}
	for _, n := range nations {
		if n != "USA" {
			out = append(out, n)
		}
	}
	return out
}

// replicaNote is what a replica's agent last acknowledged, if anything.
func replicaNote(a *pb.Assignment) string {
	st := a.GetState()
	if st == pb.ReplicaState_REPLICA_STATE_UNSPECIFIED || st == pb.ReplicaState_REPLICA_STATE_PENDING {
		return ""
	}
	note := "  " + strings.ToLower(strings.TrimPrefix(st.String(), "REPLICA_STATE_"))
	if d := a.GetStateDetail(); d != "" {
		note += ": " + d
	}
	return note
}

func stateName(s pb.PlacementState) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "PLACEMENT_STATE_"))
}

func (c *cli) getOrRelease(cmd, tenant, id string) error {
	return c.call(func(ctx context.Context, cc *grpc.ClientConn) error {
		client := pb.NewPlacementServiceClient(cc)
		var p *pb.Placement
		var resp proto.Message
		if cmd == "get" {
			r, err := client.Get(ctx, &pb.GetRequest{Id: id, Tenant: tenant})
			if err != nil {
				return err
			}
			p, resp = r.GetPlacement(), r
		} else {
			r, err := client.Release(ctx, &pb.ReleaseRequest{Id: id, Tenant: tenant})
			if err != nil {
				return err
			}
			p, resp = r.GetPlacement(), r
		}
		if c.output == "json" {
			return c.printJSON(resp)
		}
		c.printPlacement(p)
		return nil
	})
}

func (c *cli) list(req *pb.ListRequest) error {
	return c.call(func(ctx context.Context, cc *grpc.ClientConn) error {
		resp, err := pb.NewPlacementServiceClient(cc).List(ctx, req)
		if err != nil {
			return err
		}
		if c.output == "json" {
			return c.printJSON(resp)
		}
		tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tTENANT\tWORKLOAD\tSTATE\tLABEL\tREGIONS")
		for _, p := range resp.GetPlacements() {
			var regions []string
			for _, a := range p.GetAssignments() {
				regions = append(regions, a.GetRegion())
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", p.GetId(), p.GetTenant(), p.GetWorkload().GetName(),
				stateName(p.GetState()), p.GetLabel().GetBanner(), strings.Join(regions, ","))
		}
		tw.Flush()
		if t := resp.GetNextPageToken(); t != "" {
			fmt.Fprintf(c.stdout, "next page: --page-token %s\n", t)
		}
		return nil
	})
}

func (c *cli) regions(provider string) error {
	return c.call(func(ctx context.Context, cc *grpc.ClientConn) error {
		resp, err := pb.NewCatalogServiceClient(cc).ListRegions(ctx, &pb.ListRegionsRequest{Provider: provider})
		if err != nil {
			return err
		}
		if c.output == "json" {
			return c.printJSON(resp)
		}
		tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "REGION\tCOUNTRY\tOPERATORS\tLEVEL\tDOMAIN\tPERSONNEL\tCUSTOMERS\tSTATUS\tHEALTH\tAGENT\tCPU USED/TOTAL\tEXPIRES\t")
		for _, r := range resp.GetRegions() {
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
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d/%d\t%s\t%s\n", r.GetKey(), r.GetCountry(),
				strings.Join(r.GetOperatorNationalities(), ","),
				enumName(a.GetMaxLevel().String(), "LEVEL_", " "),
				strings.ToLower(enumName(r.GetNetworkDomain().String(), "NETWORK_DOMAIN_", "-")),
				strings.ToLower(enumName(r.GetPersonnel().String(), "PERSONNEL_", "-")),
				strings.Join(r.GetCustomers(), ","),
				strings.ToLower(enumName(r.GetStatus().String(), "REGION_STATUS_", "-")),
				health, agent,
				r.GetUsed().GetMilliCpu(), r.GetCapacity().GetMilliCpu(), expires, note)
		}
		tw.Flush()
		return nil
	})
}

// healthColumns says what a region's agent says: its health ("-" for a
// region no agent has served), and the agent with whether its session is
// live.
func healthColumns(h *pb.RegionHealth) (health, agent string) {
	if h == nil {
		return "-", "-"
	}
	health = "healthy"
	if !h.GetHealthy() {
		health = "unhealthy"
		if r := h.GetReason(); r != "" {
			const n = 40
			if len(r) > n {
				r = strings.ToValidUTF8(r[:n-3], "") + "..."
			}
			health += ": " + r
		}
	}
	agent = h.GetAgent()
	if agent == "" {
		agent = "-"
	}
	if h.GetAgentLive() {
		agent += " (live)"
	} else {
		agent += " (gone)"
	}
	return health, agent
}

func (c *cli) catalog(what string) error {
	return c.call(func(ctx context.Context, cc *grpc.ClientConn) error {
		client := pb.NewCatalogServiceClient(cc)
		tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
		defer tw.Flush()
		if what == "providers" {
			resp, err := client.ListProviders(ctx, &pb.ListProvidersRequest{})
			if err != nil {
				return err
			}
			if c.output == "json" {
				return c.printJSON(resp)
			}
			fmt.Fprintln(tw, "PROVIDER\tNAME\tJURISDICTION")
			for _, p := range resp.GetProviders() {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", p.GetId(), p.GetName(), p.GetJurisdiction())
			}
			return nil
		}
		resp, err := client.ListTenants(ctx, &pb.ListTenantsRequest{})
		if err != nil {
			return err
		}
		if c.output == "json" {
			return c.printJSON(resp)
		}
		fmt.Fprintln(tw, "TENANT\tNAME\tNATION\tSECTOR")
		for _, t := range resp.GetTenants() {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", t.GetId(), t.GetName(), t.GetNation(), t.GetSector())
		}
		return nil
	})
}

func (c *cli) checkLabel(banner string) error {
	return c.call(func(ctx context.Context, cc *grpc.ClientConn) error {
		resp, err := pb.NewCatalogServiceClient(cc).CheckLabel(ctx, &pb.CheckLabelRequest{Banner: banner})
		if err != nil {
			return err
		}
		if c.output == "json" {
			return c.printJSON(resp)
		}
		l := resp.GetLabel()
		fmt.Fprintf(c.stdout, "canonical: %s\n", l.GetBanner())
		fmt.Fprintf(c.stdout, "level:     %s\n", enumName(l.GetLevel().String(), "LEVEL_", " "))
		if len(l.GetControls()) > 0 {
			fmt.Fprintf(c.stdout, "controls:  %s\n", strings.Join(l.GetControls(), ", "))
		}
		if l.GetAnyNation() {
			fmt.Fprintln(c.stdout, "releasable to: any nation")
		} else {
			fmt.Fprintf(c.stdout, "releasable to: %s\n", strings.Join(usaFirst(l.GetNations()), ", "))
		}
		if len(l.GetDissem()) > 0 {
			fmt.Fprintf(c.stdout, "dissemination: %s\n", strings.Join(l.GetDissem(), ", "))
		}
		return nil
	})
}

// printError prints a failed call: the status code and message, then
// the details a person needs to act (bad fields, refusal reasons).
func printError(out io.Writer, err error) {
	st, ok := status.FromError(err)
	if !ok {
		fmt.Fprintf(out, "classroutectl: %v\n", err)
		return
	}
	fmt.Fprintf(out, "classroutectl: %s: %s\n", st.Code(), st.Message())
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *errdetails.BadRequest:
			for _, v := range d.GetFieldViolations() {
				fmt.Fprintf(out, "  field %s: %s\n", v.GetField(), v.GetDescription())
			}
		case *pb.Refusal:
			regions := d.GetRegions()
			sort.SliceStable(regions, func(i, j int) bool { return regions[i].GetEligible() && !regions[j].GetEligible() })
			if rev := d.GetRevision(); rev != 0 {
				fmt.Fprintf(out, "  decided at revision %d; every region's verdict:\n", rev)
			} else {
				fmt.Fprintf(out, "  every region's verdict:\n")
			}
			printVerdicts(out, regions)
		}
	}
}

// Watch resumption backoff bounds.
const (
	watchBackoffMin = 100 * time.Millisecond
	watchBackoffMax = 5 * time.Second
)

// watch prints placement changes until ctx ends. When the stream breaks
// it resumes with the last resume token it received (every response
// holds a whole revision), so across reconnects and daemon restarts no
// change is lost or printed twice. OUT_OF_RANGE and bad input end it.
func (c *cli) watch(ctx context.Context, req *pb.WatchRequest) error {
	cc, err := c.conn()
	if err != nil {
		return err
	}
	defer cc.Close()
	client := pb.NewPlacementServiceClient(cc)
	backoff := watchBackoffMin
	for {
		from := req.GetResumeToken()
		err := c.watchOnce(ctx, client, req)
		if ctx.Err() != nil {
			return nil // interrupted
		}
		if !resumable(err) {
			return err
		}
		if req.GetResumeToken() != from {
			backoff = watchBackoffMin // it made progress
		}
		st, _ := status.FromError(err)
		fmt.Fprintf(c.stderr, "classroutectl: watch interrupted (%s: %s); resuming in %v\n",
			st.Code(), st.Message(), backoff)
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil
		}
		backoff = min(2*backoff, watchBackoffMax)
	}
}

// watchOnce runs one Watch call, printing its events and recording in
// req the resume token of the last response received.
func (c *cli) watchOnce(ctx context.Context, client pb.PlacementServiceClient, req *pb.WatchRequest) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := client.Watch(ctx, req)
	if err != nil {
		return err
	}
	for {
		resp, err := stream.Recv()
		if err != nil {
			return err
		}
		for _, ev := range resp.GetEvents() {
			if err := c.printEvent(resp.GetRevision(), ev); err != nil {
				return status.Error(codes.Canceled, err.Error()) // stdout closed
			}
		}
		req.ResumeToken, req.AfterRevision = resp.GetResumeToken(), 0
	}
}

// resumable reports whether a broken watch should be resumed: the
// daemon was unreachable, stopping, or found the client too slow.
func resumable(err error) bool {
	switch status.Code(err) {
	case codes.Unavailable, codes.ResourceExhausted, codes.Aborted, codes.Unknown, codes.DeadlineExceeded:
		return true
	}
	return false
}

func (c *cli) printEvent(rev int64, ev *pb.PlacementEvent) error {
	if c.output == "json" {
		b, err := protojson.Marshal(&pb.WatchResponse{Revision: rev, Events: []*pb.PlacementEvent{ev}})
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(c.stdout, "%s\n", b)
		return err
	}
	p := ev.GetPlacement()
	var regions []string
	for _, a := range p.GetAssignments() {
		regions = append(regions, a.GetRegion())
	}
	typ := strings.ToLower(strings.TrimPrefix(ev.GetType().String(), "PLACEMENT_EVENT_TYPE_"))
	_, err := fmt.Fprintf(c.stdout, "%d %-8s %s %s %s\n", rev, typ, p.GetId(), stateName(p.GetState()), strings.Join(regions, ","))
	return err
}
