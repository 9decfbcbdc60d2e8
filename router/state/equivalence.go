package state

import (
	"sync"

	"github.com/classroute/classroute/router/equiv"
)

// defaultEquivalence is the table of equiv.Default(), built once.
var defaultEquivalence = sync.OnceValue(func() equiv.Table {
	t, err := equiv.NewTable(equiv.Default())
	if err != nil {
		panic(err) // equiv's own tests check its default data
	}
	return t
})

// Equivalence returns the equivalence table in force: what every
// decision and re-check reads a label of one scheme into another with.
func (s *Store) Equivalence() equiv.Table {
	return defaultEquivalence()
}
