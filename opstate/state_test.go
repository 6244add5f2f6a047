package opstate_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/pebblestate/pebblestate/backend"
	"github.com/pebblestate/pebblestate/opstate"
	"github.com/pebblestate/pebblestate/snapshot"
)

func TestNewChecksTheSubtask(t *testing.T) {
	for _, c := range []struct{ mp, p, i int }{{0, 1, 0}, {4, 5, 0}, {4, 2, 2}, {4, 2, -1}, {1<<15 + 1, 1, 0}, {4, 0, 0}} {
		if _, err := opstate.New(c.mp, c.p, c.i); err == nil {
			t.Errorf("New(%d, %d, %d) accepted", c.mp, c.p, c.i)
		}
	}
	s, err := opstate.New(10, 3, 1)
	noErr(t, err)
	want, _ := backend.KeyGroupRangeForSubtask(10, 3, 1)
	if s.KeyGroups() != want || s.MaxParallelism() != 10 || s.Parallelism() != 3 || s.Index() != 1 {
		t.Fatalf("subtask: %v %d %d %d", s.KeyGroups(), s.MaxParallelism(), s.Parallelism(), s.Index())
	}
}

func TestListModes(t *testing.T) {
	s, err := opstate.New(4, 1, 0)
	noErr(t, err)
	l, err := s.List("offsets", opstate.Split)
	noErr(t, err)
	l.Add([]byte("a"), []byte("b"))
	again, err := s.List("offsets", opstate.Split)
	noErr(t, err)
	if again != l || again.Len() != 2 || again.Name() != "offsets" || again.Mode() != opstate.Split {
		t.Fatalf("the same list asked again: %+v", again)
	}
	if _, err := s.List("offsets", opstate.Union); !errors.Is(err, opstate.ErrModeMismatch) || !strings.Contains(err.Error(), `"offsets" is split`) {
		t.Fatalf("mode mismatch: %v", err)
	}
	if _, err := s.List("", opstate.Split); err == nil {
		t.Fatal("empty name accepted")
	}
	if _, err := s.List("x", 0); err == nil {
		t.Fatal("mode 0 accepted")
	}
	if _, err := s.List("x", 3); err == nil {
		t.Fatal("mode 3 accepted")
	}
	if got := s.Lists(); !slices.Equal(got, []string{"offsets"}) {
		t.Fatalf("a refused List call declared a list: %q", got)
	}
	if opstate.Split.String() != "split" || opstate.Union.String() != "union" || opstate.Mode(9).String() != "mode(9)" {
		t.Fatal("Mode.String")
	}
}

// TestListOwnsItsBytes: entries are copied in, so the caller's buffers
// may be reused, and Entries is a new slice.
func TestListOwnsItsBytes(t *testing.T) {
	s, err := opstate.New(4, 1, 0)
	noErr(t, err)
	l, err := s.List("l", opstate.Union)
	noErr(t, err)
	buf := []byte("one")
	l.Add(buf)
	copy(buf, "two")
	es := l.Entries()
	es[0] = []byte("three")
	if got := bytesList(l.Entries()); !slices.Equal(got, []string{"one"}) {
		t.Fatalf("entries %q", got)
	}
	l.Update([][]byte{[]byte("x"), []byte("y")})
	if got := bytesList(l.Entries()); !slices.Equal(got, []string{"x", "y"}) {
		t.Fatalf("after Update: %q", got)
	}
	l.Clear()
	if l.Len() != 0 || l.Entries() != nil {
		t.Fatalf("after Clear: %q", l.Entries())
	}
	if _, err := s.List("l", opstate.Union); err != nil {
		t.Fatal("a cleared list lost its mode:", err)
	}
}

