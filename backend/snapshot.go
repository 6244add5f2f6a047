package backend

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/pebblestate/pebblestate/internal/meta"
	"github.com/pebblestate/pebblestate/internal/store"
	"github.com/pebblestate/pebblestate/snapshot"
	"github.com/pebblestate/pebblestate/snapshot/full"
	"github.com/pebblestate/pebblestate/snapshot/incremental"
	"github.com/pebblestate/pebblestate/snapshot/retention"
	"github.com/pebblestate/pebblestate/ttl"
)

// AsyncSnapshot is a snapshot whose synchronous part is done: it holds a
// point-in-time view of every state. Run writes it out; state access may
// continue meanwhile and is not reflected in it.
//
// Its resources (the Pebble snapshot, and on failure the files it wrote)
// are released exactly once: when Run returns, whether it succeeded, failed
// or was cancelled, or by Release if Run is never called, or by the
// backend's Close, which cancels it.
type AsyncSnapshot struct {
	b            *snapshotOwner
	checkpointID int64
	storage      snapshot.Storage
	states       []meta.State

	// A full snapshot reads snap; an incremental one uploads the native
	// checkpoint in localDir, reusing the uploads of the last completed
	// checkpoint in the same root (the backend's incremental.History).
	snap     *pebble.Snapshot
	localDir string
	workers  int

	targets []ttl.Target
	now     int64
	handle  snapshot.Handle

	syncDuration time.Duration
	progress     func(int64, snapshot.Progress) // Options.CheckpointProgress
	stats        *CheckpointStats               // set when Run succeeded

	mu       sync.Mutex
	released bool
	running  bool
	cancel   context.CancelFunc
	done     chan struct{}
}

// snapshotOwner is the part of a backend its snapshots need; it is not
// generic, so AsyncSnapshot is not either.
type snapshotOwner struct {
	// writer is this backend's writer id, drawn when it was opened or
	// restored: every file a snapshot writes carries it in its name.
	writer  string
	mu      sync.Mutex
	running map[*AsyncSnapshot]bool
	// pending lists the files written for each checkpoint not yet
	// completed, to delete if it is aborted.
	pending map[int64][]string
	// history records incremental uploads: which the next checkpoint
	// reuses, promoted on completion, forgotten on abort.
	history *incremental.History
	// counters are the checkpoint metrics, under mu.
	counters checkpointCounters
	// local keeps the local copies of incremental checkpoints.
	local *localCopies
}

func newSnapshotOwner(local *localCopies) *snapshotOwner {
	var id [16]byte
	_, _ = rand.Read(id[:]) // never fails (crypto/rand)
	return &snapshotOwner{
		writer:   hex.EncodeToString(id[:]),
		running:  make(map[*AsyncSnapshot]bool),
		pending:  make(map[int64][]string),
		history:  incremental.NewHistory(),
		counters: checkpointCounters{m: CheckpointMetrics{LastCompletedID: -1}},
		local:    local,
	}
}

// WriterID returns the id this backend writes checkpoint files under:
// 128 random bits in hex, drawn afresh by every Open and Restore. Unlike
// the instance id, which a restore at the same key groups keeps, no two
// backends share it, so no two write the same name into a checkpoint root
// (see snapshot.SharedName).
func (b *Backend[K]) WriterID() string { return b.snaps.writer }

// Snapshot takes the synchronous part of a snapshot for checkpoint
// checkpointID into storage st, and returns it for Run to write (on any
// goroutine) while state access goes on.
//
// For a full snapshot it pins a Pebble snapshot and copies the state
// metadata: microseconds, whatever the state size. For an incremental one
// (Options.IncrementalCheckpoints) it flushes the memtable and takes a
// native Pebble checkpoint of hard links in the instance directory: time
// grows with the unflushed data and the number of files, not the state
// size.
func (b *Backend[K]) Snapshot(checkpointID int64, st snapshot.Storage) (*AsyncSnapshot, error) {
	return b.snapshot(context.Background(), checkpointID, st)
}

