package opstate_test

import (
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pebblestate/pebblestate/opstate"
	"github.com/pebblestate/pebblestate/snapshot"
)

// Hostile input: every damaged or malformed file is snapshot.ErrCorrupt
// naming the file, never a panic or a huge allocation.

const fileName = "chk-7/op-0123.dat"

// framed wraps body in a correct header and checksum, so that only the
// body is wrong.
func framed(body []byte) []byte {
	out := append([]byte("PBSTOPST"), 0, 0, 0, 1)
	out = binary.BigEndian.AppendUint64(out, uint64(len(body)))
	out = append(out, body...)
	return binary.BigEndian.AppendUint32(out, crc32.Checksum(out, snapshot.Castagnoli))
}

// body builds a body from big-endian u32s and raw strings.
func body(items ...any) []byte {
	var out []byte
	for _, it := range items {
		switch v := it.(type) {
		case int:
			out = binary.BigEndian.AppendUint32(out, uint32(v))
		case string:
			out = append(out, v...)
		case byte:
			out = append(out, v)
		}
	}
	return out
}

func TestDecodeTruncatedAndFlipped(t *testing.T) {
	enc, err := opstate.Encode(exampleState(t))
	noErr(t, err)
	for n := range len(enc) {
		_, err := opstate.Decode(fileName, enc[:n])
		wantCorrupt(t, err, fileName)
	}
	_, err = opstate.Decode(fileName, append(append([]byte{}, enc...), 0))
	wantCorrupt(t, err, fileName)
	buf := make([]byte, len(enc))
	for i := range enc {
		for bit := range 8 {
			copy(buf, enc)
			buf[i] ^= 1 << bit
			s, err := opstate.Decode(fileName, buf)
			if s != nil {
				t.Fatalf("byte %d bit %d flipped: decoded", i, bit)
			}
			wantCorrupt(t, err, fileName)
		}
	}
}

func TestDecodeMalformedBodies(t *testing.T) {
	cases := map[string][]byte{
		"max parallelism 0":      body(0, 1, 0, 0, 0),
		"parallelism above max":  body(2, 3, 0, 0, 0),
		"index out of range":     body(4, 2, 2, 0, 0),
		"max parallelism huge":   body(1<<15+1, 1, 0, 0, 0),
		"huge list count":        body(4, 1, 0, 1<<30),
		"huge entry count":       body(4, 1, 0, 1, 1, "a", byte(1), 1<<30),
		"huge entry length":      body(4, 1, 0, 1, 1, "a", byte(1), 1, 1<<31),
		"huge position count":    body(4, 1, 0, 0, 1<<30),
		"empty list name":        body(4, 1, 0, 1, 0, byte(1), 0, 0),
		"mode 0":                 body(4, 1, 0, 1, 1, "a", byte(0), 0, 0),
		"mode 3":                 body(4, 1, 0, 1, 1, "a", byte(3), 0, 0),
		"lists out of order":     body(4, 1, 0, 2, 1, "b", byte(1), 0, 1, "a", byte(1), 0, 0),
		"list repeated":          body(4, 1, 0, 2, 1, "a", byte(1), 0, 1, "a", byte(2), 0, 0),
		"position out of range":  body(4, 2, 1, 0, 1, 1, 0),
		"positions out of order": body(4, 1, 0, 0, 2, 3, 0, 2, 0),
		"position repeated":      body(4, 1, 0, 0, 2, 3, 0, 3, 0),
		"trailing bytes":         body(4, 1, 0, 0, 0, "x"),
		"body ends in a list":    body(4, 1, 0, 1, 1, "a"),
		"no position count":      body(4, 1, 0, 0),
		"empty body":             body(),
	}
	// The builder is right: a well-formed body decodes.
	if _, err := opstate.Decode(fileName, framed(body(4, 2, 1, 1, 1, "a", byte(2), 1, 2, "xy", 1, 3, 1, "p"))); err != nil {
		t.Fatal(err)
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			s, err := opstate.Decode(fileName, framed(b))
			if s != nil {
				t.Fatal("decoded")
			}
			wantCorrupt(t, err, fileName)
		})
	}
	for _, v := range []uint32{0, 2} {
		b := framed(body(4, 1, 0, 0, 0))
		binary.BigEndian.PutUint32(b[8:], v)
		binary.BigEndian.PutUint32(b[len(b)-4:], crc32.Checksum(b[:len(b)-4], snapshot.Castagnoli))
		_, err := opstate.Decode(fileName, b)
		wantCorrupt(t, err, fileName)
		if !strings.Contains(err.Error(), "version") {
			t.Fatalf("version %d: %v", v, err)
		}
	}
}

// FuzzDecode feeds arbitrary bytes to Decode, raw or as a correctly
// framed body. Properties: no panic; an error is ErrCorrupt naming the
// file; what decodes re-encodes to the same bytes.
func FuzzDecode(f *testing.F) {
	enc, err := opstate.Encode(exampleState(f))
	noErr(f, err)
	f.Add(enc, false)
	f.Add(enc[20:len(enc)-4], true)
	f.Add(enc[:30], false)
	f.Add([]byte{}, false)
	f.Add(body(4, 1, 0, 1<<30), true)
	f.Add(body(4, 2, 1, 1, 1, "a", byte(2), 1, 2, "xy", 1, 3, 1, "p"), true)
	f.Fuzz(func(t *testing.T, data []byte, frame bool) {
		in := data
		if frame {
			in = framed(data)
		}
		s, err := opstate.Decode(fileName, in)
		if err != nil {
			if s != nil {
				t.Fatal("a state and an error")
			}
			wantCorrupt(t, err, fileName)
			return
		}
		again, err := opstate.Encode(s)
		if err != nil {
			t.Fatal(err)
		}
		if string(again) != string(in) {
			t.Fatalf("decoded %x, re-encoded %x", in, again)
		}
	})
}

// TestReadDamagedFile: Read checks a stored file against its reference.
func TestReadDamagedFile(t *testing.T) {
	ctx := context.Background()
	for _, what := range []string{"flipped", "truncated", "longer", "missing", "other subtask", "crc in ref", "size in ref"} {
		t.Run(what, func(t *testing.T) {
			st, err := snapshot.NewLocal(t.TempDir())
			noErr(t, err)
			sn, err := exampleState(t).Snapshot()
			noErr(t, err)
			ref, err := sn.Write(ctx, st, 7, "src")
			noErr(t, err)
			p := filepath.Join(st.Root(), filepath.FromSlash(ref.Name))
			b, err := os.ReadFile(p)
			noErr(t, err)
			switch what {
			case "flipped":
				b[40] ^= 1
				noErr(t, os.WriteFile(p, b, 0o644))
			case "truncated":
				noErr(t, os.WriteFile(p, b[:len(b)-3], 0o644))
			case "longer":
				noErr(t, os.WriteFile(p, append(b, 0), 0o644))
			case "missing":
				noErr(t, os.Remove(p))
			case "other subtask":
				ref.Subtask = 0
			case "crc in ref":
				ref.CRC32C++
			case "size in ref":
				ref.Size--
			}
			s, err := opstate.Read(ctx, st, ref)
			if s != nil {
				t.Fatal("read")
			}
			if what == "missing" {
				if !errors.Is(err, snapshot.ErrNotExist) {
					t.Fatalf("missing file: %v", err)
				}
				return
			}
			wantCorrupt(t, err, ref.Name)
		})
	}
}
