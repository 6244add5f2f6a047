package compaction

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
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
	DefaultShare                    = 0.25
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
	// SweepInterval is how often every TTL state is scanned in full.
	// Default: one hour. Negative turns the periodic sweep off.
	SweepInterval time.Duration
	// ScanRate caps the background worker's work per second, in entries
	// checked; removing an entry counts as removalCost (100) checks.
	// CleanupExpired is not capped. Default: 1,000,000.
	ScanRate int
	// Share caps the share of one core's time the background worker spends
	// working, in wall time (time it waits to be scheduled counts as work,
	// so it backs off further on a busy machine); it sleeps the rest. It
	// bounds the worker where entries cost more than ScanRate assumes, as
	// in a database whose memtable is full of the task's writes. In (0, 1];
	// 1 lifts the cap. CleanupExpired is not capped. Default: 0.25.
	Share float64
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
	st      Store
	targets atomic.Pointer[[]ttl.Target] // sorted by ID

	mu      sync.Mutex
	pending []span // spans reported by flushes and compactions
	wake    chan struct{}
	// quietUntil holds, by state id, a time before which no entry of the state
	// can expire, learnt from its last complete pass; the background worker
	// skips those states until then. lastNow is the latest clock reading,
	// to notice a clock that goes back.
	quietUntil map[uint16]int64
	lastNow    int64

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
	if cfg.Share <= 0 || cfg.Share > 1 {
		cfg.Share = DefaultShare
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
	f := &Filter{cfg: cfg, wake: make(chan struct{}, 1), quietUntil: make(map[uint16]int64)}
	f.targets.Store(&[]ttl.Target{})
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
func (f *Filter) SetTargets(targets []ttl.Target) {
	ts := append([]ttl.Target(nil), targets...)
	sort.Slice(ts, func(i, j int) bool { return ts[i].ID < ts[j].ID })
	f.mu.Lock()
	f.targets.Store(&ts)
	clear(f.quietUntil)
	f.mu.Unlock()
}

// observe reads the clock. If it went back since the last reading, what
// was learnt about when states can next expire no longer holds.
func (f *Filter) observe() int64 {
	now := ttl.Millis(f.cfg.Clock.Now())
	f.mu.Lock()
	if now < f.lastNow {
		clear(f.quietUntil)
	}
	f.lastNow = now
	f.mu.Unlock()
	return now
}

// quiet reports whether nothing of state id can be expired at now.
func (f *Filter) quiet(id uint16, now int64) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	until, ok := f.quietUntil[id]
	return ok && now < until
}

// quietAt returns the states nothing of which can be expired at now.
func (f *Filter) quietAt(now int64) map[uint16]bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ids map[uint16]bool
	for id, until := range f.quietUntil {
		if now < until {
			if ids == nil {
				ids = make(map[uint16]bool, len(f.quietUntil))
			}
			ids[id] = true
		}
	}
	return ids
}

