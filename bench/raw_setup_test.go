package bench

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble/v2"

	"github.com/pebblestate/pebblestate/backend"
	"github.com/pebblestate/pebblestate/internal/keygroup"
	"github.com/pebblestate/pebblestate/internal/keys"
)

// rawPebbleOptions returns the Pebble options the backend opens its
// database with for backend.Options at their defaults (and EnableWAL as
// given), from the backend itself, so the baselines run on exactly the
// backend's options.
func rawPebbleOptions(cache *pebble.Cache, enableWAL bool) *pebble.Options {
	return backend.Options{Dir: "unused", EnableWAL: enableWAL}.PebbleOptions(cache)
}

// rawDB is a Pebble database with its own block cache of the backend's
// default size.
type rawDB struct {
	*pebble.DB
	cache *pebble.Cache
}

func openRawDir(dir string, enableWAL bool) (*rawDB, error) {
	cache := pebble.NewCache(backend.DefaultBlockCacheSize)
	db, err := pebble.Open(dir, rawPebbleOptions(cache, enableWAL))
	if err != nil {
		cache.Unref()
		return nil, err
	}
	return &rawDB{DB: db, cache: cache}, nil
}

// close flushes (the WAL may be off, and Pebble's Close does not flush)
// and closes the database.
func (r *rawDB) close() error {
	ferr := r.Flush()
	err := r.DB.Close()
	r.cache.Unref()
	if ferr != nil {
		return ferr
	}
	return err
}

// openRaw opens a clone of f with raw Pebble and closes it when the
// benchmark ends.
func openRaw(tb testing.TB, f *fixture, enableWAL bool) *rawDB {
	tb.Helper()
	db, err := openRawDir(f.clone(tb), enableWAL)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := db.close(); err != nil {
			tb.Error(err)
		}
	})
	return db
}

// warmRaw scans every key of the database once, like warm.
func warmRaw(tb testing.TB, db *rawDB) {
	tb.Helper()
	it, err := db.NewIter(nil)
	if err != nil {
		tb.Fatal(err)
	}
	for valid := it.First(); valid; valid = it.Next() {
	}
	if err := it.Close(); err != nil {
		tb.Fatal(err)
	}
}

// Stored layout. The raw baselines write and read exactly the bytes the
// state benchmarks do (TestRawFixturesMatchState checks it):
//
//	value state key  [state id 2][key group 1][int64 key 8]   = 11 bytes, value 8 bytes
//	map entry key    [value state key 11][int64 map key 8]    = 19 bytes, value 8 bytes (float64)
//	list value       [uvarint length 1][int64 element 8]      = 9 bytes per element and merge operand
const (
	stateKeyLen  = keys.StateIDLen + 1 + 8
	mapKeyLen    = stateKeyLen + 8
	valueLen     = 8
	listElemLen  = 1 + valueLen
	rawStateID   = uint16(1) // the id of the first state registered in a backend
	rawMaxParall = backend.DefaultMaxParallelism
)

// appendStateKey appends the stored key of key k in state id, built the
// way Backend.SetCurrentKey and the states build it.
func appendStateKey(dst []byte, id uint16, k int64) []byte {
	var kb [8]byte
	enc, err := backend.Int64.Append(kb[:0], k)
	if err != nil {
		panic(err)
	}
	kg := keygroup.AssignUnchecked(enc, rawMaxParall)
	dst = keys.AppendStateID(dst, id)
	dst = keys.AppendKeyGroup(dst, kg, keys.KeyGroupBytes(rawMaxParall))
	if dst, err = keys.AppendComponent(dst, enc, 8); err != nil {
		panic(err)
	}
	return dst
}

// appendMapKey appends the stored key of map key uk under key k.
func appendMapKey(dst []byte, id uint16, k, uk int64) []byte {
	return appendInt64(appendStateKey(dst, id, k), uk)
}

// appendInt64, appendFloat64 and appendListElem encode values the way
// backend.Int64, backend.Float64 and List.Add do, but inline, without the
// codec interface (through which a stack buffer would escape and cost the
// raw loops an allocation). TestRawFixturesMatchState checks the bytes.
func appendInt64(dst []byte, v int64) []byte {
	return binary.BigEndian.AppendUint64(dst, uint64(v)^(1<<63))
}

