package bench

import (
	"context"
	"flag"
	"io"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/pebblestate/pebblestate/backend"
	"github.com/pebblestate/pebblestate/internal/parallel"
	"github.com/pebblestate/pebblestate/internal/s3test"
	"github.com/pebblestate/pebblestate/snapshot"
	"github.com/pebblestate/pebblestate/snapshot/s3store"
)

// Checkpoints on S3, against versitygw (POSIX backend, on loopback, on
// this machine's disk), on the -s3keys database (default: -snapkeys):
//
//	S3Checkpoint        the first incremental checkpoint (Backend.Checkpoint: native checkpoint,
//	                    upload of every file through snapshot/s3store, metadata commit)
//	RawS3Put            baseline: PutObject of the same files, whole, 4 at a time (the upload's parallelism)
//	S3CheckpointPaired  both alternating op by op; reports s3/raw
//	S3Restore           backend.Restore of that checkpoint from S3 (download, CRC-32C, open)
//	RawS3Get            baseline: GetObject of the same files into a fresh directory, 4 at a time
//	                    (the restore's parallelism), each fsynced as a restore must
//	S3RestorePaired     both alternating op by op; reports s3/raw
//	S3RestoreLocalRecovery
//	                    the same restore with the checkpoint's local copy present (local
//	                    recovery: every file linked from the copy and checked, nothing downloaded)
//	S3RestoreLocalRecoveryPaired
//	                    it alternating op by op with IncrementalRestore's op on the same
//	                    database (restore from a Local root); reports lr/local
//
// Targets: S3Checkpoint at most 1.25x RawS3Put, S3Restore at most 1.25x
// RawS3Get, S3RestoreLocalRecovery at most 1.1x IncrementalRestore.
// -s3keys sets the database's size (CI runs them tiny). S3Checkpoint keeps
// the local copy, as a backend does by default on S3; S3Restore turns
// local recovery off, so that it downloads.

var s3KeysFlag = flag.Int("s3keys", 0, "entries of the state the S3 benchmarks checkpoint and restore (0: -snapkeys)")

var (
	s3DBOnce      snapOnce[string]
	s3IncRootOnce snapOnce[snapRoot]
)

func s3Keys(tb testing.TB) int {
	if *s3KeysFlag > 0 {
		return *s3KeysFlag
	}
	return snapKeys(tb)
}

// s3DB is the database the S3 benchmarks checkpoint: the -snapkeys one,
// or one of -s3keys entries.
func s3DB(tb testing.TB) string {
	if *s3KeysFlag <= 0 || *s3KeysFlag == snapKeys(tb) {
		return snapDB(tb)
	}
	n := s3Keys(tb)
	return s3DBOnce.get(tb, "S3 benchmark database", func() (string, error) {
		dir := filepath.Join(rootDir, "s3-db")
		return dir, snapBuild([]string{dir}, []backend.KeyGroupRange{snapAll}, n)
	})
}

// s3IncRoot is a local incremental checkpoint of s3DB, whose files the
// raw baselines upload.
func s3IncRoot(tb testing.TB) snapRoot {
	src := s3DB(tb)
	return s3IncRootOnce.get(tb, "S3 benchmark local checkpoint", func() (snapRoot, error) {
		return snapCheckpointOf(src, "s3-inc", snapAll, true)
	})
}

// s3Bench is a server and the store of one benchmark.
type s3Bench struct {
	srv *s3test.Server
	st  *s3store.Store
}

// newS3Bench starts a server with an empty bucket.
func newS3Bench(tb testing.TB) *s3Bench {
	srv := s3test.Start(tb)
	return &s3Bench{srv: srv, st: srv.Store(tb, "")}
}

// empty deletes every object of the bucket, behind the store's back
// (faster than through S3, and untimed).
func (s *s3Bench) empty(tb testing.TB) {
	tb.Helper()
	dir := filepath.Join(s.srv.Dir, s.st.Bucket())
	entries, err := os.ReadDir(dir)
	if err != nil {
		tb.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() == ".sgwtmp" {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			tb.Fatal(err)
		}
	}
}

