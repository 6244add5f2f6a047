package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pebblestate/pebblestate/backend"
	"github.com/pebblestate/pebblestate/snapshot"
)

// TestProgressBars checks that verify and the demo draw a bar on stderr
// when -progress asks, ending at 100%, and that without it (stderr is a
// buffer, not a terminal) stderr holds none.
func TestProgressBars(t *testing.T) {
	root := filepath.Join(t.TempDir(), "chk")
	st, err := snapshot.NewLocal(root)
	noErrT(t, err)
	b, err := backend.Open(backend.Int64, backend.Options{Dir: t.TempDir(), IncrementalCheckpoints: true})
	noErrT(t, err)
	v, err := backend.GetValue(b, backend.ValueDescriptor[int64]{Name: "v", Codec: backend.Int64})
	noErrT(t, err)
	for k := range int64(1000) {
		noErrT(t, b.SetCurrentKey(k))
		noErrT(t, v.Update(k))
	}
	cp, err := b.Checkpoint(context.Background(), st, 1)
	noErrT(t, err)
	noErrT(t, b.Close())
	files := len(snapshot.Files(cp))

	code, stdout, stderr := runArgs("verify", root)
	if code != 0 || stderr != "" {
		t.Fatalf("verify without -progress: exit %d, stderr %q", code, stderr)
	}
	code, stdout2, stderr := runArgs("verify", "-progress", root)
	if code != 0 || stdout2 != stdout {
		t.Fatalf("verify -progress: exit %d, stdout %q (without: %q)", code, stdout2, stdout)
	}
	last := lastLine(stderr)
	if !strings.HasPrefix(last, "verify [##############################] 100% ") || !strings.Contains(last, fmt.Sprintf("%d/%d files", files, files)) {
		t.Fatalf("verify -progress drew %q", stderr)
	}

	// A damaged file: the bar makes way for the message.
	var shared string
	for _, f := range snapshot.Files(cp) {
		if strings.HasPrefix(f.Name, "shared/") {
			shared = f.Name
		}
	}
	noErrT(t, os.WriteFile(st.Path(shared), []byte("damaged"), 0o644))
	code, _, stderr = runArgs("verify", "-progress", root)
	if code != 1 || !strings.Contains(stderr, "\ndamaged: ") && !strings.Contains(stderr, "\rdamaged: ") {
		t.Fatalf("verify -progress of a damaged checkpoint: exit %d, stderr %q", code, stderr)
	}

	// The demo's bar is checked by TestDemoDir, which runs it anyway.
}

// lastLine returns the last line drawn: after the last carriage return of
// the text before its final newline.
func lastLine(s string) string {
	s = strings.TrimSuffix(s, "\n")
	if i := strings.LastIndexAny(s, "\r\n"); i >= 0 {
		s = s[i+1:]
	}
	return strings.TrimRight(s, " ")
}

func noErrT(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
