package client_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/classroute/classroute/cmd/cmdtest"
	"github.com/classroute/classroute/router/client"
)

// TestMain builds the binaries and, for the examples, starts one daemon
// with its embedded etcd and the default catalogue, and points
// CLASSROUTE_SERVER at it: the examples run as a user's code would.
func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	bin, err := cmdtest.Binaries()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(bin)
	dir, err := os.MkdirTemp("", "classroute-client-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	d, err := startDaemon(bin, dir, "--embedded-etcd-client", freeAddr(), "--embedded-etcd-peer", freeAddr())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer d.stop()
	os.Setenv(client.EnvServer, d.addr)
	return m.Run()
}

// freeAddr is a loopback address with a port free now, never one it
// returned before (the kernel hands a port just closed out again).
func freeAddr() string {
	for {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			panic(err)
		}
		addr := l.Addr().String()
		l.Close()
		if _, dup := handedOut.LoadOrStore(addr, true); !dup {
			return addr
		}
	}
}

var handedOut sync.Map

// proc is a process the tests started.
type proc struct {
	cmd  *exec.Cmd
	addr string
	logs *bytes.Buffer
	done chan struct{}
}

func (p *proc) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func startProc(bin string, args ...string) (*proc, error) {
	p := &proc{cmd: exec.Command(bin, args...), logs: &bytes.Buffer{}, done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	return p, nil
}

// startDaemon starts classrouted with data in dir and waits until it serves.
func startDaemon(bin, dir string, extra ...string) (*proc, error) {
	addr := freeAddr()
	args := append([]string{"--listen", addr, "--data-dir", filepath.Join(dir, "data"), "--metrics-listen", "", "--log-level", "warn"}, extra...)
	p, err := startProc(filepath.Join(bin, "classrouted"), args...)
	if err != nil {
		return nil, err
	}
	p.addr = addr
	c, err := client.New(client.Config{Server: addr})
	if err != nil {
		p.stop()
		return nil, err
	}
	defer c.Close()
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := c.Ping(ctx)
		cancel()
		if err == nil {
			return p, nil
		}
		select {
		case <-p.done:
			return nil, fmt.Errorf("classrouted exited before serving: %v\n%s", err, p.logs)
		default:
		}
		if time.Now().After(deadline) {
			p.stop()
			return nil, fmt.Errorf("classrouted not serving after 60s: %v\n%s", err, p.logs)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
