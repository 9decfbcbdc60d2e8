package server_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/classroute/classroute/router/server"
)

// limitServer serves grpc.health.v1 alone with opts, and records the
// deadline of the last unary call as a handler sees it.
type limitServer struct {
	addr     string
	mu       sync.Mutex
	deadline time.Duration // 0: none
}

func newLimitServer(tb testing.TB, opts ...grpc.ServerOption) *limitServer {
	tb.Helper()
	ls := &limitServer{}
	opts = append(opts, grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		ls.mu.Lock()
		ls.deadline = 0
		if d, ok := ctx.Deadline(); ok {
			ls.deadline = time.Until(d)
		}
		ls.mu.Unlock()
		return h(ctx, req)
	}))
	g := grpc.NewServer(opts...)
	healthpb.RegisterHealthServer(g, health.NewServer())
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = g.Serve(lis) }()
	tb.Cleanup(func() { g.Stop(); <-done })
	ls.addr = lis.Addr().String()
	return ls
}

// h2 is a raw HTTP/2 client connection: it does what a grpc-go client
// never would (ping in a loop, ignore the stream limit, ignore pings).
type h2 struct {
	tb       testing.TB
	conn     net.Conn
	fr       *http2.Framer
	settings map[http2.SettingID]uint32 // the server's
}

func dialH2(tb testing.TB, addr string) *h2 {
	tb.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, http2.ClientPreface); err != nil {
		tb.Fatal(err)
	}
	c := &h2{tb: tb, conn: conn, fr: http2.NewFramer(conn, conn), settings: map[http2.SettingID]uint32{}}
	if err := c.fr.WriteSettings(); err != nil {
		tb.Fatal(err)
	}
	// The server's SETTINGS come first.
	f := c.next()
	sf, ok := f.(*http2.SettingsFrame)
	if !ok || sf.IsAck() {
		tb.Fatalf("first frame %v; want the server's SETTINGS", f)
	}
	_ = sf.ForeachSetting(func(s http2.Setting) error { c.settings[s.ID] = s.Val; return nil })
	if err := c.fr.WriteSettingsAck(); err != nil {
		tb.Fatal(err)
	}
	return c
}

// next reads a frame; an error ends the test.
func (c *h2) next() http2.Frame {
	c.tb.Helper()
	f, err := c.fr.ReadFrame()
	if err != nil {
		c.tb.Fatalf("reading a frame: %v", err)
	}
	return f
}

// until reads frames until want says a frame is the one, and returns it.
func (c *h2) until(what string, want func(http2.Frame) bool) http2.Frame {
	c.tb.Helper()
	for {
		f, err := c.fr.ReadFrame()
		if err != nil {
			c.tb.Fatalf("waiting for %s: %v", what, err)
		}
		if want(f) {
			return f
		}
	}
}

// openStream opens a Health/Watch stream without sending its request:
// the stream stays open, waiting for it.
func (c *h2) openStream(id uint32) {
	c.tb.Helper()
	var buf bytes.Buffer
	enc := hpack.NewEncoder(&buf)
	for _, hf := range [][2]string{
		{":method", "POST"}, {":scheme", "http"}, {":path", "/grpc.health.v1.Health/Watch"},
		{":authority", "classroute"}, {"content-type", "application/grpc"}, {"te", "trailers"},
	} {
		_ = enc.WriteField(hpack.HeaderField{Name: hf[0], Value: hf[1]})
	}
	if err := c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: buf.Bytes(), EndHeaders: true}); err != nil {
		c.tb.Fatal(err)
	}
}

func quietLog() *slog.Logger { return slog.New(slog.DiscardHandler) }

// A client that pings too often is told to calm down and cut off.
func TestLimitTooManyPings(t *testing.T) {
	ls := newLimitServer(t, server.ServerOptions(quietLog())...)
	c := dialH2(t, ls.addr)
	for i := range 6 {
		if err := c.fr.WritePing(false, [8]byte{byte(i)}); err != nil {
			break // the server may already have hung up
		}
	}
	f := c.until("GOAWAY", func(f http2.Frame) bool { _, ok := f.(*http2.GoAwayFrame); return ok }).(*http2.GoAwayFrame)
	if f.ErrCode != http2.ErrCodeEnhanceYourCalm || string(f.DebugData()) != "too_many_pings" {
		t.Errorf("GOAWAY %v %q; want ENHANCE_YOUR_CALM too_many_pings", f.ErrCode, f.DebugData())
	}
}

