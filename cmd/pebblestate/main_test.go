package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pebblestate/pebblestate/internal/childbin"
	"github.com/pebblestate/pebblestate/internal/nexmarkjob"
)

// TestMain runs the demo's job child when the demo, run by a test, starts
// this test binary as one (or hands over to the command raceFreeChild
// built).
func TestMain(m *testing.M) {
	if cfg := os.Getenv(nexmarkjob.ChildEnv); cfg != "" {
		if err := execChild(); err != nil {
			fmt.Fprintln(os.Stderr, "job:", err)
			os.Exit(1)
		}
		if err := nexmarkjob.RunChild(context.Background(), cfg, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "job:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	code := m.Run()
	childbin.Cleanup()
	os.Exit(code)
}

func runArgs(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// Ensure that help, unknown commands and bad flags give the usual exit
// codes and messages.
func TestUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string // in stdout or stderr
	}{
		{nil, 2, "Commands:"},
		{[]string{"help"}, 0, "demo    run five Nexmark queries"},
		{[]string{"-h"}, 0, "Commands:"},
		{[]string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{[]string{"demo", "-h"}, 0, "-parallelism"},
		{[]string{"demo", "-events", "x"}, 2, "invalid value"},
		{[]string{"demo", "-parallelism", "0"}, 2, "-parallelism"},
		{[]string{"demo", "extra"}, 2, "unexpected arguments"},
	} {
		code, stdout, stderr := runArgs(tc.args...)
		if code != tc.code || !strings.Contains(stdout+stderr, tc.want) {
			t.Errorf("pebblestate %q: exit %d, want %d, output lacks %q:\n%s%s", tc.args, code, tc.code, tc.want, stdout, stderr)
		}
	}
}

// Ensure that demo runs its job, crash and restart included, in a fresh
// -dir, removes it unless -keep, keeps -checkpoints, and refuses a
// directory holding anything.
func TestDemoDir(t *testing.T) {
	raceFreeChild(t)
	root := t.TempDir()
	dir, cps := filepath.Join(root, "run"), filepath.Join(root, "cps")
	args := []string{"demo", "-events", "3000", "-interval", "50ms", "-max-parallelism", "16"}
	code, stdout, stderr := runArgs(append(args, "-dir", dir, "-checkpoints", cps)...)
	if code != 0 || !strings.Contains(stdout, "results equal the in-memory reference") || stderr != "" {
		t.Fatalf("exit %d (stderr must be empty: no -progress, not a terminal):\n%s%s", code, stdout, stderr)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("%s not removed after the run: %v", dir, err)
	}
	if code, out, errOut := runArgs("verify", cps); code != 0 {
		t.Fatalf("verify of the kept checkpoints: exit %d\n%s%s", code, out, errOut)
	}

	code, stdout, stderr = runArgs(append(args, "-dir", dir, "-keep", "-progress")...)
	if code != 0 || !strings.Contains(stdout, "work directory kept in "+dir) {
		t.Fatalf("exit %d:\n%s%s", code, stdout, stderr)
	}
	if !strings.Contains(stderr, "\rpublish          [##############################] 100%") || !strings.Contains(stderr, "\rrun 0, chk 1 ") {
		t.Fatalf("demo -progress drew %q", stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "checkpoints")); err != nil {
		t.Fatalf("-keep did not keep the checkpoints: %v", err)
	}

	code, _, stderr = runArgs(append(args, "-dir", dir)...)
	if code != 1 || !strings.Contains(stderr, "is not empty") {
		t.Fatalf("rerun on a used -dir: exit %d, want 1 and a 'not empty' error:\n%s", code, stderr)
	}
}
