package store

import (
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// Metrics are Pebble's metrics of the database and the write stalls the
// store counted through Pebble's event listener (Pebble's own metrics do
// not count them).
type Metrics struct {
	Pebble *pebble.Metrics
	// WriteStalls counts the times Pebble delayed writes.
	WriteStalls uint64
	// WriteStallTime is the time writes were delayed, a stall in progress
	// included.
	WriteStallTime time.Duration
}

// Metrics returns the database's metrics. It is safe to call from any
// goroutine while the store is open; it takes Pebble's metrics (a copy of
// counters under Pebble's mutex, no I/O).
func (s *Store) Metrics() Metrics {
	m := Metrics{Pebble: s.db.Metrics()}
	m.WriteStalls, m.WriteStallTime = s.mon.stalls.read(time.Now())
	return m
}

// EstimateDiskUsage returns an estimate of the bytes the keys in [lo, hi)
// take on disk: the tables within the span in full, and a share of those
// that straddle its ends. What is only in the memtable is not counted.
// It reads no data, only the table metadata; it is safe to call from any
// goroutine while the store is open.
func (s *Store) EstimateDiskUsage(lo, hi []byte) (uint64, error) {
	return s.db.EstimateDiskUsage(lo, hi)
}

// stallCounter counts write stalls. Pebble's listener reports their
// beginnings and ends from its own goroutines, one stall at a time.
type stallCounter struct {
	count atomic.Uint64
	nanos atomic.Int64 // of the stalls that ended
	began atomic.Int64 // Unix nanoseconds of the stall in progress, or 0
}

func (c *stallCounter) begin(now time.Time) {
	c.count.Add(1)
	c.began.Store(now.UnixNano())
}

func (c *stallCounter) end(now time.Time) {
	if b := c.began.Swap(0); b != 0 {
		c.nanos.Add(now.UnixNano() - b)
	}
}

// read returns the stalls counted and their time until now.
func (c *stallCounter) read(now time.Time) (uint64, time.Duration) {
	d := c.nanos.Load()
	if b := c.began.Load(); b != 0 {
		d += max(0, now.UnixNano()-b)
	}
	return c.count.Load(), time.Duration(d)
}
