package checkpoint

import "errors"

// The errors of this package, returned wrapped with the checkpoint or
// subtask they concern; test for them with errors.Is.
var (
	// ErrAborted is wrapped by the error of every checkpoint that did not
	// complete, together with its cause: a subtask's error, ErrTimeout,
	// the trigger's context error, snapshot.ErrSubsumed (a later
	// checkpoint completed first), ErrClosed, or the commit's error.
	ErrAborted = errors.New("checkpoint aborted")

	// ErrTimeout is the cause of a checkpoint aborted because not every
	// subtask reported within Options.Timeout.
	ErrTimeout = errors.New("checkpoint timed out")

	// ErrTooManyInFlight is returned by Trigger when
	// Options.MaxInFlight checkpoints are already in flight.
	ErrTooManyInFlight = errors.New("too many checkpoints in flight")

	// ErrClosed is returned by a closed coordinator, and is the cause of
	// the checkpoints Close aborts.
	ErrClosed = errors.New("checkpoint coordinator closed")

	// ErrUnknownCheckpoint is returned by Acknowledge and Decline for a
	// checkpoint id that is not in flight: never triggered, or already
	// completed or aborted. The state handed in was released.
	ErrUnknownCheckpoint = errors.New("checkpoint not in flight")

	// ErrUnknownSubtask is returned by Acknowledge and Decline for a
	// subtask the coordinator was not configured with, or one that already
	// reported for the checkpoint.
	ErrUnknownSubtask = errors.New("unexpected subtask")
)
