package snapshot

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// Verify reads every file the handles of cp reference (data files, private
// files and shared SSTs) and checks its size and CRC-32C. It reports every
// bad or missing file, each named, joined in one error.
func Verify(ctx context.Context, st Storage, cp *Checkpoint) error {
	var errs []error
	seen := make(map[string]bool)
	check := func(ref FileRef) {
		if seen[ref.Name] {
			return
		}
		seen[ref.Name] = true
		if err := VerifyFile(ctx, st, ref); err != nil {
			errs = append(errs, err)
		}
	}
	for _, h := range cp.Handles {
		for _, f := range h.Files {
			check(f)
		}
		for _, f := range h.Shared {
			check(f.FileRef)
		}
	}
	return errors.Join(errs...)
}

// VerifyFile checks one file's size and CRC-32C.
func VerifyFile(ctx context.Context, st Storage, ref FileRef) error {
	f, err := st.Open(ctx, ref.Name)
	if err != nil {
		return err
	}
	defer f.Close()
	h := crc32.New(Castagnoli)
	n, err := io.Copy(h, io.NewSectionReader(f, 0, f.Size()))
	if err != nil {
		return fmt.Errorf("snapshot: read %s: %w", ref.Name, err)
	}
	if n != ref.Size {
		return fmt.Errorf("%w: %s: %d bytes, the handle says %d", ErrCorrupt, ref.Name, n, ref.Size)
	}
	if got := h.Sum32(); got != ref.CRC32C {
		return fmt.Errorf("%w: %s: checksum %08x, the handle says %08x", ErrCorrupt, ref.Name, got, ref.CRC32C)
	}
	return nil
}
