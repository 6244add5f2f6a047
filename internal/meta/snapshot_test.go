package meta_test

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/pebblestate/pebblestate/internal/meta"
	"github.com/pebblestate/pebblestate/snapshot"
)

// TestSnapshotState_SameFields checks that snapshot.State has exactly the
// fields of State, in the same order, with the same JSON names and kinds of
// value: a field added to one and not the other would silently drop out of
// checkpoints or restores.
func TestSnapshotState_SameFields(t *testing.T) {
	rec, pub := reflect.TypeFor[meta.State](), reflect.TypeFor[snapshot.State]()
	if rec.NumField() != pub.NumField() {
		t.Fatalf("meta.State has %d fields, snapshot.State %d", rec.NumField(), pub.NumField())
	}
	for i := range rec.NumField() {
		r, p := rec.Field(i), pub.Field(i)
		if r.Name != p.Name || r.Tag.Get("json") != p.Tag.Get("json") || r.Type.Kind() != p.Type.Kind() {
			t.Errorf("field %d: meta.State has %s %s %q, snapshot.State has %s %s %q",
				i, r.Name, r.Type, r.Tag.Get("json"), p.Name, p.Type, p.Tag.Get("json"))
		}
	}
	if meta.FormatVersion != snapshot.StateFormatVersion {
		t.Errorf("meta.FormatVersion %d, snapshot.StateFormatVersion %d: handles would carry records their reader rejects",
			meta.FormatVersion, snapshot.StateFormatVersion)
	}
}

// TestSnapshotState_Conversions checks that ToSnapshot and FromSnapshot
// carry every field, for every kind, and that both types encode a state
// to the same bytes.
func TestSnapshotState_Conversions(t *testing.T) {
	for _, k := range []meta.Kind{meta.KindValue, meta.KindList, meta.KindMap, meta.KindReducing, meta.KindAggregating, meta.KindTimers} {
		for _, full := range []bool{true, false} {
			s := sampleState
			s.Kind = k
			if !full {
				s.UserKeyCodec, s.TTL = "", false
			}
			pub := meta.ToSnapshot(s)
			if pub.Kind.String() != k.String() {
				t.Errorf("kind %s became %s", k, pub.Kind)
			}
			if back := meta.FromSnapshot(pub); back != s {
				t.Errorf("FromSnapshot(ToSnapshot(%+v)) = %+v", s, back)
			}
			a, err := meta.Encode(s)
			if err != nil {
				t.Fatal(err)
			}
			b, err := meta.Encode(pub)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(a, b) {
				t.Errorf("record encodes as %s, snapshot state as %s", a, b)
			}
		}
	}
	if got := meta.ToSnapshotStates([]meta.State{sampleState, {Name: "x"}}); len(got) != 2 || got[0] != meta.ToSnapshot(sampleState) || got[1].Name != "x" {
		t.Errorf("ToSnapshotStates = %+v", got)
	}
	if got := meta.ToSnapshotStates(nil); len(got) != 0 {
		t.Errorf("ToSnapshotStates(nil) = %+v", got)
	}
}
