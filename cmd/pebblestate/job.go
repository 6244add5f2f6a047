package main

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/pebblestate/pebblestate/backend"
	"github.com/pebblestate/pebblestate/internal/nexmark"
)

// The demo job has two keyed operators over the Nexmark stream, each run
// as parallel subtasks with one backend per subtask:
//
//   - bids-by-auction keys bids by auction id and keeps, per auction, the
//     number of bids (Value), its recent prices (List) and its bids per
//     channel (Map);
//   - auctions-by-seller keys new auctions by seller id and keeps, per
//     seller, the number of auctions per category (Map).
const (
	opBidsByAuction    = "bids-by-auction"
	opAuctionsBySeller = "auctions-by-seller"
)

// recentPrices is how many recent prices an auction keeps at least: its
// list grows to twice that, then is trimmed back to the newest half.
const recentPrices = 8

// auctionStates are the states of one bids-by-auction subtask.
type auctionStates struct {
	bids     *backend.Value[int64, backend.VoidNamespace, int64]
	prices   *backend.List[int64, backend.VoidNamespace, int64]
	channels *backend.Map[int64, backend.VoidNamespace, string, int64]
}

func registerAuctionStates(b *backend.Backend[int64]) (auctionStates, error) {
	var s auctionStates
	var err [3]error
	s.bids, err[0] = backend.GetValue(b, backend.ValueDescriptor[int64]{Name: "bid-count", Codec: backend.Int64})
	s.prices, err[1] = backend.GetList(b, backend.ListDescriptor[int64]{Name: "recent-prices", Codec: backend.Int64})
	s.channels, err[2] = backend.GetMap(b, backend.MapDescriptor[string, int64]{
		Name: "bids-per-channel", KeyCodec: backend.String, ValueCodec: backend.Int64})
	return s, errors.Join(err[:]...)
}

// sellerStates are the states of one auctions-by-seller subtask.
type sellerStates struct {
	categories *backend.Map[int64, backend.VoidNamespace, int64, int64]
}

func registerSellerStates(b *backend.Backend[int64]) (sellerStates, error) {
	m, err := backend.GetMap(b, backend.MapDescriptor[int64, int64]{
		Name: "auctions-per-category", KeyCodec: backend.Int64, ValueCodec: backend.Int64})
	return sellerStates{categories: m}, err
}

// operator is one keyed operator run as parallel subtasks: subtask i has
// a backend on the key groups KeyGroupRangeForSubtask gives it, in its own
// directory, with the states S registered on it.
type operator[S any] struct {
	name           string
	maxParallelism int
	backends       []*backend.Backend[int64]
	states         []S
}

// openOperator opens (or reopens) the backends of every subtask of the
// operator under root and registers the states on each.
func openOperator[S any](root, name string, parallelism, maxParallelism int,
	register func(*backend.Backend[int64]) (S, error)) (*operator[S], error) {
	op := &operator[S]{name: name, maxParallelism: maxParallelism}
	for i := range parallelism {
		kgs, err := backend.KeyGroupRangeForSubtask(maxParallelism, parallelism, i)
		if err != nil {
			return nil, errors.Join(err, op.close())
		}
		b, err := backend.Open(backend.Int64, backend.Options{
			Dir:            filepath.Join(root, name, fmt.Sprintf("subtask-%d", i)),
			MaxParallelism: maxParallelism,
			KeyGroups:      kgs,
		})
		if err != nil {
			return nil, errors.Join(fmt.Errorf("%s subtask %d: %w", name, i, err), op.close())
		}
		op.backends = append(op.backends, b)
		s, err := register(b)
		if err != nil {
			return nil, errors.Join(fmt.Errorf("%s subtask %d: %w", name, i, err), op.close())
		}
		op.states = append(op.states, s)
	}
	return op, nil
}

// route does what a framework's keyBy does for a record with key k: find
// the subtask owning k's key group, make k its current key, and return
// that subtask's states.
func (op *operator[S]) route(k int64) (S, error) {
	var zero S
	kg, err := backend.KeyGroupOf(backend.Int64, k, op.maxParallelism)
	if err != nil {
		return zero, err
	}
	i, err := backend.SubtaskForKeyGroup(op.maxParallelism, len(op.backends), kg)
	if err != nil {
		return zero, err
	}
	if err := op.backends[i].SetCurrentKey(k); err != nil {
		return zero, err
	}
	return op.states[i], nil
}

// close closes every backend of the operator; closing twice is harmless.
func (op *operator[S]) close() error {
	var errs []error
	for i, b := range op.backends {
		if err := b.Close(); err != nil {
			errs = append(errs, fmt.Errorf("%s subtask %d: %w", op.name, i, err))
		}
	}
	return errors.Join(errs...)
}

