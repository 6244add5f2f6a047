package nexmark

import (
	"reflect"
	"slices"
	"testing"
	"time"
)

const testEvents = 10_000

func generate(cfg Config, n int) []Event {
	g := New(cfg)
	es := make([]Event, n)
	for i := range es {
		es[i] = g.Next()
	}
	return es
}

// Ensure that the kinds follow n % 50 exactly: 1 person, 3 auctions, 46 bids.
func TestProportions(t *testing.T) {
	counts := map[Kind]int{}
	for i, e := range generate(Config{Seed: 1}, testEvents) {
		if e.N != int64(i) {
			t.Fatalf("event %d has N %d", i, e.N)
		}
		if e.Kind != KindOf(e.N) {
			t.Fatalf("event %d is a %s, KindOf says %s", i, e.Kind, KindOf(e.N))
		}
		counts[e.Kind]++
	}
	want := map[Kind]int{KindPerson: 200, KindAuction: 600, KindBid: 9200}
	if !reflect.DeepEqual(counts, want) {
		t.Fatalf("counts %v, want %v", counts, want)
	}
	for n, k := range map[int64]Kind{0: KindPerson, 1: KindAuction, 3: KindAuction, 4: KindBid, 49: KindBid, 50: KindPerson} {
		if KindOf(n) != k {
			t.Errorf("KindOf(%d) = %s, want %s", n, KindOf(n), k)
		}
	}
}

// Ensure that a seed gives the same stream every time, that At agrees with
// Next, and that another seed gives another stream.
func TestDeterminism(t *testing.T) {
	a := generate(Config{Seed: 42}, 2000)
	b := generate(Config{Seed: 42}, 2000)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("two generators with seed 42 differ")
	}
	g := New(Config{Seed: 42})
	for _, n := range []int64{1999, 0, 777, 4, 50} {
		if e := g.At(n); !reflect.DeepEqual(e, a[n]) {
			t.Fatalf("At(%d) = %+v, Next gave %+v", n, e, a[n])
		}
	}
	if e := g.Next(); e.N != 0 {
		t.Fatalf("At moved the generator: Next returned event %d", e.N)
	}
	c := generate(Config{Seed: 43}, 2000)
	same := 0
	for i := range a {
		if reflect.DeepEqual(a[i], c[i]) {
			same++
		}
	}
	if same > 0 {
		t.Fatalf("seeds 42 and 43 agree on %d of 2000 events", same)
	}
}

// Ensure that ids start at 1000, grow by one per person or auction, and that
// bids, bidders and sellers refer to ids that exist or lie a few ahead.
func TestIDs(t *testing.T) {
	var nextPerson, nextAuction int64 = FirstPersonID, FirstAuctionID
	for _, e := range generate(Config{Seed: 7}, testEvents) {
		switch e.Kind {
		case KindPerson:
			if e.Person.ID != nextPerson {
				t.Fatalf("event %d: person id %d, want %d", e.N, e.Person.ID, nextPerson)
			}
			nextPerson++
		case KindAuction:
			a := e.Auction
			if a.ID != nextAuction {
				t.Fatalf("event %d: auction id %d, want %d", e.N, a.ID, nextAuction)
			}
			nextAuction++
			if a.Seller < FirstPersonID || a.Seller >= nextPerson+personIDLead {
				t.Fatalf("event %d: seller %d outside [%d, %d)", e.N, a.Seller, FirstPersonID, nextPerson+personIDLead)
			}
		case KindBid:
			b := e.Bid
			if b.Auction < FirstAuctionID || b.Auction >= nextAuction+auctionIDLead {
				t.Fatalf("event %d: auction %d outside [%d, %d)", e.N, b.Auction, FirstAuctionID, nextAuction+auctionIDLead)
			}
			// The hot bidder is the second of a batch of 100 and may not
			// exist yet.
			if hi := max(nextPerson+personIDLead, nextPerson/hotBatch*hotBatch+hotBatch); b.Bidder < FirstPersonID || b.Bidder >= hi {
				t.Fatalf("event %d: bidder %d outside [%d, %d)", e.N, b.Bidder, FirstPersonID, hi)
			}
		}
	}
}

