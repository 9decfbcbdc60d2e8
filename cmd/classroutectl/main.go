// Command classroutectl is the command-line client of classrouted, built
// on the Go client library (router/client) with cobra, as kubectl,
// etcdctl and helm are: global flags anywhere, help per command, shell
// completion, typo suggestions, -o table|wide|json|yaml.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	pb "github.com/classroute/classroute/proto/classroute/v1"
	"github.com/classroute/classroute/router/client"
	"github.com/classroute/classroute/router/convert"
	"github.com/classroute/classroute/router/version"
)

// cli is one invocation: global flags, output streams, the connection.
type cli struct {
	cfg     client.Config
	output  string
	timeout time.Duration
	stdout  io.Writer
	stderr  io.Writer

	conn *client.Client
	// cmdCtx is the context of every call of the command: --timeout is
	// the deadline of them all, and SIGINT or SIGTERM ends them.
	cmdCtx  context.Context
	release context.CancelFunc
	// ran is set once a command's own code runs: an error before it is
	// a usage error (flags, arguments, unknown command).
	ran bool
}

// usageError is a command used wrongly: exit status 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// exitCode ends the command with a status of its own (plan --exit-code),
// after the command printed what it had to.
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run runs one command line and returns the exit status: 0 success, 1
// the server refused or failed (the status is printed), 2 a usage error.
func run(args []string, stdout, stderr io.Writer) int {
	c := &cli{stdout: stdout, stderr: stderr}
	root := c.root()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteC()
	if c.release != nil {
		c.release()
	}
	if c.conn != nil {
		c.conn.Close()
	}
	var ue usageError
	var code exitCode
	switch {
	case err == nil:
		return 0
	case errors.As(err, &code):
		return int(code)
	case errors.As(err, &ue) || !c.ran:
		// Named by the command's path, as "classroutectl certs issue: --id: ...".
		fmt.Fprintf(stderr, "%s: %s\nRun '%s --help' for usage.\n", cmd.CommandPath(), strings.TrimSpace(err.Error()), cmd.CommandPath())
		return 2
	default:
		printError(stderr, err)
		return 1
	}
}

// root is the command tree.
func (c *cli) root() *cobra.Command {
	root := &cobra.Command{
		Use:   "classroutectl",
		Short: "classroutectl talks to classrouted, the router of classified and sovereign workloads",
		Long: `classroutectl talks to classrouted: it places workloads on the regions their
security label, residency and export rules allow, or says why none may
take them, and keeps the catalogue of regions, providers and tenants.

Global flags go before or after the command. Environment: CLASSROUTE_SERVER,
CLASSROUTE_TLS_CA, CLASSROUTE_TLS_CERT, CLASSROUTE_TLS_KEY, CLASSROUTE_AS.

Exit status: 0 on success, 1 when the server refuses or fails (the status
and its details are printed), 2 on a usage error.`,
		Version:           version.Get().String(),
		SilenceUsage:      true,
		SilenceErrors:     true,
		DisableAutoGenTag: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error { return c.check() },
	}
	root.SetVersionTemplate("classroutectl {{.Version}}\n")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err.Error()} })
	c.globalFlags(root.PersistentFlags())

	root.AddGroup(
		&cobra.Group{ID: "place", Title: "Placing workloads:"},
		&cobra.Group{ID: "catalog", Title: "The catalogue and its two-person changes:"},
		&cobra.Group{ID: "ops", Title: "Operations:"},
		&cobra.Group{ID: "short", Title: "Shortcuts (the same as the noun-verb forms):"},
	)
	for _, cmd := range []*cobra.Command{c.placeCmd(), c.planCmd(), c.placementCmd(), c.labelCmd()} {
		cmd.GroupID = "place"
		root.AddCommand(cmd)
	}
	for _, cmd := range []*cobra.Command{c.regionCmd(), c.providerCmd(), c.tenantCmd(), c.equivalenceCmd(), c.edgeCmd(), c.serviceCmd(), c.changeCmd()} {
		cmd.GroupID = "catalog"
		root.AddCommand(cmd)
	}
	for _, cmd := range []*cobra.Command{c.agentCmd(), c.auditCmd(), c.certsCmd(), c.versionCmd(), c.docsCmd()} {
		cmd.GroupID = "ops"
		root.AddCommand(cmd)
	}
	for _, cmd := range c.shortcuts() {
		cmd.GroupID = "short"
		root.AddCommand(cmd)
	}
	root.SetHelpCommandGroupID("ops")
	root.SetCompletionCommandGroupID("ops")
	return root
}

