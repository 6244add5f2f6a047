package meta_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/pebblestate/pebblestate/backend"
	"github.com/pebblestate/pebblestate/internal/formatdoc"
	"github.com/pebblestate/pebblestate/internal/meta"
	"github.com/pebblestate/pebblestate/ttl"
)

// docInstanceID is the instance id FORMAT.md's example shows in place of
// the random one the backend draws.
const docInstanceID = "4f1c0e8a9b2d47e6a3c5b7d9e1f30a2b"

// entry is one key and value of a database.
type entry struct{ key, value []byte }

// docDatabase reads FORMAT.md's "database" example: pairs of sections, a
// key dump and a value that is either a dump or a JSON record.
func docDatabase(t *testing.T) []entry {
	t.Helper()
	doc, err := os.ReadFile("FORMAT.md")
	if err != nil {
		t.Fatal(err)
	}
	block, err := formatdoc.Block(doc, "database")
	if err != nil {
		t.Fatal(err)
	}
	secs, err := formatdoc.Sections(block)
	if err != nil {
		t.Fatal(err)
	}
	if len(secs)%2 != 0 {
		t.Fatalf("%d sections: not key and value pairs", len(secs))
	}
	var out []entry
	for i := 0; i < len(secs); i += 2 {
		k, v := secs[i], secs[i+1]
		if !strings.HasPrefix(k.Title, "key") || !strings.HasPrefix(v.Title, "value") {
			t.Fatalf("sections %q and %q are not a key and a value", k.Title, v.Title)
		}
		var e entry
		if e.key, err = formatdoc.Dump(k.Text, nil); err != nil {
			t.Fatalf("section %q: %v", k.Title, err)
		}
		if strings.HasPrefix(strings.TrimSpace(v.Text), "{") {
			e.value, err = formatdoc.JSON(v.Text)
		} else {
			e.value, err = formatdoc.Dump(v.Text, nil)
		}
		if err != nil {
			t.Fatalf("section %q: %v", v.Title, err)
		}
		out = append(out, e)
	}
	return out
}

// writeExample writes FORMAT.md's example database with a real backend and
// returns every key and value in it, read with Pebble directly, with the
// backend record's random instance id replaced by docInstanceID.
func writeExample(t *testing.T) []entry {
	t.Helper()
	clock := ttl.NewManualClock(time.UnixMilli(1_700_000_000_000))
	opts := backend.Options{Dir: t.TempDir(), Clock: clock, TTLSweepInterval: -1}
	b, err := backend.Open(backend.String, opts)
	if err != nil {
		t.Fatal(err)
	}
	hour := ttl.Config{TTL: time.Hour}
	count, err := backend.GetValue(b, backend.ValueDescriptor[int64]{Name: "count", Codec: backend.Int64})
	if err != nil {
		t.Fatal(err)
	}
	events, err := backend.GetList(b, backend.ListDescriptor[string]{Name: "events", Codec: backend.String, TTL: hour})
	if err != nil {
		t.Fatal(err)
	}
	carts, err := backend.GetMap(b, backend.MapDescriptor[string, int64]{
		Name: "carts", KeyCodec: backend.String, ValueCodec: backend.Int64, TTL: hour})
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range []func() error{
		func() error { return b.SetCurrentKey("alice") },
		func() error { return count.Update(3) },
		func() error { return events.Add("view") },
		func() error { clock.Advance(time.Second); return events.Add("buy") },
		func() error { return carts.Put("apple", 2) },
		b.Close,
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}

	cache := pebble.NewCache(8 << 20)
	defer cache.Unref()
	po := opts.PebbleOptions(cache)
	po.ReadOnly = true
	db, err := pebble.Open(opts.Dir, po)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	it, err := db.NewIter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	var out []entry
	for valid := it.First(); valid; valid = it.Next() {
		out = append(out, entry{bytes.Clone(it.Key()), bytes.Clone(it.Value())})
	}
	if err := it.Error(); err != nil {
		t.Fatal(err)
	}
	// The backend record comes first (state id 0, tag 'B' before 'S').
	if len(out) == 0 {
		t.Fatal("empty database")
	}
	rec, err := meta.DecodeBackend(out[0].value)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(rec.InstanceID) {
		t.Fatalf("instance id %q", rec.InstanceID)
	}
	out[0].value = bytes.Replace(out[0].value, []byte(rec.InstanceID), []byte(docInstanceID), 1)
	return out
}

// TestFormatDatabaseExample writes FORMAT.md's example database with a
// real backend and compares every key and value in it with the example.
func TestFormatDatabaseExample(t *testing.T) {
	want := docDatabase(t)
	got := writeExample(t)
	var sb strings.Builder
	for _, e := range got {
		fmt.Fprintf(&sb, "# key\n%s# value\n", formatdoc.Format(e.key, 0))
		if e.value[0] == '{' {
			var pretty bytes.Buffer
			_ = json.Indent(&pretty, e.value, "", "  ")
			fmt.Fprintf(&sb, "%s\n", pretty.String())
		} else {
			sb.WriteString(formatdoc.Format(e.value, 0))
		}
	}
	if len(got) != len(want) {
		t.Fatalf("the database holds %d entries, FORMAT.md shows %d; it holds:\n%s", len(got), len(want), sb.String())
	}
	for i := range got {
		if !bytes.Equal(got[i].key, want[i].key) || !bytes.Equal(got[i].value, want[i].value) {
			t.Fatalf("entry %d differs from FORMAT.md's; the database holds:\n%s", i, sb.String())
		}
	}
}

// TestFormatRecordsRoundTrip decodes the records of FORMAT.md's example
// with this package and checks that Encode writes them back as shown, and
// that a handle's snapshot.State of each state record encodes the same.
func TestFormatRecordsRoundTrip(t *testing.T) {
	n := 0
	for _, e := range docDatabase(t) {
		if e.key[0] != 0 || e.key[1] != 0 {
			continue
		}
		var rec any
		var err error
		switch e.key[2] {
		case 'B':
			rec, err = meta.DecodeBackend(e.value)
		case 'S':
			var s meta.State
			s, err = meta.DecodeState(e.value)
			if err == nil && s.Name != string(e.key[3:]) {
				t.Errorf("the record under %q names state %q", e.key[3:], s.Name)
			}
			// A handle lists the record as a snapshot.State, encoded alike.
			if b, err := json.Marshal(meta.ToSnapshot(s)); err != nil || !bytes.Equal(b, e.value) {
				t.Errorf("state %q in a handle encodes as %s (%v); FORMAT.md shows %s", s.Name, b, err, e.value)
			}
			rec = s
		default:
			t.Fatalf("system key % x has an unknown tag", e.key)
		}
		if err != nil {
			t.Fatalf("record under % x: %v", e.key, err)
		}
		enc, err := meta.Encode(rec)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(enc, e.value) {
			t.Errorf("record under % x encodes as %s; FORMAT.md shows %s", e.key, enc, e.value)
		}
		n++
	}
	if n != 4 {
		t.Fatalf("FORMAT.md's example has %d records, want the backend's and three states'", n)
	}
}
