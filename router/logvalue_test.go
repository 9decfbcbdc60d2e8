package router_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/classroute/classroute/router"
	"github.com/classroute/classroute/router/label"
)

// logJSON logs v under key "v" through a JSON handler and returns the line.
func logJSON(tb testing.TB, v any) string {
	tb.Helper()
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("test", "v", v)
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		tb.Fatalf("log line is not JSON: %v\n%s", err, buf.String())
	}
	return buf.String()
}

// Logs carry levels, ids and counts: never a workload's name or banner,
// the names of its compartments or nations, or a tenant's name.
func TestLogValuesRedact(t *testing.T) {
	const banner = "TOP SECRET//SI/TK//REL TO USA, GBR"
	l, err := label.Parse(banner)
	if err != nil {
		t.Fatal(err)
	}
	w := router.Workload{Name: "sigint-analytics", Tenant: "us-ic", Label: l, Banner: l.String(),
		AllowedCountries: []string{"USA", "GBR"}, Replicas: 2}
	p := router.Placement{ID: "req-1", Tenant: "us-ic", Workload: w, Regions: []string{"azure/usnateast"}}
	tn := router.Tenant{ID: "ke-moh", Name: "Kenya Ministry of Health", Nation: "KEN", Sector: "civil"}
	secrets := []string{"sigint-analytics", "SI", "TK", "REL TO", "GBR", "Kenya Ministry of Health", banner, l.String()}
	tests := []struct {
		name string
		v    any
		want []string // must appear
	}{
		{"label", l, []string{`"level":"TOP SECRET"`, `"controls":2`, `"nations":2`}},
		{"workload", w, []string{`"tenant":"us-ic"`, `"level":"TOP SECRET"`, `"replicas":2`}},
		{"workload pointer", &w, []string{`"tenant":"us-ic"`, `"level":"TOP SECRET"`}},
		{"placement", &p, []string{`"id":"req-1"`, `"regions":["azure/usnateast"]`, `"level":"TOP SECRET"`}},
		{"tenant", &tn, []string{`"id":"ke-moh"`, `"nation":"KEN"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			line := logJSON(t, tt.v)
			for _, s := range secrets {
				// "SI" and "TK" are checked as JSON strings and words.
				if strings.Contains(line, `"`+s+`"`) || strings.Contains(line, s+"/") || strings.Contains(line, "/"+s) || (len(s) > 3 && strings.Contains(line, s)) {
					t.Errorf("log line carries %q:\n%s", s, line)
				}
			}
			for _, s := range tt.want {
				if !strings.Contains(line, s) {
					t.Errorf("log line lacks %s:\n%s", s, line)
				}
			}
		})
	}
}
