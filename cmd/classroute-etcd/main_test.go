package main

import (
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/classroute/classroute/router/version"
)

func TestParseFlags(t *testing.T) {
	c, err := parseFlags([]string{"--name", "m2", "--data-dir", "d", "--client-addr", "127.0.0.1:2381",
		"--peer-addr", "127.0.0.1:2382", "--initial-cluster", "m1=http://127.0.0.1:2380,m2=http://127.0.0.1:2382",
		"--initial-cluster-state", "existing", "--election-timeout", "2s"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	m := c.Member
	if m.Name != "m2" || m.Dir != "d" || m.ClientAddr != "127.0.0.1:2381" || m.PeerAddr != "127.0.0.1:2382" ||
		m.ClusterState != "existing" || m.ElectionTimeout != 2*time.Second || m.StartTimeout >= 0 {
		t.Errorf("parsed %+v", m)
	}
}

func TestParseFlagsRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no data dir", []string{"--name", "m1"}, "-data-dir is required"},
		{"stray argument", []string{"--data-dir", "d", "extra"}, "unexpected arguments"},
		{"bad log level", []string{"--data-dir", "d", "--log-level", "loud"}, "-log-level"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseFlags(tc.args, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v; want an error containing %q", err, tc.want)
			}
		})
	}
}

// -version, --version and the argument version print the build and
// exit 0, whatever else is given (or missing: no -data-dir here).
func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"--version"}, {"-version"}, {"version"}, {"--name", "m1", "--version"}} {
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
	if want := "classroute-etcd " + v.Version + " (revision " + v.Revision + ", " + v.GoVersion + ")\n"; b.String() != want {
		t.Errorf("printVersion: %q; want %q", b.String(), want)
	}
}
