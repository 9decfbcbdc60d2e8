package server_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	pb "github.com/classroute/classroute/proto/classroute/v1"
	"github.com/classroute/classroute/router/audit"
)

// ListAudit refuses filters longer than any stored value, naming the
// field; and says how many of a refusal's region verdicts went
// unrecorded (past the entry's size bound) only to a caller who may know
// every region.
func TestListAuditBounds(t *testing.T) {
	e := newEnv(t)
	grantMembers(t, e)
	auditc := pb.NewAuditServiceClient(e.conn)
	for _, f := range []string{"tenant", "workload", "region", "op", "page_token"} {
		req := &pb.ListAuditRequest{}
		long := strings.Repeat("x", 257)
		switch f {
		case "tenant":
			req.Tenant = long
		case "workload":
			req.Workload = long
		case "region":
			req.Region = long
		case "op":
			req.Op = long
		case "page_token":
			req.PageToken = long
		}
		_, err := auditc.ListAudit(as(t, asSecAud), req)
		wantField(t, err, f)
	}

	// A refusal stored with 150 region verdicts counted, not stored:
	// written as the store writes one, index key included (see
	// router/state/auditindex.go).
	id := fmt.Sprintf("%016x-0badc0de-00000001", time.Now().UnixNano())
	val, err := json.Marshal(audit.Entry{
		Time: time.Now().UTC(), Op: audit.OpRefuse, Actor: "spiffe://test.example/tenant/ke-moh/user/amina",
		RequestID: "big-refusal", Tenant: "ke-moh", Workload: "w", Label: "UNCLASSIFIED",
		Reasons: []string{"no eligible region among 190 regions: capability 190", "aws/us-east-1: capability"}, ReasonsOmitted: 150,
	})
	if err != nil {
		t.Fatal(err)
	}
	for key, v := range map[string]string{"audit/" + id: string(val), "audit-index/t/ke-moh/" + id: ""} {
		if _, err := e.etcd.Put(ctx(t), e.prefix+key, v); err != nil {
			t.Fatal(err)
		}
	}
	reasons := func(who string) string {
		t.Helper()
		resp, err := auditc.ListAudit(as(t, who), &pb.ListAuditRequest{Tenant: "ke-moh", PageSize: 1000})
		if err != nil {
			t.Fatal(err)
		}
		for _, en := range resp.GetEntries() {
			if en.GetRequestId() == "big-refusal" { // a tenant auditor sees the id sealed
				return strings.Join(en.GetReasons(), "\n")
			}
		}
		t.Fatalf("ListAudit as %s: entry %s not listed", who, id)
		return ""
	}
	if got := reasons(asSecAud); !strings.Contains(got, "(150 more regions not recorded)") {
		t.Errorf("security auditor: reasons %q; want the count of verdicts not recorded", got)
	}
	if got := reasons(asTenantAud); strings.Contains(got, "not recorded") {
		t.Errorf("tenant auditor: reasons %q; want no count that could tell hidden regions apart", got)
	}
}
