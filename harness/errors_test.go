package harness_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/pebblestate/pebblestate/backend"
	"github.com/pebblestate/pebblestate/harness"
	"github.com/pebblestate/pebblestate/ttl"
)

// fatalTB is a testing.TB whose Fatal and Fatalf panic with the message,
// so that a test can check what a harness fails the test with; the rest
// is the real test's.
type fatalTB struct{ testing.TB }

type fatal string

func (f fatalTB) Fatal(args ...any)                 { panic(fatal(fmt.Sprint(args...))) }
func (f fatalTB) Fatalf(format string, args ...any) { panic(fatal(fmt.Sprintf(format, args...))) }

// wantFatal runs fn and checks that it failed the test with a message
// holding want.
func wantFatal(t *testing.T, want string, fn func()) {
	t.Helper()
	msg := func() (msg fatal) {
		defer func() {
			if r := recover(); r != nil {
				msg = r.(fatal)
			}
		}()
		fn()
		return ""
	}()
	if msg == "" {
		t.Fatalf("did not fail the test; want a failure with %q", want)
	}
	if !strings.Contains(string(msg), want) {
		t.Fatalf("failed the test with %q, want %q in it", msg, want)
	}
}

var errBad = errors.New("bad element")

// failing fails on negative elements.
type failing struct{}

func (failing) ProcessElement(_ *harness.Context[string, int64], v int64) error {
	if v < 0 {
		return errBad
	}
	return nil
}

func (failing) OnTimer(*harness.Context[string, int64], int64, harness.TimeDomain) error { return nil }

// TestHarness_Failures checks what fails the test, and with what.
func TestHarness_Failures(t *testing.T) {
	tb := fatalTB{t}
	h := harness.New[string, int64, int64](tb, backend.String, failing{}, harness.Options{ProcessingTime: 1000})
	h.ProcessElement("k", 1, 0)
	if err := h.ProcessElementErr("k", -1, 0); !errors.Is(err, errBad) || !strings.Contains(err.Error(), "ProcessElement(k, 0)") {
		t.Fatalf("ProcessElementErr = %v", err)
	}
	wantFatal(t, "bad element", func() { h.ProcessElement("k", -1, 0) })
	wantFatal(t, "processing time 999 is before the current 1000", func() { h.SetProcessingTime(999) })
	wantFatal(t, "not a *ttl.ManualClock", func() {
		harness.New[string, int64, int64](tb, backend.String, failing{}, harness.Options{Backend: backend.Options{Clock: ttl.SystemClock{}}})
	})
	wantFatal(t, "empty snapshot", func() { harness.Restore[string, int64, int64](tb, backend.String, failing{}, nil, harness.Options{}) })
	wantFatal(t, "empty snapshot", func() {
		harness.RestoreGroup(tb, backend.String, func() harness.Function[string, int64, int64] { return failing{} }, &harness.Snapshot{}, 2, harness.Options{})
	})
	part := harness.New[string, int64, int64](tb, backend.String, failing{}, harness.Options{Backend: backend.Options{KeyGroups: backend.KeyGroupRange{Start: 0, End: 1}}})
	if err := part.ProcessElementErr("k", 1, 0); !errors.Is(err, backend.ErrKeyGroupOutOfRange) {
		t.Fatalf("a key of another key group: %v", err)
	}
	h.Close()
	h.Close() // a second Close does nothing
	wantFatal(t, "used after Close", func() { h.ProcessElement("k", 1, 0) })
	wantFatal(t, "used after Close", func() { h.Checkpoint() })
}
