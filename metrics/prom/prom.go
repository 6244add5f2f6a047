package prom

import (
	"fmt"
	"slices"
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pebblestate/pebblestate/backend"
	"github.com/pebblestate/pebblestate/checkpoint"
)

// Source is what the collector reads a backend's metrics from:
// *backend.Backend[K] for any K. Metrics is called on the scraping
// goroutine, which Backend.Metrics allows.
type Source interface {
	Metrics() backend.Metrics
}

// Collector is a prometheus.Collector of the metrics of the backends
// added to it and of the last checkpoint a coordinator reported. Its
// methods are safe to call from any goroutine.
type Collector struct {
	mu       sync.Mutex
	sources  map[subtaskKey]Source
	reported *checkpoint.Stats // the last completed checkpoint
	counts   struct{ completed, aborted uint64 }
}

type subtaskKey struct {
	operator string
	subtask  int
}

// NewCollector returns a Collector with no backends.
func NewCollector() *Collector {
	return &Collector{sources: make(map[subtaskKey]Source)}
}

// Add exports the metrics of src (a backend) under the labels operator
// and subtask, replacing what was added under them before. A framework
// knows both: the operator is the backend's Options.Operator and the
// subtask its index among the operator's parallel instances.
func (c *Collector) Add(operator string, subtask int, src Source) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sources[subtaskKey{operator, subtask}] = src
}

// Remove stops exporting the backend added under operator and subtask
// (closed, or moved to another process by a rescale).
func (c *Collector) Remove(operator string, subtask int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.sources, subtaskKey{operator, subtask})
}

// OnReport records a checkpoint coordinator's report: install it as
// checkpoint.Options.OnReport (or call it from the function installed
// there). Completed and aborted checkpoints are counted; the last
// completed one is exported per subtask.
func (c *Collector) OnReport(s checkpoint.Stats) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !s.Completed {
		c.counts.aborted++
		return
	}
	c.counts.completed++
	if c.reported == nil || s.ID > c.reported.ID {
		s.Subtasks = slices.Clone(s.Subtasks)
		c.reported = &s
	}
}

// Describe sends the descriptions of every metric the collector exports.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range allDescs {
		ch <- d
	}
}

// Collect sends the current metrics of every backend added and of the
// last checkpoint reported.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	keys := make([]subtaskKey, 0, len(c.sources))
	for k := range c.sources {
		keys = append(keys, k)
	}
	srcs := make([]Source, len(keys))
	for i, k := range keys {
		srcs[i] = c.sources[k]
	}
	var last *checkpoint.Stats
	if c.reported != nil {
		r := *c.reported
		last = &r
	}
	completed, aborted := c.counts.completed, c.counts.aborted
	c.mu.Unlock()

	// Backends' metrics are read outside the lock: a slow one does not
	// hold up Add and Remove.
	for i, k := range keys {
		collectBackend(ch, srcs[i].Metrics(), k.operator, strconv.Itoa(k.subtask))
	}
	ch <- prometheus.MustNewConstMetric(jobCompleted, prometheus.CounterValue, float64(completed))
	ch <- prometheus.MustNewConstMetric(jobAborted, prometheus.CounterValue, float64(aborted))
	if last != nil {
		collectJob(ch, last)
	}
}