// job is the demo's two operators.
type job struct {
	byAuction *operator[auctionStates]
	bySeller  *operator[sellerStates]
	stateOps  int64 // state reads and writes issued
}

func openJob(cfg demoConfig) (*job, error) {
	byAuction, err := openOperator(cfg.dir, opBidsByAuction, cfg.parallelism, cfg.maxParallelism, registerAuctionStates)
	if err != nil {
		return nil, err
	}
	bySeller, err := openOperator(cfg.dir, opAuctionsBySeller, cfg.parallelism, cfg.maxParallelism, registerSellerStates)
	if err != nil {
		return nil, errors.Join(err, byAuction.close())
	}
	return &job{byAuction: byAuction, bySeller: bySeller}, nil
}

func (j *job) backends() int { return len(j.byAuction.backends) + len(j.bySeller.backends) }

func (j *job) close() error { return errors.Join(j.byAuction.close(), j.bySeller.close()) }

// process applies one event to state and to the tally.
func (j *job) process(e *nexmark.Event, t *tally) error {
	t.events[e.Kind]++
	switch e.Kind {
	case nexmark.KindBid:
		if err := j.onBid(&e.Bid); err != nil {
			return fmt.Errorf("%s: event %d, bid on auction %d: %w", opBidsByAuction, e.N, e.Bid.Auction, err)
		}
		t.addBid(&e.Bid)
	case nexmark.KindAuction:
		if err := j.onAuction(&e.Auction); err != nil {
			return fmt.Errorf("%s: event %d, auction %d of seller %d: %w", opAuctionsBySeller, e.N, e.Auction.ID, e.Auction.Seller, err)
		}
		t.addAuction(&e.Auction)
	}
	return nil
}

func (j *job) onBid(bid *nexmark.Bid) error {
	s, err := j.byAuction.route(bid.Auction)
	if err != nil {
		return err
	}
	n, _, err := s.bids.Get()
	if err != nil {
		return err
	}
	n++
	if err := s.bids.Update(n); err != nil {
		return err
	}
	if err := s.prices.Add(bid.Price); err != nil {
		return err
	}
	j.stateOps += 3
	if n >= 2*recentPrices && n%recentPrices == 0 {
		// The list is full: keep the newest half.
		ps, err := s.prices.Get()
		if err != nil {
			return err
		}
		if len(ps) != 2*recentPrices {
			return fmt.Errorf("recent-prices holds %d prices after %d bids, want %d", len(ps), n, 2*recentPrices)
		}
		if err := s.prices.Update(ps[recentPrices:]); err != nil {
			return err
		}
		j.stateOps += 2
	}
	c, _, err := s.channels.Get(bid.Channel)
	if err != nil {
		return err
	}
	j.stateOps += 2
	return s.channels.Put(bid.Channel, c+1)
}

func (j *job) onAuction(a *nexmark.Auction) error {
	s, err := j.bySeller.route(a.Seller)
	if err != nil {
		return err
	}
	c, _, err := s.categories.Get(a.Category)
	if err != nil {
		return err
	}
	j.stateOps += 2
	return s.categories.Put(a.Category, c+1)
}

// tally is the plain in-memory model of the job's state that the demo
// checks the backends against after reopening them.
type tally struct {
	events   [3]int64                  // by nexmark.Kind
	auctions map[int64]*auctionTally   // by auction id, for auctions with bids
	sellers  map[int64]map[int64]int64 // seller id -> category -> auctions
}

type auctionTally struct {
	bids     int64
	prices   []int64 // the newest recentPrices to 2*recentPrices-1 prices
	channels map[string]int64
}

func newTally() *tally {
	return &tally{auctions: map[int64]*auctionTally{}, sellers: map[int64]map[int64]int64{}}
}

func (t *tally) addBid(b *nexmark.Bid) {
	a := t.auctions[b.Auction]
	if a == nil {
		a = &auctionTally{channels: map[string]int64{}}
		t.auctions[b.Auction] = a
	}
	a.bids++
	a.prices = append(a.prices, b.Price)
	if len(a.prices) == 2*recentPrices {
		a.prices = append(a.prices[:0], a.prices[recentPrices:]...)
	}
	a.channels[b.Channel]++
}

func (t *tally) addAuction(a *nexmark.Auction) {
	cats := t.sellers[a.Seller]
	if cats == nil {
		cats = map[int64]int64{}
		t.sellers[a.Seller] = cats
	}
	cats[a.Category]++
}