// s3Checkpoint takes the first incremental checkpoint of a fresh clone of
// the -snapkeys database into the empty bucket and returns its duration
// and handle; the clone and the bucket are emptied afterwards, untimed.
func (s *s3Bench) s3Checkpoint(tb testing.TB) (time.Duration, snapshot.Handle) {
	tb.Helper()
	dir := snapClone(tb, s3DB(tb))
	opts := snapOptions(dir, snapAll, true)
	// A new local-recovery directory each op: the copy is made each time.
	opts.LocalRecoveryDir = filepath.Join(tb.TempDir(), "local-recovery")
	be, _ := snapOpen(tb, opts)
	runtime.GC()
	start := time.Now()
	cp, err := be.Checkpoint(context.Background(), s.st, 1)
	d := time.Since(start)
	if err != nil {
		tb.Fatal(err)
	}
	snapDiscard(tb, be, dir)
	if err := os.RemoveAll(opts.LocalRecoveryDir); err != nil {
		tb.Fatal(err)
	}
	s.empty(tb)
	return d, cp.Handles[0]
}

// rawPut uploads the files of root's handle by PutObject, whole, 4 at a
// time, and returns the duration; the bucket is emptied afterwards.
func (s *s3Bench) rawPut(tb testing.TB, root snapRoot) time.Duration {
	tb.Helper()
	type file struct{ src, key string }
	var files []file
	h := root.cp.Handles[0]
	for _, f := range h.Shared {
		files = append(files, file{root.st.Path(f.Name), f.Name})
	}
	for _, f := range h.Files {
		files = append(files, file{root.st.Path(f.Name), f.Name})
	}
	ctx := context.Background()
	c := s.st.Client()
	runtime.GC()
	start := time.Now()
	err := parallel.Do(ctx, len(files), 4, func(ctx context.Context, i int) error {
		f, err := os.Open(files[i].src)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(s.st.Bucket()), Key: aws.String(files[i].key), Body: f})
		return err
	})
	d := time.Since(start)
	if err != nil {
		tb.Fatal(err)
	}
	s.empty(tb)
	return d
}

// BenchmarkS3Checkpoint is the first incremental checkpoint of the
// -snapkeys database to versitygw: every file uploaded. Each op starts,
// untimed, from a fresh clone of the database and an empty bucket.
func BenchmarkS3Checkpoint(b *testing.B) {
	s := newS3Bench(b)
	var size int64
	benchTimed(b, func(int) time.Duration {
		d, h := s.s3Checkpoint(b)
		size = h.CheckpointedSize
		return d
	})
	b.ReportMetric(float64(size), "bytes")
}

// BenchmarkRawS3Put is BenchmarkS3Checkpoint's baseline: PutObject of the
// files of the same checkpoint (from a local root), 4 at a time.
func BenchmarkRawS3Put(b *testing.B) {
	root := s3IncRoot(b)
	snapWarmRoot(b, root)
	s := newS3Bench(b)
	benchTimed(b, func(int) time.Duration { return s.rawPut(b, root) })
}

// BenchmarkS3CheckpointPaired alternates the two op by op (the side that
// goes first alternating too) on one server and reports s3/raw, the
// ratio of their total times, and its median over pairs.
func BenchmarkS3CheckpointPaired(b *testing.B) {
	root := s3IncRoot(b)
	snapWarmRoot(b, root)
	s := newS3Bench(b)
	benchPaired(b, "s3/raw", func() time.Duration { d, _ := s.s3Checkpoint(b); return d },
		func() time.Duration { return s.rawPut(b, root) })
}

// benchTimed runs op b.N times with the timer stopped (op times itself,
// given the op's index) and reports the mean as ns/op.
func benchTimed(b *testing.B, op func(i int) time.Duration) {
	var total time.Duration
	b.ResetTimer()
	b.StopTimer()
	for i := 0; i < b.N; i++ {
		total += op(i)
	}
	b.ReportMetric(float64(total.Nanoseconds())/float64(b.N), "ns/op")
}

