package audit

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// ErrAnchorMismatch: an anchor already holds another head at a
// checkpoint's seq.
var ErrAnchorMismatch = errors.New("another head anchored at this seq")

// AnchorDir keeps signed checkpoints in a directory outside etcd (on
// another volume, shipped on to write-once storage), one file per
// checkpoint, checkpoint-<seq, 20 digits>.json, holding the Checkpoint's
// JSON. A file is written once, whole (a temporary file fsync'd, then
// linked into place, which fails rather than replace a file), and never
// rewritten or removed.
type AnchorDir string

const (
	anchorPrefix = "checkpoint-"
	anchorSuffix = ".json"
)

func (d AnchorDir) path(seq uint64) string {
	return filepath.Join(string(d), fmt.Sprintf("%s%020d%s", anchorPrefix, seq, anchorSuffix))
}

// Write keeps cp. An identical head already kept at cp.Seq is not
// written again; another fails with ErrAnchorMismatch.
func (d AnchorDir) Write(cp Checkpoint) error {
	name := d.path(cp.Seq)
	if err := d.same(name, cp); !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	b, err := json.Marshal(cp)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(string(d), "."+anchorPrefix+"*.tmp")
	if err != nil {
		return fmt.Errorf("anchor: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(append(b, '\n'))
	err = errors.Join(err, tmp.Chmod(0o444), tmp.Sync(), tmp.Close())
	if err != nil {
		return fmt.Errorf("anchor: %w", err)
	}
	if err := os.Link(tmp.Name(), name); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return d.same(name, cp) // another daemon's, meanwhile
		}
		return fmt.Errorf("anchor: %w", err)
	}
	dir, err := os.Open(string(d))
	if err != nil {
		return fmt.Errorf("anchor: %w", err)
	}
	return errors.Join(dir.Sync(), dir.Close())
}

// same reports whether the file name holds cp's head: nil when it does,
// fs.ErrNotExist when there is no such file.
func (d AnchorDir) same(name string, cp Checkpoint) error {
	old, err := readAnchor(name)
	switch {
	case err != nil:
		return err
	case old.Hash != cp.Hash:
		return fmt.Errorf("%w: %s holds head %s for #%d, the chain's is %s", ErrAnchorMismatch, name, old.Hash, cp.Seq, cp.Hash)
	}
	return nil
}

// Read returns every checkpoint kept, by seq. A file that should hold
// one and does not is an error: the anchor cannot be trusted whole.
func (d AnchorDir) Read() ([]Checkpoint, error) {
	seqs, err := d.seqs()
	if err != nil {
		return nil, err
	}
	out := make([]Checkpoint, 0, len(seqs))
	for _, seq := range seqs {
		cp, err := readAnchor(d.path(seq))
		if err != nil {
			return nil, err
		}
		out = append(out, *cp)
	}
	return out, nil
}

// Newest returns the checkpoint of highest seq kept (nil: none).
func (d AnchorDir) Newest() (*Checkpoint, error) {
	seqs, err := d.seqs()
	if err != nil || len(seqs) == 0 {
		return nil, err
	}
	return readAnchor(d.path(seqs[len(seqs)-1]))
}

// seqs lists the seqs of the checkpoint files, ascending.
func (d AnchorDir) seqs() ([]uint64, error) {
	ents, err := os.ReadDir(string(d)) // sorted by name: by seq
	if err != nil {
		return nil, fmt.Errorf("anchor: %w", err)
	}
	var out []uint64
	for _, e := range ents {
		n, ok := strings.CutPrefix(e.Name(), anchorPrefix)
		n, ok2 := strings.CutSuffix(n, anchorSuffix)
		if !ok || !ok2 || len(n) != 20 {
			continue // not a checkpoint: a temporary file, or the operator's
		}
		seq, err := strconv.ParseUint(n, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("anchor: %s: not a checkpoint file", e.Name())
		}
		out = append(out, seq)
	}
	return out, nil
}

func readAnchor(name string) (*Checkpoint, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	var cp Checkpoint
	if err := json.Unmarshal(b, &cp); err != nil {
		return nil, fmt.Errorf("anchor %s: %w", name, err)
	}
	if filepath.Base(name) != filepath.Base(AnchorDir("").path(cp.Seq)) {
		return nil, fmt.Errorf("anchor %s holds checkpoint #%d", name, cp.Seq)
	}
	return &cp, nil
}
