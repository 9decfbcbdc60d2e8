package router

import "log/slog"

// Logs never carry more than the daemon's operator may see. A workload's
// name and banner, and a tenant's name, are the tenant's; the operator
// sees ids, tenants, levels, counts and the regions it runs. Each type
// that holds such data implements slog.LogValuer, with a value receiver
// so that a value and a pointer log the same.

// LogValue logs the tenant, the label's level (label.Label's own
// valuer), the replica count and the size of the residency rule: never
// the name, the banner or the countries.
func (w Workload) LogValue() slog.Value {
	var l any = w.Label
	if w.Foreign() {
		l = w.Marking // its own valuer: scheme, level and counts
	}
	return slog.GroupValue(
		slog.String("tenant", w.Tenant),
		slog.Any("label", l),
		slog.Int("replicas", w.Replicas),
		slog.Int("countries", len(w.AllowedCountries)),
	)
}

// LogValue logs the placement's id, tenant, state and regions, and its
// workload through Workload's valuer.
func (p Placement) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("id", p.ID),
		slog.String("tenant", p.Tenant),
		slog.String("state", p.State.String()),
		slog.Any("regions", p.Regions),
		slog.Any("workload", p.Workload),
	)
}

// LogValue logs the tenant's id, nation and sector: not its name.
func (t Tenant) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("id", t.ID),
		slog.String("nation", t.Nation),
		slog.String("sector", t.Sector),
	)
}
