package audit

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestJudgeEntry mutates a genuine entry in each way Judge must
// catch, and checks the reason it gives.
func TestJudgeEntry(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC)
	const skew = 5 * time.Second
	type input struct {
		id          string
		e           Entry
		raw         string // the value, when not e's JSON
		create, mod int64
		version     int64
		floor, ceil time.Time
	}
	genuine := func() input {
		return input{
			id:     fmt.Sprintf("%016x-0123abcd-%08x", now.UnixNano(), 7),
			e:      Entry{Time: now, Op: OpPlace, Actor: "spiffe://td/user/a", Revision: 41},
			create: 42, mod: 42, version: 1,
			floor: now.Add(-time.Second), ceil: now,
		}
	}
	for _, tc := range []struct {
		name   string
		mutate func(in *input)
		want   string // a fragment of the reason; "" for genuine
	}{
		{"genuine", func(*input) {}, ""},
		{"first entry of the log", func(in *input) { in.floor = time.Time{} }, ""},
		{"another zone", func(in *input) { in.e.Time = now.In(time.FixedZone("X", 3600)) }, ""},
		{"decision read revision 0", func(in *input) { in.e.Revision = 0 }, ""},
		{"trailing the chain's clock within the allowance", func(in *input) { in.floor = now.Add(skew) }, ""},
		{"leading the chainer's clock within the allowance", func(in *input) { in.ceil = now.Add(-skew) }, ""},
		{"a sequence past 8 digits", func(in *input) { in.id = fmt.Sprintf("%016x-0123abcd-%010x", now.UnixNano(), 1<<33) }, ""},
		{"rewritten", func(in *input) { in.mod, in.version = 43, 2 }, "rewritten after it was written"},
		{"deleted and written again", func(in *input) { in.mod = 43 }, "rewritten after it was written"},
		{"id without node", func(in *input) { in.id = fmt.Sprintf("%016x-%08x", now.UnixNano(), 7) }, "not one the daemons write"},
		{"id in upper case", func(in *input) { in.id = strings.ToUpper(in.id) }, "not one the daemons write"},
		{"id time overflows", func(in *input) { in.id = "ffffffffffffffff-0123abcd-00000001" }, "not one the daemons write"},
		{"unreadable", func(in *input) { in.raw = "{" }, "unreadable"},
		{"id a nanosecond off", func(in *input) { in.e.Time = now.Add(time.Nanosecond) }, "its id is dated"},
		{"no time", func(in *input) { in.e.Time = time.Time{}; in.id = "0000000000000000-0123abcd-00000001" }, "its id is dated"},
		{"revision of its own write", func(in *input) { in.e.Revision = 42 }, "not written by the transaction its revision says"},
		{"revision after its write", func(in *input) { in.e.Revision = 1 << 40 }, "not written by the transaction its revision says"},
		{"negative revision", func(in *input) { in.e.Revision = -1 }, "not written by the transaction its revision says"},
		{"back-dated", func(in *input) { in.floor = now.Add(skew + time.Millisecond) }, "back-dated beyond the 5s clock-skew allowance"},
		{"from the future", func(in *input) { in.ceil = now.Add(-skew - time.Millisecond) }, "from the future beyond the 5s clock-skew allowance"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := genuine()
			tc.mutate(&in)
			val := []byte(in.raw)
			if in.raw == "" {
				var err error
				if val, err = json.Marshal(in.e); err != nil {
					t.Fatal(err)
				}
			}
			se := &StoredEntry{ID: in.id, Value: val, CreateRevision: in.create, ModRevision: in.mod, Version: in.version}
			_, why := Judge(se, in.floor, in.ceil, skew)
			if tc.want == "" && why != "" || !strings.Contains(why, tc.want) {
				t.Errorf("Judge = %q; want ...%s...", why, tc.want)
			}
		})
	}
}

// TestAuditIDsJudged pins the id format Judge reads to the one IDs
// writes.
func TestAuditIDsJudged(t *testing.T) {
	ids := &IDs{Node: "0123abcd"}
	for _, tm := range []time.Time{time.Unix(0, 1), time.Now(), time.Date(2262, 1, 1, 0, 0, 0, 0, time.UTC)} {
		id := ids.Next(tm)
		if ns, ok := IDNanos(id); !ok || ns != tm.UnixNano() {
			t.Errorf("IDNanos(%q) = %d, %v; want %d", id, ns, ok, tm.UnixNano())
		}
	}
	ids.seq.Store(1<<32 - 1) // past 8 hex digits
	if id := ids.Next(time.Now()); !strings.HasSuffix(id, "-100000000") {
		t.Fatalf("id %q", id)
	} else if _, ok := IDNanos(id); !ok {
		t.Errorf("IDNanos(%q) refused", id)
	}
}
