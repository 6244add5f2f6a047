package nexmarkjob

import (
	"fmt"
	"math"

	"github.com/pebblestate/pebblestate/backend"
	"github.com/pebblestate/pebblestate/internal/nexmark"
	"github.com/pebblestate/pebblestate/ttl"
	"github.com/pebblestate/pebblestate/window"
)

// logic is what one operator does in one subtask: apply an input record
// and advance the subtask's watermark. It runs on the subtask's goroutine.
type logic interface {
	input(msg []byte) error
	watermark(wm int64) error
}

// env is what an operator's logic is built with.
type env struct {
	b       *backend.Backend[int64]
	clock   *ttl.ManualClock
	q       nexmark.Queries
	out     *output
	kgs     backend.KeyGroupRange
	windowN int64 // q.Window in ms
}

func decodeEvent(msg []byte) (nexmark.Event, error) {
	e, err := nexmark.DecodeEvent(msg)
	if err != nil {
		return e, fmt.Errorf("%w: %w", errBadMessage, err)
	}
	return e, nil
}

// q5Counts is q5's first stage, keyed by auction: bids per auction per
// sliding window, published to the second stage keyed by window.
type q5Counts struct {
	env
	w *window.Operator[int64, struct{}, int64]
}

func newQ5Counts(e env) (logic, error) {
	w, err := window.New(e.b, count{}, ints{"nexmark-count", 1}, window.Options[int64, struct{}, int64]{
		Name:     "q5-bids-per-auction",
		Assigner: window.Sliding(e.windowN, e.q.Slide.Milliseconds(), 0),
		Emit: func(auction int64, w window.Window, n int64) error {
			return e.out.partial(q5Partials, w.Start, ids(w.Start, auction), w.Start, auction, n)
		},
	})
	return &q5Counts{env: e, w: w}, err
}

func (q *q5Counts) input(msg []byte) error {
	e, err := decodeEvent(msg)
	if err != nil {
		return err
	}
	return q.w.Process(e.Bid.Auction, struct{}{}, e.Bid.DateTime.UnixMilli())
}

// watermark fires the windows it closes, then tells the second stage:
// their results come before the watermark in each subject.
func (q *q5Counts) watermark(wm int64) error {
	if err := q.w.AdvanceWatermark(wm); err != nil {
		return err
	}
	return q.out.upstream(q5Partials, q.kgs, wm)
}

// q7Highest is q7's first stage, keyed by auction: the highest bid per
// auction per tumbling window, published to the second stage keyed by
// window.
type q7Highest struct {
	env
	w *window.Operator[int64, nexmark.Bid, []int64]
}

func newQ7Highest(e env) (logic, error) {
	w, err := window.New(e.b, highest{}, ints{"nexmark-highest-bid", 3}, window.Options[int64, nexmark.Bid, []int64]{
		Name:     "q7-highest-bid-per-auction",
		Assigner: window.Tumbling(e.windowN, 0),
		Emit: func(auction int64, w window.Window, best []int64) error {
			return e.out.partial(q7Partials, w.Start, ids(w.Start, auction), w.Start, best[0], best[1], best[2])
		},
	})
	return &q7Highest{env: e, w: w}, err
}

func (q *q7Highest) input(msg []byte) error {
	e, err := decodeEvent(msg)
	if err != nil {
		return err
	}
	return q.w.Process(e.Bid.Auction, e.Bid, e.Bid.DateTime.UnixMilli())
}

func (q *q7Highest) watermark(wm int64) error {
	if err := q.w.AdvanceWatermark(wm); err != nil {
		return err
	}
	return q.out.upstream(q7Partials, q.kgs, wm)
}

// top is the second stage of q5 or q7, keyed by window start: it keeps the
// best partial result of each window and publishes it when the window
// closes.
type top struct {
	env
	query  string
	n      int // numbers per partial: window start, then the result
	better func(x, y []int64) bool
	best   *backend.Value[int64, backend.VoidNamespace, []int64]
	timers *backend.TimerService[int64, backend.VoidNamespace]
	fire   func(start int64, best []int64) error
}

func newTop(e env, query string) (logic, error) {
	t := &top{env: e, query: query}
	size := e.windowN
	switch query {
	case "q5": // auction, bids
		t.n = 3
		t.better = func(x, y []int64) bool { return x[1] > y[1] || (x[1] == y[1] && x[0] < y[0]) }
		t.fire = func(start int64, b []int64) error {
			return e.out.result("q5", ids(start), "", start, start+size, b[0], b[1])
		}
	case "q7": // auction, bidder, price
		t.n = 4
		t.better = func(x, y []int64) bool {
			return nexmark.HigherBid(nexmark.HighestBid{Auction: x[0], Bidder: x[1], Price: x[2]},
				nexmark.HighestBid{Auction: y[0], Bidder: y[1], Price: y[2]})
		}
		t.fire = func(start int64, b []int64) error {
			return e.out.result("q7", ids(start), "", start, start+size, b[0], b[1], b[2])
		}
	default:
		return nil, fmt.Errorf("no second stage for %s", query)
	}
	var err error
	t.best, err = backend.GetValue(e.b, backend.ValueDescriptor[[]int64]{Name: query + "-best", Codec: ints{"nexmark-" + query + "-best", t.n - 1}})
	if err != nil {
		return nil, err
	}
	t.timers, err = backend.GetTimerService(e.b, backend.TimerServiceDescriptor[backend.VoidNamespace]{Name: query + "-window-ends", NamespaceCodec: backend.Void})
	return t, err
}

