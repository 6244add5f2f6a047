package checkpoint

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/pebblestate/pebblestate/snapshot"
	"github.com/pebblestate/pebblestate/snapshot/retention"
)

// pendingState is where a checkpoint is in its life.
type pendingState int

const (
	stateCollecting pendingState = iota // subtasks report, parts run
	stateCommitting                     // all in: commit, notify, retain
	stateAborting                       // parts cancelled, abort notified
	stateDone                           // ended; Stats set
)

// Pending is a checkpoint in flight, from Trigger until it completes or
// aborts.
type Pending struct {
	c         *Coordinator
	id        int64
	triggered time.Time

	parent    context.Context // Trigger's context
	ctx       context.Context // the parts' context: cancelled on abort
	cancel    context.CancelCauseFunc
	cancelT   context.CancelFunc // the timeout's
	stopWatch func() bool        // stops the abort on ctx's end
	runs      sync.WaitGroup     // parts running
	done      chan struct{}      // closed when ended; stats is set

	// Guarded by c.mu.
	state     pendingState
	reported  []bool
	handles   []*snapshot.Handle
	ops       []*snapshot.OperatorStateRef // operator state written
	sync      []time.Duration
	async     []time.Duration
	nReported int
	running   int

	stats Stats
}

func newPending(c *Coordinator, ctx context.Context, id int64) *Pending {
	n := len(c.subtasks)
	p := &Pending{
		c:         c,
		id:        id,
		triggered: c.opts.now(),
		parent:    ctx,
		done:      make(chan struct{}),
		reported:  make([]bool, n),
		handles:   make([]*snapshot.Handle, n),
		ops:       make([]*snapshot.OperatorStateRef, n),
		sync:      make([]time.Duration, n),
		async:     make([]time.Duration, n),
	}
	p.ctx, p.cancel = context.WithCancelCause(ctx)
	p.cancelT = func() {}
	if t := c.opts.Timeout; t > 0 {
		p.ctx, p.cancelT = context.WithTimeoutCause(p.ctx, t, fmt.Errorf("%w after %v", ErrTimeout, t))
	}
	pctx := p.ctx
	p.stopWatch = context.AfterFunc(pctx, func() { p.fail(context.Cause(pctx)) })
	return p
}

// ID returns the checkpoint's id.
func (p *Pending) ID() int64 { return p.id }

// Done returns a channel closed when the checkpoint has completed or
// aborted.
func (p *Pending) Done() <-chan struct{} { return p.done }

// Wait waits until the checkpoint has ended and returns its Stats and, if
// it did not complete in full, Stats.Err; or ctx's error if ctx ends
// first (which does not abort the checkpoint).
func (p *Pending) Wait(ctx context.Context) (Stats, error) {
	select {
	case <-p.done:
		return p.stats, p.stats.Err
	case <-ctx.Done():
		return Stats{}, ctx.Err()
	}
}

// Acknowledge is Coordinator.Acknowledge for this checkpoint.
func (p *Pending) Acknowledge(s Subtask, state SubtaskState) error {
	c := p.c
	c.mu.Lock()
	i, ok := c.index[s]
	switch {
	case p.state != stateCollecting:
		c.mu.Unlock()
		state.release()
		return fmt.Errorf("%w: checkpoint %d (acknowledged by %v) has ended or is committing", ErrUnknownCheckpoint, p.id, s)
	case !ok:
		c.mu.Unlock()
		state.release()
		return fmt.Errorf("%w: %v is not a subtask of the job", ErrUnknownSubtask, s)
	case p.reported[i]:
		c.mu.Unlock()
		state.release()
		return fmt.Errorf("%w: %v already reported for checkpoint %d", ErrUnknownSubtask, s, p.id)
	}
	p.reported[i] = true
	p.nReported++
	p.sync[i] = state.SyncDuration
	if state.Keyed != nil || state.Operator != nil {
		p.running++
		p.runs.Add(1)
		c.mu.Unlock()
		go p.run(i, state)
		return nil
	}
	ready := p.readyLocked()
	c.mu.Unlock()
	if ready {
		go p.commit()
	}
	return nil
}

