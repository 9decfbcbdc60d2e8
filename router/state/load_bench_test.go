package state

import (
	"fmt"
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
