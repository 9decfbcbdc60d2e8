package state

import "github.com/classroute/classroute/router"

// WithLoadByPages makes the store load by pages of plain range reads, as
// from an etcd that serves no range streams.
func WithLoadByPages() Option { return func(o *options) { o.loadByPages = true } }

// LoadPageSize is how many records a page of a load by pages holds.
const LoadPageSize = loadPageSize

// DecodePlacement decodes a stored placement record as the cache does.
func DecodePlacement(val []byte) (*router.Placement, error) { return decodePlacement(val) }
