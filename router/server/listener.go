package server

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
)

// ConnLimits cap the connections one listener holds open: Max in all,
// PerSource from one source address (an IPv4 address, or an IPv6 /64,
// which one host is commonly given whole). Zero is no cap.
type ConnLimits struct {
	Max, PerSource int
}

// Why a listener refused a connection, as ConnRefused is told.
const (
	RefusedTotal     = "total"
	RefusedPerSource = "per_source"
)

// LimitedListener is a listener that closes, as soon as it accepts it,
// a connection beyond its ConnLimits. Open connections are counted from
// Accept until their first Close.
//
// Closing at once, rather than leaving the excess in the kernel's
// backlog, tells the client to go elsewhere and keeps the process's
// descriptors within the budget the caps were derived from: at most one
// descriptor beyond the caps, for the moment between accept and close.
type LimitedListener struct {
	net.Listener
	limits  ConnLimits
	refused func(reason string)

	mu       sync.Mutex
	open     int
	bySource map[netip.Prefix]int
}

// LimitListener wraps l. refused, when not nil, is told of each
// connection refused, with RefusedTotal or RefusedPerSource.
func LimitListener(l net.Listener, c ConnLimits, refused func(reason string)) *LimitedListener {
	return &LimitedListener{Listener: l, limits: c, refused: refused, bySource: make(map[netip.Prefix]int)}
}

// Open is the number of connections accepted and not yet closed.
func (l *LimitedListener) Open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open
}

// Accept returns the next connection within the limits, closing those
// beyond them.
func (l *LimitedListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		src := sourceOf(c.RemoteAddr())
		if reason := l.admit(src); reason != "" {
			_ = c.Close()
			if l.refused != nil {
				l.refused(reason)
			}
			continue
		}
		return &limitedConn{Conn: c, l: l, src: src}, nil
	}
}

// admit counts a connection from src in, or says why it may not be.
func (l *LimitedListener) admit(src netip.Prefix) (refused string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.limits.Max > 0 && l.open >= l.limits.Max {
		return RefusedTotal
	}
	if l.limits.PerSource > 0 && l.bySource[src] >= l.limits.PerSource {
		return RefusedPerSource
	}
	l.open++
	l.bySource[src]++
	return ""
}

func (l *LimitedListener) release(src netip.Prefix) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.open--
	if l.bySource[src]--; l.bySource[src] <= 0 {
		delete(l.bySource, src)
	}
}

// limitedConn counts itself out of its listener on its first Close.
type limitedConn struct {
	net.Conn
	l      *LimitedListener
	src    netip.Prefix
	closed atomic.Bool
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	if c.closed.CompareAndSwap(false, true) {
		c.l.release(c.src)
	}
	return err
}

// sourceOf is the source a connection is counted against: its IPv4
// address, or its IPv6 address's /64. An address that is not IP (a Unix
// socket) counts as one source.
func sourceOf(a net.Addr) netip.Prefix {
	var ip netip.Addr
	switch a := a.(type) {
	case *net.TCPAddr:
		ip, _ = netip.AddrFromSlice(a.IP)
	default:
		if ap, err := netip.ParseAddrPort(a.String()); err == nil {
			ip = ap.Addr()
		}
	}
	ip = ip.Unmap()
	switch {
	case ip.Is4():
		return netip.PrefixFrom(ip, 32)
	case ip.Is6():
		p, _ := ip.WithZone("").Prefix(64)
		return p
	}
	return netip.Prefix{}
}
