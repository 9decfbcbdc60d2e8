package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/classroute/classroute/proto/classroute/v1"
	"github.com/classroute/classroute/router"
	"github.com/classroute/classroute/router/authz"
	"github.com/classroute/classroute/router/convert"
	"github.com/classroute/classroute/router/state"
)

// AgentStore is what the agent service calls of the store: a session
// per connected agent, which then reports, acknowledges and follows its
// region's assignments (state.AgentSession).
type AgentStore interface {
	ConnectAgent(ctx context.Context, region, agentID string, ttl time.Duration) (*state.AgentSession, error)
}

// agentService implements AgentService: the region agents' sessions.
type agentService struct {
	pb.UnimplementedAgentServiceServer
	*Server
	store AgentStore
}

// Connect serves one region agent's session (AgentService.Connect).
//
// The first message must be a hello; the session (state.AgentSession)
// then holds the region's live record on a lease, and the welcome says
// how often to report. The agent is sent its region's whole assignment
// set (the welcome counts it), then every change. Each report and ack
// must name the hello's region: one that names another ends the stream
// with PERMISSION_DENIED before anything is written. A bad value ends it
// with INVALID_ARGUMENT naming the field. An ack of a placement that no
// longer holds the region, or never did, changes nothing and is dropped
// without ending the stream: it crossed a STOP on the wire, which the
// agent gets anyway. The session ends with the stream (the lease is
// revoked, so the live record goes at once); a session that loses its
// lease, or a daemon that is stopping (StopWatches), ends the stream
// with UNAVAILABLE, and the agent reconnects.
//
// Reports and session starts are held to the caller's rate
// (IdentityLimits.AgentReports): a hello beyond it waits for its turn as
// a rate-limited call does (IdentityLimits.MaxWait), or is refused with
// RESOURCE_EXHAUSTED before anything is written; a report beyond it is
// held back (heldReport), and the latest held is written once the rate
// allows. Holding back rather than ending the stream matters: an agent
// reports after each assignment it runs, so a burst of placements is a
// burst of reports, and ending the session would replay every
// assignment on reconnecting, and the burst with them.
//
// Acks are held to the caller's ack rate (IdentityLimits.AgentAcks)
// likewise, counting only those that write (state.AgentSession.AckNeeded):
// one beyond it is held back (heldAcks), the latest per placement, and
// the held acks are written in the order their placements were first
// held as the rate allows. So a flood of acks costs etcd the rate, and a
// burst of legitimate ones is delayed, never lost while the session
// lasts. What is still held when the session ends is dropped, as a held
// report is: the reconnecting agent is sent its assignments again and
// acknowledges them again.
func (s *agentService) Connect(stream pb.AgentService_ConnectServer) error {
	ctx := stream.Context()
	first, err := stream.Recv()
	if errors.Is(err, io.EOF) {
		return s.fail(ctx, router.Violations{{Field: "hello", Description: "required: the stream ended before a hello"}}.Err())
	}
	if err != nil {
		return err
	}
	hello := first.GetHello()
	if hello == nil {
		return s.fail(ctx, router.Violations{{Field: "hello", Description: "the first message must be a hello"}}.Err())
	}
	if p := authz.FromContext(ctx); p == nil && s.authn != nil {
		return status.Error(codes.PermissionDenied, "no principal")
	} else if p != nil && p.Kind != authz.KindDev && p.Region != hello.GetRegion() {
		// An agent's identity names its region; only the development
		// principal may serve any region.
		return status.Errorf(codes.PermissionDenied, "%s may serve region %s only", p, p.Region)
	}
	// Starting a session writes to etcd as a report does, so it spends
	// one of the caller's report tokens: reconnecting is no way around
	// the limit.
	if err := s.limits.allow(ctx, limitAgentReport); err != nil {
		return err
	}
	sess, err := s.store.ConnectAgent(ctx, hello.GetRegion(), hello.GetAgentId(), s.agentTTL)
	if err != nil {
		return s.fail(ctx, err)
	}
	defer sess.Close()
	log := s.log.With("region", sess.Region(), "agent", sess.Agent())

	initial, err := sess.Assignments(ctx)
	if err != nil {
		return s.fail(ctx, err)
	}
	welcome := &pb.AgentWelcome{
		Region:             sess.Region(),
		LeaseId:            sess.LeaseID(),
		ReportEveryMs:      (sess.TTL() / 3).Milliseconds(),
		InitialAssignments: int32(len(initial)),
	}
	if err := stream.Send(&pb.ConnectResponse{Msg: &pb.ConnectResponse_Welcome{Welcome: welcome}}); err != nil {
		return err
	}
	if err := sendAssignments(stream, initial); err != nil {
		return err
	}
	log.InfoContext(ctx, "agent connected", "lease", sess.LeaseID(), "ttl", sess.TTL(), "assignments", len(initial))

	// Sends stay on this goroutine; receiving and waiting for
	// assignment changes run beside it. The receiver ends when the
	// stream does (this handler returning ends it); the assignment
	// waiter is stopped and waited for.
	run, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	msgs := make(chan *pb.ConnectRequest)
	recvErr := make(chan error, 1)
	pace := s.limits.pacer(ctx)
	go func() {
		for {
			// Beyond the pace, stop reading: flow control holds the
			// agent's sends, and a flood costs no more than the pace.
			if pace != nil && pace.Wait(run) != nil {
				return // the handler has returned
			}
			m, err := stream.Recv()
			if err != nil {
				recvErr <- err
				return
			}
			select {
			case msgs <- m:
			case <-run.Done():
				return
			}
		}
	}()
	updates := make(chan []router.Assignment)
	updateErr := make(chan error, 1)
	wg.Go(func() {
		for {
			as, err := sess.Assignments(run)
			if err != nil {
				updateErr <- err
				return
			}
			select {
			case updates <- as:
			case <-run.Done():
				return
			}
		}
	})

	var held heldReport
	defer held.stop()
	var acks heldAcks
	defer acks.stop()
	for {
		select {
		case m := <-msgs:
			if err := s.agentMessage(ctx, log, sess, m, &held, &acks); err != nil {
				log.InfoContext(ctx, "agent session ended", "err", err)
				return err
			}
		case <-held.due():
			if err := s.writeHeld(ctx, sess, &held); err != nil {
				return err
			}
		case <-acks.due():
			if err := s.writeHeldAcks(ctx, log, sess, &acks); err != nil {
				return err
			}
		case err := <-recvErr:
			if errors.Is(err, io.EOF) {
				log.InfoContext(ctx, "agent disconnected")
				return nil
			}
			return err
		case as := <-updates:
			if err := sendAssignments(stream, as); err != nil {
				return err
			}
		case err := <-updateErr:
			return s.fail(ctx, err)
		case <-sess.Done():
			return s.fail(ctx, sess.Err())
		case <-s.draining.Done():
			return s.fail(ctx, fmt.Errorf("%w: daemon stopping: reconnect", router.ErrUnavailable))
		}
	}
}

