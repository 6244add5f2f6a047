package backend_test

// The snapshot modes and checkpoint storage of the snapshot and restore
// tests (snapshot_*_test.go): every test that applies to both full and
// incremental snapshots runs as subtests Full and Incremental of one body,
// as Flink runs its state backend suites as full- and incremental-snapshot
// variants; tests of one mode alone are named for it.

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pebblestate/pebblestate/backend"
	"github.com/pebblestate/pebblestate/internal/s3test"
	"github.com/pebblestate/pebblestate/snapshot"
	"github.com/pebblestate/pebblestate/snapshot/incremental"
)

// mode is how a test's backends take snapshots.
type mode struct {
	name        string
	incremental bool // Options.IncrementalCheckpoints
	s3          bool // checkpoints on S3 (versitygw on loopback), not Local
}

var (
	fullMode        = mode{name: "Full"}
	incrementalMode = mode{name: "Incremental", incremental: true}
	s3FullMode      = mode{name: "S3Full", s3: true}
	s3IncMode       = mode{name: "S3Incremental", incremental: true, s3: true}
)

// forEachStorage runs f as subtests Full and Incremental on Local
// storage, then S3Full and S3Incremental on S3: the main snapshot,
// restore and rescale tests run on both storages through it, the others
// on Local only.
func forEachStorage(t *testing.T, f func(t *testing.T, m mode)) {
	t.Helper()
	for _, m := range []mode{fullMode, incrementalMode, s3FullMode, s3IncMode} {
		t.Run(m.name, func(t *testing.T) { f(t, m) })
	}
}

// forEachS3 runs f as subtests Local and S3, for tests whose snapshot
// mode is their own: m says only which storage.
func forEachS3(t *testing.T, f func(t *testing.T, m mode)) {
	t.Helper()
	for _, m := range []mode{{name: "Local"}, {name: "S3", s3: true}} {
		t.Run(m.name, func(t *testing.T) { f(t, m) })
	}
}

// storage returns new checkpoint storage of the mode: Local in a new
// directory, or a new bucket of a new versitygw.
func (m mode) storage(t testing.TB) snapshot.Storage {
	t.Helper()
	if !m.s3 {
		return newStorage(t)
	}
	return s3test.Start(t).Store(t, "checkpoints")
}

// forEachMode runs f as subtests Full and Incremental.
func forEachMode(t *testing.T, f func(t *testing.T, m mode)) {
	t.Helper()
	for _, m := range []mode{fullMode, incrementalMode} {
		t.Run(m.name, func(t *testing.T) { f(t, m) })
	}
}

// set makes options take this mode's snapshots.
func (m mode) set(o *backend.Options) { o.IncrementalCheckpoints = m.incremental }

// each says, for a job's instance i, whether it takes incremental
// snapshots: every instance as the mode says.
func (m mode) each() func(int) bool { return func(int) bool { return m.incremental } }

// kind is the handle kind of the mode's snapshots.
func (m mode) kind() string {
	if m.incremental {
		return snapshot.KindIncremental
	}
	return snapshot.KindFull
}

// compressions are the SnapshotCompression settings worth a round trip:
// every one for full snapshots, whose blocks they compress; the default
// for incremental ones, which upload SSTs as they are.
func (m mode) compressions() []string {
	if m.incremental {
		return []string{"snappy"}
	}
	return []string{"none", "snappy", "zstd", "s2"}
}

// emptyRoot fails the test if the storage under root holds what a
// snapshot that failed or was given up left. A full snapshot removes its
// file and directory; an incremental upload cut short deletes its files
// but may leave the directories they were in (empty, and swept by
// retention.Recover).
func (m mode) emptyRoot(t testing.TB, root, when string) {
	t.Helper()
	if !m.incremental {
		emptyRoot(t, root, when)
		return
	}
	for _, p := range tree(t, root) {
		if !strings.HasSuffix(p, "/") {
			t.Fatalf("%s, the checkpoint storage holds %v; want no file", when, tree(t, root))
		}
	}
}

// open opens a backend with int64 keys in this mode (after tweaks).
func (m mode) open(t testing.TB, tweaks ...tweak) *backend.Backend[int64] {
	t.Helper()
	return MustOpenK(t, backend.Int64, append(tweaks, m.set)...)
}

