package harness_test

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/pebblestate/pebblestate/backend"
	"github.com/pebblestate/pebblestate/harness"
	"github.com/pebblestate/pebblestate/snapshot"
	"github.com/pebblestate/pebblestate/ttl"
)

// result is what windowSum emits: the sum of a key's values in an
// event-time window (Kind "window", At the window's last millisecond), or
// how many elements of the key were seen so far (Kind "seen", At the
// processing-time timer's timestamp).
type result struct {
	Kind string
	Key  string
	At   int64
	N    int64
}

func (r result) String() string { return fmt.Sprintf("%s %s@%d=%d", r.Kind, r.Key, r.At, r.N) }

const window = 10 // ms

// windowSum sums each key's values per tumbling event-time window in Map
// state (window end to sum), firing an event-time timer at each window's
// end, and counts each key's elements in Value state, reporting the count
// at the next whole second of processing time.
type windowSum struct {
	sums *backend.Map[string, backend.VoidNamespace, int64, int64]
	seen *backend.Value[string, backend.VoidNamespace, int64]
}

func newWindowSum() harness.Function[string, int64, result] { return &windowSum{} }

func (f *windowSum) Open(b *backend.Backend[string]) error {
	var err1, err2 error
	f.sums, err1 = backend.GetMap(b, backend.MapDescriptor[int64, int64]{Name: "sums", KeyCodec: backend.Int64, ValueCodec: backend.Int64})
	f.seen, err2 = backend.GetValue(b, backend.ValueDescriptor[int64]{Name: "seen", Codec: backend.Int64})
	return errors.Join(err1, err2)
}

func (f *windowSum) ProcessElement(ctx *harness.Context[string, result], v int64) error {
	end := ctx.Timestamp() - ctx.Timestamp()%window + window - 1
	sum, _, err := f.sums.Get(end)
	if err != nil {
		return err
	}
	if err := f.sums.Put(end, sum+v); err != nil {
		return err
	}
	if err := ctx.RegisterEventTimeTimer(end); err != nil {
		return err
	}
	n, _, err := f.seen.Get()
	if err != nil {
		return err
	}
	if err := f.seen.Update(n + 1); err != nil {
		return err
	}
	return ctx.RegisterProcessingTimeTimer(ctx.CurrentProcessingTime()/1000*1000 + 1000)
}

func (f *windowSum) OnTimer(ctx *harness.Context[string, result], ts int64, d harness.TimeDomain) error {
	if d == harness.ProcessingTime {
		if now := ctx.CurrentProcessingTime(); now < ts {
			return fmt.Errorf("processing-time timer %d fired at %d", ts, now)
		}
		n, _, err := f.seen.Get()
		if err != nil {
			return err
		}
		ctx.Collect(result{"seen", ctx.Key(), ts, n})
		return nil
	}
	if wm := ctx.CurrentWatermark(); wm < ts || ctx.Timestamp() != ts {
		return fmt.Errorf("timer %d fired at watermark %d, context timestamp %d", ts, wm, ctx.Timestamp())
	}
	sum, ok, err := f.sums.Get(ts)
	if err != nil || !ok {
		return fmt.Errorf("window %d of %s: no sum (%v)", ts, ctx.Key(), err)
	}
	ctx.Collect(result{"window", ctx.Key(), ts, sum})
	return f.sums.Remove(ts)
}

// op is one step of a test stream: an element, a watermark or a
// processing time.
type op struct {
	kind  byte // 'e', 'w', 'p'
	key   string
	v, ts int64
}

// stream returns a seeded stream of n elements over keys keys, with
// timestamps rising with jitter (some late), a watermark every 25 elements
// and a processing-time step every 40, ending with a watermark and a
// processing time past everything.
func stream(seed uint64, n, keys int) []op {
	rng := rand.New(rand.NewPCG(seed, 0))
	var ops []op
	pt := int64(0)
	for i := range n {
		base := int64(i) * 3
		ops = append(ops, op{kind: 'e', key: fmt.Sprint("k", rng.IntN(keys)), v: rng.Int64N(100), ts: base + rng.Int64N(16)})
		if i%25 == 24 {
			ops = append(ops, op{kind: 'w', ts: base - 20})
		}
		if i%40 == 39 {
			pt += 700
			ops = append(ops, op{kind: 'p', ts: pt})
		}
	}
	return append(ops, op{kind: 'w', ts: math.MaxInt64}, op{kind: 'p', ts: pt + 5000})
}

