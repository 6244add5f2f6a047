package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// LogInterval is how often a repeated Pebble message or background error
// is logged at most: the first is logged at once, later ones of the same
// kind are counted, and the next one logged after the interval says how
// many were left out.
const LogInterval = 10 * time.Second

// CloseFlushTimeout bounds how long Close waits for its final flush when
// the filesystem neither completes nor fails it (a hung device). A flush
// that fails ends the wait at once.
const CloseFlushTimeout = 10 * time.Second

// monitor watches a database through Pebble's event listener and logger:
// it logs through slog, rate-limited, and records the background errors
// that operations waiting on background work (Flush) return.
type monitor struct {
	dir string
	log *slog.Logger

	mu sync.Mutex
	// flushFailed is closed and replaced when a flush attempt fails, to
	// wake the operations waiting for a flush.
	flushFailed chan struct{}
	lastFlush   error // the last failed flush attempt's error, nil once one succeeds
	flushEnded  error // the error of the flush that ended last (see listener)
	begun       int   // flush attempts begun
	failedAt    int   // the number of the last attempt that failed (they run one at a time)
	failures    int   // failed flush attempts since the last success
	lastErr     error // the last background error of any kind
	fatal       error // what Pebble reported through Fatalf
	limits      map[string]*limit
	now         func() time.Time

	stalls stallCounter // write stalls, for Metrics
}

// limit is the rate limit of one kind of message.
type limit struct {
	logged     time.Time // when one was last logged
	suppressed int       // left out since
}

func newMonitor(dir string, log *slog.Logger) *monitor {
	if log == nil {
		log = slog.Default()
	}
	return &monitor{dir: dir, log: log, flushFailed: make(chan struct{}), limits: make(map[string]*limit), now: time.Now}
}

// logf logs a message of the given kind at level, unless one of the kind
// was logged less than LogInterval ago; then it only counts it.
func (m *monitor) logf(level slog.Level, kind, format string, args ...any) {
	m.mu.Lock()
	l := m.limits[kind]
	if l == nil {
		l = &limit{}
		m.limits[kind] = l
	}
	now := m.now()
	if !l.logged.IsZero() && now.Sub(l.logged) < LogInterval {
		l.suppressed++
		m.mu.Unlock()
		return
	}
	suppressed := l.suppressed
	l.logged, l.suppressed = now, 0
	m.mu.Unlock()
	attrs := []any{slog.String("dir", m.dir)}
	if suppressed > 0 {
		attrs = append(attrs, slog.Int("repeated", suppressed), slog.Duration("within", LogInterval))
	}
	m.log.Log(context.Background(), level, "pebble: "+fmt.Sprintf(format, args...), attrs...)
}

// listener returns the event listener that feeds the monitor, teed with
// next (the caller's).
func (m *monitor) listener(next pebble.EventListener) pebble.EventListener {
	own := pebble.EventListener{
		// A flush that fails ends with FlushEnd carrying its error, then
		// reports the same error value as a background error. FlushEnd
		// alone carries an error for a flush that succeeded with no output
		// (an empty memtable), so a failure is recognised by the pair.
		BackgroundError: func(err error) {
			m.mu.Lock()
			m.lastErr = err
			if m.flushEnded != nil && errors.Is(err, m.flushEnded) {
				m.flushEnded = nil
				m.lastFlush = err
				m.failedAt = m.begun
				m.failures++
				close(m.flushFailed)
				m.flushFailed = make(chan struct{})
			}
			m.mu.Unlock()
			m.logf(slog.LevelError, "background error", "background error: %v", err)
		},
		FlushBegin: func(pebble.FlushInfo) {
			m.mu.Lock()
			m.begun++
			m.mu.Unlock()
		},
		FlushEnd: func(info pebble.FlushInfo) {
			m.mu.Lock()
			m.flushEnded = info.Err
			if info.Err != nil || m.failures == 0 {
				m.mu.Unlock()
				return
			}
			failures := m.failures
			m.lastFlush, m.failures = nil, 0
			m.mu.Unlock()
			if failures > 0 {
				m.log.Info("pebble: flush succeeded again", slog.String("dir", m.dir), slog.Int("failed_attempts", failures))
			}
		},
		WriteStallBegin: func(pebble.WriteStallBeginInfo) { m.stalls.begin(time.Now()) },
		WriteStallEnd:   func() { m.stalls.end(time.Now()) },
		// Pebble's default stops the process on corruption found in the
		// background; a read of the damaged data returns an error anyway.
		DataCorruption: func(info pebble.DataCorruptionInfo) {
			m.mu.Lock()
			m.lastErr = fmt.Errorf("%w: %s: %v", ErrCorrupt, info.Path, info.Details)
			m.mu.Unlock()
			m.logf(slog.LevelError, "corruption "+info.Path, "data corruption: %s", info)
		},
	}
	return pebble.TeeEventListener(own, next)
}

