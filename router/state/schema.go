package state

import (
	"fmt"

	"github.com/hashicorp/go-memdb"
)

// The cache is a go-memdb database with one table per record kind, each
// declared with its accessors in its own file. Objects in it are never
// modified after insert: an update inserts a new object.

// tableSchemas lists the schema function of every table.
var tableSchemas = []func() *memdb.TableSchema{
	revisionTableSchema,
	regionsTableSchema,
	providersTableSchema,
	tenantsTableSchema,
	usageTableSchema,
	placementsTableSchema,
	liveTableSchema,
	healthTableSchema,
	equivalencesTableSchema,
	edgesTableSchema,
	servicesTableSchema,
}

func newDB() *memdb.MemDB {
	s := &memdb.DBSchema{Tables: make(map[string]*memdb.TableSchema)}
	for _, f := range tableSchemas {
		t := f()
		s.Tables[t.Name] = t
	}
	db, err := memdb.NewMemDB(s)
	if err != nil {
		panic(fmt.Sprintf("state: bad memdb schema: %v", err)) // a programming error
	}
	return db
}

const (
	tableRevision = "revision"
	indexID       = "id"
)

// revisionRecord is the single row of the revision table: the etcd
// revision the cache reflects, and the regions view at that revision. It
// lives in the database, not beside it, so that every read transaction
// sees a revision and a view consistent with its records.
type revisionRecord struct {
	Rev     int64
	Regions *regionView
}

func revisionTableSchema() *memdb.TableSchema {
	return &memdb.TableSchema{
		Name: tableRevision,
		Indexes: map[string]*memdb.IndexSchema{
			indexID: {
				Name:    indexID,
				Unique:  true,
				Indexer: oneIndex[*revisionRecord](func(*revisionRecord) string { return "rev" }),
			},
		},
	}
}

// revisionTxn returns the revision the transaction reads (0 before the
// first load) and the regions view at that revision.
func revisionTxn(tx *memdb.Txn) (int64, *regionView) {
	raw, err := tx.First(tableRevision, indexID, "rev")
	if err != nil {
		panic(err) // the table and index exist
	}
	if raw == nil {
		return 0, &regionView{}
	}
	r := raw.(*revisionRecord)
	return r.Rev, r.Regions
}

func setRevisionTxn(tx *memdb.Txn, rev int64, view *regionView) error {
	return tx.Insert(tableRevision, &revisionRecord{Rev: rev, Regions: view})
}

// oneIndex is a typed memdb index that puts an object under one string
// value. It replaces memdb's reflection-based field indexes.
type oneIndex[T any] func(T) string

// FromObject implements memdb.SingleIndexer.
func (f oneIndex[T]) FromObject(raw any) (bool, []byte, error) {
	obj, ok := raw.(T)
	if !ok {
		return false, nil, fmt.Errorf("index: got %T, want %T", raw, obj)
	}
	v := f(obj)
	return v != "", encodeIndex(v), nil
}

// FromArgs implements memdb.Indexer. See encodeArgs.
func (f oneIndex[T]) FromArgs(args ...any) ([]byte, error) { return encodeArgs(args) }

// manyIndex is a typed memdb index that puts an object under several
// string values (a multi-value index).
type manyIndex[T any] func(T) []string

// FromObject implements memdb.MultiIndexer.
func (f manyIndex[T]) FromObject(raw any) (bool, [][]byte, error) {
	obj, ok := raw.(T)
	if !ok {
		return false, nil, fmt.Errorf("index: got %T, want %T", raw, obj)
	}
	vs := f(obj)
	out := make([][]byte, 0, len(vs))
	for _, v := range vs {
		if v != "" {
			out = append(out, encodeIndex(v))
		}
	}
	return len(out) > 0, out, nil
}

// FromArgs implements memdb.Indexer. See encodeArgs.
func (f manyIndex[T]) FromArgs(args ...any) ([]byte, error) { return encodeArgs(args) }

// encodeIndex terminates an index value with NUL so that no value is a
// prefix of another ("ab" and "abc").
func encodeIndex(v string) []byte {
	b := make([]byte, 0, len(v)+1)
	return append(append(b, v...), 0)
}

// encodeArgs builds an index key from string arguments, each terminated
// by NUL. Non-unique memdb indexes store the value followed by the
// primary key, so passing the primary key as an extra last argument
// builds a key that LowerBound can seek to: that is how paging resumes
// after the last id of the previous page.
func encodeArgs(args []any) ([]byte, error) {
	if len(args) == 0 {
		return nil, fmt.Errorf("index: no arguments")
	}
	var b []byte
	for i, a := range args {
		s, ok := a.(string)
		if !ok {
			return nil, fmt.Errorf("index: argument %d is %T, want string", i, a)
		}
		b = append(append(b, s...), 0)
	}
	return b, nil
}