// model runs ops through a plain-Go windowSum and returns what it emits
// from step from on, and whether timers of both domains were pending
// at step from.
func model(ops []op, from int) (out []result, pendingEvent, pendingProc bool) {
	sums := map[string]map[int64]int64{}
	seen := map[string]int64{}
	type timer struct {
		key string
		ts  int64
	}
	ev, pr := map[timer]bool{}, map[timer]bool{}
	pt := int64(0)
	for i, o := range ops {
		if i == from {
			pendingEvent, pendingProc = len(ev) > 0, len(pr) > 0
		}
		var emitted []result
		switch o.kind {
		case 'e':
			end := o.ts - o.ts%window + window - 1
			if sums[o.key] == nil {
				sums[o.key] = map[int64]int64{}
			}
			sums[o.key][end] += o.v
			ev[timer{o.key, end}] = true
			seen[o.key]++
			pr[timer{o.key, pt/1000*1000 + 1000}] = true
		case 'w':
			for t := range ev {
				if t.ts <= o.ts {
					emitted = append(emitted, result{"window", t.key, t.ts, sums[t.key][t.ts]})
					delete(sums[t.key], t.ts)
					delete(ev, t)
				}
			}
		case 'p':
			pt = o.ts
			for t := range pr {
				if t.ts <= pt {
					emitted = append(emitted, result{"seen", t.key, t.ts, seen[t.key]})
					delete(pr, t)
				}
			}
		}
		if i >= from {
			out = append(out, emitted...)
		}
	}
	return out, pendingEvent, pendingProc
}

// feeder is what runs a stream: a Harness or a Group.
type feeder interface {
	ProcessElement(key string, v int64, ts int64)
	ProcessWatermark(wm int64)
	SetProcessingTime(ms int64)
	OutputValues() []result
}

func run(f feeder, ops []op) {
	for _, o := range ops {
		switch o.kind {
		case 'e':
			f.ProcessElement(o.key, o.v, o.ts)
		case 'w':
			f.ProcessWatermark(o.ts)
		case 'p':
			f.SetProcessingTime(o.ts)
		}
	}
}

func sorted(rs []result) []result {
	return slices.SortedFunc(slices.Values(rs), func(a, b result) int {
		return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Key, b.Key), cmp.Compare(a.At, b.At), cmp.Compare(a.N, b.N))
	})
}

func sameResults(t *testing.T, what string, got, want []result) {
	t.Helper()
	got, want = sorted(got), sorted(want)
	if !slices.Equal(got, want) {
		for i := range max(len(got), len(want)) {
			var g, w result
			if i < len(got) {
				g = got[i]
			}
			if i < len(want) {
				w = want[i]
			}
			if g != w {
				t.Fatalf("%s: %d results, want %d; first difference at %d: %v, want %v", what, len(got), len(want), i, g, w)
			}
		}
	}
}

// TestGroup_RescaleSameAnswers runs a stream through windowSum at
// parallelism 2, checkpoints it halfway with windows and processing-time
// timers pending, and restores the checkpoint at parallelism 3, 1 and 2:
// each gives what the model gives for the rest of the stream, as does the
// original group. A restore that lost a timer would miss a result, one
// that lost state would get a sum or a count wrong. It runs with full and
// with incremental checkpoints.
func TestGroup_RescaleSameAnswers(t *testing.T) {
	for _, inc := range []bool{false, true} {
		t.Run(map[bool]string{false: "Full", true: "Incremental"}[inc], func(t *testing.T) {
			rescaleSameAnswers(t, backend.Options{IncrementalCheckpoints: inc})
		})
	}
}

