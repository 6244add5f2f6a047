package backend

import "sync/atomic"

// TTLMetrics counts the work of state TTL cleanup since the backend was
// opened, per strategy, and shows the read buffer (Options.TTLReadBuffer).
type TTLMetrics struct {
	// ReadRemoved counts expired entries removed because a read met them.
	ReadRemoved uint64
	// IncrementalScanned and IncrementalRemoved count the entries checked and
	// removed or trimmed by incremental cleanup.
	IncrementalScanned, IncrementalRemoved uint64
	// BackgroundScanned and BackgroundRemoved count the entries checked and
	// removed or trimmed by background cleanup and CleanupExpired.
	BackgroundScanned, BackgroundRemoved uint64

	// ReadBufferKeys and ReadBufferBytes are what the read buffer holds
	// now: the keys whose TTL writes reads put off, and about the memory
	// they take. The next snapshot writes them back, at a microsecond or
	// two per key.
	ReadBufferKeys, ReadBufferBytes uint64
	// ReadBufferOverflows counts reads whose TTL write went to Pebble at
	// once because the read buffer was full. If it grows between
	// snapshots, the task reads more keys between them than the buffer
	// holds.
	ReadBufferOverflows uint64
	// ReadBufferWrittenBack counts the keys written from the read buffer
	// to Pebble.
	ReadBufferWrittenBack uint64
}

type ttlCounters struct {
	readRemoved            atomic.Uint64
	incScanned, incRemoved atomic.Uint64
	bgScanned, bgRemoved   atomic.Uint64
	bufKeys, bufBytes      atomic.Uint64 // copies of the read buffer's size
	overflows, writtenBack atomic.Uint64
}

// TTLMetrics returns the TTL cleanup counters. It is safe to call from any
// goroutine.
func (b *Backend[K]) TTLMetrics() TTLMetrics {
	c := &b.ttlMetrics
	return TTLMetrics{
		ReadRemoved:        c.readRemoved.Load(),
		IncrementalScanned: c.incScanned.Load(),
		IncrementalRemoved: c.incRemoved.Load(),
		BackgroundScanned:  c.bgScanned.Load(),
		BackgroundRemoved:  c.bgRemoved.Load(),

		ReadBufferKeys:        c.bufKeys.Load(),
		ReadBufferBytes:       c.bufBytes.Load(),
		ReadBufferOverflows:   c.overflows.Load(),
		ReadBufferWrittenBack: c.writtenBack.Load(),
	}
}
