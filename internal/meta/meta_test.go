package meta_test

import (
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/pebblestate/pebblestate/internal/meta"
)

var (
	sampleBackend = meta.Backend{
		FormatVersion:  meta.FormatVersion,
		InstanceID:     "00112233445566778899aabbccddeeff",
		MaxParallelism: 1000,
		KeyGroupStart:  250,
		KeyGroupEnd:    500,
		KeyCodec:       "string",
	}
	sampleState = meta.State{
		FormatVersion:  meta.FormatVersion,
		Name:           "clicks per window",
		ID:             7,
		Kind:           meta.KindMap,
		KeyCodec:       "string",
		NamespaceCodec: "int64",
		ValueCodec:     "json:main.clicks",
		UserKeyCodec:   "int64",
		TTL:            true,
	}
)

// TestBackend_RoundTrip checks Encode and DecodeBackend.
func TestBackend_RoundTrip(t *testing.T) {
	enc, err := meta.Encode(sampleBackend)
	if err != nil {
		t.Fatal(err)
	}
	got, err := meta.DecodeBackend(enc)
	if err != nil || got != sampleBackend {
		t.Fatalf("DecodeBackend(Encode(%+v)) = %+v, %v", sampleBackend, got, err)
	}
}

// TestBackend_KeyGroupAssigner pins the assigner field: left out when
// empty (murmur3, as records from before it), written and read back when
// set, in a record of version 2 (which builds from before it refuse).
func TestBackend_KeyGroupAssigner(t *testing.T) {
	enc, err := meta.Encode(sampleBackend)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(enc), "assigner") {
		t.Fatalf("a murmur3 record %s names an assigner", enc)
	}
	b := sampleBackend
	b.KeyGroupAssigner = "kafka-murmur2"
	if v := meta.BackendVersion(b); v != 2 {
		t.Fatalf("a record naming an assigner has version %d, want 2", v)
	}
	if v := meta.BackendVersion(sampleBackend); v != 1 {
		t.Fatalf("a murmur3 record has version %d, want 1", v)
	}
	b.FormatVersion = meta.BackendVersion(b)
	if enc, err = meta.Encode(b); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(enc), `{"format_version":2,`) || !strings.HasSuffix(string(enc), `"key_codec":"string","key_group_assigner":"kafka-murmur2"}`) {
		t.Fatalf("record %s", enc)
	}
	got, err := meta.DecodeBackend(enc)
	if err != nil || got != b {
		t.Fatalf("DecodeBackend(%s) = %+v, %v", enc, got, err)
	}
	// The version and the field go together; no version 3.
	for _, raw := range []string{
		`{"format_version":1,"max_parallelism":8,"key_group_end":8,"key_group_assigner":"kafka-murmur2"}`,
		`{"format_version":2,"max_parallelism":8,"key_group_end":8}`,
		`{"format_version":3,"max_parallelism":8,"key_group_end":8,"key_group_assigner":"kafka-murmur2"}`,
	} {
		if _, err := meta.DecodeBackend([]byte(raw)); !errors.Is(err, meta.ErrMalformed) {
			t.Errorf("DecodeBackend(%s) = %v, want ErrMalformed", raw, err)
		}
	}
	// A state record stays at version 1.
	if _, err := meta.DecodeState([]byte(`{"format_version":2,"name":"s","id":1,"kind":1}`)); !errors.Is(err, meta.ErrMalformed) {
		t.Errorf("a state record of version 2 decodes: %v", err)
	}
}

// TestState_RoundTrip checks Encode and DecodeState for every kind, with
// and without the optional fields.
func TestState_RoundTrip(t *testing.T) {
	for _, k := range []meta.Kind{meta.KindValue, meta.KindList, meta.KindMap, meta.KindReducing, meta.KindAggregating, meta.KindTimers} {
		for _, full := range []bool{true, false} {
			s := sampleState
			s.Kind = k
			if !full {
				s.UserKeyCodec, s.TTL = "", false
			}
			enc, err := meta.Encode(s)
			if err != nil {
				t.Fatal(err)
			}
			got, err := meta.DecodeState(enc)
			if err != nil || got != s {
				t.Fatalf("DecodeState(Encode(%+v)) = %+v, %v", s, got, err)
			}
		}
	}
}

