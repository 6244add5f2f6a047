package nexmarkjob

import (
	"bytes"
	"os"
	"testing"

	"github.com/pebblestate/pebblestate/internal/formatdoc"
)

// TestFormatExample checks FORMAT.md's position example against the
// encoder.
func TestFormatExample(t *testing.T) {
	doc, err := os.ReadFile("FORMAT.md")
	if err != nil {
		t.Fatal(err)
	}
	block, err := formatdoc.Block(doc, "position")
	if err != nil {
		t.Fatal(err)
	}
	want, err := formatdoc.Dump(block, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := encodePosition(300, []int64{1767225601998}); !bytes.Equal(got, want) {
		t.Fatalf("FORMAT.md's example is out of date; the encoder writes\n%s", formatdoc.Format(got, 0))
	}
}
