// Package spec reads workload specs: the YAML the CLI takes, with
// unknown fields refused. It owns the spec file format only; it imports
// router for the model and nothing that talks to the world (the CLI links
// it; router/deps_test.go keeps etcd and go-memdb out).
package spec

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"gopkg.in/yaml.v3"

	"github.com/classroute/classroute/router"
)

// MaxSize is the largest spec read: far beyond any real one, and well
// under the server's message limit.
const MaxSize = 1 << 20

// Parse reads one workload spec from data (source names it in errors).
// Unknown fields, a second document and specs over MaxSize are refused.
// It does not validate: router.ValidateWorkload does, as the server
// will.
func Parse(data []byte, source string) (*router.Workload, error) {
	if len(data) > MaxSize {
		return nil, fmt.Errorf("%s: %d bytes; a workload spec is at most %d", source, len(data), MaxSize)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var w router.Workload
	if err := dec.Decode(&w); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s: empty spec", source)
		}
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: one workload per spec: a second document follows", source)
	}
	return &w, nil
}
