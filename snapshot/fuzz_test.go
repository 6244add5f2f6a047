package snapshot_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"reflect"
	"strings"
	"testing"

	"github.com/pebblestate/pebblestate/snapshot"
)

// FuzzDecodeMetadata feeds arbitrary bytes to DecodeMetadata. With framed
// set, data is taken as the JSON body and framed with a correct magic,
// version, length and checksum, so the fuzzer reaches the JSON and handle
// validation instead of stopping at the checksum.
//
// Properties: no panic; every error is ErrCorrupt and names the file;
// whatever decodes has only valid handles, covering each operator's key
// groups exactly once, with only safe names (assertSafeNames), and
// survives an encode/decode round trip unchanged.
//
// Guards the issue 12 must-exist test "the fuzz targets for metadata
// decoding reject every unsafe name": every unsafeNameCases value is a
// seed, and assertSafeNames restates the rule.
func FuzzDecodeMetadata(f *testing.F) {
	good := mustEncode(f, sampleCheckpoint(7))
	body, _ := json.Marshal(sampleCheckpoint(7))
	f.Add(good, false)
	f.Add(good[:len(good)/2], false)
	f.Add([]byte{}, false)
	f.Add([]byte("PBSTMETA"), false)
	f.Add(body, true)
	f.Add([]byte(`{"id":1,"handles":[{"kind":"full","max_parallelism":4,"key_group_start":0,"key_group_end":4,"blocks":[{"key_group":3,"offset":16}]}]}`), true)
	f.Add([]byte(`{"id":1,"handles":[{"kind":"full","max_parallelism":4,"key_group_start":2,"key_group_end":4,"blocks":[{"key_group":1}]}]}`), true)
	f.Add([]byte(`{"handles":[{"states":[{"id":1},{"id":1}]}]}`), true)
	f.Add([]byte(`null`), true)
	unsafe, _ := json.Marshal(nameCheckpoint())
	f.Add(unsafe, true)
	withOp, _ := json.Marshal(withOperatorState(sampleCheckpoint(7)))
	f.Add(withOp, true)
	f.Add(mustEncode(f, withOperatorState(sampleCheckpoint(7))), false)
	f.Add([]byte(`{"id":7,"operator_states":[{"operator":"src","subtask":1,"parallelism":2,"max_parallelism":4,"name":"chk-7/op-a.dat"}]}`), true)
	f.Add([]byte(`{"id":7,"operator_states":[{"operator":"src","subtask":0,"parallelism":1,"max_parallelism":4,"name":"chk-7/../x"}]}`), true)
	for _, c := range unsafeNameCases("/etc/passwd") {
		cp := nameCheckpoint()
		c.set(&cp.Handles[0], c.value)
		body, _ := json.Marshal(cp)
		f.Add(body, true)
	}
	f.Fuzz(func(t *testing.T, data []byte, framed bool) {
		in := data
		if framed {
			in = frame("PBSTMETA", snapshot.MetadataVersion, data)
		}
		cp, err := snapshot.DecodeMetadata(metaName, in)
		if err != nil {
			if !errors.Is(err, snapshot.ErrCorrupt) || !strings.Contains(err.Error(), metaName) {
				t.Fatalf("error %q is not ErrCorrupt naming %s", err, metaName)
			}
			if cp != nil {
				t.Fatal("a checkpoint and an error")
			}
			return
		}
		for i := range cp.Handles {
			if err := cp.Handles[i].Validate(); err != nil {
				t.Fatalf("decoded an invalid handle: %v", err)
			}
		}
		if err := cp.Validate(); err != nil {
			t.Fatalf("decoded an invalid checkpoint: %v", err)
		}
		assertSafeNames(t, cp)
		enc, err := snapshot.EncodeMetadata(cp)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		again, err := snapshot.DecodeMetadata(metaName, enc)
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if !reflect.DeepEqual(again, cp) {
			t.Fatalf("round trip changed the checkpoint:\n%+v\n%+v", cp, again)
		}
	})
}

// assertSafeNames fails unless every name of cp that becomes a path is
// safe: files in the checkpoint's own directory, shared files in shared/,
// both clean relative paths of bounded length, local names plain file
// names. It restates the rule independently of the code under test.
func assertSafeNames(t *testing.T, cp *snapshot.Checkpoint) {
	t.Helper()
	inside := func(name, dir string) {
		t.Helper()
		rest, ok := strings.CutPrefix(name, dir)
		if !ok || rest == "" || len(name) > 1024 || strings.ContainsAny(name, "\\\x00") || path.Clean(name) != name {
			t.Fatalf("accepted unsafe name %q (want a clean name under %s)", name, dir)
		}
		for _, e := range strings.Split(rest, "/") {
			if e == "" || e == "." || e == ".." || len(e) > 255 {
				t.Fatalf("accepted unsafe name %q (element %q)", name, e)
			}
		}
	}
	base := func(name string) {
		t.Helper()
		if name == "" || name == "." || name == ".." || len(name) > 255 || strings.ContainsAny(name, "/\\\x00") {
			t.Fatalf("accepted unsafe local name %q", name)
		}
	}
	for _, h := range cp.Handles {
		if h.CheckpointID != cp.ID {
			t.Fatalf("accepted a handle of checkpoint %d in checkpoint %d", h.CheckpointID, cp.ID)
		}
		if h.InstanceID != "" {
			base(h.InstanceID)
		}
		for _, f := range h.Files {
			inside(f.Name, fmt.Sprintf("chk-%d/", cp.ID))
			base(path.Base(f.Name))
		}
		for _, f := range h.Shared {
			inside(f.Name, "shared/")
			base(f.LocalName)
		}
	}
	for _, r := range cp.OperatorStates {
		inside(r.Name, fmt.Sprintf("chk-%d/", cp.ID))
	}
}
