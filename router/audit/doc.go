// Package audit owns the audit trail's format and its proof: the entry
// and its stored form, the sortable entry id, the hash chain over the
// entries, signed checkpoints of its head (and their copies anchored
// outside the store), key parsing, and the verifier that judges a log
// handed to it.
//
// It is pure: it reads and writes no store. router/state stores the
// entries, runs the chainer and feeds the verifier what it reads from
// etcd; the CLI parses keys and anchors with it. It must not import
// etcd, go-memdb, gRPC or router/state (TestDeps enforces it).
package audit
