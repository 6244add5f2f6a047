package store

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// lines is a slog handler that keeps every record.
type lines struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (l *lines) Enabled(context.Context, slog.Level) bool { return true }
func (l *lines) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.recs = append(l.recs, r.Clone())
	return nil
}
func (l *lines) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *lines) WithGroup(string) slog.Handler      { return l }

// TestMonitorRateLimit: a message repeated a thousand times a second is
// logged once, then once per LogInterval with the number left out; other
// kinds are not held back by it.
func TestMonitorRateLimit(t *testing.T) {
	h := &lines{}
	m := newMonitor("/db", slog.New(h))
	now := time.Unix(1000, 0)
	m.now = func() time.Time { return now }
	l := logger{m}
	for range 1000 {
		l.Errorf("flush failed: %s", "no space left on device")
		now = now.Add(time.Millisecond)
	}
	l.Errorf("another kind: %d", 1)
	if len(h.recs) != 2 {
		t.Fatalf("1000 repeats in 1 s and one other message logged %d lines; want 2", len(h.recs))
	}
	now = now.Add(LogInterval)
	l.Errorf("flush failed: %s", "no space left on device")
	if len(h.recs) != 3 {
		t.Fatalf("after %v the repeated message logged %d lines in all; want 3", LogInterval, len(h.recs))
	}
	var repeated int64
	h.recs[2].Attrs(func(a slog.Attr) bool {
		if a.Key == "repeated" {
			repeated = a.Value.Int64()
		}
		return true
	})
	if repeated != 999 {
		t.Errorf("the summary says %d were left out; want 999", repeated)
	}
	if !strings.Contains(h.recs[0].Message, "no space left on device") || h.recs[0].Level != slog.LevelError {
		t.Errorf("first line %q at %v", h.recs[0].Message, h.recs[0].Level)
	}
}

// TestMonitorFatalf: Fatalf, which Pebble requires not to return, logs
// the message, records it for the store's operations, and panics.
func TestMonitorFatalf(t *testing.T) {
	h := &lines{}
	m := newMonitor("/db", slog.New(h))
	func() {
		defer func() {
			if r := recover(); r == nil || !strings.Contains(r.(string), "MANIFEST sync failed") {
				t.Errorf("Fatalf panicked with %v", r)
			}
		}()
		logger{m}.Fatalf("MANIFEST sync failed: %s", "input/output error")
		t.Error("Fatalf returned")
	}()
	if err := m.fatalErr(); err == nil || !strings.Contains(err.Error(), "/db") {
		t.Errorf("recorded fatal error %v", err)
	}
	if err := m.flush(context.Background(), nil); err == nil {
		t.Error("flush after a fatal error succeeded")
	}
	if len(h.recs) != 1 || h.recs[0].Level != slog.LevelError {
		t.Errorf("Fatalf logged %d lines", len(h.recs))
	}
}
