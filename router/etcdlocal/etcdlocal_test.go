package etcdlocal_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/classroute/classroute/router/etcdlocal"
	"github.com/classroute/classroute/router/etcdtest"
)

// Three members form one cluster: a write through one member is read
// through another, the cluster keeps serving with one member stopped,
// and the stopped member rejoins from its data directory.
func TestThreeMemberCluster(t *testing.T) {
	cfgs, members := etcdtest.Cluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	c1, c3 := etcdtest.Client(t, members[0].Endpoints()...), etcdtest.Client(t, members[2].Endpoints()...)
	if _, err := c1.Put(ctx, "k", "v1"); err != nil {
		t.Fatal(err)
	}
	if got, err := c3.Get(ctx, "k"); err != nil || len(got.Kvs) != 1 || string(got.Kvs[0].Value) != "v1" {
		t.Fatalf("get through m3: %v, %v; want v1", got, err)
	}
	ml, err := c1.MemberList(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ml.Members) != 3 {
		t.Fatalf("%d members; want 3", len(ml.Members))
	}

	members[1].Close()
	if _, err := c3.Put(ctx, "k", "v2"); err != nil {
		t.Fatalf("put with one member of three stopped: %v", err)
	}

	restarted, err := etcdlocal.Start(ctx, cfgs[1])
	if err != nil {
		t.Fatalf("restart m2 on its data directory: %v", err)
	}
	defer restarted.Close()
	c2 := etcdtest.Client(t, restarted.Endpoints()...)
	if got, err := c2.Get(ctx, "k"); err != nil || len(got.Kvs) != 1 || string(got.Kvs[0].Value) != "v2" {
		t.Fatalf("get through restarted m2: %v, %v; want v2 (the write it missed)", got, err)
	}
}

// A single member with no cluster fields is its own cluster.
func TestSingleMember(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	m := etcdtest.Member(t)
	if _, err := etcdtest.Client(t, m.Endpoints()...).Put(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}
}

// The quota a member is given is the one etcd enforces and reports.
func TestQuota(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const quota = 3 << 30
	m, err := etcdlocal.Start(ctx, etcdlocal.Config{Dir: t.TempDir(), UnsafeNoFsync: true, QuotaBytes: quota})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	st, err := etcdtest.Client(t, m.Endpoints()...).Status(ctx, m.Endpoints()[0])
	if err != nil {
		t.Fatal(err)
	}
	if st.DbSizeQuota != quota {
		t.Errorf("quota %d; want %d", st.DbSizeQuota, quota)
	}
}

func TestConfigRefused(t *testing.T) {
	good := func() etcdlocal.Config {
		return etcdlocal.Config{
			Name:           "m1",
			Dir:            t.TempDir(),
			ClientAddr:     "127.0.0.1:1",
			PeerAddr:       "127.0.0.1:2",
			InitialCluster: "m1=http://127.0.0.1:2,m2=http://127.0.0.1:4",
		}
	}
	for _, tc := range []struct {
		name   string
		mutate func(*etcdlocal.Config)
		want   string
	}{
		{"no data dir", func(c *etcdlocal.Config) { c.Dir = "" }, "data dir required"},
		{"plaintext beyond loopback", func(c *etcdlocal.Config) { c.ClientAddr = "10.0.0.1:2379" }, "not a loopback address"},
		{"plaintext peer beyond loopback", func(c *etcdlocal.Config) { c.PeerAddr = "192.0.2.1:2380" }, "not a loopback address"},
		{"no port", func(c *etcdlocal.Config) { c.ClientAddr = "127.0.0.1" }, "client address"},
		{"port zero", func(c *etcdlocal.Config) { c.PeerAddr = "127.0.0.1:0" }, "fixed port"},
		{"bad cluster state", func(c *etcdlocal.Config) { c.ClusterState = "joining" }, "cluster state"},
		{"not in the initial cluster", func(c *etcdlocal.Config) { c.Name = "m9" }, "does not list this member"},
		{"peer URL differs from initial cluster", func(c *etcdlocal.Config) { c.PeerAddr = "127.0.0.1:3" }, "does not list this member"},
		{"cert without key", func(c *etcdlocal.Config) { c.ClientTLS.CertFile = "c.pem" }, "go together"},
		{"quota too small", func(c *etcdlocal.Config) { c.QuotaBytes = 1 << 20 }, "quota 1048576 bytes"},
		{"quota too large", func(c *etcdlocal.Config) { c.QuotaBytes = 9 << 30 }, "quota 9663676416 bytes"},
		{"CA without cert", func(c *etcdlocal.Config) { c.PeerTLS.TrustedCAFile = "ca.pem" }, "trusted CA"},
		{"unspecified address with TLS", func(c *etcdlocal.Config) {
			c.ClientTLS = etcdlocal.TLS{CertFile: "c.pem", KeyFile: "k.pem"}
			c.ClientAddr = "0.0.0.0:2379"
		}, "host's own address"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := good()
			tc.mutate(&c)
			m, err := etcdlocal.Start(context.Background(), c)
			if err == nil {
				m.Close()
				t.Fatal("started; want refused")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v; want an error containing %q", err, tc.want)
			}
		})
	}
}