// learn records that no entry of state id expires before until: true of
// what a complete pass kept, and of everything written since it began.
func (f *Filter) learn(id uint16, until int64) {
	f.mu.Lock()
	f.quietUntil[id] = until
	f.mu.Unlock()
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

// Start runs the background worker on st until Close. The filter reaches
// the database only through st, which serialises its deletions with the
// task's writes.
func (f *Filter) Start(st Store) {
	f.st = st
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
				_, err := f.scanSpan(f.ctx, s, true)
				f.background(err)
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
	if f.st == nil {
		return errors.New("compaction: filter not started")
	}
	return f.sweep(ctx, false)
}

// sweep scans every target state in full. The background worker (paced)
// skips a state while its last complete pass says nothing of it can have
// expired yet; CleanupExpired (not paced) always scans everything.
//
// A pass learns when the state can next expire: the earliest expiry among
// the entries it kept, or, if sooner, when an entry stamped as the pass
// began would expire, which covers every entry written during or after
// the pass (stamps never precede the clock reading that starts the pass).
// Entries copied with their stamps, as MergeNamespaces does, come from
// entries the bound already covered. A clock that goes back forgets what
// was learnt.
func (f *Filter) sweep(ctx context.Context, paced bool) error {
	for _, t := range *f.targets.Load() {
		now := f.observe()
		if paced && f.quiet(t.ID, now) {
			continue
		}
		lo, hi := keys.StateBounds(t.ID)
		// [lo, hi) as an inclusive span: hi is no key of the state.
		earliest, err := f.scanSpan(ctx, span{lo: lo, hi: hi}, paced)
		if err != nil {
			return err
		}
		f.learn(t.ID, min(earliest, ttl.Policy{TTLMillis: t.TTLMillis}.Expiry(now)))
	}
	return nil
}

// condemned is an entry the scan found expired, with what to do to it.
type condemned struct {
	key     []byte
	verdict ttl.Verdict // ttl.Drop or ttl.Rewrite
	out     []byte      // the value to store instead, for ttl.Rewrite
}

// Scan iterators are reopened after refreshEvery entries, and after every
// pause of the pace, so that the writes made since an iterator opened stay
// few and its entries can mostly be confirmed without a second read (see
// Store.Confirm).
const refreshEvery = 4096

// scanIter is a scan's iterator over [lo, upper) and the write generation
// it was opened at: every write up to gen is visible in it.
type scanIter struct {
	f     *Filter
	upper []byte
	it    Iterator
	gen   uint64
	live  bool // it is open
	since int  // entries stepped over since it opened
}

// open (re)opens the iterator at lo.
func (s *scanIter) open(lo []byte) error {
	if s.live {
		s.live = false
		if err := s.it.Close(); err != nil {
			return fmt.Errorf("compaction: scan: %w", err)
		}
	}
	s.gen = s.f.st.WriteGen()
	it, err := s.f.st.NewIter(lo, s.upper)
	if err != nil {
		return fmt.Errorf("compaction: scan: %w", err)
	}
	s.it, s.since, s.live = it, 0, true
	return nil
}

func (s *scanIter) close() {
	if s.live {
		_ = s.it.Close()
	}
}

// scanSpan checks every entry of target states in [s.lo, s.hi], removes
// the expired ones, and compacts the span if they were dense. It returns
// when the earliest entry it kept expires (math.MaxInt64 if none). A paced
// scan skips the states sweep found quiet.
func (f *Filter) scanSpan(ctx context.Context, s span, paced bool) (int64, error) {
	targets := *f.targets.Load()
	if len(targets) == 0 {
		return math.MaxInt64, nil
	}
	now := f.observe()
	var skip map[uint16]bool
	if paced {
		skip = f.quietAt(now)
	}
	si := &scanIter{f: f, upper: append(bytes.Clone(s.hi), 0)} // smallest key above s.hi
	if err := si.open(s.lo); err != nil {
		return 0, err
	}
	defer si.close()

	ef := ttl.NewEntryFilter(targets, now)
	var (
		doomed     []condemned
		scanned    int
		removed    int
		sinceClock int // entries checked since the clock was read
		pc         = &pacer{rate: float64(f.cfg.ScanRate), share: f.cfg.Share, start: time.Now()}
	)
	flush := func() error {
		n, err := f.confirm(ef, si.gen, doomed)
		removed += n
		doomed = doomed[:0]
		return err
	}
	for valid := si.it.First(); valid; {
		it := si.it
		key := it.Key()
		if t, ok := ef.Target(key); !ok || skip[t.ID] {
			// Not a TTL state, or a quiet one: jump to the next state's keys.
			if len(key) < keys.StateIDLen || key[0] == 0xFF && key[1] >= 0xFE {
				break
			}
			_, next := keys.StateBounds(uint16(key[0])<<8 | uint16(key[1]))
			valid = it.SeekGE(next)
			continue
		}
		raw, err := it.Value()
		if err != nil {
			return 0, fmt.Errorf("compaction: scan: %w", err)
		}
		if v, out, err := ef.Apply(key, raw); err != nil {
			f.background(fmt.Errorf("compaction: key %x: %w", key, err))
		} else if v != ttl.Keep {
			doomed = append(doomed, condemned{key: bytes.Clone(key), verdict: v, out: bytes.Clone(out)})
		}
		scanned++
		si.since++
		if sinceClock++; sinceClock >= f.queryEvery(key) {
			ef.SetNow(ttl.Millis(f.cfg.Clock.Now()))
			sinceClock = 0
		}
		if len(doomed) >= confirmBatch {
			if err := flush(); err != nil {
				return 0, err
			}
		}
		valid = it.Next()
		if scanned%256 != 0 {
			continue
		}
		f.cfg.Scanned.Add(256)
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		if err := flush(); err != nil {
			return 0, err
		}
		slept := paced && f.pace(ctx, pc, scanned+removed*removalCost)
		if valid && (slept || si.since >= refreshEvery) {
			if err := si.open(bytes.Clone(it.Key())); err != nil {
				return 0, err
			}
			valid = si.it.First()
		}
	}
	f.cfg.Scanned.Add(uint64(scanned % 256))
	if err := si.it.Error(); err != nil {
		return 0, fmt.Errorf("compaction: scan: %w", err)
	}
	if err := flush(); err != nil {
		return 0, err
	}
	// Compact where removals are dense (a quarter of what was scanned), so
	// mass expiry returns its space at once; sparse tombstones are left to
	// Pebble's own tombstone-density compactions, since compacting a whole
	// span for a few removals would cost the task more than it returns.
	if removed > 0 && removed*4 >= scanned {
		if err := f.st.Compact(ctx, s.lo, si.upper, false /* parallelize */); err != nil {
			return 0, fmt.Errorf("compaction: compact span: %w", err)
		}
	}
	return ef.Earliest(), nil
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

// removalCost is what removing one entry costs, in entries scanned. The
// delete under the lock takes about 1.5 us (a point read more when the
// entry may have been written since the scan read it, which the store's
// write tracking makes rare), but its tombstone must then be flushed and compacted, and that
// work competes with the task's writes: with ValueUpdate running beside a
// sweep that removes as fast as the pace allows, a weight of 25 slowed the
// updates by 1.3x, a weight of 100 by 1.1 to 1.25x (measured when it was
// chosen; see the history of bench/RESULTS.md). An
// iterator step costs about 65 ns. The background worker's pace counts
// removals at this weight, so that ScanRate bounds its work, not just its
// reading, even when most of what it scans has expired.
const removalCost = 100

// minPause is the shortest pause pace takes: shorter ones are put off
// until the worker is that far ahead, so that it pauses (and reopens its
// iterator) a few hundred times a second at most.
const minPause = 2 * time.Millisecond

// pacer keeps a scan within the configured rate and share.
type pacer struct {
	rate  float64 // work per second
	share float64
	start time.Time
	slept time.Duration // total pause so far
}

// pause returns how long to pause after work (entries scanned, removals
// weighted by removalCost) at elapsed since the scan started: long enough
// that the work has not outrun the rate, and that the time spent working
// (elapsed minus the pauses) is at most share of the total.
func (p *pacer) pause(work int, elapsed time.Duration) time.Duration {
	due := time.Duration(float64(work) / p.rate * float64(time.Second))
	busy := elapsed - p.slept
	due = max(due, time.Duration(float64(busy)/p.share))
	if ahead := due - elapsed; ahead >= minPause {
		return ahead
	}
	return 0
}

// pace sleeps as long as pause says. It reports whether it slept.
func (f *Filter) pace(ctx context.Context, p *pacer, work int) bool {
	d := p.pause(work, time.Since(p.start))
	if d == 0 {
		return false
	}
	t0 := time.Now()
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
	p.slept += time.Since(t0)
	return true
}

// confirm removes or trims each condemned entry if it is still expired,
// through Store.Confirm: an entry nobody wrote since generation gen,
// when the scan's iterator opened, is as the scan judged it; any other is
// read and judged again with the same clock reading. It returns how many
// entries it removed or trimmed.
//
// The write lock is taken per entry, so a task write waits for at most one
// read and one write, not a batch of them.
func (f *Filter) confirm(ef *ttl.EntryFilter, gen uint64, doomed []condemned) (int, error) {
	n := 0
	for i := range doomed {
		c := &doomed[i]
		removed, err := f.st.Confirm(c.key, gen, c.verdict, c.out, func(raw []byte) (ttl.Verdict, []byte, error) {
			return ef.Apply(c.key, raw)
		})
		if err != nil {
			f.cfg.Removed.Add(uint64(n))
			return n, fmt.Errorf("compaction: confirm: %w", err)
		}
		if removed {
			n++
		}
	}
	f.cfg.Removed.Add(uint64(n))
	return n, nil
}
