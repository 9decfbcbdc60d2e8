package main

import (
	"flag"
	"fmt"
	"net"
	"path/filepath"
	"strings"

	"github.com/classroute/classroute/router/authz"
	"github.com/classroute/classroute/router/devca"
)

// certsUsage documents the certs command; it is part of usage.
const certsUsage = `  classroutectl certs init --dir DIR --trust-domain TD
                                                       make a development CA (ECDSA P-256, one year) in DIR:
                                                       ca.pem, ca-key.pem (0600); it signs only identities
                                                       of TD
  classroutectl certs issue --dir DIR --out NAME [--server --dns H ... --ip A ...] [--id spiffe://TD/...]
                                                       issue DIR/NAME.pem and DIR/NAME-key.pem (0600), valid
                                                       90 days: --server for the daemon (its DNS names and
                                                       IPs), --id for a caller: spiffe://TD/tenant/T/user/N,
                                                       /agent/P/REGION, /admin/N or /auditor/N, in canonical
                                                       form (no percent-encoding, no empty or dot segments)
`

// certs runs "certs init|issue ...": no server is involved.
func (c *cli) certs(fs *flag.FlagSet, args []string) error {
	var dns, ips repeated
	dir := fs.String("dir", "", "")
	td := fs.String("trust-domain", "", "")
	out := fs.String("out", "", "")
	id := fs.String("id", "", "")
	isServer := fs.Bool("server", false, "")
	fs.Var(&dns, "dns", "")
	fs.Var(&ips, "ip", "")
	pos, err := parse(fs, args) // no server flags: nothing is dialled
	if err != nil {
		return err
	}
	if len(pos) != 1 || (pos[0] != "init" && pos[0] != "issue") {
		return usageError{"certs: want: certs init ... or certs issue ..."}
	}
	if *dir == "" {
		return usageError{"certs " + pos[0] + ": --dir is required"}
	}
	if pos[0] == "init" {
		if *td == "" {
			return usageError{"certs init: --trust-domain TD is required (a host name such as classroute.dev)"}
		}
		if err := authz.ValidTrustDomain(*td); err != nil {
			return usageError{"certs init: --trust-domain: " + err.Error() + " (a SPIFFE trust domain is lower-case letters, digits, '.', '-' and '_')"}
		}
		ca, err := devca.New(*td)
		if err != nil {
			return err
		}
		if err := ca.Write(*dir); err != nil {
			return err
		}
		fmt.Fprintf(c.stdout, "CA for trust domain %s: %s (key %s)\n", *td,
			filepath.Join(*dir, devca.CACertFile), filepath.Join(*dir, devca.CAKeyFile))
		return nil
	}
	if *out == "" || strings.ContainsAny(*out, `/\`) {
		return usageError{"certs issue: --out NAME is required (a file name, no directory)"}
	}
	req := devca.Request{ID: *id, Server: *isServer, DNS: dns}
	if len(dns)+len(ips) > 0 && !*isServer {
		return usageError{"certs issue: --dns and --ip are for --server"}
	}
	for _, a := range ips {
		ip := net.ParseIP(a)
		if ip == nil {
			return usageError{fmt.Sprintf("certs issue: --ip %q: not an IP address", a)}
		}
		req.IPs = append(req.IPs, ip)
	}
	ca, err := devca.Load(*dir)
	if err != nil {
		return fmt.Errorf("certs issue: %w (run certs init first)", err)
	}
	if *id != "" {
		// The identity the daemon will read, spelled the one way it
		// accepts: refuse now what it would refuse then.
		if _, err := authz.ParseID(*id, ca.TrustDomain()); err != nil {
			return usageError{"certs issue: --id: " + err.Error()}
		}
	}
	iss, err := ca.Issue(req)
	if err != nil {
		return usageError{"certs issue: " + err.Error()}
	}
	if err := iss.Write(*dir, *out); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "%s: %s (key %s)\n", describe(req), filepath.Join(*dir, *out+".pem"), filepath.Join(*dir, *out+"-key.pem"))
	return nil
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
