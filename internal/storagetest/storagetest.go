package storagetest

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/pebblestate/pebblestate/snapshot"
)

// Tree describes every entry under dir: path, kind, and for files size,
// link count (where the platform reports it) and content hash, so that a
// file created, deleted, changed or hard-linked anywhere under dir shows.
func Tree(tb testing.TB, dir string) string {
	tb.Helper()
	var b strings.Builder
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			fmt.Fprintf(&b, "%s -> %s\n", rel, target)
		case d.IsDir():
			fmt.Fprintf(&b, "%s/\n", rel)
		default:
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			fi, err := d.Info()
			if err != nil {
				return err
			}
			fmt.Fprintf(&b, "%s %d links=%d %x\n", rel, len(data), links(fi), sha256.Sum256(data))
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return b.String()
}

// Recording is checkpoint storage that records every name it is asked to
// open, create or delete, as "open NAME", "create NAME" or "delete NAME".
type Recording struct {
	snapshot.Storage
	mu    sync.Mutex
	names []string
}

// Names returns what was recorded so far.
func (r *Recording) Names() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.names...)
}

func (r *Recording) note(op, name string) {
	r.mu.Lock()
	r.names = append(r.names, op+" "+name)
	r.mu.Unlock()
}

// Open records name and opens it.
func (r *Recording) Open(ctx context.Context, name string) (snapshot.File, error) {
	r.note("open", name)
	return r.Storage.Open(ctx, name)
}

// Create records name and creates it.
func (r *Recording) Create(ctx context.Context, name string) (snapshot.FileWriter, error) {
	r.note("create", name)
	return r.Storage.Create(ctx, name)
}

// Delete records name and deletes it.
func (r *Recording) Delete(ctx context.Context, name string) error {
	r.note("delete", name)
	return r.Storage.Delete(ctx, name)
}
