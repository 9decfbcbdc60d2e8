package state

import (
	"context"
	"fmt"
	"strconv"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/classroute/classroute/router"
)

// WriteOption qualifies a catalogue write.
type WriteOption func(*writeOpts)

type writeOpts struct {
	// ifRev is the revision the caller read the record at; 0: none.
	ifRev int64
}

// IfRevision makes a write conditional (AIP-154's etag): it applies only
// while the record is still at rev, the mod revision the caller read it
// at, and fails with router.ErrEtagMismatch otherwise — so a
// read-modify-write never silently undoes another administrator's edit.
// 0 is no condition.
func IfRevision(rev int64) WriteOption {
	return func(o *writeOpts) { o.ifRev = rev }
}

func writeOptions(opts []WriteOption) writeOpts {
	var o writeOpts
	for _, f := range opts {
		f(&o)
	}
	return o
}

// Etag is the etag of a record at mod revision rev ("" for none).
func Etag(rev int64) string {
	if rev == 0 {
		return ""
	}
	return strconv.FormatInt(rev, 10)
}

// ParseEtag is the revision an etag stands for (0 for ""); a malformed
// one is a violation of field.
func ParseEtag(field, etag string) (int64, error) {
	if etag == "" {
		return 0, nil
	}
	rev, err := strconv.ParseInt(etag, 10, 64)
	if err != nil || rev <= 0 {
		return 0, router.Violations{{Field: field, Description: "not an etag this service issued: copy it from a read of the record"}}.Err()
	}
	return rev, nil
}

// awaitCondition waits, for a conditional write, until the cache
// reflects the revision the caller read the record at: the caller may
// have read it through another daemon whose cache is ahead of this one,
// and an unchanged record must never be reported changed. An etag beyond
// etcd's own revision was never issued: a mismatch at once, with no wait
// (and no waiter left behind). A cache that does not catch up within the
// operation timeout is unavailable, not a mismatch.
func (s *Store) awaitCondition(ctx context.Context, o writeOpts) error {
	if o.ifRev == 0 || o.ifRev <= s.Revision() {
		return nil
	}
	cctx, cancel := context.WithTimeout(ctx, s.opTimeout)
	defer cancel()
	head, err := s.kv.Get(cctx, s.keys.prefix, clientv3.WithCountOnly(), clientv3.WithLimit(1))
	if err != nil {
		return unavailable(ctx, err)
	}
	if o.ifRev > head.Header.Revision {
		return fmt.Errorf("%w: etag %q was not issued by this cluster: read the record again", router.ErrEtagMismatch, Etag(o.ifRev))
	}
	if err := s.WaitFor(cctx, o.ifRev); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%w: the cache has not reached the revision the record was read at", router.ErrUnavailable)
	}
	return nil
}

// mismatch is the error of a record found at rev (0: gone) when the
// caller read it at o.ifRev; nil when the condition holds or is none.
func (o writeOpts) mismatch(what string, rev int64) error {
	if o.ifRev == 0 || rev == o.ifRev {
		return nil
	}
	if rev == 0 {
		return fmt.Errorf("%s: %w: it was deleted", what, router.ErrEtagMismatch)
	}
	return fmt.Errorf("%s: %w (read at etag %q, now %q): read it again and reapply your change", what, router.ErrEtagMismatch, Etag(o.ifRev), Etag(rev))
}

// cmps are the transaction comparisons of the condition on key.
func (o writeOpts) cmps(key string) []clientv3.Cmp {
	if o.ifRev == 0 {
		return nil
	}
	return []clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(key), "=", o.ifRev)}
}

// modRevOf is the mod revision of the key an Else branch's i-th get
// read (0: absent).
func modRevOf(resp *clientv3.TxnResponse, i int) int64 {
	if i >= len(resp.Responses) {
		return 0
	}
	if kvs := resp.Responses[i].GetResponseRange().GetKvs(); len(kvs) > 0 {
		return kvs[0].ModRevision
	}
	return 0
}

// Versioned is a cached record with the etcd mod revision of its record:
// its etag (Etag).
type Versioned[T any] struct {
	Value T
	Rev   int64
}