func appendFloat64(dst []byte, v float64) []byte {
	u := math.Float64bits(v)
	if u&(1<<63) != 0 {
		u = ^u
	} else {
		u |= 1 << 63
	}
	return binary.BigEndian.AppendUint64(dst, u)
}

func appendListElem(dst []byte, v int64) []byte {
	return appendInt64(append(dst, valueLen), v) // uvarint length 8, then the element
}

// decodeInt64 is backend.Int64's decoding, inlined as a raw user would.
func decodeInt64(b []byte) int64 { return int64(binary.BigEndian.Uint64(b) ^ (1 << 63)) }

// rawKeyTable holds the stored key of every setup key, precomputed so that
// the raw loops pay nothing for building keys: key k is at
// [k*stateKeyLen, (k+1)*stateKeyLen).
type rawKeyTable []byte

var sharedRawKeys = sync.OnceValue(func() rawKeyTable {
	w, _ := sharedWorkload()
	n := w.setupCount()
	t := make([]byte, 0, n*stateKeyLen)
	for k := range int64(n) {
		t = appendStateKey(t, rawStateID, k)
	}
	return t
})

func getRawKeys(tb testing.TB) rawKeyTable {
	getWorkload(tb) // fail on a bad -keys before building the table
	return sharedRawKeys()
}

func (t rawKeyTable) key(k int64) []byte {
	o := int(k) * stateKeyLen
	return t[o : o+stateKeyLen : o+stateKeyLen]
}

// Raw fixtures: the state fixtures' twins, written with raw Pebble in the
// same order with the same bytes, then flushed.
var (
	rawValueFixture = &fixture{name: "raw-value", build: buildRawValueFixture}
	rawListFixture  = &fixture{name: "raw-list", build: buildRawListFixture}
	rawMapFixture   = &fixture{name: "raw-map", build: buildRawMapFixture}
)

func buildRawValueFixture(dir string, n int) error {
	return buildRaw(dir, func(db *rawDB) error {
		rng := newRand(valueStream)
		var k, v []byte
		for i := range int64(n) {
			k = appendStateKey(k[:0], rawStateID, i)
			v = appendInt64(v[:0], rng.Int64())
			if err := db.Set(k, v, pebble.NoSync); err != nil {
				return err
			}
		}
		return nil
	})
}

// buildRawListFixture is buildListFixture's twin, compacted the way
// Backend.Compact compacts.
func buildRawListFixture(dir string, n int) error {
	return buildRaw(dir, func(db *rawDB) error {
		rng := newRand(listStream)
		var k, v []byte
		for i := range int64(n) {
			k = appendStateKey(k[:0], rawStateID, i)
			v = appendListElem(v[:0], rng.Int64())
			if err := db.Merge(k, v, pebble.NoSync); err != nil {
				return err
			}
		}
		return compactAll(db)
	})
}

// compactAll does what Backend.Compact does: flush, then compact the whole
// key space twice, since one call only reaches the levels that held files
// when it started.
func compactAll(db *rawDB) error {
	if err := db.Flush(); err != nil {
		return err
	}
	lo, hi := []byte{0}, []byte{0xFF, 0xFF, 0xFF}
	for range 2 {
		if err := db.Compact(context.Background(), lo, hi, true /* parallelize */); err != nil {
			return err
		}
	}
	return nil
}

func buildRawMapFixture(dir string, n int) error {
	return buildRaw(dir, func(db *rawDB) error {
		rng := newRand(mapStream)
		var k, v []byte
		batch := db.NewBatch()
		defer batch.Close()
		for i := range int64(n) {
			batch.Reset()
			for j := range int64(mapKeyCount) {
				k = appendMapKey(k[:0], rawStateID, i, j)
				v = appendFloat64(v[:0], rng.Float64())
				if err := batch.Set(k, v, nil); err != nil {
					return err
				}
			}
			if err := batch.Commit(pebble.NoSync); err != nil {
				return err
			}
		}
		return nil
	})
}

func buildRaw(dir string, fill func(*rawDB) error) error {
	db, err := openRawDir(dir, false)
	if err != nil {
		return err
	}
	if err := fill(db); err != nil {
		_ = db.close()
		return fmt.Errorf("raw fixture: %w", err)
	}
	return db.close()
}