// agentMessage handles one report or ack of the session's agent.
func (s *agentService) agentMessage(ctx context.Context, log *slog.Logger, sess *state.AgentSession, m *pb.ConnectRequest, held *heldReport, acks *heldAcks) error {
	switch msg := m.GetMsg().(type) {
	case *pb.ConnectRequest_Report:
		r := msg.Report
		if r.GetRegion() != sess.Region() {
			return s.fail(ctx, fmt.Errorf("%w: agent for %s may not report for %q", router.ErrPermissionDenied, sess.Region(), r.GetRegion()))
		}
		if r.GetFree() == nil {
			return s.fail(ctx, router.Violations{{Field: "report.free", Description: "required: the region's free capacity"}}.Err())
		}
		return s.report(ctx, sess, r, held)
	case *pb.ConnectRequest_Ack:
		a := msg.Ack
		if a.GetRegion() != sess.Region() {
			return s.fail(ctx, fmt.Errorf("%w: agent for %s may not acknowledge for %q", router.ErrPermissionDenied, sess.Region(), a.GetRegion()))
		}
		var v router.Violations
		st := convert.ReplicaStateFromProto(a.GetState(), "ack.state", &v)
		if err := v.Err(); err != nil {
			return s.fail(ctx, err)
		}
		tenant, needed, err := sess.AckNeeded(ctx, a.GetTenant(), a.GetPlacementId(), st, a.GetDetail())
		if err != nil {
			return s.ackFailed(ctx, log, ackKey{a.GetTenant(), a.GetPlacementId()}, st, err, acks)
		}
		k := ackKey{tenant, a.GetPlacementId()}
		if !needed {
			// The record says it already; an ack held back for the
			// placement would now undo it.
			acks.drop(k)
			return nil
		}
		return s.ack(ctx, log, sess, heldAck{k, st, a.GetDetail()}, acks)
	case *pb.ConnectRequest_Hello:
		return s.fail(ctx, router.Violations{{Field: "hello", Description: "only the first message may be a hello"}}.Err())
	}
	return s.fail(ctx, router.Violations{{Field: "msg", Description: "required: a report or an ack"}}.Err())
}

