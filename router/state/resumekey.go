package state

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/classroute/classroute/router"
)

// resumeKeyName holds the secret that seals resume tokens (see
// ResumeKey). It is not a table: the cache ignores it.
const resumeKeyName = "secrets/resume-token-key"

// ResumeKeySize is the size of the resume token key (AES-256).
const ResumeKeySize = 32

// ResumeKey returns the secret with which the edge seals the opaque
// resume tokens it gives tenant users in place of etcd revisions: a
// revision counts every write of every tenant, so showing one to a
// tenant's user would tell it how busy the others are. Every daemon of a
// cluster must seal and open the same tokens, so the key lives in etcd:
// the first store to open creates it (one compare-and-swap: daemons
// starting together agree on one key), later ones read it, at Open.
func (s *Store) ResumeKey(context.Context) ([]byte, error) {
	return s.resumeKey, nil
}

// loadResumeKey reads the resume token key, creating it if there is none.
func (s *Store) loadResumeKey(ctx context.Context) ([]byte, error) {
	fresh := make([]byte, ResumeKeySize)
	if _, err := crand.Read(fresh); err != nil {
		return nil, err
	}
	key := s.keys.prefix + resumeKeyName
	ctx, cancel := context.WithTimeout(ctx, s.opTimeout)
	defer cancel()
	resp, err := s.kv.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, hex.EncodeToString(fresh))).
		Else(clientv3.OpGet(key)).
		Commit()
	if err != nil {
		return nil, unavailable(ctx, err)
	}
	if resp.Succeeded {
		return fresh, nil
	}
	kvs := resp.Responses[0].GetResponseRange().GetKvs()
	if len(kvs) != 1 {
		return nil, fmt.Errorf("%w: resume token key vanished", router.ErrUnavailable)
	}
	return decodeResumeKey(key, kvs[0].Value)
}

// decodeResumeKey decodes the stored resume token key at key: its
// ResumeKeySize bytes, hex-encoded.
func decodeResumeKey(key string, val []byte) ([]byte, error) {
	b, err := hex.DecodeString(string(val))
	if err != nil || len(b) != ResumeKeySize {
		return nil, fmt.Errorf("stored resume token key %s is not %d hex-encoded bytes", key, ResumeKeySize)
	}
	return b, nil
}
