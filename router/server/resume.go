package server

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	crand "crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"sync"

	"github.com/classroute/classroute/router"
)

// Resume tokens stand in for etcd revisions wherever a tenant's user
// would otherwise see one. An etcd revision counts every write of every
// tenant, the catalogue and the agents: two revisions a user saw a minute
// apart say how busy everyone else was. A token is the revision sealed
// (AES-256-GCM, a random nonce, the tenant as additional data) with a
// key every daemon of the cluster shares (state.Store.ResumeKey): opaque,
// different every time it is issued, bound to the tenant it was issued
// to, and good at any daemon. Callers that are not confined to a tenant
// get tokens too, beside the revisions they may see.

// ResumeKeyer is what the server needs to seal tokens: the cluster's
// shared key (state.Store satisfies it).
type ResumeKeyer interface {
	ResumeKey(ctx context.Context) ([]byte, error)
}

// resumeTokenAD binds a token to its purpose and version; the tenant id
// follows it.
const resumeTokenAD = "classroute/v1 resume token\x00"

// resumeTokens seals and opens resume tokens with a key fetched once.
type resumeTokens struct {
	keys ResumeKeyer

	mu   sync.Mutex
	aead cipher.AEAD
	// idKey derives the nonce of a sealed id (see sealID).
	idKey []byte
}

func (rt *resumeTokens) cipher(ctx context.Context) (cipher.AEAD, error) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.aead != nil {
		return rt.aead, nil
	}
	key, err := rt.keys.ResumeKey(ctx)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	rt.aead = aead
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte("classroute/v1 sealed id nonce key"))
	rt.idKey = mac.Sum(nil)
	return aead, nil
}

// resumeToken seals revision rev for a caller of tenant ("" when not
// confined).
func (s *Server) resumeToken(ctx context.Context, tenant string, rev int64) (string, error) {
	aead, err := s.resume.cipher(ctx)
	if err != nil {
		return "", err
	}
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+8+aead.Overhead())
	if _, err := crand.Read(nonce); err != nil {
		return "", err
	}
	var plain [8]byte
	binary.BigEndian.PutUint64(plain[:], uint64(rev))
	sealed := aead.Seal(nonce, nonce, plain[:], []byte(resumeTokenAD+tenant))
	return base64.RawURLEncoding.EncodeToString(sealed), nil
}

// resumeRevision opens a token issued to a caller of tenant. A token
// that was not issued by this cluster to that tenant is INVALID_ARGUMENT
// naming field, and says nothing more.
func (s *Server) resumeRevision(ctx context.Context, field, tenant, token string) (int64, error) {
	aead, err := s.resume.cipher(ctx)
	if err != nil {
		return 0, err
	}
	bad := router.Violations{{Field: field, Description: "not a token this service issued to this caller"}}.Err()
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(b) != aead.NonceSize()+8+aead.Overhead() {
		return 0, bad
	}
	plain, err := aead.Open(nil, b[:aead.NonceSize()], b[aead.NonceSize():], []byte(resumeTokenAD+tenant))
	if err != nil || len(plain) != 8 {
		return 0, bad
	}
	rev := int64(binary.BigEndian.Uint64(plain))
	if rev < 0 {
		return 0, bad
	}
	return rev, nil
}

// sealedIDAD binds a sealed id to its purpose; the tenant id follows.
const sealedIDAD = "classroute/v1 sealed id\x00"

// sealID returns id as a confined caller may see it: sealed for its
// tenant, the same every time (the nonce is a MAC of the id, so one
// entry keeps one id across pages and calls), opaque. Callers not
// confined get id itself.
func (s *Server) sealID(ctx context.Context, sc scope, id string) (string, error) {
	if !sc.confined() {
		return id, nil
	}
	aead, err := s.resume.cipher(ctx)
	if err != nil {
		return "", err
	}
	mac := hmac.New(sha256.New, s.resume.idKey)
	mac.Write([]byte(sc.tenantID + "\x00" + id))
	nonce := mac.Sum(nil)[:aead.NonceSize()]
	sealed := aead.Seal(nonce, nonce, []byte(id), []byte(sealedIDAD+sc.tenantID))
	return base64.RawURLEncoding.EncodeToString(sealed), nil
}

// openID reverses sealID for a token the caller sent in field.
func (s *Server) openID(ctx context.Context, field string, sc scope, token string) (string, error) {
	if !sc.confined() {
		return token, nil
	}
	aead, err := s.resume.cipher(ctx)
	if err != nil {
		return "", err
	}
	bad := router.Violations{{Field: field, Description: "not a token this service issued to this caller"}}.Err()
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(b) < aead.NonceSize()+aead.Overhead() {
		return "", bad
	}
	plain, err := aead.Open(nil, b[:aead.NonceSize()], b[aead.NonceSize():], []byte(sealedIDAD+sc.tenantID))
	if err != nil {
		return "", bad
	}
	return string(plain), nil
}
