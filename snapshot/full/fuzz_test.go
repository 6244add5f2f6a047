package full_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"strings"
	"testing"

	"github.com/pebblestate/pebblestate/snapshot"
	"github.com/pebblestate/pebblestate/snapshot/full"
)

// header returns a valid data-file header.
func header(c full.Compression, width byte) []byte {
	h := append([]byte("PBSTFULL"), 0, 1, byte(c), width, 0, 0, 0, 0)
	return h
}

// FuzzBlockReader feeds arbitrary bytes to the block reader, as a whole
// file or, with wrap set, as one block after a valid header whose handle
// has the block's true length and checksum, so that the fuzzer reaches the
// decompressors and the record parser.
//
// Properties: no panic; errors are ErrCorrupt and name the file; what
// reads without error has exactly the entries the handle says, and reading
// it again gives the same entries.
func FuzzBlockReader(f *testing.F) {
	for _, c := range compressions {
		data, res, _ := goodFile(f, c)
		b := res.Blocks[1]
		f.Add(data, uint8(c), uint16(128), b.Offset, b.Length, b.CRC32C, b.Entries, false)
		f.Add(data[b.Offset:b.Offset+b.Length], uint8(c), uint16(128), int64(0), int64(0), uint32(0), b.Entries, true)
		f.Add(data[:b.Offset+b.Length/2], uint8(c), uint16(128), b.Offset, b.Length, b.CRC32C, b.Entries, false)
	}
	// None-compressed records: [id][uvarint len][key][uvarint len][value].
	rec := []byte{0, 1, 3, 'a', 'b', 'c', 2, 'x', 'y'}
	f.Add(rec, uint8(full.None), uint16(128), int64(0), int64(0), uint32(0), int64(1), true)
	f.Add([]byte{0, 1, 0x80, 0x80, 0x80, 0x80, 0x04}, uint8(full.None), uint16(1000), int64(0), int64(0), uint32(0), int64(1), true)
	f.Add([]byte{0, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, uint8(full.None), uint16(128), int64(0), int64(0), uint32(0), int64(1), true)
	f.Add([]byte("PBSTFULL"), uint8(0), uint16(0), int64(-1), int64(-1), uint32(0), int64(-1), false)
	f.Fuzz(func(t *testing.T, data []byte, comp uint8, mp uint16, off, length int64, crc uint32, entries int64, wrap bool) {
		c := full.Compression(comp % 5) // 4 is unknown
		maxP := int(mp%(1<<15)) + 1
		file := data
		if wrap {
			width := byte(1)
			if maxP > 128 {
				width = 2
			}
			file = append(header(c, width), data...)
			off, length = 16, int64(len(data))
			crc = crc32.Checksum(data, crc32.MakeTable(crc32.Castagnoli))
		}
		br, err := full.NewBlockReader(bytes.NewReader(file), fileName, int64(len(file)), c.String(), maxP)
		if err != nil {
			if !errors.Is(err, snapshot.ErrCorrupt) || !strings.Contains(err.Error(), fileName) {
				t.Fatalf("NewBlockReader: %q is not ErrCorrupt naming the file", err)
			}
			return
		}
		defer br.Close()
		b := snapshot.Block{KeyGroup: int(mp) % maxP, Offset: off, Length: length, CRC32C: crc, Entries: entries}
		var first bytes.Buffer
		n := int64(0)
		err = br.Read(b, func(id uint16, key, value []byte) error {
			n++
			first.Write(binary.BigEndian.AppendUint16(nil, id))
			first.Write(binary.AppendUvarint(nil, uint64(len(key))))
			first.Write(key)
			first.Write(binary.AppendUvarint(nil, uint64(len(value))))
			first.Write(value)
			return nil
		})
		if err != nil {
			if !errors.Is(err, snapshot.ErrCorrupt) || !strings.Contains(err.Error(), fileName) {
				t.Fatalf("Read: %q is not ErrCorrupt naming the file", err)
			}
			return
		}
		if n != entries {
			t.Fatalf("read %d entries; the handle says %d", n, entries)
		}
		if c == full.None && !bytes.Equal(first.Bytes(), file[off:off+length]) {
			t.Fatal("uncompressed records do not re-encode to the block")
		}
		var second bytes.Buffer
		err = br.Read(b, func(id uint16, key, value []byte) error {
			second.Write(binary.BigEndian.AppendUint16(nil, id))
			second.Write(binary.AppendUvarint(nil, uint64(len(key))))
			second.Write(key)
			second.Write(binary.AppendUvarint(nil, uint64(len(value))))
			second.Write(value)
			return nil
		})
		if err != nil || !bytes.Equal(first.Bytes(), second.Bytes()) {
			t.Fatalf("second read differs: %v", err)
		}
	})
}