// globalFlags are the flags every command takes, before or after it.
func (c *cli) globalFlags(fs *pflag.FlagSet) {
	env := client.FromEnv()
	if env.Server == "" {
		env.Server = client.DefaultServer
	}
	fs.StringVar(&c.cfg.Server, "server", env.Server, "classrouted address host:port ($CLASSROUTE_SERVER)")
	fs.StringVarP(&c.output, "output", "o", "table", "output format: table, wide, json or yaml")
	fs.DurationVar(&c.timeout, "timeout", 30*time.Second, "deadline of all the command's calls together (watch: none)")
	fs.StringVar(&c.cfg.As, "as", env.As, "who you are to a daemon in its loopback development mode, e.g. to propose as one administrator and approve as another ($CLASSROUTE_AS)")
	fs.StringVar(&c.cfg.TLSCA, "tls-ca", env.TLSCA, "CA certificate (PEM) the server's certificate must chain to; set, the connection is TLS ($CLASSROUTE_TLS_CA)")
	fs.StringVar(&c.cfg.TLSCert, "tls-cert", env.TLSCert, "client certificate (PEM): your identity, one SPIFFE ID ($CLASSROUTE_TLS_CERT)")
	fs.StringVar(&c.cfg.TLSKey, "tls-key", env.TLSKey, "its private key ($CLASSROUTE_TLS_KEY)")
}

// check validates the global flags.
func (c *cli) check() error {
	switch c.output {
	case "table", "wide", "json", "yaml":
	default:
		return usageError{fmt.Sprintf("-o %q: want table, wide, json or yaml", c.output)}
	}
	if err := c.cfg.Validate(); err != nil {
		return usageError{strings.ReplaceAll(err.Error(), "tls-", "--tls-")}
	}
	return nil
}

// structured reports whether the output is a document (json or yaml).
func (c *cli) structured() bool { return c.output == "json" || c.output == "yaml" }

// action wraps a command's code: it marks that the command ran, so its
// errors are not taken for usage errors.
func (c *cli) action(f func(cmd *cobra.Command, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		c.ran = true
		return f(cmd, args)
	}
}

// group is a command that only holds subcommands: without one it prints
// its help; with an unknown one it says so, with suggestions.
func group(use, short string, subs ...*cobra.Command) *cobra.Command {
	cmd := &cobra.Command{
		Use:   use + " COMMAND",
		Short: short,
		Args:  cobra.ArbitraryArgs,
		// A subcommand's flags given with an unknown subcommand: say the
		// subcommand is unknown, not the flag.
		FParseErrWhitelist:         cobra.FParseErrWhitelist{UnknownFlags: true},
		SuggestionsMinimumDistance: 2,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return cmd.Help()
			}
			msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
			if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
				msg += "\n\nDid you mean this?\n\t" + strings.Join(s, "\n\t")
			}
			return usageError{msg}
		},
	}
	cmd.AddCommand(subs...)
	return cmd
}

// args checks a command's positional arguments: exactly n, named by what.
func args(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			if n == 0 {
				return usageError{fmt.Sprintf("takes no arguments, got %q", args)}
			}
			return usageError{fmt.Sprintf("want %s, got %d arguments", what, len(args))}
		}
		return nil
	}
}

// client is the connection to the daemon, made on first use.
func (c *cli) client() (*client.Client, error) {
	if c.conn == nil {
		cl, err := client.New(c.cfg)
		if err != nil {
			return nil, err
		}
		c.conn = cl
	}
	return c.conn, nil
}

// ctx is the context of the command's calls, made at the first: one
// --timeout for them all, ended by SIGINT or SIGTERM. run releases it.
func (c *cli) ctx() (context.Context, context.CancelFunc) {
	if c.cmdCtx == nil {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		ctx, cancel := context.WithTimeout(ctx, c.timeout)
		c.cmdCtx, c.release = ctx, func() { cancel(); stop() }
	}
	return c.cmdCtx, func() {}
}

