package snapshot_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pebblestate/pebblestate/snapshot"
)

// TestStateKindNumbersAndNames pins the stored kind numbers and their
// names.
func TestStateKindNumbersAndNames(t *testing.T) {
	for k, want := range map[snapshot.StateKind]struct {
		n    uint8
		name string
	}{
		snapshot.StateKindValue: {1, "value"}, snapshot.StateKindList: {2, "list"}, snapshot.StateKindMap: {3, "map"},
		snapshot.StateKindReducing: {4, "reducing"}, snapshot.StateKindAggregating: {5, "aggregating"},
		snapshot.StateKindTimers: {6, "timers"},
	} {
		if uint8(k) != want.n || k.String() != want.name {
			t.Errorf("kind %d %q, want %d %q", uint8(k), k, want.n, want.name)
		}
	}
	if got := snapshot.StateKind(9).String(); got != "kind(9)" {
		t.Errorf("StateKind(9).String() = %q", got)
	}
}

// TestStateValidate checks that State.Validate accepts complete records of
// every kind and names what is wrong with an incomplete one.
func TestStateValidate(t *testing.T) {
	good := snapshot.State{FormatVersion: snapshot.StateFormatVersion, Name: "s", ID: 3, Kind: snapshot.StateKindValue,
		KeyCodec: "int64", NamespaceCodec: "void", ValueCodec: "string"}
	for _, k := range []snapshot.StateKind{snapshot.StateKindValue, snapshot.StateKindList, snapshot.StateKindMap,
		snapshot.StateKindReducing, snapshot.StateKindAggregating, snapshot.StateKindTimers} {
		s := good
		s.Kind = k
		if k == snapshot.StateKindMap {
			s.UserKeyCodec = "string"
		}
		if err := s.Validate(); err != nil {
			t.Errorf("%s state: Validate = %v", k, err)
		}
	}
	for what, c := range map[string]struct {
		mutate func(*snapshot.State)
		says   string
	}{
		"no name":          {func(s *snapshot.State) { s.Name = "" }, "no name"},
		"id 0":             {func(s *snapshot.State) { s.ID = 0 }, "reserved state id"},
		"kind 0":           {func(s *snapshot.State) { s.Kind = 0 }, "unknown kind 0"},
		"kind 7":           {func(s *snapshot.State) { s.Kind = 7 }, "unknown kind 7"},
		"version 0":        {func(s *snapshot.State) { s.FormatVersion = 0 }, "record version 0"},
		"future version":   {func(s *snapshot.State) { s.FormatVersion = snapshot.StateFormatVersion + 1 }, "record version"},
		"no key codec":     {func(s *snapshot.State) { s.KeyCodec = "" }, "codec"},
		"no ns codec":      {func(s *snapshot.State) { s.NamespaceCodec = "" }, "codec"},
		"no value codec":   {func(s *snapshot.State) { s.ValueCodec = "" }, "codec"},
		"map without key":  {func(s *snapshot.State) { s.Kind = snapshot.StateKindMap }, "codec"},
		"value with a key": {func(s *snapshot.State) { s.UserKeyCodec = "int64" }, "codec"},
	} {
		s := good
		c.mutate(&s)
		if err := s.Validate(); err == nil || !strings.Contains(err.Error(), c.says) {
			t.Errorf("%s: Validate = %v, want an error saying %q", what, err, c.says)
		}
	}
}

// TestGoldenMetadataUnchanged decodes the metadata of the golden
// checkpoint, written by an earlier build, and encodes it again: the bytes
// must be the same, so the types describing it (State in particular) still
// read and write every field under its stored name.
func TestGoldenMetadataUnchanged(t *testing.T) {
	path := filepath.Join("..", "testdata", "golden", "chk-1", snapshot.MetadataName)
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cp, err := snapshot.DecodeMetadata(path, raw)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]snapshot.StateKind{}
	ttl := map[string]bool{}
	for _, h := range cp.Handles {
		for _, s := range h.States {
			kinds[s.Name], ttl[s.Name] = s.Kind, s.TTL
			if (s.UserKeyCodec != "") != (s.Kind == snapshot.StateKindMap) || s.FormatVersion != 1 || s.KeyCodec != "int64" {
				t.Errorf("state %+v", s)
			}
		}
	}
	want := map[string]snapshot.StateKind{"value": snapshot.StateKindValue, "list": snapshot.StateKindList, "map": snapshot.StateKindMap,
		"sum": snapshot.StateKindReducing, "window": snapshot.StateKindValue, "ttl": snapshot.StateKindValue}
	for name, k := range want {
		if kinds[name] != k {
			t.Errorf("state %q has kind %s, want %s", name, kinds[name], k)
		}
	}
	if len(kinds) != len(want) || !ttl["ttl"] || ttl["value"] {
		t.Errorf("states %v, ttl %v", kinds, ttl)
	}
	again, err := snapshot.EncodeMetadata(cp)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again, raw) {
		t.Fatalf("re-encoded golden metadata differs:\n got %s\nwant %s", again, raw)
	}
}
