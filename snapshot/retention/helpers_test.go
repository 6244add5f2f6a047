package retention_test

import (
	"context"
	"hash/crc32"
	"slices"
	"testing"

	"github.com/pebblestate/pebblestate/internal/storagetest"
	"github.com/pebblestate/pebblestate/snapshot"
	"github.com/pebblestate/pebblestate/snapshot/incremental"
)

// Helpers of the retention tests: storage, full checkpoints whose files
// are written, and incremental ones whose SSTs are uploaded to shared/.

// sampleData is what the tests write into each data file of a
// sampleCheckpoint; the handles' file references describe it.
const sampleData = "data"

// sampleCheckpoint returns a full checkpoint id of two handles (instances
// aaaa and bbbb, key groups [0, 64) and [64, 128) of 128), each with one
// data file in chk-<id>/ that holds sampleData. The files are not written.
func sampleCheckpoint(id int64) *snapshot.Checkpoint {
	cp := &snapshot.Checkpoint{ID: id, CreatedUnixMillis: 1_700_000_000_123}
	for i, inst := range []string{"aaaa", "bbbb"} {
		f := snapshot.FileRef{Name: snapshot.Dir(id) + "/full-" + inst + ".dat", Size: int64(len(sampleData)),
			CRC32C: crc32.Checksum([]byte(sampleData), snapshot.Castagnoli)}
		cp.Handles = append(cp.Handles, snapshot.Handle{
			Operator: "op", InstanceID: inst, CheckpointID: id, Kind: snapshot.KindFull,
			MaxParallelism: 128, KeyGroupStart: i * 64, KeyGroupEnd: (i + 1) * 64, KeyCodec: "int64",
			States: []snapshot.State{
				{FormatVersion: 1, Name: "v", ID: 1, Kind: snapshot.StateKindValue, KeyCodec: "int64", NamespaceCodec: "void", ValueCodec: "string"},
			},
			Files:     []snapshot.FileRef{f},
			StateSize: f.Size, CheckpointedSize: f.Size,
		})
	}
	return cp
}

// commitCheckpoint writes the data files of sampleCheckpoint(id) and
// commits its metadata.
func commitCheckpoint(t testing.TB, st snapshot.Storage, id int64) *snapshot.Checkpoint {
	t.Helper()
	cp := sampleCheckpoint(id)
	for _, h := range cp.Handles {
		storagetest.Put(t, st, h.Files[0].Name, []byte(sampleData))
	}
	if err := snapshot.Commit(context.Background(), st, cp); err != nil {
		t.Fatalf("Commit(%d): %v", id, err)
	}
	return cp
}

const incInst = "00c0ffee"

func incRefNames(t testing.TB, st snapshot.Storage, ids []int64) []string {
	t.Helper()
	refs, err := incremental.SharedRefs(context.Background(), st, ids)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for n := range refs {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}
