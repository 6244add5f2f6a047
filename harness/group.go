package harness

import (
	"fmt"
	"testing"
	"time"

	"github.com/pebblestate/pebblestate/backend"
	"github.com/pebblestate/pebblestate/checkpoint"
	"github.com/pebblestate/pebblestate/ttl"
)

// Group is an operator at some parallelism: one Harness per subtask, each
// owning its subtask's key groups, sharing one processing-time clock.
// Elements go to the harness owning their key's key group, under the
// backends' key-group assigner (for a restored group, the checkpoint's).
// Checkpoint takes one checkpoint of every subtask; RestoreGroup restores
// one at any parallelism. Its methods fail the test on an error, as a
// Harness's do.
type Group[K, IN, OUT any] struct {
	tb       testing.TB
	hs       []*Harness[K, IN, OUT]
	codec    backend.Codec[K]
	assigner backend.KeyGroupAssigner
	maxP     int
	operator string
	clock    *ttl.ManualClock
	ckptDir  string
	ckpt     *checkpointer
	backends []checkpoint.KeyedBackend
	log      *groupLog[K, OUT]
}

// groupLog is what every harness of a group emitted, in order.
type groupLog[K, OUT any] struct {
	out   []Record[OUT]
	fired []FiredTimer[K]
}

// NewGroup opens parallelism harnesses, subtask i calling newFn()'s
// function with its own backend on key groups
// backend.KeyGroupRangeForSubtask(max parallelism, parallelism, i).
// opts.Backend.KeyGroups is ignored.
func NewGroup[K, IN, OUT any](tb testing.TB, keyCodec backend.Codec[K], newFn func() Function[K, IN, OUT], parallelism int, opts Options) *Group[K, IN, OUT] {
	tb.Helper()
	return newGroup(tb, keyCodec, newFn, nil, parallelism, opts)
}

// RestoreGroup restores snap into parallelism harnesses, which may be more
// or fewer than took it; the operator, max parallelism and key-group
// assigner are the snapshot's.
func RestoreGroup[K, IN, OUT any](tb testing.TB, keyCodec backend.Codec[K], newFn func() Function[K, IN, OUT], snap *Snapshot, parallelism int, opts Options) *Group[K, IN, OUT] {
	tb.Helper()
	fromSnapshot(tb, snap, opts.Backend) // fails the test for an empty snapshot
	return newGroup(tb, keyCodec, newFn, snap, parallelism, opts)
}

func newGroup[K, IN, OUT any](tb testing.TB, keyCodec backend.Codec[K], newFn func() Function[K, IN, OUT], snap *Snapshot, parallelism int, opts Options) *Group[K, IN, OUT] {
	tb.Helper()
	base := opts.Backend
	if snap != nil {
		base = fromSnapshot(tb, snap, base)
	}
	if base.Clock == nil {
		base.Clock = ttl.NewManualClock(time.UnixMilli(opts.ProcessingTime))
	}
	base.EnsureDefaults()
	if base.Dir == "" {
		base.Dir = tb.TempDir()
	}
	g := &Group[K, IN, OUT]{tb: tb, codec: keyCodec, assigner: base.KeyGroupAssigner, maxP: base.MaxParallelism,
		operator: base.Operator, ckptDir: opts.CheckpointDir, log: &groupLog[K, OUT]{}}
	bs := make([]checkpoint.KeyedBackend, parallelism)
	for i := range parallelism {
		r, err := backend.KeyGroupRangeForSubtask(base.MaxParallelism, parallelism, i)
		if err != nil {
			tb.Fatalf("harness: %v", err)
		}
		o := opts
		o.Backend = base
		o.Backend.KeyGroups = r
		bo, clock := prepare(tb, o, fmt.Sprintf("subtask-%d", i))
		g.clock = clock
		var h *Harness[K, IN, OUT]
		if snap == nil {
			b, err := backend.Open(keyCodec, bo)
			if err != nil {
				tb.Fatalf("harness: subtask %d: %v", i, err)
			}
			h = start(tb, newFn(), b, clock, bo.Operator, "")
		} else {
			h = start(tb, newFn(), restore(tb, keyCodec, snap, bo), clock, bo.Operator, "")
		}
		h.group = g.log
		g.hs = append(g.hs, h)
		bs[i] = h.b
	}
	tb.Cleanup(func() {
		if g.ckpt != nil {
			if err := g.ckpt.close(); err != nil {
				tb.Errorf("harness: close the group's coordinator: %v", err)
			}
		}
	})
	g.backends = bs
	return g
}