func (t *top) input(msg []byte) error {
	vs, err := varints(msg, t.n)
	if err != nil {
		return err
	}
	start, cand := vs[0], vs[1:]
	if err := t.b.SetCurrentKey(start); err != nil {
		return err
	}
	cur, ok, err := t.best.Get()
	if err != nil {
		return err
	}
	if ok && !t.better(cand, cur) {
		return nil
	}
	if err := t.best.Update(cand); err != nil {
		return err
	}
	if !ok {
		return t.timers.RegisterEventTimeTimer(backend.VoidNamespace{}, start+t.windowN-1)
	}
	return nil
}

func (t *top) watermark(wm int64) error {
	return t.timers.AdvanceWatermark(wm, func(start int64, _ backend.VoidNamespace, _ int64) error {
		b, ok, err := t.best.Get()
		if err != nil || !ok {
			return err
		}
		if err := t.fire(start, b); err != nil {
			return err
		}
		return t.best.Clear()
	})
}

// sessions runs q11, keyed by bidder: bids per bidder per session window.
type sessions struct {
	env
	w *window.Operator[int64, struct{}, int64]
}

func newSessions(e env) (logic, error) {
	w, err := window.New(e.b, count{}, ints{"nexmark-count", 1}, window.Options[int64, struct{}, int64]{
		Name:     "q11-sessions",
		Assigner: window.Session(e.q.SessionGap.Milliseconds()),
		Emit: func(bidder int64, w window.Window, n int64) error {
			return e.out.result("q11", ids(bidder, w.Start), "", bidder, w.Start, w.End, n)
		},
	})
	return &sessions{env: e, w: w}, err
}

func (q *sessions) input(msg []byte) error {
	e, err := decodeEvent(msg)
	if err != nil {
		return err
	}
	return q.w.Process(e.Bid.Bidder, struct{}{}, e.Bid.DateTime.UnixMilli())
}

func (q *sessions) watermark(wm int64) error { return q.w.AdvanceWatermark(wm) }

// recent runs the TTL query, keyed by bidder: the distinct auctions a
// bidder bid on in the last TTL, as a map state whose entries expire. The
// TTL clock is the event time of the bid being applied, so the answers are
// the same in every run.
type recent struct {
	env
	m *backend.Map[int64, backend.VoidNamespace, int64, bool]
}

func newRecent(e env) (logic, error) {
	m, err := backend.GetMap(e.b, backend.MapDescriptor[int64, bool]{
		Name: "ttl-recent-auctions", KeyCodec: backend.Int64, ValueCodec: backend.Bool,
		TTL: ttl.Config{TTL: e.q.TTL},
	})
	return &recent{env: e, m: m}, err
}

func (q *recent) input(msg []byte) error {
	e, err := decodeEvent(msg)
	if err != nil {
		return err
	}
	q.clock.Set(e.Bid.DateTime)
	if err := q.b.SetCurrentKey(e.Bid.Bidder); err != nil {
		return err
	}
	if err := q.m.Put(e.Bid.Auction, true); err != nil {
		return err
	}
	if q.q.Every <= 0 || e.N%q.q.Every != 0 {
		return nil
	}
	var n int64
	for _, err := range q.m.Keys() {
		if err != nil {
			return err
		}
		n++
	}
	return q.out.result("ttl", ids(e.N), "", e.N, e.Bid.Bidder, n)
}

// watermark has nothing to do: the TTL query has no windows.
func (q *recent) watermark(int64) error { return nil }

// people runs q8: people who registered and opened an auction in the same
// tumbling window, keyed by person (an auction by its seller).
type people struct {
	env
	q8 *window.Operator[int64, *nexmark.Event, newSeller]
}

func newPeople(e env) (logic, error) {
	p := &people{env: e}
	var err error
	p.q8, err = window.New(e.b, sellerOf{}, newSellerCodec{}, window.Options[int64, *nexmark.Event, newSeller]{
		Name:     "q8-new-sellers",
		Assigner: window.Tumbling(e.windowN, 0),
		Emit: func(person int64, w window.Window, s newSeller) error {
			if !s.Registered || !s.Auctioned {
				return nil
			}
			return e.out.result("q8", ids(w.Start, person), s.Name, w.Start, w.End, person)
		},
	})
	return p, err
}

func (p *people) input(msg []byte) error {
	e, err := decodeEvent(msg)
	if err != nil {
		return err
	}
	key := e.Person.ID
	if e.Kind == nexmark.KindAuction {
		key = e.Auction.Seller
	}
	return p.q8.Process(key, &e, e.Time().UnixMilli())
}

func (p *people) watermark(wm int64) error { return p.q8.AdvanceWatermark(wm) }

// noWatermark is the watermark before any: every window is still open.
const noWatermark = math.MinInt64
