package backend_test

import (
	"bytes"
	"errors"
	"os"
	"testing"

	"github.com/pebblestate/pebblestate/backend"
	"github.com/pebblestate/pebblestate/internal/formatdoc"
	"github.com/pebblestate/pebblestate/internal/meta"
)

// TestFormatTimerKeyExample registers the timer of internal/keys/FORMAT.md's
// timer-key example and compares the one key stored with its dump.
func TestFormatTimerKeyExample(t *testing.T) {
	doc, err := os.ReadFile("../internal/keys/FORMAT.md")
	noErr(t, err)
	block, err := formatdoc.Block(doc, "timer-key")
	noErr(t, err)
	want, err := formatdoc.Dump(block, nil)
	noErr(t, err)

	dir := t.TempDir()
	b := MustOpen(t, inDir(dir), func(o *backend.Options) { o.MaxParallelism = 1000 })
	svc := must(backend.GetTimerService(b, backend.TimerServiceDescriptor[string]{Name: "t", NamespaceCodec: backend.String})).in(t)
	noErr(t, b.SetCurrentKey("alice"))
	noErr(t, svc.RegisterEventTimeTimer("w1", 1_700_000_000_000))
	noErr(t, b.Close())

	v := readRaw(t, dir)
	rec := v.record(t, "t")
	if rec.Kind != meta.KindTimers || rec.ID != 1 || rec.TTL || rec.NamespaceCodec != "string" || rec.ValueCodec != "void" {
		t.Fatalf("record %+v", rec)
	}
	es := v.entries(t, "t")
	if len(es) != 1 || !bytes.Equal(es[0].key, want) || len(es[0].value) != 0 {
		t.Fatalf("stored %v; FORMAT.md's timer-key is %x", es, want)
	}
}

// TestTimersMisuse checks that bad descriptors and calls are errors, not
// panics, and that the name of a timer service is bound to its kind.
func TestTimersMisuse(t *testing.T) {
	b := MustOpen(t)
	for _, d := range []backend.TimerServiceDescriptor[string]{
		{Name: "", NamespaceCodec: backend.String},
		{Name: "t"},
		{Name: "t", NamespaceCodec: backend.String, CacheSize: -1},
	} {
		if _, err := backend.GetTimerService(b, d); !errors.Is(err, backend.ErrInvalidArgument) {
			t.Errorf("GetTimerService(%+v): %v, want ErrInvalidArgument", d, err)
		}
	}
	svc := must(backend.GetTimerService(b, backend.TimerServiceDescriptor[string]{Name: "t", NamespaceCodec: backend.String})).in(t)
	if err := svc.RegisterEventTimeTimer("w", 1); !errors.Is(err, backend.ErrNoCurrentKey) {
		t.Errorf("register without a key: %v", err)
	}
	if err := svc.AdvanceWatermark(1, nil); !errors.Is(err, backend.ErrInvalidArgument) {
		t.Errorf("nil fire: %v", err)
	}
	// The same name as another kind, or with another namespace codec.
	if _, err := backend.GetValue(b, backend.ValueDescriptor[int64]{Name: "t", Codec: backend.Int64}); !errors.Is(err, backend.ErrIncompatibleState) {
		t.Errorf("value state named like a timer service: %v", err)
	}
	if _, err := backend.GetTimerService(b, backend.TimerServiceDescriptor[int64]{Name: "t", NamespaceCodec: backend.Int64}); !errors.Is(err, backend.ErrIncompatibleState) {
		t.Errorf("timer service with another namespace codec: %v", err)
	}
	if again := must(backend.GetTimerService(b, backend.TimerServiceDescriptor[string]{Name: "t", NamespaceCodec: backend.String})).in(t); again != svc {
		t.Error("registering again returned another handle")
	}

	// Advancing time from inside fire is refused; the error comes back.
	noErr(t, b.SetCurrentKey("k"))
	noErr(t, svc.RegisterEventTimeTimer("w", 1))
	err := svc.AdvanceWatermark(5, func(string, string, int64) error {
		return svc.AdvanceWatermark(6, func(string, string, int64) error { return nil })
	})
	if !errors.Is(err, backend.ErrInvalidArgument) {
		t.Errorf("nested advance: %v", err)
	}
	// A failing fire stops the advance and returns its error.
	boom := errors.New("boom")
	noErr(t, svc.RegisterEventTimeTimer("w", 2))
	noErr(t, svc.RegisterEventTimeTimer("w", 3))
	n := 0
	if err := svc.AdvanceWatermark(5, func(string, string, int64) error { n++; return boom }); !errors.Is(err, boom) || n != 1 {
		t.Errorf("failing fire: %v after %d fires", err, n)
	}
	if ts, ok := svc.NextEventTime(); !ok || ts != 3 {
		t.Errorf("next event time %d, %v; want 3", ts, ok)
	}
	noErr(t, b.Close())
	if err := svc.RegisterEventTimeTimer("w", 1); !errors.Is(err, backend.ErrClosed) {
		t.Errorf("register after Close: %v", err)
	}
	if err := svc.AdvanceWatermark(10, func(string, string, int64) error { return nil }); !errors.Is(err, backend.ErrClosed) {
		t.Errorf("advance after Close: %v", err)
	}
}

// TestTimersSurviveCleanup checks that TTL cleanup (CleanupExpired) leaves
// timers alone, even those long past.
func TestTimersSurviveCleanup(t *testing.T) {
	dir := t.TempDir()
	b := MustOpen(t, inDir(dir))
	svc := must(backend.GetTimerService(b, backend.TimerServiceDescriptor[backend.VoidNamespace]{Name: "t", NamespaceCodec: backend.Void})).in(t)
	noErr(t, b.SetCurrentKey("k"))
	noErr(t, svc.RegisterProcessingTimeTimer(backend.VoidNamespace{}, 1))
	noErr(t, b.CleanupExpired(t.Context()))
	noErr(t, b.Close())
	if n := len(readRaw(t, dir).entries(t, "t")); n != 1 {
		t.Fatalf("%d timers stored, want 1", n)
	}
}

// TestTimersCloseWhileFiring closes the backend from inside fire: the
// advance stops with ErrClosed, and nothing panics.
func TestTimersCloseWhileFiring(t *testing.T) {
	b := MustOpen(t)
	svc := must(backend.GetTimerService(b, backend.TimerServiceDescriptor[string]{Name: "t", NamespaceCodec: backend.String})).in(t)
	for _, k := range []string{"a", "b", "c"} {
		noErr(t, b.SetCurrentKey(k))
		noErr(t, svc.RegisterEventTimeTimer("w", 1))
	}
	err := svc.AdvanceWatermark(1, func(string, string, int64) error { return b.Close() })
	if !errors.Is(err, backend.ErrClosed) {
		t.Fatalf("advance that closed its backend: %v", err)
	}
}
