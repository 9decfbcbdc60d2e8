package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// TestAPIDocCurrent fails when docs/api.md is not what the protos'
// comments generate.
func TestAPIDocCurrent(t *testing.T) {
	want, err := generate("../classroute/v1")
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("../../docs/api.md")
	if err != nil {
		t.Fatalf("%v: generate it with `%s`", err, Command)
	}
	if !bytes.Equal(got, want) {
		gl, wl := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
		i := 0
		for i < len(gl) && i < len(wl) && gl[i] == wl[i] {
			i++
		}
		var g, w string
		if i < len(gl) {
			g = gl[i]
		}
		if i < len(wl) {
			w = wl[i]
		}
		t.Fatalf("docs/api.md is out of date with proto/classroute/v1: regenerate it with `%s` (from the repository's root)\nfirst difference, line %d:\n  docs/api.md: %q\n  generated:   %q", Command, i+1, g, w)
	}
}

// sample exercises what the parser must read beyond today's protos.
const sample = `syntax = "proto3";

// Detached from the package: dropped.

package demo.v1;

import "google/protobuf/timestamp.proto";
option go_package = "example.com/demo;demov1";

// Svc does things.
service Svc {
  option deprecated = false;
  // Get gets.
  rpc Get(GetRequest) returns (Thing);
  rpc Follow(stream GetRequest) returns (stream Thing) {
    option idempotency_level = NO_SIDE_EFFECTS;
  }
}

/* GetRequest asks
 * for a thing. */
message GetRequest {
  string id = 1; // The thing's id.
  reserved 2, 3;
  reserved "old";
}

// Thing is a thing.
message Thing {
  // Kind is nested.
  enum Kind {
    KIND_UNSPECIFIED = 0;
    KIND_A = 1 [deprecated = true];
  }
  // Part is nested.
  message Part {
    Kind kind = 1;
  }

  // About the next field, detached.

  // Its parts.
  repeated Part parts = 1;
  map<string, Part> by_name = 2;
  oneof choice {
    string text = 3;
    .demo.v1.Thing.Part part = 4;
  }
  google.protobuf.Timestamp time = 5 [deprecated = true, json_name = "t"];
  optional int32 count = 6;
}
`

func TestParseSample(t *testing.T) {
	f, err := parse("demo.proto", sample)
	if err != nil {
		t.Fatal(err)
	}
	if f.pkg != "demo.v1" || len(f.services) != 1 || len(f.messages) != 2 {
		t.Fatalf("package %q, %d services, %d messages; want demo.v1, 1, 2", f.pkg, len(f.services), len(f.messages))
	}
	svc := f.services[0]
	if svc.doc != "Svc does things." || len(svc.methods) != 2 {
		t.Fatalf("service %+v", svc)
	}
	if m := svc.methods[1]; m.name != "Follow" || !m.clientStreaming || !m.serverStreams || m.in != "GetRequest" || m.out != "Thing" {
		t.Errorf("Follow: %+v", m)
	}
	if m := svc.methods[0]; m.doc != "Get gets." || m.clientStreaming || m.serverStreams {
		t.Errorf("Get: %+v", m)
	}
	req := f.messages[0]
	if req.doc != "GetRequest asks\nfor a thing." {
		t.Errorf("block comment %q", req.doc)
	}
	if len(req.fields) != 1 || req.fields[0].doc != "The thing's id." {
		t.Errorf("trailing comment: %+v", req.fields)
	}
	thing := f.messages[1]
	if len(thing.messages) != 1 || len(thing.enums) != 1 || thing.enums[0].fullName != "demo.v1.Thing.Kind" {
		t.Fatalf("nested: %d messages, %d enums", len(thing.messages), len(thing.enums))
	}
	if v := thing.enums[0].values[1]; v.name != "KIND_A" || !v.deprecated || v.number != "1" {
		t.Errorf("enum value %+v", v)
	}
	for _, tc := range []struct {
		i                                    int
		name, typ, mapKey, label, oneof, doc string
		deprecated                           bool
	}{
		{0, "parts", "Part", "", "repeated", "", "About the next field, detached.\n\nIts parts.", false},
		{1, "by_name", "Part", "string", "", "", "", false},
		{2, "text", "string", "", "", "choice", "", false},
		{3, "part", ".demo.v1.Thing.Part", "", "", "choice", "", false},
		{4, "time", "google.protobuf.Timestamp", "", "", "", "", true},
		{5, "count", "int32", "", "optional", "", "", false},
	} {
		f := thing.fields[tc.i]
		if f.name != tc.name || f.typ != tc.typ || f.mapKey != tc.mapKey || f.label != tc.label ||
			f.oneof != tc.oneof || f.doc != tc.doc || f.deprecated != tc.deprecated {
			t.Errorf("field %d: %+v; want %+v", tc.i, *f, tc)
		}
	}

	out := string(render([]*file{f}))
	for _, want := range []string{
		"| [`Follow`](#svcfollow) | stream [`GetRequest`](#demov1getrequest) | stream [`Thing`](#demov1thing) |",
		"| `parts` = 1 | repeated [`Part`](#demov1thingpart) | About the next field, detached. Its parts. |",
		"| `by_name` = 2 | map<`string`, [`Part`](#demov1thingpart)> |  |",
		"| `part` = 4 | [`Part`](#demov1thingpart) | One of `choice`. |",
		"| `kind` = 1 | [`Kind`](#demov1thingkind) |  |",
		"| `time` = 5 | [`google.protobuf.Timestamp`](https://protobuf.dev/reference/protobuf/google.protobuf/#timestamp) | Deprecated. |",
		"| `KIND_A` | 1 | Deprecated. |",
		"### `demo.v1.Thing.Part`",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("rendered reference lacks %q", want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ name, src, want string }{
		{"unterminated comment", "syntax = \"proto3\"; /* x", "unterminated comment"},
		{"missing semicolon", "package a.b\nmessage M {}", `want ";"`},
		{"unclosed message", "package a;\nmessage M { string x = 1;", "unexpected end of file"},
		{"field without number", "package a;\nmessage M { string x; }", `want "="`},
		{"editions", "edition = \"2023\";", "editions are not supported"},
	} {
		if _, err := parse("x.proto", tc.src); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v; want one containing %q", tc.name, err, tc.want)
		}
	}
}
