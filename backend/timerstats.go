package backend

import (
	"sync"
	"sync/atomic"
)

// timerCounters are a timer service's TimerStats, written by the task
// goroutine and read from any.
type timerCounters struct {
	name                       string
	registered, deleted, fired atomic.Uint64
	pending                    atomic.Int64 // the sum of its queues' counts
	inexact                    atomic.Int64 // key groups whose count may be off
}

func (c *timerCounters) stats() TimerStats {
	return TimerStats{
		Registered:   c.registered.Load(),
		Deleted:      c.deleted.Load(),
		Fired:        c.fired.Load(),
		Pending:      uint64(max(0, c.pending.Load())),
		PendingExact: c.inexact.Load() == 0,
	}
}

// timerRegistry lists the counters of a backend's timer services for
// Metrics.
type timerRegistry struct {
	mu       sync.Mutex
	services []*timerCounters
}

// add lists the counters of a new timer service.
func (r *timerRegistry) add(c *timerCounters) {
	r.mu.Lock()
	r.services = append(r.services, c)
	r.mu.Unlock()
}
