package backend_test

// The datadriven timer scenarios in testdata/timers, each run with full
// and with incremental snapshots. Backends have string keys, a timer
// service "t" with string namespaces, max parallelism 128 unless told,
// and share one manual clock (processing time) and one checkpoint
// storage.
//
//	open b=<name> [kgs=<start>-<end>] [cache=<n>]   open a backend and its timer service
//	reopen b=<name>                                  close and open the directory again
//	keygroup k=(<key>,...)                           print each key's key group
//	register b=<name> k=<key> ns=<ns> ts=<ts> [proc] register a timer (proc: processing time)
//	delete b=<name> k=<key> ns=<ns> ts=<ts> [proc]   delete a timer
//	watermark b=<name> wm=<wm> [on-fire=(k:ns:ts,...)] [del-on-fire=(k:ns:ts,...)]
//	                                                 advance the watermark and print the fired
//	                                                 timers as "key ns ts"; the first timer fired
//	                                                 registers (deletes) the on-fire timers
//	clock ms=<ms>                                    set processing time
//	proctime b=<name>                                fire due processing-time timers
//	next b=<name>                                    the next event and processing timestamps
//	stats b=<name>                                   the service's counters
//	checkpoint id=<id> b=(<name>,...)                snapshot the backends and commit them
//	restore id=<id> b=<name> kgs=<start>-<end>       restore a backend from checkpoint id

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"

	"github.com/pebblestate/pebblestate/backend"
	"github.com/pebblestate/pebblestate/snapshot"
	"github.com/pebblestate/pebblestate/ttl"
)

func TestDatadrivenTimers(t *testing.T) {
	datadriven.Walk(t, "testdata/timers", func(t *testing.T, path string) {
		forEachMode(t, func(t *testing.T, m mode) {
			e := &tmEnv{m: m, st: newStorage(t), clock: ttl.NewManualClock(time.UnixMilli(0)),
				bs: map[string]*tmBackend{}, cps: map[int64][]snapshot.Handle{}}
			datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
				out, err := e.run(t, d)
				if err != nil {
					return out + "error: " + err.Error() + "\n"
				}
				return out
			})
		})
	})
}

type tmEnv struct {
	m     mode
	st    *snapshot.Local
	clock *ttl.ManualClock
	bs    map[string]*tmBackend
	cps   map[int64][]snapshot.Handle
}

type tmBackend struct {
	b     *backend.Backend[string]
	svc   *backend.TimerService[string, string]
	dir   string
	kgs   backend.KeyGroupRange
	cache int
}

func (e *tmEnv) backend(t *testing.T, d *datadriven.TestData) *tmBackend {
	var name string
	d.ScanArgs(t, "b", &name)
	b := e.bs[name]
	if b == nil {
		d.Fatalf(t, "no backend %q", name)
	}
	return b
}

func (e *tmEnv) options(t *testing.T, d *datadriven.TestData, dir string) (backend.Options, int) {
	o := backend.Options{Dir: dir, Clock: e.clock, IncrementalCheckpoints: e.m.incremental}
	o.KeyGroups = backend.KeyGroupRange{Start: 0, End: 128}
	if d.HasArg("kgs") {
		var s string
		d.ScanArgs(t, "kgs", &s)
		lo, hi, _ := strings.Cut(s, "-")
		o.KeyGroups.Start, _ = strconv.Atoi(lo)
		o.KeyGroups.End, _ = strconv.Atoi(hi)
	}
	cache := 0
	if d.HasArg("cache") {
		d.ScanArgs(t, "cache", &cache)
	}
	return o, cache
}

func (b *tmBackend) service(cache int) error {
	svc, err := backend.GetTimerService(b.b, backend.TimerServiceDescriptor[string]{Name: "t", NamespaceCodec: backend.String, CacheSize: cache})
	b.svc = svc
	return err
}

// timer scans k, ns and ts.
func timerArgs(t *testing.T, d *datadriven.TestData) (k, ns string, ts int64) {
	d.ScanArgs(t, "k", &k)
	d.ScanArgs(t, "ns", &ns)
	d.ScanArgs(t, "ts", &ts)
	return
}

// triples parses the values of argument key as k:ns:ts triples.
func triples(t *testing.T, d *datadriven.TestData, key string) [][3]string {
	var out [][3]string
	for _, a := range d.CmdArgs {
		if a.Key != key {
			continue
		}
		for _, v := range a.Vals {
			p := strings.Split(v, ":")
			if len(p) != 3 {
				d.Fatalf(t, "%s: %q is not k:ns:ts", key, v)
			}
			out = append(out, [3]string{p[0], p[1], p[2]})
		}
	}
	return out
}

