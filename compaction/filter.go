package compaction

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/pebblestate/pebblestate/internal/keys"
	"github.com/pebblestate/pebblestate/ttl"
)

// Defaults of Config fields left at zero.
const (
	DefaultSweepInterval            = time.Hour
	DefaultScanRate                 = 1_000_000
	DefaultQueryTimeAfterNumEntries = ttl.DefaultQueryTimeAfterNumEntries
)

// confirmBatch is how many condemned entries are collected before they
// are confirmed.
const confirmBatch = 32

// maxPending bounds the queue of spans; past it they collapse into one.
const maxPending = 64

// Config configures a Filter.
type Config struct {
	// Clock supplies the time expiry is judged at. Required.
	Clock ttl.Clock
	// Lock serialises the filter's deletions with the task's state writes.
	// Required.
	Lock sync.Locker
	// SweepInterval is how often every TTL state is scanned in full.
	// Default: one hour. Negative turns the periodic sweep off.
	SweepInterval time.Duration
	// ScanRate caps the background worker's work per second, in entries
	// checked; removing an entry counts as removalCost (100) checks.
	// CleanupExpired is not capped. Default: 1,000,000.
	ScanRate int
	// QueryTimeAfterNumEntries is how many entries are checked between clock
	// reads. Default: 1000.
	QueryTimeAfterNumEntries int
	// Scanned and Removed, if set, count the entries checked and the entries
	// removed or trimmed.
	Scanned, Removed *atomic.Uint64
	// OnError, if set, receives errors of the background worker, which
	// otherwise only skip the span at hand.
	OnError func(error)
}

// Filter is the background TTL filter of one database.
type Filter struct {
	cfg     Config
	db      *pebble.DB
	targets atomic.Pointer[[]Target] // sorted by ID

	mu      sync.Mutex
	pending []span // spans reported by flushes and compactions
	wake    chan struct{}

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
}

// span is an inclusive key span [lo, hi].
type span struct{ lo, hi []byte }

// New returns a filter that does nothing until Start.
func New(cfg Config) *Filter {
	if cfg.SweepInterval == 0 {
		cfg.SweepInterval = DefaultSweepInterval
	}
	if cfg.ScanRate <= 0 {
		cfg.ScanRate = DefaultScanRate
	}
	if cfg.QueryTimeAfterNumEntries <= 0 {
		cfg.QueryTimeAfterNumEntries = DefaultQueryTimeAfterNumEntries
	}
	if cfg.Scanned == nil {
		cfg.Scanned = new(atomic.Uint64)
	}
	if cfg.Removed == nil {
		cfg.Removed = new(atomic.Uint64)
	}
	f := &Filter{cfg: cfg, wake: make(chan struct{}, 1)}
	f.targets.Store(&[]Target{})
	return f
}

// EventListener returns the listener to install in the Pebble options of
// the database before it is opened. It queues the spans flushes and
// compactions write.
func (f *Filter) EventListener() pebble.EventListener {
	return pebble.EventListener{
		FlushEnd: func(info pebble.FlushInfo) {
			if info.Err == nil {
				for _, t := range info.Output {
					f.report(t.Smallest.UserKey, t.Largest.UserKey)
				}
			}
		},
		CompactionEnd: func(info pebble.CompactionInfo) {
			if info.Err == nil {
				for _, t := range info.Output.Tables {
					f.report(t.Smallest.UserKey, t.Largest.UserKey)
				}
			}
		},
	}
}

// SetTargets replaces the set of states the filter cleans.
func (f *Filter) SetTargets(targets []Target) {
	ts := append([]Target(nil), targets...)
	sort.Slice(ts, func(i, j int) bool { return ts[i].ID < ts[j].ID })
	f.targets.Store(&ts)
}

