package main_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/protobuf/encoding/protojson"

	pb "github.com/classroute/classroute/proto/classroute/v1"
	"github.com/classroute/classroute/router/etcdtest"
)

// auditDaemon starts a daemon that signs its audit chain with a key from
// audit keygen and anchors each checkpoint in a directory, and returns
// it, the key's file, the anchor directory and an etcd client.
func auditDaemon(t *testing.T) (*daemon, string, string, *clientv3.Client) {
	t.Helper()
	key := filepath.Join(t.TempDir(), "audit.pem")
	anchor := filepath.Join(t.TempDir(), "anchor")
	d := newDaemon(t, "--audit-key", key, "--audit-checkpoint-interval", "100ms", "--audit-checkpoint-dir", anchor)
	if r := d.env.Run("audit", "keygen", "--out", key); r.Code != 0 {
		t.Fatalf("audit keygen: exit %d: %s", r.Code, r.Stderr)
	}
	d.start()
	t.Cleanup(d.stop)
	cli := etcdtest.Dial(t, d.etcdAddr)
	return d, key, anchor, cli
}

// waitVerified waits until audit verify passes with every entry chained
// and checkpointed.
func waitVerified(t *testing.T, e *env, args ...string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var resp pb.VerifyAuditResponse
		r := e.Run(append([]string{"audit", "verify", "-o", "json"}, args...)...)
		if r.Code == 0 && protojson.Unmarshal([]byte(r.Stdout), &resp) == nil && resp.GetOk() && resp.GetUnchained() == 0 &&
			resp.GetCheckpoint().GetSeq() == uint64(resp.GetChained()) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("audit verify %v never clean: exit %d\n%s%s", args, r.Code, r.Stdout, r.Stderr)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestAuditVerifyAnchor cuts the log short in etcd, and every checkpoint
// past the cut with it: audit verify finds nothing wrong, and audit
// verify --anchor finds the cut, against the checkpoints the daemon
// wrote to --audit-checkpoint-dir.
func TestAuditVerifyAnchor(t *testing.T) {
	d, key, anchor, cli := auditDaemon(t)
	e := d.env
	for i, spec := range []string{"examples/aukus-secret.yaml", "examples/kenya-health-records.yaml", "examples/nearline-storage.yaml"} {
		e.Place(spec, "--request-id", fmt.Sprintf("anchored-%d", i))
		waitVerified(t, e, "--pubkey", key+".pub")
	}
	r := e.Run("audit", "verify", "--pubkey", key+".pub", "--anchor", anchor)
	if r.Code != 0 || !strings.Contains(r.Stdout, "anchored checkpoints: 3 checked, the newest #3\n") || !strings.HasSuffix(r.Stdout, "\nok\n") {
		t.Fatalf("audit verify --anchor of an intact log: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	if body := httpGet(t, "http://"+d.metrics+"/metrics"); !strings.Contains(body, "classroute_audit_checkpoints_anchored_total 3") {
		t.Errorf("/metrics lacks classroute_audit_checkpoints_anchored_total 3")
	}

	// Cut the last entry, its chain record and its checkpoint, while no
	// chainer watches (a running one reports the deletion at once): the
	// daemon again, without its reconciler.
	d.stop()
	d.args = append(d.args, "--reconcile=false")
	d.start()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, "/classroute/v1/audit-chain/", clientv3.WithPrefix())
	if err != nil || len(resp.Kvs) != 3 {
		t.Fatalf("chain records: %v, %v", resp, err)
	}
	var last struct{ Key string }
	if err := json.Unmarshal(resp.Kvs[2].Value, &last); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"/classroute/v1/audit/" + last.Key, string(resp.Kvs[2].Key), fmt.Sprintf("/classroute/v1/audit-checkpoint/%020d", 3)} {
		if r, err := cli.Delete(ctx, k); err != nil || r.Deleted != 1 {
			t.Fatalf("delete %s: %v, %v", k, r, err)
		}
	}
	if r := e.Run("audit", "verify", "--pubkey", key+".pub"); r.Code != 0 {
		t.Fatalf("audit verify without the anchor: exit %d\n%s%s; the cut was meant to be invisible in etcd", r.Code, r.Stdout, r.Stderr)
	}
	r = e.Run("audit", "verify", "--pubkey", key+".pub", "--anchor", anchor)
	if want := "first bad entry #3: log truncated: checkpoint #3 anchored outside etcd signs 3 entries, the chain holds 2"; r.Code != 1 || !strings.Contains(r.Stderr, want) {
		t.Fatalf("audit verify --anchor of a cut log: exit %d\n%s%s; want exit 1: %s", r.Code, r.Stdout, r.Stderr, want)
	}

	// An anchor directory with nothing in it checks nothing: refused.
	if r := e.Run("audit", "verify", "--anchor", t.TempDir()); r.Code != 1 || !strings.Contains(r.Stderr, "holds no checkpoint") {
		t.Errorf("audit verify --anchor EMPTY: exit %d\n%s%s; want a refusal", r.Code, r.Stdout, r.Stderr)
	}
}

// TestAuditVerifyForgery writes a back-dated entry straight into etcd:
// the daemon's chainer reports it (a tamper entry, an error logged, a
// metric), and audit verify exits 1 naming it.
func TestAuditVerifyForgery(t *testing.T) {
	d, key, _, cli := auditDaemon(t)
	e := d.env
	e.Place("examples/aukus-secret.yaml", "--request-id", "genuine-1")
	waitVerified(t, e, "--pubkey", key+".pub")

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	when := time.Now().Add(-24 * time.Hour).UTC()
	id := fmt.Sprintf("%016x-0badc0de-00000001", when.UnixNano())
	forged := fmt.Sprintf(`{"time":%q,"op":"release","actor":"spiffe://example.org/admin/mallory","request_id":"genuine-1","tenant":"us-army","revision":2}`,
		when.Format(time.RFC3339Nano))
	if _, err := cli.Put(ctx, "/classroute/v1/audit/"+id, forged); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		var list pb.ListAuditResponse
		e.OK(&list, "audit", "list", "--op", "tamper")
		if len(list.GetEntries()) == 1 && strings.Contains(strings.Join(list.GetEntries()[0].GetReasons(), ";"), id+": dated") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no tamper entry naming %s: %v", id, list.GetEntries())
		}
		time.Sleep(200 * time.Millisecond)
	}
	r := e.Run("audit", "verify", "--pubkey", key+".pub")
	if r.Code != 1 || !strings.Contains(r.Stderr, "first bad entry #2 "+id+": dated ") || !strings.Contains(r.Stderr, "back-dated") {
		t.Fatalf("audit verify: exit %d\n%s%s; want exit 1 naming %s as back-dated", r.Code, r.Stdout, r.Stderr, id)
	}
	if body := httpGet(t, "http://"+d.metrics+"/metrics"); !strings.Contains(body, "classroute_audit_tampered_total 1") {
		t.Errorf("/metrics lacks classroute_audit_tampered_total 1")
	}
	d.stop()
	if logs := d.logs.String(); !strings.Contains(logs, "level=ERROR msg=\"state: audit tampering") {
		t.Errorf("no error logged")
	}
}
