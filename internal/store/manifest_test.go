package store

import (
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pebblestate/pebblestate/internal/keys"
)

// TestCheckpointManifestBounded checks that the MANIFEST a native
// checkpoint copies stays near MaxManifestSize however many flushes came
// before. Every flush here writes a table of one 32 KiB key, the same key
// each time, so that compactions keep the database at a few tables: each
// edit names a table by that key twice (64 KiB), and the edits add up to
// more than 5 MiB, far past the bound but below Pebble's own default of
// 128 MiB.
func TestCheckpointManifestBounded(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	key := append(keys.AppendStateID(nil, 1), 5) // key group 5
	key = append(key, make([]byte, 32<<10)...)
	var edits int64
	for i := range 80 {
		if err := s.Set(key, binary.BigEndian.AppendUint32(nil, uint32(i))); err != nil {
			t.Fatal(err)
		}
		if err := s.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		edits += 2 * int64(len(key))
	}
	cp := filepath.Join(dir, ScratchDir, "cp")
	if err := s.Checkpoint(cp); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(cp)
	if err != nil {
		t.Fatal(err)
	}
	var size int64 = -1
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "MANIFEST-") {
			fi, err := e.Info()
			if err != nil {
				t.Fatal(err)
			}
			size = fi.Size()
		}
	}
	if size < 0 {
		t.Fatalf("no MANIFEST in the checkpoint %s", cp)
	}
	// The edits alone would make it 5 MiB; Pebble's own default would
	// leave it so.
	if limit := int64(2 << 20); size > limit {
		t.Fatalf("the checkpoint's MANIFEST is %d bytes after %d bytes of edits, want at most %d", size, edits, limit)
	}
	t.Logf("MANIFEST %d bytes after about %d bytes of edits", size, edits)
}
