package etcdlocal

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// ZapLogger is a zap logger, as etcd's server and client take, that
// writes to log: etcd's messages in the format and at the level of the
// program's logs, each with component=etcd and etcd's fields as
// attributes (no stack traces). Messages below floor are dropped
// whatever log's level (zapcore.DebugLevel: none but log's own).
func ZapLogger(log *slog.Logger, floor zapcore.Level) *zap.Logger {
	return zap.New(newSlogCore(log, floor, new(atomic.Bool)))
}

func newSlogCore(log *slog.Logger, floor zapcore.Level, closing *atomic.Bool) *slogCore {
	return &slogCore{log: log.With("component", "etcd"), floor: floor, closing: closing}
}

// slogCore is a zapcore.Core that writes to an *slog.Logger.
type slogCore struct {
	log   *slog.Logger
	floor zapcore.Level
	attrs []slog.Attr // With's fields
	// closing is set when the member is being closed (Member.Close):
	// see shutdownNoise.
	closing *atomic.Bool
}

// slogLevel is zap's level l as slog's.
func slogLevel(l zapcore.Level) slog.Level {
	switch {
	case l <= zapcore.DebugLevel:
		return slog.LevelDebug
	case l == zapcore.InfoLevel:
		return slog.LevelInfo
	case l == zapcore.WarnLevel:
		return slog.LevelWarn
	default: // error, dpanic, panic, fatal
		return slog.LevelError
	}
}

func (c *slogCore) Enabled(l zapcore.Level) bool {
	return l >= c.floor && c.log.Enabled(context.Background(), slogLevel(l))
}

func (c *slogCore) With(fields []zapcore.Field) zapcore.Core {
	cc := *c
	cc.attrs = append(slices.Clip(c.attrs), attrs(fields)...)
	return &cc
}

func (c *slogCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c *slogCore) Write(e zapcore.Entry, fields []zapcore.Field) error {
	fs := attrs(fields)
	level := slogLevel(e.Level)
	if c.closing.Load() && shutdownNoise(fs) {
		level = slog.LevelDebug
	}
	ctx := context.Background()
	if !c.log.Enabled(ctx, level) {
		return nil
	}
	r := slog.NewRecord(e.Time, level, e.Message, 0)
	r.AddAttrs(c.attrs...)
	r.AddAttrs(fs...)
	if e.LoggerName != "" {
		r.AddAttrs(slog.String("logger", e.LoggerName))
	}
	return c.log.Handler().Handle(ctx, r)
}

func (c *slogCore) Sync() error { return nil }

// attrs are zap's fields as slog's attributes, in their order.
func attrs(fields []zapcore.Field) []slog.Attr {
	out := make([]slog.Attr, 0, len(fields))
	for _, f := range fields {
		enc := zapcore.NewMapObjectEncoder()
		f.AddTo(enc)
		keys := make([]string, 0, len(enc.Fields))
		for k := range enc.Fields {
			keys = append(keys, k)
		}
		slices.Sort(keys) // a field adds one key, or a few (an error's "errorVerbose")
		for _, k := range keys {
			out = append(out, slog.Any(k, enc.Fields[k]))
		}
	}
	return out
}

// shutdownNoise reports whether a message etcd logs while its member is
// closed is the expected end of a listener rather than a fault: etcd
// logs, at error (errHandler's "setting up serving from embedded etcd
// failed.") or warn ("stopping insecure grpc server due to error"),
// whatever each serving goroutine returns, and a listener closed under
// it returns "use of closed network connection", "http: Server closed"
// or "mux: server closed". Those are logged at debug.
func shutdownNoise(fs []slog.Attr) bool {
	for _, a := range fs {
		if a.Key != "error" {
			continue
		}
		err := a.Value.String()
		return strings.Contains(err, "use of closed network connection") || strings.HasSuffix(err, "server closed") || strings.HasSuffix(err, "Server closed")
	}
	return false
}