func collectBackend(ch chan<- prometheus.Metric, m backend.Metrics, op, sub string) {
	g := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, append([]string{op, sub}, labels...)...)
	}
	c := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, append([]string{op, sub}, labels...)...)
	}
	closed := 0.0
	if m.Closed {
		closed = 1
	}
	g(backendClosed, closed)

	if !m.Closed {
		p := m.Pebble
		for i, l := range p.Levels {
			lvl := fmt.Sprint(i)
			g(levelFiles, float64(l.Files), lvl)
			g(levelBytes, float64(l.Bytes), lvl)
			g(levelSublevels, float64(l.Sublevels), lvl)
		}
		g(diskUsage, float64(p.DiskUsageBytes))
		g(readAmp, float64(p.ReadAmplification))
		c(compactions, float64(p.CompactionsTotal))
		c(compactedBytes, float64(p.CompactedBytesTotal))
		g(compactionDebt, float64(p.CompactionDebtBytes))
		c(flushes, float64(p.FlushesTotal))
		c(flushedBytes, float64(p.FlushedBytesTotal))
		c(ingestions, float64(p.IngestionsTotal))
		c(writeStalls, float64(p.WriteStallsTotal))
		c(writeStallSeconds, p.WriteStallTime.Seconds())
		c(cacheHits, float64(p.BlockCacheHitsTotal))
		c(cacheMisses, float64(p.BlockCacheMissesTotal))
		g(cacheBytes, float64(p.BlockCacheBytes))
		g(cacheBlocks, float64(p.BlockCacheBlocks))
		g(memtableBytes, float64(p.MemTableBytes))
		g(memtables, float64(p.MemTables))
		g(walBytes, float64(p.WALBytes))
		c(walWritten, float64(p.WALWrittenBytesTotal))
		for _, s := range m.States {
			g(stateBytes, float64(s.DiskBytesEstimate), s.Name, s.Kind)
		}
	}

	t := m.TTL
	c(ttlRemoved, float64(t.ReadRemoved), "read")
	c(ttlRemoved, float64(t.AccessRemoved), "access")
	c(ttlRemoved, float64(t.BackgroundRemoved), "background")
	c(ttlScanned, float64(t.AccessScanned), "access")
	c(ttlScanned, float64(t.BackgroundScanned), "background")

	k := m.Checkpoints
	c(cpSnapshots, float64(k.SnapshotsTotal))
	c(cpWritten, float64(k.WrittenTotal))
	c(cpFailed, float64(k.FailedTotal))
	c(cpCompleted, float64(k.CompletedTotal))
	c(cpAborted, float64(k.AbortedTotal))
	c(cpSyncSeconds, k.SyncTimeTotal.Seconds())
	c(cpAsyncSeconds, k.AsyncTimeTotal.Seconds())
	c(cpUploadedBytes, float64(k.UploadedBytesTotal))
	if l := k.Last; l != nil {
		g(cpLastID, float64(l.CheckpointID))
		g(cpLastSync, l.SyncDuration.Seconds())
		g(cpLastAsync, l.AsyncDuration.Seconds())
		g(cpLastUploaded, float64(l.UploadedBytes))
		g(cpLastFullSize, float64(l.FullSizeBytes))
	}

	if r := m.Restore; r != nil {
		g(restoreBytes, float64(r.Bytes))
		g(restoreFiles, float64(r.Files))
		g(restoreLocal, float64(r.LocalBytes))
		g(restoreDownloaded, float64(r.DownloadedBytes))
		g(restoreSeconds, r.Duration.Seconds())
		g(restoreCheckpoint, float64(r.CheckpointID))
	}

	for _, s := range m.Timers {
		c(timersRegistered, float64(s.Registered), s.Name)
		c(timersDeleted, float64(s.Deleted), s.Name)
		c(timersFired, float64(s.Fired), s.Name)
		g(timersPending, float64(s.Pending), s.Name)
		exact := 0.0
		if s.PendingExact {
			exact = 1
		}
		g(timersPendingExact, exact, s.Name)
	}
}

func collectJob(ch chan<- prometheus.Metric, s *checkpoint.Stats) {
	g := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	g(jobLastID, float64(s.ID))
	g(jobLastDuration, s.Duration.Seconds())
	g(jobLastCheckpointed, float64(s.CheckpointedSize))
	g(jobLastState, float64(s.StateSize))
	for _, st := range s.Subtasks {
		op, sub := st.Subtask.Operator, strconv.Itoa(st.Subtask.Index)
		g(jobSubSync, st.SyncDuration.Seconds(), op, sub)
		g(jobSubAsync, st.AsyncDuration.Seconds(), op, sub)
		g(jobSubCheckpointed, float64(st.CheckpointedSize), op, sub)
		g(jobSubState, float64(st.StateSize), op, sub)
	}
}
