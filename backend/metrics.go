package backend

import (
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/pebblestate/pebblestate/internal/keys"
	"github.com/pebblestate/pebblestate/internal/meta"
)

// Metrics is a snapshot of what a backend has done and holds, as plain
// values: Pebble's own metrics, TTL cleanup, checkpoints, the restore that
// made the backend, state sizes and timers. Counters ("Total" in the name)
// count from when the backend was opened or restored in this process;
// sizes are in bytes ("Bytes" in the name) and durations are
// time.Duration. The package metrics/prom exports it to Prometheus.
type Metrics struct {
	// Closed is set when the backend is closed: Pebble and States are then
	// zero, the counters keep their last values.
	Closed bool
	// Pebble are the database's metrics.
	Pebble PebbleMetrics
	// TTL counts the work of TTL cleanup.
	TTL TTLMetrics
	// Checkpoints describe this backend's snapshots.
	Checkpoints CheckpointMetrics
	// Restore describes the restore that made this backend, or is nil if
	// it was opened with Open.
	Restore *RestoreStats
	// States are the states the backend's directory holds, registered in
	// this process or not, by name.
	States []StateMetrics
	// Timers are the timer services registered in this process, by name.
	Timers []TimerMetrics
}

// PebbleMetrics are the parts of Pebble's metrics (pebble.Metrics) an
// operator watches.
type PebbleMetrics struct {
	// Levels are the LSM levels, L0 first.
	Levels [7]LevelMetrics
	// DiskUsageBytes is the bytes the database takes on disk: tables,
	// WAL, MANIFEST and OPTIONS files, obsolete files not yet deleted.
	DiskUsageBytes uint64
	// ReadAmplification is the number of sorted runs a read may consult:
	// the sublevels of L0 and every non-empty other level.
	ReadAmplification int
	// CompactionsTotal counts compactions; CompactedBytesTotal the bytes
	// they wrote; CompactionDebtBytes estimates the bytes still to compact.
	CompactionsTotal    int64
	CompactedBytesTotal uint64
	CompactionDebtBytes uint64
	// FlushesTotal counts memtable flushes, FlushedBytesTotal the bytes
	// they wrote.
	FlushesTotal      int64
	FlushedBytesTotal uint64
	// IngestionsTotal counts ingestions (a restore's).
	IngestionsTotal uint64
	// WriteStallsTotal counts the times Pebble delayed writes (too many
	// memtables or L0 files); WriteStallTime is how long, in all.
	WriteStallsTotal uint64
	WriteStallTime   time.Duration
	// Block cache: hits and misses since open, bytes in use and blocks.
	BlockCacheHitsTotal   int64
	BlockCacheMissesTotal int64
	BlockCacheBytes       int64
	BlockCacheBlocks      int64
	// MemTableBytes is the memory of the memtables (the mutable one and
	// those waiting to be flushed), MemTables their number.
	MemTableBytes uint64
	MemTables     int64
	// WALBytes is the live size of the write-ahead log (zero with the WAL
	// off, Options.EnableWAL), WALWrittenBytesTotal what was written to it.
	WALBytes             uint64
	WALWrittenBytesTotal uint64
}

// LevelMetrics describe one LSM level.
type LevelMetrics struct {
	Files int64
	Bytes int64
	// Sublevels is L0's number of sublevels; 1 for a non-empty other
	// level, 0 for an empty one.
	Sublevels int32
}

// StateMetrics describe one state.
type StateMetrics struct {
	Name string
	Kind string // "value", "list", "map", "reducing", "aggregating" or "timers"
	// DiskBytesEstimate is an estimate of the bytes the state's entries
	// take on disk (Pebble's EstimateDiskUsage over the state's key span:
	// its tables in full, a share of the tables it shares with a
	// neighbouring state). What is only in the memtable is not counted, so
	// a state written since the last flush may show 0.
	DiskBytesEstimate uint64
}

// TimerMetrics describe one timer service.
type TimerMetrics struct {
	Name string
	TimerStats
}

// Metrics returns a snapshot of the backend's metrics. Unlike the state
// API, it is safe to call from any goroutine, beside the task's and
// beside Close. It is cheap enough for a scraper to call every second:
// Pebble's counters, taken under its mutex, and the state sizes, which
// are estimated again (from the index blocks of the tables straddling a
// state's bounds) only after a flush, compaction or ingestion changed the
// tables (tens of microseconds a call; BenchmarkMetrics). After Close it
// returns the counters with Closed set.
func (b *Backend[K]) Metrics() Metrics {
	m := Metrics{
		TTL:         b.TTLMetrics(),
		Checkpoints: b.snaps.metrics(),
		Timers:      b.timerMetrics(),
	}
	if b.restored != nil {
		r := *b.restored
		m.Restore = &r
	}
	b.lifecycle.RLock()
	defer b.lifecycle.RUnlock()
	if b.closed.Load() {
		m.Closed = true
		return m
	}
	var lsm lsmVersion
	m.Pebble, lsm = b.pebbleMetrics()
	m.States = b.stateSizes(lsm)
	return m
}