func (e *tmEnv) run(t *testing.T, d *datadriven.TestData) (string, error) {
	ctx := context.Background()
	switch d.Cmd {
	case "open":
		var name string
		d.ScanArgs(t, "b", &name)
		o, cache := e.options(t, d, t.TempDir())
		b, err := backend.Open(backend.String, o)
		if err != nil {
			return "", err
		}
		closeAtEnd(t, b, o.Dir)
		tb := &tmBackend{b: b, dir: o.Dir, kgs: o.KeyGroups, cache: cache}
		e.bs[name] = tb
		return "", tb.service(cache)
	case "reopen":
		tb := e.backend(t, d)
		noErr(t, tb.b.Close())
		o := backend.Options{Dir: tb.dir, Clock: e.clock, IncrementalCheckpoints: e.m.incremental, KeyGroups: tb.kgs}
		b, err := backend.Open(backend.String, o)
		if err != nil {
			return "", err
		}
		closeAtEnd(t, b, o.Dir)
		tb.b = b
		return "", tb.service(tb.cache)
	case "keygroup":
		var out strings.Builder
		for _, a := range d.CmdArgs {
			for _, k := range a.Vals {
				kg := must(backend.KeyGroupOf(backend.String, k, 128)).in(t)
				fmt.Fprintf(&out, "%s: %d\n", k, kg)
			}
		}
		return out.String(), nil
	case "register", "delete":
		tb := e.backend(t, d)
		k, ns, ts := timerArgs(t, d)
		if err := tb.b.SetCurrentKey(k); err != nil {
			return "", err
		}
		switch proc := d.HasArg("proc"); {
		case d.Cmd == "register" && proc:
			return "", tb.svc.RegisterProcessingTimeTimer(ns, ts)
		case d.Cmd == "register":
			return "", tb.svc.RegisterEventTimeTimer(ns, ts)
		case proc:
			return "", tb.svc.DeleteProcessingTimeTimer(ns, ts)
		default:
			return "", tb.svc.DeleteEventTimeTimer(ns, ts)
		}
	case "watermark", "proctime":
		tb := e.backend(t, d)
		var out strings.Builder
		first := true
		onFire, delOnFire := triples(t, d, "on-fire"), triples(t, d, "del-on-fire")
		fire := func(k, ns string, ts int64) error {
			if cur, ok := tb.b.CurrentKey(); !ok || cur != k {
				return fmt.Errorf("current key %q while firing a timer of %q", cur, k)
			}
			fmt.Fprintf(&out, "%s %s %d\n", k, ns, ts)
			if !first {
				return nil
			}
			first = false
			for _, tr := range onFire {
				if err := e.onFire(tb, tr, d.Cmd == "proctime", true); err != nil {
					return err
				}
			}
			for _, tr := range delOnFire {
				if err := e.onFire(tb, tr, d.Cmd == "proctime", false); err != nil {
					return err
				}
			}
			return nil
		}
		var err error
		if d.Cmd == "proctime" {
			err = tb.svc.AdvanceProcessingTime(fire)
		} else {
			var wm int64
			d.ScanArgs(t, "wm", &wm)
			err = tb.svc.AdvanceWatermark(wm, fire)
		}
		return out.String(), err
	case "clock":
		var ms int64
		d.ScanArgs(t, "ms", &ms)
		e.clock.Set(time.UnixMilli(ms))
		return "", nil
	case "next":
		tb := e.backend(t, d)
		ev, okE := tb.svc.NextEventTime()
		pr, okP := tb.svc.NextProcessingTime()
		return fmt.Sprintf("event: %s\nprocessing: %s\n", orNone(ev, okE), orNone(pr, okP)), nil
	case "stats":
		s := e.backend(t, d).svc.Stats()
		return fmt.Sprintf("registered %d, deleted %d, fired %d\n", s.Registered, s.Deleted, s.Fired), nil
	case "checkpoint":
		var id int64
		d.ScanArgs(t, "id", &id)
		var snaps []*backend.AsyncSnapshot
		for _, a := range d.CmdArgs {
			if a.Key != "b" {
				continue
			}
			for _, name := range a.Vals {
				s, err := e.bs[name].b.Snapshot(id, e.st)
				if err != nil {
					return "", err
				}
				snaps = append(snaps, s)
			}
		}
		hs, err := runAll(ctx, snaps)
		if err != nil {
			return "", err
		}
		commitCP(t, e.st, id, hs...)
		e.cps[id] = hs
		return "", nil
	case "restore":
		var name string
		var id int64
		d.ScanArgs(t, "b", &name)
		d.ScanArgs(t, "id", &id)
		o, cache := e.options(t, d, t.TempDir())
		b, err := backend.Restore(ctx, backend.String, o, e.st, e.cps[id])
		if err != nil {
			return "", err
		}
		closeAtEnd(t, b, o.Dir)
		tb := &tmBackend{b: b, dir: o.Dir, kgs: o.KeyGroups, cache: cache}
		e.bs[name] = tb
		return "", tb.service(cache)
	}
	d.Fatalf(t, "unknown command %q", d.Cmd)
	return "", nil
}

func (e *tmEnv) onFire(tb *tmBackend, tr [3]string, proc, register bool) error {
	ts, err := strconv.ParseInt(tr[2], 10, 64)
	if err != nil {
		return err
	}
	if err := tb.b.SetCurrentKey(tr[0]); err != nil {
		return err
	}
	switch {
	case proc && register:
		return tb.svc.RegisterProcessingTimeTimer(tr[1], ts)
	case register:
		return tb.svc.RegisterEventTimeTimer(tr[1], ts)
	case proc:
		return tb.svc.DeleteProcessingTimeTimer(tr[1], ts)
	}
	return tb.svc.DeleteEventTimeTimer(tr[1], ts)
}

func orNone(ts int64, ok bool) string {
	if !ok {
		return "none"
	}
	return strconv.FormatInt(ts, 10)
}
