package store

import (
	"strings"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// MaxRetryPause is the longest pause before Pebble may create another
// table file after writes of table files kept failing.
const MaxRetryPause = time.Second

// pace slows Pebble's retries on a failing filesystem. Pebble retries a
// failed flush at once and forever, thousands of times a second on a full
// disk; every failed write of a table file doubles a pause (from 1 ms up
// to MaxRetryPause) taken before the next table file is created, and a
// successful sync of one ends it. Table files are created by flushes and
// compactions without Pebble's mutex held, so the pause delays only the
// retry, not the database.
type pace struct {
	mu    sync.Mutex
	pause time.Duration
}

func (p *pace) wait() {
	p.mu.Lock()
	d := p.pause
	p.mu.Unlock()
	if d > 0 {
		time.Sleep(d)
	}
}

func (p *pace) failed() {
	p.mu.Lock()
	p.pause = min(max(2*p.pause, time.Millisecond), MaxRetryPause)
	p.mu.Unlock()
}

func (p *pace) ok() {
	p.mu.Lock()
	p.pause = 0
	p.mu.Unlock()
}

// isTable reports whether name is a Pebble table file.
func isTable(name string) bool { return strings.HasSuffix(name, ".sst") }

// pacedFile is a table file whose write and sync failures lengthen the
// pause, and whose successful sync ends it.
type pacedFile struct {
	vfs.File
	p *pace
}

func (f pacedFile) note(err error) error {
	if err != nil {
		f.p.failed()
	}
	return err
}

func (f pacedFile) Write(b []byte) (int, error) {
	n, err := f.File.Write(b)
	return n, f.note(err)
}

func (f pacedFile) WriteAt(b []byte, off int64) (int, error) {
	n, err := f.File.WriteAt(b, off)
	return n, f.note(err)
}

func (f pacedFile) Sync() error {
	err := f.File.Sync()
	if err == nil {
		f.p.ok()
	}
	return f.note(err)
}

func (f pacedFile) SyncData() error {
	err := f.File.SyncData()
	if err == nil {
		f.p.ok()
	}
	return f.note(err)
}
