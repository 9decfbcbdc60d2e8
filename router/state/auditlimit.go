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
// exact. Only refusals are bounded: placements, releases, catalogue
// changes and the reconciler's entries are always written.
//
// The bound is per store: a caller spread over several daemons is
// bounded by each. Counts not yet written when a daemon dies are lost
// (at most SummaryAfter of them; their counts, without the caller's
// name, are logged when the final write fails).

// RefusalAuditLimit bounds the refusals of one caller audited one by one.
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
func (s *Store) auditRefusal(ctx context.Context, e AuditEntry, cause error) error {
	if s.refusalAudit.PerSecond == 0 {
		return s.appendAudit(ctx, e)
	}
	if e.Time.IsZero() {
		e.Time = s.clock().UTC()
	}
	key, ok, sums := s.trail.refusals.admit(callerKey(authz.FromContext(ctx)), &e, refusalReason(cause), s.refusalAudit)
	if !ok {
		return nil
	}
	entries := make([]AuditEntry, 0, len(sums)+1)
	for _, sum := range sums {
		entries = append(entries, sum.entry(s.Revision(), e.Time))
	}
	if err := s.appendAudit(ctx, append(entries, e)...); err != nil {
		s.trail.refusals.restore(key, sums)
		return err
	}
	return nil
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

// refusalSummary counts one caller's refusals for one tenant not
// audited one by one.
type refusalSummary struct {
	actor, tenant string
	count         int64
	first, last   time.Time
	byReason      map[string]int64
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
func (rl *refusalLimiter) admit(key string, e *AuditEntry, reason string, l RefusalAuditLimit) (string, bool, []*refusalSummary) {
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
		slices.SortFunc(sums, func(a, b *refusalSummary) int { return strings.Compare(a.tenant, b.tenant) })
		return key, true, sums
	}
	if c.pending == nil {
		c.pending = make(map[string]*refusalSummary)
	}
	sum := c.pending[e.Tenant]
	if sum == nil {
		sum = &refusalSummary{actor: e.Actor, tenant: e.Tenant, first: e.Time, byReason: make(map[string]int64)}
		if key == overflowCaller {
			sum.actor = fmt.Sprintf("(callers past the first %d refused at once)", maxCallers)
		}
		c.pending[e.Tenant] = sum
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
		cur := c.pending[s.tenant]
		if cur == nil {
			c.pending[s.tenant] = s
			continue
		}
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
		for tenant, s := range c.pending {
			if all || now.Sub(s.first) >= l.SummaryAfter {
				if out == nil {
					out = make(map[string][]*refusalSummary)
				}
				out[key] = append(out[key], s)
				delete(c.pending, tenant)
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
func (s *refusalSummary) entry(rev int64, now time.Time) AuditEntry {
	reasons := []string{fmt.Sprintf("%d further refusals by %s for tenant %s between %s and %s were not audited one by one",
		s.count, s.actor, s.tenant, s.first.UTC().Format(time.RFC3339Nano), s.last.UTC().Format(time.RFC3339Nano))}
	for _, r := range slices.Sorted(maps.Keys(s.byReason)) {
		reasons = append(reasons, fmt.Sprintf("%s: %d", r, s.byReason[r]))
	}
	return AuditEntry{
		Time: now.UTC(), From: s.first.UTC(), To: s.last.UTC(), Op: AuditRefuseSummary, Actor: s.actor, Tenant: s.tenant,
		Count: s.count, Reasons: reasons, Revision: rev,
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
			entries := make([]AuditEntry, n)
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
