package full_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/pebblestate/pebblestate/internal/keygroup"
	"github.com/pebblestate/pebblestate/internal/keys"
	"github.com/pebblestate/pebblestate/internal/listfmt"
	"github.com/pebblestate/pebblestate/snapshot"
	"github.com/pebblestate/pebblestate/snapshot/full"
)

const fileName = "chk-9/full-abc.dat"

var compressions = []full.Compression{full.None, full.Snappy, full.Zstd, full.S2}

type quietLogger struct{}

func (quietLogger) Infof(string, ...any)  {}
func (quietLogger) Errorf(string, ...any) {}
func (quietLogger) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf(format, args...))
}

// openDB opens an in-memory Pebble database as the backend configures it.
func openDB(t testing.TB) *pebble.DB {
	t.Helper()
	db, err := pebble.Open("db", &pebble.Options{
		FS:                 vfs.NewMem(),
		Merger:             listfmt.Merger,
		FormatMajorVersion: pebble.FormatNewest,
		Logger:             quietLogger{},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return db
}

// stateKey returns [id][key group][suffix].
func stateKey(id uint16, kg, width int, suffix string) []byte {
	return append(keys.AppendKeyGroup(keys.AppendStateID(nil, id), kg, width), suffix...)
}

type entry struct{ key, value string }

// fixture fills db with entries of states 1, 2 and 5 (a list state written
// with merge operands) in some key groups of [0, mp), plus entries the
// snapshot must leave out: state 9, the system records, and key groups
// outside r. It returns the entries a snapshot of states 1, 2, 5 and key
// groups r must hold, in key order.
func fixture(t testing.TB, db *pebble.DB, mp int, r keygroup.Range) []entry {
	t.Helper()
	width := keys.KeyGroupBytes(mp)
	var want []entry
	put := func(k []byte, v string, kg int, id uint16) {
		if err := db.Set(k, []byte(v), pebble.NoSync); err != nil {
			t.Fatal(err)
		}
		if r.Contains(kg) && (id == 1 || id == 2) {
			want = append(want, entry{string(k), v})
		}
	}
	if err := db.Set(keys.BackendMetaKey(), []byte(`{"system":true}`), pebble.NoSync); err != nil {
		t.Fatal(err)
	}
	for kg := 0; kg < mp; kg++ {
		if kg%5 == 3 {
			continue // no data in this key group
		}
		n := 1 + kg%4
		for j := range n {
			suffix := fmt.Sprintf("key-%d-%d", kg, j)
			put(stateKey(1, kg, width, suffix), fmt.Sprintf("v1/%d/%d", kg, j), kg, 1)
			if kg%2 == 0 {
				put(stateKey(2, kg, width, suffix+"\x00map"), strings.Repeat("x", kg%37), kg, 2)
			}
			put(stateKey(9, kg, width, suffix), "not snapshotted", kg, 9)
		}
		if kg%3 == 0 {
			// A list: merge operands that the snapshot must fold.
			k := stateKey(5, kg, width, fmt.Sprintf("list-%d", kg))
			var folded []byte
			for e := range 3 {
				op := listfmt.AppendElement(nil, fmt.Appendf(nil, "e%d", e))
				folded = append(folded, op...)
				if err := db.Merge(k, op, pebble.NoSync); err != nil {
					t.Fatal(err)
				}
			}
			if r.Contains(kg) {
				want = append(want, entry{string(k), string(folded)})
			}
		}
	}
	sortEntries(want, width)
	return want
}

// sortEntries sorts entries in data-file order: by key group, then state,
// then key.
func sortEntries(es []entry, width int) {
	slices.SortFunc(es, func(a, b entry) int {
		ka, _, _ := keys.DecodeKeyGroup([]byte(a.key[2:]), width)
		kb, _, _ := keys.DecodeKeyGroup([]byte(b.key[2:]), width)
		if ka != kb {
			return ka - kb
		}
		return strings.Compare(a.key, b.key)
	})
}

// snap writes a full snapshot of states 1, 2, 5 of key groups r.
func snap(t testing.TB, db *pebble.DB, mp int, r keygroup.Range, c full.Compression) ([]byte, full.Result) {
	t.Helper()
	var buf bytes.Buffer
	res, err := full.Write(context.Background(), db, &buf, full.WriteOptions{
		StateIDs:       []uint16{5, 1, 2}, // any order
		KeyGroups:      r,
		MaxParallelism: mp,
		Compression:    c,
	})
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), res
}

// readBlocks reads the given blocks and returns the entries with their full
// keys, in the order read.
func readBlocks(t testing.TB, data []byte, c full.Compression, mp int, blocks []snapshot.Block) ([]entry, error) {
	t.Helper()
	br, err := full.NewBlockReader(bytes.NewReader(data), fileName, int64(len(data)), c.String(), mp)
	if err != nil {
		return nil, err
	}
	defer br.Close()
	width := br.KeyGroupWidth()
	var got []entry
	for _, b := range blocks {
		err := br.Read(b, func(id uint16, key, value []byte) error {
			k := append(keys.AppendKeyGroup(keys.AppendStateID(nil, id), b.KeyGroup, width), key...)
			got = append(got, entry{string(k), string(value)})
			return nil
		})
		if err != nil {
			return got, err
		}
	}
	return got, nil
}

func wantCorrupt(t testing.TB, err error, fragments ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error; want ErrCorrupt saying %q", fragments)
	}
	if !errors.Is(err, snapshot.ErrCorrupt) {
		t.Fatalf("error %q is not ErrCorrupt", err)
	}
	for _, f := range append([]string{fileName}, fragments...) {
		if !strings.Contains(err.Error(), f) {
			t.Fatalf("error %q does not say %q", err, f)
		}
	}
}

