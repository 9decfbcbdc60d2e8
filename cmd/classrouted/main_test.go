package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/classroute/classroute/router/server"
	"github.com/classroute/classroute/router/version"
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
		{"health listener beyond loopback", []string{"--health-listen", "0.0.0.0:7401"}, `-health-listen "0.0.0.0:7401": serves plaintext, so only on loopback; give -health-allow-remote`},
		{"health listener on every interface", []string{"--health-listen", ":7401"}, "-health-allow-remote"},
		{"health listener beyond loopback, allowed", []string{"--health-listen", "0.0.0.0:7401", "--health-allow-remote"}, ""},
		{"health listener on loopback", []string{"--health-listen", "127.0.0.1:7401"}, ""},
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
		{"metrics beyond loopback", []string{"--metrics-listen", "192.0.2.10:9400"}, `-metrics-listen "192.0.2.10:9400": serves plaintext, so only on loopback; give -metrics-allow-remote`},
		{"metrics on every interface", []string{"--metrics-listen", ":9400"}, "-metrics-allow-remote"},
		{"metrics beyond loopback, allowed", []string{"--metrics-listen", "0.0.0.0:9400", "--metrics-allow-remote"}, ""},
		{"metrics on localhost", []string{"--metrics-listen", "localhost:9400"}, ""},
		{"debug listener on loopback", []string{"--debug-listen", "127.0.0.1:6060"}, ""},
		{"debug listener on loopback v6", []string{"--debug-listen", "[::1]:6060"}, ""},
		{"debug listener on localhost", []string{"--debug-listen", "localhost:6060"}, ""},
		{"debug listener beyond loopback", []string{"--debug-listen", "192.0.2.10:6060"}, `-debug-listen "192.0.2.10:6060": serves plaintext, unauthenticated, so only on loopback`},
		{"debug listener on every interface", []string{"--debug-listen", ":6060"}, `-debug-listen ":6060": serves plaintext, unauthenticated, so only on loopback`},
		{"debug listener on every v4 interface", []string{"--debug-listen", "0.0.0.0:6060"}, "only on loopback"},
		{"debug listener beyond loopback, even with the metrics allowed remote", []string{"--debug-listen", "0.0.0.0:6060", "--metrics-allow-remote", "--health-allow-remote"}, "only on loopback"},
		{"bad debug address", []string{"--debug-listen", "6060"}, `-debug-listen "6060"`},
		{"small connection caps", []string{"--max-conns", "10", "--max-conns-per-ip", "2", "--handshake-timeout", "1s"}, ""},
		{"no connections", []string{"--max-conns", "0"}, "-max-conns 0: want at least 1"},
		{"connections beyond the descriptor budget", []string{"--max-conns", "1000000000"}, "the descriptor limit (RLIMIT_NOFILE) is"},
		{"per-ip above the cap", []string{"--max-conns", "10", "--max-conns-per-ip", "11"}, "-max-conns-per-ip 11: want 1 to -max-conns (10)"},
		{"per-ip zero", []string{"--max-conns-per-ip", "0"}, "-max-conns-per-ip 0"},
		{"no handshake time", []string{"--handshake-timeout", "0s"}, "-handshake-timeout 0s"},
		{"handshake time too long", []string{"--handshake-timeout", "1h"}, "at most 2m"},
		{"rates", []string{"--rate-place", "5/s", "--rate-plan", "120/m,burst=10", "--rate-list-audit", "off", "--rate-agent-reports", "10/s,burst=20"}, ""},
		{"bad rate", []string{"--rate-plan", "fast"}, "want N/s or N/m"},
		{"bad rate unit", []string{"--rate-plan", "5/h"}, "want N/s or N/m"},
		{"negative rate", []string{"--rate-plan", "-5/s"}, "want N/s or N/m"},
		{"bad burst", []string{"--rate-plan", "5/s,burst=0"}, "want ,burst=B with B at least 1"},
		{"agent reports below the agent ttl", []string{"--rate-agent-reports", "1/m"}, "-rate-agent-reports 0.01666"},
		{"agent reports for a short ttl", []string{"--agent-ttl", "1s"}, "want at least 3/s"},
		{"agent reports for a short ttl, raised", []string{"--agent-ttl", "1s", "--rate-agent-reports", "3/s"}, ""},
		{"agent reports off", []string{"--rate-agent-reports", "off"}, ""},
		{"agent acks", []string{"--rate-agent-acks", "50/s,burst=5000"}, ""},
		{"agent acks off", []string{"--rate-agent-acks", "off"}, ""},
		{"bad agent acks", []string{"--rate-agent-acks", "10/s,burst=0"}, "want ,burst=B with B at least 1"},
		{"negative stream cap", []string{"--max-streams", "-1"}, "-max-streams -1"},
		{"refuse at once", []string{"--rate-max-wait", "0s", "--rate-max-waiting", "0"}, ""},
		{"wait too long", []string{"--rate-max-wait", "1m"}, "-rate-max-wait 1m0s: want 0 to 10s"},
		{"negative waiting", []string{"--rate-max-waiting", "-1"}, "-rate-max-waiting -1"},
		{"released kept a week", []string{"--released-retention", "168h"}, ""},
		{"released kept forever", []string{"--released-retention", "0", "--released-keep", "0"}, ""},
		{"negative retention", []string{"--released-retention", "-1h"}, "-released-retention -1h0m0s: must not be negative"},
		{"etcd quota raised", []string{"--embedded-etcd-quota-bytes", "8589934592"}, ""},
		{"etcd quota beyond 8 GiB", []string{"--embedded-etcd-quota-bytes", "8589934593"}, "-embedded-etcd-quota-bytes 8589934593"},
		{"etcd quota too small", []string{"--embedded-etcd-quota-bytes", "1024"}, "0 or 67108864 to 8589934592"},
		{"etcd quota with an external cluster", []string{"--etcd", "10.0.0.1:2379", "--embedded-etcd-quota-bytes", "4294967296"}, "for the embedded member only"},
		{"negative released count", []string{"--released-keep", "-1"}, "-released-keep -1: must not be negative"},
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

