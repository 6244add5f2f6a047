package checkpoint

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pebblestate/pebblestate/backend"
	"github.com/pebblestate/pebblestate/snapshot"
)

// Coordinator runs the checkpoints of one job, as Flink's checkpoint
// coordinator does: it hands out checkpoint ids, collects every subtask's
// snapshot, commits the checkpoint's metadata once all are in, notifies
// every subtask, applies retention, and aborts what cannot complete,
// leaving nothing behind.
//
// # One process, one goroutine
//
// A program whose subtasks' backends all live on one goroutine needs three
// calls:
//
//	c, err := checkpoint.NewCoordinator(ctx, checkpoint.Options{Storage: st, Operators: ops})
//	stats, err := c.Checkpoint(ctx) // at each checkpoint, between records
//	err = c.Close()
//
// Checkpoint takes each subtask's synchronous part in turn
// (Participant.SnapshotState), so state access must not run meanwhile, as
// for Backend.Snapshot; it then waits while the asynchronous parts run
// beside each other.
//
// # A framework with its own threads
//
// The contract, in Flink's terms:
//
//  1. Trigger hands out the next checkpoint id (never reused: ids continue
//     above every id in Storage and above Options.Restored). The framework
//     injects a barrier carrying it. At most Options.MaxInFlight
//     checkpoints are in flight; Trigger fails with ErrTooManyInFlight
//     beyond.
//  2. Each subtask, at its barrier, on its own thread, takes the
//     synchronous part of its snapshot (Backend.Snapshot(id, Storage),
//     and opstate.State.Snapshot for its operator state, if any: every
//     subtask of an operator with operator state must hand some in) and
//     hands it over with Acknowledge, which returns at once; or, if it
//     cannot, calls Decline, which aborts the checkpoint. The coordinator
//     owns what it was handed from then on, even when Acknowledge fails
//     (it was released). Every subtask of every operator must report.
//  3. The coordinator runs each asynchronous part on a goroutine of its
//     own as it arrives (the keyed snapshot, then the write of the
//     operator state). When every subtask has reported and every part
//     has run, it commits the metadata (snapshot.Commit, which checks
//     every operator's key-group coverage and that every file the
//     checkpoint references is in storage), aborts the in-flight
//     checkpoints older than it (they are subsumed), notifies every
//     participant of the completion, and applies retention. Commits run
//     one at a time.
//  4. A checkpoint aborts when a part fails, a subtask declines, the
//     commit fails, Options.Timeout passes before the commit starts, the
//     context given to Trigger is cancelled, a newer checkpoint completes
//     first, or the coordinator is closed. Its running parts are cancelled
//     and waited for; then every participant is notified of the abort,
//     which deletes what it wrote.
//  5. Pending.Wait (or Options.OnReport) tells how it ended, with Stats.
//
// All methods are safe for concurrent use. Close aborts what is in flight
// and waits for it; it does not close the backends, which the framework
// owns.
type Coordinator struct {
	opts     Options
	st       snapshot.Storage
	subtasks []Subtask
	parts    []Participant
	index    map[Subtask]int
	pinned   []int64

	// commitMu makes commits, with their notifications and retention,
	// run one at a time.
	commitMu sync.Mutex

	mu      sync.Mutex
	nextID  int64
	pending map[int64]*Pending
	closed  bool
	last    *Stats

	// hook, set by tests, is called at each step of a commit.
	hook func(step string, id int64)
}

// NewCoordinator returns the coordinator of a job. It lists the storage
// to find the ids in use: the first checkpoint id is above every id of a
// checkpoint directory or shared file in it, and above the restored
// checkpoint's.
func NewCoordinator(ctx context.Context, opts Options) (*Coordinator, error) {
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	c := &Coordinator{
		opts:    opts,
		st:      opts.Storage,
		index:   make(map[Subtask]int),
		pending: make(map[int64]*Pending),
		nextID:  1,
	}
	var names []string
	for _, op := range opts.Operators {
		names = append(names, op.Name)
		for i, p := range op.Subtasks {
			s := Subtask{Operator: op.Name, Index: i}
			c.index[s] = len(c.subtasks)
			c.subtasks = append(c.subtasks, s)
			c.parts = append(c.parts, p)
		}
	}
	if r := opts.Restored; r != nil {
		if err := snapshot.CheckClaimed(r.Checkpoint, names, r.AllowNonRestoredState); err != nil {
			return nil, err
		}
		c.nextID = max(c.nextID, r.Checkpoint.ID+1)
		if r.Mode == backend.NoClaim && snapshot.SameRoot(r.Storage, opts.Storage) {
			c.pinned = []int64{r.Checkpoint.ID}
		}
	}
	used, err := maxUsedID(ctx, opts.Storage)
	if err != nil {
		return nil, fmt.Errorf("checkpoint coordinator: find the ids in use: %w", err)
	}
	c.nextID = max(c.nextID, used+1)
	return c, nil
}

// maxUsedID returns the largest checkpoint id st shows: of a chk-<id>/
// directory (completed or not) or of the creator of a shared file; -1 if
// there is none.
func maxUsedID(ctx context.Context, st snapshot.Storage) (int64, error) {
	used := int64(-1)
	chk, err := st.List(ctx, "chk-")
	if err != nil {
		return 0, err
	}
	for _, n := range chk {
		num, _, _ := strings.Cut(strings.TrimPrefix(n, "chk-"), "/")
		if id, err := strconv.ParseInt(num, 10, 64); err == nil {
			used = max(used, id)
		}
	}
	shared, err := st.List(ctx, snapshot.SharedDir+"/")
	if err != nil {
		return 0, err
	}
	for _, n := range shared {
		if id, ok := snapshot.SharedCreator(n); ok {
			used = max(used, id)
		}
	}
	return used, nil
}

