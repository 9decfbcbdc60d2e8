// Package sim is a simulated region agent: it serves a region to
// classrouted as a real agent would, over the agent API, with injectable
// faults, for tests and demos. It is a client of the gRPC API only: it
// never imports the store (router/state) or the server (router/deps_test.go).
package sim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc"

	pb "github.com/classroute/classroute/proto/classroute/v1"
	"github.com/classroute/classroute/router"
)

// Faults are the failures a simulated agent injects. The zero value is
// a well-behaved agent.
type Faults struct {
	// CrashAfter: this long after Run starts, drop the connection with
	// no goodbye (as a killed process does) and stay down.
	CrashAfter time.Duration
	// CrashAfterRuns: crash likewise at the first report due after this
	// many placements were assigned to it and acknowledged (so that the
	// daemon has the acknowledgements).
	CrashAfterRuns int
	// HangAfter: this long after Run starts, stop reporting and
	// acknowledging but keep the connection open, until the daemon
	// ends the session (its lease lapses); then stay down.
	HangAfter time.Duration
	// Refuse: acknowledge every assignment FAILED.
	Refuse bool
	// Flap: report healthy, then unhealthy, alternating every Flap.
	Flap time.Duration
	// WrongRegion: name this region, not its own, in every report and
	// acknowledgement (the daemon must refuse it).
	WrongRegion string
}

// Config is one simulated agent.
type Config struct {
	// Region is the region key "provider/id" the agent serves.
	Region string
	// AgentID names the agent to classrouted ([A-Za-z0-9._:@-]).
	AgentID string
	// Capacity is the region's capacity; the zero value asks
	// classrouted for the region's catalogue capacity.
	Capacity router.Resources
	Faults   Faults
	// Dial opens a connection to classrouted. Every connection attempt
	// dials anew, so that a crash can drop its connection alone.
	Dial func() (*grpc.ClientConn, error)
	// Log receives what the agent does (default: discard).
	Log *slog.Logger
	// MinBackoff and MaxBackoff bound the wait before reconnecting
	// (defaults 200ms and 5s).
	MinBackoff, MaxBackoff time.Duration
}

// Run's results when a fault took the agent down for good.
var (
	ErrCrashed = errors.New("crashed (simulated fault)")
	ErrHung    = errors.New("hung (simulated fault)")
)

// Agent is a simulated region agent.
type Agent struct {
	cfg   Config
	log   *slog.Logger
	start time.Time

	mu       sync.Mutex
	capacity router.Resources
	running  map[string]router.Resources // by placement "tenant/request id"
	runs     int                         // placements assigned and acknowledged, for CrashAfterRuns
}

