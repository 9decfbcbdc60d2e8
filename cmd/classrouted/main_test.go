package main

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
)

func TestFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string // empty: valid
	}{
		{"defaults", nil, ""},
		{"loopback v6", []string{"--listen", "[::1]:7400"}, ""},
		{"external etcd", []string{"--etcd", "10.0.0.1:2379, 10.0.0.2:2379"}, ""},
		{"non-loopback plaintext", []string{"--listen", "0.0.0.0:7400"}, "plaintext is allowed only on loopback"},
		{"non-loopback host", []string{"--listen", "192.0.2.10:7400"}, "plaintext is allowed only on loopback"},
		{"non-loopback with tls", []string{"--listen", "0.0.0.0:7400", "--tls-cert", "c.pem", "--tls-key", "k.pem", "--tls-client-ca", "ca.pem", "--trust-domain", "td"}, ""},
		{"tls without client ca", []string{"--listen", "0.0.0.0:7400", "--tls-cert", "c.pem", "--tls-key", "k.pem", "--trust-domain", "td"}, "-tls-cert needs -tls-client-ca and -trust-domain"},
		{"tls without trust domain", []string{"--tls-cert", "c.pem", "--tls-key", "k.pem", "--tls-client-ca", "ca.pem"}, "-tls-cert needs -tls-client-ca and -trust-domain"},
		{"client ca without tls", []string{"--tls-client-ca", "ca.pem", "--trust-domain", "td"}, "go with -tls-cert"},
		{"cert without key", []string{"--tls-cert", "c.pem"}, "-tls-cert and -tls-key go together"},
		{"bad listen", []string{"--listen", "nonsense"}, `-listen "nonsense"`},
		{"bad prefix", []string{"--etcd-prefix", "classroute"}, "must start and end with /"},
		{"bad reflection", []string{"--reflection", "maybe"}, "want auto, on or off"},
		{"bad log level", []string{"--log-level", "loud"}, "-log-level"},
		{"bad log format", []string{"--log-format", "xml"}, "want text or json"},
		{"stray argument", []string{"serve"}, "unexpected arguments"},
		{"health listener beyond loopback", []string{"--health-listen", "0.0.0.0:7401"}, ""},
		{"bad health listener", []string{"--health-listen", "7401"}, "-health-listen"},
		{"etcd over tls", []string{"--etcd", "10.0.0.1:2379", "--etcd-ca", "ca.pem", "--etcd-cert", "c.pem", "--etcd-key", "k.pem"}, ""},
		{"etcd cert without key", []string{"--etcd", "10.0.0.1:2379", "--etcd-cert", "c.pem"}, "-etcd-cert and -etcd-key go together"},
		{"etcd tls without etcd", []string{"--etcd-ca", "ca.pem"}, "give -etcd"},
		{"agent ttl", []string{"--agent-ttl", "3s"}, ""},
		{"agent ttl too short", []string{"--agent-ttl", "500ms"}, "-agent-ttl 500ms: want at least 1s"},
		{"metrics elsewhere", []string{"--metrics-listen", "127.0.0.1:19400"}, ""},
		{"metrics off", []string{"--metrics-listen", ""}, ""},
		{"bad metrics address", []string{"--metrics-listen", "9400"}, `-metrics-listen "9400"`},
		{"refusal audit rate", []string{"--audit-refusals-per-identity", "100/m,burst=20"}, ""},
		{"refusal audit off", []string{"--audit-refusals-per-identity", "off"}, ""},
		{"refusal audit without unit", []string{"--audit-refusals-per-identity", "10"}, "RATE/s"},
		{"refusal audit zero rate", []string{"--audit-refusals-per-identity", "0/s"}, "positive"},
		{"refusal audit bad burst", []string{"--audit-refusals-per-identity", "10/s,burst=0"}, "burst"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseFlags(tt.args, io.Discard)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("got error %v; want none", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("got error %v; want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestMetricsListen(t *testing.T) {
	c, err := parseFlags(nil, io.Discard)
	if err != nil || c.MetricsListen != "127.0.0.1:9400" {
		t.Errorf("default metrics address %q, err %v; want 127.0.0.1:9400", c.MetricsListen, err)
	}
	c, err = parseFlags([]string{"--metrics-listen="}, io.Discard)
	if err != nil || c.MetricsListen != "" {
		t.Errorf("--metrics-listen= : %q, err %v; want off", c.MetricsListen, err)
	}
}

func TestReflectionDefaultsToLoopbackMode(t *testing.T) {
	c, err := parseFlags(nil, io.Discard)
	if err != nil || !c.Reflection {
		t.Errorf("loopback plaintext: reflection %v, err %v; want on", c.Reflection, err)
	}
	c, err = parseFlags([]string{"--listen", "0.0.0.0:1", "--tls-cert", "c", "--tls-key", "k", "--tls-client-ca", "ca", "--trust-domain", "td"}, io.Discard)
	if err != nil || c.Reflection {
		t.Errorf("TLS mode: reflection %v, err %v; want off", c.Reflection, err)
	}
}

// A bad catalogue is refused before anything starts, naming the entry and field.
func TestBadCatalogueRefusedAtStart(t *testing.T) {
	tests := []struct{ file, want string }{
		{"../../providers/testdata/missing-expiry.yaml", "region.accreditation.expires"},
		{"../../providers/testdata/bad-country.yaml", "region.country"},
		{"../../providers/testdata/unknown-provider.yaml", "regions["},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			c, err := parseFlags([]string{"--catalog", tt.file, "--data-dir", t.TempDir()}, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			err = run(context.Background(), c, slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("run: %v; want an error naming %q", err, tt.want)
			}
		})
	}
}
