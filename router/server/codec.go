package server

import (
	"context"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	grpcproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// MaxMessageDepth is how deeply a request may nest messages and groups.
// The API's deepest request nests a handful; TestMessageDepthFitsSchema
// holds this to every registered method's request type.
const MaxMessageDepth = 32

// A request that does not decode (malformed wire data, a string that is
// not UTF-8, messages or groups nested beyond MaxMessageDepth) is the
// caller's mistake: INVALID_ARGUMENT, saying why.
//
// grpc-go maps any error of a codec's Unmarshal to INTERNAL (recv in its
// rpc_util.go keeps only the text), and runs no interceptor for a unary
// call whose request did not decode. So decodeCodec's Unmarshal does not
// fail: it empties the message and leaves in its unknown fields one
// marker field (decodeErrorField) carrying the reason. checkDecoded,
// first of the unary interceptors and on every RecvMsg of a stream,
// finds the marker and refuses the call before anything else looks at
// the request. The marker lives and dies with the message, so a request
// that never reaches the check (grpc-go refusing a second message on a
// unary call) leaves nothing behind. A client sending that field itself
// is refused the same way.
//
// Marshalling is grpc-go's own proto codec.
type decodeCodec struct{ marshal encoding.CodecV2 }

// decodeErrorField is the field number of the marker: the largest a
// field may have, which no classroute message uses.
const decodeErrorField protowire.Number = protowire.MaxValidNumber

func newDecodeCodec() *decodeCodec {
	return &decodeCodec{marshal: encoding.GetCodecV2(grpcproto.Name)}
}

func (c *decodeCodec) Name() string { return grpcproto.Name }

func (c *decodeCodec) Marshal(v any) (mem.BufferSlice, error) { return c.marshal.Marshal(v) }

func (c *decodeCodec) Unmarshal(data mem.BufferSlice, v any) error {
	m, ok := v.(proto.Message)
	if !ok {
		return fmt.Errorf("cannot decode into %T: not a protobuf message", v)
	}
	buf := data.MaterializeToBuffer(mem.DefaultBufferPool())
	defer buf.Free()
	b := buf.ReadOnlyData()
	var why string
	if err := checkNesting(m.ProtoReflect().Descriptor(), b, MaxMessageDepth); err != nil {
		why = err.Error()
	} else if err := (proto.UnmarshalOptions{RecursionLimit: MaxMessageDepth}).Unmarshal(b, m); err != nil {
		why = err.Error()
	} else if _, forged := decodeError(m); forged {
		why = fmt.Sprintf("field %d is reserved", decodeErrorField)
	} else {
		return nil
	}
	proto.Reset(m)
	r := m.ProtoReflect()
	r.SetUnknown(protowire.AppendString(protowire.AppendTag(nil, decodeErrorField, protowire.BytesType), clip(why, maxDescriptionBytes)))
	return nil
}

// decodeError returns the reason decodeCodec left in m, if it left one.
func decodeError(m proto.Message) (string, bool) {
	u := m.ProtoReflect().GetUnknown()
	for len(u) > 0 {
		num, typ, n := protowire.ConsumeTag(u)
		if n < 0 {
			return "", false
		}
		u = u[n:]
		if num == decodeErrorField && typ == protowire.BytesType {
			why, n := protowire.ConsumeString(u)
			return why, n >= 0
		}
		if n = protowire.ConsumeFieldValue(num, typ, u); n < 0 {
			return "", false
		}
		u = u[n:]
	}
	return "", false
}

// checkDecoded refuses a request decodeCodec could not decode.
func checkDecoded(req any) error {
	m, ok := req.(proto.Message)
	if !ok || len(m.ProtoReflect().GetUnknown()) == 0 {
		return nil
	}
	if why, bad := decodeError(m); bad {
		return status.Errorf(codes.InvalidArgument, "malformed request message: %s", why)
	}
	return nil
}

func decodeUnaryInterceptor(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	if err := checkDecoded(req); err != nil {
		return nil, err
	}
	return h(ctx, req)
}

func decodeStreamInterceptor(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	return h(srv, decodedStream{ss})
}

// decodedStream checks every message its stream receives.
type decodedStream struct{ grpc.ServerStream }

func (s decodedStream) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	return checkDecoded(m)
}

// checkNesting refuses wire data b of a message of type md that nests
// messages or groups, known fields or unknown, more than limit deep. It
// leaves malformed data for proto.Unmarshal to report, and never
// recurses more than limit deep itself.
func checkNesting(md protoreflect.MessageDescriptor, b []byte, limit int) error {
	_, err := nesting(md, b, 1, limit, 0)
	return err
}

// nesting scans the fields of one message or group at depth, until b
// ends or, in a group, its end tag (endGroup, 0 for a message); it
// returns the bytes consumed.
func nesting(md protoreflect.MessageDescriptor, b []byte, depth, limit int, endGroup protowire.Number) (int, error) {
	if depth > limit {
		return 0, fmt.Errorf("nested more than %d levels deep", limit)
	}
	start := len(b)
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return 0, nil
		}
		b = b[n:]
		var fd protoreflect.FieldDescriptor
		if md != nil {
			fd = md.Fields().ByNumber(num)
		}
		var sub protoreflect.MessageDescriptor
		if fd != nil && (fd.Kind() == protoreflect.MessageKind || fd.Kind() == protoreflect.GroupKind) {
			sub = fd.Message()
		}
		switch typ {
		case protowire.EndGroupType:
			if num == endGroup {
				return start - len(b), nil
			}
			return 0, nil // unbalanced: malformed
		case protowire.StartGroupType:
			n, err := nesting(sub, b, depth+1, limit, num)
			if err != nil || n == 0 {
				return 0, err
			}
			b = b[n:]
			continue
		case protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return 0, nil
			}
			if sub != nil {
				if _, err := nesting(sub, v, depth+1, limit, 0); err != nil {
					return 0, err
				}
			}
			b = b[n:]
			continue
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return 0, nil
		}
		b = b[n:]
	}
	if endGroup != 0 {
		return 0, nil // a group without its end: malformed
	}
	return start - len(b), nil
}
