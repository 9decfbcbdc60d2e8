package etcdlocal

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// etcd's zap messages come out of the slog logger: at slog's levels,
// with their fields, under the floor dropped, within the logger's
// level; a closed listener's end, once the member closes, at debug.
func TestSlogCore(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	var closing atomic.Bool
	lg := zap.New(newSlogCore(log, zapcore.InfoLevel, &closing)).Named("raft").With(zap.String("member", "m1"))

	lg.Debug("below the logger's level")
	lg.Info("applied", zap.Int("index", 7))
	lg.Warn("slow fdatasync", zap.Duration("took", 0))
	lg.Error("setting up serving from embedded etcd failed.", zap.Error(errors.New("mux: server closed")))
	closing.Store(true)
	lg.Error("setting up serving from embedded etcd failed.", zap.Error(errors.New("accept tcp 127.0.0.1:2379: use of closed network connection")))
	lg.Error("failed to purge wal file", zap.Error(errors.New("too many open files")))

	got := buf.String()
	for _, want := range []string{
		`level=INFO msg=applied component=etcd member=m1 index=7 logger=raft`,
		`level=WARN msg="slow fdatasync" component=etcd member=m1 took=0s logger=raft`,
		`level=ERROR msg="setting up serving from embedded etcd failed." component=etcd member=m1 error="mux: server closed"`, // not closing yet: a fault
		`level=ERROR msg="failed to purge wal file" component=etcd member=m1 error="too many open files"`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %s", want)
		}
	}
	for _, not := range []string{"below the logger's level", "use of closed network connection", "stacktrace"} {
		if strings.Contains(got, not) {
			t.Errorf("logged %q", not)
		}
	}
	if t.Failed() {
		t.Logf("logged:\n%s", got)
	}

	buf.Reset()
	floor := zap.New(newSlogCore(log, zapcore.WarnLevel, new(atomic.Bool)))
	floor.Info("an info below the floor")
	if buf.Len() != 0 {
		t.Errorf("below the floor: logged %s", buf.String())
	}
}
