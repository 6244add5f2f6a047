package nexmarkjob

import "github.com/pebblestate/pebblestate/internal/nexmark"

// count counts elements: q5's bids per auction and window, q11's bids per
// session.
type count struct{}

func (count) CreateAccumulator() []int64          { return []int64{0} }
func (count) Add(_ struct{}, acc []int64) []int64 { return []int64{acc[0] + 1} }
func (count) Result(acc []int64) int64            { return acc[0] }
func (count) Merge(a, b []int64) []int64          { return []int64{a[0] + b[0]} }

// highest keeps q7's highest bid (auction, bidder, price; price 0 and
// auction -1 when empty), with the reference's tie rules.
type highest struct{}

func (highest) CreateAccumulator() []int64 { return []int64{-1, -1, -1} }

func (h highest) Add(b nexmark.Bid, acc []int64) []int64 {
	return h.Merge(acc, []int64{b.Auction, b.Bidder, b.Price})
}

func (highest) Result(acc []int64) []int64 { return acc }

func (highest) Merge(a, b []int64) []int64 {
	x := nexmark.HighestBid{Auction: a[0], Bidder: a[1], Price: a[2]}
	y := nexmark.HighestBid{Auction: b[0], Bidder: b[1], Price: b[2]}
	if a[0] < 0 || (b[0] >= 0 && nexmark.HigherBid(y, x)) {
		return b
	}
	return a
}

// sellerOf folds q8's people and auctions of one person and window.
type sellerOf struct{}

func (sellerOf) CreateAccumulator() newSeller { return newSeller{} }

func (sellerOf) Add(e *nexmark.Event, acc newSeller) newSeller {
	if e.Kind == nexmark.KindPerson {
		acc.Registered, acc.Name = true, e.Person.Name
	} else {
		acc.Auctioned = true
	}
	return acc
}

func (sellerOf) Result(acc newSeller) newSeller { return acc }

func (sellerOf) Merge(a, b newSeller) newSeller {
	if b.Registered {
		a.Registered, a.Name = true, b.Name
	}
	a.Auctioned = a.Auctioned || b.Auctioned
	return a
}
