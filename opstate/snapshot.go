package opstate

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/pebblestate/pebblestate/snapshot"
)

// Snapshot is a State as it was when State.Snapshot was called, encoded:
// what a subtask hands the checkpoint coordinator at its barrier
// (checkpoint.SubtaskState.Operator). Later changes to the State do not
// reach it. Write stores it.
type Snapshot struct {
	maxParallelism, parallelism, index int
	data                               []byte
}

// Snapshot takes the synchronous part of a checkpoint of s: it encodes s,
// so it costs a copy of the state.
func (s *State) Snapshot() (*Snapshot, error) {
	data, err := Encode(s)
	if err != nil {
		return nil, err
	}
	return &Snapshot{maxParallelism: s.maxParallelism, parallelism: s.parallelism, index: s.index, data: data}, nil
}

// MaxParallelism, Parallelism and Index return those of the State it was
// taken of.
func (sn *Snapshot) MaxParallelism() int { return sn.maxParallelism }

// Parallelism returns the parallelism of the State it was taken of.
func (sn *Snapshot) Parallelism() int { return sn.parallelism }

// Index returns the subtask index of the State it was taken of.
func (sn *Snapshot) Index() int { return sn.index }

// Size returns the size of the file Write writes, in bytes.
func (sn *Snapshot) Size() int64 { return int64(len(sn.data)) }

// FileName returns the storage name of an operator state file of
// checkpoint id written by writer (32 lowercase hex digits):
// "chk-<id>/op-<writer>.dat".
func FileName(id int64, writer string) string {
	return snapshot.Dir(id) + "/op-" + writer + ".dat"
}

// Write stores the snapshot as operator state of subtask Index of
// operator for checkpoint id: one file in the checkpoint's directory,
// under a name no other writer takes (FileName with 128 bits drawn now),
// created and committed whole. It returns the reference to put into the
// checkpoint's metadata. On an error nothing is left in st.
func (sn *Snapshot) Write(ctx context.Context, st snapshot.Storage, id int64, operator string) (snapshot.OperatorStateRef, error) {
	var w [16]byte
	_, _ = rand.Read(w[:]) // never fails (crypto/rand)
	ref := snapshot.OperatorStateRef{
		Operator: operator, Subtask: sn.index, Parallelism: sn.parallelism, MaxParallelism: sn.maxParallelism,
		FileRef: snapshot.FileRef{
			Name:   FileName(id, hex.EncodeToString(w[:])),
			Size:   int64(len(sn.data)),
			CRC32C: crc32.Checksum(sn.data, snapshot.Castagnoli),
		},
	}
	if err := ctx.Err(); err != nil {
		return ref, fmt.Errorf("write operator state of %q subtask %d: %w", operator, sn.index, context.Cause(ctx))
	}
	f, err := st.Create(ctx, ref.Name)
	if err != nil {
		return ref, fmt.Errorf("write operator state of %q subtask %d: %w", operator, sn.index, err)
	}
	if _, err = f.Write(sn.data); err == nil {
		err = f.Commit()
	}
	if err != nil {
		return ref, errors.Join(fmt.Errorf("write operator state of %q subtask %d: %w", operator, sn.index, err), f.Abort())
	}
	return ref, nil
}

// Read reads and verifies the operator state file ref names: its size
// and CRC-32C against ref, then its own frame and body (Decode), and that
// it is the subtask ref says. Damage is snapshot.ErrCorrupt naming the
// file.
func Read(ctx context.Context, st snapshot.Storage, ref snapshot.OperatorStateRef) (*State, error) {
	f, err := st.Open(ctx, ref.Name)
	if err != nil {
		return nil, fmt.Errorf("operator state of %q subtask %d: %w", ref.Operator, ref.Subtask, err)
	}
	defer f.Close()
	if n := f.Size(); n != ref.Size {
		return nil, fmt.Errorf("%w: %s: %d bytes, the metadata says %d", snapshot.ErrCorrupt, ref.Name, n, ref.Size)
	}
	b := make([]byte, ref.Size)
	if _, err := f.ReadAt(b, 0); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read %s: %w", ref.Name, err)
	}
	if got := crc32.Checksum(b, snapshot.Castagnoli); got != ref.CRC32C {
		return nil, fmt.Errorf("%w: %s: checksum %08x, the metadata says %08x", snapshot.ErrCorrupt, ref.Name, got, ref.CRC32C)
	}
	s, err := Decode(ref.Name, b)
	if err != nil {
		return nil, err
	}
	if s.maxParallelism != ref.MaxParallelism || s.parallelism != ref.Parallelism || s.index != ref.Subtask {
		return nil, fmt.Errorf("%w: %s: holds subtask %d of %d at max parallelism %d, the metadata says subtask %d of %d at %d",
			snapshot.ErrCorrupt, ref.Name, s.index, s.parallelism, s.maxParallelism, ref.Subtask, ref.Parallelism, ref.MaxParallelism)
	}
	return s, nil
}
