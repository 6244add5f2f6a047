package backend_test

import (
	"context"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pebblestate/pebblestate/backend"
	"github.com/pebblestate/pebblestate/snapshot"
	"github.com/pebblestate/pebblestate/ttl"
)

// TestTimersModel drives a job of 1 to 3 backends, each with a timer
// service of int64 keys and namespaces and a cache of 1 to 4 timers per
// key group (so the service reloads from Pebble often), with seeded random
// operations mirrored in a plain set of timers: register (duplicates
// included), delete (mostly timers that exist), advance the watermark or
// the manual clock by jumps, registering and deleting timers from inside
// fire; reopen a backend; checkpoint the job; restore a kept checkpoint
// at a parallelism of 1 to 3. Every timer fired must be the model's next
// due timer of that backend's key groups (timestamp, key group, key,
// namespace), with that key current; the next timestamps are compared
// after every operation; at the end everything left must fire. A failure
// logs its seed; replay it with
//
//	go test ./backend -run 'TestTimersModel/<mode>/seed=<seed>' -seed <seed> [-model.ops N]
func TestTimersModel(t *testing.T) {
	forEachMode(t, func(t *testing.T, m mode) {
		seeds := []uint64{1, rand.Uint64()}
		if *modelSeed != 0 {
			seeds = []uint64{*modelSeed}
		}
		ops := 300
		if *modelOps > 0 {
			ops = *modelOps
		} else if testing.Short() || raceEnabled() {
			// Under -race as with -short; the suite's run with the
			// invariants tag, without the race detector, runs 300.
			ops = 100
		}
		for _, seed := range seeds {
			t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
				t.Parallel() // the runs share nothing
				r := &tmRun{t: t, m: m, rng: rand.New(rand.NewPCG(seed, 0)), st: newStorage(t),
					clock: ttl.NewManualClock(time.UnixMilli(0)), model: map[tmTimer]bool{}, cps: map[int64]tmCheckpoint{}}
				defer func() {
					if t.Failed() {
						t.Logf("seed %d; last operations:\n%s", seed, strings.Join(r.log, "\n"))
					}
				}()
				r.job = r.openJob(1 + r.rng.IntN(3))
				for i := range ops {
					r.step(i)
					r.checkNext()
					if t.Failed() {
						return
					}
				}
				r.wm, r.now = math.MaxInt64, math.MaxInt64/2
				r.clock.Set(time.UnixMilli(r.now))
				r.advance(0)
				r.advance(1)
				if len(r.model) != 0 {
					t.Fatalf("%d timers never fired: %v", len(r.model), r.model)
				}
				if r.exactChecks == 0 {
					t.Fatal("the pending count was never exact, so never checked")
				}
			})
		}
	})
}

const tmMaxPar = 128

type tmTimer struct {
	dom     byte // 0 event time, 1 processing time
	ts      int64
	kg      int
	key, ns int64
}

func (a tmTimer) less(b tmTimer) bool {
	if a.ts != b.ts {
		return a.ts < b.ts
	}
	if a.kg != b.kg {
		return a.kg < b.kg
	}
	if a.key != b.key {
		return a.key < b.key
	}
	return a.ns < b.ns
}

type tmInstance struct {
	b   *backend.Backend[int64]
	svc *backend.TimerService[int64, int64]
	kgs backend.KeyGroupRange
	dir string
}

type tmCheckpoint struct {
	handles []snapshot.Handle
	model   map[tmTimer]bool
}

type tmRun struct {
	t     *testing.T
	m     mode
	rng   *rand.Rand
	st    *snapshot.Local
	clock *ttl.ManualClock
	job   []*tmInstance
	model map[tmTimer]bool
	wm    int64
	now   int64
	cps   map[int64]tmCheckpoint
	cpID  int64
	log   []string

	exactChecks int // checks of an exact pending count
}

func (r *tmRun) logf(format string, args ...any) {
	r.log = append(r.log, fmt.Sprintf(format, args...))
	if len(r.log) > 30 {
		r.log = r.log[1:]
	}
}

func (r *tmRun) opts(kgs backend.KeyGroupRange, dir string) backend.Options {
	return backend.Options{Dir: dir, KeyGroups: kgs, MaxParallelism: tmMaxPar, Clock: r.clock, IncrementalCheckpoints: r.m.incremental}
}

func (r *tmRun) service(in *tmInstance) {
	d := backend.TimerServiceDescriptor[int64]{Name: "timers", NamespaceCodec: backend.Int64, CacheSize: 1 + r.rng.IntN(4)}
	in.svc = must(backend.GetTimerService(in.b, d)).in(r.t)
}