func at(b snapshot.Block) string {
	return fmt.Sprintf("key group %d at offset %d", b.KeyGroup, b.Offset)
}

func TestFullRoundTrip(t *testing.T) {
	for _, mp := range []int{128, 1024} {
		r := keygroup.Range{Start: 10, End: 90}
		if mp > 128 {
			r = keygroup.Range{Start: 250, End: 700} // crosses the one-byte boundary
		}
		db := openDB(t)
		want := fixture(t, db, mp, r)
		for _, c := range compressions {
			t.Run(fmt.Sprintf("mp%d/%s", mp, c), func(t *testing.T) {
				data, res := snap(t, db, mp, r, c)
				if res.Size != int64(len(data)) {
					t.Fatalf("Size %d, wrote %d", res.Size, len(data))
				}
				if res.CRC32C != crc32.Checksum(data, crc32.MakeTable(crc32.Castagnoli)) {
					t.Fatal("file checksum")
				}
				// The header, as FORMAT.md has it.
				if string(data[:8]) != "PBSTFULL" || binary.BigEndian.Uint16(data[8:]) != full.Version ||
					data[10] != byte(c) || int(data[11]) != keys.KeyGroupBytes(mp) || !bytes.Equal(data[12:16], make([]byte, 4)) {
					t.Fatalf("header % x", data[:16])
				}
				// Blocks: ascending, in range, contiguous, covering the file,
				// one per key group with data.
				off, total := int64(16), int64(0)
				var kgs []int
				for i, b := range res.Blocks {
					if i > 0 && b.KeyGroup <= res.Blocks[i-1].KeyGroup {
						t.Fatalf("blocks out of order: %v", res.Blocks)
					}
					if !r.Contains(b.KeyGroup) || b.Offset != off || b.Length <= 0 || b.Entries <= 0 {
						t.Fatalf("block %+v (expected offset %d)", b, off)
					}
					want := crc32.Checksum(data[b.Offset:b.Offset+b.Length], crc32.MakeTable(crc32.Castagnoli))
					if b.CRC32C != want {
						t.Fatalf("block %d checksum", b.KeyGroup)
					}
					off += b.Length
					total += b.Entries
					kgs = append(kgs, b.KeyGroup)
				}
				if off != res.Size || total != int64(len(want)) {
					t.Fatalf("blocks end at %d of %d, hold %d entries of %d", off, res.Size, total, len(want))
				}
				var wantKGs []int
				for kg := r.Start; kg < r.End; kg++ {
					if kg%5 != 3 {
						wantKGs = append(wantKGs, kg)
					}
				}
				if !slices.Equal(kgs, wantKGs) {
					t.Fatalf("key groups with blocks %v, want %v", kgs, wantKGs)
				}
				got, err := readBlocks(t, data, c, mp, res.Blocks)
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(got, want) {
					t.Fatalf("read %d entries, want %d; first difference at %d", len(got), len(want), firstDiff(got, want))
				}
			})
		}
	}
}

