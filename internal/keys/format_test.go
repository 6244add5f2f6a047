package keys_test

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/pebblestate/pebblestate/backend"
	"github.com/pebblestate/pebblestate/internal/formatdoc"
	"github.com/pebblestate/pebblestate/internal/keygroup"
	"github.com/pebblestate/pebblestate/internal/keys"
)

func formatDoc(t *testing.T) []byte {
	t.Helper()
	doc, err := os.ReadFile("FORMAT.md")
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// fixed is the component size the backend uses for a codec: its
// FixedSize, or -1.
func fixed(c any) int {
	if f, ok := c.(backend.FixedSizer); ok && f.FixedSize() >= 0 {
		return f.FixedSize()
	}
	return -1
}

// TestFormatEntryKeyExample builds FORMAT.md's worked example of an entry
// key with this package and the backend's codecs and compares it with the
// annotated dump.
func TestFormatEntryKeyExample(t *testing.T) {
	block, err := formatdoc.Block(formatDoc(t), "entry-key")
	if err != nil {
		t.Fatal(err)
	}
	const maxParallelism = 1000
	key, _ := backend.String.Append(nil, "alice")
	ns, _ := backend.Int64.Append(nil, 1_700_000_000_000)
	uk, _ := backend.String.Append(nil, "cart")
	kg, err := keygroup.Assign(key, maxParallelism)
	if err != nil {
		t.Fatal(err)
	}
	want := keys.AppendStateID(nil, 7)
	want = keys.AppendKeyGroup(want, kg, keys.KeyGroupBytes(maxParallelism))
	if want, err = keys.AppendComponent(want, key, fixed(backend.String)); err != nil {
		t.Fatal(err)
	}
	if want, err = keys.AppendComponent(want, ns, fixed(backend.Int64)); err != nil {
		t.Fatal(err)
	}
	want = append(want, uk...)
	got, err := formatdoc.Dump(block, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("FORMAT.md's entry-key is out of date (key group %d); the key is:\n%s", kg, formatdoc.Format(want, 0))
	}
}

// TestFormatSystemKeys checks FORMAT.md's dumps of the system keys.
func TestFormatSystemKeys(t *testing.T) {
	block, err := formatdoc.Block(formatDoc(t), "system-keys")
	if err != nil {
		t.Fatal(err)
	}
	secs, err := formatdoc.Sections(block)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]byte{
		"the backend record":           keys.BackendMetaKey(),
		`the record of state "clicks"`: keys.StateMetaKey("clicks"),
	}
	if len(secs) != len(want) {
		t.Fatalf("%d sections, want %d", len(secs), len(want))
	}
	for _, s := range secs {
		got, err := formatdoc.Dump(s.Text, nil)
		if err != nil {
			t.Fatal(err)
		}
		if w, ok := want[s.Title]; !ok || !bytes.Equal(got, w) {
			t.Errorf("section %q: % x, want % x", s.Title, got, w)
		}
	}
}

// TestFormatCodecSizes checks FORMAT.md's list of the built-in codecs and
// their component sizes against the codecs.
func TestFormatCodecSizes(t *testing.T) {
	block, err := formatdoc.Block(formatDoc(t), "codecs")
	if err != nil {
		t.Fatal(err)
	}
	codecs := map[string]any{}
	for _, c := range []interface{ Name() string }{
		backend.Int64, backend.Int32, backend.Uint64, backend.Float64, backend.Bool,
		backend.String, backend.Bytes, backend.Void, backend.JSON[struct{}](),
	} {
		name := c.Name()
		if strings.HasPrefix(name, "json:") {
			name = "json:<T>"
		}
		codecs[name] = c
	}
	for _, line := range strings.Split(block, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		c, ok := codecs[f[0]]
		if !ok {
			t.Errorf("FORMAT.md lists codec %s, which the backend does not have", f[0])
			continue
		}
		delete(codecs, f[0])
		size := -1
		if f[1] != "variable" {
			if size, err = strconv.Atoi(f[1]); err != nil {
				t.Fatalf("line %q: %v", line, err)
			}
		}
		if fixed(c) != size {
			t.Errorf("FORMAT.md gives codec %s size %s; it has %d (-1: variable)", f[0], f[1], fixed(c))
		}
	}
	for name := range codecs {
		t.Errorf("FORMAT.md does not list codec %s", name)
	}
}
