package snapshot

import (
	"sync"
	"time"
)

// Progress says how far a checkpoint's upload or a restore has come: the
// files and bytes done, of the totals. A total of zero means it is not
// known in advance (the bytes of a full snapshot, which are known only
// once written).
type Progress struct {
	Files, FilesTotal int
	Bytes, BytesTotal int64
}

// Fraction returns the share of the work done, in [0, 1]: by bytes when
// their total is known, else by files, else 0.
func (p Progress) Fraction() float64 {
	switch {
	case p.BytesTotal > 0:
		return min(1, float64(p.Bytes)/float64(p.BytesTotal))
	case p.FilesTotal > 0:
		return min(1, float64(p.Files)/float64(p.FilesTotal))
	}
	return 0
}

// ProgressInterval is how often a ProgressTracker reports at most, besides
// its first and last report.
const ProgressInterval = 100 * time.Millisecond

// ProgressTracker counts the work of one operation and reports it to a
// callback: once when the totals are set, then at most once every
// ProgressInterval as work is added, and once at Finish with every file
// and byte done. Add may be called from several goroutines (parallel
// uploads or fetches); the callback is called from the goroutine that
// added the work, never from two at once, with Files and Bytes never
// decreasing. A nil tracker does nothing, so operations without a
// callback pay nothing.
type ProgressTracker struct {
	fn       func(Progress)
	interval time.Duration

	mu       sync.Mutex
	p        Progress
	reported time.Time
	finished bool
}

// NewProgressTracker returns a tracker reporting to fn, or nil if fn is
// nil.
func NewProgressTracker(fn func(Progress)) *ProgressTracker {
	if fn == nil {
		return nil
	}
	return &ProgressTracker{fn: fn, interval: ProgressInterval}
}

// AddTotal adds to the totals (an operation learns them in steps: the
// files of a handle once it knows which handles it reads) and reports.
func (t *ProgressTracker) AddTotal(files int, bytes int64) {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.p.FilesTotal += files
	t.p.BytesTotal += bytes
	t.report(true)
}

// Add counts work done and reports it if ProgressInterval has passed since
// the last report.
func (t *ProgressTracker) Add(files int, bytes int64) {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.p.Files += files
	t.p.Bytes += bytes
	t.report(false)
}

// Finish reports the end of the work: totals that were not known become
// what was done. It reports once, however often it is called.
func (t *ProgressTracker) Finish() {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.finished {
		return
	}
	t.p.FilesTotal = max(t.p.FilesTotal, t.p.Files)
	t.p.BytesTotal = max(t.p.BytesTotal, t.p.Bytes)
	t.report(true)
	t.finished = true
}

// Progress returns the work counted so far.
func (t *ProgressTracker) Progress() Progress {
	if t == nil {
		return Progress{}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.p
}

// report calls the callback, under t.mu, if forced or due.
func (t *ProgressTracker) report(force bool) {
	if t.finished {
		return
	}
	now := time.Now()
	if !force && now.Sub(t.reported) < t.interval {
		return
	}
	t.reported = now
	t.fn(t.p)
}