func firstDiff(a, b []entry) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

func TestFullEmpty(t *testing.T) {
	db := openDB(t)
	for _, c := range compressions {
		data, res := snap(t, db, 128, keygroup.Range{Start: 0, End: 128}, c)
		if len(data) != 16 || res.Size != 16 || len(res.Blocks) != 0 {
			t.Fatalf("%s: empty snapshot is %d bytes, %d blocks", c, len(data), len(res.Blocks))
		}
		if got, err := readBlocks(t, data, c, 128, nil); err != nil || len(got) != 0 {
			t.Fatalf("%s: %v %v", c, got, err)
		}
	}
}

func TestFullReadSubset(t *testing.T) {
	const mp = 128
	r := keygroup.Range{Start: 0, End: mp}
	db := openDB(t)
	all := fixture(t, db, mp, r)
	for _, c := range compressions {
		t.Run(c.String(), func(t *testing.T) {
			data, res := snap(t, db, mp, r, c)
			sub := keygroup.Range{Start: 40, End: 77}
			var blocks []snapshot.Block
			for _, b := range res.Blocks {
				if sub.Contains(b.KeyGroup) {
					blocks = append(blocks, b)
				}
			}
			var want []entry
			for _, e := range all {
				if kg := int(e.key[2]); sub.Contains(kg) {
					want = append(want, e)
				}
			}
			got, err := readBlocks(t, data, c, mp, blocks)
			if err != nil || !slices.Equal(got, want) {
				t.Fatalf("subset: %d entries, want %d (%v)", len(got), len(want), err)
			}
			// Blocks read backwards, and one read twice, with one reader.
			rev := slices.Clone(blocks)
			slices.Reverse(rev)
			rev = append(rev, rev[0])
			got, err = readBlocks(t, data, c, mp, rev)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(want)+int(rev[0].Entries) {
				t.Fatalf("backwards: %d entries", len(got))
			}
			sortEntries(got, 1)
			got = slices.Compact(got)
			if !slices.Equal(got, want) {
				t.Fatal("backwards: different entries")
			}
		})
	}
}

func TestFullWriteCancelled(t *testing.T) {
	db := openDB(t)
	fixture(t, db, 128, keygroup.Range{Start: 0, End: 128})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := full.Write(ctx, db, io.Discard, full.WriteOptions{StateIDs: []uint16{1}, KeyGroups: keygroup.Range{Start: 0, End: 128}, MaxParallelism: 128})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Write with a cancelled context = %v", err)
	}
}

type failingWriter struct{ left int }

var errWrite = errors.New("disk full")

func (w *failingWriter) Write(p []byte) (int, error) {
	if len(p) > w.left {
		n := w.left
		w.left = 0
		return n, errWrite
	}
	w.left -= len(p)
	return len(p), nil
}

func TestFullWriteError(t *testing.T) {
	db := openDB(t)
	fixture(t, db, 128, keygroup.Range{Start: 0, End: 128})
	for _, c := range compressions {
		for _, limit := range []int{0, 10, 100, 1000} {
			_, err := full.Write(context.Background(), db, &failingWriter{left: limit}, full.WriteOptions{
				StateIDs: []uint16{1, 2, 5}, KeyGroups: keygroup.Range{Start: 0, End: 128}, MaxParallelism: 128, Compression: c,
			})
			if !errors.Is(err, errWrite) {
				t.Fatalf("%s, fail after %d bytes: Write = %v", c, limit, err)
			}
		}
	}
	_, err := full.Write(context.Background(), db, io.Discard, full.WriteOptions{
		StateIDs: []uint16{1}, KeyGroups: keygroup.Range{Start: 0, End: 128}, MaxParallelism: 128, Compression: 42,
	})
	if err == nil {
		t.Fatal("Write with an unknown compression succeeded")
	}
}

