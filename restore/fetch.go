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
	"sort"
	"sync"

	"github.com/cockroachdb/pebble/v2"

	"github.com/pebblestate/pebblestate/internal/parallel"
	"github.com/pebblestate/pebblestate/snapshot"
)

// Fetch brings the files of an incremental handle into dir, under their
// local names: hard-linked when the storage is a local directory on the
// same filesystem, copied otherwise. Every file's size and CRC-32C are
// checked against the handle; a mismatch or a missing file is an error
// naming it. Files are fetched by fetchWorkers goroutines at once.
func Fetch(ctx context.Context, st snapshot.Storage, h *snapshot.Handle, dir string) error {
	u, err := FetchUnverified(ctx, st, h, dir)
	if err != nil {
		return err
	}
	return u.Verify(ctx, nil)
}

// Unverified holds the SSTs FetchUnverified linked without reading them:
// their sizes are checked, their checksums not yet.
type Unverified struct {
	dir   string
	files map[string]snapshot.FileRef // by local name
}

// FetchUnverified brings the files of an incremental handle into dir as
// Fetch does, but checksums only the handle's private files (MANIFEST,
// OPTIONS, WAL) and the files it copies; the SSTs it hard-links get a size
// check only. Their checksums are left to Unverified.Verify, called once
// the database is open and the caller knows which tables it will use: a
// restore that excises half of a handle's key groups need not read the
// tables it drops. Open such a database without automatic compactions
// until Verify returns, so that no unverified table is rewritten into a
// new one first.
func FetchUnverified(ctx context.Context, st snapshot.Storage, h *snapshot.Handle, dir string) (*Unverified, error) {
	return FetchUnverifiedWith(ctx, st, h, dir, nil, nil)
}

// FetchUnverifiedWith is FetchUnverified, counting each file in progress
// (which may be nil) once it is fetched, and taking files from local, a
// local-recovery directory, where it has them (local may be nil: see
// Local.fetch).
func FetchUnverifiedWith(ctx context.Context, st snapshot.Storage, h *snapshot.Handle, dir string, progress *snapshot.ProgressTracker, local *Local) (*Unverified, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	type job struct {
		ref    snapshot.FileRef
		local  string
		shared bool
	}
	var jobs []job
	for _, f := range h.Shared {
		jobs = append(jobs, job{f.FileRef, f.LocalName, true})
	}
	for _, f := range h.Files {
		jobs = append(jobs, job{f, path.Base(f.Name), false})
	}
	deferred := make([]bool, len(jobs))
	err := parallel.Do(ctx, len(jobs), fetchWorkers, func(ctx context.Context, i int) error {
		j := jobs[i]
		dst := filepath.Join(dir, j.local)
		// A local copy is verified whole: nothing to defer.
		fromCopy, err := local.fetch(ctx, h, j.local, j.ref, dst)
		linked := false
		if !fromCopy && err == nil {
			linked, err = fetchFile(ctx, st, j.ref, dst)
		}
		if err == nil {
			progress.Add(1, j.ref.Size)
		}
		if err != nil || !linked {
			return err
		}
		if j.shared {
			deferred[i] = true
			return checkSize(filepath.Join(dir, j.local), j.ref)
		}
		return verify(filepath.Join(dir, j.local), j.ref)
	})
	if err != nil {
		return nil, err
	}
	u := &Unverified{dir: dir, files: make(map[string]snapshot.FileRef)}
	for i, j := range jobs {
		if deferred[i] {
			u.files[j.local] = j.ref
		}
	}
	return u, nil
}

// Verify checksums the SSTs still unverified for which need returns true
// (every one if need is nil), fetchWorkers at once. Files it verifies, or
// that need leaves out, are not verified again by a later call.
func (u *Unverified) Verify(ctx context.Context, need func(localName string) bool) error {
	var names []string
	for name := range u.files {
		if need == nil || need(name) {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	err := parallel.Do(ctx, len(names), fetchWorkers, func(ctx context.Context, i int) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		return verify(filepath.Join(u.dir, names[i]), u.files[names[i]])
	})
	if err != nil {
		return err
	}
	clear(u.files)
	return nil
}

// Blame returns err, unless one of the files still unverified is damaged:
// then the error naming it, since a read of an unverified table most
// likely failed on that damage. It returns nil if err is nil.
func (u *Unverified) Blame(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if verr := u.Verify(ctx, nil); verr != nil {
		return verr
	}
	return err
}

// tableFileName is the name in the database directory of the file that
// backs table t.
func tableFileName(t pebble.SSTableInfo) string { return fmt.Sprintf("%06d.sst", t.BackingSSTNum) }

// fetchWorkers is how many files Fetch brings in at once.
const fetchWorkers = 4

// fetchFile brings one file to dst: a hard link when the storage is local
// (linked is then true, and dst is not read), or a copy whose checksum is
// checked on the way.
func fetchFile(ctx context.Context, st snapshot.Storage, ref snapshot.FileRef, dst string) (linked bool, err error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	if l, ok := st.(*snapshot.Local); ok {
		if err := os.Link(l.Path(ref.Name), dst); err == nil {
			return true, nil
		} else if errors.Is(err, os.ErrNotExist) {
			var le *os.LinkError
			if errors.As(err, &le) {
				err = le.Err // name the missing file alone
			}
			return false, fmt.Errorf("%s: %w", l.Path(ref.Name), err)
		}
		// Another filesystem, or links unsupported: copy.
	}
	src, err := st.Open(ctx, ref.Name)
	if err != nil {
		return false, err
	}
	defer src.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return false, err
	}
	h := crc32.New(snapshot.Castagnoli)
	n, err := copyBuffered(io.MultiWriter(out, h), io.NewSectionReader(src, 0, src.Size()))
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return false, fmt.Errorf("copy %s: %w", ref.Name, err)
	}
	return false, check(ref, n, h.Sum32())
}

// verify checksums a file already in place.
func verify(p string, ref snapshot.FileRef) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	h := crc32.New(snapshot.Castagnoli)
	n, err := copyBuffered(h, f)
	if err != nil {
		return fmt.Errorf("read %s: %w", ref.Name, err)
	}
	return check(ref, n, h.Sum32())
}

// copyBuffered copies src to dst through a pooled buffer of copyBufferSize
// bytes, never through src's WriterTo, which for a file writes into any
// other writer through io.Copy's 32 KiB buffer: a restore reads every byte
// of its tables, and reads of 32 KiB measured up to twice as slow as reads
// of 256 KiB from the page cache (for tables Pebble wrote: 1.9-2.6 GB/s
// against 3.8-4.0 GB/s here), which is most of what a local restore costs.
func copyBuffered(dst io.Writer, src io.Reader) (int64, error) {
	buf := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(buf)
	return io.CopyBuffer(dst, struct{ io.Reader }{src}, *buf)
}

// copyBufferSize is the size of copyBuffered's reads.
const copyBufferSize = 256 << 10

var copyBuffers = sync.Pool{New: func() any { b := make([]byte, copyBufferSize); return &b }}

// checkSize compares a file's size with the handle's, without reading it.
func checkSize(p string, ref snapshot.FileRef) error {
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	if fi.Size() != ref.Size {
		return fmt.Errorf("%w: %s: %d bytes, the handle says %d", snapshot.ErrCorrupt, ref.Name, fi.Size(), ref.Size)
	}
	return nil
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