// restore restores handles into a backend in this mode (after tweaks).
func (m mode) restore(t testing.TB, st snapshot.Storage, handles []snapshot.Handle, tweaks ...tweak) *backend.Backend[int64] {
	t.Helper()
	return MustRestore(t, backend.Int64, st, handles, append(tweaks, m.set)...)
}

// newStorage returns Local checkpoint storage in a new directory.
func newStorage(t testing.TB) *snapshot.Local {
	t.Helper()
	return must(snapshot.NewLocal(filepath.Join(t.TempDir(), "checkpoints"))).in(t)
}

// isMetadata reports whether a storage name is a checkpoint's metadata;
// every other file a snapshot writes is its data.
func isMetadata(name string) bool { return strings.HasSuffix(name, "/"+snapshot.MetadataName) }

// commitCP commits handles as checkpoint id.
func commitCP(t testing.TB, st snapshot.Storage, id int64, hs ...snapshot.Handle) *snapshot.Checkpoint {
	t.Helper()
	cp := &snapshot.Checkpoint{ID: id, Handles: hs}
	noErr(t, snapshot.Commit(context.Background(), st, cp))
	return cp
}

// runAll runs snapshots concurrently and returns their handles.
func runAll(ctx context.Context, snaps []*backend.AsyncSnapshot) ([]snapshot.Handle, error) {
	hs := make([]snapshot.Handle, len(snaps))
	errs := make([]error, len(snaps))
	var wg sync.WaitGroup
	for i, s := range snaps {
		wg.Go(func() { hs[i], errs[i] = s.Run(ctx) })
	}
	wg.Wait()
	return hs, errors.Join(errs...)
}

// tree lists what is under root: files, and directories with a trailing
// slash.
func tree(t testing.TB, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if d.IsDir() {
			rel += "/"
		}
		out = append(out, filepath.ToSlash(rel))
		return nil
	})
	noErr(t, err)
	return out
}

// emptyRoot fails the test if anything is under root.
func emptyRoot(t testing.TB, root, when string) {
	t.Helper()
	if got := tree(t, root); len(got) != 0 {
		t.Fatalf("%s, the checkpoint storage holds %v; want nothing", when, got)
	}
}

// noTempFiles fails the test if a temporary file is under root.
func noTempFiles(t testing.TB, root, when string) {
	t.Helper()
	for _, p := range tree(t, root) {
		if strings.HasSuffix(p, ".tmp") {
			t.Errorf("%s: temporary file %s left", when, p)
		}
	}
}

// sharedExact checks that shared/ holds exactly the files the completed
// checkpoints reference, and that every checkpoint directory is a
// completed checkpoint's: what storage holds when nothing is in flight.
func sharedExact(t testing.TB, st snapshot.Storage) {
	t.Helper()
	ctx := context.Background()
	ids := must(snapshot.Completed(ctx, st)).in(t)
	refs := must(incremental.SharedRefs(ctx, st, ids)).in(t)
	names := must(st.List(ctx, snapshot.SharedDir+"/")).in(t)
	var extra, missing []string
	for _, n := range names {
		if refs[n] == 0 {
			extra = append(extra, n)
		}
	}
	for n := range refs {
		if !slices.Contains(names, n) {
			missing = append(missing, n)
		}
	}
	if len(extra)+len(missing) > 0 {
		t.Fatalf("shared/ of checkpoints %v: unreferenced %v, missing %v", ids, extra, missing)
	}
	for _, n := range must(st.List(ctx, "chk-")).in(t) {
		dir, _, _ := strings.Cut(n, "/")
		ok := false
		for _, id := range ids {
			ok = ok || dir == snapshot.Dir(id)
		}
		if !ok {
			t.Fatalf("%s belongs to no completed checkpoint (completed: %v)", n, ids)
		}
	}
}

// sharedNames returns the storage names of the handles' shared files.
func sharedNames(hs ...snapshot.Handle) map[string]bool {
	m := map[string]bool{}
	for _, h := range hs {
		for _, f := range h.Shared {
			m[f.Name] = true
		}
	}
	return m
}

// exists reports whether a file is in storage.
func exists(t testing.TB, st snapshot.Storage, name string) bool {
	t.Helper()
	f, err := st.Open(context.Background(), name)
	if errors.Is(err, snapshot.ErrNotExist) {
		return false
	}
	noErr(t, err)
	f.Close()
	return true
}

// copyTree copies a directory tree (files copied, never linked, so that
// damaging the copy leaves the original alone).
func copyTree(t testing.TB, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	noErr(t, err)
}