// snapshot is Snapshot, with ctx bounding the flush of an incremental one
// (which otherwise ends at its first failed attempt).
func (b *Backend[K]) snapshot(ctx context.Context, checkpointID int64, st snapshot.Storage) (*AsyncSnapshot, error) {
	if b.closed.Load() {
		return nil, ErrClosed
	}
	if checkpointID < 0 || st == nil {
		return nil, fmt.Errorf("%w: checkpoint id %d, storage %v", ErrInvalidArgument, checkpointID, st)
	}
	if b.snaps.taken(checkpointID) {
		return nil, fmt.Errorf("%w: snapshot %d was already taken and is not yet completed or aborted", ErrInvalidArgument, checkpointID)
	}
	began := time.Now()
	states := b.st.States()
	s := &AsyncSnapshot{
		b:            b.snaps,
		checkpointID: checkpointID,
		storage:      st,
		states:       states,
		targets:      append([]ttl.Target(nil), b.snapshotTargets...),
		now:          ttl.Millis(b.opts.Clock.Now()),
		workers:      b.opts.UploadWorkers,
		progress:     b.opts.CheckpointProgress,
		done:         make(chan struct{}),
	}
	s.handle = snapshot.Handle{
		Operator:       b.opts.Operator,
		InstanceID:     b.st.Record().InstanceID,
		CheckpointID:   checkpointID,
		Kind:           snapshot.KindFull,
		MaxParallelism: b.opts.MaxParallelism,
		KeyGroupStart:  b.opts.KeyGroups.Start,
		KeyGroupEnd:    b.opts.KeyGroups.End,
		KeyCodec:       b.keyCodec.Name(),
		States:         meta.ToSnapshotStates(states),

		KeyGroupAssigner: b.opts.KeyGroupAssigner.Recorded(),
	}
	if b.opts.IncrementalCheckpoints {
		s.handle.Kind = snapshot.KindIncremental
		s.localDir = filepath.Join(b.opts.Dir, localCheckpointsDir, snapshot.Dir(checkpointID))
		if err := os.RemoveAll(s.localDir); err != nil {
			return nil, fmt.Errorf("backend: snapshot %d: %w", checkpointID, err)
		}
		// The WAL may be off: what is only in the memtable must reach an
		// SST to be in the checkpoint.
		if err := b.st.Flush(ctx); err != nil {
			return nil, fmt.Errorf("backend: snapshot %d: %w", checkpointID, err)
		}
		if err := b.st.Checkpoint(s.localDir); err != nil {
			_ = os.RemoveAll(s.localDir)
			return nil, fmt.Errorf("backend: snapshot %d: native checkpoint: %w", checkpointID, err)
		}
	} else {
		s.handle.Compression = b.opts.SnapshotCompression
		s.snap = b.st.NewSnapshot()
	}
	b.snaps.mu.Lock()
	b.snaps.running[s] = true
	b.snaps.mu.Unlock()
	s.syncDuration = time.Since(began)
	b.snaps.tookSnapshot(s.syncDuration)
	return s, nil
}

// localCheckpointsDir is the subdirectory of the instance directory that
// holds native checkpoints while they are uploaded. Pebble ignores it.
const localCheckpointsDir = store.ScratchDir

// dataFileName is the storage name of a writer's full-snapshot data.
func dataFileName(checkpointID int64, writerID string) string {
	return snapshot.Dir(checkpointID) + "/full-" + writerID + ".dat"
}