// TestDecode_StoredFormat pins the stored JSON of version 1: records
// written by this version must stay readable by every later one.
func TestDecode_StoredFormat(t *testing.T) {
	b, err := meta.DecodeBackend([]byte(`{"format_version":1,"instance_id":"00112233445566778899aabbccddeeff",` +
		`"max_parallelism":1000,"key_group_start":250,"key_group_end":500,"key_codec":"string"}`))
	if err != nil || b != sampleBackend {
		t.Fatalf("DecodeBackend = %+v, %v; want %+v", b, err, sampleBackend)
	}
	s, err := meta.DecodeState([]byte(`{"format_version":1,"name":"clicks per window","id":7,"kind":3,` +
		`"key_codec":"string","namespace_codec":"int64","value_codec":"json:main.clicks","user_key_codec":"int64","ttl":true}`))
	if err != nil || s != sampleState {
		t.Fatalf("DecodeState = %+v, %v; want %+v", s, err, sampleState)
	}
	enc, err := meta.Encode(sampleState)
	if err != nil {
		t.Fatal(err)
	}
	for _, field := range []string{`"format_version":1`, `"name":"clicks per window"`, `"id":7`, `"kind":3`,
		`"namespace_codec":"int64"`, `"value_codec":"json:main.clicks"`, `"user_key_codec":"int64"`, `"ttl":true`} {
		if !strings.Contains(string(enc), field) {
			t.Errorf("encoded state record %s lacks %s", enc, field)
		}
	}
}

// TestKind_NumbersAndNames pins the stored kind numbers and their names.
func TestKind_NumbersAndNames(t *testing.T) {
	for k, want := range map[meta.Kind]struct {
		n    uint8
		name string
	}{
		meta.KindValue: {1, "value"}, meta.KindList: {2, "list"}, meta.KindMap: {3, "map"},
		meta.KindReducing: {4, "reducing"}, meta.KindAggregating: {5, "aggregating"}, meta.KindTimers: {6, "timers"},
	} {
		if uint8(k) != want.n || k.String() != want.name {
			t.Errorf("kind %d %q, want %d %q", uint8(k), k, want.n, want.name)
		}
	}
	if got := meta.Kind(9).String(); got != "kind(9)" {
		t.Errorf("Kind(9).String() = %q", got)
	}
}

// TestDecodeBackend_Malformed checks that bad backend records are
// ErrMalformed.
func TestDecodeBackend_Malformed(t *testing.T) {
	for name, raw := range map[string]string{
		"empty":            ``,
		"truncated":        `{"format_version":1,`,
		"not an object":    `[1,2]`,
		"null":             `null`,
		"wrong type":       `{"format_version":"1"}`,
		"trailing garbage": `{"format_version":1,"max_parallelism":1,"key_group_end":1} x`,
		"version 0":        `{"format_version":0,"max_parallelism":128,"key_group_start":0,"key_group_end":128}`,
		"no version":       `{"max_parallelism":128,"key_group_start":0,"key_group_end":128}`,
		"version 2":        `{"format_version":2,"max_parallelism":128,"key_group_start":0,"key_group_end":128}`,
		"version -1":       `{"format_version":-1,"max_parallelism":128,"key_group_start":0,"key_group_end":128}`,
		"max p 0":          `{"format_version":1,"max_parallelism":0,"key_group_start":0,"key_group_end":128}`,
		"empty range":      `{"format_version":1,"max_parallelism":128,"key_group_start":5,"key_group_end":5}`,
		"inverted range":   `{"format_version":1,"max_parallelism":128,"key_group_start":9,"key_group_end":5}`,
	} {
		if b, err := meta.DecodeBackend([]byte(raw)); !errors.Is(err, meta.ErrMalformed) {
			t.Errorf("%s: DecodeBackend = %+v, %v; want ErrMalformed", name, b, err)
		}
	}
}

