package state

import (
	"fmt"
	"runtime"
	"testing"
)

// BenchmarkLoadDecode is the cost of decoding one placement record at a
// cold start, and BenchmarkLoadInsert that of caching it (every index of
// the placements table), in one transaction as load does.
func BenchmarkLoadDecode(b *testing.B) {
	val := internRecord(b, 2)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decodePlacement(val); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLoadInsert(b *testing.B) {
	p, err := decodePlacement(internRecord(b, 2))
	if err != nil {
		b.Fatal(err)
	}
	p.Retiring, p.Issues = nil, nil
	db := newDB()
	tx := db.Txn(true)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		c := *p
		c.ID = fmt.Sprintf("req-%08d", i)
		i++
		if err := tx.Insert(tablePlacements, &placementRecord{P: &c, Rev: 1}); err != nil {
			b.Fatal(err)
		}
	}
	tx.Commit()
}

// BenchmarkCacheBytes reports the heap the cache keeps per placement
// (decoded and under every index), over b.N placements of two replicas
// decoded from their records as a cold start does.
func BenchmarkCacheBytes(b *testing.B) {
	val := internRecord(b, 2)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	db := newDB()
	tx := db.Txn(true)
	for i := 0; b.Loop(); i++ {
		p, err := decodePlacement(val)
		if err != nil {
			b.Fatal(err)
		}
		p.Retiring, p.Issues = nil, nil
		p.ID = fmt.Sprintf("bench-%010d", i)
		if err := tx.Insert(tablePlacements, &placementRecord{P: p, Rev: int64(i)}); err != nil {
			b.Fatal(err)
		}
	}
	tx.Commit()
	runtime.GC()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(b.N), "heap-B/placement")
	runtime.KeepAlive(db)
}
