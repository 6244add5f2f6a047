package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pebblestate/pebblestate/backend"
	"github.com/pebblestate/pebblestate/snapshot"
)

var update = flag.Bool("update", false, "rewrite the golden files of the checkpoint commands")

// TestInspectAndVerify takes a full and two incremental checkpoints with
// a real backend, checks inspect lists them and their states and verify
// passes, then damages a shared file both incremental checkpoints use and
// checks verify reports it once, on stderr, with both checkpoints.
// Guards issue 12 case 14: a damaged shared file reported once, on
// stderr, with the checkpoints using it; inspect shows creation time and
// states (name, kind, codecs, TTL), and -json; verify of a chk-<id> directory.
func TestInspectAndVerify(t *testing.T) {
	ctx := context.Background()
	root := filepath.Join(t.TempDir(), "chk")
	st, err := snapshot.NewLocal(root)
	if err != nil {
		t.Fatal(err)
	}
	id := int64(0)
	for _, incremental := range []bool{false, true} {
		b, err := backend.Open(backend.Int64, backend.Options{
			Dir: t.TempDir(), IncrementalCheckpoints: incremental, RetainedCheckpoints: 3, Operator: "op"})
		if err != nil {
			t.Fatal(err)
		}
		v, err := backend.GetValue(b, backend.ValueDescriptor[int64]{Name: "v", Codec: backend.Int64})
		if err != nil {
			t.Fatal(err)
		}
		for round := range 1 + btoi(incremental) {
			for k := range int64(1000) {
				if err := b.SetCurrentKey(k + int64(round)*1000); err != nil {
					t.Fatal(err)
				}
				if err := v.Update(k); err != nil {
					t.Fatal(err)
				}
			}
			id++
			if _, err := b.Checkpoint(ctx, st, id); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
	}
	code, stdout, stderr := runArgs("inspect", root)
	if code != 0 || stderr != "" {
		t.Fatalf("inspect exited %d: %s", code, stderr)
	}
	for _, want := range []string{"checkpoint 1, created ", "full (snappy)", "incremental", "key groups [0, 128) of 128",
		"    state  kind   key    namespace  value  map key  ttl\n    v      value  int64  void       int64  -        off\n"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("inspect output lacks %q:\n%s", want, stdout)
		}
	}
	code, stdout, stderr = runArgs("inspect", "-json", root)
	var cps []checkpointJSON
	if err := json.Unmarshal([]byte(stdout), &cps); code != 0 || err != nil || len(cps) != 3 {
		t.Fatalf("inspect -json exited %d (%v): %s%s", code, err, stdout, stderr)
	}
	if s := cps[2].Handles[0].States; len(s) != 1 || s[0].Name != "v" || s[0].Kind != "value" || s[0].ValueCodec != "int64" || s[0].TTL {
		t.Errorf("inspect -json states: %+v", s)
	}
	if code, stdout, stderr := runArgs("verify", root); code != 0 || stderr != "" || strings.Count(stdout, ": ok (") != 3 {
		t.Fatalf("verify exited %d: %s%s", code, stdout, stderr)
	}

	// A shared file of checkpoint 2 that checkpoint 3 reuses.
	cp2, err := snapshot.Load(ctx, st, 2)
	if err != nil {
		t.Fatal(err)
	}
	shared := cp2.Handles[0].Shared[0].Name
	p := st.Path(shared)
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0x40
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = runArgs("verify", root)
	if code != 1 {
		t.Fatalf("verify of a damaged checkpoint exited %d:\n%s%s", code, stdout, stderr)
	}
	if strings.Count(stderr, p) != 1 || !strings.Contains(stderr, "used by checkpoints 2, 3") || strings.Contains(stdout, p) {
		t.Errorf("verify should report %s once, on stderr, used by checkpoints 2 and 3:\nstdout:\n%sstderr:\n%s", p, stdout, stderr)
	}
	for _, want := range []string{"checkpoint 1: ok", "checkpoint 2: BAD: 1 file damaged or missing", "checkpoint 3: BAD"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("verify stdout lacks %q:\n%s", want, stdout)
		}
	}
	// One checkpoint's directory verifies that checkpoint only.
	if code, stdout, _ := runArgs("verify", filepath.Join(root, "chk-1")); code != 0 || stdout != "checkpoint 1: ok (1 handle, 1 file)\n" {
		t.Errorf("verify chk-1 exited %d: %s", code, stdout)
	}
	if code, _, _ := runArgs("verify", filepath.Join(root, "chk-3")); code != 1 {
		t.Errorf("verify chk-3 exited %d", code)
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// goldenRoot builds a checkpoint root of fixed content: checkpoint 1 of
// two full handles, checkpoints 2 and 3 of one incremental handle each,
// 3 reusing 2's shared file and taken under Kafka's key-group assigner.
func goldenRoot(t *testing.T) (*snapshot.Local, string) {
	t.Helper()
	ctx := context.Background()
	root := filepath.Join(t.TempDir(), "root")
	st, err := snapshot.NewLocal(root)
	if err != nil {
		t.Fatal(err)
	}
	put := func(name, data string) snapshot.FileRef {
		w, err := st.Create(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(data))
		if err := w.Commit(); err != nil {
			t.Fatal(err)
		}
		return snapshot.FileRef{Name: name, Size: int64(len(data)), CRC32C: crc32.Checksum([]byte(data), snapshot.Castagnoli)}
	}
	states := []snapshot.State{
		{FormatVersion: 1, Name: "count", ID: 1, Kind: snapshot.StateKindValue, KeyCodec: "int64", NamespaceCodec: "void", ValueCodec: "int64"},
		{FormatVersion: 1, Name: "by-channel", ID: 2, Kind: snapshot.StateKindMap, KeyCodec: "int64", NamespaceCodec: "void", ValueCodec: "int64", UserKeyCodec: "string", TTL: true},
	}
	handle := func(id int64, inst, kind string, start, end int) snapshot.Handle {
		return snapshot.Handle{Operator: "bids", InstanceID: inst, CheckpointID: id, Kind: kind, MaxParallelism: 128,
			KeyGroupStart: start, KeyGroupEnd: end, KeyCodec: "int64", States: states}
	}
	const created = 1_700_000_000_123
	cp := &snapshot.Checkpoint{ID: 1, CreatedUnixMillis: created}
	for i, inst := range []string{"aaaa", "bbbb"} {
		h := handle(1, inst, snapshot.KindFull, i*64, (i+1)*64)
		h.Compression = "snappy"
		h.Files = []snapshot.FileRef{put("chk-1/full-"+inst+".dat", strings.Repeat(inst, 300))}
		h.StateSize, h.CheckpointedSize = 1200, 1200
		cp.Handles = append(cp.Handles, h)
	}
	commit := func(cp *snapshot.Checkpoint) {
		if err := snapshot.Commit(ctx, st, cp); err != nil {
			t.Fatal(err)
		}
	}
	commit(cp)
	sst := snapshot.SharedFile{FileRef: put(snapshot.SharedName("cccc", 2, "000004.sst"), strings.Repeat("sst", 1000)), LocalName: "000004.sst"}
	for id := int64(2); id <= 3; id++ {
		h := handle(id, "cccc", snapshot.KindIncremental, 0, 128)
		h.Files = []snapshot.FileRef{put(snapshot.Dir(id)+"/inc-cccc/MANIFEST-000001", "manifest")}
		h.Shared = []snapshot.SharedFile{sst}
		h.StateSize, h.CheckpointedSize = 3008, 8
		if id == 2 {
			h.CheckpointedSize = 3008
		} else {
			h.KeyGroupAssigner = "kafka-murmur2" // shown by inspect
		}
		commit(&snapshot.Checkpoint{ID: id, CreatedUnixMillis: created + id*60_000, Handles: []snapshot.Handle{h}})
	}
	return st, root
}

// checkGolden compares got, with root replaced by $ROOT, to the golden
// file testdata/name.
func checkGolden(t *testing.T, name, root, got string) {
	t.Helper()
	got = strings.ReplaceAll(got, root, "$ROOT")
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs:\n--- got\n%s--- want\n%s", name, got, want)
	}
}

