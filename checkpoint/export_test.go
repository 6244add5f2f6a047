package checkpoint

import "time"

// SetHook makes c call hook at each step of a commit: "commit" (before
// the metadata is written), "committed", "retain".
func SetHook(c *Coordinator, hook func(step string, id int64)) { c.hook = hook }

// WithClock returns opts with the coordinator's clock replaced.
func WithClock(opts Options, now func() time.Time) Options {
	opts.now = now
	return opts
}
