package ttl

import (
	"sync"
	"time"
)

// Clock supplies processing time. Implementations must be safe for
// concurrent use: background cleanup reads the clock beside the task.
type Clock interface {
	// Now returns the current processing time.
	Now() time.Time
}

// SystemClock reads the wall clock. It is the default Clock.
type SystemClock struct{}

// Now returns time.Now().
func (SystemClock) Now() time.Time { return time.Now() }

// ManualClock is a Clock that moves only when told to, for tests and
// deterministic replays. The zero value reads the Unix epoch.
type ManualClock struct {
	mu  sync.Mutex
	now time.Time
}

// NewManualClock returns a ManualClock reading t.
func NewManualClock(t time.Time) *ManualClock { return &ManualClock{now: t} }

// Now returns the clock's current time.
func (c *ManualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.now.IsZero() {
		return time.UnixMilli(0)
	}
	return c.now
}

// Set moves the clock to t.
func (c *ManualClock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

// Advance moves the clock forward by d.
func (c *ManualClock) Advance(d time.Duration) {
	c.mu.Lock()
	if c.now.IsZero() {
		c.now = time.UnixMilli(0)
	}
	c.now = c.now.Add(d)
	c.mu.Unlock()
}
