package backend

import (
	"errors"
	"fmt"

	"github.com/pebblestate/pebblestate/internal/keygroup"
	"github.com/pebblestate/pebblestate/internal/store"
)

// Sentinel errors. Errors returned by this package wrap one of these where
// one applies, so callers can test with errors.Is.
var (
	// ErrClosed is returned by any use of a closed backend or its states.
	ErrClosed = errors.New("backend: closed")
	// ErrNoCurrentKey is returned by state access before SetCurrentKey.
	ErrNoCurrentKey = errors.New("backend: no current key")
	// ErrKeyGroupOutOfRange is returned when a key belongs to a key group
	// this backend does not own.
	ErrKeyGroupOutOfRange = errors.New("backend: key group out of range")
	// ErrIncompatibleState is returned when a state is registered under a
	// name already used with another kind, codec or Go type, or, in one
	// process, with another TTL config (switching TTL on, off or to other
	// settings is done by registering the new config after a reopen).
	ErrIncompatibleState = errors.New("backend: incompatible state")
	// ErrIncompatibleBackend is returned when a directory holds a backend
	// created with other settings (max parallelism, key groups, key codec).
	ErrIncompatibleBackend = store.ErrIncompatible
	// ErrInvalidOptions is returned by Options.Validate and Open.
	ErrInvalidOptions = errors.New("backend: invalid options")
	// ErrInvalidArgument is returned for a bad descriptor or argument, and
	// by the key-group functions for an out-of-range parallelism, index or
	// key group.
	ErrInvalidArgument = keygroup.ErrInvalidArgument
	// ErrCorrupt is returned when stored bytes cannot be decoded.
	ErrCorrupt = store.ErrCorrupt
	// ErrUnfinishedRestore is returned by Open for a directory a restore
	// did not finish (it was killed, or its machine failed): the
	// directory holds part of the state at most. Restore into it again,
	// or remove it.
	ErrUnfinishedRestore = errors.New("unfinished restore")
)

// errorf wraps sentinel with a formatted message.
func errorf(sentinel error, format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{sentinel}, args...)...)
}
