package restore

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"

	"github.com/cockroachdb/pebble/v2/objstorage/objstorageprovider"
	"github.com/cockroachdb/pebble/v2/sstable"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/pebblestate/pebblestate/internal/invariants"
	"github.com/pebblestate/pebblestate/internal/keygroup"
	"github.com/pebblestate/pebblestate/internal/keys"
	"github.com/pebblestate/pebblestate/snapshot"
	"github.com/pebblestate/pebblestate/snapshot/full"
)

// targetFileSize is the size at which an SST being built is finished and
// another started.
const targetFileSize = 64 << 20

// Target is the database a restore writes into.
type Target struct {
	// DB is the open database; it should be empty of state data.
	DB DB
	// StagingDir is where SSTs are built before ingestion; it should be on
	// the same filesystem as the database, so ingestion links, not copies.
	StagingDir string
	// KeyGroups are the key groups of the new instance.
	KeyGroups keygroup.Range
	// MaxParallelism is the operator's number of key groups.
	MaxParallelism int
	// StateID records a state of the checkpoint in the new instance and
	// returns the id its entries go under. It is called once per state name
	// and handle; it must fail for a state incompatible with one already
	// recorded.
	StateID func(snapshot.State) (uint16, error)
	// Base, if set, is the incremental handle the database was opened from;
	// it is not read again.
	Base *snapshot.Handle
	// Progress, if not nil, counts what the restore reads, as Totals
	// counts it: each file of an incremental handle once fetched, each
	// owned block of a full handle's data file once read, and the data
	// file once its blocks are.
	Progress *snapshot.ProgressTracker
	// Local, if not nil, is where incremental handles' files are taken
	// from before checkpoint storage (local recovery).
	Local *Local
}

// Stats describe a restore.
type Stats struct {
	Handles   int   // handles read
	KeyGroups int   // key-group blocks read
	Entries   int64 // entries restored
	Bytes     int64 // bytes of SSTs ingested
	// TablesIngested counts the tables of incremental handles ingested
	// whole, without rewriting their entries.
	TablesIngested int
	// Rewritten counts the entries of incremental handles that were read
	// and written into new SSTs instead: those of tables Pebble cannot
	// ingest as they are (see wholeTables).
	Rewritten int64
	// ReadFromTables counts the entries of Rewritten read straight from a
	// table's file rather than through the handle's database (see
	// directTable).
	ReadFromTables int64
}

// Handles restores into t.DB the key groups of t.KeyGroups that the
// handles (full or incremental; t.Base excepted) hold. Nothing is ingested
// until every handle has been read and verified. Under the invariants tag,
// it then asserts that t.DB holds no state entry outside t.KeyGroups.
func Handles(ctx context.Context, st snapshot.Storage, handles []snapshot.Handle, t Target) (Stats, error) {
	var stats Stats
	hs, err := intersecting(handles, t)
	if err != nil {
		return stats, err
	}
	if err := os.MkdirAll(t.StagingDir, 0o755); err != nil {
		return stats, fmt.Errorf("staging: %w", err)
	}
	b := &builder{t: t, runs: make(map[uint16]*run), syncSem: make(chan struct{}, syncWorkers)}
	defer b.abort()
	for _, h := range hs {
		if err := b.restoreHandle(ctx, st, h, &stats); err != nil {
			return stats, err
		}
		stats.Handles++
	}
	groups, size, err := b.finish()
	if err != nil {
		return stats, err
	}
	stats.Bytes = size
	if err := b.ingest(ctx, groups); err != nil {
		return stats, err
	}
	if invariants.Enabled {
		checkOwned(t.DB, t.KeyGroups, t.MaxParallelism)
	}
	return stats, nil
}

// intersecting returns the handles whose key groups meet the target's,
// sorted by key group, after checking they can be restored here.
func intersecting(handles []snapshot.Handle, t Target) ([]*snapshot.Handle, error) {
	var hs []*snapshot.Handle
	for i := range handles {
		h := &handles[i]
		if err := h.Validate(); err != nil {
			return nil, fmt.Errorf("%w: %v", snapshot.ErrCorrupt, err)
		}
		if h.MaxParallelism != t.MaxParallelism {
			return nil, fmt.Errorf("handle of %s has max parallelism %d, the new instance %d",
				h.InstanceID, h.MaxParallelism, t.MaxParallelism)
		}
		r := keygroup.Range{Start: h.KeyGroupStart, End: h.KeyGroupEnd}
		if !r.Intersect(t.KeyGroups).IsEmpty() {
			hs = append(hs, h)
		}
	}
	sort.Slice(hs, func(i, j int) bool { return hs[i].KeyGroupStart < hs[j].KeyGroupStart })
	for i := 1; i < len(hs); i++ {
		if hs[i].KeyGroupStart < hs[i-1].KeyGroupEnd {
			return nil, fmt.Errorf("handles of %s and %s overlap in key groups", hs[i-1].InstanceID, hs[i].InstanceID)
		}
	}
	if t.Base != nil {
		out := hs[:0]
		for _, h := range hs {
			if h.InstanceID != t.Base.InstanceID || h.KeyGroupStart != t.Base.KeyGroupStart {
				out = append(out, h)
			}
		}
		hs = out
	}
	return hs, nil
}

