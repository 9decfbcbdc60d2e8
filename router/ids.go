package router

import (
	"regexp"
	"strings"
)

// The shapes and limits of every identifier classroute takes from a
// caller, defined here once: the edge (router/server) checks requests
// with them, the validators below (validate.go) check records with them,
// and the store (router/state) checks what it decodes with them. A key
// part is also bounded by the store's own key safety (no '/', no control
// characters), which every shape here implies.
const (
	// MaxIDLen bounds provider, region and tenant ids, and capability
	// and storage tier tokens.
	MaxIDLen = 63
	// MaxNameLen bounds workload names, request ids, agent ids and
	// tenant member names.
	MaxNameLen = 128
)

var (
	// idRE is the shape of provider, region, tenant ids and of
	// capability and storage tier tokens.
	idRE = regexp.MustCompile(`^[a-z0-9-]+$`)
	// workloadNameRE is the shape of a workload name.
	workloadNameRE = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)
	// requestIDRE is the shape of a Place request id (the placement's
	// id within its tenant).
	requestIDRE = regexp.MustCompile(`^[A-Za-z0-9._:-]+$`)
	// agentIDRE is the shape of a region agent's id.
	agentIDRE = regexp.MustCompile(`^[A-Za-z0-9._:@-]+$`)
	// memberNameRE is the shape of a tenant member's name.
	memberNameRE = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)
)

// ValidID reports whether s is a provider, region or tenant id.
func ValidID(s string) bool { return s != "" && len(s) <= MaxIDLen && idRE.MatchString(s) }

// ValidRegionKey reports whether s is a region key "provider/id".
func ValidRegionKey(s string) bool {
	prov, id, ok := strings.Cut(s, "/")
	return ok && ValidID(prov) && ValidID(id)
}

// ValidWorkloadName reports whether s is a workload name.
func ValidWorkloadName(s string) bool {
	return s != "" && len(s) <= MaxNameLen && workloadNameRE.MatchString(s)
}

// ValidRequestID reports whether s is a Place request id.
func ValidRequestID(s string) bool {
	return s != "" && len(s) <= MaxNameLen && requestIDRE.MatchString(s)
}

// ValidAgentID reports whether s is a region agent's id.
func ValidAgentID(s string) bool {
	return s != "" && len(s) <= MaxNameLen && agentIDRE.MatchString(s)
}

// validMemberName reports whether s is a tenant member's name.
func validMemberName(s string) bool {
	return s != "" && len(s) <= MaxNameLen && memberNameRE.MatchString(s) && s != "." && s != ".."
}

// Clip shortens s, which a caller sent, to at most n bytes (n at least
// 4) for a message, marking the cut with "...": an error never echoes an
// unbounded input.
func Clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n-3], "") + "..."
}
