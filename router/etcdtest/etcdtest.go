// Package etcdtest is the tests' real etcd: embedded members on loopback
// without fsync, clusters of them, clients, and a goroutine leak check.
// Only _test.go files import it (TestOnlyTestsImportTheHarness), and
// it imports nothing of classroute but etcdlocal: no state, server or
// feed (router/deps_test.go).
//
// A package's tests share one member started in TestMain (Shared), each
// test keeping its records under a prefix of its own; a test that stops,
// fills or compacts its etcd starts a member of its own (Member).
package etcdtest

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"

	"github.com/classroute/classroute/router/etcdlocal"
)

// startTimeout bounds a member's start, which for a member of a new
// cluster includes waiting for a quorum of its peers.
const startTimeout = 30 * time.Second

// Option changes a test member's configuration.
type Option func(*etcdlocal.Config)

// WithFsync keeps etcd's fsync on, as in production (benchmarks that
// measure commits). Test members run without it by default.
func WithFsync(on bool) Option {
	return func(c *etcdlocal.Config) { c.UnsafeNoFsync = !on }
}

// Start starts a member in dir (the test members' configuration: no
// fsync, a free loopback port) and waits until it serves. It is for
// TestMain and for members shared across benchmarks; tests use Member.
func Start(dir string, opts ...Option) (*etcdlocal.Member, error) {
	c := etcdlocal.Config{Dir: dir, UnsafeNoFsync: true}
	for _, o := range opts {
		o(&c)
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	return etcdlocal.Start(ctx, c)
}

// Shared starts the member a package's tests share, in a temporary
// directory named after pattern, for TestMain; stop closes it and
// removes the directory.
func Shared(pattern string, opts ...Option) (m *etcdlocal.Member, stop func(), err error) {
	dir, err := os.MkdirTemp("", pattern)
	if err != nil {
		return nil, nil, err
	}
	m, err = Start(dir, opts...)
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	return m, func() { m.Close(); os.RemoveAll(dir) }, nil
}

// Member starts a member of the test's own in tb.TempDir(), closed at
// cleanup. Close is idempotent: a test may stop the member itself.
// Cleanups run last-registered first, so a member started before a
// store outlives the store's cleanup.
func Member(tb testing.TB, opts ...Option) *etcdlocal.Member {
	tb.Helper()
	m, err := Start(tb.TempDir(), opts...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(m.Close)
	return m
}

// Cluster starts n members of a new cluster at once (each waits for a
// quorum of the others), named m1..mn, closed at cleanup. It returns
// their configurations, with which a stopped member restarts on its data
// directory, and the members.
func Cluster(tb testing.TB, n int, opts ...Option) ([]etcdlocal.Config, []*etcdlocal.Member) {
	tb.Helper()
	cfgs := make([]etcdlocal.Config, n)
	var initial []string
	for i := range cfgs {
		cfgs[i] = etcdlocal.Config{
			Name:          fmt.Sprintf("m%d", i+1),
			Dir:           tb.TempDir(),
			ClientAddr:    FreeAddr(tb),
			PeerAddr:      FreeAddr(tb),
			UnsafeNoFsync: true,
		}
		for _, o := range opts {
			o(&cfgs[i])
		}
		initial = append(initial, fmt.Sprintf("%s=http://%s", cfgs[i].Name, cfgs[i].PeerAddr))
	}
	members := make([]*etcdlocal.Member, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range cfgs {
		cfgs[i].InitialCluster = strings.Join(initial, ",")
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
			defer cancel()
			members[i], errs[i] = etcdlocal.Start(ctx, cfgs[i])
		})
	}
	wg.Wait()
	for i, m := range members {
		if m != nil {
			tb.Cleanup(m.Close)
		}
		if errs[i] != nil {
			tb.Fatalf("member %d: %v", i+1, errs[i])
		}
	}
	return cfgs, members
}

// QuotaMember starts a member whose database may hold quota bytes
// (--quota-backend-bytes), closed at cleanup, and returns its client
// endpoint. It starts etcd's embed directly: etcdlocal refuses a quota
// below etcdlocal.MinQuotaBytes, and a test that fills the quota needs
// a small one.
func QuotaMember(tb testing.TB, quota int64) string {
	tb.Helper()
	free := func() url.URL { return url.URL{Scheme: "http", Host: FreeAddr(tb)} }
	cfg := embed.NewConfig()
	cfg.Dir = tb.TempDir()
	cu, pu := free(), free()
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{cu}, []url.URL{cu}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{pu}, []url.URL{pu}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.Logger, cfg.LogLevel, cfg.LogOutputs = "zap", "error", []string{"stderr"}
	cfg.UnsafeNoFsync = true
	cfg.QuotaBackendBytes = quota
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(e.Close)
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(startTimeout):
		tb.Fatal("etcd did not start")
	}
	return cu.Host
}

// Client returns a client of the endpoints that has made one call (so
// its connection goroutines exist before a leak baseline), closed at
// cleanup. Closing it earlier, as a test of a crash does, is harmless.
func Client(tb testing.TB, endpoints ...string) *clientv3.Client {
	tb.Helper()
	cli := Dial(tb, endpoints...)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := cli.Get(ctx, "warm-up"); err != nil {
		tb.Fatal(err)
	}
	return cli
}

// Dial returns a client of the endpoints that has made no call, closed
// at cleanup: for an endpoint that may refuse the client (a member
// that requires TLS) or not serve yet.
func Dial(tb testing.TB, endpoints ...string) *clientv3.Client {
	tb.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { cli.Close() })
	return cli
}

// FreeAddr is a loopback address with a port free now, and never one
// it returned before in this test binary: the kernel hands a port just
// closed out again, so two picks for one daemon (its listener and its
// metrics) could otherwise collide. Another process may still take it
// before it is used.
func FreeAddr(tb testing.TB) string {
	tb.Helper()
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		if _, dup := handedOut.LoadOrStore(addr, true); !dup {
			return addr
		}
	}
	tb.Fatal("etcdtest: no fresh loopback port in 100 tries")
	return ""
}

// handedOut are the addresses FreeAddr returned.
var handedOut sync.Map

// LeakCheck counts the goroutines running now and, at cleanup, checks
// that no more run, after a short settling time; if more do, it fails
// the test and prints every goroutine's stack. Cleanups run last-registered
// first: call it after starting what must outlive the check (the
// member, its clients) and before what must be stopped by then.
func LeakCheck(tb testing.TB) {
	tb.Helper()
	before := runtime.NumGoroutine()
	tb.Cleanup(func() { checkGoroutines(tb, before) })
}

// leakSettle is how long checkGoroutines waits for goroutines that were
// told to stop to end.
const leakSettle = 5 * time.Second

// checkGoroutines fails if, after leakSettle, more goroutines run than
// before.
func checkGoroutines(tb testing.TB, before int) {
	tb.Helper()
	deadline := time.Now().Add(leakSettle)
	for {
		n := runtime.NumGoroutine()
		if n <= before {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			tb.Errorf("goroutines leaked: %d before, %d after cleanup\n%s", before, n, buf)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}