func rescaleSameAnswers(t *testing.T, bo backend.Options) {
	ops := stream(7, 600, 20)
	half := len(ops) / 2
	for ops[half-1].kind != 'w' { // checkpoint after a watermark, as a framework would at a barrier
		half++
	}
	whole, _, _ := model(ops, 0)
	rest, pendingEvent, pendingProc := model(ops, half)
	if !pendingEvent || !pendingProc {
		t.Fatalf("no timers pending at the checkpoint (event %v, processing %v): the test would not test restore", pendingEvent, pendingProc)
	}

	g := harness.NewGroup(t, backend.String, newWindowSum, 2, harness.Options{Backend: bo})
	run(g, ops[:half])
	snap := g.Checkpoint()
	for _, h := range snap.Checkpoint.Handles {
		if (h.Kind == snapshot.KindIncremental) != bo.IncrementalCheckpoints {
			t.Fatalf("a %s handle; incremental checkpoints %v", h.Kind, bo.IncrementalCheckpoints)
		}
	}
	pt := g.Harness(0).ProcessingTime()
	g.ClearOutput()
	run(g, ops[half:])
	sameResults(t, "p=2 without restore", g.OutputValues(), rest)
	if n := len(g.FiredTimers()); n != len(rest) {
		t.Fatalf("p=2: %d timers fired, %d results", n, len(rest))
	}

	for _, p := range []int{3, 1, 2} {
		r := harness.RestoreGroup(t, backend.String, newWindowSum, snap, p, harness.Options{Backend: bo, ProcessingTime: pt})
		if r.Len() != p {
			t.Fatalf("restored %d harnesses, want %d", r.Len(), p)
		}
		run(r, ops[half:])
		sameResults(t, fmt.Sprintf("restored at p=%d", p), r.OutputValues(), rest)
	}

	one := harness.NewGroup(t, backend.String, newWindowSum, 1, harness.Options{Backend: bo})
	run(one, ops)
	sameResults(t, "p=1 throughout", one.OutputValues(), whole)
}

// TestHarness_RestoreKeepsTimersAndState checks one harness: a window's
// timer and sum taken in a checkpoint fire after a restore, into all key
// groups or a part of them; the part rejects keys it does not own, and
// state reads back through the backend.
func TestHarness_RestoreKeepsTimersAndState(t *testing.T) {
	h := harness.New(t, backend.String, newWindowSum(), harness.Options{Backend: backend.Options{MaxParallelism: 8}})
	keys := []string{"a", "b", "c", "d", "e", "f"}
	for i, k := range keys {
		h.ProcessElement(k, int64(i+1), 100)
		h.ProcessElement(k, 10, 105)
	}
	h.ProcessWatermark(50) // nothing due
	if n := len(h.FiredTimers()); n != 0 {
		t.Fatalf("%d timers fired before their time", n)
	}
	snap := h.Checkpoint()
	h.ProcessElement("a", 1000, 101) // after the checkpoint: not in it

	want := func(k string) result { return result{"window", k, 109, int64(slices.Index(keys, k)+1) + 10} }
	r := harness.Restore(t, backend.String, newWindowSum(), snap, harness.Options{})
	if got := r.Watermark(); got != math.MinInt64 {
		t.Fatalf("restored watermark %d", got)
	}
	r.ProcessWatermark(109)
	var wantAll []result
	for _, k := range keys {
		wantAll = append(wantAll, want(k))
	}
	sameResults(t, "restored", r.OutputValues(), wantAll)
	for _, rec := range r.Output() {
		if rec.Timestamp != 109 {
			t.Fatalf("output %v has timestamp %d, want the timer's 109", rec.Value, rec.Timestamp)
		}
	}
	for _, f := range r.FiredTimers() {
		if f.Domain != harness.EventTime || f.Timestamp != 109 {
			t.Fatalf("fired %+v", f)
		}
	}

	// A part of the key groups: only its keys' timers fire.
	part := harness.Restore(t, backend.String, newWindowSum(), snap, harness.Options{Backend: backend.Options{KeyGroups: backend.KeyGroupRange{Start: 0, End: 4}}})
	var owned []result
	for _, k := range keys {
		kg, err := backend.KeyGroupOf(backend.String, k, 8)
		if err != nil {
			t.Fatal(err)
		}
		if kg < 4 {
			owned = append(owned, want(k))
			continue
		}
		if err := part.ProcessElementErr(k, 1, 200); !errors.Is(err, backend.ErrKeyGroupOutOfRange) {
			t.Fatalf("key %s of key group %d: %v, want ErrKeyGroupOutOfRange", k, kg, err)
		}
	}
	if len(owned) == 0 || len(owned) == len(keys) {
		t.Fatalf("%d of %d keys in key groups [0, 4): pick other keys", len(owned), len(keys))
	}
	// State reads back for assertions.
	seen, err := backend.GetValue(part.Backend(), backend.ValueDescriptor[int64]{Name: "seen", Codec: backend.Int64})
	if err != nil {
		t.Fatal(err)
	}
	part.SetCurrentKey(owned[0].Key)
	if n, ok, err := seen.Get(); err != nil || !ok || n != 2 {
		t.Fatalf("seen of %s = %d, %v, %v; want 2", owned[0].Key, n, ok, err)
	}
	part.ProcessWatermark(200)
	sameResults(t, "restored part", part.OutputValues(), owned)
}

