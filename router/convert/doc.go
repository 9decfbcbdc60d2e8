// Package convert owns the translation between the API's messages
// (proto/classroute/v1) and the domain's types (router, router/label,
// router/audit): each message has one conversion each way, used by the
// gRPC edge (router/server) and by the CLI (cmd/classroutectl). A
// conversion from the API checks only what the message's shape says
// (required fields, enum values the API defines), adding violations
// named by field; the domain's own rules are router's Validate*.
//
// It is pure: it must not import etcd, go-memdb, router/state or
// router/server, so that the CLI linking it links none of the daemon
// (router's TestDeps enforces it).
package convert
