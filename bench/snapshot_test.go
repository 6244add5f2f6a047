package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/objstorage/objstorageprovider"
	"github.com/cockroachdb/pebble/v2/sstable"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/golang/snappy"

	"github.com/pebblestate/pebblestate/backend"
	"github.com/pebblestate/pebblestate/internal/keys"
)

// Full snapshots and their restore, on the -snapkeys database (see
// snapshot_setup_test.go), against raw Pebble doing the same work:
//
//	FullSnapshotSync  Backend.Snapshot of a full snapshot (pins a Pebble snapshot); Release untimed
//	FullSnapshot      Snapshot + AsyncSnapshot.Run: the whole data file, snappy, fsynced and renamed
//	RawScanToFile     baseline: scan the same database with raw Pebble into a snappy-framed file, fsynced
//	FullRestore       backend.Restore of the full checkpoint into a fresh directory
//	FullRestoreHalf   the same for key groups [0, 64) of 128 (a rescale-out subtask)
//	RawIngest         baseline: the same entries into SSTs (the backend's writer options) ingested
//	                  into a fresh raw Pebble database
//
// Targets: FullSnapshotSync < 1 ms; FullSnapshot/RawScanToFile <= 1.5;
// FullRestore/RawIngest <= 1.5; FullRestoreHalf/FullRestore <= 0.6.

var (
	snapFullRootOnce snapOnce[snapRoot]
	snapEntriesOnce  snapOnce[*snapEntries]
)

// snapFullRoot is a full checkpoint (id 1, default snappy compression) of
// the -snapkeys database.
func snapFullRoot(tb testing.TB) snapRoot {
	src := snapDB(tb)
	return snapFullRootOnce.get(tb, "full checkpoint", func() (snapRoot, error) {
		return snapCheckpointOf(src, "snap-full", snapAll, false)
	})
}

// BenchmarkFullSnapshotSync is the synchronous part of a full snapshot,
// which the task's thread waits for: Backend.Snapshot, which pins a Pebble
// snapshot and copies the state records. Release runs untimed. Run it
// with more iterations than the others (-benchtime 2000x) for a steadier
// figure; its target (1 ms) is three orders of magnitude away.
func BenchmarkFullSnapshotSync(b *testing.B) {
	be, _ := snapOpen(b, snapOptions(snapClone(b, snapDB(b)), snapAll, false))
	defer be.Close()
	st := snapStorage(b)
	clk := snapStart(b, false)
	id := int64(0)
	for b.Loop() {
		id++
		s, err := be.Snapshot(id, st)
		if err != nil {
			b.Fatal(err)
		}
		clk.pause()
		s.Release()
		clk.resume()
	}
	// No cpu-ns/op: for an op of microseconds it would be mostly the
	// runtime.ReadMemStats of every StopTimer and StartTimer.
}

// BenchmarkFullSnapshot is a whole full snapshot: Backend.Snapshot and
// AsyncSnapshot.Run, which writes every key group's block of the state
// through snappy into a data file of local checkpoint storage, with
// CRC-32C of the file and of every block, and commits it (fsync, rename,
// directory fsync). The file is deleted after each op, untimed
// (NotifyCheckpointAborted). Compare with BenchmarkRawScanToFile.
func BenchmarkFullSnapshot(b *testing.B) {
	n := snapKeys(b)
	dir := snapClone(b, snapDB(b))
	snapWarm(b, dir)
	be, _ := snapOpen(b, snapOptions(dir, snapAll, false))
	defer be.Close()
	st := snapStorage(b)
	ctx := context.Background()
	clk := snapStart(b, true)
	id := int64(0)
	var size int64
	for b.Loop() {
		id++
		s, err := be.Snapshot(id, st)
		if err != nil {
			b.Fatal(err)
		}
		h, err := s.Run(ctx)
		if err != nil {
			b.Fatal(err)
		}
		clk.pause()
		var entries int64
		for _, blk := range h.Blocks {
			entries += blk.Entries
		}
		if entries != int64(n) || h.Compression != "snappy" {
			b.Fatalf("snapshot of %d entries (%s), want %d (snappy)", entries, h.Compression, n)
		}
		size = h.StateSize
		if err := be.NotifyCheckpointAborted(ctx, id, st); err != nil {
			b.Fatal(err)
		}
		clk.resume()
	}
	clk.stop()
	b.ReportMetric(float64(size), "file-bytes")
}

