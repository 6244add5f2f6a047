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

// TestMurmur2_KafkaVectors checks Murmur2 against the vectors of Kafka's
// own test of Utils.murmur2 (UtilsTest.testMurmur2), and those other
// Kafka-compatible clients check theirs against (taken from Kafka's
// implementation), as Kafka's signed ints.
func TestMurmur2_KafkaVectors(t *testing.T) {
	for _, v := range []struct {
		data string
		want int32
	}{
		// Kafka's UtilsTest.testMurmur2.
		{"21", -973932308},
		{"foobar", -790332482},
		{"a-little-bit-long-string", -985981536},
		{"a-little-bit-longer-string", -1486304829},
		{"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971},
		{"abc", 479470107},
		// Every tail length, from Kafka's implementation.
		{"1", -1993445489},
		{"12", 126087238},
		{"123", -267702483},
		{"1234", -1614185708},
		{"12345", -1188365604},
	} {
		if got := int32(keygroup.Murmur2([]byte(v.data))); got != v.want {
			t.Errorf("Murmur2(%q) = %d, want %d", v.data, got, v.want)
		}
	}
}

// TestKafkaMurmur2_GoldenVectors checks KafkaPartition and the
// KafkaMurmur2 assigner against testdata/kafka_partition_vectors.txt,
// computed with an independent Kafka client.
func TestKafkaMurmur2_GoldenVectors(t *testing.T) {
	f, err := os.Open("../../testdata/kafka_partition_vectors.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	n, line := 0, 0
	parts := map[int]bool{}
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
		key := []byte{}
		if fields[0] != "-" {
			if key, err = hex.DecodeString(fields[0]); err != nil {
				t.Fatalf("line %d: key: %v", line, err)
			}
		}
		np, err1 := strconv.Atoi(fields[1])
		want, err2 := strconv.Atoi(fields[2])
		if err1 != nil || err2 != nil || np < 1 {
			t.Fatalf("line %d: %q: bad numbers", line, text)
		}
		if got := keygroup.KafkaPartition(key, np); got != want {
			t.Errorf("line %d: KafkaPartition(%x, %d) = %d, want %d", line, key, np, got, want)
		}
		if np <= keygroup.MaxParallelismLimit {
			got, err := keygroup.AssignerKafkaMurmur2.Assign(key, np)
			if err != nil || got != want {
				t.Errorf("line %d: KafkaMurmur2.Assign(%x, %d) = %d, %v; want %d", line, key, np, got, err, want)
			}
		} else if uint32(want) != keygroup.Murmur2(key)&0x7fffffff {
			t.Errorf("line %d: toPositive(Murmur2(%x)) = %d, want %d", line, key, keygroup.Murmur2(key)&0x7fffffff, want)
		}
		parts[np] = true
		n++
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if n < 150 {
		t.Fatalf("only %d vectors in the golden file", n)
	}
	for _, np := range []int{1, 3, 128, 1000, 32768, 1 << 31} {
		if !parts[np] {
			t.Errorf("no golden vector for %d partitions", np)
		}
	}
}

// TestAssigner_Names checks the closed set: names, the recorded form
// (empty for Murmur3, whose records predate it), parsing and refusals.
func TestAssigner_Names(t *testing.T) {
	for _, c := range []struct {
		a              keygroup.Assigner
		name, recorded string
	}{
		{keygroup.AssignerMurmur3, "murmur3", ""},
		{keygroup.AssignerKafkaMurmur2, "kafka-murmur2", "kafka-murmur2"},
	} {
		if c.a.String() != c.name || c.a.Recorded() != c.recorded || !c.a.Valid() {
			t.Errorf("%d: String %q, Recorded %q, Valid %v; want %q, %q, true", c.a, c.a.String(), c.a.Recorded(), c.a.Valid(), c.name, c.recorded)
		}
		for _, s := range []string{c.name, c.recorded} {
			if got, err := keygroup.ParseAssigner(s); err != nil || got != c.a {
				t.Errorf("ParseAssigner(%q) = %v, %v; want %v", s, got, err, c.a)
			}
		}
		if keygroup.DisplayName(c.recorded) != c.name {
			t.Errorf("DisplayName(%q) = %q, want %q", c.recorded, keygroup.DisplayName(c.recorded), c.name)
		}
	}
	var zero keygroup.Assigner
	if zero != keygroup.AssignerMurmur3 {
		t.Error("the zero Assigner is not Murmur3")
	}
	for _, s := range []string{"Murmur3", "murmur2", "kafka", " murmur3"} {
		if _, err := keygroup.ParseAssigner(s); !errors.Is(err, keygroup.ErrInvalidArgument) {
			t.Errorf("ParseAssigner(%q) = %v, want ErrInvalidArgument", s, err)
		}
	}
	bad := keygroup.Assigner(7)
	if bad.Valid() || bad.String() != "Assigner(7)" {
		t.Errorf("Assigner(7): Valid %v, String %q", bad.Valid(), bad.String())
	}
	if _, err := bad.Assign([]byte("k"), 128); !errors.Is(err, keygroup.ErrInvalidArgument) {
		t.Errorf("Assigner(7).Assign = %v, want ErrInvalidArgument", err)
	}
	if _, err := keygroup.AssignerKafkaMurmur2.Assign([]byte("k"), 0); !errors.Is(err, keygroup.ErrInvalidArgument) {
		t.Errorf("KafkaMurmur2.Assign(maxP 0) = %v, want ErrInvalidArgument", err)
	}
}

// TestAssigner_Murmur3IsAssign checks that the Murmur3 assigner is the
// package's Assign, so its golden vectors (TestAssign_GoldenVectors) hold
// for it, and that the two assigners do differ.
func TestAssigner_Murmur3IsAssign(t *testing.T) {
	differ := 0
	for i := range 500 {
		key := []byte(fmt.Sprint("key-", i))
		for _, maxP := range []int{1, 7, 128, 32768} {
			want, _ := keygroup.Assign(key, maxP)
			got, err := keygroup.AssignerMurmur3.Assign(key, maxP)
			if err != nil || got != want {
				t.Fatalf("Murmur3.Assign(%q, %d) = %d, %v; want %d", key, maxP, got, err, want)
			}
			if u := keygroup.AssignerMurmur3.AssignUnchecked(key, maxP); u != want {
				t.Fatalf("Murmur3.AssignUnchecked = %d, want %d", u, want)
			}
			k := keygroup.AssignerKafkaMurmur2.AssignUnchecked(key, maxP)
			if k < 0 || k >= maxP {
				t.Fatalf("KafkaMurmur2.AssignUnchecked(%q, %d) = %d, out of range", key, maxP, k)
			}
			if k != want {
				differ++
			}
		}
	}
	if differ < 1000 {
		t.Errorf("the assigners agree on %d of 2000 (key, max parallelism) pairs; they should mostly differ", 2000-differ)
	}
}

// BenchmarkAssign measures each assigner on a 16-byte key, the cost
// SetCurrentKey pays per key.
func BenchmarkAssign(b *testing.B) {
	key := []byte("user-0000012345!")
	for _, a := range []keygroup.Assigner{keygroup.AssignerMurmur3, keygroup.AssignerKafkaMurmur2} {
		b.Run(a.String(), func(b *testing.B) {
			sum := 0
			for b.Loop() {
				sum += a.AssignUnchecked(key, 128)
			}
			if sum < 0 {
				b.Fatal(sum)
			}
		})
	}
}