// Run writes the snapshot and returns the instance's handle, to be
// committed with the other instances' handles (retention.Complete). It can
// be called once. Cancelling ctx stops it; it then leaves no files behind.
// Options.CheckpointProgress, if set, is called as it goes; Stats reports
// it once it returned.
func (s *AsyncSnapshot) Run(ctx context.Context) (snapshot.Handle, error) {
	s.mu.Lock()
	if s.released || s.running {
		s.mu.Unlock()
		return snapshot.Handle{}, errors.New("backend: snapshot already run or released")
	}
	s.running = true
	ctx, s.cancel = context.WithCancel(ctx)
	cancel := s.cancel
	s.mu.Unlock()
	defer cancel()
	defer close(s.done)
	defer s.finish()

	began := time.Now()
	if err := checkNewCheckpoint(ctx, s.storage, s.checkpointID); err != nil {
		s.b.ranSnapshot(nil)
		return snapshot.Handle{}, err
	}
	var tracker *snapshot.ProgressTracker
	if s.progress != nil {
		id, fn := s.checkpointID, s.progress
		tracker = snapshot.NewProgressTracker(func(p snapshot.Progress) { fn(id, p) })
	}
	var h snapshot.Handle
	var written []string
	var err error
	if s.localDir != "" {
		h, written, err = s.runIncremental(ctx, tracker)
	} else {
		h, written, err = s.runFull(ctx, tracker)
	}
	if err != nil {
		s.b.ranSnapshot(nil)
		return snapshot.Handle{}, fmt.Errorf("backend: snapshot %d: %w", s.checkpointID, err)
	}
	tracker.Finish()
	uploaded := len(written)
	if h.Kind == snapshot.KindFull {
		uploaded = len(h.Files)
	}
	stats := snapshotStats(h, s.syncDuration, time.Since(began), uploaded)
	s.mu.Lock()
	s.stats = stats
	s.mu.Unlock()
	s.b.ranSnapshot(stats)
	s.b.mu.Lock()
	s.b.pending[s.checkpointID] = written
	s.b.mu.Unlock()
	if h.Kind == snapshot.KindIncremental {
		s.b.history.Record(s.checkpointID, s.storage, h)
		s.b.local.keep(s.storage, h.InstanceID, s.checkpointID, s.localDir)
	}
	return h, nil
}

// checkNewCheckpoint refuses to write files for a checkpoint id that is
// already completed or older than the newest completed one: they would
// overwrite a completed checkpoint's files, or could never commit.
func checkNewCheckpoint(ctx context.Context, st snapshot.Storage, id int64) error {
	ids, err := snapshot.Completed(ctx, st)
	if err != nil {
		return fmt.Errorf("backend: snapshot %d: %w", id, err)
	}
	if n := len(ids); n > 0 && ids[n-1] >= id {
		return fmt.Errorf("%w: backend: snapshot %d: checkpoint %d is already completed", snapshot.ErrSubsumed, id, ids[n-1])
	}
	return nil
}

// Stats returns the snapshot's figures once Run succeeded, and false
// before or if it failed.
func (s *AsyncSnapshot) Stats() (CheckpointStats, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stats == nil {
		return CheckpointStats{}, false
	}
	return *s.stats, true
}

// runFull writes the full-snapshot data file. Its progress counts one
// file, of a size known only at the end, and the bytes of each key
// group's block as it is written.
func (s *AsyncSnapshot) runFull(ctx context.Context, tracker *snapshot.ProgressTracker) (snapshot.Handle, []string, error) {
	comp, err := full.ParseCompression(s.handle.Compression)
	if err != nil {
		return snapshot.Handle{}, nil, err
	}
	ids := make([]uint16, len(s.states))
	for i, m := range s.states {
		ids[i] = m.ID
	}
	var filter *ttl.EntryFilter
	if len(s.targets) > 0 {
		filter = ttl.NewEntryFilter(s.targets, s.now)
	}
	name := dataFileName(s.checkpointID, s.b.writer)
	w, err := s.storage.Create(ctx, name)
	if err != nil {
		return snapshot.Handle{}, nil, err
	}
	res, err := full.Write(ctx, s.snap, w, full.WriteOptions{
		StateIDs:       ids,
		KeyGroups:      KeyGroupRange{Start: s.handle.KeyGroupStart, End: s.handle.KeyGroupEnd},
		MaxParallelism: s.handle.MaxParallelism,
		Compression:    comp,
		Filter:         filter,
		Progress:       progressOf(tracker),
	})
	if err == nil {
		err = ctx.Err()
	}
	if err == nil {
		err = w.Commit()
	}
	if err != nil {
		_ = w.Abort()
		// A name that exists is another writer's committed file: never
		// delete it. Anything else of ours that may be left goes.
		if !errors.Is(err, snapshot.ErrExist) {
			_ = s.storage.Delete(context.Background(), name) // and the chk directory, if empty
		}
		return snapshot.Handle{}, nil, err
	}
	tracker.Add(1, 0)
	h := s.handle
	h.Files = []snapshot.FileRef{{Name: name, Size: res.Size, CRC32C: res.CRC32C}}
	h.Blocks = res.Blocks
	h.StateSize, h.CheckpointedSize = res.Size, res.Size
	return h, []string{name}, nil
}

