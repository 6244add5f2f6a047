package main

import (
	"cmp"
	"errors"
	"fmt"
	"iter"
	"maps"
	"slices"

	"github.com/pebblestate/pebblestate/backend"
)

// errMismatch marks every difference between reopened state and the tally.
var errMismatch = errors.New("state did not survive reopen")

func mismatch(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errMismatch}, args...)...)
}

// auctionRow and sellerRow are keys read back from state, for the summary.
type auctionRow struct {
	id, bids int64
	prices   []int64
	channels int
}

type sellerRow struct {
	id, auctions int64
	categories   map[int64]int64
}

// verified is what verification read back.
type verified struct {
	keys     int
	auctions []auctionRow
	sellers  []sellerRow
}

// verify checks the state of every subtask of both operators against the
// tally: each state's keys (found with KeysInNamespace) are exactly the
// tally's keys that the subtask owns, and every key's value, list and map
// are the tally's.
func (j *job) verify(t *tally) (*verified, error) {
	v := &verified{}
	if err := j.verifyAuctions(t, v); err != nil {
		return nil, err
	}
	if err := j.verifySellers(t, v); err != nil {
		return nil, err
	}
	v.keys = len(v.auctions) + len(v.sellers)
	slices.SortFunc(v.auctions, func(a, b auctionRow) int { return cmp.Or(cmp.Compare(b.bids, a.bids), cmp.Compare(a.id, b.id)) })
	slices.SortFunc(v.sellers, func(a, b sellerRow) int { return cmp.Or(cmp.Compare(b.auctions, a.auctions), cmp.Compare(a.id, b.id)) })
	return v, nil
}

func (j *job) verifyAuctions(t *tally, v *verified) error {
	op := j.byAuction
	for i, b := range op.backends {
		s := op.states[i]
		where := fmt.Sprintf("%s subtask %d", op.name, i)
		keys, err := sameKeys(where, map[string]iter.Seq2[int64, error]{
			"bid-count":        s.bids.KeysInNamespace(backend.VoidNamespace{}),
			"recent-prices":    s.prices.KeysInNamespace(backend.VoidNamespace{}),
			"bids-per-channel": s.channels.KeysInNamespace(backend.VoidNamespace{}),
		})
		if err != nil {
			return err
		}
		for _, k := range keys {
			want, ok := t.auctions[k]
			if !ok {
				return mismatch("%s: auction %d is in state but had no bids", where, k)
			}
			if err := b.SetCurrentKey(k); err != nil {
				return mismatch("%s: auction %d: %v", where, k, err)
			}
			n, _, err := s.bids.Get()
			if err != nil {
				return fmt.Errorf("%s: auction %d: %w", where, k, err)
			}
			if n != want.bids {
				return mismatch("%s: auction %d: bid-count is %d, want %d", where, k, n, want.bids)
			}
			ps, err := s.prices.Get()
			if err != nil {
				return fmt.Errorf("%s: auction %d: %w", where, k, err)
			}
			if !slices.Equal(ps, want.prices) {
				return mismatch("%s: auction %d: recent-prices is %v, want %v", where, k, ps, want.prices)
			}
			chans, err := collect(s.channels.Entries())
			if err != nil {
				return fmt.Errorf("%s: auction %d: %w", where, k, err)
			}
			if !maps.Equal(chans, want.channels) {
				return mismatch("%s: auction %d: bids-per-channel has %d channels %s, want %d %s",
					where, k, len(chans), preview(chans), len(want.channels), preview(want.channels))
			}
			v.auctions = append(v.auctions, auctionRow{id: k, bids: n, prices: ps, channels: len(chans)})
		}
	}
	return allFound(op.name, "auction", len(v.auctions), maps.Keys(t.auctions), func(k int64) bool {
		return slices.ContainsFunc(v.auctions, func(r auctionRow) bool { return r.id == k })
	})
}

