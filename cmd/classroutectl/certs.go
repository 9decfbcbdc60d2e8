package main

import (
	"fmt"
	"net"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/classroute/classroute/router/authz"
	"github.com/classroute/classroute/router/devca"
)

// certsCmd is certs init|issue: no daemon is involved.
func (c *cli) certsCmd() *cobra.Command {
	var dir, td, out, id string
	var isServer bool
	var dns, ips []string
	initCmd := &cobra.Command{
		Use:   "init --dir DIR --trust-domain TD",
		Short: "Make a development CA",
		Long: `init makes a development CA (ECDSA P-256, one year) in DIR: ca.pem and
ca-key.pem (0600). It signs only identities of trust domain TD. No daemon
is involved; classrouted never trusts it unless told to.`,
		Example: "  classroutectl certs init --dir certs --trust-domain classroute.dev",
		Args:    args(0, ""),
		RunE: c.action(func(cmd *cobra.Command, _ []string) error {
			if err := authz.ValidTrustDomain(td); err != nil {
				return usageError{"--trust-domain: " + err.Error() + " (a SPIFFE trust domain is lower-case letters, digits, '.', '-' and '_')"}
			}
			ca, err := devca.New(td)
			if err != nil {
				return err
			}
			if err := ca.Write(dir); err != nil {
				return err
			}
			fmt.Fprintf(c.stdout, "CA for trust domain %s: %s (key %s)\n", td,
				filepath.Join(dir, devca.CACertFile), filepath.Join(dir, devca.CAKeyFile))
			return nil
		}),
	}
	initCmd.Flags().StringVar(&dir, "dir", "", "directory of the CA's files")
	initCmd.Flags().StringVar(&td, "trust-domain", "", "SPIFFE trust domain of the identities it signs, a host name such as classroute.dev")
	_ = initCmd.MarkFlagRequired("dir")
	_ = initCmd.MarkFlagRequired("trust-domain")
	issue := &cobra.Command{
		Use:   "issue --dir DIR --out NAME [--server --dns H ... --ip A ...] [--id spiffe://TD/...]",
		Short: "Issue a certificate from the development CA",
		Long: `issue writes DIR/NAME.pem and DIR/NAME-key.pem (0600), valid 90 days:
--server for the daemon (its DNS names and IPs), --id for a caller:
spiffe://TD/tenant/T/user/N, /agent/P/REGION, /admin/N or /auditor/N, in
canonical form (no percent-encoding, no empty or dot segments).`,
		Example: `  classroutectl certs issue --dir certs --out server --server --dns localhost --ip 127.0.0.1
  classroutectl certs issue --dir certs --out alice --id spiffe://classroute.dev/admin/alice`,
		Args: args(0, ""),
		RunE: c.action(func(cmd *cobra.Command, _ []string) error {
			if strings.ContainsAny(out, `/\`) {
				return usageError{"--out NAME: a file name, no directory"}
			}
			req := devca.Request{ID: id, Server: isServer, DNS: dns}
			if len(dns)+len(ips) > 0 && !isServer {
				return usageError{"--dns and --ip are for --server"}
			}
			for _, a := range ips {
				ip := net.ParseIP(a)
				if ip == nil {
					return usageError{fmt.Sprintf("--ip %q: not an IP address", a)}
				}
				req.IPs = append(req.IPs, ip)
			}
			ca, err := devca.Load(dir)
			if err != nil {
				return fmt.Errorf("certs issue: %w (run certs init first)", err)
			}
			if id != "" {
				// The identity the daemon will read, spelled the one way it
				// accepts: refuse now what it would refuse then.
				if _, err := authz.ParseID(id, ca.TrustDomain()); err != nil {
					return usageError{"--id: " + err.Error()}
				}
			}
			iss, err := ca.Issue(req)
			if err != nil {
				return usageError{"certs issue: " + err.Error()}
			}
			if err := iss.Write(dir, out); err != nil {
				return err
			}
			fmt.Fprintf(c.stdout, "%s: %s (key %s)\n", describe(req), filepath.Join(dir, out+".pem"), filepath.Join(dir, out+"-key.pem"))
			return nil
		}),
	}
	f := issue.Flags()
	f.StringVar(&dir, "dir", "", "directory of the CA's files; the certificate is written there")
	f.StringVar(&out, "out", "", "file name of the certificate (NAME.pem, NAME-key.pem)")
	f.StringVar(&id, "id", "", "the caller's SPIFFE ID")
	f.BoolVar(&isServer, "server", false, "a server certificate, for classrouted")
	f.StringArrayVar(&dns, "dns", nil, "a DNS name of the server (repeatable)")
	f.StringArrayVar(&ips, "ip", nil, "an IP address of the server (repeatable)")
	_ = issue.MarkFlagRequired("dir")
	_ = issue.MarkFlagRequired("out")
	return group("certs", "Make a development CA and its certificates (no daemon involved)", initCmd, issue)
}

// describe says what a certificate is for.
func describe(r devca.Request) string {
	var parts []string
	if r.Server {
		var names []string
		names = append(names, r.DNS...)
		for _, ip := range r.IPs {
			names = append(names, ip.String())
		}
		parts = append(parts, "server "+strings.Join(names, ", "))
	}
	if r.ID != "" {
		parts = append(parts, "client "+r.ID)
	}
	return strings.Join(parts, "; ")
}
