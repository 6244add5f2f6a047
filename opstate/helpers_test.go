package opstate_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/pebblestate/pebblestate/opstate"
	"github.com/pebblestate/pebblestate/snapshot"
)

func noErr(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// describe renders a state as text: its subtask, each list with its mode
// and entries, each position. Two states are equal iff they render alike.
func describe(s *opstate.State) string {
	var b strings.Builder
	fmt.Fprintf(&b, "subtask %d of %d, max %d, key groups %v\n", s.Index(), s.Parallelism(), s.MaxParallelism(), s.KeyGroups())
	for _, name := range s.Lists() {
		// A list exists with exactly one mode: ask for split, then union.
		l, err := s.List(name, opstate.Split)
		if err != nil {
			l, _ = s.List(name, opstate.Union)
		}
		fmt.Fprintf(&b, "list %q %v: %q\n", name, l.Mode(), l.Entries())
	}
	for kg, v := range s.Positions() {
		fmt.Fprintf(&b, "position %d: %q\n", kg, v)
	}
	return b.String()
}

func checkEqual(t testing.TB, what string, got, want *opstate.State) {
	t.Helper()
	if g, w := describe(got), describe(want); g != w {
		t.Fatalf("%s:\n got  %s\n want %s", what, g, w)
	}
}

// wantCorrupt checks err is snapshot.ErrCorrupt naming name.
func wantCorrupt(t testing.TB, err error, name string) {
	t.Helper()
	if err == nil || !errors.Is(err, snapshot.ErrCorrupt) || !strings.Contains(err.Error(), name) {
		t.Fatalf("error %v; want ErrCorrupt naming %s", err, name)
	}
}

// bytesList is entries as strings, for messages.
func bytesList(es [][]byte) []string {
	var out []string
	for _, e := range es {
		out = append(out, string(e))
	}
	return out
}
