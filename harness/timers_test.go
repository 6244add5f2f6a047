package harness_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/pebblestate/pebblestate/backend"
	"github.com/pebblestate/pebblestate/harness"
)

// alarms is operator code with a timer service of its own, as production
// code registers one on its backend: per element it sets an event-time
// alarm 10 ms after the element (namespace "event") and a processing-time
// one 100 ms after the processing time (namespace "proc"). An event-time
// alarm registers a Context timer at its own timestamp, which fires in
// the same watermark.
type alarms struct {
	b     *backend.Backend[string]
	svc   *backend.TimerService[string, string]
	count *backend.Value[string, backend.VoidNamespace, int64]
	bind  func(f *alarms) []harness.Timers[string, string]
}

func newAlarms() harness.Function[string, int64, string] { return &alarms{} }

func (f *alarms) Open(b *backend.Backend[string]) (err error) {
	f.b = b
	f.svc, err = backend.GetTimerService(b, backend.TimerServiceDescriptor[string]{Name: "alarms", NamespaceCodec: backend.String})
	if err != nil {
		return err
	}
	f.count, err = backend.GetValue(b, backend.ValueDescriptor[int64]{Name: "count", Codec: backend.Int64})
	return err
}

func (f *alarms) TimerServices() []harness.Timers[string, string] {
	if f.bind != nil {
		return f.bind(f)
	}
	return []harness.Timers[string, string]{harness.OnTimers(f.svc, f.onAlarm)}
}

func (f *alarms) ProcessElement(ctx *harness.Context[string, string], _ int64) error {
	n, _, err := f.count.Get()
	if err != nil {
		return err
	}
	if err := f.count.Update(n + 1); err != nil {
		return err
	}
	if err := f.svc.RegisterEventTimeTimer("event", ctx.Timestamp()+10); err != nil {
		return err
	}
	return f.svc.RegisterProcessingTimeTimer("proc", ctx.CurrentProcessingTime()+100)
}

func (f *alarms) onAlarm(ctx *harness.Context[string, string], ns string, ts int64, d harness.TimeDomain) error {
	n, _, err := f.count.Get()
	if err != nil {
		return err
	}
	if ctx.Timestamp() != ts {
		return fmt.Errorf("context timestamp %d, timer %d", ctx.Timestamp(), ts)
	}
	ctx.Collect(fmt.Sprintf("alarm %s %s@%d %v n=%d", ctx.Key(), ns, ts, d, n))
	if d == harness.EventTime {
		return ctx.RegisterEventTimeTimer(ts)
	}
	return nil
}

func (f *alarms) OnTimer(ctx *harness.Context[string, string], ts int64, d harness.TimeDomain) error {
	ctx.Collect(fmt.Sprintf("context %s@%d %v", ctx.Key(), ts, d))
	return nil
}

// TestOwnTimerServices: timers the function registers on a timer service
// of its own fire through its handler when the watermark or the
// processing time reaches them, with the timer's key current, and are
// recorded with their service and namespace; they survive a checkpoint
// restored at another parallelism.
func TestOwnTimerServices(t *testing.T) {
	h := harness.New(t, backend.String, newAlarms(), harness.Options{})
	h.ProcessElement("a", 1, 100)
	h.ProcessElement("b", 1, 105)
	h.ProcessElement("a", 1, 100)
	h.ProcessWatermark(109)
	if got := h.OutputValues(); len(got) != 0 {
		t.Fatalf("fired before their time: %q", got)
	}
	h.ProcessWatermark(110)
	want := []string{"alarm a event@110 EventTime n=2", "context a@110 EventTime"}
	if got := h.OutputValues(); !slices.Equal(got, want) {
		t.Fatalf("watermark 110: %q, want %q", got, want)
	}
	wantFired := []harness.FiredTimer[string]{
		{Key: "a", Timestamp: 110, Domain: harness.EventTime, Service: "alarms", Namespace: "event"},
		{Key: "a", Timestamp: 110, Domain: harness.EventTime},
	}
	if got := h.FiredTimers(); !slices.Equal(got, wantFired) {
		t.Fatalf("fired %+v, want %+v", got, wantFired)
	}
	h.ClearOutput()
	h.SetProcessingTime(99)
	if got := h.OutputValues(); len(got) != 0 {
		t.Fatalf("processing time 99: %q", got)
	}
	h.SetProcessingTime(100)
	// Equal timestamps fire by key group: compare sorted.
	want = []string{"alarm a proc@100 ProcessingTime n=2", "alarm b proc@100 ProcessingTime n=1"}
	if got := slices.Sorted(slices.Values(h.OutputValues())); !slices.Equal(got, want) {
		t.Fatalf("processing time 100: %q, want %q", got, want)
	}

	// b's event-time alarm and c's of both domains are in the
	// checkpoint; a group of 3 fires them.
	h.ProcessElement("c", 1, 200)
	snap := h.Checkpoint()
	g := harness.RestoreGroup(t, backend.String, newAlarms, snap, 3, harness.Options{})
	g.ProcessWatermark(300)
	g.SetProcessingTime(200)
	got := g.OutputValues()
	slices.Sort(got)
	want = []string{
		"alarm b event@115 EventTime n=1", "alarm c event@210 EventTime n=1", "alarm c proc@200 ProcessingTime n=1",
		"context b@115 EventTime", "context c@210 EventTime",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("restored at 3: %q, want %q", got, want)
	}
}

// TestOwnTimerServicesRefused: a binding without a service or handler,
// of the harness's own service or of one service twice fails the test.
func TestOwnTimerServicesRefused(t *testing.T) {
	tb := fatalTB{t}
	for _, c := range []struct {
		want string
		bind func(f *alarms) []harness.Timers[string, string]
	}{
		{"no service or no handler", func(f *alarms) []harness.Timers[string, string] {
			return []harness.Timers[string, string]{harness.OnTimers[string, string, string](nil, f.onAlarm)}
		}},
		{`"alarms" bound twice`, func(f *alarms) []harness.Timers[string, string] {
			return []harness.Timers[string, string]{harness.OnTimers(f.svc, f.onAlarm), harness.OnTimers(f.svc, f.onAlarm)}
		}},
		{"the harness's own", func(f *alarms) []harness.Timers[string, string] {
			own, err := backend.GetTimerService(f.b, backend.TimerServiceDescriptor[backend.VoidNamespace]{Name: harness.TimerServiceName, NamespaceCodec: backend.Void})
			if err != nil {
				t.Fatal(err)
			}
			return []harness.Timers[string, string]{harness.OnTimers(own, func(*harness.Context[string, string], backend.VoidNamespace, int64, harness.TimeDomain) error {
				return nil
			})}
		}},
	} {
		wantFatal(t, c.want, func() {
			harness.New(tb, backend.String, harness.Function[string, int64, string](&alarms{bind: c.bind}), harness.Options{})
		})
	}
}
