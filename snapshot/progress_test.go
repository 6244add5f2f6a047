package snapshot

import (
	"sync"
	"testing"
	"time"
)

// TestProgressTracker adds work from several goroutines and checks the
// reports: serialized, never going back, rate-limited, the first at the
// totals and the last with everything done.
func TestProgressTracker(t *testing.T) {
	var calls []Progress
	inside := false
	tr := NewProgressTracker(func(p Progress) {
		if inside {
			t.Error("the callback was called twice at once")
		}
		inside = true
		calls = append(calls, p)
		inside = false
	})
	tr.interval = time.Hour // only the forced reports
	tr.AddTotal(100, 100*1000)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 25 {
				tr.Add(1, 1000)
			}
		})
	}
	wg.Wait()
	tr.Finish()
	tr.Finish()
	want := []Progress{{FilesTotal: 100, BytesTotal: 100_000}, {Files: 100, FilesTotal: 100, Bytes: 100_000, BytesTotal: 100_000}}
	if len(calls) != 2 || calls[0] != want[0] || calls[1] != want[1] {
		t.Fatalf("reports %v, want %v", calls, want)
	}
	if f := calls[1].Fraction(); f != 1 {
		t.Fatalf("Fraction() at the end = %v", f)
	}

	// Unknown byte total (a full snapshot): set by Finish; Fraction by
	// files meanwhile.
	calls = nil
	tr = NewProgressTracker(func(p Progress) { calls = append(calls, p) })
	tr.interval = 0 // every Add reports
	tr.AddTotal(1, 0)
	tr.Add(0, 10)
	if f := calls[len(calls)-1].Fraction(); f != 0 {
		t.Fatalf("Fraction() with no file done = %v", f)
	}
	tr.Add(1, 5)
	tr.Finish()
	last := calls[len(calls)-1]
	if last != (Progress{Files: 1, FilesTotal: 1, Bytes: 15, BytesTotal: 15}) || len(calls) != 4 {
		t.Fatalf("reports %v", calls)
	}

	// A nil tracker (no callback) does nothing.
	var nilTr *ProgressTracker = NewProgressTracker(nil)
	nilTr.AddTotal(1, 1)
	nilTr.Add(1, 1)
	nilTr.Finish()
	if p := nilTr.Progress(); p != (Progress{}) {
		t.Fatalf("nil tracker: %+v", p)
	}
}