func (j *job) verifySellers(t *tally, v *verified) error {
	op := j.bySeller
	for i, b := range op.backends {
		s := op.states[i]
		where := fmt.Sprintf("%s subtask %d", op.name, i)
		keys, err := sameKeys(where, map[string]iter.Seq2[int64, error]{
			"auctions-per-category": s.categories.KeysInNamespace(backend.VoidNamespace{}),
		})
		if err != nil {
			return err
		}
		for _, k := range keys {
			want, ok := t.sellers[k]
			if !ok {
				return mismatch("%s: seller %d is in state but opened no auctions", where, k)
			}
			if err := b.SetCurrentKey(k); err != nil {
				return mismatch("%s: seller %d: %v", where, k, err)
			}
			cats, err := collect(s.categories.Entries())
			if err != nil {
				return fmt.Errorf("%s: seller %d: %w", where, k, err)
			}
			if !maps.Equal(cats, want) {
				return mismatch("%s: seller %d: auctions-per-category is %v, want %v", where, k, cats, want)
			}
			var total int64
			for _, c := range cats {
				total += c
			}
			v.sellers = append(v.sellers, sellerRow{id: k, auctions: total, categories: cats})
		}
	}
	return allFound(op.name, "seller", len(v.sellers), maps.Keys(t.sellers), func(k int64) bool {
		return slices.ContainsFunc(v.sellers, func(r sellerRow) bool { return r.id == k })
	})
}

// sameKeys collects the keys of each named state of one subtask, checks
// that every state holds the same keys, each once, and returns them.
func sameKeys(where string, states map[string]iter.Seq2[int64, error]) ([]int64, error) {
	var first string
	var keys []int64
	for _, name := range slices.Sorted(maps.Keys(states)) {
		var ks []int64
		for k, err := range states[name] {
			if err != nil {
				return nil, fmt.Errorf("%s: keys of %s: %w", where, name, err)
			}
			ks = append(ks, k)
		}
		slices.Sort(ks)
		for i := 1; i < len(ks); i++ {
			if ks[i] == ks[i-1] {
				return nil, mismatch("%s: %s yields key %d twice", where, name, ks[i])
			}
		}
		if keys == nil {
			first, keys = name, ks
			continue
		}
		if !slices.Equal(ks, keys) {
			return nil, mismatch("%s: %s holds %d keys but %s holds %d; key %d is in one only",
				where, name, len(ks), first, len(keys), firstDifference(ks, keys))
		}
	}
	return keys, nil
}

// firstDifference returns the smallest key in one of the sorted slices a
// and b but not the other; they must differ.
func firstDifference(a, b []int64) int64 {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return min(a[i], b[i])
		}
	}
	if len(a) > len(b) {
		return a[len(b)]
	}
	return b[len(a)]
}

// allFound checks that the found keys cover the tally: as every found key
// is in the tally and owned by one subtask only, equal counts mean equal
// sets. Otherwise it names a missing key.
func allFound(op, what string, found int, want iter.Seq[int64], isFound func(int64) bool) error {
	all := slices.Sorted(want)
	if found == len(all) {
		return nil
	}
	for _, k := range all {
		if !isFound(k) {
			return mismatch("%s: %s %d is in no subtask's state (found %d of %d keys)", op, what, k, found, len(all))
		}
	}
	return mismatch("%s: found %d keys, want %d", op, found, len(all))
}

// collect reads a map state's entries into a Go map.
func collect[UK comparable, UV any](entries iter.Seq2[backend.Entry[UK, UV], error]) (map[UK]UV, error) {
	m := map[UK]UV{}
	for e, err := range entries {
		if err != nil {
			return nil, err
		}
		m[e.Key] = e.Value
	}
	return m, nil
}

// preview formats up to four entries of m in key order.
func preview[K cmp.Ordered, V any](m map[K]V) string {
	ks := slices.Sorted(maps.Keys(m))
	s := "{"
	for i, k := range ks[:min(4, len(ks))] {
		if i > 0 {
			s += " "
		}
		s += fmt.Sprintf("%v:%v", k, m[k])
	}
	if len(ks) > 4 {
		s += " ..."
	}
	return s + "}"
}
