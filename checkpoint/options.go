package checkpoint

import (
	"errors"
	"fmt"
	"time"

	"github.com/pebblestate/pebblestate/snapshot"
)

// Defaults of Options fields left at their zero value, Flink's.
const (
	DefaultMaxInFlight         = 1
	DefaultTimeout             = 10 * time.Minute
	DefaultRetainedCheckpoints = 1
)

// Operator is one operator of the job: its name (backend.Options.Operator
// of its backends) and one participant per subtask; the parallelism is
// len(Subtasks), and Subtasks[i] is subtask i.
type Operator struct {
	Name     string
	Subtasks []Participant
}

// Options configure a Coordinator. The zero value of every field but
// Storage and Operators means its default.
type Options struct {
	// Storage is the checkpoint root every checkpoint goes to. Required.
	Storage snapshot.Storage

	// Operators are the job's operators. Required: at least one, with
	// distinct non-empty names and at least one subtask each.
	Operators []Operator

	// RetainedCheckpoints is how many completed checkpoints retention
	// keeps after each commit. Default: 1, as in Flink. This is the one
	// place a job sets retention: backend.Options.RetainedCheckpoints
	// applies only to Backend.Checkpoint, the one-call checkpoint of a
	// backend alone, which a coordinated job never calls.
	RetainedCheckpoints int

	// MaxInFlight is how many checkpoints may be in flight at once;
	// Trigger fails with ErrTooManyInFlight beyond it. Default: 1, as in
	// Flink.
	MaxInFlight int

	// Timeout aborts a checkpoint not committed this long after Trigger.
	// Default: 10 minutes, as in Flink. Negative turns it off.
	Timeout time.Duration

	// Restored is the checkpoint the job started from (LatestCheckpoint),
	// or nil for a job started empty. Its ids continue above it; its
	// operators must be claimed by Operators (snapshot.CheckClaimed, with
	// its AllowNonRestoredState); and restored under backend.NoClaim into
	// this Storage, retention keeps it.
	Restored *Restored

	// OnReport, if set, receives the Stats of every checkpoint when it
	// completes or aborts, on a coordinator goroutine, before Wait
	// returns. It must not call the coordinator.
	OnReport func(Stats)

	// now is the clock of Stats and of the metadata's creation time;
	// tests replace it. Default: time.Now.
	now func() time.Time
}

// EnsureDefaults fills every zero field but Storage and Operators with
// its default.
func (o *Options) EnsureDefaults() {
	if o.RetainedCheckpoints == 0 {
		o.RetainedCheckpoints = DefaultRetainedCheckpoints
	}
	if o.MaxInFlight == 0 {
		o.MaxInFlight = DefaultMaxInFlight
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.now == nil {
		o.now = time.Now
	}
}

// Validate reports every problem with the options, joined. Call it after
// EnsureDefaults; NewCoordinator does both.
func (o *Options) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if o.Storage == nil {
		add("checkpoint options: Storage is nil")
	}
	if len(o.Operators) == 0 {
		add("checkpoint options: no operators")
	}
	seen := make(map[string]bool)
	for i, op := range o.Operators {
		switch {
		case op.Name == "":
			add("checkpoint options: operator %d has no name", i)
		case seen[op.Name]:
			add("checkpoint options: operator %q appears twice", op.Name)
		case len(op.Subtasks) == 0:
			add("checkpoint options: operator %q has no subtasks", op.Name)
		}
		seen[op.Name] = true
		for j, p := range op.Subtasks {
			if p == nil {
				add("checkpoint options: subtask %v is nil", Subtask{op.Name, j})
			}
		}
	}
	if o.RetainedCheckpoints < 0 {
		add("checkpoint options: RetainedCheckpoints %d is negative", o.RetainedCheckpoints)
	}
	if o.MaxInFlight < 0 {
		add("checkpoint options: MaxInFlight %d is negative", o.MaxInFlight)
	}
	if r := o.Restored; r != nil && r.Checkpoint == nil {
		add("checkpoint options: Restored has no checkpoint")
	}
	return errors.Join(errs...)
}
