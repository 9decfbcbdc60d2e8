// Command classroute-etcd runs one member of an etcd cluster, embedded, so that a cluster can be run from this module alone.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/classroute/classroute/router/etcdlocal"
	"github.com/classroute/classroute/router/version"
)

// Config is everything the command is told, parsed once and validated
// by etcdlocal when the member starts.
type Config struct {
	Member   etcdlocal.Config
	LogLevel slog.Level
}

const usage = `classroute-etcd runs one member of an etcd cluster.

A three-member cluster on one machine, each command in its own terminal
(or see deploy/cluster.sh):

  classroute-etcd --name m1 --data-dir m1 --client-addr 127.0.0.1:2379 --peer-addr 127.0.0.1:2380 \
    --initial-cluster m1=http://127.0.0.1:2380,m2=http://127.0.0.1:2382,m3=http://127.0.0.1:2384
  classroute-etcd --name m2 --data-dir m2 --client-addr 127.0.0.1:2381 --peer-addr 127.0.0.1:2382 --initial-cluster (same)
  classroute-etcd --name m3 --data-dir m3 --client-addr 127.0.0.1:2383 --peer-addr 127.0.0.1:2384 --initial-cluster (same)

Each member waits for a quorum of its peers before it serves. A member
restarted on its data directory rejoins its cluster. Plaintext is
allowed only on loopback: beyond it give --client-cert/--client-key and
--peer-cert/--peer-key (and the CAs, to require client certificates).
SIGINT and SIGTERM stop the member gracefully (a leader hands over first).

Flags:
`

// errVersion is parseFlags' answer to -version, --version or the
// argument version: print the version (printVersion) and exit 0, as
// flag.ErrHelp is to -help.
var errVersion = errors.New("version asked for")

// printVersion prints the line -version answers: the command and its build.
func printVersion(w io.Writer) {
	fmt.Fprintln(w, "classroute-etcd "+version.Get().String())
}

func parseFlags(args []string, stderr io.Writer) (*Config, error) {
	c := &Config{}
	m := &c.Member
	fs := flag.NewFlagSet("classroute-etcd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usage)
		fs.PrintDefaults()
	}
	var level string
	var showVersion bool
	fs.StringVar(&m.Name, "name", "classroute", "the member's name, unique in the cluster")
	fs.StringVar(&m.Dir, "data-dir", "", "data directory (required)")
	fs.StringVar(&m.ClientAddr, "client-addr", "127.0.0.1:2379", "client host:port, listened on and advertised")
	fs.StringVar(&m.PeerAddr, "peer-addr", "127.0.0.1:2380", "peer host:port, listened on and advertised")
	fs.StringVar(&m.InitialCluster, "initial-cluster", "", "every member as name=peer-URL,... (default: this member alone)")
	fs.StringVar(&m.ClusterState, "initial-cluster-state", etcdlocal.StateNew, "new: bootstrap with the initial cluster; existing: join a running cluster after `member add`")
	fs.StringVar(&m.ClusterToken, "initial-cluster-token", "classroute", "token unique to this cluster's bootstrap")
	fs.StringVar(&m.ClientTLS.CertFile, "client-cert", "", "client listener certificate (PEM); serves https")
	fs.StringVar(&m.ClientTLS.KeyFile, "client-key", "", "client listener private key (PEM)")
	fs.StringVar(&m.ClientTLS.TrustedCAFile, "client-ca", "", "CA that signs client certificates; set: clients must present one")
	fs.StringVar(&m.PeerTLS.CertFile, "peer-cert", "", "peer listener certificate (PEM), also presented to peers")
	fs.StringVar(&m.PeerTLS.KeyFile, "peer-key", "", "peer listener private key (PEM)")
	fs.StringVar(&m.PeerTLS.TrustedCAFile, "peer-ca", "", "CA that signs peer certificates; set: peers must present one")
	fs.DurationVar(&m.HeartbeatInterval, "heartbeat-interval", 100*time.Millisecond, "raft heartbeat interval")
	fs.DurationVar(&m.ElectionTimeout, "election-timeout", time.Second, "raft election timeout")
	fs.StringVar(&m.LogLevel, "etcd-log-level", "warn", "the least level of etcd's own messages logged (in this command's format, within --log-level): debug, info, warn, error")
	fs.BoolVar(&m.UnsafeNoFsync, "unsafe-no-fsync", false, "do not fsync: a crash loses acknowledged writes (throwaway test clusters only)")
	fs.StringVar(&level, "log-level", "info", "this command's log level: debug, info, warn or error")
	fs.BoolVar(&showVersion, "version", false, "print the version and exit (as does the argument version)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if showVersion || (fs.NArg() == 1 && fs.Arg(0) == "version") {
		return nil, errVersion
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	if m.Dir == "" {
		return nil, errors.New("-data-dir is required")
	}
	if err := c.LogLevel.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("-log-level: %w", err)
	}
	// Wait for peers as long as it takes: members of a new cluster are
	// started one after the other, by hand or by a supervisor.
	m.StartTimeout = -1
	return c, nil
}

func main() {
	cfg, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if errors.Is(err, errVersion) {
		printVersion(os.Stdout)
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "classroute-etcd: %v\n", err)
		os.Exit(2)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: cfg.LogLevel}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg, log); err != nil {
		log.Error("classroute-etcd stopped", "err", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, cfg *Config, log *slog.Logger) error {
	m := cfg.Member
	m.Logger = log // etcd's logs in this command's, at --etcd-log-level and up
	log.Info("starting member; a member of a new cluster waits for a quorum of its peers",
		"name", m.Name, "data_dir", m.Dir, "client", m.ClientAddr, "peer", m.PeerAddr,
		"initial_cluster", m.InitialCluster, "state", m.ClusterState)
	member, err := etcdlocal.Start(ctx, m)
	if errors.Is(err, context.Canceled) {
		log.Info("stopped before the member was ready")
		return nil
	}
	if err != nil {
		return err
	}
	log.Info("member serving", "name", member.Name(), "client", member.Endpoints(), "peer", member.PeerURL())
	select {
	case err := <-member.Err():
		member.Close()
		return fmt.Errorf("member failed: %w", err)
	case <-ctx.Done():
	}
	log.Info("stopping member")
	member.Close()
	log.Info("member stopped")
	return nil
}
