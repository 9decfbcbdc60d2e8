package main_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/classroute/classroute/cmd/cmdtest"
	pb "github.com/classroute/classroute/proto/classroute/v1"
	"github.com/classroute/classroute/router/etcdtest"
)

// TestAuditVerifyEndToEnd signs the chain with a key from audit keygen,
// verifies the log with its public half, tampers with etcd, and expects
// audit verify to exit 1 naming the entry.
func TestAuditVerifyEndToEnd(t *testing.T) {
	bin, err := cmdtest.Binaries()
	if err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(t.TempDir(), "audit.pem")
	ctl := &env{t: t, CLI: &cmdtest.CLI{T: t, Ctl: filepath.Join(bin, "classroutectl"), Server: "127.0.0.1:1", Root: cmdtest.RepoRoot()}}
	if r := ctl.Run("audit", "keygen", "--out", key); r.Code != 0 {
		t.Fatalf("audit keygen: exit %d: %s", r.Code, r.Stderr)
	}
	e, etcdAddr := startDaemon(t, "--audit-key", key, "--audit-checkpoint-interval", "100ms")
	p := e.Place("examples/aukus-secret.yaml", "--request-id", "audited-1")
	e.Place("examples/kenya-health-records.yaml", "--request-id", "audited-2")

	var list pb.ListAuditResponse
	e.OK(&list, "audit", "list", "--workload", p.GetWorkload().GetName(), "--since", "1h")
	if n := len(list.GetEntries()); n != 1 || list.GetEntries()[0].GetRequestId() != "audited-1" || list.GetEntries()[0].GetOp() != "place" {
		t.Fatalf("audit list --workload: %v; want the one placement", list.GetEntries())
	}
	id := list.GetEntries()[0].GetId()

	deadline := time.Now().Add(20 * time.Second)
	for {
		r := e.Run("audit", "verify", "--pubkey", key+".pub")
		if r.Code == 0 && strings.Contains(r.Stdout, "\nok\n") && strings.Contains(r.Stdout, " 0 not yet chained") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("audit verify never clean: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
		}
		time.Sleep(200 * time.Millisecond)
	}

	cli := etcdtest.Dial(t, etcdAddr)
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
	r := e.Run("audit", "verify", "--pubkey", key+".pub")
	if r.Code != 1 || !strings.Contains(r.Stderr, "first bad entry #") || !strings.Contains(r.Stderr, id+": entry altered") {
		t.Fatalf("audit verify after tampering: exit %d\n%s%s; want exit 1 naming %s", r.Code, r.Stdout, r.Stderr, id)
	}
}