func TestFullCompressionNames(t *testing.T) {
	for _, c := range compressions {
		got, err := full.ParseCompression(c.String())
		if err != nil || got != c {
			t.Fatalf("ParseCompression(%q) = %v, %v", c.String(), got, err)
		}
	}
	if names := []string{full.None.String(), full.Snappy.String(), full.Zstd.String(), full.S2.String()}; !slices.Equal(names, []string{"none", "snappy", "zstd", "s2"}) {
		t.Fatalf("names %v", names)
	}
	if _, err := full.ParseCompression("lz4"); err == nil {
		t.Fatal("ParseCompression(lz4) succeeded")
	}
	if _, err := full.ParseCompression(""); err == nil {
		t.Fatal("ParseCompression(\"\") succeeded")
	}
	if s := full.Compression(9).String(); s != "compression(9)" {
		t.Fatalf("String of 9 = %q", s)
	}
}

// goodFile returns a snapshot of a small fixture.
func goodFile(t testing.TB, c full.Compression) ([]byte, full.Result, []entry) {
	t.Helper()
	db := openDB(t)
	r := keygroup.Range{Start: 0, End: 24}
	want := fixture(t, db, 128, r)
	data, res := snap(t, db, 128, r, c)
	return data, res, want
}

func TestFullCorruptHeader(t *testing.T) {
	data, _, _ := goodFile(t, full.Snappy)
	open := func(d []byte, comp string, mp int) error {
		br, err := full.NewBlockReader(bytes.NewReader(d), fileName, int64(len(d)), comp, mp)
		if err == nil {
			br.Close()
		}
		return err
	}
	if err := open(data, "snappy", 128); err != nil {
		t.Fatal(err)
	}
	for n := range 16 {
		wantCorrupt(t, open(data[:n], "snappy", 128), "too short")
	}
	mod := func(i int, v byte) []byte {
		d := slices.Clone(data)
		d[i] = v
		return d
	}
	wantCorrupt(t, open(mod(0, 'X'), "snappy", 128), "magic")
	wantCorrupt(t, open(mod(7, 'l'), "snappy", 128), "magic")
	wantCorrupt(t, open(mod(9, 2), "snappy", 128), "version 2")
	wantCorrupt(t, open(mod(9, 0), "snappy", 128), "version 0")
	wantCorrupt(t, open(mod(8, 1), "snappy", 128), "version 257")
	// The compression the handle names must be the file's.
	wantCorrupt(t, open(data, "zstd", 128), "compression snappy", "handle says zstd")
	wantCorrupt(t, open(data, "", 128), "compression")
	wantCorrupt(t, open(mod(10, byte(full.S2)), "snappy", 128), "compression s2")
	// An unknown compression byte, even one the handle agrees with.
	wantCorrupt(t, open(mod(10, 9), "compression(9)", 128))
	// The key-group width must fit the max parallelism.
	wantCorrupt(t, open(data, "snappy", 129), "max parallelism 129")
	wantCorrupt(t, open(mod(11, 2), "snappy", 128), "2-byte key groups")
	wantCorrupt(t, open(mod(11, 0), "snappy", 128))
	// A reader whose ReadAt fails reports the file.
	_, err := full.NewBlockReader(errReaderAt{}, fileName, 100, "snappy", 128)
	if err == nil || !strings.Contains(err.Error(), fileName) {
		t.Fatalf("failing ReaderAt: %v", err)
	}
}

type errReaderAt struct{}

func (errReaderAt) ReadAt([]byte, int64) (int, error) { return 0, errors.New("I/O error") }