// removeTemp removes, from storage that leaves temporary files and
// directories (snapshot.TempRemover), those of checkpoint id, which has
// aborted and whose parts have all returned: what a cancelled upload
// left, and the directories its participants emptied.
func (c *Coordinator) removeTemp(ctx context.Context, id int64) error {
	tr, ok := c.st.(snapshot.TempRemover)
	if !ok {
		return nil
	}
	dir := snapshot.Dir(id) + "/"
	err := tr.RemoveTemp(ctx, func(name string) bool {
		if strings.HasPrefix(name, dir) {
			return true
		}
		creator, ok := snapshot.SharedCreator(name)
		return ok && creator == id
	})
	if err != nil {
		return fmt.Errorf("remove temporary files of checkpoint %d: %w", id, err)
	}
	return nil
}

// Subtasks returns the job's subtasks in the order of Options.Operators.
func (c *Coordinator) Subtasks() []Subtask { return slices.Clone(c.subtasks) }

// NextID returns the id the next Trigger will hand out.
func (c *Coordinator) NextID() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nextID
}

// LastCompleted returns the Stats of the newest checkpoint this
// coordinator completed, or nil.
func (c *Coordinator) LastCompleted() *Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.last == nil {
		return nil
	}
	s := *c.last
	s.Subtasks = slices.Clone(s.Subtasks)
	return &s
}

// InFlight returns the ids of the checkpoints in flight, ascending.
func (c *Coordinator) InFlight() []int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var ids []int64
	for id, p := range c.pending {
		if p.state != stateDone {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// Trigger starts checkpoint number NextID and returns it. Cancelling ctx
// aborts it, until its commit has started; so does Options.Timeout.
func (c *Coordinator) Trigger(ctx context.Context) (*Pending, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, ErrClosed
	}
	if n := len(c.pending); n >= c.opts.MaxInFlight {
		return nil, fmt.Errorf("%w: %d (the maximum)", ErrTooManyInFlight, n)
	}
	id := c.nextID
	c.nextID++
	p := newPending(c, ctx, id)
	c.pending[id] = p
	return p, nil
}

// Acknowledge hands the coordinator subtask s's state for checkpoint id,
// whose synchronous parts are taken, and starts its asynchronous parts. It
// returns at once. If the checkpoint is not in flight (ErrUnknownCheckpoint)
// or s is not expected (ErrUnknownSubtask), the state is released and
// nothing else happens.
func (c *Coordinator) Acknowledge(id int64, s Subtask, state SubtaskState) error {
	c.mu.Lock()
	p := c.pending[id]
	c.mu.Unlock()
	if p == nil {
		state.release()
		return fmt.Errorf("%w: checkpoint %d (acknowledged by %v)", ErrUnknownCheckpoint, id, s)
	}
	return p.Acknowledge(s, state)
}

// Decline says subtask s cannot take part in checkpoint id, because of
// cause: the checkpoint aborts. It returns when the abort is done.
func (c *Coordinator) Decline(id int64, s Subtask, cause error) error {
	c.mu.Lock()
	p := c.pending[id]
	c.mu.Unlock()
	if p == nil {
		return fmt.Errorf("%w: checkpoint %d (declined by %v)", ErrUnknownCheckpoint, id, s)
	}
	return p.Decline(s, cause)
}

// Checkpoint takes a whole checkpoint of the job from the calling
// goroutine: Trigger, then each subtask's synchronous part in turn
// (Participant.SnapshotState) handed to Acknowledge, then Wait. It returns
// the checkpoint's Stats and, if it did not complete in full, Stats.Err.
func (c *Coordinator) Checkpoint(ctx context.Context) (Stats, error) {
	p, err := c.Trigger(ctx)
	if err != nil {
		return Stats{}, err
	}
	for i, s := range c.subtasks {
		start := c.opts.now()
		state, err := c.parts[i].SnapshotState(p.id, c.st)
		if err != nil {
			_ = p.Decline(s, fmt.Errorf("snapshot of %v: %w", s, err))
			break
		}
		state.SyncDuration = c.opts.now().Sub(start)
		if err := p.Acknowledge(s, state); err != nil {
			break // aborted meanwhile; Wait says why
		}
	}
	<-p.done
	return p.stats, p.stats.Err
}

// Close aborts the checkpoints in flight (those not yet committing) and
// waits until every checkpoint has ended. Later calls return ErrClosed.
func (c *Coordinator) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return ErrClosed
	}
	c.closed = true
	ps := make([]*Pending, 0, len(c.pending))
	for _, p := range c.pending {
		ps = append(ps, p)
	}
	c.mu.Unlock()
	for _, p := range ps {
		p.fail(ErrClosed)
		<-p.done
	}
	return nil
}

// olderInFlight returns the checkpoints in flight older than id.
func (c *Coordinator) olderInFlight(id int64) []*Pending {
	c.mu.Lock()
	defer c.mu.Unlock()
	var ps []*Pending
	for qid, q := range c.pending {
		if qid < id {
			ps = append(ps, q)
		}
	}
	return ps
}

// ended records that p ended with stats.
func (c *Coordinator) ended(p *Pending) {
	c.mu.Lock()
	delete(c.pending, p.id)
	if p.stats.Completed && (c.last == nil || c.last.ID < p.id) {
		s := p.stats
		c.last = &s
	}
	c.mu.Unlock()
}

func (c *Coordinator) step(name string, id int64) {
	if c.hook != nil {
		c.hook(name, id)
	}
}

// since is the time from t to now on the coordinator's clock.
func (c *Coordinator) since(t time.Time) time.Duration { return c.opts.now().Sub(t) }