// builder writes one sorted run of SSTs per target state, and SSTs of
// spans of incremental handles copied in parallel (see copySpans).
type builder struct {
	t      Target
	mu     sync.Mutex      // guards seq and done while spans are copied
	runs   map[uint16]*run // by target state id
	cur    *run            // the run of the last entry added
	curID  uint16
	done   []sstFile // finished SSTs, and tables to ingest whole
	excise []span    // parts of whole tables to excise once ingested
	keybuf []byte
	seq    int // SSTs created, for their names

	syncs   sync.WaitGroup // background fsyncs of finished SSTs (syncLater)
	syncSem chan struct{}  // limits them to syncWorkers at once
	syncErr error          // the first that failed, under mu
}

// sstFile is an SST to ingest and its smallest and largest user keys.
type sstFile struct {
	path   string
	lo, hi []byte
}

// run is the sorted run of one state: its open SST, if any, with the first
// key written to it, and the last key added, which every next key must
// follow.
type run struct {
	w       *sstable.Writer
	path    string
	first   []byte
	last    []byte
	started bool
}

func (b *builder) restoreHandle(ctx context.Context, st snapshot.Storage, h *snapshot.Handle, stats *Stats) error {
	// No run may span two handles: an incremental handle's tables may be
	// ingested whole between them.
	if err := b.finishWriters(); err != nil {
		return err
	}
	ids := make(map[uint16]uint16, len(h.States))
	for _, s := range h.States {
		id, err := b.t.StateID(s)
		if err != nil {
			return fmt.Errorf("handle of %s: %w", h.InstanceID, err)
		}
		ids[s.ID] = id
	}
	if h.Kind == snapshot.KindIncremental {
		return b.addIncremental(ctx, st, h, ids, stats)
	}
	if len(h.Blocks) == 0 {
		b.t.Progress.Add(1, 0)
		return nil
	}
	if len(h.Files) != 1 {
		return fmt.Errorf("%w: handle of %s lists %d files, a full snapshot has one", snapshot.ErrCorrupt, h.InstanceID, len(h.Files))
	}
	ref := h.Files[0]
	f, err := st.Open(ctx, ref.Name)
	if err != nil {
		return err
	}
	defer f.Close()
	if f.Size() != ref.Size {
		return fmt.Errorf("%w: %s: %d bytes, the handle says %d", snapshot.ErrCorrupt, ref.Name, f.Size(), ref.Size)
	}
	br, err := full.NewBlockReader(f, ref.Name, f.Size(), h.Compression, h.MaxParallelism)
	if err != nil {
		return err
	}
	defer br.Close()
	width := keys.KeyGroupBytes(h.MaxParallelism)
	for _, blk := range h.Blocks {
		if !b.t.KeyGroups.Contains(blk.KeyGroup) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		where := fmt.Sprintf("%s: key group %d at offset %d", ref.Name, blk.KeyGroup, blk.Offset)
		err := br.Read(blk, func(sid uint16, key, value []byte) error {
			id, ok := ids[sid]
			if !ok {
				return fmt.Errorf("%w: %s: entry of state id %d, which the handle does not list", snapshot.ErrCorrupt, where, sid)
			}
			b.keybuf = keys.AppendKeyGroup(keys.AppendStateID(b.keybuf[:0], id), blk.KeyGroup, width)
			b.keybuf = append(b.keybuf, key...)
			if err := b.add(id, b.keybuf, value); err != nil {
				return fmt.Errorf("%w: %s: %v", snapshot.ErrCorrupt, where, err)
			}
			stats.Entries++
			return nil
		})
		if err != nil {
			return err
		}
		stats.KeyGroups++
		b.t.Progress.Add(0, blk.Length)
	}
	b.t.Progress.Add(1, 0)
	return nil
}

// add appends an entry to the run of state id.
func (b *builder) add(id uint16, key, value []byte) error {
	r := b.cur
	if r == nil || b.curID != id {
		if r = b.runs[id]; r == nil {
			r = &run{}
			b.runs[id] = r
		}
		b.cur, b.curID = r, id
	}
	return b.addKind(r, id, key, value, false)
}

