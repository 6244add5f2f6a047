package restore

import (
	"bytes"
	"context"
	"fmt"
	"sort"

	"github.com/pebblestate/pebblestate/internal/keys"
)

// ingest ingests the groups of SSTs one after the other, then excises the
// parts of tables ingested whole that the new instance does not own: key
// groups outside its range, and the backend records (state id 0) of the
// handles the tables came from. Excising those records takes the new
// instance's own with them, so they are read before the ingestion and
// written back after it.
func (b *builder) ingest(ctx context.Context, groups [][]string) error {
	db := b.t.DB
	cuts := mergeSpans(b.excise)
	var records [][2][]byte
	if len(cuts) > 0 && bytes.Compare(cuts[0].lo, systemEnd()) < 0 {
		var err error
		if records, err = systemRecords(db); err != nil {
			return err
		}
	}
	for _, g := range groups {
		if err := db.Ingest(ctx, g); err != nil {
			return fmt.Errorf("ingest: %w", err)
		}
	}
	for _, c := range cuts {
		if err := db.Excise(ctx, c.lo, c.hi); err != nil {
			return fmt.Errorf("excise %x..%x after ingestion: %w", c.lo, c.hi, err)
		}
	}
	for _, r := range records {
		if err := db.Set(r[0], r[1]); err != nil {
			return fmt.Errorf("write back the backend records: %w", err)
		}
	}
	return nil
}

// systemEnd is the first key past the backend's own records.
func systemEnd() []byte { return keys.AppendStateID(nil, keys.SystemID+1) }

// systemRecords returns copies of the backend's own records in db.
func systemRecords(db DB) ([][2][]byte, error) {
	it, err := db.NewIter(nil, systemEnd())
	if err != nil {
		return nil, fmt.Errorf("read the backend records: %w", err)
	}
	var out [][2][]byte
	for valid := it.First(); valid; valid = it.Next() {
		v, err := it.Value()
		if err != nil {
			it.Close()
			return nil, fmt.Errorf("read the backend records: %w", err)
		}
		out = append(out, [2][]byte{bytes.Clone(it.Key()), bytes.Clone(v)})
	}
	if err := it.Close(); err != nil {
		return nil, fmt.Errorf("read the backend records: %w", err)
	}
	return out, nil
}

// mergeSpans returns the union of spans as disjoint spans sorted by key.
func mergeSpans(spans []span) []span {
	spans = append([]span(nil), spans...)
	sort.Slice(spans, func(i, j int) bool { return bytes.Compare(spans[i].lo, spans[j].lo) < 0 })
	var out []span
	for _, s := range spans {
		if bytes.Compare(s.lo, s.hi) >= 0 {
			continue
		}
		if n := len(out); n > 0 && bytes.Compare(s.lo, out[n-1].hi) <= 0 {
			if bytes.Compare(s.hi, out[n-1].hi) > 0 {
				out[n-1].hi = s.hi
			}
			continue
		}
		out = append(out, s)
	}
	return out
}