// BenchmarkRawScanToFile is BenchmarkFullSnapshot's baseline: raw Pebble,
// with the backend's options, scans the same database (a clone of the
// same directory, the same LSM) and writes every entry's key and value,
// each preceded by its uvarint length, through the same compressor
// (github.com/golang/snappy's framed writer, behind a 64 KiB buffer, as
// the snapshot writer does) into a file, which it fsyncs: a checkpoint is
// only of use once durable, and the backend's local storage fsyncs too.
// The file is removed after each op, untimed.
func BenchmarkRawScanToFile(b *testing.B) {
	n := snapKeys(b)
	dir := snapClone(b, snapDB(b))
	snapWarm(b, dir)
	db, err := openRawDir(dir, false)
	if err != nil {
		b.Fatal(err)
	}
	defer db.close()
	path := filepath.Join(b.TempDir(), "scan.dat")
	clk := snapStart(b, true)
	var size int64
	for b.Loop() {
		entries, err := snapRawScanToFile(db, path)
		if err != nil {
			b.Fatal(err)
		}
		clk.pause()
		if entries != n {
			b.Fatalf("scanned %d entries, want %d", entries, n)
		}
		fi, err := os.Stat(path)
		if err != nil {
			b.Fatal(err)
		}
		size = fi.Size()
		if err := os.Remove(path); err != nil {
			b.Fatal(err)
		}
		clk.resume()
	}
	clk.stop()
	b.ReportMetric(float64(size), "file-bytes")
}

// snapRawScanToFile writes every entry of the state to a new file at path
// and returns how many it wrote.
func snapRawScanToFile(db *rawDB, path string) (int, error) {
	lo, hi := keys.StateBounds(snapStateID)
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return 0, err
	}
	defer it.Close()
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	bw := bufio.NewWriterSize(f, 64<<10)
	sw := snappy.NewBufferedWriter(bw)
	var rec []byte
	n := 0
	for valid := it.First(); valid; valid = it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			return n, err
		}
		k := it.Key()
		rec = binary.AppendUvarint(rec[:0], uint64(len(k)))
		rec = append(rec, k...)
		rec = binary.AppendUvarint(rec, uint64(len(v)))
		rec = append(rec, v...)
		if _, err := sw.Write(rec); err != nil {
			return n, err
		}
		n++
	}
	if err := it.Error(); err != nil {
		return n, err
	}
	if err := sw.Close(); err != nil {
		return n, err
	}
	if err := bw.Flush(); err != nil {
		return n, err
	}
	if err := f.Sync(); err != nil {
		return n, err
	}
	return n, f.Close()
}

// BenchmarkFullRestore is backend.Restore of the full checkpoint into a
// fresh directory: open a new database, read and check every block of the
// data file, build SSTs, ingest them. Closing the backend and removing the
// directory are untimed. Compare with BenchmarkRawIngest.
func BenchmarkFullRestore(b *testing.B) { benchFullRestore(b, snapAll) }

// BenchmarkFullRestoreHalf restores key groups [0, 64) of 128 from the
// same checkpoint, as one subtask of a rescale from 1 to 2 does: the other
// half's blocks are skipped, not read. Compare with BenchmarkFullRestore.
func BenchmarkFullRestoreHalf(b *testing.B) { benchFullRestore(b, snapLower) }

func benchFullRestore(b *testing.B, kgs backend.KeyGroupRange) {
	want := snapCountIn(snapKeys(b), kgs)
	root := snapFullRoot(b)
	snapWarmRoot(b, root)
	clk := snapStart(b, true)
	first := true
	for b.Loop() {
		be, dir := snapRestore(b, clk, root.st, root.cp, snapOptions("", kgs, false))
		clk.pause()
		if first {
			snapCheckCount(b, be, want)
			first = false
		}
		snapDiscard(b, be, dir)
		clk.resume()
	}
	clk.stop()
}

// snapEntries are the stored entries of the -snapkeys database, in key
// order, in one pointer-free buffer: entry i's key is
// buf[off[2i]:off[2i+1]] and its value buf[off[2i+1]:off[2i+2]].
type snapEntries struct {
	buf []byte
	off []int
}

func (e *snapEntries) len() int { return (len(e.off) - 1) / 2 }

func (e *snapEntries) entry(i int) (k, v []byte) {
	return e.buf[e.off[2*i]:e.off[2*i+1]], e.buf[e.off[2*i+1]:e.off[2*i+2]]
}

func snapLoadEntries(tb testing.TB) *snapEntries {
	src := snapDB(tb)
	return snapEntriesOnce.get(tb, "in-memory entries", func() (*snapEntries, error) {
		db, err := openRawDir(src, false)
		if err != nil {
			return nil, err
		}
		defer db.close()
		lo, hi := keys.StateBounds(snapStateID)
		it, err := db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
		if err != nil {
			return nil, err
		}
		defer it.Close()
		e := &snapEntries{off: []int{0}}
		for valid := it.First(); valid; valid = it.Next() {
			v, err := it.ValueAndErr()
			if err != nil {
				return nil, err
			}
			e.buf = append(e.buf, it.Key()...)
			e.off = append(e.off, len(e.buf))
			e.buf = append(e.buf, v...)
			e.off = append(e.off, len(e.buf))
		}
		return e, it.Error()
	})
}