// TestHarness_ProcessingTime checks the manual clock: processing-time
// timers fire when it reaches them, in order, it is the backend's TTL
// clock, and it starts at Options.ProcessingTime.
func TestHarness_ProcessingTime(t *testing.T) {
	h := harness.New(t, backend.String, newWindowSum(), harness.Options{ProcessingTime: 2500})
	if h.ProcessingTime() != 2500 || h.Backend().Clock().Now().UnixMilli() != 2500 {
		t.Fatalf("processing time %d, backend clock %v", h.ProcessingTime(), h.Backend().Clock().Now())
	}
	h.ProcessElement("x", 1, 0) // a timer at 3000
	h.SetProcessingTime(2999)
	if len(h.Output()) != 0 {
		t.Fatalf("fired early: %v", h.Output())
	}
	h.ProcessElement("y", 1, 0)
	h.ProcessElement("x", 1, 0)
	h.SetProcessingTime(3000)
	want := []result{{"seen", "x", 3000, 2}, {"seen", "y", 3000, 1}}
	sameResults(t, "at 3000", h.OutputValues(), want)
	h.ClearOutput()
	if len(h.Output()) != 0 || len(h.FiredTimers()) != 0 {
		t.Fatal("ClearOutput left output")
	}

	// The clock is the TTL clock.
	last, err := backend.GetValue(h.Backend(), backend.ValueDescriptor[string]{Name: "last", Codec: backend.String, TTL: ttl.Config{TTL: time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	h.SetCurrentKey("x")
	if err := last.Update("v"); err != nil {
		t.Fatal(err)
	}
	h.SetProcessingTime(3999)
	if _, ok, _ := last.Get(); !ok {
		t.Fatal("expired before its TTL")
	}
	h.SetProcessingTime(4000)
	if _, ok, _ := last.Get(); ok {
		t.Fatal("not expired at its TTL by the harness's clock")
	}
}

// TestGroup_KafkaAssigner runs a group whose backends use Kafka's
// partitioner over 12 partitions at parallelism 4: every key goes to the
// subtask owning its Kafka partition; a restore at parallelism 6 routes by
// the assigner recorded in the checkpoint (its options name none).
func TestGroup_KafkaAssigner(t *testing.T) {
	const partitions = 12
	opts := harness.Options{Backend: backend.Options{KeyGroupAssigner: backend.KafkaMurmur2, MaxParallelism: partitions}}
	g := harness.NewGroup(t, backend.String, newWindowSum, 4, opts)
	var keys []string
	for i := range 200 {
		k := fmt.Sprint("order-", i)
		keys = append(keys, k)
		part, err := backend.KafkaMurmur2.Assign([]byte(k), partitions)
		if err != nil {
			t.Fatal(err)
		}
		if r := g.HarnessFor(k).KeyGroups(); !r.Contains(part) {
			t.Fatalf("key %s of partition %d routed to the harness of %s", k, part, r)
		}
		g.ProcessElement(k, 1, int64(i))
	}
	snap := g.Checkpoint()
	if a := snap.Checkpoint.Handles[0].Assigner(); a != "kafka-murmur2" {
		t.Fatalf("checkpoint records assigner %q", a)
	}
	r := harness.RestoreGroup(t, backend.String, newWindowSum, snap, 6, harness.Options{})
	r.ProcessWatermark(math.MaxInt64)
	got := map[string]int64{}
	for _, res := range r.OutputValues() {
		got[res.Key] += res.N
	}
	for _, k := range keys {
		if got[k] != 1 {
			t.Fatalf("key %s: sum %d after the restore, want 1", k, got[k])
		}
	}
}
