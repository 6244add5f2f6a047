package window_test

import (
	"flag"
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/pebblestate/pebblestate/snapshot"
	"github.com/pebblestate/pebblestate/window"
)

var (
	modelSeed   = flag.Uint64("seed", 0, "run the window model tests with this seed only")
	modelEvents = flag.Int("model.events", 0, "elements per window model run (default 600, 200 with -short)")
)

// TestModel drives a job of window operators with a seeded random stream
// and checks it against a plain in-memory model of Flink's event-time
// window semantics (modelJob), per window kind and snapshot mode. The
// stream has elements of a few keys out of order by up to a bounded
// disorder, watermarks trailing the latest timestamp by that disorder, and
// some elements later than that, within the allowed lateness or beyond it.
// The operators are New's with an aggregate function or NewList's, by
// the seed. Twice, the job is checkpointed and, further on, restored from
// that checkpoint at another parallelism (1 to 3 subtasks), given the
// checkpoint's watermark, and the elements since the checkpoint are
// replayed, as a framework does after a failure; the watermark given is
// by the seed the checkpoint's, a lower one (as the minimum of the old
// subtasks' may be when rescaling), or none, so that windows which fired
// before the checkpoint and are kept for their lateness take elements
// again before the watermark reaches them and must fire again then. Each
// subtask may register each timer of a key and window once between its
// opening and its close, however many elements the window takes (timer
// registrations are Pebble writes; the operator remembers the timers it
// registered). At the end
// a last watermark fires and clears every window. The results per key and
// window, in order, the late elements and the dropped count must equal
// the model's, and no timer may be left. A failure logs its seed; replay
// it with
//
//	go test ./window -run 'TestModel/<kind>/<mode>/seed=<seed>' -seed <seed>
func TestModel(t *testing.T) {
	kinds := []struct {
		name string
		a    window.Assigner
	}{
		{"tumbling", window.Tumbling(10, 3)},
		{"sliding", window.Sliding(20, 5, -2)},
		{"sliding-gaps", window.Sliding(5, 8, 3)}, // elements in the gaps are in no window
		{"session", window.Session(6)},
	}
	events := 600
	if *modelEvents > 0 {
		events = *modelEvents
	} else if testing.Short() {
		events = 200
	}
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			for _, incremental := range []bool{false, true} {
				t.Run(map[bool]string{false: "full", true: "incremental"}[incremental], func(t *testing.T) {
					seeds := []uint64{1, 2, 3, rand.Uint64()}
					if *modelSeed != 0 {
						seeds = []uint64{*modelSeed}
					}
					for _, seed := range seeds {
						t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
							runModel(t, k.a, incremental, seed, events)
						})
					}
				})
			}
		})
	}
}

// element is one element of a stream, or a watermark if wm.
type element struct {
	wm     bool
	key    string
	ts, v  int64
	wmTime int64
}

// genStream returns a stream of n elements with watermarks between them.
// Timestamps advance by 0 to 3 per element; an element is out of order by
// up to disorder, and one in six is later by up to 2*(lateness+disorder)+40
// more.
// The watermark, every 1 to 8 elements, is the latest timestamp minus
// disorder, so only those one in six can be late.
func genStream(rng *rand.Rand, n int, disorder, lateness int64) []element {
	var out []element
	base, maxTS := int64(0), int64(-1<<63)
	keys := 2 + rng.IntN(6)
	nextWM := 1 + rng.IntN(8)
	for i := range n {
		base += rng.Int64N(4)
		ts := base - rng.Int64N(disorder+1)
		if rng.IntN(6) == 0 {
			ts -= rng.Int64N(2*lateness + 2*disorder + 40)
		}
		maxTS = max(maxTS, ts)
		out = append(out, element{key: fmt.Sprintf("k%d", rng.IntN(keys)), ts: ts, v: int64(i)})
		if nextWM--; nextWM == 0 {
			out = append(out, element{wm: true, wmTime: maxTS - disorder})
			nextWM = 1 + rng.IntN(8)
		}
	}
	return out
}