// Len returns the group's parallelism.
func (g *Group[K, IN, OUT]) Len() int { return len(g.hs) }

// Harness returns the harness of subtask i.
func (g *Group[K, IN, OUT]) Harness(i int) *Harness[K, IN, OUT] { return g.hs[i] }

// HarnessFor returns the harness owning key's key group.
func (g *Group[K, IN, OUT]) HarnessFor(key K) *Harness[K, IN, OUT] {
	g.tb.Helper()
	kg, err := backend.KeyGroupOfWith(g.assigner, g.codec, key, g.maxP)
	if err != nil {
		g.tb.Fatalf("harness: key %v: %v", key, err)
	}
	i, err := backend.SubtaskForKeyGroup(g.maxP, len(g.hs), kg)
	if err != nil {
		g.tb.Fatalf("harness: key %v: %v", key, err)
	}
	return g.hs[i]
}

// ProcessElement hands value with key and timestamp ts to the harness
// owning key.
func (g *Group[K, IN, OUT]) ProcessElement(key K, value IN, ts int64) {
	g.tb.Helper()
	g.HarnessFor(key).ProcessElement(key, value, ts)
}

// ProcessElementErr is ProcessElement returning the function's error
// instead of failing the test.
func (g *Group[K, IN, OUT]) ProcessElementErr(key K, value IN, ts int64) error {
	g.tb.Helper()
	return g.HarnessFor(key).ProcessElementErr(key, value, ts)
}

// ProcessWatermark advances every subtask's watermark to wm, subtask 0
// first, firing their due event-time timers.
func (g *Group[K, IN, OUT]) ProcessWatermark(wm int64) {
	g.tb.Helper()
	for _, h := range g.hs {
		h.ProcessWatermark(wm)
	}
}

// SetProcessingTime moves the group's clock to ms and fires every
// subtask's due processing-time timers, subtask 0 first.
func (g *Group[K, IN, OUT]) SetProcessingTime(ms int64) {
	g.tb.Helper()
	if now := g.clock.Now().UnixMilli(); ms < now {
		g.tb.Fatalf("harness: processing time %d is before the current %d", ms, now)
	}
	g.clock.Set(time.UnixMilli(ms))
	for _, h := range g.hs {
		h.live()
		h.fireProcessingTime()
	}
}

// Output returns what every subtask emitted, in the order emitted (which
// depends on the parallelism: compare across parallelisms by key, or
// sorted).
func (g *Group[K, IN, OUT]) Output() []Record[OUT] { return append([]Record[OUT](nil), g.log.out...) }

// OutputValues returns the values of Output.
func (g *Group[K, IN, OUT]) OutputValues() []OUT { return values(g.log.out) }

// FiredTimers returns the timers every subtask fired, in the order fired.
func (g *Group[K, IN, OUT]) FiredTimers() []FiredTimer[K] {
	return append([]FiredTimer[K](nil), g.log.fired...)
}

// ClearOutput forgets the output and fired timers of every subtask.
func (g *Group[K, IN, OUT]) ClearOutput() {
	g.log.out, g.log.fired = nil, nil
	for _, h := range g.hs {
		h.ClearOutput()
	}
}

// Checkpoint takes one checkpoint of every subtask through a
// checkpoint.Coordinator into Options.CheckpointDir and returns it.
func (g *Group[K, IN, OUT]) Checkpoint() *Snapshot {
	g.tb.Helper()
	for _, h := range g.hs {
		h.live()
	}
	if g.ckpt == nil {
		g.ckpt = newCheckpointer(g.tb, g.ckptDir, g.operator, g.backends)
	}
	return g.ckpt.checkpoint(g.tb)
}