// TestCheckpointCommandsGolden pins the output of inspect, inspect -json
// and verify on a root of fixed content, good and then damaged: one
// shared file corrupt and one data file missing.
// Guards issue 12 case 14: a missing file is named once, not twice.
func TestCheckpointCommandsGolden(t *testing.T) {
	st, root := goldenRoot(t)
	real := st.Root()
	code, stdout, stderr := runArgs("inspect", root)
	if code != 0 || stderr != "" {
		t.Fatalf("inspect exited %d: %s", code, stderr)
	}
	checkGolden(t, "inspect.golden", real, stdout)
	code, stdout, stderr = runArgs("inspect", root, "-json")
	if code != 0 || stderr != "" {
		t.Fatalf("inspect -json exited %d: %s", code, stderr)
	}
	checkGolden(t, "inspect-json.golden", real, stdout)
	code, stdout, stderr = runArgs("verify", root)
	if code != 0 || stderr != "" {
		t.Fatalf("verify exited %d: %s", code, stderr)
	}
	checkGolden(t, "verify.golden", real, stdout)

	sst := st.Path(snapshot.SharedName("cccc", 2, "000004.sst"))
	if err := os.WriteFile(sst, []byte(strings.Repeat("sst", 999)+"SST"), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := st.Path("chk-1/full-bbbb.dat")
	if err := os.Remove(missing); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = runArgs("verify", root)
	if code != 1 {
		t.Fatalf("verify of a damaged root exited %d", code)
	}
	checkGolden(t, "verify-damaged.golden", real, "stdout:\n"+stdout+"stderr:\n"+stderr)
	if strings.Count(stderr, missing) != 1 || strings.Count(stderr, sst) != 1 {
		t.Errorf("each damaged file should be named once:\n%s", stderr)
	}
}

// TestVerifyExitCodes guards issue 12's fourteenth complaint: verify
// exited 0 on an empty directory, a wrong directory, a symlinked root and
// a chk-<id> directory.
func TestVerifyExitCodes(t *testing.T) {
	_, root := goldenRoot(t)
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	wrong := filepath.Join(dir, "wrong")
	file := filepath.Join(dir, "file")
	link := filepath.Join(dir, "link")
	inflight := filepath.Join(dir, "inflight")
	for _, d := range []string{empty, filepath.Join(wrong, "data"), filepath.Join(inflight, "chk-4")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(root, link); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		path string
		code int
		says string // in stdout for 0, else in stderr
	}{
		{root, 0, "checkpoint 3: ok"},
		{link, 0, "checkpoint 3: ok"},
		{filepath.Join(link, "chk-2"), 0, "checkpoint 2: ok"},
		{filepath.Join(root, "chk-1"), 0, "checkpoint 1: ok"},
		{empty, 1, empty + " is empty: no checkpoint"},
		{wrong, 1, wrong + " is not a checkpoint root"},
		{file, 1, file + " is not a directory"},
		{filepath.Join(dir, "missing"), 1, filepath.Join(dir, "missing") + " does not exist"},
		{inflight, 1, inflight + ": no completed checkpoint"},
		{filepath.Join(inflight, "chk-4"), 1, "checkpoint 4 never completed"},
	} {
		code, stdout, stderr := runArgs("verify", c.path)
		out := stderr
		if c.code == 0 {
			out = stdout
		}
		if code != c.code || !strings.Contains(out, c.says) {
			t.Errorf("verify %s: exit %d, want %d saying %q:\n%s%s", c.path, code, c.code, c.says, stdout, stderr)
		}
		if c.code != 0 && strings.Count(stderr, c.path) != 1 {
			t.Errorf("verify %s: the path is not named once:\n%s", c.path, stderr)
		}
		if code2, _, _ := runArgs("inspect", c.path); code2 != c.code {
			t.Errorf("inspect %s: exit %d, want %d", c.path, code2, c.code)
		}
	}
}

// TestVerifyChecksCoverage: a checkpoint whose handles leave key groups
// out, or whose metadata names a file outside its directory, is bad.
// Guards issue 12 case 1 and case 14 (verify checks coverage) and case 15
// (no internal package prefix in its errors).
func TestVerifyChecksCoverage(t *testing.T) {
	st, root := goldenRoot(t)
	cp, err := snapshot.Load(context.Background(), st, 1)
	if err != nil {
		t.Fatal(err)
	}
	cp.ID, cp.Handles = 4, cp.Handles[:1]
	cp.Handles[0].CheckpointID = 4
	cp.Handles[0].Files[0].Name = "chk-4/full-aaaa.dat"
	enc, err := snapshot.EncodeMetadata(cp)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, "chk-4"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "chk-4", "_metadata"), enc, 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runArgs("verify", root)
	if code != 1 || !strings.Contains(stderr, "incomplete checkpoint") || !strings.Contains(stderr, "[64, 128)") ||
		!strings.Contains(stdout, "checkpoint 4: BAD: unreadable metadata") || !strings.Contains(stdout, "checkpoint 3: ok") {
		t.Fatalf("verify of an incomplete checkpoint: exit %d\n%s%s", code, stdout, stderr)
	}
	if strings.Contains(stderr, "snapshot:") {
		t.Errorf("an internal package prefix in: %s", stderr)
	}
}

// TestCheckpointCommandsHelp: -h prints the usage once and exits 0.
// Guards issue 12 case 14: -h printed usage twice and exited 2.
func TestCheckpointCommandsHelp(t *testing.T) {
	for _, cmd := range []string{"inspect", "verify", "demo"} {
		for _, h := range []string{"-h", "-help", "--help"} {
			code, stdout, stderr := runArgs(cmd, h)
			if code != 0 || strings.Count(stdout+stderr, "Usage:") != 1 {
				t.Errorf("%s %s: exit %d:\n%s%s", cmd, h, code, stdout, stderr)
			}
		}
	}
	var out, errOut bytes.Buffer
	if code := run([]string{"verify", "a", "b"}, &out, &errOut); code != 2 || strings.Count(errOut.String(), "Usage:") != 1 {
		t.Errorf("verify with two paths: exit %d:\n%s", code, errOut.String())
	}
}
