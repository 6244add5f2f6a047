package backend

import "sync/atomic"

// TTLMetrics counts the work of state TTL cleanup since the backend was
// opened, per strategy.
type TTLMetrics struct {
	// ReadRemoved counts expired entries removed because a read met them.
	ReadRemoved uint64
	// AccessScanned and AccessRemoved count the entries checked and removed
	// or trimmed by access cleanup (ttl.Cleanup.OnAccess, Flink's
	// "incremental cleanup").
	AccessScanned, AccessRemoved uint64
	// BackgroundScanned and BackgroundRemoved count the entries checked and
	// removed or trimmed by background cleanup and CleanupExpired.
	BackgroundScanned, BackgroundRemoved uint64
}

type ttlCounters struct {
	readRemoved                  atomic.Uint64
	accessScanned, accessRemoved atomic.Uint64
	bgScanned, bgRemoved         atomic.Uint64
}

// TTLMetrics returns the TTL cleanup counters. It is safe to call from any
// goroutine.
func (b *Backend[K]) TTLMetrics() TTLMetrics {
	c := &b.ttlMetrics
	return TTLMetrics{
		ReadRemoved:       c.readRemoved.Load(),
		AccessScanned:     c.accessScanned.Load(),
		AccessRemoved:     c.accessRemoved.Load(),
		BackgroundScanned: c.bgScanned.Load(),
		BackgroundRemoved: c.bgRemoved.Load(),
	}
}
