package snapshot_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/pebblestate/pebblestate/backend"
	"github.com/pebblestate/pebblestate/internal/formatdoc"
	"github.com/pebblestate/pebblestate/opstate"
	"github.com/pebblestate/pebblestate/snapshot"
)

// The instances of FORMAT.md's worked example, and the writers that wrote
// their files (a writer id is drawn by every open and restore of a
// backend; the instance id lives as long as its database).
const (
	exampleFull       = "4f1c0e8a9b2d47e6a3c5b7d9e1f30a2b"
	exampleInc        = "9e3779b97f4a7c15f39cc0605cedc834"
	exampleFullWriter = "b7e151628aed2a6abf7158809cf4f3c7"
	exampleIncWriter  = "243f6a8885a308d313198a2e03707344"
	exampleOldWriter  = "13198a2e03707344a4093822299f31d0"
)

// exampleCheckpoint is the checkpoint of FORMAT.md's worked example: one
// full and one incremental handle. Sizes and checksums are made up; the
// metadata does not read the files.
func exampleCheckpoint() *snapshot.Checkpoint {
	states := []snapshot.State{
		{FormatVersion: 1, Name: "sessions", ID: 1, Kind: snapshot.StateKindMap,
			KeyCodec: "string", NamespaceCodec: "int64", ValueCodec: "bytes", UserKeyCodec: "string", TTL: true},
	}
	full := snapshot.Handle{
		Operator: "clicks-per-user", InstanceID: exampleFull, CheckpointID: 7, Kind: snapshot.KindFull,
		MaxParallelism: 128, KeyGroupStart: 0, KeyGroupEnd: 64, KeyCodec: "string", States: states,
		Files:       []snapshot.FileRef{{Name: "chk-7/full-" + exampleFullWriter + ".dat", Size: 112, CRC32C: 0x1c2d3e4f}},
		Compression: "snappy",
		Blocks: []snapshot.Block{
			{KeyGroup: 3, Offset: 16, Length: 52, CRC32C: 0x0a0b0c0d, Entries: 2},
			{KeyGroup: 40, Offset: 68, Length: 44, CRC32C: 0x11223344, Entries: 1},
		},
		StateSize: 112, CheckpointedSize: 112,
	}
	inc := snapshot.Handle{
		Operator: "clicks-per-user", InstanceID: exampleInc, CheckpointID: 7, Kind: snapshot.KindIncremental,
		MaxParallelism: 128, KeyGroupStart: 64, KeyGroupEnd: 128, KeyCodec: "string", States: states,
		Files: []snapshot.FileRef{
			{Name: "chk-7/inc-" + exampleIncWriter + "/MANIFEST-000009", Size: 271, CRC32C: 0x5e6f7a8b},
			{Name: "chk-7/inc-" + exampleIncWriter + "/OPTIONS-000011", Size: 1482, CRC32C: 0x9cadbecf},
		},
		Shared: []snapshot.SharedFile{
			{FileRef: snapshot.FileRef{Name: "shared/" + exampleOldWriter + "-c6-000007.sst", Size: 1052, CRC32C: 0xd0e1f203}, LocalName: "000007.sst"},
			{FileRef: snapshot.FileRef{Name: "shared/" + exampleIncWriter + "-c7-000010.sst", Size: 803, CRC32C: 0x14253647}, LocalName: "000010.sst"},
		},
		StateSize: 271 + 1482 + 1052 + 803, CheckpointedSize: 271 + 1482 + 803,
	}
	return &snapshot.Checkpoint{ID: 7, CreatedUnixMillis: 1_700_000_000_123, Handles: []snapshot.Handle{full, inc}}
}

