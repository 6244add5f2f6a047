package apitest_test

import (
	"bytes"
	"context"
	"hash/crc32"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/pebblestate/pebblestate/backend"
	"github.com/pebblestate/pebblestate/restore"
	"github.com/pebblestate/pebblestate/snapshot"
	"github.com/pebblestate/pebblestate/ttl"
)

const (
	maxPar = 16  // key groups of the operator
	nKeys  = 400 // keys written; each has one value and two map entries
)

// allKeyGroups is the range every instance here owns, named the way a user
// names it.
var allKeyGroups = backend.KeyGroupRange{Start: 0, End: maxPar}

// openFilled opens a backend with opts, registers a value state with TTL
// ("last") and a map state ("hours"), and writes nKeys keys, rounds times
// over, flushing after each round.
func openFilled(t *testing.T, opts backend.Options, rounds int) *backend.Backend[int64] {
	t.Helper()
	b, err := backend.Open(backend.Int64, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	last, err := backend.GetValue(b, backend.ValueDescriptor[string]{Name: "last", Codec: backend.String, TTL: ttl.Config{TTL: time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	hours, err := backend.GetMap(b, backend.MapDescriptor[int64, int64]{Name: "hours", KeyCodec: backend.Int64, ValueCodec: backend.Int64})
	if err != nil {
		t.Fatal(err)
	}
	for range rounds {
		for k := range int64(nKeys) {
			if err := b.SetCurrentKey(k); err != nil {
				t.Fatal(err)
			}
			if err := last.Update(strings.Repeat("page", 8) + string(rune('a'+k%26))); err != nil {
				t.Fatal(err)
			}
			for h := range int64(2) {
				if err := hours.Put(h, k*h); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := b.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

func newStorage(t *testing.T) *snapshot.Local {
	t.Helper()
	st, err := snapshot.NewLocal(filepath.Join(t.TempDir(), "checkpoints"))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// checkFile checks that a file reference names a file of storage with its
// size and CRC-32C.
func checkFile(t *testing.T, st *snapshot.Local, f snapshot.FileRef) {
	t.Helper()
	raw, err := os.ReadFile(st.Path(f.Name))
	if err != nil {
		t.Fatalf("file %s: %v", f.Name, err)
	}
	if int64(len(raw)) != f.Size || crc32.Checksum(raw, snapshot.Castagnoli) != f.CRC32C {
		t.Errorf("file %s has %d bytes and CRC-32C %08x; the handle says %d and %08x",
			f.Name, len(raw), crc32.Checksum(raw, snapshot.Castagnoli), f.Size, f.CRC32C)
	}
}

// checkHandle checks the fields every handle of the backend has.
func checkHandle(t *testing.T, h snapshot.Handle, b *backend.Backend[int64], kind string) {
	t.Helper()
	if h.Operator != "api" || h.InstanceID != b.InstanceID() || h.CheckpointID != 1 || h.Kind != kind ||
		h.MaxParallelism != maxPar || h.KeyGroupStart != allKeyGroups.Start || h.KeyGroupEnd != allKeyGroups.End ||
		h.KeyCodec != backend.Int64.Name() {
		t.Errorf("handle %+v", h)
	}
	if h.CheckpointedSize <= 0 || h.StateSize < h.CheckpointedSize {
		t.Errorf("handle sizes: state %d, checkpointed %d", h.StateSize, h.CheckpointedSize)
	}
	if err := h.Validate(); err != nil {
		t.Error(err)
	}
	if len(h.States) != 2 {
		t.Fatalf("handle lists %d states", len(h.States))
	}
	byName := map[string]snapshot.State{}
	for _, s := range h.States {
		if s.FormatVersion != snapshot.StateFormatVersion || s.ID == 0 || s.KeyCodec != backend.Int64.Name() || s.NamespaceCodec == "" {
			t.Errorf("state %+v", s)
		}
		byName[s.Name] = s
	}
	last, hours := byName["last"], byName["hours"]
	kinds := [2]snapshot.StateKind{last.Kind, hours.Kind}
	if kinds != [2]snapshot.StateKind{snapshot.StateKindValue, snapshot.StateKindMap} || last.Kind.String() != "value" {
		t.Errorf("state kinds %v", kinds)
	}
	if !last.TTL || last.ValueCodec != backend.String.Name() || last.UserKeyCodec != "" {
		t.Errorf("state last: %+v", last)
	}
	if hours.TTL || hours.ValueCodec != backend.Int64.Name() || hours.UserKeyCodec != backend.Int64.Name() {
		t.Errorf("state hours: %+v", hours)
	}
	if last.ID == hours.ID || last.NamespaceCodec != hours.NamespaceCodec {
		t.Errorf("states %+v and %+v", last, hours)
	}
}

// rebuild constructs a copy of cp from literals that name every exported
// field of the metadata types, the way a tool writing metadata would.
func rebuild(t *testing.T, cp *snapshot.Checkpoint) *snapshot.Checkpoint {
	t.Helper()
	// Keep "every field" honest: a new field must be added below.
	for typ, n := range map[reflect.Type]int{
		reflect.TypeFor[snapshot.Checkpoint](): 4, reflect.TypeFor[snapshot.Handle](): 16,
		reflect.TypeFor[snapshot.State](): 9, reflect.TypeFor[snapshot.FileRef](): 3,
		reflect.TypeFor[snapshot.SharedFile](): 2, reflect.TypeFor[snapshot.Block](): 5,
		reflect.TypeFor[snapshot.OperatorStateRef](): 5,
	} {
		if typ.NumField() != n {
			t.Fatalf("%s has %d fields, this test names %d: name the new ones", typ, typ.NumField(), n)
		}
	}
	out := &snapshot.Checkpoint{ID: cp.ID, CreatedUnixMillis: cp.CreatedUnixMillis}
	for _, h := range cp.Handles {
		nh := snapshot.Handle{
			Operator: h.Operator, InstanceID: h.InstanceID, CheckpointID: h.CheckpointID, Kind: h.Kind,
			MaxParallelism: h.MaxParallelism, KeyGroupStart: h.KeyGroupStart, KeyGroupEnd: h.KeyGroupEnd,
			KeyCodec: h.KeyCodec, Compression: h.Compression, StateSize: h.StateSize, CheckpointedSize: h.CheckpointedSize,
			KeyGroupAssigner: h.KeyGroupAssigner,
		}
		for _, s := range h.States {
			nh.States = append(nh.States, snapshot.State{
				FormatVersion: s.FormatVersion, Name: s.Name, ID: s.ID, Kind: s.Kind, KeyCodec: s.KeyCodec,
				NamespaceCodec: s.NamespaceCodec, ValueCodec: s.ValueCodec, UserKeyCodec: s.UserKeyCodec, TTL: s.TTL,
			})
		}
		for _, f := range h.Files {
			nh.Files = append(nh.Files, snapshot.FileRef{Name: f.Name, Size: f.Size, CRC32C: f.CRC32C})
		}
		for _, f := range h.Shared {
			nh.Shared = append(nh.Shared, snapshot.SharedFile{
				FileRef: snapshot.FileRef{Name: f.Name, Size: f.Size, CRC32C: f.CRC32C}, LocalName: f.LocalName})
		}
		for _, b := range h.Blocks {
			nh.Blocks = append(nh.Blocks, snapshot.Block{KeyGroup: b.KeyGroup, Offset: b.Offset, Length: b.Length, CRC32C: b.CRC32C, Entries: b.Entries})
		}
		out.Handles = append(out.Handles, nh)
	}
	for _, r := range cp.OperatorStates {
		out.OperatorStates = append(out.OperatorStates, snapshot.OperatorStateRef{
			Operator: r.Operator, Subtask: r.Subtask, Parallelism: r.Parallelism, MaxParallelism: r.MaxParallelism,
			FileRef: snapshot.FileRef{Name: r.Name, Size: r.Size, CRC32C: r.CRC32C}})
	}
	return out
}

// checkMetadata loads checkpoint 1's metadata, checks that rebuild copies
// it whole and that the copy encodes to the stored bytes, and returns it.
func checkMetadata(t *testing.T, st *snapshot.Local) *snapshot.Checkpoint {
	t.Helper()
	cp, err := snapshot.Load(context.Background(), st, 1)
	if err != nil {
		t.Fatal(err)
	}
	if cp.ID != 1 || time.Since(time.UnixMilli(cp.CreatedUnixMillis)).Abs() > time.Hour || len(cp.Handles) != 1 {
		t.Fatalf("checkpoint %d created at %d with %d handles", cp.ID, cp.CreatedUnixMillis, len(cp.Handles))
	}
	copied := rebuild(t, cp)
	if !reflect.DeepEqual(copied, cp) {
		t.Fatalf("rebuilt metadata differs:\n got %+v\nwant %+v", copied, cp)
	}
	enc, err := snapshot.EncodeMetadata(copied)
	if err != nil {
		t.Fatal(err)
	}
	stored, err := os.ReadFile(st.Path(snapshot.MetadataPath(1)))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(enc, stored) {
		t.Fatalf("rebuilt metadata encodes to other bytes than the stored ones")
	}
	return cp
}

// restoreRaw restores handles into a new Pebble database with
// restore.Handles, a Target built here, and returns the stats, the states
// the restore asked ids for, and the number of keys in the database.
func restoreRaw(t *testing.T, st snapshot.Storage, handles []snapshot.Handle, opts backend.Options) (restore.Stats, map[string]snapshot.State, int64) {
	t.Helper()
	opts.Dir = t.TempDir()
	po := opts.PebbleOptions(nil)
	db, err := pebble.Open(filepath.Join(opts.Dir, "db"), po)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	asked := map[string]snapshot.State{}
	tgt := restore.Target{
		DB: restore.Pebble(db, po), StagingDir: filepath.Join(opts.Dir, "staging"),
		KeyGroups: allKeyGroups, MaxParallelism: maxPar, Base: nil,
		StateID: func(s snapshot.State) (uint16, error) {
			asked[s.Name] = s
			return s.ID, s.Validate()
		},
	}
	stats, err := restore.Handles(context.Background(), st, handles, tgt)
	if err != nil {
		t.Fatal(err)
	}
	it, err := db.NewIter(nil)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for it.First(); it.Valid(); it.Next() {
		n++
	}
	if err := it.Close(); err != nil {
		t.Fatal(err)
	}
	return stats, asked, n
}

// checkRestored restores the latest checkpoint of st into a backend and
// reads a key back.
func checkRestored(t *testing.T, st snapshot.Storage, opts backend.Options) {
	t.Helper()
	opts.Dir = filepath.Join(t.TempDir(), "restored")
	b, report, err := backend.RestoreLatest(context.Background(), backend.Int64, opts, st)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if report.Checkpoint.ID != 1 || len(report.Skipped) != 0 {
		t.Fatalf("restored checkpoint %d, passed over %v", report.Checkpoint.ID, report.Skipped)
	}
	hours, err := backend.GetMap(b, backend.MapDescriptor[int64, int64]{Name: "hours", KeyCodec: backend.Int64, ValueCodec: backend.Int64})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.SetCurrentKey(77); err != nil {
		t.Fatal(err)
	}
	if v, ok, err := hours.Get(1); err != nil || !ok || v != 77 {
		t.Fatalf("hours[77][1] = %d, %v, %v after restore", v, ok, err)
	}
}

// TestFullCheckpointFromOutside takes a full checkpoint and reads every
// field of its metadata, then restores it with the restore package
// directly and through the backend.
func TestFullCheckpointFromOutside(t *testing.T) {
	st := newStorage(t)
	opts := backend.Options{Dir: t.TempDir(), MaxParallelism: maxPar, KeyGroups: allKeyGroups, Operator: "api", SnapshotCompression: "zstd"}
	b := openFilled(t, opts, 1)
	if _, err := b.Checkpoint(context.Background(), st, 1); err != nil {
		t.Fatal(err)
	}
	cp := checkMetadata(t, st)
	h := cp.Handles[0]
	checkHandle(t, h, b, snapshot.KindFull)
	if h.Compression != "zstd" || len(h.Shared) != 0 || len(h.Files) != 1 || len(h.Blocks) == 0 {
		t.Fatalf("full handle: compression %q, %d shared, %d files, %d blocks", h.Compression, len(h.Shared), len(h.Files), len(h.Blocks))
	}
	checkFile(t, st, h.Files[0])
	var entries int64
	for _, blk := range h.Blocks {
		if blk.KeyGroup < h.KeyGroupStart || blk.KeyGroup >= h.KeyGroupEnd || blk.Offset <= 0 || blk.Length <= 0 ||
			blk.Offset+blk.Length > h.Files[0].Size || blk.Entries <= 0 {
			t.Errorf("block %+v", blk)
		}
		raw, err := os.ReadFile(st.Path(h.Files[0].Name))
		if err != nil {
			t.Fatal(err)
		}
		if crc := crc32.Checksum(raw[blk.Offset:blk.Offset+blk.Length], snapshot.Castagnoli); crc != blk.CRC32C {
			t.Errorf("block of key group %d: CRC-32C %08x, the handle says %08x", blk.KeyGroup, crc, blk.CRC32C)
		}
		entries += blk.Entries
	}
	if entries != 3*nKeys {
		t.Errorf("blocks hold %d entries, want %d", entries, 3*nKeys)
	}

	stats, asked, n := restoreRaw(t, st, cp.Handles, opts)
	if stats.Handles != 1 || stats.KeyGroups != len(h.Blocks) || stats.Entries != 3*nKeys || stats.Bytes <= 0 || stats.TablesIngested != 0 {
		t.Errorf("restore stats %+v", stats)
	}
	if n != stats.Entries || !reflect.DeepEqual(asked["last"], h.States[indexOf(h.States, "last")]) || len(asked) != 2 {
		t.Errorf("database holds %d keys, stats say %d; states asked for %v", n, stats.Entries, asked)
	}
	checkRestored(t, st, opts)
}

// TestIncrementalCheckpointFromOutside takes an incremental checkpoint of
// a compacted database and reads its shared files, then restores it with
// the restore package, which ingests the compacted tables whole.
func TestIncrementalCheckpointFromOutside(t *testing.T) {
	ctx := context.Background()
	st := newStorage(t)
	opts := backend.Options{Dir: t.TempDir(), MaxParallelism: maxPar, KeyGroups: allKeyGroups, Operator: "api",
		IncrementalCheckpoints: true, Pebble: func(o *pebble.Options) {
			for i := range o.TargetFileSizes {
				o.TargetFileSizes[i] = 4 << 10 // many small tables
			}
		}}
	b := openFilled(t, opts, 2)
	if err := b.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Checkpoint(ctx, st, 1); err != nil {
		t.Fatal(err)
	}
	cp := checkMetadata(t, st)
	h := cp.Handles[0]
	checkHandle(t, h, b, snapshot.KindIncremental)
	if h.Compression != "" || len(h.Blocks) != 0 || len(h.Files) == 0 || len(h.Shared) < 2 {
		t.Fatalf("incremental handle: compression %q, %d blocks, %d files, %d shared", h.Compression, len(h.Blocks), len(h.Files), len(h.Shared))
	}
	for _, f := range h.Files {
		if !strings.HasPrefix(f.Name, snapshot.Dir(1)+"/") {
			t.Errorf("private file %s outside %s", f.Name, snapshot.Dir(1))
		}
		checkFile(t, st, f)
	}
	for _, f := range h.Shared {
		if !strings.HasPrefix(f.Name, snapshot.SharedDir+"/") || !strings.HasSuffix(f.Name, f.LocalName) || !strings.HasSuffix(f.LocalName, ".sst") {
			t.Errorf("shared file %s, local name %s", f.Name, f.LocalName)
		}
		checkFile(t, st, f.FileRef)
	}
	if base := restore.Base(cp.Handles, allKeyGroups); base == nil || base.InstanceID != h.InstanceID {
		t.Errorf("restore.Base = %+v", base)
	}

	stats, asked, n := restoreRaw(t, st, cp.Handles, opts)
	if stats.Handles != 1 || stats.KeyGroups != maxPar || stats.Entries != 3*nKeys || stats.TablesIngested == 0 || stats.TablesIngested > len(h.Shared) {
		t.Errorf("restore stats %+v (%d shared files)", stats, len(h.Shared))
	}
	if n != stats.Entries || len(asked) != 2 {
		t.Errorf("database holds %d keys, stats say %d; states asked for %v", n, stats.Entries, asked)
	}
	checkRestored(t, st, opts)
}

func indexOf(states []snapshot.State, name string) int {
	for i, s := range states {
		if s.Name == name {
			return i
		}
	}
	return -1
}