func (r *tmRun) ranges(p int) []backend.KeyGroupRange {
	out := make([]backend.KeyGroupRange, p)
	for i := range p {
		out[i] = must(backend.KeyGroupRangeForSubtask(tmMaxPar, p, i)).in(r.t)
	}
	return out
}

func (r *tmRun) openJob(p int) []*tmInstance {
	var job []*tmInstance
	for _, kgs := range r.ranges(p) {
		in := &tmInstance{kgs: kgs, dir: r.t.TempDir()}
		in.b = MustOpenK(r.t, backend.Int64, withOptions(r.opts(kgs, in.dir)))
		r.service(in)
		job = append(job, in)
	}
	return job
}

func (r *tmRun) kg(k int64) int { return must(backend.KeyGroupOf(backend.Int64, k, tmMaxPar)).in(r.t) }

// owner returns the instance owning key k.
func (r *tmRun) owner(k int64) *tmInstance {
	kg := r.kg(k)
	for _, in := range r.job {
		if in.kgs.Contains(kg) {
			return in
		}
	}
	r.t.Fatalf("no instance owns key %d (key group %d)", k, kg)
	return nil
}

func (r *tmRun) randomTimer(dom byte) tmTimer {
	base := r.wm
	if dom == 1 {
		base = r.now
	}
	k := r.rng.Int64N(40)
	return tmTimer{dom: dom, ts: base - 5 + r.rng.Int64N(60), kg: r.kg(k), key: k, ns: r.rng.Int64N(3)}
}

// existing returns a timer of the model, if it has any.
func (r *tmRun) existing(in *tmInstance) (tmTimer, bool) {
	var all []tmTimer
	for tm := range r.model {
		if in == nil || in.kgs.Contains(tm.kg) {
			all = append(all, tm)
		}
	}
	if len(all) == 0 {
		return tmTimer{}, false
	}
	// Sorted, so the seeded generator picks the same timer every run.
	slices.SortFunc(all, func(a, b tmTimer) int {
		switch {
		case a == b:
			return 0
		case a.dom != b.dom:
			return int(a.dom) - int(b.dom)
		case a.less(b):
			return -1
		}
		return 1
	})
	return all[r.rng.IntN(len(all))], true
}

func (r *tmRun) write(tm tmTimer, register bool) {
	in := r.owner(tm.key)
	noErr(r.t, in.b.SetCurrentKey(tm.key))
	var err error
	switch {
	case register && tm.dom == 0:
		err = in.svc.RegisterEventTimeTimer(tm.ns, tm.ts)
	case register:
		err = in.svc.RegisterProcessingTimeTimer(tm.ns, tm.ts)
	case tm.dom == 0:
		err = in.svc.DeleteEventTimeTimer(tm.ns, tm.ts)
	default:
		err = in.svc.DeleteProcessingTimeTimer(tm.ns, tm.ts)
	}
	noErr(r.t, err)
	if register {
		r.model[tm] = true
	} else {
		delete(r.model, tm)
	}
}

func (r *tmRun) step(i int) {
	switch p := r.rng.IntN(100); {
	case p < 40:
		tm := r.randomTimer(byte(r.rng.IntN(2)))
		if r.rng.IntN(5) == 0 {
			if e, ok := r.existing(nil); ok {
				tm = e // a duplicate
			}
		}
		r.logf("%d: register %+v", i, tm)
		r.write(tm, true)
	case p < 55:
		tm, ok := r.existing(nil)
		if !ok || r.rng.IntN(5) == 0 {
			tm = r.randomTimer(byte(r.rng.IntN(2)))
		}
		r.logf("%d: delete %+v", i, tm)
		r.write(tm, false)
	case p < 68:
		r.wm += r.rng.Int64N(25)
		if r.rng.IntN(10) == 0 {
			r.wm += 100 // a jump over many timers
		}
		r.logf("%d: watermark %d", i, r.wm)
		r.advance(0)
	case p < 78:
		r.now += r.rng.Int64N(25)
		r.clock.Set(time.UnixMilli(r.now))
		r.logf("%d: processing time %d", i, r.now)
		r.advance(1)
	case p < 83:
		in := r.job[r.rng.IntN(len(r.job))]
		r.logf("%d: reopen %s", i, in.kgs)
		noErr(r.t, in.b.Close())
		in.b = MustOpenK(r.t, backend.Int64, withOptions(r.opts(in.kgs, in.dir)))
		r.service(in)
	case p < 92:
		r.cpID++
		r.logf("%d: checkpoint %d", i, r.cpID)
		var snaps []*backend.AsyncSnapshot
		for _, in := range r.job {
			snaps = append(snaps, must(in.b.Snapshot(r.cpID, r.st)).in(r.t))
		}
		hs, err := runAll(context.Background(), snaps)
		noErr(r.t, err)
		commitCP(r.t, r.st, r.cpID, hs...)
		r.cps[r.cpID] = tmCheckpoint{handles: hs, model: maps.Clone(r.model)}
	default:
		if r.cpID == 0 {
			return
		}
		id := 1 + r.rng.Int64N(r.cpID)
		p := 1 + r.rng.IntN(3)
		r.logf("%d: restore checkpoint %d at parallelism %d", i, id, p)
		cp := r.cps[id]
		for _, in := range r.job {
			noErr(r.t, in.b.Close())
		}
		r.job = nil
		for _, kgs := range r.ranges(p) {
			in := &tmInstance{kgs: kgs, dir: r.t.TempDir()}
			in.b = MustRestore(r.t, backend.Int64, r.st, cp.handles, withOptions(r.opts(kgs, in.dir)))
			r.service(in)
			r.job = append(r.job, in)
		}
		r.model = maps.Clone(cp.model)
	}
}