// readWith reads blocks with an open reader, as readBlocks does.
func readWith(br *full.BlockReader, blocks ...snapshot.Block) error {
	for _, b := range blocks {
		if err := br.Read(b, func(uint16, []byte, []byte) error { return nil }); err != nil {
			return err
		}
	}
	return nil
}

func newReader(t testing.TB, data []byte, c full.Compression) *full.BlockReader {
	t.Helper()
	br, err := full.NewBlockReader(bytes.NewReader(data), fileName, int64(len(data)), c.String(), 128)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(br.Close)
	return br
}

// TestFullCorruptBlockBitFlips flips one bit in every byte of every block
// and checks that reading that block fails with ErrCorrupt naming the file,
// key group and offset, and that the other blocks still read.
func TestFullCorruptBlockBitFlips(t *testing.T) {
	for _, c := range compressions {
		t.Run(c.String(), func(t *testing.T) {
			data, res, want := goodFile(t, c)
			if got, err := readBlocks(t, data, c, 128, res.Blocks); err != nil || !slices.Equal(got, want) {
				t.Fatalf("clean read: %v", err)
			}
			// One reader over a buffer flipped in place.
			d := slices.Clone(data)
			br := newReader(t, d, c)
			flips := 0
			for bi, b := range res.Blocks {
				other := res.Blocks[(bi+1)%len(res.Blocks)]
				for i := b.Offset; i < b.Offset+b.Length; i++ {
					for _, bit := range []int64{i % 8, 7 - i%8} {
						d[i] ^= 1 << bit
						wantCorrupt(t, readWith(br, b), at(b))
						// A neighbour is unaffected.
						if err := readWith(br, other); err != nil {
							t.Fatalf("flip in key group %d broke key group %d: %v", b.KeyGroup, other.KeyGroup, err)
						}
						d[i] ^= 1 << bit
						flips++
					}
				}
			}
			if err := readWith(br, res.Blocks...); err != nil {
				t.Fatalf("after flipping back: %v", err)
			}
			t.Logf("%d flips detected in %d blocks", flips, len(res.Blocks))
		})
	}
}

// TestFullCorruptTruncated cuts the file at every length: the blocks the
// cut leaves whole still read; the one it cuts, and those after it, fail
// with ErrCorrupt naming file, key group and offset.
func TestFullCorruptTruncated(t *testing.T) {
	for _, c := range compressions {
		t.Run(c.String(), func(t *testing.T) {
			data, res, _ := goodFile(t, c)
			for n := 16; n < len(data); n++ {
				br := newReader(t, data[:n], c)
				cut := slices.IndexFunc(res.Blocks, func(b snapshot.Block) bool { return b.Offset+b.Length > int64(n) })
				if cut > 0 {
					if err := readWith(br, res.Blocks[cut-1]); err != nil {
						t.Fatalf("cut at %d: the whole block before the cut: %v", n, err)
					}
				}
				for _, b := range res.Blocks[cut:min(cut+2, len(res.Blocks))] {
					wantCorrupt(t, readWith(br, b), at(b), fmt.Sprintf("outside the %d-byte file", n))
				}
				br.Close()
			}
		})
	}
}

