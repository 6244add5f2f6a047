package checkpoint_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pebblestate/pebblestate/backend"
	"github.com/pebblestate/pebblestate/checkpoint"
	"github.com/pebblestate/pebblestate/snapshot"
)

// failingStorage is local storage whose Create fails for the names fail
// approves: a real upload failure, in the middle of a real Run.
type failingStorage struct {
	*snapshot.Local
	fail func(name string) bool
}

var errInjected = errors.New("injected upload failure")

func (s *failingStorage) Create(ctx context.Context, name string) (snapshot.FileWriter, error) {
	if s.fail != nil && s.fail(name) {
		return nil, fmt.Errorf("create %s: %w", name, errInjected)
	}
	return s.Local.Create(ctx, name)
}

// abortCase is one way checkpoint 2 of the test job fails.
type abortCase struct {
	name    string
	timeout time.Duration
	// run makes checkpoint 2 fail and returns its error.
	run func(t *testing.T, c *checkpoint.Coordinator, j *job, st *failingStorage) error
	// cause is what the error must wrap besides ErrAborted.
	cause error
	// reopen takes the next checkpoint with a new coordinator of default
	// options.
	reopen bool
}

// ackAll acknowledges checkpoint p for the subtasks which, taking each
// backend's synchronous part.
func ackAll(t *testing.T, c *checkpoint.Coordinator, j *job, st snapshot.Storage, p *checkpoint.Pending, which []int) {
	t.Helper()
	subtasks := c.Subtasks()
	for _, i := range which {
		s := subtasks[i]
		o := slices.IndexFunc(j.specs, func(sp opSpec) bool { return sp.name == s.Operator })
		snap, err := j.backends[o][s.Index].Snapshot(p.ID(), st)
		noErr(t, err)
		noErr(t, p.Acknowledge(s, checkpoint.SubtaskState{Keyed: snap}))
	}
}

var abortCases = []abortCase{{
	name: "RunFails",
	run: func(t *testing.T, c *checkpoint.Coordinator, j *job, st *failingStorage) error {
		w := j.backends[1][1].WriterID()
		st.fail = func(name string) bool {
			return strings.Contains(name, w) && (strings.HasPrefix(name, "chk-2/") || strings.Contains(name, "-c2-"))
		}
		defer func() { st.fail = nil }()
		_, err := c.Checkpoint(context.Background())
		return err
	},
	cause: errInjected,
}, {
	name:    "Timeout",
	timeout: 2 * time.Second,
	run: func(t *testing.T, c *checkpoint.Coordinator, j *job, st *failingStorage) error {
		ctx := context.Background()
		p, err := c.Trigger(ctx)
		noErr(t, err)
		ackAll(t, c, j, st, p, []int{0, 1, 2, 3}) // subtask 4 never reports
		_, err = p.Wait(ctx)
		// It reports too late: refused, its snapshot released.
		s := c.Subtasks()[4]
		snap, serr := j.backends[1][1].Snapshot(p.ID(), st)
		noErr(t, serr)
		if aerr := c.Acknowledge(p.ID(), s, checkpoint.SubtaskState{Keyed: snap}); !errors.Is(aerr, checkpoint.ErrUnknownCheckpoint) {
			t.Fatalf("late acknowledge: %v", aerr)
		}
		return err
	},
	cause:  checkpoint.ErrTimeout,
	reopen: true,
}, {
	name: "Cancelled",
	run: func(t *testing.T, c *checkpoint.Coordinator, j *job, st *failingStorage) error {
		ctx, cancel := context.WithCancel(context.Background())
		p, err := c.Trigger(ctx)
		noErr(t, err)
		ackAll(t, c, j, st, p, []int{0, 2, 4})
		cancel()
		_, err = p.Wait(context.Background())
		return err
	},
	cause: context.Canceled,
}, {
	name: "Declined",
	run: func(t *testing.T, c *checkpoint.Coordinator, j *job, st *failingStorage) error {
		ctx := context.Background()
		p, err := c.Trigger(ctx)
		noErr(t, err)
		ackAll(t, c, j, st, p, []int{0, 1, 2})
		noErr(t, c.Decline(p.ID(), c.Subtasks()[3], errInjected))
		_, err = p.Wait(ctx)
		return err
	},
	cause: errInjected,
}, {
	name: "Closed",
	run: func(t *testing.T, c *checkpoint.Coordinator, j *job, st *failingStorage) error {
		ctx := context.Background()
		p, err := c.Trigger(ctx)
		noErr(t, err)
		ackAll(t, c, j, st, p, []int{1, 3})
		noErr(t, c.Close())
		_, err = p.Wait(ctx)
		return err
	},
	cause:  checkpoint.ErrClosed,
	reopen: true,
}}

