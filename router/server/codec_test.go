package server_test

import (
	"fmt"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	pb "github.com/classroute/classroute/proto/classroute/v1"
	"github.com/classroute/classroute/router/server"
)

// rawCodec sends a *[]byte as it is, and receives into one: a client
// that sends what no generated client would.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) { return *v.(*[]byte), nil }
func (rawCodec) Name() string                  { return "proto" }
func (rawCodec) Unmarshal(b []byte, v any) error {
	*v.(*[]byte) = append([]byte(nil), b...)
	return nil
}

// groups is n unknown groups, each inside the one before.
func groups(n int) []byte {
	var b []byte
	for range n {
		b = protowire.AppendTag(b, 99, protowire.StartGroupType)
	}
	for range n {
		b = protowire.AppendTag(b, 99, protowire.EndGroupType)
	}
	return b
}

// planWith is a PlanRequest for kenya() with extra appended to the
// workload's bytes.
func planWith(tb testing.TB, extra []byte) []byte {
	tb.Helper()
	w, err := proto.Marshal(kenya())
	if err != nil {
		tb.Fatal(err)
	}
	return protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), append(w, extra...))
}

// A request that does not decode is INVALID_ARGUMENT saying why, on
// unary and streaming methods alike, never INTERNAL; nothing is written,
// and the connection serves on.
func TestMalformedRequestInvalidArgument(t *testing.T) {
	e := newEnv(t)
	depth := fmt.Sprintf("nested more than %d levels deep", server.MaxMessageDepth)
	badName := protowire.AppendString(protowire.AppendTag(nil, 1, protowire.BytesType), "\xff\xfe")
	marker := protowire.AppendString(protowire.AppendTag(nil, protowire.MaxValidNumber, protowire.BytesType), "made up")
	tests := []struct {
		name   string
		method string
		body   []byte
		want   string
	}{
		{"100,000 nested groups", pb.PlacementService_Plan_FullMethodName, groups(100000), depth},
		{"nested groups inside the workload", pb.PlacementService_Plan_FullMethodName, planWith(t, groups(1000)), depth},
		{"one level beyond the limit", pb.PlacementService_Plan_FullMethodName, planWith(t, groups(server.MaxMessageDepth-1)), depth},
		{"a name that is not UTF-8", pb.PlacementService_Plan_FullMethodName,
			protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), badName), "UTF-8"},
		{"truncated", pb.PlacementService_Plan_FullMethodName, planWith(t, nil)[:10], "malformed request message"},
		{"the decode marker sent by a client", pb.PlacementService_Plan_FullMethodName, append(planWith(t, nil), marker...), "is reserved"},
		{"deep Watch (server stream)", pb.PlacementService_Watch_FullMethodName, groups(100000), depth},
		{"deep Connect (bidirectional)", pb.AgentService_Connect_FullMethodName, groups(100000), depth},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			check := e.unchanged(t)
			err := rawCall(t, e.conn, tt.method, tt.body)
			st := wantCode(t, err, codes.InvalidArgument)
			wantContains(t, "message", st.Message(), "malformed request message", tt.want)
			check()
			// The connection is fine.
			if _, err := e.place.Plan(ctx(t), &pb.PlanRequest{Workload: kenya()}); err != nil {
				t.Errorf("Plan after: %v", err)
			}
		})
	}

	// Nesting to the limit is fine: unknown groups are skipped.
	var resp []byte
	if err := e.conn.Invoke(ctx(t), pb.PlacementService_Plan_FullMethodName, ptr(planWith(t, groups(server.MaxMessageDepth-2))), &resp,
		grpc.ForceCodec(rawCodec{})); err != nil {
		t.Errorf("Plan nested %d deep: %v", server.MaxMessageDepth, err)
	}
}

func ptr[T any](v T) *T { return &v }

// rawCall sends body as the one request of method and returns how the
// call ended.
func rawCall(tb testing.TB, conn *grpc.ClientConn, method string, body []byte) error {
	tb.Helper()
	desc := &grpc.StreamDesc{ServerStreams: true, ClientStreams: method == pb.AgentService_Connect_FullMethodName}
	s, err := conn.NewStream(ctx(tb), desc, method, grpc.ForceCodec(rawCodec{}))
	if err != nil {
		return err
	}
	if err := s.SendMsg(&body); err != nil {
		return err
	}
	if err := s.CloseSend(); err != nil {
		return err
	}
	for {
		var resp []byte
		if err := s.RecvMsg(&resp); err != nil {
			return err
		}
	}
}

// MaxMessageDepth leaves room for every request the daemon serves: each
// registered method's request type nests no deeper than it, and none is
// recursive.
func TestMessageDepthFitsSchema(t *testing.T) {
	e := newEnv(t)
	for name, info := range e.grpc.GetServiceInfo() {
		sd, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(name))
		if err != nil {
			t.Errorf("service %s: %v", name, err)
			continue
		}
		for _, m := range info.Methods {
			md := sd.(protoreflect.ServiceDescriptor).Methods().ByName(protoreflect.Name(m.Name))
			in := md.Input()
			d, recursive := schemaDepth(in, nil)
			if recursive || d > server.MaxMessageDepth {
				t.Errorf("%s/%s: request %s nests %d deep (recursive %v); MaxMessageDepth is %d", name, m.Name, in.FullName(), d, recursive, server.MaxMessageDepth)
			}
		}
	}
}

// schemaDepth is how deeply a message of type md can nest, and whether
// it can nest without end.
func schemaDepth(md protoreflect.MessageDescriptor, path []protoreflect.FullName) (int, bool) {
	for _, p := range path {
		if p == md.FullName() {
			return 0, true
		}
	}
	path = append(path, md.FullName())
	deepest := 1
	fields := md.Fields()
	for i := range fields.Len() {
		sub := fields.Get(i).Message()
		if sub == nil {
			continue
		}
		d, rec := schemaDepth(sub, path)
		if rec {
			return 0, true
		}
		deepest = max(deepest, d+1)
	}
	return deepest, false
}

// The decode check keeps a status the codec never sees: a well-formed
// request still reaches its handler (here: the handler's own
// INVALID_ARGUMENT, naming the field).
func TestWellFormedRequestReachesHandler(t *testing.T) {
	e := newEnv(t)
	_, err := e.place.Plan(ctx(t), &pb.PlanRequest{})
	if st := status.Convert(err); st.Code() != codes.InvalidArgument || strings.Contains(st.Message(), "malformed") {
		t.Errorf("Plan with no workload: %v; want the handler's INVALID_ARGUMENT", err)
	}
}
