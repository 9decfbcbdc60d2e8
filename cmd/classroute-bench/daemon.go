package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	pb "github.com/classroute/classroute/proto/classroute/v1"
)

// The daemon under test runs as a process of its own, so that what it
// costs (CPU, resident memory, its embedded etcd included) can be read
// from /proc/<pid>, and so that a cold start is a real one.

// buildDaemon builds classrouted from the module this command is part
// of into dir and returns the binary's path.
func buildDaemon(ctx context.Context, dir string, log io.Writer) (string, error) {
	root := moduleRoot()
	fmt.Fprintf(log, "building classrouted in %s\n", root)
	cmd := exec.CommandContext(ctx, "go", "build", "-o", dir, "github.com/classroute/classroute/cmd/classrouted")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build classrouted: %v\n%s", err, out)
	}
	return filepath.Join(dir, "classrouted"), nil
}

// moduleRoot is the repository this source file is in (go run and go
// test build from the checkout), else the working directory.
func moduleRoot() string {
	_, file, _, ok := runtime.Caller(0)
	if ok {
		root := filepath.Join(filepath.Dir(file), "..", "..")
		if _, err := os.Stat(filepath.Join(root, "go.mod")); err == nil {
			return root
		}
	}
	wd, _ := os.Getwd()
	return wd
}

// addrs are the daemon's loopback addresses. A data directory is always
// served on the same ones: the embedded etcd member keeps its peer
// address in its data.
type addrs struct {
	Listen     string `json:"listen"`
	EtcdClient string `json:"etcd_client"`
	EtcdPeer   string `json:"etcd_peer"`
	Metrics    string `json:"metrics"`
	Debug      string `json:"debug"`
}

func pickAddrs() (addrs, error) {
	var a addrs
	for _, p := range []*string{&a.Listen, &a.EtcdClient, &a.EtcdPeer, &a.Metrics, &a.Debug} {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return a, err
		}
		*p = l.Addr().String()
		l.Close()
	}
	return a, nil
}

// daemon is one classrouted process on a data directory; it may be
// stopped and started again on the same directory and addresses.
type daemon struct {
	bin     string
	dataDir string
	addrs   addrs
	extra   []string // more flags
	logPath string

	cmd    *exec.Cmd
	exited chan error
	logf   *os.File
}

func (d *daemon) args() []string {
	a := []string{
		"--listen", d.addrs.Listen,
		"--data-dir", d.dataDir,
		"--embedded-etcd-client", d.addrs.EtcdClient,
		"--embedded-etcd-peer", d.addrs.EtcdPeer,
		"--metrics-listen", d.addrs.Metrics,
	}
	if d.addrs.Debug != "" {
		a = append(a, "--debug-listen", d.addrs.Debug)
	}
	return append(a, d.extra...)
}

// errAddrInUse: the daemon could not listen on an address picked free
// a moment before (another process took it meanwhile).
var errAddrInUse = errors.New("address already in use")

// start starts the process and waits until it serves (see serving). It
// returns how long that took, from the process's start.
func (d *daemon) start(ctx context.Context, timeout time.Duration) (time.Duration, error) {
	if d.cmd != nil {
		return 0, errors.New("daemon already running")
	}
	f, err := os.OpenFile(d.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return 0, err
	}
	logStart, _ := f.Seek(0, io.SeekEnd)
	fmt.Fprintf(f, "\n==== classroute-bench: starting classrouted %s\n", strings.Join(d.args(), " "))
	cmd := exec.Command(d.bin, d.args()...)
	cmd.Stdout, cmd.Stderr = f, f
	started := time.Now()
	if err := cmd.Start(); err != nil {
		f.Close()
		return 0, err
	}
	d.cmd, d.logf, d.exited = cmd, f, make(chan error, 1)
	go func() { d.exited <- cmd.Wait() }()

	cc, err := dial(d.addrs.Listen)
	if err != nil {
		return 0, err
	}
	defer cc.Close()
	deadline := started.Add(timeout)
	for {
		if serving(ctx, cc) {
			return time.Since(started), nil
		}
		select {
		case err := <-d.exited:
			d.exited <- err
			d.cmd = nil
			d.logf.Close()
			if b, rerr := os.ReadFile(d.logPath); rerr == nil && int64(len(b)) >= logStart && strings.Contains(string(b[logStart:]), errAddrInUse.Error()) {
				err = fmt.Errorf("%w: %v", errAddrInUse, err)
			}
			return 0, fmt.Errorf("classrouted exited before serving: %w (log: %s)", err, d.logPath)
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("classrouted not serving after %v (log: %s)", timeout, d.logPath)
		}
	}
}

// serving: the health service says SERVING and a List answers.
func serving(ctx context.Context, cc *grpc.ClientConn) bool {
	c, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	h, err := healthpb.NewHealthClient(cc).Check(c, &healthpb.HealthCheckRequest{})
	if err != nil || h.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		return false
	}
	_, err = pb.NewPlacementServiceClient(cc).List(c, &pb.ListRequest{PageSize: 1})
	return err == nil
}

// stop interrupts the daemon and waits for it to exit (it is killed
// after a minute).
func (d *daemon) stop() error {
	if d.cmd == nil {
		return nil
	}
	defer func() { d.cmd = nil; d.logf.Close() }()
	_ = d.cmd.Process.Signal(os.Interrupt)
	select {
	case err := <-d.exited:
		return err
	case <-time.After(time.Minute):
		_ = d.cmd.Process.Kill()
		<-d.exited
		return errors.New("classrouted did not stop within a minute of SIGINT: killed")
	}
}

func (d *daemon) pid() int {
	if d.cmd == nil {
		return 0
	}
	return d.cmd.Process.Pid
}

func dial(addr string) (*grpc.ClientConn, error) {
	return grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20)))
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat's times: 100 on
// every Linux architecture Go supports.
const clockTicks = 100

// cpuTime is the user and system CPU the process has used.
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name, in parentheses, may hold spaces: fields are
	// counted after its closing parenthesis (field 3, state, first).
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return time.Duration(utime+stime) * time.Second / clockTicks, nil
}

// rss is the process's resident set (VmRSS), in bytes.
func rss(pid int) (int64, error) { return procStatus(pid, "VmRSS") }

// procStatus reads a size field (in kB) of /proc/<pid>/status, in bytes:
// VmRSS, or its parts RssAnon (the heap and stacks) and RssFile (mapped
// files: the binary, and etcd's database, which bbolt maps).
func procStatus(pid int, field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("/proc/%d/status: %s %q", pid, field, v)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no %s", pid, field)
}

// machine describes where the figures were taken.
func machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				if kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64); err == nil {
					mem = fmt.Sprintf(", %.0f GiB RAM", float64(kb)/(1<<20))
				}
			}
		}
	}
	kernel := ""
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		kernel = ", Linux " + strings.TrimSpace(string(b))
	}
	return fmt.Sprintf("%d CPUs (%s)%s%s, %s/%s, %s", runtime.NumCPU(), model, mem, kernel, runtime.GOOS, runtime.GOARCH, runtime.Version())
}

// commit is the checkout's commit, when git can tell.
func commit() string {
	out, err := exec.Command("git", "-C", moduleRoot(), "describe", "--always", "--dirty", "--abbrev=12").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}
