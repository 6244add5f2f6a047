package opstate

import "errors"

// The errors of this package, returned wrapped with the list, key group or
// file they concern; test for them with errors.Is. A file that fails to
// decode or verify is snapshot.ErrCorrupt, naming the file.
var (
	// ErrModeMismatch is returned by State.List for a name bound to the
	// other mode, and by a restore whose old subtasks disagree on a list's
	// mode.
	ErrModeMismatch = errors.New("operator state list declared with another mode")

	// ErrKeyGroupOutOfRange is returned when a position is written for a
	// key group the subtask does not own.
	ErrKeyGroupOutOfRange = errors.New("key group outside the subtask's range")
)
