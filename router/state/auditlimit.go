package state

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/classroute/classroute/router"
	"github.com/classroute/classroute/router/audit"
	"github.com/classroute/classroute/router/authz"
)

// Refusals are audited at a bounded rate per caller. A refused Place
// costs the caller nothing but writes an audit entry, so without a bound
// one caller looping on a refused request fills etcd for everyone. Each
// caller (the principal's kind, tenant, name and region: one identity
// however its ID is spelled) has a token bucket of RefusalAuditLimit;
// a refusal that finds a token is audited on its own, as before; one
// that finds none is still refused, and is counted instead: by tenant,
// by reason, with the times of the first and last. The counts are
// written as refuse-summary entries, one per tenant:
//
//	refuse-summary  actor X  tenant T  count 1204  from T1  to T2
//	  "1204 further refusals by X for tenant T between T1 and T2 were not audited one by one"
//	  "permission_denied: 1200"  "no_eligible_region: 4"
//
// with the caller's next refusal that is audited (in its transaction,
// before it, and costing a token each, so a caller refused without end
// writes at most PerSecond entries a second in all), or once the oldest
// count is SummaryAfter old, or when the store closes. So every refusal
// is on the trail, one by one or in a summary, and the counts are
// exact.
//
// A region agent's acknowledgements of a replica as FAILED (Ack's
// replica-failed entries) draw on the agent's bucket the same way: an
// agent whose detail changes with every FAILED ack would otherwise
// write an entry per ack. Those not audited one by one are counted likewise, by
// tenant and placement, in replica-failed-summary entries:
//
//	replica-failed-summary  actor A  tenant T  regions R  count 298
//	  "298 further acknowledgements of a failed replica by A for tenant T between T1 and T2 were not audited one by one"
//	  "placement k1 in R: 298"
//
// The placement record still takes each ack (held to the agent's ack
// rate by the server). Placements, releases, catalogue changes and the
// reconciler's entries are never bounded.
//
// The bound is per store: a caller spread over several daemons is
// bounded by each. Counts not yet written when a daemon dies are lost
// (at most SummaryAfter of them; their counts, without the caller's
// name, are logged when the final write fails).

// RefusalAuditLimit bounds the refusals of one caller, and the failure
// acknowledgements of one agent, audited one by one.
type RefusalAuditLimit struct {
	// PerSecond and Burst size each caller's token bucket; PerSecond 0
	// audits every refusal on its own.
	PerSecond float64
	Burst     int
	// SummaryAfter is how long counted refusals wait at most for their
	// summary.
	SummaryAfter time.Duration
}

// DefaultRefusalAuditLimit: ten refusals a second, fifty at once, and
// summaries within ten seconds.
var DefaultRefusalAuditLimit = RefusalAuditLimit{PerSecond: 10, Burst: 50, SummaryAfter: 10 * time.Second}

// WithRefusalAuditLimit sets the bound on refusals audited one by one
// (default DefaultRefusalAuditLimit).
func WithRefusalAuditLimit(l RefusalAuditLimit) Option {
	return func(o *options) { o.refusalAudit = l }
}

func (l RefusalAuditLimit) validate() error {
	if l.PerSecond < 0 || l.PerSecond > 0 && (l.Burst < 1 || l.SummaryAfter <= 0) {
		return fmt.Errorf("refusal audit limit %+v: want a rate of 0 (off) or a positive rate, a burst of at least 1 and a positive summary delay", l)
	}
	return nil
}

// String is the limit as ParseRefusalAuditLimit reads it.
func (l RefusalAuditLimit) String() string {
	if l.PerSecond == 0 {
		return "off"
	}
	return strconv.FormatFloat(l.PerSecond, 'f', -1, 64) + "/s,burst=" + strconv.Itoa(l.Burst)
}

