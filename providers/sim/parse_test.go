package sim_test

import (
	"strings"
	"testing"
	"time"

	"github.com/classroute/classroute/providers/sim"
	"github.com/classroute/classroute/router"
)

func TestParseResources(t *testing.T) {
	cases := []struct {
		in      string
		want    router.Resources
		wantErr string
	}{
		{"64000m,262144Mi,8gpu", router.Resources{MilliCPU: 64000, MemoryMiB: 262144, GPU: 8}, ""},
		{"64cpu, 256Gi", router.Resources{MilliCPU: 64000, MemoryMiB: 262144}, ""},
		{"1Ti", router.Resources{MemoryMiB: 1 << 20}, ""},
		{"0gpu", router.Resources{}, ""},
		{"", router.Resources{}, "empty"},
		{"64000", router.Resources{}, "a whole number and a unit"},
		{"m", router.Resources{}, "whole number"},
		{"-1m", router.Resources{}, "whole number"},
		{"1.5cpu", router.Resources{}, "unknown unit"},
		{"8GPU", router.Resources{}, "unknown unit"},
		{"1cpu,1000m", router.Resources{}, "cpu given twice"},
		{"9223372036854775807cpu", router.Resources{}, "too large"},
		{"99999999999999999999m", router.Resources{}, "out of range"},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			got, err := sim.ParseResources(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %+v, %v; want an error containing %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func TestParseFault(t *testing.T) {
	cases := []struct {
		in      string
		want    sim.Faults
		wantErr string
	}{
		{"crash-after=30s", sim.Faults{CrashAfter: 30 * time.Second}, ""},
		{"crash-after=3", sim.Faults{CrashAfterRuns: 3}, ""},
		{"hang-after=1m", sim.Faults{HangAfter: time.Minute}, ""},
		{"refuse", sim.Faults{Refuse: true}, ""},
		{"flap=5s", sim.Faults{Flap: 5 * time.Second}, ""},
		{"wrong-region=aws/us-east-1", sim.Faults{WrongRegion: "aws/us-east-1"}, ""},
		{"crash-after=0", sim.Faults{}, "positive count"},
		{"crash-after=-1s", sim.Faults{}, "positive duration"},
		{"crash-after=soon", sim.Faults{}, "positive duration"},
		{"flap", sim.Faults{}, "positive duration"},
		{"refuse=yes", sim.Faults{}, "takes no value"},
		{"wrong-region=us-east-1", sim.Faults{}, "provider/id"},
		{"explode", sim.Faults{}, "unknown"},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			var got sim.Faults
			err := sim.ParseFault(tc.in, &got)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %+v, %v; want an error containing %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

// FuzzParseResources: the parser never panics, and what it accepts is
// never negative.
func FuzzParseResources(f *testing.F) {
	for _, s := range []string{"64000m,262144Mi,8gpu", "1Ti", "64cpu, 256Gi", "1cpu,1000m", "9223372036854775807cpu"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := sim.ParseResources(s)
		if err == nil && (r.MilliCPU < 0 || r.MemoryMiB < 0 || r.GPU < 0) {
			t.Fatalf("ParseResources(%q) = %+v: negative", s, r)
		}
	})
}

// FuzzParseFault: the parser never panics, and what it accepts is never
// a negative duration or count.
func FuzzParseFault(f *testing.F) {
	for _, s := range []string{"crash-after=30s", "crash-after=3", "refuse", "flap=5s", "wrong-region=a/b", "hang-after=1h"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var fs sim.Faults
		if err := sim.ParseFault(s, &fs); err == nil && (fs.CrashAfter < 0 || fs.CrashAfterRuns < 0 || fs.HangAfter < 0 || fs.Flap < 0) {
			t.Fatalf("ParseFault(%q) = %+v: negative", s, fs)
		}
	})
}