// The server announces its stream limit, and a client that ignores it
// has the stream beyond it refused.
func TestLimitConcurrentStreams(t *testing.T) {
	ls := newLimitServer(t, server.ServerOptions(quietLog())...)
	c := dialH2(t, ls.addr)
	limit := server.DefaultLimits.MaxConcurrentStreams
	if got := c.settings[http2.SettingMaxConcurrentStreams]; got != limit {
		t.Fatalf("SETTINGS_MAX_CONCURRENT_STREAMS %d; want %d", got, limit)
	}
	for i := range limit + 1 {
		c.openStream(2*i + 1)
	}
	over := 2*limit + 1
	f := c.until("RST_STREAM", func(f http2.Frame) bool { _, ok := f.(*http2.RSTStreamFrame); return ok }).(*http2.RSTStreamFrame)
	if f.StreamID != over || f.ErrCode != http2.ErrCodeRefusedStream {
		t.Errorf("RST_STREAM of stream %d, %v; want stream %d REFUSED_STREAM", f.StreamID, f.ErrCode, over)
	}
}

// A connection with no stream is closed once idle too long; one that
// does not answer the server's pings is closed too.
func TestLimitIdleAndDeadPeers(t *testing.T) {
	fast := server.DefaultLimits
	fast.MaxConnectionIdle = 300 * time.Millisecond
	ls := newLimitServer(t, fast.Options()...)
	c := dialH2(t, ls.addr)
	start := time.Now()
	c.until("GOAWAY", func(f http2.Frame) bool { _, ok := f.(*http2.GoAwayFrame); return ok })
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("idle connection closed after %v; want about %v", d, fast.MaxConnectionIdle)
	}

	deaf := server.DefaultLimits
	deaf.KeepaliveTime, deaf.KeepaliveTimeout = 200*time.Millisecond, 200*time.Millisecond
	ls = newLimitServer(t, deaf.Options()...)
	c = dialH2(t, ls.addr)
	c.openStream(1) // not idle: only the keepalive may close it
	c.until("the server's PING", func(f http2.Frame) bool { p, ok := f.(*http2.PingFrame); return ok && !p.IsAck() })
	for {
		_, err := c.fr.ReadFrame()
		if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
			break
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatal("a peer that never answers pings is still connected after 10s")
		}
		if err != nil {
			break // reset by the server: closed
		}
	}
}

// A unary call runs under the server's cap, whatever deadline it asks.
func TestLimitUnaryDeadline(t *testing.T) {
	ls := newLimitServer(t, server.ServerOptions(quietLog())...)
	conn, err := grpc.NewClient(ls.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	max := server.DefaultLimits.MaxUnaryDeadline
	for _, tt := range []struct {
		name    string
		ask     time.Duration // 0: no deadline
		atMost  time.Duration
		atLeast time.Duration
	}{
		{"an hour", time.Hour, max, max - 5*time.Second},
		{"none", 0, max, max - 5*time.Second},
		{"five seconds", 5 * time.Second, 5 * time.Second, 4 * time.Second},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, cancel := context.Background(), context.CancelFunc(func() {})
			if tt.ask > 0 {
				c, cancel = context.WithTimeout(c, tt.ask)
			}
			defer cancel()
			if _, err := healthpb.NewHealthClient(conn).Check(c, &healthpb.HealthCheckRequest{}); err != nil {
				t.Fatal(err)
			}
			ls.mu.Lock()
			got := ls.deadline
			ls.mu.Unlock()
			if got <= tt.atLeast || got > tt.atMost {
				t.Errorf("handler's deadline in %v; want in (%v, %v]", got, tt.atLeast, tt.atMost)
			}
		})
	}
}