// ParseRefusalAuditLimit reads "RATE/UNIT[,burst=N]" (UNIT s, m or h;
// the burst defaults to five seconds' worth, at least 1) or "off". The
// summary delay is DefaultRefusalAuditLimit's.
func ParseRefusalAuditLimit(s string) (RefusalAuditLimit, error) {
	l := RefusalAuditLimit{SummaryAfter: DefaultRefusalAuditLimit.SummaryAfter}
	if s == "off" {
		return l, nil
	}
	bad := func(why string) (RefusalAuditLimit, error) {
		return RefusalAuditLimit{}, fmt.Errorf("refusal audit limit %q: %s (want RATE/s, RATE/m or RATE/h, optionally ,burst=N; or off)", s, why)
	}
	rate, burst, hasBurst := strings.Cut(s, ",")
	num, unit, ok := strings.Cut(rate, "/")
	if !ok {
		return bad("no unit")
	}
	n, err := strconv.ParseFloat(num, 64)
	if err != nil || !(n > 0) || n > 1e6 {
		return bad("the rate must be a positive number")
	}
	switch unit {
	case "s":
		l.PerSecond = n
	case "m":
		l.PerSecond = n / 60
	case "h":
		l.PerSecond = n / 3600
	default:
		return bad("unknown unit " + strconv.Quote(unit))
	}
	l.Burst = max(int(5*l.PerSecond), 1)
	if hasBurst {
		v, ok := strings.CutPrefix(burst, "burst=")
		b, err := strconv.Atoi(v)
		if !ok || err != nil || b < 1 || b > 1e6 {
			return bad("the burst must be burst=N, N a positive integer")
		}
		l.Burst = b
	}
	return l, nil
}

// Refusal reasons as summaries count them.
const (
	refusedPermission = "permission_denied"
	refusedNoRegion   = "no_eligible_region"
	refusedSpread     = "spread_unsatisfiable"
	refusedOther      = "other"
)

func refusalReason(err error) string {
	switch {
	case errors.Is(err, router.ErrPermissionDenied):
		return refusedPermission
	case errors.Is(err, router.ErrNoEligibleRegion):
		return refusedNoRegion
	case errors.Is(err, router.ErrSpreadUnsatisfiable):
		return refusedSpread
	}
	return refusedOther
}

// callerKey names p's bucket: its kind, tenant, name and region, not
// its ID's spelling. Callers without a principal share one.
func callerKey(p *authz.Principal) string {
	if p == nil {
		return ""
	}
	return strings.Join([]string{p.Kind, p.Tenant, p.Name, p.Region}, "\x00")
}

// auditRefusal audits refusal e of ctx's caller, whose cause is cause:
// on its own when the caller's bucket has a token (with the caller's
// counted refusals' summaries), else counted. An error means e could
// not be written; the caller's counts are kept for the next write.
func (s *Store) auditRefusal(ctx context.Context, e audit.Entry, cause error) error {
	if e.Time.IsZero() {
		e.Time = s.clock().UTC()
	}
	adm := s.admitAudit(ctx, &e, refusalReason(cause))
	if !adm.ok {
		return nil
	}
	if err := s.appendAudit(ctx, adm.entries(s, e)...); err != nil {
		adm.undo(s)
		return err
	}
	return nil
}

// auditAdmission is the bound's verdict on one entry: written on its
// own (ok, with the caller's pending summaries, sums) or counted.
type auditAdmission struct {
	key  string
	ok   bool
	sums []*refusalSummary
}

// admitAudit puts entry e (dated) of ctx's caller to the caller's
// bucket; reason is what a summary counts it under.
func (s *Store) admitAudit(ctx context.Context, e *audit.Entry, reason string) auditAdmission {
	if s.refusalAudit.PerSecond == 0 {
		return auditAdmission{ok: true}
	}
	key, ok, sums := s.trail.refusals.admit(callerKey(authz.FromContext(ctx)), e, reason, s.refusalAudit)
	return auditAdmission{key: key, ok: ok, sums: sums}
}

// entries are the entries an admitted e is written with: the pending
// summaries, then e.
func (a auditAdmission) entries(s *Store, e audit.Entry) []audit.Entry {
	out := make([]audit.Entry, 0, len(a.sums)+1)
	for _, sum := range a.sums {
		out = append(out, sum.entry(s.Revision(), e.Time))
	}
	return append(out, e)
}

// undo puts back the summaries of an admitted entry that could not be
// written.
func (a auditAdmission) undo(s *Store) {
	if a.ok {
		s.trail.refusals.restore(a.key, a.sums)
	}
}

// maxCallers bounds the buckets kept; callers past it share one.
const maxCallers = 1 << 16

const overflowCaller = "\x00overflow"

// refusalLimiter holds the callers' buckets and counts.
type refusalLimiter struct {
	mu      sync.Mutex
	callers map[string]*callerRefusals
}

type callerRefusals struct {
	tokens  float64
	at      time.Time // when tokens was right
	pending map[string]*refusalSummary
}