// runIncremental uploads the native checkpoint, reusing the uploads of
// the last completed checkpoint in the same root that are still there. A
// checkpoint of this backend that storage shows committed although no
// notification said so counts as completed: forgetting
// NotifyCheckpointComplete must not turn every checkpoint into a full
// upload.
func (s *AsyncSnapshot) runIncremental(ctx context.Context, tracker *snapshot.ProgressTracker) (snapshot.Handle, []string, error) {
	id, err := s.b.history.Committed(ctx, s.storage)
	if err != nil {
		return snapshot.Handle{}, nil, err
	}
	if id >= 0 {
		s.b.complete(id)
	}
	prev, err := incremental.Present(ctx, s.storage, s.b.history.Reusable(s.storage))
	if err != nil {
		return snapshot.Handle{}, nil, err
	}
	up, err := incremental.Run(ctx, s.storage, incremental.Request{
		Dir:          s.localDir,
		CheckpointID: s.checkpointID,
		WriterID:     s.b.writer,
		Previous:     prev,
		Workers:      s.workers,
		Progress:     tracker,
	})
	if err != nil {
		return snapshot.Handle{}, nil, err
	}
	h := s.handle
	h.Files, h.Shared = up.Private, up.Shared
	h.StateSize, h.CheckpointedSize = up.Total, up.Uploaded
	var written []string
	for _, f := range up.Private {
		written = append(written, f.Name)
	}
	for _, f := range up.New {
		written = append(written, f.Name)
	}
	return h, written, nil
}

// Release gives up a snapshot that will not be run. It is a no-op once
// Run has started.
func (s *AsyncSnapshot) Release() {
	s.mu.Lock()
	if s.running || s.released {
		s.mu.Unlock()
		return
	}
	s.released = true
	s.mu.Unlock()
	s.free()
}

// finish releases the snapshot at the end of Run.
func (s *AsyncSnapshot) finish() {
	s.mu.Lock()
	s.released = true
	s.mu.Unlock()
	s.free()
}

// free closes the Pebble snapshot or removes the native checkpoint. Its
// callers make sure it runs once: whoever sets released first.
func (s *AsyncSnapshot) free() {
	if s.snap != nil {
		_ = s.snap.Close()
	}
	if s.localDir != "" {
		_ = os.RemoveAll(s.localDir)
	}
	s.b.mu.Lock()
	delete(s.b.running, s)
	s.b.mu.Unlock()
}

// taken reports whether a snapshot of checkpoint id is in flight or was
// written and not yet completed or aborted: a second one would write the
// same files.
func (o *snapshotOwner) taken(id int64) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if _, ok := o.pending[id]; ok {
		return true
	}
	for s := range o.running {
		if s.checkpointID == id {
			return true
		}
	}
	return false
}

// closeAll cancels running snapshots and waits for them, and releases the
// ones never run. The backend calls it before closing the database. A Run
// that starts after it finds its snapshot released.
func (o *snapshotOwner) closeAll() {
	o.mu.Lock()
	snaps := make([]*AsyncSnapshot, 0, len(o.running))
	for s := range o.running {
		snaps = append(snaps, s)
	}
	o.mu.Unlock()
	for _, s := range snaps {
		s.mu.Lock()
		switch {
		case s.running && !s.released:
			cancel := s.cancel
			s.mu.Unlock()
			cancel()
			<-s.done
		case !s.released:
			s.released = true
			s.mu.Unlock()
			s.free()
		default:
			s.mu.Unlock()
		}
	}
}

// NotifyCheckpointComplete tells the backend that checkpoint id completed.
// Its files and those of earlier checkpoints now belong to the checkpoint
// storage (retention deletes them), and an incremental checkpoint becomes
// the base the next one reuses uploads from. A notification that never
// comes costs little: before each incremental upload the backend looks in
// the root for its committed checkpoints and builds on the newest.
func (b *Backend[K]) NotifyCheckpointComplete(id int64) error {
	b.snaps.complete(id)
	return nil
}