// Decline is Coordinator.Decline for this checkpoint.
func (p *Pending) Decline(s Subtask, cause error) error {
	c := p.c
	c.mu.Lock()
	i, ok := c.index[s]
	switch {
	case p.state != stateCollecting:
		c.mu.Unlock()
		return fmt.Errorf("%w: checkpoint %d (declined by %v) has ended or is committing", ErrUnknownCheckpoint, p.id, s)
	case !ok || p.reported[i]:
		c.mu.Unlock()
		return fmt.Errorf("%w: %v cannot decline checkpoint %d", ErrUnknownSubtask, s, p.id)
	}
	p.reported[i] = true
	c.mu.Unlock()
	p.fail(fmt.Errorf("%v declined: %w", s, cause))
	<-p.done
	return nil
}

// readyLocked reports whether every subtask reported and every part ran,
// and if so moves the checkpoint to committing: the caller commits.
func (p *Pending) readyLocked() bool {
	if p.state != stateCollecting || p.nReported < len(p.reported) || p.running > 0 {
		return false
	}
	p.state = stateCommitting
	return true
}

// run runs subtask i's asynchronous parts: its keyed snapshot, then the
// write of its operator state.
func (p *Pending) run(i int, state SubtaskState) {
	c := p.c
	s := c.subtasks[i]
	start := c.opts.now()
	var (
		h   *snapshot.Handle
		ref *snapshot.OperatorStateRef
		err error
	)
	if op := state.Operator; op != nil {
		if n := c.parallelism(s.Operator); op.Index() != s.Index || op.Parallelism() != n {
			err = fmt.Errorf("operator state is of subtask %d of %d, not %d of %d", op.Index(), op.Parallelism(), s.Index, n)
		}
	}
	if state.Keyed != nil {
		if err != nil {
			state.Keyed.Release()
		} else {
			var kh snapshot.Handle
			if kh, err = state.Keyed.Run(p.ctx); err == nil && kh.Operator != s.Operator {
				err = fmt.Errorf("handle is of operator %q", kh.Operator)
			}
			h = &kh
		}
	}
	if err == nil && state.Operator != nil {
		var r snapshot.OperatorStateRef
		if r, err = state.Operator.Write(p.ctx, c.st, p.id, s.Operator); err == nil {
			ref = &r
		}
	}
	d := c.since(start)
	c.mu.Lock()
	p.running--
	ready := false
	p.ops[i] = ref // to delete on abort
	if err == nil {
		if state.Keyed != nil {
			p.handles[i] = h
		}
		p.async[i] = d
		ready = p.readyLocked()
	}
	c.mu.Unlock()
	p.runs.Done()
	switch {
	case err != nil:
		p.fail(fmt.Errorf("%v: %w", s, err))
	case ready:
		p.commit()
	}
}

// fail aborts the checkpoint with cause, unless it is committing or has
// ended already. It returns when the abort is done.
func (p *Pending) fail(cause error) {
	c := p.c
	c.mu.Lock()
	if p.state != stateCollecting {
		c.mu.Unlock()
		return
	}
	p.state = stateAborting
	c.mu.Unlock()
	p.abort(cause)
}

// abort cancels the running parts, waits for them, tells every
// participant and ends the checkpoint.
func (p *Pending) abort(cause error) {
	c := p.c
	p.cancel(cause)
	p.runs.Wait()
	ctx := context.WithoutCancel(p.parent)
	var errs []error
	for i, part := range c.parts {
		if err := part.NotifyCheckpointAborted(ctx, p.id, c.st); err != nil {
			errs = append(errs, fmt.Errorf("%v: %w", c.subtasks[i], err))
		}
	}
	for i, ref := range p.ops { // every part returned: no writer left
		if ref != nil {
			if err := c.st.Delete(ctx, ref.Name); err != nil {
				errs = append(errs, fmt.Errorf("%v: delete operator state: %w", c.subtasks[i], err))
			}
		}
	}
	if err := c.removeTemp(ctx, p.id); err != nil {
		errs = append(errs, err)
	}
	err := fmt.Errorf("%w: checkpoint %d: %w", ErrAborted, p.id, cause)
	if len(errs) > 0 {
		err = fmt.Errorf("%w; its cleanup failed: %w", err, errors.Join(errs...))
	}
	p.end(false, err, nil)
}

