package nexmark

import (
	"cmp"
	"slices"
	"time"
)

// Queries are the parameters of the demo job's queries; Reference
// computes their exact answers over a finite stream, in memory, as the
// upper bound of speed and the judge of correctness. Times are event times
// in Unix milliseconds; windows are half-open [Start, End) and aligned to
// multiples of their slide (or size) from the Unix epoch, as Flink's.
type Queries struct {
	// Window is the size of q5's sliding windows and of q7's and q8's
	// tumbling windows.
	Window time.Duration
	// Slide is the slide of q5's sliding windows.
	Slide time.Duration
	// SessionGap closes a q11 session after this long without a bid.
	SessionGap time.Duration
	// TTL is how long the TTL query remembers an auction a bidder bid on.
	TTL time.Duration
	// Every makes the TTL query answer on bids whose event number is a
	// multiple of it.
	Every int64
}

// HotItem is a q5 answer: the auction with the most bids in a sliding
// window (ties: the smallest auction id), and its bid count.
type HotItem struct {
	Start, End int64
	Auction    int64
	Bids       int64
}

// HighestBid is a q7 answer: the highest bid of a tumbling window (ties:
// the smallest auction id, then the smallest bidder id).
type HighestBid struct {
	Start, End      int64
	Auction, Bidder int64
	Price           int64
}

// NewSeller is a q8 answer: a person who registered in a tumbling window
// and opened an auction in the same window.
type NewSeller struct {
	Start, End int64
	Person     int64
	Name       string
}

// Session is a q11 answer: a bidder's session (bids each at most the gap
// after the previous one; End is the last bid's time plus the gap) and its
// number of bids.
type Session struct {
	Bidder     int64
	Start, End int64
	Bids       int64
}

// RecentAuctions is a TTL-query answer: after bid number N, the number of
// distinct auctions its bidder bid on in the TTL before it (the bid's own
// auction included).
type RecentAuctions struct {
	N        int64
	Bidder   int64
	Distinct int64
}

// Answers are every query's answers, each sorted as its field says.
type Answers struct {
	Q5  []HotItem        // by Start
	Q7  []HighestBid     // by Start
	Q8  []NewSeller      // by Start, Person
	Q11 []Session        // by Bidder, Start
	TTL []RecentAuctions // by N
}

// windowStart returns the start of the window of size step aligned to
// step that holds ts.
func windowStart(ts, step int64) int64 { return ts - ((ts%step)+step)%step }

// Reference computes the answers of every query over events, in memory.
func Reference(q Queries, events []Event) Answers { return ReferenceOf(q, events, nil) }

// ReferenceOf computes the answers of the queries named in only (q5, q7,
// q8, q11, ttl; all if only is empty) and leaves the others' empty. Each
// query's answers are those Reference gives; only the work of the others
// is skipped, so a benchmark can time one query alone.
func ReferenceOf(q Queries, events []Event, only []string) Answers {
	do := func(query string) bool { return len(only) == 0 || slices.Contains(only, query) }
	do5, do7, do8, do11, doTTL := do("q5"), do("q7"), do("q8"), do("q11"), do("ttl")
	size, slide := q.Window.Milliseconds(), q.Slide.Milliseconds()
	gap, ttl := q.SessionGap.Milliseconds(), q.TTL.Milliseconds()
	var a Answers

	type key struct{ start, id int64 }
	q5 := map[key]int64{}
	q7 := map[int64]HighestBid{}
	people := map[key]string{} // (window, person) -> name
	sellers := map[key]bool{}  // (window, seller) with an auction
	sessions := map[int64][]*Session{}
	recent := map[int64]map[int64]int64{} // bidder -> auction -> last bid time
	for i := range events {
		e := &events[i]
		ts := e.Time().UnixMilli()
		switch e.Kind {
		case KindPerson:
			if !do8 {
				continue
			}
			people[key{windowStart(ts, size), e.Person.ID}] = e.Person.Name
		case KindAuction:
			if !do8 {
				continue
			}
			sellers[key{windowStart(ts, size), e.Auction.Seller}] = true
		case KindBid:
			b := &e.Bid
			if do5 {
				for s := windowStart(ts, slide); s > ts-size; s -= slide {
					q5[key{s, b.Auction}]++
				}
			}
			if do7 {
				w := windowStart(ts, size)
				cand := HighestBid{Start: w, End: w + size, Auction: b.Auction, Bidder: b.Bidder, Price: b.Price}
				if best, ok := q7[w]; !ok || HigherBid(cand, best) {
					q7[w] = cand
				}
			}
			if do11 {
				ss := sessions[b.Bidder]
				if n := len(ss); n > 0 && ts <= ss[n-1].End {
					ss[n-1].End = max(ss[n-1].End, ts+gap)
					ss[n-1].Bids++
				} else {
					sessions[b.Bidder] = append(ss, &Session{Bidder: b.Bidder, Start: ts, End: ts + gap, Bids: 1})
				}
			}
			if !doTTL {
				continue
			}
			m := recent[b.Bidder]
			if m == nil {
				m = map[int64]int64{}
				recent[b.Bidder] = m
			}
			m[b.Auction] = ts
			if q.Every > 0 && e.N%q.Every == 0 {
				var n int64
				for _, last := range m {
					if last+ttl > ts {
						n++
					}
				}
				a.TTL = append(a.TTL, RecentAuctions{N: e.N, Bidder: b.Bidder, Distinct: n})
			}
		}
	}

	hot := map[int64]HotItem{}
	for k, n := range q5 {
		h, ok := hot[k.start]
		if !ok || n > h.Bids || (n == h.Bids && k.id < h.Auction) {
			hot[k.start] = HotItem{Start: k.start, End: k.start + size, Auction: k.id, Bids: n}
		}
	}
	for _, h := range hot {
		a.Q5 = append(a.Q5, h)
	}
	slices.SortFunc(a.Q5, func(x, y HotItem) int { return cmp.Compare(x.Start, y.Start) })
	for _, h := range q7 {
		a.Q7 = append(a.Q7, h)
	}
	slices.SortFunc(a.Q7, func(x, y HighestBid) int { return cmp.Compare(x.Start, y.Start) })
	for k, name := range people {
		if sellers[k] {
			a.Q8 = append(a.Q8, NewSeller{Start: k.start, End: k.start + size, Person: k.id, Name: name})
		}
	}
	slices.SortFunc(a.Q8, func(x, y NewSeller) int {
		return cmp.Or(cmp.Compare(x.Start, y.Start), cmp.Compare(x.Person, y.Person))
	})
	for _, ss := range sessions {
		for _, s := range ss {
			a.Q11 = append(a.Q11, *s)
		}
	}
	slices.SortFunc(a.Q11, func(x, y Session) int {
		return cmp.Or(cmp.Compare(x.Bidder, y.Bidder), cmp.Compare(x.Start, y.Start))
	})
	return a
}

// HigherBid reports whether x beats y in q7: a higher price, then a smaller
// auction id, then a smaller bidder id.
func HigherBid(x, y HighestBid) bool {
	return cmp.Or(cmp.Compare(y.Price, x.Price), cmp.Compare(x.Auction, y.Auction), cmp.Compare(x.Bidder, y.Bidder)) < 0
}
