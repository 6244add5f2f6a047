package nexmark

import (
	"reflect"
	"testing"
	"time"
)

func TestReferenceByHand(t *testing.T) {
	at := func(ms int64) time.Time { return time.UnixMilli(ms) }
	bid := func(n, ms, auction, bidder, price int64) Event {
		return Event{N: n, Kind: KindBid, Bid: Bid{Auction: auction, Bidder: bidder, Price: price, DateTime: at(ms)}}
	}
	events := []Event{
		{N: 0, Kind: KindPerson, Person: Person{ID: 7, Name: "ann", DateTime: at(1_000)}},
		{N: 1, Kind: KindPerson, Person: Person{ID: 8, Name: "bob", DateTime: at(2_000)}},
		{N: 2, Kind: KindAuction, Auction: Auction{ID: 100, Seller: 7, DateTime: at(3_000)}},
		bid(3, 4_000, 100, 8, 50),
		bid(4, 5_000, 101, 8, 70),
		{N: 5, Kind: KindAuction, Auction: Auction{ID: 101, Seller: 8, DateTime: at(11_000)}}, // next window: no q8
		bid(6, 12_000, 100, 7, 70),
		bid(7, 30_000, 100, 8, 10),
		bid(8, 33_000, 101, 8, 20),
	}
	q := Queries{Window: 10 * time.Second, Slide: 5 * time.Second, SessionGap: 10 * time.Second, TTL: 20 * time.Second, Every: 1}
	got := Reference(q, events)
	want := Answers{
		Q5: []HotItem{
			{Start: -5_000, End: 5_000, Auction: 100, Bids: 1},
			{Start: 0, End: 10_000, Auction: 100, Bids: 1}, // 100 and 101 tie: smallest id
			{Start: 5_000, End: 15_000, Auction: 100, Bids: 1},
			{Start: 10_000, End: 20_000, Auction: 100, Bids: 1},
			{Start: 25_000, End: 35_000, Auction: 100, Bids: 1},
			{Start: 30_000, End: 40_000, Auction: 100, Bids: 1},
		},
		Q7: []HighestBid{
			{Start: 0, End: 10_000, Auction: 101, Bidder: 8, Price: 70},
			{Start: 10_000, End: 20_000, Auction: 100, Bidder: 7, Price: 70},
			{Start: 30_000, End: 40_000, Auction: 101, Bidder: 8, Price: 20},
		},
		Q8: []NewSeller{{Start: 0, End: 10_000, Person: 7, Name: "ann"}},
		Q11: []Session{
			{Bidder: 7, Start: 12_000, End: 22_000, Bids: 1},
			{Bidder: 8, Start: 4_000, End: 15_000, Bids: 2},
			{Bidder: 8, Start: 30_000, End: 43_000, Bids: 2},
		},
		TTL: []RecentAuctions{
			{N: 3, Bidder: 8, Distinct: 1},
			{N: 4, Bidder: 8, Distinct: 2},
			{N: 6, Bidder: 7, Distinct: 1},
			{N: 7, Bidder: 8, Distinct: 1}, // 101 at 5,000 expired at 25,000; 100 rewritten
			{N: 8, Bidder: 8, Distinct: 2},
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got  %+v\nwant %+v", got, want)
	}
}

// TestReferenceOf checks that each query computed alone gets the answers
// it gets among all, and that the queries left out get none.
func TestReferenceOf(t *testing.T) {
	events := generate(Config{Seed: 3, FirstEventRate: 1000, NumActivePeople: 50, NumInFlightAuctions: 20}, 5000)
	q := Queries{Window: 2 * time.Second, Slide: 500 * time.Millisecond, SessionGap: time.Second, TTL: 3 * time.Second, Every: 7}
	all := Reference(q, events)
	parts := map[string]func(Answers) Answers{
		"q5":  func(a Answers) Answers { return Answers{Q5: a.Q5} },
		"q7":  func(a Answers) Answers { return Answers{Q7: a.Q7} },
		"q8":  func(a Answers) Answers { return Answers{Q8: a.Q8} },
		"q11": func(a Answers) Answers { return Answers{Q11: a.Q11} },
		"ttl": func(a Answers) Answers { return Answers{TTL: a.TTL} },
	}
	for query, part := range parts {
		want := part(all)
		if reflect.DeepEqual(want, Answers{}) {
			t.Fatalf("%s has no answers over this stream: the check proves nothing", query)
		}
		got := ReferenceOf(q, events, []string{query})
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s alone: got %d/%d/%d/%d/%d answers (q5/q7/q8/q11/ttl), want only its own %+v",
				query, len(got.Q5), len(got.Q7), len(got.Q8), len(got.Q11), len(got.TTL), want)
		}
	}
	if got := ReferenceOf(q, events, []string{"q5", "q7", "q8", "q11", "ttl"}); !reflect.DeepEqual(got, all) {
		t.Error("every query named: answers differ from Reference's")
	}
}