// New checks cfg and returns an agent; Run runs it.
func New(cfg Config) (*Agent, error) {
	var errs []error
	if cfg.Region == "" || cfg.AgentID == "" || cfg.Dial == nil {
		errs = append(errs, errors.New("sim: Region, AgentID and Dial are required"))
	}
	c, f := cfg.Capacity, cfg.Faults
	if c.MilliCPU < 0 || c.MemoryMiB < 0 || c.GPU < 0 {
		errs = append(errs, fmt.Errorf("sim: negative capacity %+v", c))
	}
	if f.CrashAfter < 0 || f.CrashAfterRuns < 0 || f.HangAfter < 0 || f.Flap < 0 {
		errs = append(errs, errors.New("sim: fault durations and counts must not be negative"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = 200 * time.Millisecond
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = max(5*time.Second, cfg.MinBackoff)
	}
	return &Agent{cfg: cfg, log: cfg.Log.With("region", cfg.Region, "agent", cfg.AgentID), capacity: c, running: make(map[string]router.Resources)}, nil
}

// Running returns the placements the agent runs, sorted, each as
// "tenant/request id": a request id names a placement within its tenant
// only, and two tenants may use the same one.
func (a *Agent) Running() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	ids := make([]string, 0, len(a.running))
	for id := range a.running {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// Run serves the region until ctx ends (then it says goodbye and
// returns nil) or a fault takes it down (ErrCrashed, ErrHung). After any
// other disconnect it reconnects, backing off.
func (a *Agent) Run(ctx context.Context) error {
	a.start = time.Now()
	backoff := a.cfg.MinBackoff
	for {
		connected, err := a.connection(ctx)
		if errors.Is(err, ErrCrashed) || errors.Is(err, ErrHung) {
			a.log.Warn("sim: agent down", "err", err)
			return err
		}
		if ctx.Err() != nil {
			return nil
		}
		if connected {
			backoff = a.cfg.MinBackoff
		}
		wait := backoff/2 + rand.N(backoff/2+1)
		a.log.Info("sim: disconnected; reconnecting", "err", err, "in", wait.Round(time.Millisecond))
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		backoff = min(2*backoff, a.cfg.MaxBackoff)
	}
}

// connection dials and runs one session; connected says whether the
// daemon welcomed it.
func (a *Agent) connection(ctx context.Context) (connected bool, err error) {
	conn, err := a.cfg.Dial()
	if err != nil {
		return false, err
	}
	defer conn.Close()
	return a.session(ctx, conn)
}

// after returns a channel that fires d after Run started, or nil when d is 0.
func (a *Agent) after(d time.Duration) <-chan time.Time {
	if d <= 0 {
		return nil
	}
	return time.After(time.Until(a.start.Add(d)))
}

func (a *Agent) session(ctx context.Context, conn *grpc.ClientConn) (bool, error) {
	f := a.cfg.Faults
	crash, hang := a.after(f.CrashAfter), a.after(f.HangAfter)
	select {
	case <-crash:
		return false, ErrCrashed // down before it could connect
	case <-hang:
		return false, ErrHung
	default:
	}
	if err := a.learnCapacity(ctx, conn); err != nil {
		return false, err
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := pb.NewAgentServiceClient(conn).Connect(sctx)
	if err != nil {
		return false, err
	}
	hello := &pb.AgentHello{Region: a.cfg.Region, AgentId: a.cfg.AgentID}
	if err := stream.Send(&pb.ConnectRequest{Msg: &pb.ConnectRequest_Hello{Hello: hello}}); err != nil {
		if _, rerr := stream.Recv(); rerr != nil {
			return false, rerr // the status says why the daemon ended it
		}
		return false, err
	}
	first, err := stream.Recv()
	if err != nil {
		return false, err
	}
	w := first.GetWelcome()
	if w == nil {
		return false, errors.New("sim: the daemon's first message is not a welcome")
	}
	every := time.Duration(w.GetReportEveryMs()) * time.Millisecond
	if every <= 0 {
		every = time.Second
	}
	a.log.Info("sim: connected", "lease", w.GetLeaseId(), "report_every", every, "assignments", w.GetInitialAssignments())

	in := make(chan *pb.ConnectResponse)
	errc := make(chan error, 1)
	go func() {
		for {
			m, err := stream.Recv()
			if err != nil {
				errc <- err
				return
			}
			select {
			case in <- m:
			case <-sctx.Done():
				return
			}
		}
	}()

	s := &session{a: a, stream: stream, region: a.cfg.Region, healthy: true}
	if f.WrongRegion != "" {
		s.region = f.WrongRegion
	}
	if f.Flap > 0 {
		// The phase follows the clock since Run started, across reconnects.
		s.healthy = (time.Since(a.start)/f.Flap)%2 == 0
	}
	initial := int(w.GetInitialAssignments())
	s.beginInitial(initial)
	if err := s.report(); err != nil {
		return true, ended(errc, err)
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	var flap <-chan time.Time
	if f.Flap > 0 {
		flap = time.After(f.Flap - time.Since(a.start)%f.Flap)
	}
	hung := false
	for {
		select {
		case <-ctx.Done():
			// A clean goodbye: the daemon closes the session at once.
			_ = stream.CloseSend()
			select {
			case <-errc:
			case <-time.After(time.Second):
			}
			return true, nil
		case <-crash:
			a.log.Warn("sim: crashing (simulated): dropping the connection")
			conn.Close()
			return true, ErrCrashed
		case <-hang:
			a.log.Warn("sim: hanging (simulated): no more reports or acks")
			hung, flap = true, nil
			tick.Stop()
		case err := <-errc:
			if hung {
				a.log.Warn("sim: the daemon ended the hung session", "err", err)
				return true, ErrHung
			}
			return true, err
		case <-tick.C:
			if s.crashDue {
				a.log.Warn("sim: crashing (simulated) after its assignments: dropping the connection", "runs", f.CrashAfterRuns)
				conn.Close()
				return true, ErrCrashed
			}
			if err := s.report(); err != nil {
				return true, ended(errc, err)
			}
		case <-flap:
			s.healthy = !s.healthy
			flap = time.After(f.Flap)
			a.log.Info("sim: health flaps (simulated)", "healthy", s.healthy)
			if err := s.report(); err != nil {
				return true, ended(errc, err)
			}
		case m := <-in:
			if hung {
				continue
			}
			u := m.GetAssignment()
			if u == nil {
				continue
			}
			due, err := s.assignment(u)
			if err != nil {
				return true, ended(errc, err)
			}
			s.crashDue = s.crashDue || due
		}
	}
}

// ended prefers the stream's status to a send's error: a send fails
// (io.EOF) once the daemon has ended the stream, and the status, which
// the receiving goroutine gets, says why.
func ended(errc <-chan error, sendErr error) error {
	select {
	case err := <-errc:
		return err
	case <-time.After(time.Second):
		return sendErr
	}
}

// learnCapacity asks classrouted for the region's catalogue capacity
// when none was configured.
func (a *Agent) learnCapacity(ctx context.Context, conn *grpc.ClientConn) error {
	a.mu.Lock()
	known := a.capacity != (router.Resources{})
	a.mu.Unlock()
	if known {
		return nil
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	r, err := pb.NewCatalogServiceClient(conn).GetRegion(cctx, &pb.GetRegionRequest{Key: a.cfg.Region})
	if err != nil {
		return fmt.Errorf("sim: region capacity: %w", err)
	}
	c := r.GetRegion().GetCapacity()
	a.mu.Lock()
	a.capacity = router.Resources{MilliCPU: c.GetMilliCpu(), MemoryMiB: c.GetMemoryMib(), GPU: c.GetGpu()}
	a.mu.Unlock()
	a.log.Info("sim: capacity from the catalogue", "capacity", a.capacity)
	return nil
}

// session is one connection's state.
type session struct {
	a        *Agent
	stream   grpc.BidiStreamingClient[pb.ConnectRequest, pb.ConnectResponse]
	region   string // named in reports and acks
	healthy  bool
	crashDue bool // the CrashAfterRuns fault strikes at the next report
	// The initial assignment set: how many RUNs are still to come, and
	// the placements ("tenant/request id") seen so far. Placements the agent runs that are not in it
	// were stopped while it was away.
	initialLeft int
	initial     map[string]bool
}

func (s *session) beginInitial(n int) {
	s.initialLeft, s.initial = n, make(map[string]bool, n)
	if n == 0 {
		s.endInitial()
	}
}

func (s *session) endInitial() {
	a := s.a
	a.mu.Lock()
	defer a.mu.Unlock()
	for id := range a.running {
		if !s.initial[id] {
			delete(a.running, id)
			a.log.Info("sim: stopped while away", "placement", id)
		}
	}
	s.initial = nil
}

func (s *session) send(m *pb.ConnectRequest) error { return s.stream.Send(m) }

// report sends the region's health and free capacity.
func (s *session) report() error {
	a := s.a
	a.mu.Lock()
	free := a.capacity
	for _, r := range a.running {
		free = free.Sub(r)
	}
	n := len(a.running)
	a.mu.Unlock()
	free = router.Resources{MilliCPU: max(free.MilliCPU, 0), MemoryMiB: max(free.MemoryMiB, 0), GPU: max(free.GPU, 0)}
	detail := fmt.Sprintf("simulated: %d placements running", n)
	if !s.healthy {
		detail = "simulated fault: health flapping"
	}
	return s.send(&pb.ConnectRequest{Msg: &pb.ConnectRequest_Report{Report: &pb.AgentReport{
		Region: s.region, Healthy: s.healthy, Detail: detail,
		Free: &pb.Resources{MilliCpu: free.MilliCPU, MemoryMib: free.MemoryMiB, Gpu: free.GPU},
	}}})
}

// ack acknowledges u's placement, named as u names it: by tenant and
// request id.
func (s *session) ack(u *pb.AssignmentUpdate, st pb.ReplicaState, detail string) error {
	return s.send(&pb.ConnectRequest{Msg: &pb.ConnectRequest_Ack{Ack: &pb.AgentAck{
		Region: s.region, Tenant: u.GetTenant(), PlacementId: u.GetPlacementId(), State: st, Detail: detail}}})
}

// assignment runs or stops a placement and acknowledges it; crash says
// whether the CrashAfterRuns fault is due.
func (s *session) assignment(u *pb.AssignmentUpdate) (crash bool, err error) {
	a, id := s.a, u.GetTenant()+"/"+u.GetPlacementId()
	res := u.GetWorkload().GetResources()
	need := router.Resources{MilliCPU: res.GetMilliCpu(), MemoryMiB: res.GetMemoryMib(), GPU: res.GetGpu()}
	switch u.GetAction() {
	case pb.AssignmentAction_ASSIGNMENT_ACTION_STOP:
		a.mu.Lock()
		_, was := a.running[id]
		delete(a.running, id)
		a.mu.Unlock()
		a.log.Info("sim: stop", "placement", id, "was_running", was)
		return false, s.report()
	case pb.AssignmentAction_ASSIGNMENT_ACTION_RUN:
	default:
		return false, nil
	}
	if s.initial != nil {
		s.initial[id] = true
		if s.initialLeft--; s.initialLeft <= 0 {
			defer s.endInitial()
		}
	}
	a.mu.Lock()
	_, already := a.running[id]
	free := a.capacity
	for _, r := range a.running {
		free = free.Sub(r)
	}
	var refusal string
	switch {
	case already:
	case a.cfg.Faults.Refuse:
		refusal = "refused (simulated fault)"
	case !need.Fits(free):
		refusal = fmt.Sprintf("insufficient capacity: needs %+v, free %+v", need, free)
	default:
		a.running[id] = need
		a.runs++
	}
	runs := a.runs
	a.mu.Unlock()
	if refusal != "" {
		a.log.Info("sim: refuse", "placement", id, "why", refusal)
		return false, s.ack(u, pb.ReplicaState_REPLICA_STATE_FAILED, refusal)
	}
	if already {
		a.log.Info("sim: run (already running)", "placement", id)
		return false, s.ack(u, pb.ReplicaState_REPLICA_STATE_RUNNING, "simulated")
	}
	a.log.Info("sim: run", "placement", id, "workload", u.GetWorkload().GetName(), "revision", u.GetRevision())
	if err := s.ack(u, pb.ReplicaState_REPLICA_STATE_ACCEPTED, ""); err != nil {
		return false, err
	}
	if err := s.ack(u, pb.ReplicaState_REPLICA_STATE_RUNNING, "simulated"); err != nil {
		return false, err
	}
	if err := s.report(); err != nil {
		return false, err
	}
	return a.cfg.Faults.CrashAfterRuns > 0 && runs >= a.cfg.Faults.CrashAfterRuns, nil
}
