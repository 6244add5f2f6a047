package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pebblestate/pebblestate/backend"
	"github.com/pebblestate/pebblestate/snapshot"
)

// TestInspectAndVerify takes a full and an incremental checkpoint, checks
// inspect lists both and verify passes, then damages a shared file and
// checks verify names it and fails.
func TestInspectAndVerify(t *testing.T) {
	ctx := context.Background()
	root := filepath.Join(t.TempDir(), "chk")
	st, err := snapshot.NewLocal(root)
	if err != nil {
		t.Fatal(err)
	}
	for i, incremental := range []bool{false, true} {
		b, err := backend.Open(backend.Int64, backend.Options{
			Dir: t.TempDir(), IncrementalCheckpoints: incremental, RetainedCheckpoints: 2, Operator: "op"})
		if err != nil {
			t.Fatal(err)
		}
		v, err := backend.GetValue(b, backend.ValueDescriptor[int64]{Name: "v", Codec: backend.Int64})
		if err != nil {
			t.Fatal(err)
		}
		for k := range int64(1000) {
			if err := b.SetCurrentKey(k); err != nil {
				t.Fatal(err)
			}
			if err := v.Update(k); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := b.Checkpoint(ctx, st, int64(i+1)); err != nil {
			t.Fatal(err)
		}
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
	}
	var out, errOut bytes.Buffer
	if code := run([]string{"inspect", root}, &out, &errOut); code != 0 {
		t.Fatalf("inspect exited %d: %s", code, errOut.String())
	}
	for _, want := range []string{"full", "incremental", "[0, 128) of 128"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("inspect output lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	if code := run([]string{"verify", root}, &out, &errOut); code != 0 {
		t.Fatalf("verify exited %d: %s%s", code, out.String(), errOut.String())
	}
	shared, err := st.List(ctx, "shared/")
	if err != nil || len(shared) == 0 {
		t.Fatalf("no shared files: %v", err)
	}
	p := st.Path(shared[0])
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0x40
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if code := run([]string{"verify", root}, &out, &errOut); code != 1 {
		t.Fatalf("verify of a damaged checkpoint exited %d:\n%s", code, out.String())
	}
	if !strings.Contains(out.String(), shared[0]) || !strings.Contains(out.String(), "checkpoint 1: ok") {
		t.Errorf("verify should name %s and pass checkpoint 1:\n%s", shared[0], out.String())
	}
}
