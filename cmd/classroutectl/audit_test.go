package main_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	pb "github.com/classroute/classroute/proto/classroute/v1"
)

// TestAuditVerifyEndToEnd signs the chain with a key from audit keygen,
// verifies the log with its public half, tampers with etcd, and expects
// audit verify to exit 1 naming the entry.
func TestAuditVerifyEndToEnd(t *testing.T) {
	bin, err := binaries()
	if err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(t.TempDir(), "audit.pem")
	ctl := &env{t: t, ctl: filepath.Join(bin, "classroutectl"), server: "127.0.0.1:1", root: repoRoot(t)}
	if r := ctl.run("audit", "keygen", "--out", key); r.code != 0 {
		t.Fatalf("audit keygen: exit %d: %s", r.code, r.stderr)
	}
	e, etcdAddr := startDaemon(t, "--audit-key", key, "--audit-checkpoint-interval", "100ms")
	p := e.place("examples/aukus-secret.yaml", "--request-id", "audited-1")
	e.place("examples/kenya-health-records.yaml", "--request-id", "audited-2")

	var list pb.ListAuditResponse
	e.ok(&list, "audit", "list", "--workload", p.GetWorkload().GetName(), "--since", "1h")
	if n := len(list.GetEntries()); n != 1 || list.GetEntries()[0].GetRequestId() != "audited-1" || list.GetEntries()[0].GetOp() != "place" {
		t.Fatalf("audit list --workload: %v; want the one placement", list.GetEntries())
	}
	id := list.GetEntries()[0].GetId()

	deadline := time.Now().Add(20 * time.Second)
	for {
		r := e.run("audit", "verify", "--pubkey", key+".pub")
		if r.code == 0 && strings.Contains(r.stdout, "\nok\n") && strings.Contains(r.stdout, " 0 not yet chained") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("audit verify never clean: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		time.Sleep(200 * time.Millisecond)
	}

	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{etcdAddr}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	k := "/classroute/v1/audit/" + id
	resp, err := cli.Get(ctx, k)
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("get %s: %v", k, err)
	}
	v := strings.Replace(string(resp.Kvs[0].Value), "audited-1", "audited-X", 1)
	if _, err := cli.Put(ctx, k, v); err != nil {
		t.Fatal(err)
	}
	r := e.run("audit", "verify", "--pubkey", key+".pub")
	if r.code != 1 || !strings.Contains(r.stderr, "first bad entry #") || !strings.Contains(r.stderr, id+": entry altered") {
		t.Fatalf("audit verify after tampering: exit %d\n%s%s; want exit 1 naming %s", r.code, r.stdout, r.stderr, id)
	}
}
