package keygroup_test

import (
	"bufio"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/pebblestate/pebblestate/internal/keygroup"
)

// TestMurmur3_PublishedVectors checks Murmur3 against published
// MurmurHash3_x86_32 test vectors (SMHasher's reference implementation).
func TestMurmur3_PublishedVectors(t *testing.T) {
	for _, v := range []struct {
		data string
		seed uint32
		want uint32
	}{
		{"", 0, 0},
		{"", 1, 0x514E28B7},
		{"", 0xffffffff, 0x81F16F39},
		{"\x00", 0, 0x514E28B7},
		{"\x00\x00", 0, 0x30F4C306},
		{"\x00\x00\x00", 0, 0x85F0B427},
		{"\x00\x00\x00\x00", 0, 0x2362F9DE},
		{"\xff\xff\xff\xff", 0, 0x76293B50},
		{"\x21", 0, 0x72661CF4},
		{"\x21\x43", 0, 0xA0F7B07A},
		{"\x21\x43\x65", 0, 0x7E4A8634},
		{"\x21\x43\x65\x87", 0, 0xF55B516B},
		{"\x21\x43\x65\x87", 0x5082EDEE, 0x2362F9DE},
		{"hello", 0, 0x248BFA47},
		{"test", 0, 0xBA6BD213},
		{"Hello, world!", 0, 0xC0363E43},
		{"Hello, world!", 1234, 0xFAF6CDB3},
		{"Hello, world!", 0x9747b28c, 0x24884CBA},
		{"The quick brown fox jumps over the lazy dog", 0, 0x2E4FF723},
		{"The quick brown fox jumps over the lazy dog", 0x9747b28c, 0x2FA826CD},
		{"a", 0x9747b28c, 0x7FA09EA6},
		{"aa", 0x9747b28c, 0x5D211726},
		{"aaa", 0x9747b28c, 0x283E0130},
		{"aaaa", 0x9747b28c, 0x5A97808A},
		{"ab", 0x9747b28c, 0x74875592},
		{"abc", 0x9747b28c, 0xC84A62DD},
		{"abcd", 0x9747b28c, 0xF0478627},
		{"ππππππππ", 0x9747b28c, 0xD58063C1},
	} {
		if got := keygroup.Murmur3([]byte(v.data), v.seed); got != v.want {
			t.Errorf("Murmur3(%q, %#x) = %#08x, want %#08x", v.data, v.seed, got, v.want)
		}
	}
}

// TestAssign checks that Assign is the hash modulo the max parallelism,
// within range, and equal to AssignUnchecked.
func TestAssign(t *testing.T) {
	for _, maxP := range []int{1, 2, 127, 128, 129, 1000, 32768} {
		for i := range 200 {
			key := []byte(fmt.Sprint("key-", i))
			kg, err := keygroup.Assign(key, maxP)
			if err != nil {
				t.Fatal(err)
			}
			if want := int(keygroup.Murmur3(key, 0) % uint32(maxP)); kg != want || kg < 0 || kg >= maxP {
				t.Fatalf("Assign(%q, %d) = %d, want %d", key, maxP, kg, want)
			}
			if u := keygroup.AssignUnchecked(key, maxP); u != kg {
				t.Fatalf("AssignUnchecked = %d, Assign = %d", u, kg)
			}
		}
	}
}

// TestAssign_InvalidMaxParallelism checks the argument check.
func TestAssign_InvalidMaxParallelism(t *testing.T) {
	for _, maxP := range []int{0, -1, keygroup.MaxParallelismLimit + 1} {
		if _, err := keygroup.Assign([]byte("k"), maxP); !errors.Is(err, keygroup.ErrInvalidArgument) {
			t.Errorf("Assign(maxP=%d) = %v, want ErrInvalidArgument", maxP, err)
		}
	}
	if keygroup.MaxParallelismLimit != 32768 {
		t.Errorf("MaxParallelismLimit = %d, want 32768", keygroup.MaxParallelismLimit)
	}
}