// refusalSummary counts one caller's refusals (or failure
// acknowledgements) for one tenant not audited one by one.
type refusalSummary struct {
	op            string // the summary's: audit.OpRefuseSummary or audit.OpReplicaFailedSummary
	actor, tenant string
	regions       []string // of the failure acknowledgements, sorted
	count         int64
	first, last   time.Time
	byReason      map[string]int64
}

// maxSummaryRegions bounds the regions a summary lists (each an index
// key of its entry, in a transaction of bounded size); its reasons name
// every one.
const maxSummaryRegions = 16

// addRegions adds regions to the ones the summary lists.
func (s *refusalSummary) addRegions(regions []string) {
	for _, r := range regions {
		if i, found := slices.BinarySearch(s.regions, r); !found && len(s.regions) < maxSummaryRegions {
			s.regions = slices.Insert(s.regions, i, r)
		}
	}
}

// summaryOp is the op of the summary that counts entries of op e not
// audited one by one.
func summaryOp(op string) string {
	if op == audit.OpReplicaFailed {
		return audit.OpReplicaFailedSummary
	}
	return audit.OpRefuseSummary
}

// pendingKey is a summary's key among its caller's pending summaries.
func pendingKey(op, tenant string) string { return op + "\x00" + tenant }

// compareSummaries orders summaries by op, then tenant.
func compareSummaries(a, b *refusalSummary) int {
	if c := strings.Compare(a.op, b.op); c != 0 {
		return c
	}
	return strings.Compare(a.tenant, b.tenant)
}

func (c *callerRefusals) refill(now time.Time, l RefusalAuditLimit) {
	if d := now.Sub(c.at); d > 0 {
		c.tokens = min(c.tokens+d.Seconds()*l.PerSecond, float64(l.Burst))
		c.at = now
	}
}

// admit takes a token of key's bucket for refusal e, and one for each
// of key's pending summaries, which it hands back to be written with e;
// or, short of tokens, counts e (reason is its cause) and reports false.
// It returns the key of the bucket it used: key, or past maxCallers the
// one the callers without a bucket share.
func (rl *refusalLimiter) admit(key string, e *audit.Entry, reason string, l RefusalAuditLimit) (string, bool, []*refusalSummary) {
	rl.mu.Lock()
	defer rl.mu.Unlock()
	if rl.callers == nil {
		rl.callers = make(map[string]*callerRefusals)
	}
	c := rl.callers[key]
	if c == nil && len(rl.callers) >= maxCallers {
		key = overflowCaller
		c = rl.callers[key]
	}
	if c == nil {
		c = &callerRefusals{tokens: float64(l.Burst), at: e.Time}
		rl.callers[key] = c
	}
	c.refill(e.Time, l)
	if cost := float64(1 + len(c.pending)); c.tokens >= cost {
		c.tokens -= cost
		sums := slices.Collect(maps.Values(c.pending))
		c.pending = nil
		slices.SortFunc(sums, compareSummaries)
		return key, true, sums
	}
	if c.pending == nil {
		c.pending = make(map[string]*refusalSummary)
	}
	op := summaryOp(e.Op)
	sum := c.pending[pendingKey(op, e.Tenant)]
	if sum == nil {
		sum = &refusalSummary{op: op, actor: e.Actor, tenant: e.Tenant, first: e.Time, byReason: make(map[string]int64)}
		if key == overflowCaller {
			sum.actor = fmt.Sprintf("(callers past the first %d audited at once)", maxCallers)
		}
		c.pending[pendingKey(op, e.Tenant)] = sum
	}
	if op == audit.OpReplicaFailedSummary {
		sum.addRegions(e.Regions)
	}
	sum.count++
	sum.first, sum.last = earlier(sum.first, e.Time), later(sum.last, e.Time)
	sum.byReason[reason]++
	return key, false, nil
}

