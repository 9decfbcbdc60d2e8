package state

import (
	"github.com/hashicorp/go-memdb"

	"github.com/classroute/classroute/router"
)

const tableUsage = "usage"

// usageValue is the JSON value of a usage record: what the live
// placements of one region use, and how many there are. Each region has
// one, created with it; placing and releasing update it in the same etcd
// transaction as the placement, so it always equals the sum over the
// region's placed placements.
type usageValue struct {
	Used       router.Resources `json:"used"`
	Placements int64            `json:"placements"`
}

// usageRecord is a cached usage record and its etcd mod revision.
type usageRecord struct {
	Key        string // region key "provider/id"
	Used       router.Resources
	Placements int64
	Rev        int64
}

func usageTableSchema() *memdb.TableSchema {
	return &memdb.TableSchema{
		Name: tableUsage,
		Indexes: map[string]*memdb.IndexSchema{
			indexID: {
				Name:    indexID,
				Unique:  true,
				Indexer: oneIndex[*usageRecord](func(u *usageRecord) string { return u.Key }),
			},
		},
	}
}

func usageTxn(tx *memdb.Txn, key string) *usageRecord {
	raw, err := tx.First(tableUsage, indexID, key)
	if err != nil || raw == nil {
		return nil
	}
	return raw.(*usageRecord)
}
