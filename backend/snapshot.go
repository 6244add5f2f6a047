package backend

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/cockroachdb/pebble/v2"

	"github.com/pebblestate/pebblestate/compaction"
	"github.com/pebblestate/pebblestate/internal/meta"
	"github.com/pebblestate/pebblestate/snapshot"
	"github.com/pebblestate/pebblestate/snapshot/full"
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
	snap         *pebble.Snapshot
	states       []meta.State
	targets      []compaction.Target
	now          int64
	handle       snapshot.Handle

	mu       sync.Mutex
	released bool
	running  bool
	cancel   context.CancelFunc
	done     chan struct{}
}

// snapshotOwner is the part of a backend its snapshots need; it is not
// generic, so AsyncSnapshot is not either.
type snapshotOwner struct {
	mu      sync.Mutex
	running map[*AsyncSnapshot]bool
	pending map[int64]string // data file written per checkpoint not yet completed
}

// Snapshot takes the synchronous part of a full snapshot for checkpoint
// checkpointID into storage st: it pins a Pebble snapshot and copies the
// state metadata, which takes microseconds whatever the state size. Call
// Run on the result (on any goroutine) to write it.
func (b *Backend[K]) Snapshot(checkpointID int64, st snapshot.Storage) (*AsyncSnapshot, error) {
	if b.closed.Load() {
		return nil, ErrClosed
	}
	if checkpointID < 0 || st == nil {
		return nil, fmt.Errorf("%w: checkpoint id %d, storage %v", ErrInvalidArgument, checkpointID, st)
	}
	states := make([]meta.State, 0, len(b.persisted))
	for _, m := range b.persisted {
		states = append(states, m)
	}
	s := &AsyncSnapshot{
		b:            b.snaps,
		checkpointID: checkpointID,
		storage:      st,
		snap:         b.db.NewSnapshot(),
		states:       states,
		targets:      append([]compaction.Target(nil), b.snapshotTargets...),
		now:          ttl.Millis(b.opts.Clock.Now()),
		done:         make(chan struct{}),
	}
	s.handle = snapshot.Handle{
		Operator:       b.opts.Operator,
		InstanceID:     b.meta.InstanceID,
		CheckpointID:   checkpointID,
		Kind:           snapshot.KindFull,
		MaxParallelism: b.opts.MaxParallelism,
		KeyGroupStart:  b.opts.KeyGroups.Start,
		KeyGroupEnd:    b.opts.KeyGroups.End,
		KeyCodec:       b.keyCodec.Name(),
		States:         states,
		Compression:    b.opts.SnapshotCompression,
	}
	b.snaps.mu.Lock()
	b.snaps.running[s] = true
	b.snaps.mu.Unlock()
	return s, nil
}

// dataFileName is the storage name of an instance's full-snapshot data.
func dataFileName(checkpointID int64, instanceID string) string {
	return snapshot.Dir(checkpointID) + "/full-" + instanceID + ".dat"
}

// Run writes the snapshot and returns the instance's handle, to be
// committed with the other instances' handles (snapshot.Complete). It can
// be called once. Cancelling ctx stops it; it then leaves no files behind.
func (s *AsyncSnapshot) Run(ctx context.Context) (snapshot.Handle, error) {
	s.mu.Lock()
	if s.released || s.running {
		s.mu.Unlock()
		return snapshot.Handle{}, errors.New("backend: snapshot already run or released")
	}
	s.running = true
	ctx, s.cancel = context.WithCancel(ctx)
	s.mu.Unlock()
	defer close(s.done)
	defer s.release()

	comp, err := full.ParseCompression(s.handle.Compression)
	if err != nil {
		return snapshot.Handle{}, err
	}
	ids := make([]uint16, len(s.states))
	for i, m := range s.states {
		ids[i] = m.ID
	}
	var filter *compaction.EntryFilter
	if len(s.targets) > 0 {
		filter = compaction.NewEntryFilter(s.targets, s.now)
	}
	name := dataFileName(s.checkpointID, s.handle.InstanceID)
	w, err := s.storage.Create(ctx, name)
	if err != nil {
		return snapshot.Handle{}, fmt.Errorf("backend: snapshot: %w", err)
	}
	res, err := full.Write(ctx, s.snap, w, full.WriteOptions{
		StateIDs:       ids,
		KeyGroups:      KeyGroupRange{Start: s.handle.KeyGroupStart, End: s.handle.KeyGroupEnd},
		MaxParallelism: s.handle.MaxParallelism,
		Compression:    comp,
		Filter:         filter,
	})
	if err == nil {
		err = ctx.Err()
	}
	if err == nil {
		err = w.Commit()
	}
	if err != nil {
		_ = w.Abort()
		_ = s.storage.Delete(context.Background(), name) // and the chk directory, if empty
		return snapshot.Handle{}, fmt.Errorf("backend: snapshot %d: %w", s.checkpointID, err)
	}
	h := s.handle
	h.Files = []snapshot.FileRef{{Name: name, Size: res.Size, CRC32C: res.CRC32C}}
	h.Blocks = res.Blocks
	h.StateSize, h.CheckpointedSize = res.Size, res.Size
	s.b.mu.Lock()
	s.b.pending[s.checkpointID] = name
	s.b.mu.Unlock()
	return h, nil
}