// flushState returns a channel closed at the next failed flush attempt,
// the number of the last attempt that failed, the number of attempts that
// failed since the last success and the last one's error.
func (m *monitor) flushState() (next <-chan struct{}, failedAt, failures int, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.flushFailed, m.failedAt, m.failures, m.lastFlush
}

// fatalErr returns what Pebble reported through Fatalf, if anything.
func (m *monitor) fatalErr() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.fatal
}

// flush flushes db's memtable and waits until the flush completes (nil),
// an attempt begun after the call fails (the attempt's error; Pebble
// retries in the background, and a later flush succeeds once the fault
// clears) or ctx ends.
func (m *monitor) flush(ctx context.Context, db *pebble.DB) error {
	if err := m.fatalErr(); err != nil {
		return err
	}
	m.mu.Lock()
	start := m.begun
	m.mu.Unlock()
	done, err := db.AsyncFlush()
	if err != nil {
		return fmt.Errorf("flush %s: %w", m.dir, err)
	}
	for {
		next, failedAt, n, ferr := m.flushState()
		if failedAt > start {
			select {
			case <-done: // completed meanwhile
				return nil
			default:
			}
			return fmt.Errorf("flush %s (Pebble retries in the background): %w", m.dir, ferr)
		}
		select {
		case <-done:
			return nil
		case <-next:
		case <-ctx.Done():
			if ferr != nil {
				return fmt.Errorf("flush %s: %w (%d failed attempts, the last: %w)", m.dir, context.Cause(ctx), n, ferr)
			}
			return fmt.Errorf("flush %s: %w", m.dir, context.Cause(ctx))
		}
	}
}

// logger is Pebble's logger: informational messages go to slog at debug
// level, errors at error level, both rate-limited by format.
type logger struct{ m *monitor }

func (l logger) Infof(format string, args ...any) {
	if l.m.log.Enabled(context.Background(), slog.LevelDebug) {
		l.m.logf(slog.LevelDebug, format, format, args...)
	}
}

func (l logger) Errorf(format string, args ...any) {
	l.m.logf(slog.LevelError, format, format, args...)
}

// Fatalf is called by Pebble when it cannot go on: above all when a write
// of its MANIFEST fails, after which it cannot know whether the change is
// on disk, so continuing could lose or corrupt data. Pebble requires that
// Fatalf not return. It logs the message (never rate-limited), records it
// so that operations of this store return it, and panics, in whichever
// goroutine Pebble called it (usually a background one, which ends the
// process, as Pebble's own logger does with os.Exit). Reopening the
// directory recovers from the last change the MANIFEST holds.
func (l logger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	l.m.mu.Lock()
	if l.m.fatal == nil {
		l.m.fatal = fmt.Errorf("pebble stopped on a fatal error in %s: %s", l.m.dir, msg)
	}
	l.m.mu.Unlock()
	l.m.log.Error("pebble: fatal: "+msg, slog.String("dir", l.m.dir))
	panic(fmt.Sprintf("pebblestate: pebble fatal error in %s: %s", l.m.dir, msg))
}