func TestPositions(t *testing.T) {
	s, err := opstate.New(8, 2, 1) // key groups [4, 8)
	noErr(t, err)
	for _, kg := range []int{-1, 0, 3, 8, 100} {
		if err := s.SetPosition(kg, []byte("p")); !errors.Is(err, opstate.ErrKeyGroupOutOfRange) || !strings.Contains(err.Error(), fmt.Sprint(kg)) {
			t.Fatalf("SetPosition(%d): %v", kg, err)
		}
		if err := s.DeletePosition(kg); !errors.Is(err, opstate.ErrKeyGroupOutOfRange) {
			t.Fatalf("DeletePosition(%d): %v", kg, err)
		}
		if err := s.SetPositionInt64(kg, 1); !errors.Is(err, opstate.ErrKeyGroupOutOfRange) {
			t.Fatalf("SetPositionInt64(%d): %v", kg, err)
		}
	}
	buf := []byte("at 7")
	noErr(t, s.SetPosition(7, buf))
	copy(buf, "XXXX")
	noErr(t, s.SetPositionInt64(4, -5))
	noErr(t, s.SetPosition(5, nil))
	if b, ok := s.Position(7); !ok || string(b) != "at 7" {
		t.Fatalf("Position(7) = %q, %v", b, ok)
	}
	if v, ok, err := s.PositionInt64(4); err != nil || !ok || v != -5 {
		t.Fatalf("PositionInt64(4) = %d, %v, %v", v, ok, err)
	}
	if _, _, err := s.PositionInt64(7); err == nil {
		t.Fatal("PositionInt64 of 4 bytes succeeded")
	}
	if _, ok, err := s.PositionInt64(6); ok || err != nil {
		t.Fatalf("PositionInt64 of a key group without: %v %v", ok, err)
	}
	var kgs []int
	for kg := range s.Positions() {
		kgs = append(kgs, kg)
		if kg == 5 {
			break
		}
	}
	if !slices.Equal(kgs, []int{4, 5}) {
		t.Fatalf("Positions (stopped at 5): %v", kgs)
	}
	noErr(t, s.DeletePosition(7))
	if _, ok := s.Position(7); ok {
		t.Fatal("deleted position still there")
	}
}

// TestSnapshotIsOfTheBarrier: changes after Snapshot do not reach it.
func TestSnapshotIsOfTheBarrier(t *testing.T) {
	ctx := context.Background()
	st, err := snapshot.NewLocal(t.TempDir())
	noErr(t, err)
	s := exampleState(t)
	sn, err := s.Snapshot()
	noErr(t, err)
	want := describe(s)
	l, _ := s.List("splits", opstate.Split)
	l.Add([]byte("later"))
	noErr(t, s.SetPositionInt64(2, 7))
	ref, err := sn.Write(ctx, st, 3, "src")
	noErr(t, err)
	if ref.Operator != "src" || ref.Subtask != 1 || ref.Parallelism != 2 || ref.MaxParallelism != 4 ||
		ref.Size != sn.Size() || !strings.HasPrefix(ref.Name, "chk-3/op-") || !strings.HasSuffix(ref.Name, ".dat") || len(ref.Name) != len("chk-3/op-.dat")+32 {
		t.Fatalf("ref %+v", ref)
	}
	got, err := opstate.Read(ctx, st, ref)
	noErr(t, err)
	if describe(got) != want {
		t.Fatalf("read back:\n%s\nwant\n%s", describe(got), want)
	}
	// Two writes of one snapshot never take one name.
	ref2, err := sn.Write(ctx, st, 3, "src")
	noErr(t, err)
	if ref2.Name == ref.Name {
		t.Fatal("two writes took one name")
	}
}

// randomState fills a new state of subtask i of p at max parallelism mp
// with random lists (names from a small set, each with a fixed mode) and
// positions.
func randomState(t testing.TB, rng *rand.Rand, mp, p, i int) *opstate.State {
	t.Helper()
	s, err := opstate.New(mp, p, i)
	noErr(t, err)
	for _, name := range []string{"a", "b", "c", "splits", "union"} {
		if rng.IntN(3) == 0 {
			continue
		}
		mode := opstate.Split
		if name == "union" || name == "c" {
			mode = opstate.Union
		}
		l, err := s.List(name, mode)
		noErr(t, err)
		for range rng.IntN(7) {
			e := make([]byte, rng.IntN(5))
			for j := range e {
				e[j] = byte(rng.IntN(256))
			}
			l.Add(e)
		}
	}
	kg := s.KeyGroups()
	for k := kg.Start; k < kg.End; k++ {
		if rng.IntN(2) == 0 {
			noErr(t, s.SetPositionInt64(k, rng.Int64()))
		}
	}
	return s
}

func TestEncodeDecodeRandom(t *testing.T) {
	seed := rand.Uint64()
	rng := rand.New(rand.NewPCG(seed, 0))
	for range 200 {
		mp := 1 + rng.IntN(40)
		p := 1 + rng.IntN(mp)
		s := randomState(t, rng, mp, p, rng.IntN(p))
		b, err := opstate.Encode(s)
		noErr(t, err)
		got, err := opstate.Decode("f", b)
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		if describe(got) != describe(s) {
			t.Fatalf("seed %d: round trip:\n%s\nwant\n%s", seed, describe(got), describe(s))
		}
	}
}