// report queues the span [lo, hi] if it touches a target state.
func (f *Filter) report(lo, hi []byte) {
	if len(*f.targets.Load()) == 0 {
		return
	}
	s := span{lo: bytes.Clone(lo), hi: bytes.Clone(hi)}
	f.mu.Lock()
	f.pending = addSpan(f.pending, s)
	f.mu.Unlock()
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// addSpan adds s to spans, merging overlaps, and collapses the queue into
// one covering span past maxPending.
func addSpan(spans []span, s span) []span {
	out := spans[:0]
	for _, p := range spans {
		if bytes.Compare(p.hi, s.lo) < 0 || bytes.Compare(s.hi, p.lo) < 0 {
			out = append(out, p)
			continue
		}
		if bytes.Compare(p.lo, s.lo) < 0 {
			s.lo = p.lo
		}
		if bytes.Compare(p.hi, s.hi) > 0 {
			s.hi = p.hi
		}
	}
	out = append(out, s)
	if len(out) > maxPending {
		all := out[0]
		for _, p := range out[1:] {
			all = span{lo: minKey(all.lo, p.lo), hi: maxKey(all.hi, p.hi)}
		}
		out = append(out[:0], all)
	}
	return out
}

func minKey(a, b []byte) []byte {
	if bytes.Compare(a, b) < 0 {
		return a
	}
	return b
}

func maxKey(a, b []byte) []byte {
	if bytes.Compare(a, b) > 0 {
		return a
	}
	return b
}

// Start runs the background worker on db until Close.
func (f *Filter) Start(db *pebble.DB) {
	f.db = db
	f.ctx, f.cancel = context.WithCancel(context.Background())
	f.done = make(chan struct{})
	go f.run()
}

// Close stops the worker and waits for it. A scan in progress stops at its
// next entry.
func (f *Filter) Close() {
	if f.cancel == nil {
		return
	}
	f.cancel()
	<-f.done
	f.cancel = nil
}

func (f *Filter) run() {
	defer close(f.done)
	var tick <-chan time.Time
	if f.cfg.SweepInterval > 0 {
		t := time.NewTicker(f.cfg.SweepInterval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-f.ctx.Done():
			return
		case <-f.wake:
			for {
				f.mu.Lock()
				if len(f.pending) == 0 {
					f.mu.Unlock()
					break
				}
				s := f.pending[0]
				f.pending = f.pending[1:]
				f.mu.Unlock()
				f.background(f.scanSpan(f.ctx, s, true))
			}
		case <-tick:
			f.background(f.sweep(f.ctx, true))
		}
	}
}

func (f *Filter) background(err error) {
	if err != nil && !errors.Is(err, context.Canceled) && f.cfg.OnError != nil {
		f.cfg.OnError(err)
	}
}

// Cleanup runs a full pass over every target state now, unpaced, and
// compacts what it emptied. It may run beside the background worker.
func (f *Filter) Cleanup(ctx context.Context) error {
	if f.db == nil {
		return errors.New("compaction: filter not started")
	}
	return f.sweep(ctx, false)
}

// sweep scans every target state in full.
func (f *Filter) sweep(ctx context.Context, paced bool) error {
	for _, t := range *f.targets.Load() {
		lo, hi := keys.StateBounds(t.ID)
		// [lo, hi) as an inclusive span: hi is no key of the state.
		if err := f.scanSpan(ctx, span{lo: lo, hi: hi}, paced); err != nil {
			return err
		}
	}
	return nil
}

// scanSpan checks every entry of target states in [s.lo, s.hi], removes
// the expired ones, and compacts the span if they were dense.
func (f *Filter) scanSpan(ctx context.Context, s span, paced bool) error {
	targets := *f.targets.Load()
	if len(targets) == 0 {
		return nil
	}
	upper := append(bytes.Clone(s.hi), 0) // smallest key above s.hi
	it, err := f.db.NewIter(&pebble.IterOptions{LowerBound: s.lo, UpperBound: upper})
	if err != nil {
		return fmt.Errorf("compaction: scan: %w", err)
	}
	defer it.Close()

	ef := NewEntryFilter(targets, ttl.Millis(f.cfg.Clock.Now()))
	var (
		condemned  [][]byte
		scanned    int
		removed    int
		sinceClock int // entries checked since the clock was read
		start      = time.Now()
	)
	flush := func() error {
		n, err := f.confirm(ef, condemned)
		removed += n
		condemned = condemned[:0]
		return err
	}
	for valid := it.First(); valid; {
		key := it.Key()
		if _, ok := ef.Target(key); !ok {
			// Not a TTL state: jump to the next state's keys.
			if len(key) < keys.StateIDLen || key[0] == 0xFF && key[1] >= 0xFE {
				break
			}
			_, next := keys.StateBounds(uint16(key[0])<<8 | uint16(key[1]))
			valid = it.SeekGE(next)
			continue
		}
		raw, err := it.ValueAndErr()
		if err != nil {
			return fmt.Errorf("compaction: scan: %w", err)
		}
		if v, _, err := ef.Apply(key, raw); err != nil {
			f.background(fmt.Errorf("compaction: key %x: %w", key, err))
		} else if v != ttl.Keep {
			condemned = append(condemned, bytes.Clone(key))
		}
		scanned++
		if sinceClock++; sinceClock >= f.queryEvery(key) {
			ef.SetNow(ttl.Millis(f.cfg.Clock.Now()))
			sinceClock = 0
		}
		if len(condemned) >= confirmBatch {
			if err := flush(); err != nil {
				return err
			}
		}
		if scanned%256 == 0 {
			f.cfg.Scanned.Add(256)
			if err := ctx.Err(); err != nil {
				return err
			}
			if paced {
				f.pace(ctx, scanned+removed*removalCost, start)
			}
		}
		valid = it.Next()
	}
	f.cfg.Scanned.Add(uint64(scanned % 256))
	if err := it.Error(); err != nil {
		return fmt.Errorf("compaction: scan: %w", err)
	}
	if err := flush(); err != nil {
		return err
	}
	// Compact where removals are dense (a quarter of what was scanned), so
	// mass expiry returns its space at once; sparse tombstones are left to
	// Pebble's own tombstone-density compactions, since compacting a whole
	// span for a few removals would cost the task more than it returns.
	if removed > 0 && removed*4 >= scanned {
		if err := f.db.Compact(ctx, s.lo, upper, false /* parallelize */); err != nil {
			return fmt.Errorf("compaction: compact span: %w", err)
		}
	}
	return nil
}

// queryEvery returns how many entries to check between clock reads while
// scanning the state key belongs to: its own setting, or the filter's.
func (f *Filter) queryEvery(key []byte) int {
	if len(key) >= keys.StateIDLen {
		id := uint16(key[0])<<8 | uint16(key[1])
		for _, t := range *f.targets.Load() {
			if t.ID == id && t.QueryTimeAfterNumEntries > 0 {
				return t.QueryTimeAfterNumEntries
			}
		}
	}
	return f.cfg.QueryTimeAfterNumEntries
}

// removalCost is what confirming and removing one entry costs, in entries
// scanned: a point read and a write under the lock (about 6 us) against an
// iterator step (about 65 ns), as profiled on this project's machines. The
// background worker's pace counts it, so that ScanRate bounds its work,
// not just its reading, even when most of what it scans has expired.
const removalCost = 100

// pace sleeps as long as the worker is ahead of the configured rate; work
// is in entries scanned (removals weighted by removalCost).
func (f *Filter) pace(ctx context.Context, work int, start time.Time) {
	due := time.Duration(float64(work) / float64(f.cfg.ScanRate) * float64(time.Second))
	if ahead := due - time.Since(start); ahead > 0 {
		select {
		case <-ctx.Done():
		case <-time.After(ahead):
		}
	}
}

// confirm re-reads each condemned key under the write lock, judges it again
// with the same clock reading, and deletes or trims it if it is still
// expired. It returns how many entries it removed or trimmed.
//
// The lock is taken per key, so a task write waits for at most one read
// and one write, not a batch of them.
func (f *Filter) confirm(ef *EntryFilter, condemned [][]byte) (int, error) {
	n := 0
	for _, key := range condemned {
		removed, err := f.confirmOne(ef, key)
		if err != nil {
			f.cfg.Removed.Add(uint64(n))
			return n, err
		}
		if removed {
			n++
		}
	}
	f.cfg.Removed.Add(uint64(n))
	return n, nil
}

// confirmOne is confirm for one key.
func (f *Filter) confirmOne(ef *EntryFilter, key []byte) (bool, error) {
	f.cfg.Lock.Lock()
	defer f.cfg.Lock.Unlock()
	raw, closer, err := f.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return false, nil // deleted meanwhile
	}
	if err != nil {
		return false, fmt.Errorf("compaction: confirm: %w", err)
	}
	defer closer.Close()
	v, out, err := ef.Apply(key, raw)
	switch {
	case err != nil:
		// Malformed: keep it, as the scan did; reads will report it.
		return false, nil
	case v == ttl.Drop:
		err = f.db.Delete(key, pebble.NoSync)
	case v == ttl.Rewrite:
		err = f.db.Set(key, out, pebble.NoSync)
	default:
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("compaction: confirm: %w", err)
	}
	return true, nil
}
