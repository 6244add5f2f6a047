package ttl_test

import (
	"bytes"
	"os"
	"testing"
	"time"

	"github.com/pebblestate/pebblestate/internal/formatdoc"
	"github.com/pebblestate/pebblestate/internal/listfmt"
	"github.com/pebblestate/pebblestate/ttl"
)

// TestFormatTTLExample checks FORMAT.md's worked example: the stamped
// value and list it dumps, and the expiries it states.
func TestFormatTTLExample(t *testing.T) {
	doc, err := os.ReadFile("FORMAT.md")
	if err != nil {
		t.Fatal(err)
	}
	block, err := formatdoc.Block(doc, "ttl-values")
	if err != nil {
		t.Fatal(err)
	}
	secs, err := formatdoc.Sections(block)
	if err != nil {
		t.Fatal(err)
	}
	if len(secs) != 2 {
		t.Fatalf("%d sections, want 2", len(secs))
	}
	const t0 = 1_700_000_000_000
	if ttl.Millis(time.Date(2023, 11, 14, 22, 13, 20, 0, time.UTC)) != t0 {
		t.Fatal("t0 is not 2023-11-14T22:13:20Z")
	}
	value := append(ttl.AppendStamp(nil, t0), "view"...)
	view := listfmt.AppendElement(nil, value)
	buy := listfmt.AppendElement(nil, append(ttl.AppendStamp(nil, t0+1000), "buy"...))
	list := append(append([]byte(nil), view...), buy...)
	for i, want := range [][]byte{value, list} {
		got, err := formatdoc.Dump(secs[i].Text, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("FORMAT.md's %q is out of date; the bytes are:\n%s", secs[i].Title, formatdoc.Format(want, 0))
		}
	}

	hour := time.Hour.Milliseconds()
	if v, _, next, err := ttl.Judge(ttl.Single, value, ttl.Policy{TTLMillis: hour}, t0+hour-1, nil); v != ttl.Keep || next != t0+hour || err != nil {
		t.Fatalf("value just before its expiry: %v, expires %d, %v", v, next, err)
	}
	if v, _, _, err := ttl.Judge(ttl.Single, value, ttl.Policy{TTLMillis: hour}, t0+hour, nil); v != ttl.Drop || err != nil {
		t.Fatalf("value at its expiry: %v, %v", v, err)
	}
	v, kept, next, err := ttl.Judge(ttl.ListElements, list, ttl.Policy{TTLMillis: hour}, t0+hour, nil)
	if v != ttl.Rewrite || !bytes.Equal(kept, buy) || next != t0+1000+hour || err != nil {
		t.Fatalf("list at the first expiry: %v, % x, expires %d, %v", v, kept, next, err)
	}
}
