package window

import (
	"bytes"
	"os"
	"testing"

	"github.com/pebblestate/pebblestate/internal/formatdoc"
)

// TestFormatExamples checks FORMAT.md's examples against the codecs: the
// window namespace, and the session set that adding its windows builds.
func TestFormatExamples(t *testing.T) {
	doc, err := os.ReadFile("FORMAT.md")
	if err != nil {
		t.Fatal(err)
	}
	dump := func(name string) []byte {
		block, err := formatdoc.Block(doc, name)
		if err != nil {
			t.Fatal(err)
		}
		want, err := formatdoc.Dump(block, nil)
		if err != nil {
			t.Fatal(err)
		}
		return want
	}
	const t0 = 1_700_000_000_000
	got, _ := Codec.Append(nil, Window{Start: t0, End: t0 + 60_000})
	if want := dump("window"); !bytes.Equal(got, want) {
		t.Errorf("window: encoded %x, FORMAT.md shows %x", got, want)
	}

	s := &mergingSet{}
	noMerge := func(Window, []Window, Window, []Window) error { return nil }
	for _, at := range []int64{0, 4_000, 30_000} {
		if _, err := s.add(Window{Start: t0 + at, End: t0 + at + 5_000}, noMerge); err != nil {
			t.Fatal(err)
		}
	}
	got, _ = setCodec{}.Append(nil, s.m)
	if want := dump("session-set"); !bytes.Equal(got, want) {
		t.Errorf("session set: encoded %x, FORMAT.md shows %x", got, want)
	}
}
