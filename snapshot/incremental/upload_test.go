package incremental_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pebblestate/pebblestate/snapshot"
	"github.com/pebblestate/pebblestate/snapshot/incremental"
)

const incInstance = "0a1b2c3d"

// incNativeDir writes files into a fresh directory standing in for a
// native Pebble checkpoint.
func incNativeDir(t testing.TB, files map[string][]byte) string {
	t.Helper()
	dir := t.TempDir()
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func incData(name string, n int) []byte {
	b := bytes.Repeat([]byte(name+"|"), n/(len(name)+1)+1)
	return b[:n]
}

// incSampleFiles is a checkpoint of three SSTs and the private files.
func incSampleFiles() map[string][]byte {
	return map[string][]byte{
		"000004.sst":       incData("000004.sst", 70_000),
		"000007.sst":       incData("000007.sst", 5_000),
		"000009.sst":       incData("000009.sst", 123_457),
		"MANIFEST-000010":  incData("manifest", 900),
		"OPTIONS-000011":   incData("options", 1500),
		"000008.log":       nil, // empty WAL: the WAL is off
		"marker.manifest.": incData("marker", 0),
	}
}

func incLocal(t testing.TB) *snapshot.Local {
	t.Helper()
	st, err := snapshot.NewLocal(filepath.Join(t.TempDir(), "chk"))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func incRead(t testing.TB, st snapshot.Storage, name string) []byte {
	t.Helper()
	b, err := snapshot.ReadFile(context.Background(), st, name)
	if err != nil {
		t.Fatalf("read %s: %v", name, err)
	}
	return b
}

func incList(t testing.TB, st snapshot.Storage, prefix string) []string {
	t.Helper()
	names, err := st.List(context.Background(), prefix)
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// incNoTemp fails if anything but committed files is under root: no
// temporary files of aborted writers.
func incNoTemp(t testing.TB, root string) {
	t.Helper()
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".tmp") {
			t.Errorf("temporary file left behind: %s", p)
		}
		return nil
	})
}

func incCRC(b []byte) uint32 { return crc32.Checksum(b, snapshot.Castagnoli) }

func TestUploadFirstCheckpointUploadsEverything(t *testing.T) {
	ctx := context.Background()
	files := incSampleFiles()
	dir := incNativeDir(t, files)
	st := incLocal(t)
	for _, workers := range []int{0, 1, 3, 16} {
		id := int64(10 + workers)
		up, err := incremental.Run(ctx, st, incremental.Request{Dir: dir, CheckpointID: id, WriterID: incInstance, Workers: workers})
		if err != nil {
			t.Fatalf("workers %d: %v", workers, err)
		}
		var total int64
		for _, b := range files {
			total += int64(len(b))
		}
		if up.Total != total || up.Uploaded != total {
			t.Errorf("workers %d: total %d uploaded %d, want both %d", workers, up.Total, up.Uploaded, total)
		}
		if len(up.Shared) != 3 || len(up.New) != 3 || len(up.Private) != 4 {
			t.Fatalf("workers %d: %d shared, %d new, %d private", workers, len(up.Shared), len(up.New), len(up.Private))
		}
		if !slices.IsSortedFunc(up.Shared, func(a, b snapshot.SharedFile) int { return strings.Compare(a.LocalName, b.LocalName) }) {
			t.Errorf("shared files not sorted by local name: %+v", up.Shared)
		}
		for _, f := range up.Shared {
			if want := snapshot.SharedName(incInstance, id, f.LocalName); f.Name != want {
				t.Errorf("shared %s stored as %s, want %s", f.LocalName, f.Name, want)
			}
			if !strings.HasPrefix(f.Name, snapshot.SharedDir+"/") {
				t.Errorf("shared file %s outside %s/", f.Name, snapshot.SharedDir)
			}
			src := files[f.LocalName]
			if f.Size != int64(len(src)) || f.CRC32C != incCRC(src) {
				t.Errorf("%s: size %d crc %08x, want %d %08x", f.Name, f.Size, f.CRC32C, len(src), incCRC(src))
			}
			if got := incRead(t, st, f.Name); !bytes.Equal(got, src) {
				t.Errorf("%s: stored content differs", f.Name)
			}
		}
		if !slices.Equal(up.New, up.Shared) {
			t.Errorf("first checkpoint: New %v != Shared %v", up.New, up.Shared)
		}
		for _, f := range up.Private {
			base := filepath.Base(f.Name)
			if want := incremental.PrivateDir(id, incInstance) + "/" + base; f.Name != want {
				t.Errorf("private %s stored as %s, want %s", base, f.Name, want)
			}
			if !strings.HasPrefix(f.Name, snapshot.Dir(id)+"/") {
				t.Errorf("private file %s outside the checkpoint's directory", f.Name)
			}
			src, ok := files[base]
			if !ok || strings.HasSuffix(base, ".sst") {
				t.Errorf("unexpected private file %s", f.Name)
			}
			if f.Size != int64(len(src)) || f.CRC32C != incCRC(src) {
				t.Errorf("%s: size %d crc %08x, want %d %08x", f.Name, f.Size, f.CRC32C, len(src), incCRC(src))
			}
			if got := incRead(t, st, f.Name); !bytes.Equal(got, src) {
				t.Errorf("%s: stored content differs", f.Name)
			}
		}
	}
	incNoTemp(t, st.Root())
}

