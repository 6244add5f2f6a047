package incremental

import (
	"context"
	"errors"
	"maps"
	"slices"
	"sync"

	"github.com/pebblestate/pebblestate/snapshot"
)

// History is one backend instance's record of its incremental uploads:
// the SSTs each checkpoint since the last completed one uploaded or
// reused, by local name, the root they went to, and which of them the next
// checkpoint may reuse.
//
// As in Flink, only the last completed checkpoint's files are reused: a
// checkpoint that has not completed may yet be aborted and its uploads
// deleted, so nothing is built on it. A checkpoint becomes the base when
// Complete is called with its id (or a later one's: completing checkpoint
// 7 also completes every recorded checkpoint before it); Abort forgets a
// checkpoint's uploads. A file can only be reused by a checkpoint into the
// root it lives in: Reusable returns nothing for any other.
//
// A History is safe for concurrent use.
type History struct {
	mu      sync.Mutex
	records map[int64]record
	base    int64 // the last completed checkpoint, or -1
}

// record is what one checkpoint of the instance wrote or reused.
type record struct {
	root   snapshot.Storage
	files  []string                       // the handle's private files: they name the writer
	shared map[string]snapshot.SharedFile // by local name
}

// NewHistory returns an empty history: the next checkpoint uploads every
// SST.
func NewHistory() *History {
	return &History{records: make(map[int64]record), base: -1}
}

// Reusable returns the uploads a checkpoint into root may reuse instead of
// uploading again, by local name: the last completed checkpoint's, if it
// went to the same root (snapshot.SameRoot), else none. The caller must
// not modify the map.
func (h *History) Reusable(root snapshot.Storage) map[string]snapshot.SharedFile {
	h.mu.Lock()
	defer h.mu.Unlock()
	r, ok := h.records[h.base]
	if !ok || !snapshot.SameRoot(r.root, root) {
		return nil
	}
	return r.shared
}

// Base returns the id of the last completed checkpoint whose uploads are
// reused, or -1 if there is none.
func (h *History) Base() int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.base
}

// Record notes what the handle of checkpoint id, written into root,
// uploaded or reused, once its upload finished.
func (h *History) Record(id int64, root snapshot.Storage, hd snapshot.Handle) {
	r := record{root: root, shared: make(map[string]snapshot.SharedFile, len(hd.Shared))}
	for _, f := range hd.Shared {
		r.shared[f.LocalName] = f
	}
	for _, f := range hd.Files {
		r.files = append(r.files, f.Name)
	}
	slices.Sort(r.files)
	h.mu.Lock()
	h.records[id] = r
	h.mu.Unlock()
}

// Seed makes the handle of a completed checkpoint in root the base, as a
// restore that claims the checkpoint does (see backend.Claim): the
// instance's SSTs are that handle's files, so its next checkpoint into
// root reuses them.
func (h *History) Seed(id int64, root snapshot.Storage, hd snapshot.Handle) {
	h.Record(id, root, hd)
	h.Complete(id)
}

// Complete promotes checkpoint id, if recorded and newer than the base, to
// be the base the next checkpoint reuses from, and forgets every older
// record. A completion of an id not recorded (a full checkpoint, or one
// this instance took no part in) changes nothing.
func (h *History) Complete(id int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.records[id]; !ok || id <= h.base {
		return
	}
	h.base = id
	maps.DeleteFunc(h.records, func(cid int64, _ record) bool { return cid < id })
}

// Abort forgets checkpoint id's uploads: they are never reused.
func (h *History) Abort(id int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.records, id)
}

// Committed looks in root for the recorded checkpoints newer than the base
// that were written into root, newest first, and returns the id of the
// first whose metadata is committed and holds this history's handle (the
// same private and shared files), or -1 if there is none. A caller that
// missed a completion notification calls Complete with it, so its next
// checkpoint builds on what storage holds instead of uploading everything
// again. Metadata that does not load (damaged, or deleted meanwhile) does
// not count; an error listing or reading root is returned.
func (h *History) Committed(ctx context.Context, root snapshot.Storage) (int64, error) {
	h.mu.Lock()
	var cands []int64
	for id, r := range h.records {
		if id > h.base && snapshot.SameRoot(r.root, root) {
			cands = append(cands, id)
		}
	}
	recs := maps.Clone(h.records)
	h.mu.Unlock()
	if len(cands) == 0 {
		return -1, nil
	}
	done, err := snapshot.Completed(ctx, root)
	if err != nil {
		return -1, err
	}
	slices.Sort(cands)
	for _, id := range slices.Backward(cands) {
		if _, ok := slices.BinarySearch(done, id); !ok {
			continue
		}
		cp, err := snapshot.Load(ctx, root, id)
		if errors.Is(err, snapshot.ErrCorrupt) || errors.Is(err, snapshot.ErrNotExist) {
			continue
		}
		if err != nil {
			return -1, err
		}
		for _, hd := range cp.Handles {
			if recs[id].holds(hd) {
				return id, nil
			}
		}
	}
	return -1, nil
}

// holds reports whether hd is the handle r was recorded from: the same
// private files (whose names carry the writer id and the checkpoint id)
// and the same shared files.
func (r record) holds(hd snapshot.Handle) bool {
	if len(r.files) == 0 || len(hd.Files) != len(r.files) || len(hd.Shared) != len(r.shared) {
		return false
	}
	names := make([]string, len(hd.Files))
	for i, f := range hd.Files {
		names[i] = f.Name
	}
	slices.Sort(names)
	if !slices.Equal(names, r.files) {
		return false
	}
	for _, f := range hd.Shared {
		if r.shared[f.LocalName].Name != f.Name {
			return false
		}
	}
	return true
}
