package snapshot_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/pebblestate/pebblestate/snapshot"
)

// TestLocalRemoveTempWhileWritersAbort guards a retention failure seen
// with two writers in one root: the loser of a commit deleted its files,
// and with them their directory, while the winner's retention walked the
// root for temporary files; the walk failed with "no such file or
// directory". A directory that goes meanwhile is no error.
func TestLocalRemoveTempWhileWritersAbort(t *testing.T) {
	ctx := context.Background()
	st, err := snapshot.NewLocal(filepath.Join(t.TempDir(), "chk"))
	if err != nil {
		t.Fatal(err)
	}
	for round := range 20 {
		var names []string
		for i := range 30 {
			name := fmt.Sprintf("chk-%d/inc-%02d/MANIFEST-000001", round, i)
			w, err := st.Create(ctx, name)
			if err != nil {
				t.Fatal(err)
			}
			if err := w.Commit(); err != nil {
				t.Fatal(err)
			}
			names = append(names, name)
		}
		var wg sync.WaitGroup
		wg.Go(func() {
			for _, n := range names {
				if err := st.Delete(ctx, n); err != nil {
					t.Error(err)
				}
			}
		})
		for range 5 {
			if err := st.RemoveTemp(ctx, func(string) bool { return true }); err != nil {
				t.Fatalf("round %d: RemoveTemp while directories go: %v", round, err)
			}
		}
		wg.Wait()
	}
}
