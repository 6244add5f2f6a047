package snapshot_test

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"hash/crc32"
	"reflect"
	"strings"
	"testing"

	"github.com/pebblestate/pebblestate/snapshot"
)

const metaName = "chk-7/_metadata"

// sampleHandle returns a valid full-snapshot handle of key groups
// [start, end) of 128.
func sampleHandle(instance string, id int64, start, end int) snapshot.Handle {
	h := snapshot.Handle{
		Operator:       "op",
		InstanceID:     instance,
		CheckpointID:   id,
		Kind:           snapshot.KindFull,
		MaxParallelism: 128,
		KeyGroupStart:  start,
		KeyGroupEnd:    end,
		KeyCodec:       "int64",
		States: []snapshot.State{
			{FormatVersion: 1, Name: "v", ID: 1, Kind: snapshot.StateKindValue, KeyCodec: "int64", NamespaceCodec: "void", ValueCodec: "string"},
			{FormatVersion: 1, Name: "m", ID: 2, Kind: snapshot.StateKindMap, KeyCodec: "int64", NamespaceCodec: "int64", ValueCodec: "string", UserKeyCodec: "int64", TTL: true},
		},
		Files:       []snapshot.FileRef{{Name: snapshot.Dir(id) + "/full-" + instance + ".dat", Size: 1234, CRC32C: 0xdeadbeef}},
		Compression: "snappy",
	}
	off := int64(16)
	for kg := start; kg < end; kg += 3 {
		h.Blocks = append(h.Blocks, snapshot.Block{KeyGroup: kg, Offset: off, Length: 40, CRC32C: uint32(kg) * 77, Entries: 3})
		off += 40
	}
	h.StateSize, h.CheckpointedSize = 1234, 1234
	return h
}

func sampleCheckpoint(id int64) *snapshot.Checkpoint {
	return &snapshot.Checkpoint{
		ID:                id,
		CreatedUnixMillis: 1_700_000_000_123,
		Handles:           []snapshot.Handle{sampleHandle("aaaa", id, 0, 64), sampleHandle("bbbb", id, 64, 128)},
	}
}

func mustEncode(t testing.TB, cp *snapshot.Checkpoint) []byte {
	t.Helper()
	b, err := snapshot.EncodeMetadata(cp)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// frame builds a metadata file around body with the given magic and
// version and a correct length and checksum, so that only what the test
// means to break is broken.
func frame(magic string, version uint32, body []byte) []byte {
	out := append([]byte(magic), binary.BigEndian.AppendUint32(nil, version)...)
	out = binary.BigEndian.AppendUint64(out, uint64(len(body)))
	out = append(out, body...)
	return binary.BigEndian.AppendUint32(out, crc32.Checksum(out, crc32.MakeTable(crc32.Castagnoli)))
}

// wantCorrupt checks err is ErrCorrupt and names the file and each of
// the fragments.
func wantCorrupt(t testing.TB, err error, name string, fragments ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error; want ErrCorrupt naming %s", name)
	}
	if !errors.Is(err, snapshot.ErrCorrupt) {
		t.Fatalf("error %q is not ErrCorrupt", err)
	}
	if !strings.Contains(err.Error(), name) {
		t.Fatalf("error %q does not name %s", err, name)
	}
	for _, f := range fragments {
		if !strings.Contains(err.Error(), f) {
			t.Fatalf("error %q does not say %q", err, f)
		}
	}
}

func TestMetadataRoundTrip(t *testing.T) {
	for _, cp := range []*snapshot.Checkpoint{
		sampleCheckpoint(7),
		{ID: 0},
		{ID: 1 << 40, Handles: []snapshot.Handle{{
			Operator: "<&>\"quoted\"\u2028", InstanceID: "x", CheckpointID: 1 << 40, Kind: snapshot.KindIncremental,
			MaxParallelism: 1 << 15, KeyGroupStart: 0, KeyGroupEnd: 1 << 15,
		}}},
		withOperatorState(sampleCheckpoint(7)),
	} {
		enc := mustEncode(t, cp)
		version := uint32(1)
		if len(cp.OperatorStates) > 0 {
			version = snapshot.MetadataVersionOperatorState
		}
		if string(enc[:8]) != "PBSTMETA" || binary.BigEndian.Uint32(enc[8:]) != version {
			t.Fatalf("header %q", enc[:12])
		}
		if n := binary.BigEndian.Uint64(enc[12:]); n != uint64(len(enc)-24) {
			t.Fatalf("body length %d in a %d-byte file", n, len(enc))
		}
		got, err := snapshot.DecodeMetadata(metaName, enc)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, cp) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", got, cp)
		}
		// Encoding is deterministic.
		if again := mustEncode(t, got); !bytes.Equal(again, enc) {
			t.Fatal("re-encoding differs")
		}
	}
}