// Release gives up a snapshot that will not be run. It is a no-op after
// Run.
func (s *AsyncSnapshot) Release() {
	s.mu.Lock()
	running := s.running
	s.mu.Unlock()
	if !running {
		s.release()
	}
}

// release closes the Pebble snapshot exactly once.
func (s *AsyncSnapshot) release() {
	s.mu.Lock()
	if s.released {
		s.mu.Unlock()
		return
	}
	s.released = true
	s.mu.Unlock()
	_ = s.snap.Close()
	s.b.mu.Lock()
	delete(s.b.running, s)
	s.b.mu.Unlock()
}

// closeAll cancels running snapshots, waits for them, and releases the
// ones never run. The backend calls it before closing the database.
func (o *snapshotOwner) closeAll() {
	o.mu.Lock()
	snaps := make([]*AsyncSnapshot, 0, len(o.running))
	for s := range o.running {
		snaps = append(snaps, s)
	}
	o.mu.Unlock()
	for _, s := range snaps {
		s.mu.Lock()
		running, cancel := s.running, s.cancel
		s.mu.Unlock()
		if running {
			cancel()
			<-s.done
		} else {
			s.release()
		}
	}
}

// NotifyCheckpointComplete tells the backend that checkpoint id completed.
// It forgets the files of that and earlier checkpoints, which are now the
// checkpoint's (retention deletes them).
func (b *Backend[K]) NotifyCheckpointComplete(id int64) error {
	b.snaps.mu.Lock()
	defer b.snaps.mu.Unlock()
	for cid := range b.snaps.pending {
		if cid <= id {
			delete(b.snaps.pending, cid)
		}
	}
	return nil
}

// NotifyCheckpointAborted tells the backend that checkpoint id will never
// complete; it deletes the data the backend wrote for it.
func (b *Backend[K]) NotifyCheckpointAborted(ctx context.Context, id int64, st snapshot.Storage) error {
	b.snaps.mu.Lock()
	name, ok := b.snaps.pending[id]
	delete(b.snaps.pending, id)
	b.snaps.mu.Unlock()
	if !ok {
		return nil
	}
	if err := st.Delete(ctx, name); err != nil {
		return fmt.Errorf("backend: discard aborted checkpoint %d: %w", id, err)
	}
	return nil
}

// Checkpoint takes a complete checkpoint of this backend alone: snapshot,
// write, commit the metadata, apply retention (Options.RetainedCheckpoints)
// and notify completion. It is the one-call form for a single-instance
// user; a framework with several instances calls Snapshot and Run on each
// and commits their handles together with snapshot.Complete.
func (b *Backend[K]) Checkpoint(ctx context.Context, st snapshot.Storage, id int64) (*snapshot.Checkpoint, error) {
	s, err := b.Snapshot(id, st)
	if err != nil {
		return nil, err
	}
	h, err := s.Run(ctx)
	if err != nil {
		return nil, err
	}
	cp := &snapshot.Checkpoint{ID: id, CreatedUnixMillis: b.opts.Clock.Now().UnixMilli(), Handles: []snapshot.Handle{h}}
	if err := snapshot.Complete(ctx, st, cp, b.opts.RetainedCheckpoints); err != nil {
		_ = b.NotifyCheckpointAborted(ctx, id, st)
		return nil, err
	}
	return cp, b.NotifyCheckpointComplete(id)
}
