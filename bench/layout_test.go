package bench

import (
	"bytes"
	"path/filepath"
	"testing"

	"github.com/pebblestate/pebblestate/internal/keys"
)

// TestRawFixturesMatchState checks that each raw fixture stores exactly
// the keys and values of its state fixture, so that the raw baselines
// measure Pebble on the very bytes the backend writes. It builds small
// fixtures of its own and does not depend on -keys.
func TestRawFixturesMatchState(t *testing.T) {
	const n = 1000
	for _, tc := range []struct {
		name           string
		state, raw     func(dir string, n int) error
		keyLen, valLen int
		entries        int
	}{
		{"value", buildValueFixture, buildRawValueFixture, stateKeyLen, valueLen, n},
		{"list", buildListFixture, buildRawListFixture, stateKeyLen, listElemLen, n},
		{"map", buildMapFixture, buildRawMapFixture, mapKeyLen, valueLen, n * mapKeyCount},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stateDir, rawDir := filepath.Join(t.TempDir(), "state"), filepath.Join(t.TempDir(), "raw")
			if err := tc.state(stateDir, n); err != nil {
				t.Fatal(err)
			}
			if err := tc.raw(rawDir, n); err != nil {
				t.Fatal(err)
			}
			want := scanState(t, stateDir)
			got := scanState(t, rawDir)
			if len(want) != tc.entries {
				t.Fatalf("state fixture has %d entries, want %d", len(want), tc.entries)
			}
			if len(got) != len(want) {
				t.Fatalf("raw fixture has %d entries, state fixture %d", len(got), len(want))
			}
			for i := range want {
				if !bytes.Equal(got[i][0], want[i][0]) || !bytes.Equal(got[i][1], want[i][1]) {
					t.Fatalf("entry %d: raw %x=%x, state %x=%x", i, got[i][0], got[i][1], want[i][0], want[i][1])
				}
				if len(want[i][0]) != tc.keyLen || len(want[i][1]) != tc.valLen {
					t.Fatalf("entry %d: %d-byte key and %d-byte value, want %d and %d",
						i, len(want[i][0]), len(want[i][1]), tc.keyLen, tc.valLen)
				}
			}
		})
	}
}

// scanState returns every entry of state id rawStateID in dir, opened with
// raw Pebble.
func scanState(t *testing.T, dir string) [][2][]byte {
	t.Helper()
	db, err := openRawDir(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := db.close(); err != nil {
			t.Error(err)
		}
	}()
	lo, hi := keys.StateBounds(rawStateID)
	it, err := db.NewIter(nil)
	if err != nil {
		t.Fatal(err)
	}
	var out [][2][]byte
	for valid := it.SeekGE(lo); valid && bytes.Compare(it.Key(), hi) < 0; valid = it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, [2][]byte{bytes.Clone(it.Key()), bytes.Clone(v)})
	}
	if err := it.Close(); err != nil {
		t.Fatal(err)
	}
	return out
}