// heldReport is an agent's latest report beyond its rate, to be written
// when the rate allows: etcd sees no more than the rate, and the
// region's record is at most one token's wait behind what its agent
// last said.
type heldReport struct {
	r     *pb.AgentReport
	timer *time.Timer // nil: nothing held
}

// due fires when the held report may be tried again.
func (h *heldReport) due() <-chan time.Time {
	if h.timer == nil {
		return nil
	}
	return h.timer.C
}

func (h *heldReport) stop() {
	if h.timer != nil {
		h.timer.Stop()
	}
}

// report writes a checked report, or holds it back when the caller is
// beyond its rate. A report arriving while another is held replaces it.
func (s *agentService) report(ctx context.Context, sess *state.AgentSession, r *pb.AgentReport, held *heldReport) error {
	if held.timer == nil {
		wait := s.limits.take(ctx, limitAgentReport)
		if wait == 0 {
			return s.fail(ctx, sess.Report(ctx, r.GetHealthy(), r.GetDetail(), convert.ResourcesFromProto(r.GetFree())))
		}
		held.timer = time.NewTimer(wait)
	}
	held.r = r
	s.limits.observe(limitAgentReport)
	return nil
}

// writeHeld writes the held report if the rate now allows, else waits on.
func (s *agentService) writeHeld(ctx context.Context, sess *state.AgentSession, held *heldReport) error {
	if wait := s.limits.take(ctx, limitAgentReport); wait > 0 {
		held.timer.Reset(wait)
		return nil
	}
	r := held.r
	held.r, held.timer = nil, nil
	return s.fail(ctx, sess.Report(ctx, r.GetHealthy(), r.GetDetail(), convert.ResourcesFromProto(r.GetFree())))
}

// ackKey names the placement an ack is of: its tenant and request id.
type ackKey struct{ tenant, id string }

// heldAck is an ack that writes, checked (state.AgentSession.AckNeeded).
type heldAck struct {
	key    ackKey
	state  router.ReplicaState
	detail string
}

// heldAcks are an agent's acks beyond its rate, to be written when the
// rate allows: the latest per placement, in the order their placements
// were first held. Only acks that write are held, so they hold at most
// one ack per placement the region holds.
type heldAcks struct {
	order  []ackKey // oldest first; a key dropped meanwhile is skipped
	latest map[ackKey]heldAck
	timer  *time.Timer // nil: nothing held
}

// due fires when held acks may be tried again.
func (h *heldAcks) due() <-chan time.Time {
	if h.timer == nil {
		return nil
	}
	return h.timer.C
}

func (h *heldAcks) stop() {
	if h.timer != nil {
		h.timer.Stop()
	}
}