// The limits' defaults: the package's identity limits, and connection
// caps within what the descriptor limit leaves.
func TestLimitDefaults(t *testing.T) {
	c, err := parseFlags(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.Limits != server.DefaultIdentityLimits {
		t.Errorf("identity limits %+v; want %+v", c.Limits, server.DefaultIdentityLimits)
	}
	if c.ReleasedRetention != 24*time.Hour || c.ReleasedKeep != 10000 {
		t.Errorf("released retention %v, %d per tenant; want 24h, 10000", c.ReleasedRetention, c.ReleasedKeep)
	}
	if c.FDLimit == 0 {
		t.Skip("no descriptor limit known here")
	}
	if b := connBudget(c.FDLimit); c.MaxConns != min(b, maxConnsDefault) || c.MaxConnsPerIP != perIPDefault(c.MaxConns) {
		t.Errorf("caps %d, %d per IP with descriptor limit %d; want %d, %d", c.MaxConns, c.MaxConnsPerIP, c.FDLimit, min(b, maxConnsDefault), perIPDefault(c.MaxConns))
	}
	for _, tt := range []struct {
		nofile uint64
		want   int
	}{
		{0, 0}, {256, 0}, {384, 0}, {1024, 1024 - 256 - 128}, {20000, 20000 - 5000 - 128}, {1 << 20, 1<<20 - 1<<18 - 128},
	} {
		if got := connBudget(tt.nofile); got != tt.want {
			t.Errorf("connBudget(%d) = %d; want %d", tt.nofile, got, tt.want)
		}
	}
	r := server.Rate{}
	if err := (rateFlag{&r}).Set("30/m"); err != nil || r.PerSecond != 0.5 || r.Burst != 1 {
		t.Errorf("30/m: %+v, %v; want 0.5/s, burst 1", r, err)
	}
	if got := (rateFlag{&server.DefaultIdentityLimits.Place}).String(); got != "20/s,burst=40" {
		t.Errorf("the default -rate-place prints %q", got)
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

func TestDebugListenOffByDefault(t *testing.T) {
	c, err := parseFlags(nil, io.Discard)
	if err != nil || c.DebugListen != "" {
		t.Errorf("default debug address %q, err %v; want off", c.DebugListen, err)
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

// -version, --version and the argument version print the build and
// exit 0, whatever else is given, valid or not.
func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"--version"}, {"-version"}, {"version"}, {"--listen", "0.0.0.0:1", "--version"}} {
		if _, err := parseFlags(args, io.Discard); !errors.Is(err, errVersion) {
			t.Errorf("%q: %v; want the version asked for", args, err)
		}
	}
	if _, err := parseFlags([]string{"version", "now"}, io.Discard); err == nil || errors.Is(err, errVersion) {
		t.Errorf(`"version now": %v; want unexpected arguments`, err)
	}
	var b strings.Builder
	printVersion(&b)
	v := version.Get()
	if want := "classrouted " + v.Version + " (revision " + v.Revision + ", " + v.GoVersion + ")\n"; b.String() != want {
		t.Errorf("printVersion: %q; want %q", b.String(), want)
	}
}
