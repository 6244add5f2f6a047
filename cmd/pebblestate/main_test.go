package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

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
		{[]string{"help"}, 0, "demo    run a keyed Nexmark job"},
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

// Ensure that demo uses a fresh -dir, removes it unless -keep, and refuses
// a directory holding anything.
func TestDemoDir(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "run")
	code, stdout, stderr := runArgs("demo", "-events", "2000", "-dir", dir)
	if code != 0 || !strings.Contains(stdout, "state survived reopen") {
		t.Fatalf("exit %d:\n%s%s", code, stdout, stderr)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("%s not removed after the run: %v", dir, err)
	}

	code, stdout, stderr = runArgs("demo", "-events", "2000", "-dir", dir, "-keep")
	if code != 0 || !strings.Contains(stdout, "state kept in "+dir) {
		t.Fatalf("exit %d:\n%s%s", code, stdout, stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, opBidsByAuction, "subtask-1")); err != nil {
		t.Fatalf("-keep did not keep the backends: %v", err)
	}

	code, _, stderr = runArgs("demo", "-events", "2000", "-dir", dir)
	if code != 1 || !strings.Contains(stderr, "is not empty") {
		t.Fatalf("rerun on a used -dir: exit %d, want 1 and a 'not empty' error:\n%s", code, stderr)
	}
}