// benchPaired runs a and base alternately, each b.N times, with the
// timer stopped (they time themselves), and reports their times and
// ratio.
func benchPaired(b *testing.B, name string, a, base func() time.Duration) {
	b.ResetTimer()
	b.StopTimer()
	var at, bt time.Duration
	var ratios []float64
	for i := 0; i < b.N; i++ {
		var x, y time.Duration
		if i%2 == 0 {
			x, y = a(), base()
		} else {
			y, x = base(), a()
		}
		at += x
		bt += y
		ratios = append(ratios, float64(x)/float64(y))
	}
	slices.Sort(ratios)
	b.ReportMetric(float64(at)/float64(bt), name)
	b.ReportMetric(ratios[len(ratios)/2], name+"-med")
	an, bn, _ := strings.Cut(name, "/")
	b.ReportMetric(float64(at.Nanoseconds())/float64(b.N), an+"-ns/op")
	b.ReportMetric(float64(bt.Nanoseconds())/float64(b.N), bn+"-ns/op")
}

// s3RestoreRoot is a bucket holding checkpoint 1 of the -snapkeys
// database, taken once per benchmark.
func s3RestoreRoot(b *testing.B) (*s3Bench, *snapshot.Checkpoint) {
	s, cp, _ := s3LocalRecoveryRoot(b)
	return s, cp
}

// s3LocalRecoveryRoot is s3RestoreRoot, also returning the
// local-recovery directory holding checkpoint 1's local copy.
func s3LocalRecoveryRoot(b *testing.B) (*s3Bench, *snapshot.Checkpoint, string) {
	s := newS3Bench(b)
	dir := snapClone(b, s3DB(b))
	opts := snapOptions(dir, snapAll, true)
	opts.LocalRecoveryDir = filepath.Join(b.TempDir(), "local-recovery")
	be, _ := snapOpen(b, opts)
	cp, err := be.Checkpoint(context.Background(), s.st, 1)
	if err != nil {
		b.Fatal(err)
	}
	snapDiscard(b, be, dir)
	return s, cp, opts.LocalRecoveryDir
}

// s3Restore restores cp from S3 into a fresh directory and returns the
// duration; the backend is closed and removed afterwards, untimed. With
// lr empty, local recovery is off; otherwise lr is the local-recovery
// directory, and the first op checks that nothing was downloaded.
func (s *s3Bench) s3Restore(b *testing.B, cp *snapshot.Checkpoint, check bool, lr string) time.Duration {
	opts := snapOptions(snapFreshDir(b), snapAll, true)
	opts.LocalRecovery, opts.LocalRecoveryDir = backend.LocalRecoveryOff, lr
	if lr != "" {
		opts.LocalRecovery = backend.LocalRecoveryOn
	}
	runtime.GC()
	start := time.Now()
	be, err := backend.Restore(context.Background(), backend.Bytes, opts, s.st, cp.Handles)
	d := time.Since(start)
	if err != nil {
		b.Fatal(err)
	}
	if check {
		snapCheckCount(b, be, s3Keys(b))
		if rs := be.Metrics().Restore; lr != "" && (rs.DownloadedBytes != 0 || rs.LocalBytes != rs.Bytes) {
			b.Fatalf("restore with the local copy: %+v", rs)
		}
	}
	snapDiscard(b, be, opts.Dir)
	return d
}

// rawGet downloads the objects of cp's handle into a fresh directory, 4
// at a time, fsyncing each (a restore must make its files durable before
// it says it is done; without the fsyncs the restore measured 2.1x this at
// 300,000 keys), and returns the duration; the directory is removed
// afterwards.
func (s *s3Bench) rawGet(b *testing.B, cp *snapshot.Checkpoint) time.Duration {
	h := cp.Handles[0]
	type file struct{ key, dst string }
	dir := snapFreshDir(b)
	if err := os.Mkdir(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	var files []file
	for _, f := range h.Shared {
		files = append(files, file{f.Name, filepath.Join(dir, f.LocalName)})
	}
	for _, f := range h.Files {
		files = append(files, file{f.Name, filepath.Join(dir, path.Base(f.Name))})
	}
	c := s.st.Client()
	runtime.GC()
	start := time.Now()
	err := parallel.Do(context.Background(), len(files), 4, func(ctx context.Context, i int) error {
		out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.st.Bucket()), Key: aws.String(files[i].key)})
		if err != nil {
			return err
		}
		defer out.Body.Close()
		f, err := os.Create(files[i].dst)
		if err != nil {
			return err
		}
		if _, err := io.Copy(f, out.Body); err != nil {
			f.Close()
			return err
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	})
	d := time.Since(start)
	if err != nil {
		b.Fatal(err)
	}
	if err := os.RemoveAll(dir); err != nil {
		b.Fatal(err)
	}
	return d
}

