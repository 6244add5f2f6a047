package snapshot

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// Verify checks checkpoint cp: first its metadata's invariants
// (Checkpoint.Validate: safe names, coverage, one checkpoint id), without
// reading anything if they fail (ErrCorrupt); then it reads every file the
// checkpoint references (data files, private files, shared SSTs and
// operator state files) and checks
// its size and CRC-32C. It reports every bad or missing file, each named
// once, joined in one error.
func Verify(ctx context.Context, st Storage, cp *Checkpoint) error {
	if cp == nil {
		return errors.New("verify: no checkpoint")
	}
	if err := cp.Validate(); err != nil {
		return fmt.Errorf("%w: checkpoint %d: %w", ErrCorrupt, cp.ID, err)
	}
	var errs []error
	for _, ref := range Files(cp) {
		if err := VerifyFile(ctx, st, ref); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Files returns every file cp references, each once: in the order of the
// handles, their data and private files, then shared files; then the
// operator state files.
func Files(cp *Checkpoint) []FileRef {
	var refs []FileRef
	seen := make(map[string]bool)
	add := func(ref FileRef) {
		if !seen[ref.Name] {
			seen[ref.Name] = true
			refs = append(refs, ref)
		}
	}
	for _, h := range cp.Handles {
		for _, f := range h.Files {
			add(f)
		}
		for _, f := range h.Shared {
			add(f.FileRef)
		}
	}
	for _, r := range cp.OperatorStates {
		add(r.FileRef)
	}
	return refs
}

// VerifyFile checks one file's size and CRC-32C. The name must be safe
// (CheckName); storage refuses others.
func VerifyFile(ctx context.Context, st Storage, ref FileRef) error {
	f, err := st.Open(ctx, ref.Name)
	if err != nil {
		return err
	}
	defer f.Close()
	h := crc32.New(Castagnoli)
	n, err := io.Copy(h, io.NewSectionReader(f, 0, f.Size()))
	if err != nil {
		return fmt.Errorf("read %s: %w", where(st, ref.Name), err)
	}
	if n != ref.Size {
		return fmt.Errorf("%w: %s: %d bytes, the handle says %d", ErrCorrupt, where(st, ref.Name), n, ref.Size)
	}
	if got := h.Sum32(); got != ref.CRC32C {
		return fmt.Errorf("%w: %s: checksum %08x, the handle says %08x", ErrCorrupt, where(st, ref.Name), got, ref.CRC32C)
	}
	return nil
}
