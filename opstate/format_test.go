package opstate_test

import (
	"bytes"
	"os"
	"testing"

	"github.com/pebblestate/pebblestate/internal/formatdoc"
	"github.com/pebblestate/pebblestate/opstate"
)

// exampleState is the state of FORMAT.md's worked example.
func exampleState(t testing.TB) *opstate.State {
	t.Helper()
	s, err := opstate.New(4, 2, 1)
	noErr(t, err)
	l, err := s.List("splits", opstate.Split)
	noErr(t, err)
	l.Add([]byte("t/2"), []byte("t/3"))
	u, err := s.List("config", opstate.Union)
	noErr(t, err)
	u.Add([]byte("v1"))
	noErr(t, s.SetPositionInt64(2, 1000))
	noErr(t, s.SetPositionInt64(3, 42))
	return s
}

// TestFormatExample checks FORMAT.md's worked example against Encode, and
// that it decodes to the state it shows.
func TestFormatExample(t *testing.T) {
	doc, err := os.ReadFile("FORMAT.md")
	noErr(t, err)
	block, err := formatdoc.Block(doc, "file")
	noErr(t, err)
	want, err := formatdoc.Dump(block, nil)
	noErr(t, err)
	got, err := opstate.Encode(exampleState(t))
	noErr(t, err)
	if !bytes.Equal(got, want) {
		t.Fatalf("FORMAT.md's example is out of date; Encode writes %d bytes:\n%s", len(got), formatdoc.Format(got, 0))
	}
	s, err := opstate.Decode("example", want)
	noErr(t, err)
	checkEqual(t, "decoded example", s, exampleState(t))
}