// commit commits the checkpoint, subsumes older ones, notifies every
// participant and applies retention: Coordinator's steps 3 and 4.
func (p *Pending) commit() {
	c := p.c
	c.commitMu.Lock()
	defer c.commitMu.Unlock()
	p.stopWatch() // from here on, a timeout or cancel aborts nothing
	c.mu.Lock()
	cp := &snapshot.Checkpoint{ID: p.id, CreatedUnixMillis: c.opts.now().UnixMilli()}
	for _, h := range p.handles {
		if h != nil {
			cp.Handles = append(cp.Handles, *h)
		}
	}
	for _, r := range p.ops {
		if r != nil {
			cp.OperatorStates = append(cp.OperatorStates, *r)
		}
	}
	c.mu.Unlock()
	ctx := context.WithoutCancel(p.ctx)
	c.step("commit", p.id)
	if err := snapshot.Commit(ctx, c.st, cp); err != nil && !committedAnyway(ctx, c.st, cp) {
		p.abort(err)
		return
	}
	c.step("committed", p.id)
	// Flink's rule: a completed checkpoint subsumes the older ones in
	// flight. Those still collecting abort now, and those aborting finish
	// their abort, so that their files are deleted before the completion
	// below makes them the storage's; one waiting to commit (for
	// commitMu) fails its commit (ErrSubsumed) and aborts then.
	for _, q := range c.olderInFlight(p.id) {
		q.fail(fmt.Errorf("%w by checkpoint %d", snapshot.ErrSubsumed, p.id))
		c.mu.Lock()
		committing := q.state == stateCommitting
		c.mu.Unlock()
		if !committing {
			<-q.done
		}
	}
	var errs []error
	for i, part := range c.parts {
		if err := part.NotifyCheckpointComplete(p.id); err != nil {
			errs = append(errs, fmt.Errorf("notify %v: %w", c.subtasks[i], err))
		}
	}
	c.step("retain", p.id)
	rep, err := retention.RetainPinned(ctx, c.st, c.opts.RetainedCheckpoints, c.pinned)
	if err == nil {
		err = rep.Err()
	}
	if err != nil {
		errs = append(errs, fmt.Errorf("retention: %w", err))
	}
	var after error
	if len(errs) > 0 {
		after = fmt.Errorf("checkpoint %d completed, but: %w", p.id, errors.Join(errs...))
	}
	p.end(true, after, rep)
}

// committedAnyway reports whether cp's metadata is in storage although
// its commit failed (a failed directory sync after the link): then the
// checkpoint exists. Metadata of the id that is another committer's does
// not count: it must hold cp's handles.
func committedAnyway(ctx context.Context, st snapshot.Storage, cp *snapshot.Checkpoint) bool {
	got, err := snapshot.Load(ctx, st, cp.ID)
	if err != nil || len(got.Handles) != len(cp.Handles) ||
		!slices.EqualFunc(got.OperatorStates, cp.OperatorStates, func(a, b snapshot.OperatorStateRef) bool { return a.Name == b.Name }) {
		return false
	}
	for i, h := range cp.Handles {
		g := got.Handles[i]
		if g.InstanceID != h.InstanceID ||
			!slices.EqualFunc(g.Files, h.Files, func(a, b snapshot.FileRef) bool { return a.Name == b.Name }) ||
			!slices.EqualFunc(g.Shared, h.Shared, func(a, b snapshot.SharedFile) bool { return a.Name == b.Name }) {
			return false
		}
	}
	return true
}

// end records how the checkpoint ended, reports it and wakes its waiters.
func (p *Pending) end(completed bool, err error, rep *retention.Report) {
	c := p.c
	st := Stats{ID: p.id, Triggered: p.triggered, Completed: completed, Err: err, Retention: rep}
	c.mu.Lock()
	p.state = stateDone
	for i, s := range c.subtasks {
		if !p.reported[i] {
			continue
		}
		ss := SubtaskStats{Subtask: s, SyncDuration: p.sync[i], AsyncDuration: p.async[i]}
		if h := p.handles[i]; h != nil {
			ss.CheckpointedSize, ss.StateSize = h.CheckpointedSize, h.StateSize
		}
		if r := p.ops[i]; r != nil {
			ss.CheckpointedSize += r.Size
			ss.StateSize += r.Size
		}
		st.CheckpointedSize += ss.CheckpointedSize
		st.StateSize += ss.StateSize
		st.Subtasks = append(st.Subtasks, ss)
	}
	c.mu.Unlock()
	st.Duration = c.since(p.triggered)
	p.stats = st
	c.ended(p)
	p.stopWatch()
	p.cancelT()
	p.cancel(context.Canceled)
	if c.opts.OnReport != nil {
		c.opts.OnReport(st)
	}
	close(p.done)
}

// parallelism returns the number of subtasks of operator.
func (c *Coordinator) parallelism(operator string) int {
	n := 0
	for _, s := range c.subtasks {
		if s.Operator == operator {
			n++
		}
	}
	return n
}