// BenchmarkS3Restore is backend.Restore of the first incremental
// checkpoint of the -snapkeys database from versitygw, at the same key
// groups: every file downloaded 4 at a time, its CRC-32C checked, the
// database opened.
func BenchmarkS3Restore(b *testing.B) {
	s, cp := s3RestoreRoot(b)
	benchTimed(b, func(i int) time.Duration { return s.s3Restore(b, cp, i == 0, "") })
}

// BenchmarkRawS3Get is BenchmarkS3Restore's baseline: GetObject of the
// same objects into a fresh directory, 4 at a time, each file fsynced.
func BenchmarkRawS3Get(b *testing.B) {
	s, cp := s3RestoreRoot(b)
	benchTimed(b, func(int) time.Duration { return s.rawGet(b, cp) })
}

// BenchmarkS3RestorePaired alternates the two op by op and reports
// s3/raw.
func BenchmarkS3RestorePaired(b *testing.B) {
	s, cp := s3RestoreRoot(b)
	first := true
	benchPaired(b, "s3/raw", func() time.Duration {
		d := s.s3Restore(b, cp, first, "")
		first = false
		return d
	}, func() time.Duration { return s.rawGet(b, cp) })
}

// BenchmarkS3RestoreLocalRecovery is BenchmarkS3Restore with the
// checkpoint's local copy present: every file is hard-linked from the
// copy and its CRC-32C checked; only the metadata comes from S3.
func BenchmarkS3RestoreLocalRecovery(b *testing.B) {
	s, cp, lr := s3LocalRecoveryRoot(b)
	snapWarmTree(b, lr)
	benchTimed(b, func(i int) time.Duration { return s.s3Restore(b, cp, i == 0, lr) })
}

// BenchmarkS3RestoreLocalRecoveryPaired alternates
// BenchmarkS3RestoreLocalRecovery's op with BenchmarkIncrementalRestore's
// on the same database (a restore from a Local root of its checkpoint,
// linking and checking the same files), op by op, and reports lr/local.
//
// Sub-benchmark copy=linked is the real thing: the copy's files are the
// backend's own tables, as Pebble wrote them. copy=rewritten first
// replaces each file of the copy by a plain copy of it, written as the
// Local root's files are (by the upload): the kernel reads the tables
// Pebble wrote measurably slower from the page cache (at 256 KiB reads,
// 2.0-3.3 GB/s against 3.5-6.8 GB/s for the same bytes written whole), so
// this variant shows what the restore's code costs on top of the same
// reads.
func BenchmarkS3RestoreLocalRecoveryPaired(b *testing.B) {
	for _, rewrite := range []bool{false, true} {
		name := "copy=linked"
		if rewrite {
			name = "copy=rewritten"
		}
		b.Run(name, func(b *testing.B) {
			s, cp, lr := s3LocalRecoveryRoot(b)
			if rewrite {
				rewriteTree(b, lr)
			}
			root := s3IncRoot(b)
			snapWarmRoot(b, root)
			snapWarmTree(b, lr)
			first := true
			benchPaired(b, "lr/local", func() time.Duration {
				d := s.s3Restore(b, cp, first, lr)
				first = false
				return d
			}, func() time.Duration { return localRestore(b, root) })
		})
	}
}

// rewriteTree replaces every file under dir by a copy of it.
func rewriteTree(b *testing.B, dir string) {
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if err := copyFile(p, p+".tmp"); err != nil {
			return err
		}
		return os.Rename(p+".tmp", p)
	})
	if err != nil {
		b.Fatal(err)
	}
}

// localRestore restores root's checkpoint into a fresh directory, as
// BenchmarkIncrementalRestore does, and returns the duration; the backend
// is closed and removed afterwards, untimed.
func localRestore(b *testing.B, root snapRoot) time.Duration {
	opts := snapOptions(snapFreshDir(b), snapAll, true)
	runtime.GC()
	start := time.Now()
	be, err := backend.Restore(context.Background(), backend.Bytes, opts, root.st, root.cp.Handles)
	d := time.Since(start)
	if err != nil {
		b.Fatal(err)
	}
	snapDiscard(b, be, opts.Dir)
	return d
}