// hiddenStorage is checkpoint storage that is not a *snapshot.Local, as
// any remote implementation: restore must copy its files, not link them.
type hiddenStorage struct{ snapshot.Storage }

// slowStorage delays every write of a data file, so that a snapshot's
// asynchronous part takes long enough to act while it runs. started is
// closed at the first write.
type slowStorage struct {
	snapshot.Storage
	delay   time.Duration
	started chan struct{}
	once    sync.Once
}

func newSlowStorage(st snapshot.Storage, delay time.Duration) *slowStorage {
	return &slowStorage{Storage: st, delay: delay, started: make(chan struct{})}
}

func (s *slowStorage) Create(ctx context.Context, name string) (snapshot.FileWriter, error) {
	w, err := s.Storage.Create(ctx, name)
	if err != nil || isMetadata(name) {
		return w, err
	}
	return &slowWriter{FileWriter: w, s: s}, nil
}

type slowWriter struct {
	snapshot.FileWriter
	s *slowStorage
}

func (w *slowWriter) Write(p []byte) (int, error) {
	w.s.once.Do(func() { close(w.s.started) })
	time.Sleep(w.s.delay)
	return w.FileWriter.Write(p)
}

// stallingStorage holds every write until its context is cancelled,
// after closing started.
type stallingStorage struct {
	snapshot.Storage
	started chan struct{}
	once    sync.Once
}

func newStallingStorage(st snapshot.Storage) *stallingStorage {
	return &stallingStorage{Storage: st, started: make(chan struct{})}
}

func (s *stallingStorage) Create(ctx context.Context, name string) (snapshot.FileWriter, error) {
	w, err := s.Storage.Create(ctx, name)
	if err != nil {
		return nil, err
	}
	return &stallingWriter{FileWriter: w, ctx: ctx, s: s}, nil
}

type stallingWriter struct {
	snapshot.FileWriter
	ctx context.Context
	s   *stallingStorage
}

func (w *stallingWriter) Write(p []byte) (int, error) {
	w.s.once.Do(func() { close(w.s.started) })
	<-w.ctx.Done()
	return 0, w.ctx.Err()
}

var errInjected = errors.New("injected storage fault")

// faultStorage wraps a Storage and fails the operations its hooks pick.
type faultStorage struct {
	snapshot.Storage
	mu         sync.Mutex
	createErr  func(name string) bool
	writeLimit func(name string) int // bytes a file may take before Write fails; <0 unlimited
	commitErr  func(name string) bool
	deleteErr  func(name string) bool
}

// hook changes the hooks while snapshots may be running.
func (s *faultStorage) hook(f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f()
}

func (s *faultStorage) Create(ctx context.Context, name string) (snapshot.FileWriter, error) {
	s.mu.Lock()
	createErr, writeLimit, commitErr := s.createErr, s.writeLimit, s.commitErr
	s.mu.Unlock()
	if createErr != nil && createErr(name) {
		return nil, fmt.Errorf("create %s: %w", name, errInjected)
	}
	w, err := s.Storage.Create(ctx, name)
	if err != nil {
		return nil, err
	}
	limit := -1
	if writeLimit != nil {
		limit = writeLimit(name)
	}
	return &faultWriter{FileWriter: w, name: name, left: limit, commitErr: commitErr != nil && commitErr(name)}, nil
}

func (s *faultStorage) Delete(ctx context.Context, name string) error {
	s.mu.Lock()
	deleteErr := s.deleteErr
	s.mu.Unlock()
	if deleteErr != nil && deleteErr(name) {
		return fmt.Errorf("delete %s: %w", name, errInjected)
	}
	return s.Storage.Delete(ctx, name)
}

type faultWriter struct {
	snapshot.FileWriter
	name      string
	left      int
	commitErr bool
}

func (w *faultWriter) Write(p []byte) (int, error) {
	if w.left >= 0 && len(p) > w.left {
		n, _ := w.FileWriter.Write(p[:w.left])
		w.left = 0
		return n, fmt.Errorf("write %s: %w", w.name, errInjected)
	}
	if w.left >= 0 {
		w.left -= len(p)
	}
	return w.FileWriter.Write(p)
}

func (w *faultWriter) Commit() error {
	if w.commitErr {
		_ = w.FileWriter.Abort()
		return fmt.Errorf("commit %s: %w", w.name, errInjected)
	}
	return w.FileWriter.Commit()
}
