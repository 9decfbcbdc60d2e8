package server_test

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/classroute/classroute/router/devca"
	"github.com/classroute/classroute/router/server"
)

// dialFrom connects to addr from the loopback address src (127.0.0.0/8
// is all loopback on Linux: each address is a source of its own).
func dialFrom(tb testing.TB, src, addr string) net.Conn {
	tb.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		tb.Fatalf("dial from %s: %v", src, err)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}

// closedBy reports whether the server closed c within d (reading, and
// dropping, what it sends before).
func closedBy(c net.Conn, d time.Duration) bool {
	_ = c.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, 1<<10)
	for {
		if _, err := c.Read(buf); err != nil {
			var ne net.Error
			return !(errors.As(err, &ne) && ne.Timeout())
		}
	}
}

// Connections beyond the total or the per-source cap are closed as soon
// as accepted, and counted; a connection closed (twice, even) makes room
// for exactly one.
func TestLimitListenerCaps(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	refused := map[string]int{}
	ll := server.LimitListener(l, server.ConnLimits{Max: 4, PerSource: 2}, func(r string) { mu.Lock(); refused[r]++; mu.Unlock() })
	t.Cleanup(func() { ll.Close() })
	accepted := make(chan net.Conn, 16)
	go func() {
		for {
			c, err := ll.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	addr := l.Addr().String()
	held := func(src string) (client, srv net.Conn) {
		t.Helper()
		client = dialFrom(t, src, addr)
		select {
		case srv = <-accepted:
		case <-time.After(5 * time.Second):
			t.Fatalf("connection from %s not accepted", src)
		}
		return client, srv
	}
	refusedConn := func(src, why string) {
		t.Helper()
		if c := dialFrom(t, src, addr); !closedBy(c, 5*time.Second) {
			t.Fatalf("connection from %s beyond the %s cap still open", src, why)
		}
	}
	_, a1 := held("127.0.0.1")
	held("127.0.0.1")
	refusedConn("127.0.0.1", "per-source")
	held("127.0.0.2")
	held("127.0.0.2")
	refusedConn("127.0.0.3", "total")
	if n := ll.Open(); n != 4 {
		t.Errorf("Open() = %d; want 4", n)
	}
	a1.Close()
	a1.Close() // counted out once
	if n := ll.Open(); n != 3 {
		t.Errorf("Open() after one Close (twice) = %d; want 3", n)
	}
	held("127.0.0.3")
	refusedConn("127.0.0.3", "total")
	mu.Lock()
	defer mu.Unlock()
	if refused[server.RefusedPerSource] != 1 || refused[server.RefusedTotal] != 2 {
		t.Errorf("refusals counted %v; want per_source 1, total 2", refused)
	}
}

// A connection that never finishes its handshake is closed after
// HandshakeTimeout, with TLS and in plaintext; grpc-go's own default
// would hold it for two minutes.
func TestHandshakeTimeout(t *testing.T) {
	ca, err := devca.New(trustDomain)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.Issue(devca.Request{Server: true, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	if err != nil {
		t.Fatal(err)
	}
	fast := server.DefaultLimits
	fast.HandshakeTimeout = 300 * time.Millisecond
	for _, tt := range []struct {
		name  string
		creds credentials.TransportCredentials
	}{
		{"tls", credentials.NewTLS(server.ServerTLSConfig(cert.TLS(), ca.Pool()))},
		{"plaintext", insecure.NewCredentials()},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ls := newLimitServer(t, append(fast.Options(), grpc.Creds(tt.creds))...)
			silent := dialFrom(t, "127.0.0.1", ls.addr)
			// Half a TLS ClientHello, or half the HTTP/2 preface, and
			// then nothing.
			half := []byte("PRI * HTTP/2.0\r\n")
			if tt.name == "tls" {
				half = []byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01}
			}
			if _, err := silent.Write(half); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			if !closedBy(silent, 5*time.Second) {
				t.Fatalf("a silent connection is still open after 5s; want it closed after %v", fast.HandshakeTimeout)
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("silent connection closed after %v; want about %v", d, fast.HandshakeTimeout)
			}
		})
	}
}

// A gRPC server behind a LimitListener: a flood of idle connections
// from one source holds only that source's share, one from many sources
// only the total, and a client already connected, and one from a source
// with room, are served throughout.
func TestIdleConnectionFlood(t *testing.T) {
	limits := server.DefaultLimits
	limits.HandshakeTimeout = time.Minute // the flood stays for the test
	g := grpc.NewServer(limits.Options()...)
	healthpb.RegisterHealthServer(g, health.NewServer())
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ll := server.LimitListener(l, server.ConnLimits{Max: 60, PerSource: 20}, nil)
	go func() { _ = g.Serve(ll) }()
	t.Cleanup(g.Stop)
	addr := l.Addr().String()

	client := func(src string) healthpb.HealthClient {
		t.Helper()
		conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithContextDialer(func(ctx context.Context, a string) (net.Conn, error) {
				d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
				return d.DialContext(ctx, "tcp", a)
			}))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return healthpb.NewHealthClient(conn)
	}
	check := func(what string, c healthpb.HealthClient) {
		t.Helper()
		if _, err := c.Check(ctx(t), &healthpb.HealthCheckRequest{}); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	before := client("127.0.0.9")
	check("the client connected before", before)

	flood := func(src string, n int) (open int) {
		var conns []net.Conn
		for range n {
			conns = append(conns, dialFrom(t, src, addr))
		}
		for _, c := range conns {
			if !closedBy(c, 50*time.Millisecond) {
				open++
			}
		}
		return open
	}
	if open := flood("127.0.0.1", 200); open != 20 {
		t.Errorf("200 idle connections from one source: %d held; want 20 (the per-source cap)", open)
	}
	check("the client connected before, after the one-source flood", before)
	check("a client from another source", client("127.0.0.8"))
	for i := 2; i <= 5; i++ {
		flood(net.IPv4(127, 0, 0, byte(i)).String(), 30)
	}
	if n := ll.Open(); n != 60 {
		t.Errorf("%d connections held after floods from 5 sources; want 60 (the total cap)", n)
	}
	check("the client connected before, at the total cap", before)
}