// hold holds a back, replacing the ack held for its placement.
func (h *heldAcks) hold(a heldAck) {
	if h.latest == nil {
		h.latest = make(map[ackKey]heldAck)
	}
	if _, ok := h.latest[a.key]; !ok {
		h.order = append(h.order, a.key)
	}
	h.latest[a.key] = a
	if len(h.order) > 2*len(h.latest)+64 {
		// Keys dropped and held again are in order more than once:
		// keep the first of each held key.
		seen := make(map[ackKey]bool, len(h.latest))
		kept := make([]ackKey, 0, len(h.latest))
		for _, k := range h.order {
			if _, held := h.latest[k]; held && !seen[k] {
				seen[k] = true
				kept = append(kept, k)
			}
		}
		h.order = kept
	}
}

// drop forgets the ack held for k, if any.
func (h *heldAcks) drop(k ackKey) { delete(h.latest, k) }

// next takes the oldest held ack; ok is false when none is held.
func (h *heldAcks) next() (a heldAck, ok bool) {
	for len(h.order) > 0 {
		k := h.order[0]
		h.order = h.order[1:]
		if a, ok = h.latest[k]; ok {
			delete(h.latest, k)
			return a, true
		}
	}
	h.order = nil
	return heldAck{}, false
}

// ackFailed handles an ack that AckNeeded or Ack refused: an ack of a
// placement that no longer holds the region, or never did, is dropped
// with any ack held for it, and the session goes on; any other error
// ends the session.
func (s *agentService) ackFailed(ctx context.Context, log *slog.Logger, k ackKey, st router.ReplicaState, err error, acks *heldAcks) error {
	if errors.Is(err, router.ErrNotFound) || errors.Is(err, router.ErrNotAssigned) {
		log.InfoContext(ctx, "agent ack dropped", "tenant", k.tenant, "placement", k.id, "state", st, "err", err)
		acks.drop(k)
		return nil
	}
	return s.fail(ctx, err)
}

// ack writes a checked ack, or holds it back when the caller is beyond
// its ack rate or has acks held already (those go first).
func (s *agentService) ack(ctx context.Context, log *slog.Logger, sess *state.AgentSession, a heldAck, acks *heldAcks) error {
	if acks.timer == nil {
		wait := s.limits.take(ctx, limitAgentAck)
		if wait == 0 {
			return s.writeAck(ctx, log, sess, a, acks)
		}
		acks.timer = time.NewTimer(wait)
	}
	acks.hold(a)
	s.limits.observe(limitAgentAck)
	return nil
}

// writeHeldAcks writes held acks, oldest first, while the rate allows,
// then waits on for the rest.
func (s *agentService) writeHeldAcks(ctx context.Context, log *slog.Logger, sess *state.AgentSession, acks *heldAcks) error {
	for {
		if len(acks.latest) == 0 {
			acks.order, acks.timer = nil, nil
			return nil
		}
		if wait := s.limits.take(ctx, limitAgentAck); wait > 0 {
			acks.timer.Reset(wait)
			return nil
		}
		a, _ := acks.next()
		if err := s.writeAck(ctx, log, sess, a, acks); err != nil {
			return err
		}
	}
}

func (s *agentService) writeAck(ctx context.Context, log *slog.Logger, sess *state.AgentSession, a heldAck, acks *heldAcks) error {
	if err := sess.Ack(ctx, a.key.tenant, a.key.id, a.state, a.detail); err != nil {
		return s.ackFailed(ctx, log, a.key, a.state, err, acks)
	}
	return nil
}

func sendAssignments(stream pb.AgentService_ConnectServer, as []router.Assignment) error {
	for _, a := range as {
		u := convert.AssignmentToProto(a)
		if err := stream.Send(&pb.ConnectResponse{Msg: &pb.ConnectResponse_Assignment{Assignment: u}}); err != nil {
			return err
		}
	}
	return nil
}
