package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"

	"github.com/classroute/classroute/providers/sim"
	"github.com/classroute/classroute/router"
	"github.com/classroute/classroute/router/client"
)

// agentCmd is agent sim.
func (c *cli) agentCmd() *cobra.Command {
	var regions, faults []string
	var capacity, agentID string
	simCmd := &cobra.Command{
		Use:   "sim --region P/ID [--region P/ID ...]",
		Short: "Run a simulated agent for each region until interrupted",
		Long: `sim runs a simulated agent for each region until interrupted: it reports
health and free capacity (capacity: m or cpu, Mi, Gi or Ti, gpu; default
the catalogue's), runs and acknowledges what it is assigned, and
reconnects after a disconnect.

FAULT: crash-after=30s or =3 (assignments), hang-after=30s, refuse,
flap=5s, wrong-region=P/ID; a P/ID: prefix gives one region the fault.`,
		Example: `  classroutectl agent sim --region ke-gov/konza-1 --region aws/us-east-1 --fault ke-gov/konza-1:flap=5s`,
		Args:    args(0, ""),
		RunE: c.action(func(cmd *cobra.Command, _ []string) error {
			return c.agentSim(regions, faults, capacity, agentID)
		}),
	}
	f := simCmd.Flags()
	f.StringArrayVar(&regions, "region", nil, "a region the agent serves, provider/id (repeatable; at least one)")
	f.StringArrayVar(&faults, "fault", nil, "[P/ID:]FAULT to inject (repeatable)")
	f.StringVar(&capacity, "capacity", "", "capacity reported, e.g. 64000m,262144Mi,8gpu (default: the catalogue's)")
	f.StringVar(&agentID, "agent-id", "", "agent id prefix (default sim@HOST)")
	return group("agent", "Run region agents", simCmd)
}

// agentSim runs "agent sim".
func (c *cli) agentSim(regions, faults []string, capacity, agentID string) error {
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
	if capacity != "" {
		var err error
		if capa, err = sim.ParseResources(capacity); err != nil {
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
	prefix := agentID
	if prefix == "" {
		host, _ := os.Hostname()
		prefix = "sim@" + safeID(host)
	}

	log := slog.New(slog.NewTextHandler(c.stderr, nil))
	cl, err := c.client()
	if err != nil {
		return err
	}
	// Each agent dials its own connection, as a real one would, with the
	// client's configuration (address, TLS).
	cfg := cl.Config()
	dial := func() (*grpc.ClientConn, error) {
		ac, err := client.New(cfg)
		if err != nil {
			return nil, err
		}
		return ac.Conn(), nil
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

	ctx, stop := signalContext()
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