// Ensure that categories are 10..14, all of them used, and prices lie in
// [1.00, 1,000,000.00] log-uniformly.
func TestValues(t *testing.T) {
	cats := map[int64]int{}
	var prices []int64
	for _, e := range generate(Config{Seed: 3}, testEvents) {
		switch e.Kind {
		case KindAuction:
			cats[e.Auction.Category]++
			if e.Auction.Reserve < e.Auction.InitialBid {
				t.Fatalf("event %d: reserve %d below initial bid %d", e.N, e.Auction.Reserve, e.Auction.InitialBid)
			}
		case KindBid:
			prices = append(prices, e.Bid.Price)
		}
	}
	if len(cats) != NumCategories {
		t.Fatalf("categories %v, want all of 10..14", cats)
	}
	for c := range cats {
		if c < FirstCategoryID || c >= FirstCategoryID+NumCategories {
			t.Fatalf("category %d outside 10..14", c)
		}
	}
	slices.Sort(prices)
	if prices[0] < 100 || prices[len(prices)-1] > 100_000_000 {
		t.Fatalf("prices span [%d, %d], want inside [100, 100000000]", prices[0], prices[len(prices)-1])
	}
	// log10(price/100) is uniform on [0, 6): the median is near 10^3 * 100.
	if med := prices[len(prices)/2]; med < 50_000 || med > 200_000 {
		t.Fatalf("median price %d, want near 100000", med)
	}
}

// Ensure that the hot auction, bidder, seller and channel shares match the
// ratios: P(hot) = 1 - 1/ratio, plus the odd cold pick of the hot id.
func TestHotRatios(t *testing.T) {
	var bids, hotAuction, hotBidder, hotChannel, auctions, hotSeller int
	for _, e := range generate(Config{Seed: 11}, testEvents*5) {
		switch e.Kind {
		case KindAuction:
			auctions++
			if e.Auction.Seller-FirstPersonID == lastBase0PersonID(e.N)/hotBatch*hotBatch {
				hotSeller++
			}
		case KindBid:
			b := e.Bid
			bids++
			if b.Auction-FirstAuctionID == lastBase0AuctionID(e.N)/hotBatch*hotBatch {
				hotAuction++
			}
			if b.Bidder-FirstPersonID == lastBase0PersonID(e.N)/hotBatch*hotBatch+1 {
				hotBidder++
			}
			if slices.Contains(HotChannels[:], b.Channel) {
				hotChannel++
			}
		}
	}
	check := func(what string, hot, total int, lo, hi float64) {
		t.Helper()
		if f := float64(hot) / float64(total); f < lo || f > hi {
			t.Errorf("%s: %.3f of %d are hot, want in [%.2f, %.2f]", what, f, total, lo, hi)
		}
	}
	check("auctions of bids", hotAuction, bids, 0.49, 0.56)
	check("bidders", hotBidder, bids, 0.74, 0.80)
	check("sellers", hotSeller, auctions, 0.72, 0.80)
	check("channels", hotChannel, bids, 0.48, 0.52)
}

// Ensure that event n happens at base + n * 100µs (at 10,000 events/s),
// auctions expire after they open, and records average their sizes.
func TestTimesAndSizes(t *testing.T) {
	base := time.Date(2020, 5, 1, 0, 0, 0, 0, time.UTC)
	var bidBytes, bids, personBytes, persons int
	for _, e := range generate(Config{Seed: 5, BaseTime: base}, testEvents) {
		if want := base.Add(time.Duration(e.N) * 100 * time.Microsecond).Truncate(time.Millisecond); !e.Time().Equal(want) {
			t.Fatalf("event %d at %v, want %v", e.N, e.Time(), want)
		}
		switch e.Kind {
		case KindAuction:
			// The horizon is 1666 events, 166.6 ms.
			if d := e.Auction.Expires.Sub(e.Auction.DateTime); d < time.Millisecond || d > 334*time.Millisecond {
				t.Fatalf("event %d: auction lasts %v, want in [1ms, 334ms]", e.N, d)
			}
		case KindPerson:
			p := e.Person
			persons++
			personBytes += 8 + len(p.Name) + len(p.EmailAddress) + len(p.CreditCard) + len(p.City) + len(p.State) + len(p.Extra)
		case KindBid:
			bids++
			bidBytes += 32 + len(e.Bid.Extra)
		}
	}
	if avg := float64(bidBytes) / float64(bids); avg < 95 || avg > 105 {
		t.Errorf("bids average %.1f bytes, want about 100", avg)
	}
	if avg := float64(personBytes) / float64(persons); avg < 190 || avg > 210 {
		t.Errorf("persons average %.1f bytes, want about 200", avg)
	}
}
