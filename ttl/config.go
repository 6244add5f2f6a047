package ttl

import (
	"errors"
	"fmt"
	"time"
)

// UpdateType says when an entry's stamp is refreshed.
type UpdateType uint8

const (
	// OnCreateAndWrite refreshes the stamp on every write. The default.
	OnCreateAndWrite UpdateType = iota
	// OnReadAndWrite refreshes the stamp on every read and write.
	OnReadAndWrite
	// Disabled turns TTL off whatever the duration, as Flink's
	// UpdateType.Disabled does.
	Disabled
)

// Visibility says whether reads may return expired entries that cleanup
// has not removed yet.
type Visibility uint8

const (
	// NeverReturnExpired hides expired entries. The default.
	NeverReturnExpired Visibility = iota
	// ReturnExpiredIfNotCleanedUp returns an expired entry that is still
	// stored, once: the read removes it.
	ReturnExpiredIfNotCleanedUp
)

// DefaultQueryTimeAfterNumEntries is how many entries background cleanup
// checks before it reads the clock again, as in Flink.
const DefaultQueryTimeAfterNumEntries = 1000

// DefaultAccessCleanupSize is how many entries access cleanup checks per
// state access, as Flink's incremental cleanup does.
const DefaultAccessCleanupSize = 5

// Config is a state's time-to-live, set on its descriptor. The zero value
// is TTL off.
type Config struct {
	// TTL is how long an entry lives after its last stamp. Zero means TTL
	// off. It is counted in whole milliseconds and must be at least 1 ms.
	TTL time.Duration
	// Update says which accesses refresh the stamp. Default: OnCreateAndWrite.
	Update UpdateType
	// Visibility says whether expired entries may be read. Default:
	// NeverReturnExpired.
	Visibility Visibility
	// Cleanup chooses how expired entries leave the disk.
	Cleanup Cleanup
}

// Cleanup chooses the cleanup strategies of a TTL state. Whatever they are,
// reads never return expired entries (under NeverReturnExpired) and remove
// the expired entries they meet.
type Cleanup struct {
	// DisableBackground turns off background cleanup: the filter that scans
	// what Pebble's flushes and compactions just wrote, plus the periodic
	// sweep over everything else. Default: on, as in Flink.
	DisableBackground bool
	// QueryTimeAfterNumEntries is how many entries background cleanup checks
	// between clock reads. Default: 1000.
	QueryTimeAfterNumEntries int
	// OnAccess, when Enabled, makes every access to the state check the
	// next Size entries of its key range for expiry. Default: off.
	OnAccess AccessCleanup
	// FullSnapshot leaves expired entries out of full snapshots. Default:
	// off, as in Flink.
	FullSnapshot bool
}

// AccessCleanup configures cleanup on state access: what Flink calls
// "incremental cleanup" (unrelated to incremental checkpoints). Each access
// to the state checks a few more entries of its key range, from where the
// last step stopped, and removes or trims the expired ones.
type AccessCleanup struct {
	// Enabled turns access cleanup on.
	Enabled bool
	// Size is how many entries each step checks. Default: 5.
	Size int
	// OnEveryKey also takes a step on every SetCurrentKey of the backend,
	// not only on accesses to this state.
	OnEveryKey bool
}

// ErrInvalidConfig is returned by Config.Validate.
var ErrInvalidConfig = errors.New("ttl: invalid config")

// Enabled reports whether TTL is on.
func (c Config) Enabled() bool { return c.TTL != 0 && c.Update != Disabled }

// Millis returns the TTL in milliseconds.
func (c Config) Millis() int64 { return c.TTL.Milliseconds() }

// EnsureDefaults fills zero fields with their defaults.
func (c *Config) EnsureDefaults() {
	if c.Cleanup.QueryTimeAfterNumEntries == 0 {
		c.Cleanup.QueryTimeAfterNumEntries = DefaultQueryTimeAfterNumEntries
	}
	if c.Cleanup.OnAccess.Size == 0 {
		c.Cleanup.OnAccess.Size = DefaultAccessCleanupSize
	}
}

// Validate reports a config that cannot be used.
func (c Config) Validate() error {
	var errs []error
	if c.TTL < 0 || (c.TTL > 0 && c.TTL < time.Millisecond) {
		errs = append(errs, fmt.Errorf("%w: TTL %v must be zero (off) or at least 1ms", ErrInvalidConfig, c.TTL))
	}
	if c.Update > Disabled {
		errs = append(errs, fmt.Errorf("%w: unknown update type %d", ErrInvalidConfig, c.Update))
	}
	if c.Visibility > ReturnExpiredIfNotCleanedUp {
		errs = append(errs, fmt.Errorf("%w: unknown visibility %d", ErrInvalidConfig, c.Visibility))
	}
	if c.Cleanup.QueryTimeAfterNumEntries < 0 {
		errs = append(errs, fmt.Errorf("%w: QueryTimeAfterNumEntries %d is negative", ErrInvalidConfig, c.Cleanup.QueryTimeAfterNumEntries))
	}
	if c.Cleanup.OnAccess.Size < 0 {
		errs = append(errs, fmt.Errorf("%w: access cleanup size %d is negative", ErrInvalidConfig, c.Cleanup.OnAccess.Size))
	}
	return errors.Join(errs...)
}