// call runs f with the connection and the command's deadline.
func (c *cli) call(f func(ctx context.Context, cc *grpc.ClientConn) error) error {
	cl, err := c.client()
	if err != nil {
		return err
	}
	ctx, cancel := c.ctx()
	defer cancel()
	return c.hint(f(ctx, cl.Conn()))
}

// with runs f with the client library and the command's deadline.
func (c *cli) with(f func(ctx context.Context, cl *client.Client) error) error {
	cl, err := c.client()
	if err != nil {
		return err
	}
	ctx, cancel := c.ctx()
	defer cancel()
	return c.hint(f(ctx, cl))
}

// hint adds to a connection failure what is most likely wrong with the
// TLS flags: a TLS 1.3 server refuses a missing client certificate only
// after the handshake, which the caller sees as a broken connection.
func (c *cli) hint(err error) error {
	st, ok := status.FromError(err)
	if !ok || st.Code() != codes.Unavailable || len(st.Details()) > 0 {
		return err // the daemon answered: its own reason, with its details
	}
	switch {
	case c.cfg.TLSCA == "":
		return status.Error(codes.Unavailable, st.Message()+" (if the server speaks mutual TLS, give --tls-ca, --tls-cert and --tls-key)")
	case c.cfg.TLSCert == "":
		return status.Error(codes.Unavailable, st.Message()+" (the server may require a client certificate: give --tls-cert and --tls-key)")
	}
	return err
}

// printProto prints an API message as -o json (the API's JSON mapping,
// proto field names) or -o yaml (the same, as YAML).
func (c *cli) printProto(m proto.Message) error {
	raw, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(m)
	if err != nil {
		return err
	}
	// protojson varies its whitespace on purpose; indent it the one way.
	var b bytes.Buffer
	if err := json.Indent(&b, raw, "", "  "); err != nil {
		return err
	}
	if c.output == "yaml" {
		var v any
		if err := json.Unmarshal(b.Bytes(), &v); err != nil {
			return err
		}
		return convert.EncodeDoc(c.stdout, "yaml", v)
	}
	_, err = fmt.Fprintln(c.stdout, b.String())
	return err
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
		if via := v.GetVia(); via != "" {
			why = append(why, "via "+via)
		}
		why = append(why, v.GetFlows()...)
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
	fmt.Fprintf(tw, "label:\t%s\n", labelText(p.GetLabel()))
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

// printEvent prints one event of a watch response: a line of text, or
// (-o json) one WatchResponse holding that event, on one line, or (-o
// yaml) one YAML document. The last event of a response carries the
// response's resume token: the place a later watch --after-token resumes
// after every event printed.
func (c *cli) printEvent(resp *pb.WatchResponse, i int) error {
	ev := resp.GetEvents()[i]
	if c.structured() {
		one := &pb.WatchResponse{Revision: resp.GetRevision(), Events: []*pb.PlacementEvent{ev}}
		if i == len(resp.GetEvents())-1 {
			one.ResumeToken = resp.GetResumeToken()
		}
		raw, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(one)
		if err != nil {
			return err
		}
		var b bytes.Buffer
		if err := json.Compact(&b, raw); err != nil {
			return err
		}
		if c.output == "yaml" {
			var v any
			if err := json.Unmarshal(b.Bytes(), &v); err != nil {
				return err
			}
			fmt.Fprintln(c.stdout, "---")
			return convert.EncodeDoc(c.stdout, "yaml", v)
		}
		_, err = fmt.Fprintf(c.stdout, "%s\n", b.Bytes())
		return err
	}
	p := ev.GetPlacement()
	var regions []string
	for _, a := range p.GetAssignments() {
		regions = append(regions, a.GetRegion())
	}
	typ := strings.ToLower(strings.TrimPrefix(ev.GetType().String(), "PLACEMENT_EVENT_TYPE_"))
	_, err := fmt.Fprintf(c.stdout, "%d %-8s %s %s %s\n", resp.GetRevision(), typ, p.GetId(), stateName(p.GetState()), strings.Join(regions, ","))
	return err
}

// labelText is a label as the CLI prints it: its canonical marking, with
// its scheme when that is not the US ("CONFIDENTIAL (scheme KEN)").
func labelText(l *pb.Label) string {
	if s := l.GetScheme(); s != "" && s != "US" {
		return l.GetBanner() + " (scheme " + s + ")"
	}
	return l.GetBanner()
}