func readFormatDoc(t *testing.T) []byte {
	t.Helper()
	doc, err := os.ReadFile("FORMAT.md")
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// TestFormatMetadataExample checks FORMAT.md's worked example of a
// _metadata file against the bytes EncodeMetadata writes for it: the JSON
// body block and the annotated dump of the frame around it.
func TestFormatMetadataExample(t *testing.T) {
	doc := readFormatDoc(t)
	cp := exampleCheckpoint()
	enc, err := snapshot.EncodeMetadata(cp)
	if err != nil {
		t.Fatal(err)
	}
	body := enc[20 : len(enc)-4]

	block, err := formatdoc.Block(doc, "metadata-body")
	if err != nil {
		t.Fatal(err)
	}
	docBody, err := formatdoc.JSON(block)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(docBody, body) {
		var pretty bytes.Buffer
		_ = json.Indent(&pretty, body, "", "  ")
		t.Fatalf("FORMAT.md's metadata-body is out of date; the encoder writes:\n%s", pretty.String())
	}

	block, err = formatdoc.Block(doc, "metadata-frame")
	if err != nil {
		t.Fatal(err)
	}
	frame, err := formatdoc.Dump(block, map[string][]byte{"body": docBody})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(frame, enc) {
		t.Fatalf("FORMAT.md's metadata-frame is out of date; the encoder writes %d bytes:\n%s%s",
			len(enc), formatdoc.Format(enc[:20], 0), formatdoc.Format(enc[len(enc)-4:], len(enc)-4))
	}

	// The example is a valid checkpoint: it decodes to itself.
	got, err := snapshot.DecodeMetadata(snapshot.MetadataPath(7), frame)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := snapshot.EncodeMetadata(got)
	if !bytes.Equal(again, enc) {
		t.Fatal("the example does not decode to itself")
	}
}

// layoutPatterns turns FORMAT.md's layout block into one regular
// expression per line, from the line's first field.
func layoutPatterns(t *testing.T, doc []byte) map[string]*regexp.Regexp {
	t.Helper()
	block, err := formatdoc.Block(doc, "layout")
	if err != nil {
		t.Fatal(err)
	}
	holes := map[string]string{
		"<id>":      `(0|[1-9][0-9]*)`,
		"<creator>": `(0|[1-9][0-9]*)`,
		"<writer>":  `[0-9a-f]{32}`,
		"<file>":    `[^/]+`,
		"<sst>":     `[0-9]{6,}\.sst`,
	}
	hole := regexp.MustCompile(`<[a-z]+>`)
	pats := make(map[string]*regexp.Regexp)
	for _, line := range strings.Split(block, "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		pat, lit := "^", 0
		for _, m := range hole.FindAllStringIndex(fields[0], -1) {
			re, ok := holes[fields[0][m[0]:m[1]]]
			if !ok {
				t.Fatalf("layout line %q: unknown placeholder %s", line, fields[0][m[0]:m[1]])
			}
			pat += regexp.QuoteMeta(fields[0][lit:m[0]]) + re
			lit = m[1]
		}
		pats[fields[0]] = regexp.MustCompile(pat + regexp.QuoteMeta(fields[0][lit:]) + "$")
	}
	return pats
}

// TestFormatOperatorStatesExample checks FORMAT.md's example of the
// operator_states section against the encoder: it is the section of a
// valid version-2 checkpoint, byte for byte.
func TestFormatOperatorStatesExample(t *testing.T) {
	ref := func(i int, writer string, size int64) snapshot.OperatorStateRef {
		return snapshot.OperatorStateRef{Operator: "clicks", Subtask: i, Parallelism: 2, MaxParallelism: 4,
			FileRef: snapshot.FileRef{Name: opstate.FileName(7, writer), Size: size, CRC32C: 0xabcd0001 + uint32(i)}}
	}
	cp := &snapshot.Checkpoint{ID: 7, OperatorStates: []snapshot.OperatorStateRef{
		ref(0, "6a09e667f3bcc908b2fb1366ea957d3e", 85), ref(1, "3c6ef372fe94f82ba54ff53a5f1d36f1", 46),
	}}
	enc, err := snapshot.EncodeMetadata(cp)
	if err != nil {
		t.Fatal(err)
	}
	block, err := formatdoc.Block(readFormatDoc(t), "metadata-operator-states")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := formatdoc.JSON("{" + block + "}")
	if err != nil {
		t.Fatal(err)
	}
	doc = doc[1 : len(doc)-1]
	if !bytes.Contains(enc, doc) || enc[11] != snapshot.MetadataVersionOperatorState {
		t.Fatalf("FORMAT.md's metadata-operator-states is out of date; the encoder writes version %d:\n%s", enc[11], enc[20:len(enc)-4])
	}
	if _, err := snapshot.DecodeMetadata(snapshot.MetadataPath(7), enc); err != nil {
		t.Fatal(err)
	}
}

// TestFormatLayout takes real full and incremental checkpoints into one
// root and checks that every file in it has a name FORMAT.md's layout
// block shows, that every name there occurs, and that the worked example's
// names follow it too.
func TestFormatLayout(t *testing.T) {
	pats := layoutPatterns(t, readFormatDoc(t))
	ctx := context.Background()
	st, err := snapshot.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	id := int64(0)
	for _, incremental := range []bool{false, true} {
		b, err := backend.Open(backend.String, backend.Options{
			Dir: t.TempDir(), IncrementalCheckpoints: incremental, RetainedCheckpoints: 10,
		})
		if err != nil {
			t.Fatal(err)
		}
		v, err := backend.GetValue(b, backend.ValueDescriptor[int64]{Name: "count", Codec: backend.Int64})
		if err != nil {
			t.Fatal(err)
		}
		// Two checkpoints each, so the second incremental one reuses the
		// first one's upload.
		for round := range 2 {
			for i := range 50 {
				if err := b.SetCurrentKey(fmt.Sprintf("key-%d-%d", round, i)); err != nil {
					t.Fatal(err)
				}
				if err := v.Update(int64(i)); err != nil {
					t.Fatal(err)
				}
			}
			id++
			if _, err := b.Checkpoint(ctx, st, id); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
	}
	// And an operator subtask's operator state.
	ops, err := opstate.New(4, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	sn, err := ops.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sn.Write(ctx, st, id, "source"); err != nil {
		t.Fatal(err)
	}
	names, err := st.List(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	var example []string
	for _, h := range exampleCheckpoint().Handles {
		for _, f := range h.Files {
			example = append(example, f.Name)
		}
		for _, f := range h.Shared {
			example = append(example, f.Name)
		}
	}
	seen := make(map[string]bool)
	reused := false
	for _, n := range append(names, example...) {
		matched := false
		for line, re := range pats {
			if re.MatchString(n) {
				matched, seen[line] = true, true
			}
		}
		if !matched {
			t.Errorf("%s matches no line of FORMAT.md's layout", n)
		}
		if strings.HasPrefix(n, "shared/") && !strings.Contains(n, fmt.Sprintf("-c%d-", id)) {
			reused = true
		}
	}
	for line := range pats {
		if !seen[line] {
			t.Errorf("no checkpoint file matches FORMAT.md's layout line %s", line)
		}
	}
	if !reused {
		t.Errorf("the last incremental checkpoint uploaded every SST again: %v", names)
	}
	t.Logf("checkpoint root: %q", names)
}
