package backend_test

import (
	"context"
	"log/slog"
	"sync"
	"testing"
)

// testSlog returns a logger writing to the test's output.
func testSlog(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), nil))
}

// recordLogger is a slog handler that keeps the messages logged at error
// level or above.
type recordLogger struct {
	mu   sync.Mutex
	msgs []string
}

func (r *recordLogger) logger() *slog.Logger { return slog.New(r) }

func (r *recordLogger) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelError }

func (r *recordLogger) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, rec.Message)
	return nil
}

func (r *recordLogger) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *recordLogger) WithGroup(string) slog.Handler      { return r }

// lines returns how many messages were logged.
func (r *recordLogger) lines() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.msgs)
}