func runModel(t *testing.T, a window.Assigner, incremental bool, seed uint64, n int) {
	rng := rand.New(rand.NewPCG(seed, 0))
	lateness := []int64{0, 10, 30}[rng.IntN(3)]
	disorder := int64(1 + rng.IntN(15))
	stream := genStream(rng, n, disorder, lateness)
	// Two rounds of checkpoint then restore: each restore goes to another
	// parallelism and replays the stream from its checkpoint, and the
	// second checkpoints backends the first restored.
	ps := []int{1 + rng.IntN(3)}
	for range 2 {
		ps = append(ps, 1+(ps[len(ps)-1]+rng.IntN(2))%3) // another parallelism
	}
	type round struct {
		cpAt, restoreAt int
		lower           int64 // how much lower than the checkpoint's the restored watermark is; -1: none
	}
	rounds := []round{{len(stream) / 5, 2 * len(stream) / 5, 0}, {3 * len(stream) / 5, 4 * len(stream) / 5, 0}}
	for i := range rounds {
		switch rng.IntN(3) {
		case 1:
			rounds[i].lower = 1 + rng.Int64N(lateness+disorder+20)
		case 2:
			rounds[i].lower = -1
		}
	}
	timers := 2 // per window: firing and cleanup
	if lateness == 0 {
		timers = 1
	}
	checkRegistrations := func(when string, subs []*subtask) {
		for _, s := range subs {
			for _, m := range s.b.Metrics().Timers {
				if n := uint64(timers * len(s.windows)); m.Registered > n {
					t.Errorf("%s: subtask %s registered %d timers for %d windows, more than %d each", when, s.kgs, m.Registered, len(s.windows), timers)
				}
			}
		}
	}
	var log []string
	logf := func(format string, args ...any) { log = append(log, fmt.Sprintf(format, args...)) }

	j := newJob(t, a, lateness, incremental)
	j.list = rng.IntN(2) == 0
	if err := j.open(ps[0]); err != nil {
		t.Fatal(err)
	}
	m := newModel(a, lateness)
	defer func() {
		if t.Failed() {
			tail := log[max(0, len(log)-40):]
			t.Logf("seed %d: %s, list %t, lateness %d, disorder %d, parallelism %v; the model emitted %d results (%d again after a late element) and dropped %d; last steps:\n%s",
				seed, a, j.list, lateness, disorder, ps, len(m.out), refires(m.out), len(m.late), strings.Join(tail, "\n"))
		}
	}()
	var (
		cp            []snapshot.Handle
		cpModel       *modelJob
		cpOut, cpLate int
		cpWM          int64
		droppedBefore uint64 // by the operators before the last restore
		cpDropped     uint64
	)
	r := 0 // the round in progress
	for i := 0; i < len(stream); i++ {
		if r < len(rounds) && i == rounds[r].cpAt && cp == nil {
			var err error
			if cp, err = j.checkpoint(); err != nil {
				t.Fatal(err)
			}
			cpModel, cpOut, cpLate, cpWM = m.clone(), len(j.out), len(j.late), j.wm
			cpDropped = droppedBefore + j.dropped()
			logf("%d: checkpoint %d at watermark %d", i, j.cpID, cpWM)
		}
		if r < len(rounds) && i == rounds[r].restoreAt {
			checkRegistrations(fmt.Sprintf("step %d", i), j.subs)
			wm := cpWM
			if l := rounds[r].lower; l < 0 || cpWM == minWM {
				wm = minWM
			} else {
				wm = max(minWM+1, cpWM-l)
			}
			logf("%d: restore checkpoint %d at parallelism %d at watermark %d (the checkpoint's: %d), replay from %d", i, j.cpID, ps[r+1], wm, cpWM, rounds[r].cpAt)
			j.out, j.late = j.out[:cpOut], j.late[:cpLate]
			if err := j.restore(cp, ps[r+1], wm); err != nil {
				t.Fatal(err)
			}
			if len(j.out) != cpOut {
				t.Fatalf("restoring the watermark %d emitted %v", wm, j.out[cpOut:])
			}
			m, droppedBefore = cpModel.clone(), cpDropped
			m.wm = wm
			i, cp = rounds[r].cpAt, nil
			r++
		}
		e := stream[i]
		var err error
		if e.wm {
			logf("%d: watermark %d", i, e.wmTime)
			err = j.advance(e.wmTime)
			m.advance(e.wmTime)
		} else {
			logf("%d: %s ts=%d v=%d", i, e.key, e.ts, e.v)
			err = j.process(e.key, e.v, e.ts)
			taken := m.process(e.key, e.v, e.ts)
			if s, rerr := j.route(e.key); rerr == nil {
				for _, w := range taken {
					s.windows[e.key+" "+w.String()] = true
				}
			}
		}
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	final := m.wm
	for _, e := range stream {
		final = max(final, e.ts)
	}
	final += 100 + lateness
	logf("end: watermark %d", final)
	if err := j.advance(final); err != nil {
		t.Fatal(err)
	}
	m.advance(final)
	checkRegistrations("end", j.subs)

	got, want := byWindow(j.out), byWindow(m.out)
	for _, k := range slices.Sorted(maps.Keys(want)) {
		if !reflect.DeepEqual(got[k], want[k]) {
			t.Errorf("%s: emitted %v, want %v", k, got[k], want[k])
		}
	}
	for _, k := range slices.Sorted(maps.Keys(got)) {
		if _, ok := want[k]; !ok {
			t.Errorf("%s: emitted %v, want nothing", k, got[k])
		}
	}
	if gl, wl := sortedLate(j.late), sortedLate(m.late); !reflect.DeepEqual(gl, wl) {
		t.Errorf("late elements %v, want %v", gl, wl)
	}
	if d := droppedBefore + j.dropped(); d != uint64(len(m.late)) {
		t.Errorf("LateDropped %d, want %d", d, len(m.late))
	}
	for _, s := range j.subs {
		if ts, ok := window.NextTimer(s.op); ok {
			t.Errorf("subtask %s: a timer at %d is left after the last watermark", s.kgs, ts)
		}
	}
}

func refires(rs []result) int {
	seen := map[string]bool{}
	n := 0
	for _, r := range rs {
		k := r.key + r.w.String()
		if seen[k] {
			n++
		}
		seen[k] = true
	}
	return n
}
