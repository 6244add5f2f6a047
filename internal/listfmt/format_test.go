package listfmt_test

import (
	"bytes"
	"os"
	"testing"

	"github.com/cockroachdb/pebble/v2"

	"github.com/pebblestate/pebblestate/internal/formatdoc"
	"github.com/pebblestate/pebblestate/internal/listfmt"
)

// TestFormatListExample writes FORMAT.md's worked example through the
// merge operator of a real database and compares the value read back, and
// its elements, with the annotated dump.
func TestFormatListExample(t *testing.T) {
	doc, err := os.ReadFile("FORMAT.md")
	if err != nil {
		t.Fatal(err)
	}
	block, err := formatdoc.Block(doc, "list-value")
	if err != nil {
		t.Fatal(err)
	}
	x300 := bytes.Repeat([]byte("x"), 300)
	want, err := formatdoc.Dump(block, map[string][]byte{"x300": x300})
	if err != nil {
		t.Fatal(err)
	}

	db, err := pebble.Open(t.TempDir(), &pebble.Options{Merger: listfmt.Merger, Logger: lfQuiet{}})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	key := []byte("k")
	for i, e := range [][]byte{[]byte("view"), []byte("buy"), x300} {
		if err := db.Merge(key, listfmt.AppendElement(nil, e), pebble.NoSync); err != nil {
			t.Fatal(err)
		}
		if i == 1 {
			// The last operand then merges with a flushed one.
			if err := db.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	got, closer, err := db.Get(key)
	if err != nil {
		t.Fatal(err)
	}
	defer closer.Close()
	if !bytes.Equal(got, want) {
		t.Fatalf("FORMAT.md's list-value is out of date; the database holds:\n%s", formatdoc.Format(got, 0))
	}
	if n, err := listfmt.Count(got); err != nil || n != 3 {
		t.Fatalf("Count = %d, %v; want 3 elements", n, err)
	}
	if len(got) != 0x137 {
		t.Fatalf("the value is %d bytes; FORMAT.md says 311", len(got))
	}
}
