package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"

	"google.golang.org/grpc"

	"github.com/classroute/classroute/providers/sim"
	"github.com/classroute/classroute/router"
)

// agentUsage documents the agent command; it is part of usage.
const agentUsage = `  classroutectl agent sim --region P/ID [--region P/ID ...] [--capacity 64000m,262144Mi,8gpu]
                          [--fault [P/ID:]FAULT ...] [--agent-id ID]
                                                       run a simulated agent for each region until
                                                       interrupted: it reports health and free capacity
                                                       (capacity: m or cpu, Mi, Gi or Ti, gpu; default the
                                                       catalogue's), runs and acknowledges what it is
                                                       assigned, and reconnects after a disconnect.
                                                       FAULT: crash-after=30s or =3 (assignments),
                                                       hang-after=30s, refuse, flap=5s, wrong-region=P/ID;
                                                       a P/ID: prefix gives one region the fault
`

// repeated is a flag that may be given more than once.
type repeated []string

func (r *repeated) String() string     { return strings.Join(*r, ",") }
func (r *repeated) Set(v string) error { *r = append(*r, v); return nil }

// agent runs "agent sim ...".
func (c *cli) agent(fs *flag.FlagSet, args []string) error {
	var regions, faults repeated
	fs.Var(&regions, "region", "")
	fs.Var(&faults, "fault", "")
	capacity := fs.String("capacity", "", "")
	agentID := fs.String("agent-id", "", "")
	pos, err := c.flags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || pos[0] != "sim" {
		return usageError{"agent: want: agent sim --region P/ID ..."}
	}
	if len(regions) == 0 {
		return usageError{"agent sim: at least one --region P/ID is required"}
	}
	for i, r := range regions {
		if p, id, ok := strings.Cut(r, "/"); !ok || p == "" || id == "" {
			return usageError{fmt.Sprintf("agent sim: --region %q: want provider/id", r)}
		}
		if slices.Contains(regions[:i], r) {
			return usageError{fmt.Sprintf("agent sim: --region %s given twice", r)}
		}
	}
	var capa router.Resources
	if *capacity != "" {
		if capa, err = sim.ParseResources(*capacity); err != nil {
			return usageError{"agent sim: --" + err.Error()}
		}
	}
	perRegion := make(map[string]*sim.Faults, len(regions))
	for _, r := range regions {
		perRegion[r] = &sim.Faults{}
	}
	for _, f := range faults {
		targets := regions
		if scope, spec, ok := strings.Cut(f, ":"); ok && strings.Contains(scope, "/") {
			if perRegion[scope] == nil {
				return usageError{fmt.Sprintf("agent sim: --fault %q: %s is not among the --region flags", f, scope)}
			}
			targets, f = []string{scope}, spec
		}
		for _, r := range targets {
			if err := sim.ParseFault(f, perRegion[r]); err != nil {
				return usageError{"agent sim: " + err.Error()}
			}
		}
	}
	prefix := *agentID
	if prefix == "" {
		host, _ := os.Hostname()
		prefix = "sim@" + safeID(host)
	}

	log := slog.New(slog.NewTextHandler(c.stderr, nil))
	creds, err := c.creds()
	if err != nil {
		return err
	}
	dial := func() (*grpc.ClientConn, error) {
		return grpc.NewClient(c.server, grpc.WithTransportCredentials(creds))
	}
	var agents []*sim.Agent
	for _, r := range regions {
		a, err := sim.New(sim.Config{
			Region:   r,
			AgentID:  prefix + ":" + safeID(r),
			Capacity: capa,
			Faults:   *perRegion[r],
			Dial:     dial,
			Log:      log,
		})
		if err != nil {
			return usageError{"agent sim: " + err.Error()}
		}
		agents = append(agents, a)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var wg sync.WaitGroup
	errs := make([]error, len(agents))
	for i, a := range agents {
		wg.Go(func() {
			err := a.Run(ctx)
			if !errors.Is(err, sim.ErrCrashed) && !errors.Is(err, sim.ErrHung) {
				errs[i] = err
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// safeID maps s into the characters an agent id may hold.
func safeID(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', strings.ContainsRune("._:@-", r):
			return r
		case r == '/':
			return '.'
		}
		return '-'
	}, s)
}
