package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestAuditFlags(t *testing.T) {
	for _, tc := range []struct {
		name    string
		args    []string
		wantErr string // empty: valid
	}{
		{"checkpoint dir", []string{"--audit-key", "k.pem", "--audit-checkpoint-dir", "/var/lib/classroute/anchor"}, ""},
		{"checkpoint dir without key", []string{"--audit-checkpoint-dir", "/var/lib/classroute/anchor"}, "-audit-checkpoint-dir keeps signed checkpoints: it needs -audit-key"},
		{"skew", []string{"--audit-max-skew", "2s"}, ""},
		{"no skew", []string{"--audit-max-skew", "0s"}, "-audit-max-skew must be positive"},
		{"no checkpoint interval", []string{"--audit-checkpoint-interval", "0s"}, "-audit-checkpoint-interval and -audit-max-skew must be positive"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseFlags(tc.args, io.Discard)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("got error %v; want none", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("got error %v; want one containing %q", err, tc.wantErr)
			}
		})
	}
}

// TestAuditCheckpointDir: the directory is made if missing, and one the
// daemon cannot use is refused at start.
func TestAuditCheckpointDir(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	torn := filepath.Join(dir, "torn")
	if err := os.Mkdir(torn, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(torn, "checkpoint-00000000000000000001.json"), []byte("{"), 0o444); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, dir, wantErr string
	}{
		{"made", filepath.Join(dir, "a", "b"), ""},
		{"a file", file, "-audit-checkpoint-dir"},
		{"holding a torn checkpoint", torn, "-audit-checkpoint-dir"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := &Config{AuditCheckpointDir: tc.dir}
			c, err := auditChain(cfg, nil, prometheus.NewRegistry())
			switch {
			case tc.wantErr == "" && (err != nil || c.Anchor == nil):
				t.Fatalf("auditChain = %+v, %v; want an anchor", c, err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("got error %v; want one containing %q", err, tc.wantErr)
			}
		})
	}
}