// addKind appends an entry of state id to run r: a set of key to value,
// or, if merge, a merge operand.
func (b *builder) addKind(r *run, id uint16, key, value []byte, merge bool) error {
	if r.started && bytes.Compare(key, r.last) <= 0 {
		return fmt.Errorf("entries out of order: key %x after %x", key, r.last)
	}
	r.last, r.started = append(r.last[:0], key...), true
	if r.w == nil {
		if err := b.newWriter(id, r); err != nil {
			return err
		}
		r.first = append(r.first[:0], key...)
	}
	var err error
	if merge {
		err = r.w.Merge(key, value)
	} else {
		err = r.w.Set(key, value)
	}
	if err != nil {
		return err
	}
	if r.w.Raw().EstimatedSize() >= targetFileSize {
		return b.closeRun(r)
	}
	return nil
}

// newWriter opens a new SST for run r of state id.
func (b *builder) newWriter(id uint16, r *run) error {
	b.mu.Lock()
	b.seq++
	path := filepath.Join(b.t.StagingDir, fmt.Sprintf("restore-%05d-%06d.sst", id, b.seq))
	b.mu.Unlock()
	f, err := vfs.Default.Create(path, vfs.WriteCategoryUnspecified)
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	o := b.t.DB.Options()
	opts := o.MakeWriterOptions(6, o.FormatMajorVersion.MaxTableFormat())
	r.w, r.path = sstable.NewWriter(objstorageprovider.NewFileWritable(noSyncFile{f}), opts), path
	return nil
}

// noSyncFile is an SST being written, whose fsync is left to syncLater.
type noSyncFile struct{ vfs.File }

func (noSyncFile) Sync() error { return nil }

// syncWorkers is how many finished SSTs are fsynced at once.
const syncWorkers = 4

// syncLater fsyncs the finished SST at path in the background, so that
// its writer goes on with the next SST while the disk catches up (an
// fsync in the writer's own path left the CPU idle for about as long as
// the encoding took). finish waits for every sync: nothing is ingested
// before its bytes are on disk.
func (b *builder) syncLater(path string) {
	b.syncs.Add(1)
	go func() {
		defer b.syncs.Done()
		b.syncSem <- struct{}{}
		defer func() { <-b.syncSem }()
		if err := syncFile(path); err != nil {
			b.mu.Lock()
			if b.syncErr == nil {
				b.syncErr = fmt.Errorf("sync %s: %w", path, err)
			}
			b.mu.Unlock()
		}
	}()
}

// syncFile fsyncs the file at path.
func syncFile(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// waitSyncs waits for every background fsync and returns the first error.
func (b *builder) waitSyncs() error {
	b.syncs.Wait()
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.syncErr
}

// closeRun finishes the open SST of run r.
func (b *builder) closeRun(r *run) error {
	err := r.w.Close()
	r.w = nil
	if err != nil {
		return fmt.Errorf("finish %s: %w", r.path, err)
	}
	b.mu.Lock()
	b.done = append(b.done, sstFile{path: r.path, lo: bytes.Clone(r.first), hi: bytes.Clone(r.last)})
	b.mu.Unlock()
	b.syncLater(r.path)
	return nil
}

// finishWriters closes every open SST, so entries added next start new
// files.
func (b *builder) finishWriters() error {
	for _, r := range b.runs {
		if r.w != nil {
			if err := b.closeRun(r); err != nil {
				return err
			}
		}
	}
	return nil
}

// finish closes every writer and returns the SSTs in groups that can each
// be ingested in one step (no two files of a group overlap), and their
// total size. Usually there is one group; tables ingested whole, which may
// reach past the owned key groups, can overlap the files of other handles.
func (b *builder) finish() ([][]string, int64, error) {
	if err := b.finishWriters(); err != nil {
		return nil, 0, err
	}
	if err := b.waitSyncs(); err != nil {
		return nil, 0, err
	}
	sort.Slice(b.done, func(i, j int) bool { return bytes.Compare(b.done[i].lo, b.done[j].lo) < 0 })
	var groups [][]string
	var ends [][]byte // the largest key of each group so far
	var size int64
	for _, f := range b.done {
		fi, err := os.Stat(f.path)
		if err != nil {
			return nil, 0, err
		}
		size += fi.Size()
		g := 0
		for g < len(groups) && bytes.Compare(ends[g], f.lo) >= 0 {
			g++
		}
		if g == len(groups) {
			groups, ends = append(groups, nil), append(ends, nil)
		}
		groups[g], ends[g] = append(groups[g], f.path), f.hi
	}
	return groups, size, nil
}

// abort removes every SST not ingested (Ingest removes those it took),
// once no fsync is under way.
func (b *builder) abort() {
	_ = b.waitSyncs()
	for _, r := range b.runs {
		if r.w != nil {
			_ = r.w.Close()
			_ = os.Remove(r.path)
		}
	}
	for _, f := range b.done {
		_ = os.Remove(f.path)
	}
}
