package server_test

import (
	"fmt"
	"github.com/classroute/classroute/router"
	"github.com/classroute/classroute/router/convert"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/classroute/classroute/proto/classroute/v1"
)

// Requests within the message size limit but with absurd lists or
// strings get a clear, small error: never a reply so large that it costs
// the caller the connection, and never quadratic work.
func TestOversizeFieldsGetSmallErrors(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name   string
		mutate func(w *pb.Workload)
		field  string
		want   string
	}{
		{"20,000 capabilities", func(w *pb.Workload) {
			for i := range 20000 {
				w.Capabilities = append(w.Capabilities, fmt.Sprintf("cap-%d", i))
			}
		}, "workload.capabilities", "at most 16 entries, got 20000"},
		{"50,000 countries", func(w *pb.Workload) {
			for range 50000 {
				w.AllowedStorageCountries = append(w.AllowedStorageCountries, "USA")
			}
		}, "workload.allowed_storage_countries", "at most 256 entries"},
		{"a 1 MiB label", func(w *pb.Workload) { w.Label = strings.Repeat("\x01", 1<<20) }, "workload.label", "longer than 4096 bytes"},
		{"3 MiB label of letters", func(w *pb.Workload) { w.Label = strings.Repeat("X", 3<<20) }, "workload.label", "longer than 4096 bytes"},
		{"100,000 preferred providers", func(w *pb.Workload) {
			w.Preferences = &pb.Preferences{}
			for i := range 100000 {
				w.Preferences.Providers = append(w.Preferences.Providers, fmt.Sprintf("p%d", i))
			}
		}, "workload.preferences.providers", "at most 16 entries"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := placeRequest("oversize")
			tt.mutate(req.Workload)
			check := e.unchanged(t)
			start := time.Now()
			_, err := e.place.Place(ctx(t), req)
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("took %v to refuse", d)
			}
			wantContains(t, tt.field, wantField(t, err, tt.field), tt.want)
			check()
		})
	}
}

// A huge unknown id is NOT_FOUND with a clipped message, and the
// connection survives.
func TestHugeIDClipped(t *testing.T) {
	e := newEnv(t)
	_, err := e.place.Get(ctx(t), &pb.GetRequest{Id: strings.Repeat("x", 2<<20)})
	st := wantCode(t, err, codes.NotFound)
	if n := len(st.Message()); n > 1024 {
		t.Errorf("NOT_FOUND message of %d bytes; want at most 1024", n)
	}
	if _, err := e.place.Plan(ctx(t), &pb.PlanRequest{Workload: aukus()}); err != nil {
		t.Errorf("Plan after the huge id: %v", err)
	}
}

// A refusal over a catalogue too large for the trailers lists the
// verdicts that fit and says how many it left out.
func TestLargeRefusalFitsTrailers(t *testing.T) {
	e := newEnv(t)
	good := e.region(t, "azure/southafricanorth")
	for i := range 600 {
		r := good
		r.Id = fmt.Sprintf("filler-%03d", i)
		r.Key, r.Used = "", nil
		r.Accreditation.Expires = timestamppb.New(time.Now().Add(24 * time.Hour))
		var v router.Violations
		rr := convert.RegionFromProto(r, &v)
		if err := v.Err(); err != nil {
			t.Fatal(err)
		}
		// Straight into the store: through the API a new region is a
		// two-person proposal.
		if _, err := e.store.PutRegion(ctx(t), rr); err != nil {
			t.Fatalf("put filler region %d: %v", i, err)
		}
	}
	_, err := e.place.Place(ctx(t), &pb.PlaceRequest{RequestId: "big-refusal", Workload: kenyaGPU()})
	st := wantCode(t, err, codes.FailedPrecondition)
	info := wantReason(t, st, "NO_ELIGIBLE_REGION")
	refusal := detail[*pb.Refusal](t, st)
	pf := detail[*errdetails.PreconditionFailure](t, st)
	total := len(e.cat.Regions) + 600
	if info.GetMetadata()["regions"] != fmt.Sprint(total) {
		t.Errorf("metadata regions = %q; want %d", info.GetMetadata()["regions"], total)
	}
	if n := len(refusal.GetRegions()); n == 0 || n >= total {
		t.Errorf("refusal shows %d verdicts of %d; want some, not all", n, total)
	}
	if info.GetMetadata()["regions_shown"] != fmt.Sprint(len(refusal.GetRegions())) {
		t.Errorf("regions_shown = %q; want %d", info.GetMetadata()["regions_shown"], len(refusal.GetRegions()))
	}
	if !strings.Contains(refusal.GetSummary(), "Plan lists all") || len(pf.GetViolations()) == 0 {
		t.Errorf("summary %q, %d violations", refusal.GetSummary(), len(pf.GetViolations()))
	}
	plan, err := e.place.Plan(ctx(t), &pb.PlanRequest{Workload: kenyaGPU()})
	if err != nil || len(plan.GetRegions()) != total {
		t.Errorf("Plan: %d verdicts, %v; want all %d", len(plan.GetRegions()), err, total)
	}
}