// TestAssign_GoldenVectors checks Assign against the vectors pinned in
// testdata/keygroup_vectors.txt: the key-group assignment of stored data
// must never change.
func TestAssign_GoldenVectors(t *testing.T) {
	f, err := os.Open("../../testdata/keygroup_vectors.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	n, line := 0, 0
	maxPs := map[int]bool{}
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		fields := strings.Fields(text)
		if len(fields) != 3 {
			t.Fatalf("line %d: %d fields, want 3: %q", line, len(fields), text)
		}
		var key []byte
		if fields[0] != "-" {
			if key, err = hex.DecodeString(fields[0]); err != nil {
				t.Fatalf("line %d: key: %v", line, err)
			}
		}
		maxP, err1 := strconv.Atoi(fields[1])
		want, err2 := strconv.Atoi(fields[2])
		if err1 != nil || err2 != nil {
			t.Fatalf("line %d: %q: bad numbers", line, text)
		}
		got, err := keygroup.Assign(key, maxP)
		if err != nil {
			t.Fatalf("line %d: Assign: %v", line, err)
		}
		if got != want {
			t.Errorf("line %d: Assign(%x, %d) = %d, want %d", line, key, maxP, got, want)
		}
		maxPs[maxP] = true
		n++
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if n < 40 {
		t.Fatalf("only %d vectors in the golden file", n)
	}
	for _, maxP := range []int{1, 128, 129, 1000, 32768} {
		if !maxPs[maxP] {
			t.Errorf("no golden vector for max parallelism %d", maxP)
		}
	}
}

// TestRange checks Len, IsEmpty, Contains, Intersect, String and Validate.
func TestRange(t *testing.T) {
	r := keygroup.Range{Start: 10, End: 20}
	if r.Len() != 10 || r.IsEmpty() || !r.Contains(10) || !r.Contains(19) || r.Contains(20) || r.Contains(9) {
		t.Errorf("Range %v: Len %d, IsEmpty %v, Contains wrong", r, r.Len(), r.IsEmpty())
	}
	if s := r.String(); s != "[10, 20)" {
		t.Errorf("String = %q", s)
	}
	for _, e := range []keygroup.Range{{}, {Start: 5, End: 5}, {Start: 6, End: 5}} {
		if e.Len() != 0 || !e.IsEmpty() || e.Contains(5) {
			t.Errorf("%v: Len %d, IsEmpty %v", e, e.Len(), e.IsEmpty())
		}
	}
	for _, c := range []struct{ a, b, want keygroup.Range }{
		{r, keygroup.Range{Start: 15, End: 30}, keygroup.Range{Start: 15, End: 20}},
		{r, keygroup.Range{Start: 0, End: 11}, keygroup.Range{Start: 10, End: 11}},
		{r, keygroup.Range{Start: 12, End: 13}, keygroup.Range{Start: 12, End: 13}},
		{r, keygroup.Range{Start: 20, End: 30}, keygroup.Range{}},
		{r, keygroup.Range{Start: 0, End: 10}, keygroup.Range{}},
		{r, keygroup.Range{}, keygroup.Range{}},
	} {
		if got := c.a.Intersect(c.b); got != c.want {
			t.Errorf("%v ∩ %v = %v, want %v", c.a, c.b, got, c.want)
		}
		if got := c.b.Intersect(c.a); got != c.want {
			t.Errorf("%v ∩ %v = %v, want %v", c.b, c.a, got, c.want)
		}
	}
	for _, c := range []struct {
		r    keygroup.Range
		maxP int
		ok   bool
	}{
		{keygroup.Range{Start: 0, End: 128}, 128, true},
		{keygroup.Range{Start: 127, End: 128}, 128, true},
		{keygroup.Range{Start: 0, End: 129}, 128, false},
		{keygroup.Range{Start: -1, End: 5}, 128, false},
		{keygroup.Range{Start: 5, End: 5}, 128, false},
		{keygroup.Range{Start: 0, End: 1}, 0, false},
		{keygroup.Range{Start: 0, End: 1}, 32769, false},
	} {
		err := c.r.Validate(c.maxP)
		if (err == nil) != c.ok || (err != nil && !errors.Is(err, keygroup.ErrInvalidArgument)) {
			t.Errorf("%v.Validate(%d) = %v, want ok=%v", c.r, c.maxP, err, c.ok)
		}
	}
}

// TestRangeForSubtask_CoversAllKeyGroups checks, for many (maxP, p), that
// the subtasks' ranges are non-empty, contiguous, balanced within one key
// group, cover [0, maxP), match Flink's formula (computed here with its
// inclusive end), and that SubtaskForKeyGroup inverts them.
func TestRangeForSubtask_CoversAllKeyGroups(t *testing.T) {
	maxPs := []int{1, 2, 3, 7, 10, 128, 129, 1000, 4096, 32768}
	for _, maxP := range maxPs {
		ps := []int{1, 2, 3, 4, 5, 7, 16, 100, 127, 128, 129, 1000, 32767, maxP / 2, maxP - 1, maxP}
		for _, p := range ps {
			if p < 1 || p > maxP {
				continue
			}
			next, minLen, maxLen := 0, maxP, 0
			for i := range p {
				r, err := keygroup.RangeForSubtask(maxP, p, i)
				if err != nil {
					t.Fatalf("RangeForSubtask(%d, %d, %d): %v", maxP, p, i, err)
				}
				// Flink's KeyGroupRangeAssignment, inclusive end.
				start := (i*maxP + p - 1) / p
				endIncl := ((i+1)*maxP - 1) / p
				if r.Start != start || r.End != endIncl+1 {
					t.Fatalf("RangeForSubtask(%d, %d, %d) = %v, Flink says [%d, %d]", maxP, p, i, r, start, endIncl)
				}
				if r.Start != next || r.IsEmpty() {
					t.Fatalf("RangeForSubtask(%d, %d, %d) = %v, want it to start at %d and be non-empty", maxP, p, i, r, next)
				}
				next = r.End
				minLen, maxLen = min(minLen, r.Len()), max(maxLen, r.Len())
				for _, kg := range []int{r.Start, r.End - 1, (r.Start + r.End) / 2} {
					owner, err := keygroup.SubtaskForKeyGroup(maxP, p, kg)
					if err != nil || owner != i {
						t.Fatalf("SubtaskForKeyGroup(%d, %d, %d) = %d, %v; want %d", maxP, p, kg, owner, err, i)
					}
				}
			}
			if next != maxP {
				t.Fatalf("maxP %d, p %d: ranges end at %d", maxP, p, next)
			}
			if maxLen-minLen > 1 {
				t.Fatalf("maxP %d, p %d: range sizes from %d to %d", maxP, p, minLen, maxLen)
			}
		}
	}
}

// TestSubtaskForKeyGroup_EveryKeyGroup checks the inverse for every key
// group of a few configurations.
func TestSubtaskForKeyGroup_EveryKeyGroup(t *testing.T) {
	for _, c := range []struct{ maxP, p int }{{128, 3}, {1000, 7}, {32768, 100}, {129, 128}} {
		for kg := range c.maxP {
			i, err := keygroup.SubtaskForKeyGroup(c.maxP, c.p, kg)
			if err != nil {
				t.Fatal(err)
			}
			r, err := keygroup.RangeForSubtask(c.maxP, c.p, i)
			if err != nil || !r.Contains(kg) {
				t.Fatalf("key group %d of %v: subtask %d owns %v", kg, c, i, r)
			}
		}
	}
}

// TestRangeForSubtask_InvalidArguments checks the argument checks of
// RangeForSubtask and SubtaskForKeyGroup.
func TestRangeForSubtask_InvalidArguments(t *testing.T) {
	for _, c := range []struct{ maxP, p, i int }{
		{0, 1, 0}, {32769, 1, 0}, {128, 0, 0}, {128, -1, 0}, {128, 129, 0}, {128, 4, -1}, {128, 4, 4},
	} {
		if _, err := keygroup.RangeForSubtask(c.maxP, c.p, c.i); !errors.Is(err, keygroup.ErrInvalidArgument) {
			t.Errorf("RangeForSubtask%v = %v, want ErrInvalidArgument", c, err)
		}
	}
	for _, c := range []struct{ maxP, p, kg int }{
		{0, 1, 0}, {128, 0, 0}, {128, 129, 0}, {128, 4, -1}, {128, 4, 128},
	} {
		if _, err := keygroup.SubtaskForKeyGroup(c.maxP, c.p, c.kg); !errors.Is(err, keygroup.ErrInvalidArgument) {
			t.Errorf("SubtaskForKeyGroup%v = %v, want ErrInvalidArgument", c, err)
		}
	}
}

// TestDefaultMaxParallelism checks Flink's rule: the next power of two of
// p + p/2, clamped to [128, 32768].
func TestDefaultMaxParallelism(t *testing.T) {
	for p, want := range map[int]int{
		1: 128, 2: 128, 64: 128, 85: 128, 86: 256, 100: 256, 170: 256, 171: 256, 172: 512,
		1000: 2048, 20000: 32768, 21845: 32768, 21846: 32768, 32768: 32768,
	} {
		got, err := keygroup.DefaultMaxParallelism(p)
		if err != nil || got != want {
			t.Errorf("DefaultMaxParallelism(%d) = %d, %v; want %d", p, got, err, want)
		}
	}
	for _, p := range []int{0, -1, 32769} {
		if _, err := keygroup.DefaultMaxParallelism(p); !errors.Is(err, keygroup.ErrInvalidArgument) {
			t.Errorf("DefaultMaxParallelism(%d) = %v, want ErrInvalidArgument", p, err)
		}
	}
}