// complete records that checkpoint id completed: its files and those of
// earlier checkpoints are no longer the backend's to delete, and its
// uploads are the base of the next incremental checkpoint.
func (o *snapshotOwner) complete(id int64) {
	o.mu.Lock()
	maps.DeleteFunc(o.pending, func(cid int64, _ []string) bool { return cid <= id })
	o.notifiedLocked(id, true)
	o.mu.Unlock()
	o.history.Complete(id)
	o.local.completed(id)
}

// NotifyCheckpointAborted tells the backend that checkpoint id will never
// complete: it deletes the files the backend wrote for it, and never reuses
// its uploads.
func (b *Backend[K]) NotifyCheckpointAborted(ctx context.Context, id int64, st snapshot.Storage) error {
	o := b.snaps
	o.mu.Lock()
	names := o.pending[id]
	delete(o.pending, id)
	o.notifiedLocked(id, false)
	o.mu.Unlock()
	o.history.Abort(id)
	o.local.aborted(id)
	var errs []error
	for _, n := range names {
		if err := st.Delete(ctx, n); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("backend: discard aborted checkpoint %d: %w", id, err)
	}
	return nil
}

// Checkpoint takes a complete checkpoint of this backend alone: snapshot,
// write, commit the metadata, apply retention (Options.RetainedCheckpoints)
// and notify completion. It is the one-call form for a single-instance
// user; a job with several instances checkpoints through a
// checkpoint.Coordinator, which calls Snapshot and Run on each and commits
// their handles together.
func (b *Backend[K]) Checkpoint(ctx context.Context, st snapshot.Storage, id int64) (*snapshot.Checkpoint, error) {
	s, err := b.snapshot(ctx, id, st)
	if err != nil {
		return nil, err
	}
	h, err := s.Run(ctx)
	if err != nil {
		return nil, err
	}
	cp := &snapshot.Checkpoint{ID: id, CreatedUnixMillis: b.opts.Clock.Now().UnixMilli(), Handles: []snapshot.Handle{h}}
	if err := snapshot.Commit(ctx, st, cp); err != nil {
		// A commit can fail after its metadata became visible (a failed
		// directory fsync after the link): then the checkpoint exists and
		// its files must stay. But metadata of this id may also be another
		// writer's, who won the commit: only if it holds this handle is
		// the checkpoint ours.
		if got, lerr := snapshot.Load(ctx, st, id); lerr != nil || !holdsHandle(got, h) {
			_ = b.NotifyCheckpointAborted(ctx, id, st)
			return nil, err
		}
	}
	// Committed: from here on the checkpoint exists, whatever retention
	// does, so a retention failure is reported but aborts nothing.
	if err := b.NotifyCheckpointComplete(id); err != nil {
		return cp, err
	}
	var pinned []int64
	if r := b.restoredFrom; r != nil && snapshot.SameRoot(r.st, st) {
		pinned = []int64{r.id}
	}
	rep, err := retention.RetainPinned(ctx, st, b.opts.RetainedCheckpoints, pinned)
	if err == nil {
		err = rep.Err()
	}
	if err != nil {
		return cp, fmt.Errorf("backend: checkpoint %d completed, but retention failed: %w", id, err)
	}
	return cp, nil
}

// holdsHandle reports whether checkpoint cp holds handle h: a handle of
// the same instance with the same files, whose names carry the writer id.
func holdsHandle(cp *snapshot.Checkpoint, h snapshot.Handle) bool {
	for _, g := range cp.Handles {
		if g.InstanceID == h.InstanceID && slices.EqualFunc(g.Files, h.Files, sameName) &&
			slices.EqualFunc(g.Shared, h.Shared, func(a, b snapshot.SharedFile) bool { return a.Name == b.Name }) {
			return true
		}
	}
	return false
}

func sameName(a, b snapshot.FileRef) bool { return a.Name == b.Name }

// progressOf returns the callback a full snapshot's writer reports each
// key group's bytes to, or nil.
func progressOf(t *snapshot.ProgressTracker) func(keyGroup int, bytes int64) {
	if t == nil {
		return nil
	}
	t.AddTotal(1, 0)
	return func(_ int, bytes int64) { t.Add(0, bytes) }
}