// advance fires the due timers of domain dom on every instance and checks
// each against the model, registering and deleting timers from fire.
func (r *tmRun) advance(dom byte) {
	limit := r.wm
	if dom == 1 {
		limit = r.now
	}
	for _, in := range r.job {
		fire := func(key, ns, ts int64) error {
			want, ok := r.nextDue(in, dom, limit)
			got := tmTimer{dom: dom, ts: ts, kg: r.kg(key), key: key, ns: ns}
			if !ok || got != want {
				return fmt.Errorf("fired %+v, want %+v (due: %v)", got, want, ok)
			}
			if cur, set := in.b.CurrentKey(); !set || cur != key {
				return fmt.Errorf("current key %d while firing a timer of %d", cur, key)
			}
			delete(r.model, got)
			if r.rng.IntN(5) == 0 {
				// Register for a key of this instance, often due now.
				tm := r.randomTimer(dom)
				tm.ts = ts + r.rng.Int64N(30)
				if in.kgs.Contains(tm.kg) {
					r.logf("  in fire: register %+v", tm)
					r.write(tm, true)
				}
			}
			if r.rng.IntN(8) == 0 {
				if tm, ok := r.existing(in); ok {
					r.logf("  in fire: delete %+v", tm)
					r.write(tm, false)
				}
			}
			return nil
		}
		var err error
		if dom == 0 {
			err = in.svc.AdvanceWatermark(limit, fire)
		} else {
			err = in.svc.AdvanceProcessingTime(fire)
		}
		noErr(r.t, err)
		if tm, ok := r.nextDue(in, dom, limit); ok {
			r.t.Fatalf("instance %s: timer %+v is due at %d and did not fire", in.kgs, tm, limit)
		}
	}
}

// nextDue returns the model's first timer of domain dom in in's key
// groups, if it is due at limit.
func (r *tmRun) nextDue(in *tmInstance, dom byte, limit int64) (tmTimer, bool) {
	tm, ok := r.first(in, dom)
	return tm, ok && tm.ts <= limit
}

func (r *tmRun) first(in *tmInstance, dom byte) (tmTimer, bool) {
	var best tmTimer
	found := false
	for tm := range r.model {
		if tm.dom == dom && in.kgs.Contains(tm.kg) && (!found || tm.less(best)) {
			best, found = tm, true
		}
	}
	return best, found
}

func (r *tmRun) checkNext() {
	for _, in := range r.job {
		// The pending count, when the service says it is exact.
		want := 0
		for tm := range r.model {
			if in.kgs.Contains(tm.kg) {
				want++
			}
		}
		if st := in.svc.Stats(); st.PendingExact {
			r.exactChecks++
			if st.Pending != uint64(want) {
				r.t.Fatalf("instance %s: %d timers pending, exact, want %d", in.kgs, st.Pending, want)
			}
		}
		for dom := range byte(2) {
			want, wantOK := r.first(in, dom)
			next := in.svc.NextEventTime
			if dom == 1 {
				next = in.svc.NextProcessingTime
			}
			got, ok := next()
			if ok != wantOK || (ok && got != want.ts) {
				r.t.Fatalf("instance %s, domain %d: next timer at %d (%v), want %+v (%v)", in.kgs, dom, got, ok, want, wantOK)
			}
		}
	}
}