func TestFullCorruptBlockHandle(t *testing.T) {
	for _, c := range compressions {
		t.Run(c.String(), func(t *testing.T) {
			data, res, _ := goodFile(t, c)
			b := res.Blocks[len(res.Blocks)/2]
			next := res.Blocks[len(res.Blocks)/2+1]
			cases := []struct {
				name   string
				mutate func(*snapshot.Block)
				says   []string
			}{
				{"checksum", func(b *snapshot.Block) { b.CRC32C ^= 1 }, []string{"checksum"}},
				{"entries+1", func(b *snapshot.Block) { b.Entries++ }, []string{"entries, expected"}},
				{"entries-1", func(b *snapshot.Block) { b.Entries-- }, []string{"entries, expected"}},
				{"length-1", func(b *snapshot.Block) { b.Length-- }, nil},
				{"length+1", func(b *snapshot.Block) { b.Length++ }, nil},
				{"length 0", func(b *snapshot.Block) { b.Length = 0 }, nil},
				{"length negative", func(b *snapshot.Block) { b.Length = -1 }, []string{"outside"}},
				{"offset in header", func(b *snapshot.Block) { b.Offset = 3 }, []string{"outside"}},
				{"offset 0", func(b *snapshot.Block) { b.Offset = 0 }, []string{"outside"}},
				{"offset negative", func(b *snapshot.Block) { b.Offset = -100 }, []string{"outside"}},
				{"offset of next block", func(b *snapshot.Block) { b.Offset = next.Offset }, nil},
				{"past the end", func(b *snapshot.Block) { b.Length = int64(len(data)) }, []string{"outside"}},
				{"huge", func(b *snapshot.Block) { b.Offset, b.Length = 1<<62, 1<<62 }, nil},
				{"offset+length overflows", func(b *snapshot.Block) { b.Offset, b.Length = 1<<63-2, 4 }, nil},
			}
			for _, tc := range cases {
				bad := b
				tc.mutate(&bad)
				_, err := readBlocks(t, data, c, 128, []snapshot.Block{bad})
				if err == nil {
					t.Fatalf("%s: read succeeded", tc.name)
				}
				wantCorrupt(t, err, append([]string{at(bad)}, tc.says...)...)
			}
		})
	}
}

// TestFullCallbackError checks an error of the callback comes back as is,
// not disguised as corruption.
func TestFullCallbackError(t *testing.T) {
	data, res, _ := goodFile(t, full.Zstd)
	br, err := full.NewBlockReader(bytes.NewReader(data), fileName, int64(len(data)), "zstd", 128)
	if err != nil {
		t.Fatal(err)
	}
	defer br.Close()
	stop := errors.New("stop")
	calls := 0
	err = br.Read(res.Blocks[0], func(uint16, []byte, []byte) error {
		calls++
		return stop
	})
	if err != stop || calls != 1 {
		t.Fatalf("Read = %v after %d calls", err, calls)
	}
	// The reader is still usable.
	if err := br.Read(res.Blocks[1], func(uint16, []byte, []byte) error { return nil }); err != nil {
		t.Fatal(err)
	}
}

// TestFullFilesAreDeterministic: the same data gives the same bytes.
func TestFullFilesAreDeterministic(t *testing.T) {
	db := openDB(t)
	r := keygroup.Range{Start: 0, End: 128}
	fixture(t, db, 128, r)
	for _, c := range compressions {
		a, _ := snap(t, db, 128, r, c)
		b, _ := snap(t, db, 128, r, c)
		if !bytes.Equal(a, b) {
			t.Fatalf("%s: two snapshots of the same data differ", c)
		}
	}
}

// TestFullCorruptLengthAllocation: a corrupt length field in a tiny block
// must fail without allocating anywhere near what it claims: a restore of a
// damaged checkpoint must not be able to exhaust memory.
func TestFullCorruptLengthAllocation(t *testing.T) {
	for _, claim := range []uint64{1 << 20, 1<<30 - 1, 1 << 30} {
		rec := binary.AppendUvarint([]byte{0, 1}, claim) // state 1, key of claim bytes
		rec = append(rec, "only a few bytes"...)
		file := append(header(full.None, 1), rec...)
		crc := crc32.Checksum(rec, crc32.MakeTable(crc32.Castagnoli))
		br, err := full.NewBlockReader(bytes.NewReader(file), fileName, int64(len(file)), "none", 128)
		if err != nil {
			t.Fatal(err)
		}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		err = br.Read(snapshot.Block{KeyGroup: 0, Offset: 16, Length: int64(len(rec)), CRC32C: crc, Entries: 1},
			func(uint16, []byte, []byte) error { return nil })
		runtime.ReadMemStats(&after)
		br.Close()
		wantCorrupt(t, err, "key group 0 at offset 16")
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 64<<20 {
			t.Errorf("BUG: a %d-byte block claiming a %d-byte key made the reader allocate %d MiB before failing",
				len(rec), claim, alloc>>20)
		}
	}
}
