package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/classroute/classroute/proto/classroute/v1"
	"github.com/classroute/classroute/router"
	"github.com/classroute/classroute/router/convert"
	"github.com/classroute/classroute/router/label"
	"github.com/classroute/classroute/router/marking"
	"github.com/classroute/classroute/router/version"
)

// signalContext ends on SIGINT or SIGTERM.
func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

func (c *cli) labelCmd() *cobra.Command {
	var schemeFlag, kenyaFile string
	check := &cobra.Command{
		Use:   "check MARKING",
		Short: "Parse a marking in its scheme; print its canonical form and structure",
		Long: `check parses a marking with the same parsers the daemon uses, here, without a
daemon: it prints the canonical form, the scheme, the level, controls or
caveats, releasability and dissemination, or says which part is invalid
(exit 1). --scheme names the scheme (US, GBR, AUS, NATO, CAN, NZL, EU, KEN);
without it the marking's syntax must name one ("[SEC=...]" is AUS, "UK ..."
GBR, "//NATO ..." NATO, any other "//" US): a bare level word such as
"SECRET" is never guessed.`,
		Example: `  classroutectl label check 'SECRET//REL TO USA, FVEY'
  classroutectl label check 'TOP SECRET//SI/TK//NOFORN' -o json
  classroutectl label check 'SECRET UK EYES ONLY' --scheme GBR
  classroutectl label check '[SEC=SECRET, CAVEAT=RI:REL AUS/GBR/USA]'
  classroutectl label check CONFIDENTIAL --scheme KEN`,
		Args: args(1, "one banner, quoted"),
		RunE: c.action(func(cmd *cobra.Command, a []string) error {
			// The daemon's CheckLabel, here: the same parser, and the same
			// answer to a bad banner (INVALID_ARGUMENT naming the field).
			bad := func(desc string) error {
				st, _ := status.New(codes.InvalidArgument, "invalid argument: banner: "+desc).WithDetails(
					&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: "banner", Description: desc}}})
				return st.Err()
			}
			if len(a[0]) > router.MaxBannerLen {
				return bad(fmt.Sprintf("longer than %d bytes", router.MaxBannerLen))
			}
			if kenyaFile != "" {
				data, err := os.ReadFile(kenyaFile)
				if err != nil {
					return usageError{fmt.Sprintf("--kenya-levels: %v", err)}
				}
				k, err := marking.ParseKenyaLevels(data)
				if err == nil {
					err = marking.ConfigureKenya(k)
				}
				if err != nil {
					return usageError{fmt.Sprintf("--kenya-levels %s: %v", kenyaFile, err)}
				}
			}
			scheme := marking.Scheme(strings.ToUpper(schemeFlag))
			if scheme != "" && !scheme.Valid() {
				return usageError{fmt.Sprintf("--scheme: unknown scheme %q (schemes: US, GBR, AUS, NATO, CAN, NZL, EU, KEN)", schemeFlag)}
			}
			m, err := marking.Parse(scheme, a[0])
			if err != nil {
				if router.ReadAsUS(scheme, a[0], "") {
					if _, uerr := label.Parse(a[0]); uerr != nil {
						err = uerr // a US marking's refusal keeps router/label's words
					}
				}
				return bad(err.Error())
			}
			c.printLabel(convert.MarkingToProto(m))
			return nil
		}),
	}
	check.Flags().StringVar(&kenyaFile, "kenya-levels", "", "JSON file of the Kenyan scheme's levels, as given to classrouted --kenya-levels (default: the illustrative ones)")
	check.Flags().StringVar(&schemeFlag, "scheme", "", "the scheme to read the marking in: US, GBR, AUS, NATO, CAN, NZL, EU or KEN (default: the one its syntax names)")
	return group("label", "Work with security labels", check)
}

func (c *cli) printLabel(l *pb.Label) {
	if c.structured() {
		_ = c.printProto(&pb.CheckLabelResponse{Label: l})
		return
	}
	fmt.Fprintf(c.stdout, "canonical: %s\n", l.GetBanner())
	fmt.Fprintf(c.stdout, "scheme:    %s\n", l.GetScheme())
	if l.GetScheme() == "US" {
		fmt.Fprintf(c.stdout, "level:     %s\n", enumName(l.GetLevel().String(), "LEVEL_", " "))
	} else if l.GetAxis() != "" {
		fmt.Fprintf(c.stdout, "level:     %s (%s)\n", l.GetLevelName(), l.GetAxis())
	} else {
		fmt.Fprintf(c.stdout, "level:     %s\n", l.GetLevelName())
	}
	if len(l.GetCaveats()) > 0 && l.GetScheme() != "US" {
		fmt.Fprintf(c.stdout, "caveats:   %s\n", strings.Join(l.GetCaveats(), ", "))
	}
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
}

func (c *cli) versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print classroutectl's version",
		Long:  "version prints the module version, the VCS revision and the Go toolchain of this binary (as --version does).",
		Args:  args(0, ""),
		RunE: c.action(func(cmd *cobra.Command, _ []string) error {
			v := version.Get()
			if c.structured() {
				return convert.EncodeDoc(c.stdout, c.output, map[string]string{
					"version": v.Version, "revision": v.Revision, "go_version": v.GoVersion})
			}
			fmt.Fprintf(c.stdout, "classroutectl %s\n", v)
			return nil
		}),
	}
}

// docsCmd writes the CLI reference (docs/cli/) from the command tree.
func (c *cli) docsCmd() *cobra.Command {
	return &cobra.Command{
		Use:    "gen-docs DIR",
		Short:  "Write the CLI reference as Markdown, one page per command",
		Hidden: true,
		Args:   args(1, "one directory"),
		RunE: c.action(func(cmd *cobra.Command, a []string) error {
			if err := os.MkdirAll(a[0], 0o755); err != nil {
				return err
			}
			root := cmd.Root()
			root.DisableAutoGenTag = true
			link := func(name string) string { return name }
			prepend := func(file string) string {
				return "<!-- Generated by 'go run ./cmd/classroutectl gen-docs docs/cli'; do not edit. -->\n\n"
			}
			if err := doc.GenMarkdownTreeCustom(root, a[0], prepend, link); err != nil {
				return err
			}
			fmt.Fprintf(c.stdout, "wrote %s\n", filepath.Join(a[0], "classroutectl.md"))
			return nil
		}),
	}
}
