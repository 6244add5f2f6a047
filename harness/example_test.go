package harness_test

import (
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/pebblestate/pebblestate/backend"
	"github.com/pebblestate/pebblestate/harness"
)

// counter counts each key's elements and reports the count when the
// watermark passes the key's first element by 100 ms. It is the example of
// the package doc.
type counter struct {
	count *backend.Value[string, backend.VoidNamespace, int64]
}

func (c *counter) Open(b *backend.Backend[string]) (err error) {
	c.count, err = backend.GetValue(b, backend.ValueDescriptor[int64]{Name: "count", Codec: backend.Int64})
	return err
}

func (c *counter) ProcessElement(ctx *harness.Context[string, string], _ string) error {
	n, _, err := c.count.Get()
	if err != nil {
		return err
	}
	if n == 0 {
		if err := ctx.RegisterEventTimeTimer(ctx.Timestamp() + 100); err != nil {
			return err
		}
	}
	return c.count.Update(n + 1)
}

func (c *counter) OnTimer(ctx *harness.Context[string, string], ts int64, _ harness.TimeDomain) error {
	n, _, err := c.count.Get()
	if err != nil {
		return err
	}
	ctx.Collect(ctx.Key() + ":" + strconv.FormatInt(n, 10))
	return nil
}

// TestExample_Counter is the example of the package doc: feed, checkpoint,
// restore at parallelism 3, fire, compare.
func TestExample_Counter(t *testing.T) {
	newCounter := func() harness.Function[string, string, string] { return &counter{} }
	g := harness.NewGroup(t, backend.String, newCounter, 2, harness.Options{})
	g.ProcessElement("alice", "click", 1000)
	g.ProcessElement("bob", "click", 1010)
	g.ProcessElement("alice", "click", 1020)
	snap := g.Checkpoint()

	r := harness.RestoreGroup(t, backend.String, newCounter, snap, 3, harness.Options{})
	r.ProcessElement("bob", "click", 1050)
	r.ProcessWatermark(1200)
	got := r.OutputValues()
	slices.Sort(got)
	if want := []string{"alice:2", "bob:2"}; !slices.Equal(got, want) {
		t.Fatalf("output %v, want %v", got, want)
	}
}

// reminder sets, per element, an alarm of its own timer service 1 s of
// event time later, with the element as its namespace. It is the package
// doc's example of a function with timer services of its own.
type reminder struct {
	alarms *backend.TimerService[string, string]
}

func (r *reminder) Open(b *backend.Backend[string]) (err error) {
	r.alarms, err = backend.GetTimerService(b, backend.TimerServiceDescriptor[string]{Name: "alarms", NamespaceCodec: backend.String})
	return err
}

func (r *reminder) TimerServices() []harness.Timers[string, string] {
	return []harness.Timers[string, string]{harness.OnTimers(r.alarms, r.onAlarm)}
}

func (r *reminder) onAlarm(ctx *harness.Context[string, string], what string, _ int64, _ harness.TimeDomain) error {
	ctx.Collect(ctx.Key() + ": " + what)
	return nil
}

func (r *reminder) ProcessElement(ctx *harness.Context[string, string], what string) error {
	return r.alarms.RegisterEventTimeTimer(what, ctx.Timestamp()+1000)
}

func (r *reminder) OnTimer(*harness.Context[string, string], int64, harness.TimeDomain) error {
	return nil
}

// TestExample_Reminder is the package doc's example of a function with
// a timer service of its own: the watermark fires its alarms.
func TestExample_Reminder(t *testing.T) {
	h := harness.New(t, backend.String, harness.Function[string, string, string](&reminder{}), harness.Options{})
	h.ProcessElement("alice", "call bob", 1000)
	h.ProcessWatermark(1999)
	h.ProcessElement("bob", "call alice", 1500)
	h.ProcessWatermark(2000)
	if got, want := h.OutputValues(), []string{"alice: call bob"}; !slices.Equal(got, want) {
		t.Fatalf("output %q, want %q", got, want)
	}
}

// TestExample_DocMatches keeps the package doc's example code equal to
// this file's: every code line of doc.go appears here, in order.
func TestExample_DocMatches(t *testing.T) {
	doc, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("example_test.go")
	if err != nil {
		t.Fatal(err)
	}
	rest, n := string(src), 0
	for line := range strings.Lines(string(doc)) {
		code, ok := strings.CutPrefix(strings.TrimRight(line, "\n"), "//\t")
		if !ok || strings.HasPrefix(code, "got := ") {
			continue // not code, or the doc's own ending
		}
		i := strings.Index(rest, code)
		if i < 0 {
			t.Fatalf("doc.go's line %q is not in example_test.go (after the lines before it)", code)
		}
		rest, n = rest[i+len(code):], n+1
	}
	if n < 30 {
		t.Fatalf("only %d code lines in doc.go", n)
	}
}
