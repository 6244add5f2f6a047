package incremental

import (
	"maps"
	"sync"

	"github.com/pebblestate/pebblestate/snapshot"
)

// History is one backend instance's record of its incremental uploads:
// the SSTs each checkpoint since the last completed one uploaded or
// reused, by local name, and which of them the next checkpoint may reuse.
//
// As in Flink, only the last completed checkpoint's files are reused: a
// checkpoint that has not completed may yet be aborted and its uploads
// deleted, so nothing is built on it. A checkpoint becomes the base when
// Complete is called with its id (or a later one's: completing checkpoint
// 7 also completes every recorded checkpoint before it); Abort forgets a
// checkpoint's uploads.
//
// A History is safe for concurrent use.
type History struct {
	mu      sync.Mutex
	records map[int64]map[string]snapshot.SharedFile // by checkpoint, then local name
	base    int64                                    // the last completed checkpoint, or -1
}

// NewHistory returns an empty history: the next checkpoint uploads every
// SST.
func NewHistory() *History {
	return &History{records: make(map[int64]map[string]snapshot.SharedFile), base: -1}
}

// Reusable returns the uploads the next checkpoint may reuse instead of
// uploading again, by local name: the last completed checkpoint's. The
// caller must not modify the map.
func (h *History) Reusable() map[string]snapshot.SharedFile {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.records[h.base]
}

// Base returns the id of the last completed checkpoint whose uploads are
// reused, or -1 if there is none.
func (h *History) Base() int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.base
}

// Record notes the shared files of checkpoint id, uploaded or reused, once
// its upload finished.
func (h *History) Record(id int64, shared []snapshot.SharedFile) {
	m := make(map[string]snapshot.SharedFile, len(shared))
	for _, f := range shared {
		m[f.LocalName] = f
	}
	h.mu.Lock()
	h.records[id] = m
	h.mu.Unlock()
}

// Seed makes the shared files of a completed checkpoint the base, as a
// restore at the same key-group range does with the checkpoint it restored
// from: the instance's SSTs are those files, so its next checkpoint reuses
// them.
func (h *History) Seed(id int64, shared []snapshot.SharedFile) {
	h.Record(id, shared)
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
	maps.DeleteFunc(h.records, func(cid int64, _ map[string]snapshot.SharedFile) bool { return cid < id })
}

// Abort forgets checkpoint id's uploads: they are never reused.
func (h *History) Abort(id int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.records, id)
}