func TestUploadReusesPreviousSSTsOnly(t *testing.T) {
	ctx := context.Background()
	files := incSampleFiles()
	dir := incNativeDir(t, files)
	st := incLocal(t)
	first, err := incremental.Run(ctx, st, incremental.Request{Dir: dir, CheckpointID: 1, WriterID: incInstance})
	if err != nil {
		t.Fatal(err)
	}
	prev := make(map[string]snapshot.SharedFile)
	for _, f := range first.Shared {
		prev[f.LocalName] = f
	}
	// The next checkpoint: 000004 compacted away, 000012 new, the rest
	// unchanged. Previous also names a private file and an SST the new
	// checkpoint does not have: neither matters.
	delete(files, "000004.sst")
	os.Remove(filepath.Join(dir, "000004.sst"))
	files["000012.sst"] = incData("000012.sst", 4321)
	files["MANIFEST-000010"] = incData("manifest2", 1000)
	for _, n := range []string{"000012.sst", "MANIFEST-000010"} {
		if err := os.WriteFile(filepath.Join(dir, n), files[n], 0o644); err != nil {
			t.Fatal(err)
		}
	}
	prev["MANIFEST-000010"] = snapshot.SharedFile{FileRef: snapshot.FileRef{Name: "shared/bogus", Size: 1}, LocalName: "MANIFEST-000010"}
	before := incList(t, st, snapshot.SharedDir+"/")

	up, err := incremental.Run(ctx, st, incremental.Request{Dir: dir, CheckpointID: 2, WriterID: incInstance, Previous: prev, Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(up.New) != 1 || up.New[0].LocalName != "000012.sst" || up.New[0].Name != snapshot.SharedName(incInstance, 2, "000012.sst") {
		t.Fatalf("New = %+v, want only 000012.sst", up.New)
	}
	var locals []string
	for _, f := range up.Shared {
		locals = append(locals, f.LocalName)
		if f.LocalName != "000012.sst" && f != prev[f.LocalName] {
			t.Errorf("reused %s = %+v, want the previous upload %+v", f.LocalName, f, prev[f.LocalName])
		}
	}
	if want := []string{"000007.sst", "000009.sst", "000012.sst"}; !slices.Equal(locals, want) {
		t.Errorf("shared local names %v, want %v", locals, want)
	}
	var private []string
	var uploaded, total int64
	for _, f := range up.Private {
		private = append(private, filepath.Base(f.Name))
		if got := incRead(t, st, f.Name); !bytes.Equal(got, files[filepath.Base(f.Name)]) {
			t.Errorf("%s: stored content differs", f.Name)
		}
		uploaded += f.Size
	}
	slices.Sort(private)
	if want := []string{"000008.log", "MANIFEST-000010", "OPTIONS-000011", "marker.manifest."}; !slices.Equal(private, want) {
		t.Errorf("private files %v, want %v (always uploaded)", private, want)
	}
	uploaded += int64(len(files["000012.sst"]))
	for _, b := range files {
		total += int64(len(b))
	}
	if up.Uploaded != uploaded || up.Total != total {
		t.Errorf("uploaded %d of %d, want %d of %d", up.Uploaded, up.Total, uploaded, total)
	}
	after := incList(t, st, snapshot.SharedDir+"/")
	if added := slices.DeleteFunc(slices.Clone(after), func(n string) bool { return slices.Contains(before, n) }); !slices.Equal(added, []string{up.New[0].Name}) {
		t.Errorf("shared/ gained %v, want only %s", added, up.New[0].Name)
	}
}

// incGate is storage whose writers each wait in Commit until `want`
// writers are open at once (or a timeout), recording the most open at
// once: parallel uploads reach want, serial ones never exceed 1.
type incGate struct {
	snapshot.Storage
	want    int
	mu      sync.Mutex
	open    int
	maxOpen int
	cond    *sync.Cond
}

func (g *incGate) Create(ctx context.Context, name string) (snapshot.FileWriter, error) {
	w, err := g.Storage.Create(ctx, name)
	if err != nil {
		return nil, err
	}
	g.mu.Lock()
	g.open++
	g.maxOpen = max(g.maxOpen, g.open)
	g.cond.Broadcast()
	g.mu.Unlock()
	return &incGateWriter{FileWriter: w, g: g}, nil
}

type incGateWriter struct {
	snapshot.FileWriter
	g *incGate
}

func (w *incGateWriter) Commit() error {
	g := w.g
	deadline := time.Now().Add(2 * time.Second)
	go func() { time.Sleep(2 * time.Second); g.mu.Lock(); g.cond.Broadcast(); g.mu.Unlock() }()
	g.mu.Lock()
	for g.maxOpen < g.want && time.Now().Before(deadline) {
		g.cond.Wait()
	}
	g.open--
	g.mu.Unlock()
	return w.FileWriter.Commit()
}

func TestUploadParallel(t *testing.T) {
	ctx := context.Background()
	files := map[string][]byte{"MANIFEST-000001": []byte("m")}
	for i := range 12 {
		files[fmt.Sprintf("%06d.sst", i+2)] = incData(fmt.Sprint(i), 1000+i)
	}
	dir := incNativeDir(t, files)
	for _, workers := range []int{1, 4} {
		g := &incGate{Storage: incLocal(t), want: workers}
		g.cond = sync.NewCond(&g.mu)
		start := time.Now()
		up, err := incremental.Run(ctx, g, incremental.Request{Dir: dir, CheckpointID: 3, WriterID: incInstance, Workers: workers})
		if err != nil {
			t.Fatal(err)
		}
		if len(up.New) != 12 {
			t.Fatalf("uploaded %d SSTs", len(up.New))
		}
		if g.maxOpen != workers {
			t.Errorf("workers %d: at most %d uploads at once", workers, g.maxOpen)
		}
		if time.Since(start) > 1500*time.Millisecond {
			t.Errorf("workers %d: uploads did not overlap (took %v)", workers, time.Since(start))
		}
	}
}

// incFaulty fails the writer of the file whose name contains failOn, in
// Write or Commit, and can run a hook on each Create.
type incFaulty struct {
	snapshot.Storage
	failOn   string
	inCommit bool
	onCreate func(name string)
	creates  atomic.Int32
}

var errIncInjected = errors.New("injected upload failure")

func (f *incFaulty) Create(ctx context.Context, name string) (snapshot.FileWriter, error) {
	f.creates.Add(1)
	if f.onCreate != nil {
		f.onCreate(name)
	}
	w, err := f.Storage.Create(ctx, name)
	if err != nil || f.failOn == "" || !strings.Contains(name, f.failOn) {
		return w, err
	}
	return &incFaultyWriter{FileWriter: w, inCommit: f.inCommit}, nil
}

type incFaultyWriter struct {
	snapshot.FileWriter
	inCommit bool
	wrote    bool
}

func (w *incFaultyWriter) Write(p []byte) (int, error) {
	if !w.inCommit && w.wrote {
		return 0, errIncInjected
	}
	w.wrote = true
	return w.FileWriter.Write(p)
}

func (w *incFaultyWriter) Commit() error {
	if w.inCommit {
		_ = w.FileWriter.Abort()
		return errIncInjected
	}
	return w.FileWriter.Commit()
}

func TestUploadFailureLeavesNothing(t *testing.T) {
	ctx := context.Background()
	files := incSampleFiles()
	files["000020.sst"] = incData("big", 300_000) // several writes
	dir := incNativeDir(t, files)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, workers := range []int{1, 3} {
		for _, failOn := range names {
			for _, inCommit := range []bool{false, true} {
				if !inCommit && len(files[failOn]) <= 32<<10 {
					continue // written in one go: only Commit can fail
				}
				t.Run(fmt.Sprintf("workers=%d/%s/commit=%v", workers, failOn, inCommit), func(t *testing.T) {
					local := incLocal(t)
					// A file of an earlier checkpoint must survive.
					w, _ := local.Create(ctx, "shared/keep")
					w.Write([]byte("keep"))
					if err := w.Commit(); err != nil {
						t.Fatal(err)
					}
					st := &incFaulty{Storage: local, failOn: failOn, inCommit: inCommit}
					_, err := incremental.Run(ctx, st, incremental.Request{Dir: dir, CheckpointID: 4, WriterID: incInstance, Workers: workers})
					if !errors.Is(err, errIncInjected) {
						t.Fatalf("Run = %v, want the injected failure", err)
					}
					if !strings.Contains(err.Error(), failOn) {
						t.Errorf("error %q does not name %s", err, failOn)
					}
					if got := incList(t, local, ""); !slices.Equal(got, []string{"shared/keep"}) {
						t.Errorf("after a failed upload storage holds %v", got)
					}
					incNoTemp(t, local.Root())
				})
			}
		}
	}
}

func TestUploadCancelled(t *testing.T) {
	files := incSampleFiles()
	for i := range 20 {
		files[fmt.Sprintf("%06d.sst", 100+i)] = incData(fmt.Sprint(i), 50_000)
	}
	dir := incNativeDir(t, files)
	for _, after := range []int32{0, 1, 5, 15} {
		for _, workers := range []int{1, 4} {
			t.Run(fmt.Sprintf("after=%d/workers=%d", after, workers), func(t *testing.T) {
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				if after == 0 {
					cancel()
				}
				local := incLocal(t)
				st := &incFaulty{Storage: local}
				st.onCreate = func(string) {
					if st.creates.Load() > after {
						cancel()
					}
				}
				_, err := incremental.Run(ctx, st, incremental.Request{Dir: dir, CheckpointID: 5, WriterID: incInstance, Workers: workers})
				if !errors.Is(err, context.Canceled) {
					t.Fatalf("Run = %v, want context.Canceled", err)
				}
				if got := incList(t, local, ""); len(got) != 0 {
					t.Errorf("after a cancelled upload storage holds %v", got)
				}
				incNoTemp(t, local.Root())
			})
		}
	}
}

// incBlockingWriter cancels the upload from inside a write, mid-file.
type incCancelMidWrite struct {
	snapshot.Storage
	cancel context.CancelFunc
}

func (c *incCancelMidWrite) Create(ctx context.Context, name string) (snapshot.FileWriter, error) {
	w, err := c.Storage.Create(ctx, name)
	if err != nil {
		return nil, err
	}
	return &incCancelWriter{FileWriter: w, cancel: c.cancel}, nil
}

type incCancelWriter struct {
	snapshot.FileWriter
	cancel context.CancelFunc
	n      int
}

func (w *incCancelWriter) Write(p []byte) (int, error) {
	if w.n++; w.n == 2 {
		w.cancel()
	}
	return w.FileWriter.Write(p)
}

func TestUploadCancelledMidFile(t *testing.T) {
	dir := incNativeDir(t, map[string][]byte{"000001.sst": incData("x", 1<<20), "MANIFEST-000002": []byte("m")})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	local := incLocal(t)
	_, err := incremental.Run(ctx, &incCancelMidWrite{Storage: local, cancel: cancel}, incremental.Request{Dir: dir, CheckpointID: 6, WriterID: incInstance, Workers: 1})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v, want context.Canceled", err)
	}
	if got := incList(t, local, ""); len(got) != 0 {
		t.Errorf("storage holds %v", got)
	}
	incNoTemp(t, local.Root())
}

func TestUploadBadDirectory(t *testing.T) {
	ctx := context.Background()
	st := incLocal(t)
	if _, err := incremental.Run(ctx, st, incremental.Request{Dir: filepath.Join(t.TempDir(), "missing"), CheckpointID: 1, WriterID: incInstance}); err == nil {
		t.Error("Run of a missing directory succeeded")
	}
	dir := incNativeDir(t, map[string][]byte{"000001.sst": []byte("x")})
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := incremental.Run(ctx, st, incremental.Request{Dir: dir, CheckpointID: 1, WriterID: incInstance})
	if err == nil || !strings.Contains(err.Error(), "sub") {
		t.Errorf("Run of a directory with a subdirectory = %v, want an error naming it", err)
	}
	if got := incList(t, st, ""); len(got) != 0 {
		t.Errorf("storage holds %v", got)
	}
}

// TestUploadSharedNamesDistinct: shared-file names differ by writer id
// and checkpoint id.
// Guards issue 12 case 2 (forks sharing an id wrote the same names).
func TestUploadSharedNamesDistinct(t *testing.T) {
	// One local name, different instances or checkpoints: different
	// storage names, so forks of one database never overwrite each
	// other's files.
	seen := map[string]bool{}
	for _, inst := range []string{"aa", "ab", "0a1b2c3d"} {
		for _, id := range []int64{0, 1, 10, 1 << 40} {
			n := snapshot.SharedName(inst, id, "000123.sst")
			if seen[n] {
				t.Errorf("duplicate shared name %s", n)
			}
			seen[n] = true
			if !strings.HasPrefix(n, "shared/") || !strings.HasSuffix(n, "000123.sst") || strings.Count(n, "/") != 1 {
				t.Errorf("shared name %s", n)
			}
		}
	}
}