// lsmVersion identifies the set of tables of a database as far as state
// sizes care: any flush, compaction or ingestion changes it.
type lsmVersion struct {
	flushes, compactions int64
	ingestions           uint64
}

// stateSizeCache keeps the state sizes Metrics estimated last: an
// estimate reads the index of every table that straddles a state's
// bounds, so it is made again only when the tables or the states changed.
type stateSizeCache struct {
	mu     sync.Mutex
	lsm    lsmVersion
	states *[]meta.State
	sizes  []StateMetrics
}

// stateSizes returns an estimate of each state's size on disk, under
// b.lifecycle.
func (b *Backend[K]) stateSizes(lsm lsmVersion) []StateMetrics {
	p := b.stateList.Load()
	if p == nil {
		return nil
	}
	c := &b.sizeCache
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.states == p && c.lsm == lsm {
		return slices.Clone(c.sizes)
	}
	sizes := make([]StateMetrics, 0, len(*p))
	for _, s := range *p {
		lo, hi := keys.StateBounds(s.ID)
		n, err := b.st.EstimateDiskUsage(lo, hi)
		if err != nil {
			n = 0 // only a closed database fails, which the lock excludes
		}
		sizes = append(sizes, StateMetrics{Name: s.Name, Kind: s.Kind.String(), DiskBytesEstimate: n})
	}
	c.lsm, c.states, c.sizes = lsm, p, sizes
	return slices.Clone(sizes)
}

func (b *Backend[K]) pebbleMetrics() (PebbleMetrics, lsmVersion) {
	sm := b.st.Metrics()
	pm := sm.Pebble
	lsm := lsmVersion{flushes: pm.Flush.Count, compactions: pm.Compact.Count, ingestions: pm.Ingest.Count}
	var out PebbleMetrics
	for i := range out.Levels {
		l := pm.Levels[i]
		out.Levels[i] = LevelMetrics{Files: l.TablesCount, Bytes: l.TablesSize, Sublevels: l.Sublevels}
		out.CompactedBytesTotal += l.TableBytesCompacted
		out.FlushedBytesTotal += l.TableBytesFlushed
	}
	out.DiskUsageBytes = pm.DiskSpaceUsage()
	out.ReadAmplification = pm.ReadAmp()
	out.CompactionsTotal = pm.Compact.Count
	out.CompactionDebtBytes = pm.Compact.EstimatedDebt
	out.FlushesTotal = pm.Flush.Count
	out.IngestionsTotal = pm.Ingest.Count
	out.WriteStallsTotal, out.WriteStallTime = sm.WriteStalls, sm.WriteStallTime
	out.BlockCacheHitsTotal, out.BlockCacheMissesTotal = pm.BlockCache.Hits, pm.BlockCache.Misses
	out.BlockCacheBytes, out.BlockCacheBlocks = pm.BlockCache.Size, pm.BlockCache.Count
	out.MemTableBytes, out.MemTables = pm.MemTable.Size, pm.MemTable.Count
	out.WALBytes, out.WALWrittenBytesTotal = pm.WAL.Size, pm.WAL.BytesWritten
	return out, lsm
}

// publishStates makes the stored state records visible to Metrics, which
// may run on another goroutine. The task goroutine calls it whenever they
// change (open, registration, restore).
func (b *Backend[K]) publishStates() {
	states := b.st.States()
	slices.SortFunc(states, func(a, c meta.State) int { return strings.Compare(a.Name, c.Name) })
	b.stateList.Store(&states)
}

// timerMetrics returns the counters of the timer services registered so
// far, by name.
func (b *Backend[K]) timerMetrics() []TimerMetrics {
	b.timerReg.mu.Lock()
	defer b.timerReg.mu.Unlock()
	out := make([]TimerMetrics, 0, len(b.timerReg.services))
	for _, c := range b.timerReg.services {
		out = append(out, TimerMetrics{Name: c.name, TimerStats: c.stats()})
	}
	slices.SortFunc(out, func(a, c TimerMetrics) int { return strings.Compare(a.Name, c.Name) })
	return out
}