// TestAbort makes checkpoint 2 fail each way a checkpoint can: its error
// says why, the files its subtasks wrote are gone at once, checkpoint 1
// still restores, and the next checkpoint completes and leaves only what
// it references.
func TestAbort(t *testing.T) {
	for _, ac := range abortCases {
		t.Run(ac.name, func(t *testing.T) {
			forEachMode(t, func(t *testing.T, incremental bool) {
				ctx := context.Background()
				st := &failingStorage{Local: newStorage(t)}
				j := openJob(t, "", twoOps, incremental)
				opts := checkpoint.Options{Storage: st, Operators: j.operators(), Timeout: ac.timeout}
				c, err := checkpoint.NewCoordinator(ctx, opts)
				noErr(t, err)
				defer c.Close()
				j.write(t, 1)
				_, err = c.Checkpoint(ctx)
				noErr(t, err)

				j.write(t, 2)
				err = ac.run(t, c, j, st)
				if !errors.Is(err, checkpoint.ErrAborted) || !errors.Is(err, ac.cause) {
					t.Fatalf("checkpoint 2: %v, want ErrAborted and %v", err, ac.cause)
				}
				if got := completed(t, st); !slices.Equal(got, []int64{1}) {
					t.Fatalf("completed %v, want [1]", got)
				}
				checkNoDebris(t, st.Local)
				if ids := c.InFlight(); len(ids) != 0 {
					t.Fatalf("in flight after the abort: %v", ids)
				}
				r, err := checkpoint.LatestCheckpoint(ctx, st, checkpoint.RestoreOptions{Operators: j.names()})
				noErr(t, err)
				restoreJob(t, r, twoOps, incremental).check(t, 1)

				want := int64(3)
				if ac.reopen {
					// A new coordinator knows the ids storage shows: the
					// aborted checkpoint left none, so 2 is free again.
					want = 2
					_ = c.Close()
					opts.Timeout = 0
					c, err = checkpoint.NewCoordinator(ctx, opts)
					noErr(t, err)
					defer c.Close()
				}
				j.write(t, 3)
				stats, err := c.Checkpoint(ctx)
				noErr(t, err)
				if stats.ID != want {
					t.Fatalf("next checkpoint %d, want %d", stats.ID, want)
				}
				checkNoDebris(t, st.Local)
				r, err = checkpoint.LatestCheckpoint(ctx, st, checkpoint.RestoreOptions{Operators: j.names()})
				noErr(t, err)
				restoreJob(t, r, twoOps, incremental).check(t, 3)
			})
		})
	}
}

// TestAbortCoverage configures an operator whose two subtasks both own
// every key group: the commit refuses the checkpoint (the key-group
// coverage check), which aborts and leaves nothing.
func TestAbortCoverage(t *testing.T) {
	ctx := context.Background()
	st := newStorage(t)
	var ps []checkpoint.Participant
	for range 2 {
		b, err := backend.Open(backend.Int64, backendOptions(t.TempDir(), "a", false))
		noErr(t, err)
		defer b.Close()
		ps = append(ps, checkpoint.KeyedParticipant(b))
	}
	c, err := checkpoint.NewCoordinator(ctx, checkpoint.Options{Storage: st, Operators: []checkpoint.Operator{{Name: "a", Subtasks: ps}}})
	noErr(t, err)
	defer c.Close()
	_, err = c.Checkpoint(ctx)
	if !errors.Is(err, checkpoint.ErrAborted) || !errors.Is(err, snapshot.ErrInconsistent) {
		t.Fatalf("checkpoint of overlapping subtasks: %v, want ErrAborted and ErrInconsistent", err)
	}
	if got := onDisk(t, st.Root()); len(got) != 0 {
		t.Fatalf("debris after the abort: %q", got)
	}
}