func earlier(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// restore puts back summaries that could not be written.
func (rl *refusalLimiter) restore(key string, sums []*refusalSummary) {
	if len(sums) == 0 {
		return
	}
	rl.mu.Lock()
	defer rl.mu.Unlock()
	c := rl.callers[key]
	if c == nil {
		c = &callerRefusals{at: time.Now()}
		rl.callers[key] = c
	}
	if c.pending == nil {
		c.pending = make(map[string]*refusalSummary)
	}
	for _, s := range sums {
		pk := pendingKey(s.op, s.tenant)
		cur := c.pending[pk]
		if cur == nil {
			c.pending[pk] = s
			continue
		}
		cur.addRegions(s.regions)
		cur.count += s.count
		cur.first, cur.last = earlier(cur.first, s.first), later(cur.last, s.last)
		for r, n := range s.byReason {
			cur.byReason[r] += n
		}
	}
}

// due takes the summaries whose first refusal is at least l.SummaryAfter
// old at now (all of them when all is set), by caller, and forgets the
// callers with nothing pending and a full bucket.
func (rl *refusalLimiter) due(now time.Time, l RefusalAuditLimit, all bool) map[string][]*refusalSummary {
	rl.mu.Lock()
	defer rl.mu.Unlock()
	var out map[string][]*refusalSummary
	for key, c := range rl.callers {
		for pk, s := range c.pending {
			if all || now.Sub(s.first) >= l.SummaryAfter {
				if out == nil {
					out = make(map[string][]*refusalSummary)
				}
				out[key] = append(out[key], s)
				delete(c.pending, pk)
			}
		}
		if len(c.pending) == 0 {
			c.pending = nil
			if c.refill(now, l); c.tokens >= float64(l.Burst) {
				delete(rl.callers, key)
			}
		}
	}
	return out
}

// entry is the summary's audit entry, dated now, when it is written, as
// every entry is; From and To say when the refusals it counts were. (An
// entry dated back to them would sort before entries written ahead of
// it, which the audit chain takes for back-dating.)
func (s *refusalSummary) entry(rev int64, now time.Time) audit.Entry {
	what := "refusals"
	if s.op == audit.OpReplicaFailedSummary {
		what = "acknowledgements of a failed replica"
	}
	reasons := []string{fmt.Sprintf("%d further %s by %s for tenant %s between %s and %s were not audited one by one",
		s.count, what, s.actor, s.tenant, s.first.UTC().Format(time.RFC3339Nano), s.last.UTC().Format(time.RFC3339Nano))}
	for _, r := range slices.Sorted(maps.Keys(s.byReason)) {
		reasons = append(reasons, fmt.Sprintf("%s: %d", r, s.byReason[r]))
	}
	return audit.Entry{
		Time: now.UTC(), From: s.first.UTC(), To: s.last.UTC(), Op: s.op, Actor: s.actor, Tenant: s.tenant,
		Regions: slices.Clone(s.regions), Count: s.count, Reasons: reasons, Revision: rev,
	}
}

// flushRefusals writes the summaries that are due until ctx ends, and
// then every summary left.
func (s *Store) flushRefusals(ctx context.Context) {
	l := s.refusalAudit
	if l.PerSecond == 0 {
		return
	}
	t := time.NewTicker(min(max(l.SummaryAfter/4, 10*time.Millisecond), time.Second))
	defer t.Stop()
	for {
		select {
		case <-t.C:
			s.writeSummaries(ctx, s.trail.refusals.due(s.clock(), l, false), false)
		case <-ctx.Done():
			// The store is closing: one last try, on a context of its own.
			fctx, cancel := context.WithTimeout(context.Background(), s.opTimeout)
			s.writeSummaries(fctx, s.trail.refusals.due(s.clock(), l, true), true)
			cancel()
			return
		}
	}
}

// writeSummaries writes summaries, a transaction per caller; those it
// cannot write go back to be tried again, or, on the final try, to the
// log.
func (s *Store) writeSummaries(ctx context.Context, due map[string][]*refusalSummary, final bool) {
	for key, sums := range due {
		for len(sums) > 0 {
			n := min(len(sums), 32) // each a nested transaction of at most 3 operations
			entries := make([]audit.Entry, n)
			for i, sum := range sums[:n] {
				entries[i] = sum.entry(s.Revision(), s.clock())
			}
			if err := s.appendAudit(ctx, entries...); err != nil {
				if !final {
					s.log.Warn("state: refusal summary not written; will retry", "err", err)
					s.trail.refusals.restore(key, sums)
					break
				}
				for _, sum := range sums {
					// Not the actor: logs name no person (authz.Principal.LogValue).
					s.log.Error("state: refusal summary lost", "tenant", sum.tenant, "count", sum.count,
						"from", sum.first, "to", sum.last, "by_reason", sum.byReason, "err", err)
				}
				break
			}
			sums = sums[n:]
		}
	}
}