func TestMetadataTruncatedAtEveryLength(t *testing.T) {
	enc := mustEncode(t, sampleCheckpoint(7))
	for n := range len(enc) {
		_, err := snapshot.DecodeMetadata(metaName, enc[:n])
		wantCorrupt(t, err, metaName)
	}
	// And with bytes appended.
	_, err := snapshot.DecodeMetadata(metaName, append(append([]byte(nil), enc...), 0))
	wantCorrupt(t, err, metaName, "truncated?")
}

func TestMetadataEveryBitFlipped(t *testing.T) {
	enc := mustEncode(t, sampleCheckpoint(7))
	buf := make([]byte, len(enc))
	for i := range enc {
		for bit := range 8 {
			copy(buf, enc)
			buf[i] ^= 1 << bit
			cp, err := snapshot.DecodeMetadata(metaName, buf)
			if err == nil {
				t.Fatalf("byte %d bit %d flipped: decoded %+v", i, bit, cp)
			}
			wantCorrupt(t, err, metaName)
		}
	}
}

func TestMetadataBadMagic(t *testing.T) {
	enc := mustEncode(t, sampleCheckpoint(7))
	bad := append([]byte("PBSTFULL"), enc[8:]...)
	_, err := snapshot.DecodeMetadata(metaName, bad)
	wantCorrupt(t, err, metaName, "magic")
	_, err = snapshot.DecodeMetadata(metaName, frame("NOTMETA!", 1, []byte("{}")))
	wantCorrupt(t, err, metaName, "magic")
}

func TestMetadataUnknownVersion(t *testing.T) {
	body, _ := json.Marshal(sampleCheckpoint(7))
	for _, v := range []uint32{0, snapshot.MetadataVersion + 1, 1 << 31} {
		_, err := snapshot.DecodeMetadata(metaName, frame("PBSTMETA", v, body))
		wantCorrupt(t, err, metaName, "version")
	}
	// The frame helper is right: version 1 of the same body decodes.
	if _, err := snapshot.DecodeMetadata(metaName, frame("PBSTMETA", 1, body)); err != nil {
		t.Fatal(err)
	}
}

func TestMetadataBadLength(t *testing.T) {
	enc := mustEncode(t, sampleCheckpoint(7))
	for _, n := range []uint64{0, uint64(len(enc)), 1 << 63, ^uint64(0)} {
		bad := append([]byte(nil), enc...)
		binary.BigEndian.PutUint64(bad[12:], n)
		_, err := snapshot.DecodeMetadata(metaName, bad)
		wantCorrupt(t, err, metaName)
	}
}

func TestMetadataBadJSON(t *testing.T) {
	for _, body := range []string{
		"",
		"{",
		"[]",
		"null x",
		`{"id":"seven"}`,
		`{"id":1,"handles":[{"max_parallelism":1e400}]}`,
		`{"id":1,"handles":{}}`,
		`{"id":1,"handles":[{"blocks":[{"key_group":"x"}]}]}`,
		"\xff\xfe",
	} {
		_, err := snapshot.DecodeMetadata(metaName, frame("PBSTMETA", 1, []byte(body)))
		wantCorrupt(t, err, metaName)
	}
}

