package restore

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path"
	"path/filepath"

	"github.com/pebblestate/pebblestate/internal/parallel"
	"github.com/pebblestate/pebblestate/snapshot"
)

// Fetch brings the files of an incremental handle into dir, under their
// local names: hard-linked when the storage is a local directory on the
// same filesystem, copied otherwise. Every file's size and CRC-32C are
// checked against the handle; a mismatch or a missing file is an error
// naming it. Files are fetched by fetchWorkers goroutines at once.
func Fetch(ctx context.Context, st snapshot.Storage, h *snapshot.Handle, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	type job struct {
		ref snapshot.FileRef
		dst string
	}
	var jobs []job
	for _, f := range h.Shared {
		jobs = append(jobs, job{f.FileRef, filepath.Join(dir, f.LocalName)})
	}
	for _, f := range h.Files {
		jobs = append(jobs, job{f, filepath.Join(dir, path.Base(f.Name))})
	}
	return parallel.Do(ctx, len(jobs), fetchWorkers, func(ctx context.Context, i int) error {
		return fetchFile(ctx, st, jobs[i].ref, jobs[i].dst)
	})
}

// fetchWorkers is how many files Fetch brings in at once.
const fetchWorkers = 4

func fetchFile(ctx context.Context, st snapshot.Storage, ref snapshot.FileRef, dst string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if l, ok := st.(*snapshot.Local); ok {
		if err := os.Link(l.Path(ref.Name), dst); err == nil {
			return verify(dst, ref)
		} else if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("restore: %s: %w", ref.Name, err)
		}
		// Another filesystem, or links unsupported: copy.
	}
	src, err := st.Open(ctx, ref.Name)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	defer src.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	h := crc32.New(snapshot.Castagnoli)
	n, err := io.Copy(io.MultiWriter(out, h), io.NewSectionReader(src, 0, src.Size()))
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("restore: copy %s: %w", ref.Name, err)
	}
	return check(ref, n, h.Sum32())
}

// verify checksums a file already in place.
func verify(p string, ref snapshot.FileRef) error {
	f, err := os.Open(p)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	defer f.Close()
	h := crc32.New(snapshot.Castagnoli)
	n, err := io.Copy(h, f)
	if err != nil {
		return fmt.Errorf("restore: read %s: %w", ref.Name, err)
	}
	return check(ref, n, h.Sum32())
}

func check(ref snapshot.FileRef, size int64, crc uint32) error {
	if size != ref.Size {
		return fmt.Errorf("%w: %s: %d bytes, the handle says %d", snapshot.ErrCorrupt, ref.Name, size, ref.Size)
	}
	if crc != ref.CRC32C {
		return fmt.Errorf("%w: %s: checksum %08x, the handle says %08x", snapshot.ErrCorrupt, ref.Name, crc, ref.CRC32C)
	}
	return nil
}