// TestDecodeState_Malformed checks that bad state records are
// ErrMalformed.
func TestDecodeState_Malformed(t *testing.T) {
	for name, raw := range map[string]string{
		"empty":     ``,
		"garbage":   "\x00\x01",
		"null":      `null`,
		"version 0": `{"format_version":0,"name":"s","id":1,"kind":1}`,
		"version 2": `{"format_version":2,"name":"s","id":1,"kind":1}`,
		"no name":   `{"format_version":1,"id":1,"kind":1}`,
		"id 0":      `{"format_version":1,"name":"s","id":0,"kind":1}`,
		"id 65536":  `{"format_version":1,"name":"s","id":65536,"kind":1}`,
		"kind 0":    `{"format_version":1,"name":"s","id":1,"kind":0}`,
		"kind 7":    `{"format_version":1,"name":"s","id":1,"kind":7}`,
		"kind text": `{"format_version":1,"name":"s","id":1,"kind":"value"}`,
	} {
		if s, err := meta.DecodeState([]byte(raw)); !errors.Is(err, meta.ErrMalformed) {
			t.Errorf("%s: DecodeState = %+v, %v; want ErrMalformed", name, s, err)
		}
	}
}

// TestCompatible checks which differences between a stored and a wanted
// state record are conflicts, and that the reason names them.
func TestCompatible(t *testing.T) {
	if err := meta.Compatible(sampleState, sampleState); err != nil {
		t.Fatalf("identical records: %v", err)
	}
	ok := map[string]func(*meta.State){
		"ttl":            func(s *meta.State) { s.TTL = !s.TTL },
		"id":             func(s *meta.State) { s.ID = 99 },
		"format version": func(s *meta.State) { s.FormatVersion = 0 },
	}
	for name, change := range ok {
		want := sampleState
		change(&want)
		if err := meta.Compatible(sampleState, want); err != nil {
			t.Errorf("%s differs: Compatible = %v, want nil", name, err)
		}
	}
	conflicts := map[string]struct {
		change func(*meta.State)
		reason []string
	}{
		"kind":            {func(s *meta.State) { s.Kind = meta.KindList }, []string{"map state", "list state"}},
		"key codec":       {func(s *meta.State) { s.KeyCodec = "int64" }, []string{"key codec", `"string"`, `"int64"`}},
		"namespace codec": {func(s *meta.State) { s.NamespaceCodec = "void" }, []string{"namespace codec", `"void"`}},
		"value codec":     {func(s *meta.State) { s.ValueCodec = "json:main.other" }, []string{"value codec", "json:main.other"}},
		"map key codec":   {func(s *meta.State) { s.UserKeyCodec = "string" }, []string{"map key codec", `"string"`}},
	}
	for name, c := range conflicts {
		want := sampleState
		c.change(&want)
		err := meta.Compatible(sampleState, want)
		if err == nil {
			t.Errorf("%s differs: Compatible = nil, want a conflict", name)
			continue
		}
		for _, r := range append(c.reason, sampleState.Name) {
			if !strings.Contains(err.Error(), r) {
				t.Errorf("%s: reason %q does not mention %s", name, err, r)
			}
		}
	}
}

// TestNewInstanceID checks that instance ids are 128 random bits in hex.
func TestNewInstanceID(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		id, err := meta.NewInstanceID()
		if err != nil {
			t.Fatal(err)
		}
		if raw, err := hex.DecodeString(id); err != nil || len(raw) != 16 || id != strings.ToLower(id) {
			t.Fatalf("instance id %q is not 32 lower-case hex digits", id)
		}
		if seen[id] {
			t.Fatalf("instance id %q repeated", id)
		}
		seen[id] = true
	}
}
