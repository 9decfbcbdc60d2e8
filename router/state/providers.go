package state

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/hashicorp/go-memdb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/classroute/classroute/router"
	"github.com/classroute/classroute/router/audit"
	"github.com/classroute/classroute/router/authz"
)

const tableProviders = "providers"

// providerRecord is a cached provider and the etcd mod revision of its record.
type providerRecord struct {
	Provider *router.Provider
	Rev      int64
}

func providersTableSchema() *memdb.TableSchema {
	return &memdb.TableSchema{
		Name: tableProviders,
		Indexes: map[string]*memdb.IndexSchema{
			indexID: {
				Name:    indexID,
				Unique:  true,
				Indexer: oneIndex[*providerRecord](func(p *providerRecord) string { return p.Provider.ID }),
			},
		},
	}
}

func providerTxn(tx *memdb.Txn, id string) *providerRecord {
	raw, err := tx.First(tableProviders, indexID, id)
	if err != nil || raw == nil {
		return nil
	}
	return raw.(*providerRecord)
}

// GetProvider returns a provider from the cache. An unknown id is ErrNotFound.
func (s *Store) GetProvider(id string) (*router.Provider, error) {
	tx := s.db.Txn(false)
	defer tx.Abort()
	p := providerTxn(tx, id)
	if p == nil {
		return nil, fmt.Errorf("provider %q: %w", id, router.ErrNotFound)
	}
	return p.Provider, nil
}

// GetProviderVersioned returns a provider from the cache with the mod
// revision of its record (its etag). An unknown id is ErrNotFound.
func (s *Store) GetProviderVersioned(id string) (Versioned[*router.Provider], error) {
	tx := s.db.Txn(false)
	defer tx.Abort()
	p := providerTxn(tx, id)
	if p == nil {
		return Versioned[*router.Provider]{}, fmt.Errorf("provider %q: %w", id, router.ErrNotFound)
	}
	return Versioned[*router.Provider]{Value: p.Provider, Rev: p.Rev}, nil
}

// ListProvidersVersioned returns every provider from the cache with the
// mod revision of its record, sorted by id. The providers are shared:
// never modify one.
func (s *Store) ListProvidersVersioned() []Versioned[*router.Provider] {
	tx := s.db.Txn(false)
	defer tx.Abort()
	it, err := tx.Get(tableProviders, indexID)
	if err != nil {
		panic(err) // the table and index exist
	}
	var out []Versioned[*router.Provider]
	for raw := it.Next(); raw != nil; raw = it.Next() {
		r := raw.(*providerRecord)
		out = append(out, Versioned[*router.Provider]{Value: r.Provider, Rev: r.Rev})
	}
	return out
}

// ListProviders returns every provider from the cache, sorted by id.
// The providers are shared: never modify one.
func (s *Store) ListProviders() []*router.Provider {
	tx := s.db.Txn(false)
	defer tx.Abort()
	it, err := tx.Get(tableProviders, indexID)
	if err != nil {
		panic(err) // the table and index exist
	}
	var out []*router.Provider
	for raw := it.Next(); raw != nil; raw = it.Next() {
		out = append(out, raw.(*providerRecord).Provider)
	}
	return out
}

// PutProvider creates or replaces a provider and returns once the cache
// reflects the write.
func (s *Store) PutProvider(ctx context.Context, p *router.Provider, opts ...WriteOption) error {
	if p == nil || !validKeyPart(p.ID) {
		return router.Violations{{Field: "provider.id", Description: "required: a valid id"}}.Err()
	}
	if err := router.ValidateProvider(p); err != nil {
		return err
	}
	val, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("provider %s: encode: %w", p.ID, err)
	}
	aop, err := s.auditOp(audit.Entry{Op: audit.OpProviderPut, Actor: authz.Actor(ctx), Provider: p.ID, Revision: s.Revision()})
	if err != nil {
		return err
	}
	o := writeOptions(opts)
	if err := s.awaitCondition(ctx, o); err != nil {
		return err
	}
	key := s.keys.provider(p.ID)
	resp, err := s.txn(ctx, func(ctx context.Context) (*clientv3.TxnResponse, error) {
		return s.kv.Txn(ctx).If(o.cmps(key)...).
			Then(clientv3.OpPut(key, string(val)), aop).
			Else(clientv3.OpGet(key, clientv3.WithKeysOnly())).Commit()
	})
	if err != nil {
		return fmt.Errorf("put provider %s: %w", p.ID, err)
	}
	if !resp.Succeeded {
		return o.mismatch("provider "+p.ID, modRevOf(resp, 0))
	}
	if err := s.waitCommitted(ctx, resp.Header.Revision); err != nil {
		return fmt.Errorf("put provider %s: %w", p.ID, err)
	}
	return nil
}

// DeleteProvider deletes a provider. A provider that regions still name
// is ErrInUse: the transaction compares that no region key exists under
// the provider, and PutRegion compares that the provider exists, so the
// two cannot interleave into a region without a provider.
func (s *Store) DeleteProvider(ctx context.Context, id string, opts ...WriteOption) error {
	if !validKeyPart(id) {
		return fmt.Errorf("provider %q: %w", id, router.ErrNotFound)
	}
	o := writeOptions(opts)
	if err := s.awaitCondition(ctx, o); err != nil {
		return err
	}
	key := s.keys.provider(id)
	aop, err := s.auditOp(audit.Entry{Op: audit.OpProviderDelete, Actor: authz.Actor(ctx), Provider: id, Revision: s.Revision()})
	if err != nil {
		return err
	}
	resp, err := s.txn(ctx, func(ctx context.Context) (*clientv3.TxnResponse, error) {
		return s.kv.Txn(ctx).
			If(append([]clientv3.Cmp{
				clientv3.Compare(clientv3.CreateRevision(s.keys.regionsOf(id)), "=", 0).WithPrefix(),
				clientv3.Compare(clientv3.CreateRevision(key), ">", 0),
			}, o.cmps(key)...)...).
			Then(clientv3.OpDelete(key), aop).
			Else(clientv3.OpGet(s.keys.regionsOf(id), clientv3.WithPrefix(), clientv3.WithCountOnly()),
				clientv3.OpGet(key, clientv3.WithKeysOnly())).
			Commit()
	})
	if err != nil {
		return fmt.Errorf("delete provider %s: %w", id, err)
	}
	if !resp.Succeeded {
		if n := resp.Responses[0].GetResponseRange().GetCount(); n > 0 {
			return fmt.Errorf("provider %q has %d regions: %w", id, n, router.ErrInUse)
		}
		if rev := modRevOf(resp, 1); rev != 0 {
			if err := o.mismatch("provider "+id, rev); err != nil {
				return err
			}
		}
		return fmt.Errorf("provider %q: %w", id, router.ErrNotFound)
	}
	return s.waitCommitted(ctx, resp.Header.Revision)
}
