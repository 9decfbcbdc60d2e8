package state

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/hashicorp/go-memdb"

	"github.com/classroute/classroute/router"
)

// Two records follow a region's agent:
//
//	live/<provider>/<id>    liveValue, on the agent's session lease: it
//	                        exists exactly while an agent is connected
//	                        and reporting, and holds its last report.
//	health/<provider>/<id>  router.Health, durable: written when the
//	                        region's health changes (an agent reports a
//	                        change, or the reconciler finds no live agent
//	                        for longer than the grace period). Decisions
//	                        read it and Place compares its revision.
//
// A region without a health record has never had an agent; its
// catalogue status alone says whether it is healthy.

const (
	tableLive   = "live"
	tableHealth = "health"
)

// liveValue is the JSON value of a live record.
type liveValue struct {
	Agent       string           `json:"agent"`
	Daemon      string           `json:"daemon,omitempty"`
	Lease       int64            `json:"lease"`
	ConnectedAt time.Time        `json:"connected_at"`
	ReportedAt  time.Time        `json:"reported_at"`
	Healthy     bool             `json:"healthy"`
	Detail      string           `json:"detail,omitempty"`
	Free        router.Resources `json:"free"`
}

// liveRecord is a cached live record.
type liveRecord struct {
	Key string // region key
	V   liveValue
	Rev int64
	// CreateRev identifies the session that wrote it.
	CreateRev int64
}

// healthRecord is a cached health record.
type healthRecord struct {
	Key string
	H   *router.Health
	Rev int64
}

func liveTableSchema() *memdb.TableSchema {
	return &memdb.TableSchema{
		Name: tableLive,
		Indexes: map[string]*memdb.IndexSchema{
			indexID: {
				Name:    indexID,
				Unique:  true,
				Indexer: oneIndex[*liveRecord](func(r *liveRecord) string { return r.Key }),
			},
		},
	}
}

func healthTableSchema() *memdb.TableSchema {
	return &memdb.TableSchema{
		Name: tableHealth,
		Indexes: map[string]*memdb.IndexSchema{
			indexID: {
				Name:    indexID,
				Unique:  true,
				Indexer: oneIndex[*healthRecord](func(r *healthRecord) string { return r.Key }),
			},
		},
	}
}

func liveTxn(tx *memdb.Txn, key string) *liveRecord {
	raw, err := tx.First(tableLive, indexID, key)
	if err != nil || raw == nil {
		return nil
	}
	return raw.(*liveRecord)
}

func healthTxn(tx *memdb.Txn, key string) *healthRecord {
	raw, err := tx.First(tableHealth, indexID, key)
	if err != nil || raw == nil {
		return nil
	}
	return raw.(*healthRecord)
}

func decodeLive(id string, val []byte, rev, createRev int64) (*liveRecord, error) {
	if _, _, ok := splitRegionKey(id); !ok {
		return nil, fmt.Errorf("invalid region key %q", id)
	}
	var v liveValue
	if err := json.Unmarshal(val, &v); err != nil {
		return nil, err
	}
	f := v.Free
	if f.MilliCPU < 0 || f.MemoryMiB < 0 || f.GPU < 0 {
		return nil, fmt.Errorf("negative free capacity %+v", f)
	}
	return &liveRecord{Key: id, V: v, Rev: rev, CreateRev: createRev}, nil
}

func decodeHealth(id string, val []byte, rev int64) (*healthRecord, error) {
	if _, _, ok := splitRegionKey(id); !ok {
		return nil, fmt.Errorf("invalid region key %q", id)
	}
	var h router.Health
	if err := json.Unmarshal(val, &h); err != nil {
		return nil, err
	}
	return &healthRecord{Key: id, H: &h, Rev: rev}, nil
}

// RegionAgent returns the live agent session of a region (nil when no
// agent is connected) and its health record (nil when no agent has ever
// served it), from the cache.
func (s *Store) RegionAgent(key string) (*router.RegionLive, *router.Health) {
	tx := s.db.Txn(false)
	defer tx.Abort()
	var live *router.RegionLive
	if r := liveTxn(tx, key); r != nil {
		v := r.V
		live = &router.RegionLive{Agent: v.Agent, Daemon: v.Daemon, Lease: v.Lease, ConnectedAt: v.ConnectedAt,
			ReportedAt: v.ReportedAt, Healthy: v.Healthy, Detail: v.Detail, Free: v.Free, Rev: r.Rev, CreateRev: r.CreateRev}
	}
	var h *router.Health
	if r := healthTxn(tx, key); r != nil {
		h = r.H
	}
	return live, h
}
