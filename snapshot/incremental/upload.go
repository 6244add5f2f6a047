package incremental

import (
	"context"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/pebblestate/pebblestate/internal/parallel"
	"github.com/pebblestate/pebblestate/snapshot"
)

// DefaultWorkers is the default number of parallel uploads, as in Flink.
const DefaultWorkers = 4

// Upload is what an incremental snapshot uploaded.
type Upload struct {
	Private  []snapshot.FileRef    // private files, in the checkpoint's directory
	Shared   []snapshot.SharedFile // every SST of the checkpoint, new or reused
	New      []snapshot.SharedFile // the SSTs this checkpoint uploaded
	Uploaded int64                 // bytes uploaded: the checkpointed size
	Total    int64                 // bytes of all files: the full state size
}

// Request says what to upload.
type Request struct {
	// Dir is the native checkpoint directory.
	Dir string
	// CheckpointID is the checkpoint being taken.
	CheckpointID int64
	// WriterID is the writer's id (see SharedName): every name
	// the upload creates carries it.
	WriterID string
	// Previous maps local SST names to their uploads in the last completed
	// checkpoint; those are reused, not uploaded again.
	Previous map[string]snapshot.SharedFile
	// Workers is the number of parallel uploads. Default: 4.
	Workers int
	// Progress, if not nil, counts the files to upload and their bytes
	// as its totals, and each file once uploaded (from the goroutine that
	// uploaded it). Files reused from Previous are not counted.
	Progress *snapshot.ProgressTracker
}

// PrivateDir returns the directory in storage of a writer's private files
// for a checkpoint.
func PrivateDir(checkpointID int64, writerID string) string {
	return snapshot.Dir(checkpointID) + "/inc-" + writerID
}

type job struct {
	local  string // file name in Dir
	name   string // storage name
	shared bool
}

// Run uploads a native checkpoint directory. On error or cancellation it
// deletes what it uploaded; it never leaves a partial file.
func Run(ctx context.Context, st snapshot.Storage, req Request) (Upload, error) {
	entries, err := os.ReadDir(req.Dir)
	if err != nil {
		return Upload{}, fmt.Errorf("incremental: read %s: %w", req.Dir, err)
	}
	var up Upload
	var jobs []job
	for _, e := range entries {
		if e.IsDir() {
			return Upload{}, fmt.Errorf("incremental: unexpected directory %s in %s", e.Name(), req.Dir)
		}
		local := e.Name()
		if strings.HasSuffix(local, ".sst") {
			if prev, ok := req.Previous[local]; ok {
				up.Shared = append(up.Shared, prev)
				up.Total += prev.Size
				continue
			}
			jobs = append(jobs, job{local: local, name: snapshot.SharedName(req.WriterID, req.CheckpointID, local), shared: true})
			continue
		}
		jobs = append(jobs, job{local: local, name: PrivateDir(req.CheckpointID, req.WriterID) + "/" + local})
	}

	workers := req.Workers
	if workers <= 0 {
		workers = DefaultWorkers
	}
	if req.Progress != nil {
		var total int64
		for _, j := range jobs {
			if fi, err := os.Stat(filepath.Join(req.Dir, j.local)); err == nil {
				total += fi.Size()
			}
		}
		req.Progress.AddTotal(len(jobs), total)
	}
	refs := make([]snapshot.FileRef, len(jobs))
	err = parallel.Do(ctx, len(jobs), workers, func(ctx context.Context, i int) error {
		var err error
		refs[i], err = uploadFile(ctx, st, filepath.Join(req.Dir, jobs[i].local), jobs[i].name)
		if err == nil {
			req.Progress.Add(1, refs[i].Size)
		}
		return err
	})
	if err != nil {
		for i, r := range refs {
			if r.Name != "" {
				_ = st.Delete(context.Background(), jobs[i].name)
			}
		}
		return Upload{}, err
	}
	for i, j := range jobs {
		up.Total += refs[i].Size
		up.Uploaded += refs[i].Size
		if j.shared {
			sf := snapshot.SharedFile{FileRef: refs[i], LocalName: j.local}
			up.Shared = append(up.Shared, sf)
			up.New = append(up.New, sf)
		} else {
			up.Private = append(up.Private, refs[i])
		}
	}
	sort.Slice(up.Shared, func(i, j int) bool { return up.Shared[i].LocalName < up.Shared[j].LocalName })
	return up, nil
}

// uploadFile copies a local file into storage, checksumming it.
func uploadFile(ctx context.Context, st snapshot.Storage, path, name string) (snapshot.FileRef, error) {
	f, err := os.Open(path)
	if err != nil {
		return snapshot.FileRef{}, fmt.Errorf("incremental: %w", err)
	}
	defer f.Close()
	w, err := st.Create(ctx, name)
	if err != nil {
		return snapshot.FileRef{}, fmt.Errorf("incremental: upload %s: %w", name, err)
	}
	h := crc32.New(snapshot.Castagnoli)
	n, err := io.Copy(io.MultiWriter(w, h), &ctxReader{ctx: ctx, r: f})
	if err == nil {
		err = w.Commit()
	}
	if err != nil {
		_ = w.Abort()
		return snapshot.FileRef{}, fmt.Errorf("incremental: upload %s: %w", name, err)
	}
	return snapshot.FileRef{Name: name, Size: n, CRC32C: h.Sum32()}, nil
}

// ctxReader stops a copy when its context is cancelled.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