// BenchmarkRawIngest is BenchmarkFullRestore's baseline: open a fresh raw
// Pebble database with the backend's options, write the state's entries
// into SSTs with the writer options restore uses (Options.MakeWriterOptions
// for L6 and the database's table format, a new file every 64 MiB) in a
// staging directory inside it, and ingest them. Close and removal are
// untimed.
//
// The entries come from an in-memory slice, already in key order: the
// baseline is the bare write path, and every cost of getting the entries
// out of the checkpoint (reading the data file, snappy, checksums, record
// decoding, rebuilding keys) is charged to the backend. Reading them from
// the raw database instead would add Pebble's iterator, which is not what
// a restore reads either, so FullRestore/RawIngest is an upper bound of
// the backend's overhead over the least work any restore must do.
func BenchmarkRawIngest(b *testing.B) {
	e := snapLoadEntries(b)
	if e.len() != snapKeys(b) {
		b.Fatalf("%d entries in memory, want %d", e.len(), snapKeys(b))
	}
	clk := snapStart(b, true)
	first := true
	for b.Loop() {
		clk.pause()
		dir := snapFreshDir(b)
		clk.resume()
		db, err := snapRawIngest(dir, e)
		if err != nil {
			b.Fatal(err)
		}
		clk.pause()
		if first {
			if got := snapRawCount(b, db); got != e.len() {
				b.Fatalf("ingested %d entries, want %d", got, e.len())
			}
			first = false
		}
		if err := db.close(); err != nil {
			b.Fatal(err)
		}
		if err := os.RemoveAll(dir); err != nil {
			b.Fatal(err)
		}
		clk.resume()
	}
	clk.stop()
}

// snapRawIngest opens a raw database in dir and ingests e into it.
func snapRawIngest(dir string, e *snapEntries) (*rawDB, error) {
	cache := pebble.NewCache(backend.DefaultBlockCacheSize)
	po := rawPebbleOptions(cache, false)
	pdb, err := pebble.Open(dir, po)
	if err != nil {
		cache.Unref()
		return nil, err
	}
	db := &rawDB{DB: pdb, cache: cache}
	paths, err := snapWriteSSTs(filepath.Join(dir, "staging"), po, pdb.TableFormat(), e)
	if err == nil {
		err = pdb.Ingest(context.Background(), paths)
	}
	if err == nil {
		err = os.RemoveAll(filepath.Join(dir, "staging"))
	}
	if err != nil {
		_ = db.close()
		return nil, err
	}
	return db, nil
}

// snapWriteSSTs writes e into SSTs of at most about 64 MiB in dir, as
// restore's builder does, and returns their paths in key order.
func snapWriteSSTs(dir string, po *pebble.Options, format sstable.TableFormat, e *snapEntries) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	wopts := po.MakeWriterOptions(6, format)
	var paths []string
	var w *sstable.Writer
	for i := range e.len() {
		if w == nil {
			p := filepath.Join(dir, fmt.Sprintf("ingest-%06d.sst", len(paths)))
			f, err := vfs.Default.Create(p, vfs.WriteCategoryUnspecified)
			if err != nil {
				return nil, err
			}
			w = sstable.NewWriter(objstorageprovider.NewFileWritable(f), wopts)
			paths = append(paths, p)
		}
		k, v := e.entry(i)
		if err := w.Set(k, v); err != nil {
			_ = w.Close()
			return nil, err
		}
		if w.Raw().EstimatedSize() >= 64<<20 {
			if err := w.Close(); err != nil {
				return nil, err
			}
			w = nil
		}
	}
	if w != nil {
		if err := w.Close(); err != nil {
			return nil, err
		}
	}
	return paths, nil
}

// snapRawCount counts the state's entries in a raw database.
func snapRawCount(tb testing.TB, db *rawDB) int {
	tb.Helper()
	lo, hi := keys.StateBounds(snapStateID)
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		tb.Fatal(err)
	}
	n := 0
	var prev []byte
	for valid := it.First(); valid; valid = it.Next() {
		if bytes.Compare(prev, it.Key()) >= 0 {
			tb.Fatalf("keys out of order at %x", it.Key())
		}
		prev = append(prev[:0], it.Key()...)
		n++
	}
	if err := it.Close(); err != nil {
		tb.Fatal(err)
	}
	return n
}
