package snapshot_test

import (
	"encoding/json"
	"errors"
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
// whatever decodes has only valid handles and survives an encode/decode
// round trip unchanged.
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