func TestMetadataInvalidHandle(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(h *snapshot.Handle)
		says   string
	}{
		{"block key group above range", func(h *snapshot.Handle) { h.Blocks[len(h.Blocks)-1].KeyGroup = 64 }, "outside the handle's range"},
		{"block key group below range", func(h *snapshot.Handle) { h.Blocks[0].KeyGroup = -1 }, "outside"},
		{"blocks out of order", func(h *snapshot.Handle) { h.Blocks[0], h.Blocks[1] = h.Blocks[1], h.Blocks[0] }, "out of order"},
		{"duplicate block", func(h *snapshot.Handle) { h.Blocks[1].KeyGroup = h.Blocks[0].KeyGroup }, "out of order"},
		{"negative offset", func(h *snapshot.Handle) { h.Blocks[0].Offset = -1 }, "negative"},
		{"negative length", func(h *snapshot.Handle) { h.Blocks[0].Length = -5 }, "negative"},
		{"max parallelism 0", func(h *snapshot.Handle) { h.MaxParallelism = 0 }, "max parallelism"},
		{"max parallelism too large", func(h *snapshot.Handle) { h.MaxParallelism = 1<<15 + 1 }, "max parallelism"},
		{"empty range", func(h *snapshot.Handle) { h.KeyGroupEnd = h.KeyGroupStart }, "key groups"},
		{"range past max parallelism", func(h *snapshot.Handle) { h.KeyGroupEnd = 129 }, "key groups"},
		{"negative start", func(h *snapshot.Handle) { h.KeyGroupStart = -1 }, "key groups"},
		{"unknown kind", func(h *snapshot.Handle) { h.Kind = "partial" }, "kind"},
		{"duplicate state id", func(h *snapshot.Handle) { h.States[1].ID = h.States[0].ID }, "state id"},
		{"reserved state id", func(h *snapshot.Handle) { h.States[0].ID = 0 }, "state id"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cp := sampleCheckpoint(7)
			c.mutate(&cp.Handles[0])
			if err := cp.Handles[0].Validate(); err == nil || !strings.Contains(err.Error(), c.says) {
				t.Fatalf("Validate = %v, want an error saying %q", err, c.says)
			}
			if _, err := snapshot.EncodeMetadata(cp); err != nil {
				t.Fatalf("EncodeMetadata does not validate, so it should succeed: %v", err)
			}
			body, _ := json.Marshal(cp)
			_, err := snapshot.DecodeMetadata(metaName, frame("PBSTMETA", 1, body))
			wantCorrupt(t, err, metaName, c.says, "aaaa")
		})
	}
	// The second handle is checked too.
	cp := sampleCheckpoint(7)
	cp.Handles[1].Blocks[0].KeyGroup = 3
	body, _ := json.Marshal(cp)
	_, err := snapshot.DecodeMetadata(metaName, frame("PBSTMETA", 1, body))
	wantCorrupt(t, err, metaName, "bbbb", "key group 3 outside")
}

// TestMetadataValidateRejectsBadStates checks the state records of a
// handle are validated: a restore would otherwise create states the backend
// cannot reopen.
func TestMetadataValidateRejectsBadStates(t *testing.T) {
	good := snapshot.State{FormatVersion: 1, Name: "a", ID: 1, Kind: snapshot.StateKindValue, KeyCodec: "int64", NamespaceCodec: "void", ValueCodec: "int64"}
	for what, mutate := range map[string]func(*snapshot.State){
		"empty name":      func(s *snapshot.State) { s.Name = "" },
		"unknown kind":    func(s *snapshot.State) { s.Kind = 99 },
		"version 0":       func(s *snapshot.State) { s.FormatVersion = 0 },
		"future version":  func(s *snapshot.State) { s.FormatVersion = snapshot.StateFormatVersion + 1 },
		"no value codec":  func(s *snapshot.State) { s.ValueCodec = "" },
		"map without key": func(s *snapshot.State) { s.Kind = snapshot.StateKindMap },
	} {
		st := good
		mutate(&st)
		h := snapshot.Handle{Kind: snapshot.KindFull, MaxParallelism: 128, KeyGroupStart: 0, KeyGroupEnd: 128, States: []snapshot.State{st}}
		if err := h.Validate(); err == nil {
			t.Errorf("%s: Validate accepted %+v", what, st)
		}
	}
	dup := snapshot.Handle{Kind: snapshot.KindFull, MaxParallelism: 128, KeyGroupStart: 0, KeyGroupEnd: 128, States: []snapshot.State{good, good}}
	dup.States[1].ID = 2
	if err := dup.Validate(); err == nil {
		t.Errorf("Validate accepted two states named %q", good.Name)
	}
}

func TestMetadataValidateAcceptsEdges(t *testing.T) {
	for _, h := range []snapshot.Handle{
		{Kind: snapshot.KindFull, MaxParallelism: 1, KeyGroupStart: 0, KeyGroupEnd: 1, Blocks: []snapshot.Block{{KeyGroup: 0, Offset: 16}}},
		{Kind: snapshot.KindIncremental, MaxParallelism: 1 << 15, KeyGroupStart: 1<<15 - 1, KeyGroupEnd: 1 << 15},
		{Kind: snapshot.KindFull, MaxParallelism: 128, KeyGroupStart: 5, KeyGroupEnd: 6, States: []snapshot.State{
			{FormatVersion: 1, Name: "a", ID: 1, Kind: snapshot.StateKindValue, KeyCodec: "int64", NamespaceCodec: "void", ValueCodec: "int64"},
			{FormatVersion: 1, Name: "b", ID: 0xFFFE, Kind: snapshot.StateKindMap, KeyCodec: "int64", NamespaceCodec: "void", ValueCodec: "int64", UserKeyCodec: "string"},
		}},
	} {
		if err := h.Validate(); err != nil {
			t.Errorf("Validate(%+v) = %v", h, err)
		}
	}
}
